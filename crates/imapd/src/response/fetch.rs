//! FETCH response data: `* n FETCH (...)` for every data item, from the
//! message's bytes and its state given as plain inputs. BODY[...] data is
//! sent as a literal with NUL octets replaced (as Dovecot does; IMAP4rev1
//! literals cannot carry NUL); BINARY data goes as literal8 when it holds
//! NUL.

use super::date::internal_date;
use super::encode::literal;
use crate::parse::{FetchAttr, Section, SectionText};
use crate::structure::bodystructure::body_structure;
use crate::structure::envelope::{EMPTY_ENVELOPE, envelope};
use crate::structure::section::{BinaryError, binary_bytes, partial, section_bytes};
use crate::structure::{PartRef, count_lines};
use mail_parser::Message;

/// One message as FETCH sees it.
pub struct FetchInput<'a, 'x> {
    /// Sequence number.
    pub seq: u32,
    /// UID.
    pub uid: u32,
    /// Flags and keywords (after any implied \Seen).
    pub flags: &'a [String],
    /// The session sees it as recent (\Recent is added).
    pub recent: bool,
    /// Internal date, Unix time.
    pub internal_date: i64,
    /// Zone to show the internal date in, minutes east of UTC.
    pub zone_minutes: i16,
    /// MODSEQ.
    pub modseq: u64,
    /// The message in CRLF form (RFC822.SIZE is its length).
    pub raw: &'a [u8],
    /// The parsed message (None: unparsable, or not needed).
    pub msg: Option<&'a Message<'x>>,
    /// The client takes UTF-8 (IMAP4rev2 or UTF8=ACCEPT).
    pub utf8: bool,
}

/// Do these items need the message's bytes (not only index data)?
pub fn needs_message(attrs: &[FetchAttr]) -> bool {
    attrs.iter().any(|a| {
        !matches!(
            a,
            FetchAttr::Flags | FetchAttr::Uid | FetchAttr::ModSeq | FetchAttr::InternalDate
        )
    })
}

/// Do these items need the message parsed (its MIME structure)? The
/// whole message (`BODY[]`, `RFC822`) and its size need only its bytes.
pub fn needs_parse(attrs: &[FetchAttr]) -> bool {
    attrs.iter().any(|a| match a {
        FetchAttr::Flags
        | FetchAttr::Uid
        | FetchAttr::ModSeq
        | FetchAttr::InternalDate
        | FetchAttr::Rfc822
        | FetchAttr::Rfc822Size => false,
        FetchAttr::BodySection { section, .. } => {
            !section.part.is_empty() || section.text.is_some()
        }
        _ => true,
    })
}

/// Do these items set \Seen (BODY[...] without PEEK, RFC822, RFC822.TEXT, BINARY)?
pub fn implies_seen(attrs: &[FetchAttr]) -> bool {
    attrs.iter().any(|a| {
        matches!(a, FetchAttr::Rfc822 | FetchAttr::Rfc822Text)
            || matches!(
                a,
                FetchAttr::BodySection { peek: false, .. } | FetchAttr::Binary { peek: false, .. }
            )
    })
}

/// Append the FLAGS list.
pub fn flag_list(out: &mut Vec<u8>, flags: &[String], recent: bool) {
    out.push(b'(');
    let mut first = true;
    for f in flags
        .iter()
        .map(String::as_str)
        .chain(recent.then_some("\\Recent"))
    {
        if !first {
            out.push(b' ');
        }
        first = false;
        out.extend_from_slice(f.as_bytes());
    }
    out.push(b')');
}

fn section_name(s: &Section) -> String {
    let mut n: Vec<String> = s.part.iter().map(u32::to_string).collect();
    if let Some(t) = &s.text {
        n.push(match t {
            SectionText::Header => "HEADER".into(),
            SectionText::Text => "TEXT".into(),
            SectionText::Mime => "MIME".into(),
            SectionText::HeaderFields(f) => format!("HEADER.FIELDS ({})", quote_all(f)),
            SectionText::HeaderFieldsNot(f) => format!("HEADER.FIELDS.NOT ({})", quote_all(f)),
        });
    }
    n.join(".")
}

fn quote_all(f: &[String]) -> String {
    f.iter()
        .map(|x| {
            let mut o = Vec::new();
            crate::response::encode::astring(&mut o, x.as_bytes(), false);
            String::from_utf8_lossy(&o).into_owned()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn body_literal(out: &mut Vec<u8>, data: &[u8]) {
    if data.contains(&0) {
        let clean: Vec<u8> = data
            .iter()
            .map(|&c| if c == 0 { 0x80 } else { c })
            .collect();
        literal(out, &clean);
    } else {
        literal(out, data);
    }
}

/// Append `* seq FETCH (...)\r\n` for `attrs` (UID first when `with_uid`
/// and not asked). A BINARY item on an unknown transfer encoding fails the
/// whole response (answer `NO [UNKNOWN-CTE]`); a missing part is an empty
/// string.
pub fn fetch_response(
    out: &mut Vec<u8>,
    attrs: &[FetchAttr],
    m: &FetchInput<'_, '_>,
    with_uid: bool,
) -> Result<(), BinaryError> {
    // Written straight into `out` (a message's body is copied once);
    // cut back to where it started when an item fails.
    let start = out.len();
    out.extend_from_slice(format!("* {} FETCH (", m.seq).as_bytes());
    let first = out.len();
    let items = out;
    let sep = |items: &mut Vec<u8>| {
        if items.len() > first {
            items.push(b' ');
        }
    };
    if with_uid && !attrs.contains(&FetchAttr::Uid) {
        items.extend_from_slice(format!("UID {}", m.uid).as_bytes());
    }
    for a in attrs {
        sep(items);
        match a {
            FetchAttr::Uid => items.extend_from_slice(format!("UID {}", m.uid).as_bytes()),
            FetchAttr::Flags => {
                items.extend_from_slice(b"FLAGS ");
                flag_list(items, m.flags, m.recent);
            }
            FetchAttr::InternalDate => {
                items.extend_from_slice(
                    format!(
                        "INTERNALDATE \"{}\"",
                        internal_date(m.internal_date, m.zone_minutes)
                    )
                    .as_bytes(),
                );
            }
            FetchAttr::Rfc822Size => {
                items.extend_from_slice(format!("RFC822.SIZE {}", m.raw.len()).as_bytes())
            }
            FetchAttr::ModSeq => {
                items.extend_from_slice(format!("MODSEQ ({})", m.modseq).as_bytes())
            }
            FetchAttr::Envelope => {
                items.extend_from_slice(b"ENVELOPE ");
                match m.msg {
                    Some(msg) => envelope(items, PartRef::root(msg), m.utf8),
                    None => items.extend_from_slice(EMPTY_ENVELOPE),
                }
            }
            FetchAttr::Body | FetchAttr::BodyStructure => {
                let ext = *a == FetchAttr::BodyStructure;
                items.extend_from_slice(if ext { b"BODYSTRUCTURE " } else { b"BODY " });
                match m.msg {
                    Some(msg) => body_structure(items, PartRef::root(msg), ext, m.utf8),
                    None => items.extend_from_slice(
                        format!("(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" {} {})", m.raw.len(), count_lines(m.raw)).as_bytes(),
                    ),
                }
            }
            FetchAttr::Rfc822 => {
                items.extend_from_slice(b"RFC822 ");
                body_literal(items, m.raw);
            }
            FetchAttr::Rfc822Header | FetchAttr::Rfc822Text => {
                let (name, text) = if *a == FetchAttr::Rfc822Header {
                    ("RFC822.HEADER ", SectionText::Header)
                } else {
                    ("RFC822.TEXT ", SectionText::Text)
                };
                items.extend_from_slice(name.as_bytes());
                let s = Section {
                    part: vec![],
                    text: Some(text),
                };
                let data = section_bytes(m.raw, m.msg, &s).unwrap_or_default();
                body_literal(items, &data);
            }
            FetchAttr::BodySection {
                section,
                partial: range,
                ..
            } => {
                items.extend_from_slice(format!("BODY[{}]", section_name(section)).as_bytes());
                if let Some((o, _)) = range {
                    items.extend_from_slice(format!("<{o}>").as_bytes());
                }
                items.push(b' ');
                let data = section_bytes(m.raw, m.msg, section).unwrap_or_default();
                body_literal(items, partial(&data, *range));
            }
            FetchAttr::Binary {
                part,
                partial: range,
                ..
            } => {
                let name: Vec<String> = part.iter().map(u32::to_string).collect();
                items.extend_from_slice(format!("BINARY[{}]", name.join(".")).as_bytes());
                if let Some((o, _)) = range {
                    items.extend_from_slice(format!("<{o}>").as_bytes());
                }
                items.push(b' ');
                match binary_bytes(m.raw, m.msg, part) {
                    Ok(d) => literal(items, partial(&d, *range)),
                    Err(BinaryError::NoPart) => literal(items, b""),
                    Err(e) => {
                        items.truncate(start);
                        return Err(e);
                    }
                }
            }
            FetchAttr::BinarySize(part) => {
                let name: Vec<String> = part.iter().map(u32::to_string).collect();
                let n = match binary_bytes(m.raw, m.msg, part) {
                    Ok(d) => d.len(),
                    Err(BinaryError::NoPart) => 0,
                    Err(e) => {
                        items.truncate(start);
                        return Err(e);
                    }
                };
                items.extend_from_slice(format!("BINARY.SIZE[{}] {n}", name.join(".")).as_bytes());
            }
        }
    }
    items.extend_from_slice(b")\r\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{Command, CommandBody, Event, Parser};
    use crate::structure::parse;

    const RAW: &str = "From: a@b.c\r\nSubject: hi\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\nAGE=\r\n--b--\r\n";

    fn fetch(items: &str) -> String {
        let mut p = Parser::default();
        let attrs = match p.feed(format!("a UID FETCH 1 {items}\r\n").as_bytes()).1 {
            Event::Command(Command {
                body: CommandBody::Fetch { attrs, .. },
                ..
            }) => attrs,
            e => panic!("{e:?}"),
        };
        let msg = parse(RAW.as_bytes());
        let flags = vec!["\\Seen".to_string(), "$Work".to_string()];
        let input = FetchInput {
            seq: 4,
            uid: 40,
            flags: &flags,
            recent: true,
            internal_date: 837_596_665,
            zone_minutes: -420,
            modseq: 9,
            raw: RAW.as_bytes(),
            msg: msg.as_ref(),
            utf8: false,
        };
        let mut out = Vec::new();
        fetch_response(&mut out, &attrs, &input, true).expect("fetch");
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn simple_items() {
        assert_eq!(
            fetch("(FLAGS INTERNALDATE RFC822.SIZE MODSEQ)"),
            format!(
                "* 4 FETCH (UID 40 FLAGS (\\Seen $Work \\Recent) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE {} MODSEQ (9))\r\n",
                RAW.len()
            )
        );
        assert_eq!(fetch("UID"), "* 4 FETCH (UID 40)\r\n");
    }

    #[test]
    fn sections_and_partial() {
        assert_eq!(
            fetch("(BODY.PEEK[HEADER.FIELDS (subject)] BODY[1]<1.2>)"),
            "* 4 FETCH (UID 40 BODY[HEADER.FIELDS (SUBJECT)] {15}\r\nSubject: hi\r\n\r\n BODY[1]<1> {2}\r\nGE)\r\n"
        );
        assert_eq!(
            fetch("BINARY.PEEK[1]"),
            "* 4 FETCH (UID 40 BINARY[1] ~{2}\r\n\0a)\r\n"
        );
        assert_eq!(
            fetch("BINARY.SIZE[1]"),
            "* 4 FETCH (UID 40 BINARY.SIZE[1] 2)\r\n"
        );
        assert_eq!(fetch("BODY[9]"), "* 4 FETCH (UID 40 BODY[9] {0}\r\n)\r\n");
        assert!(fetch("RFC822.HEADER").contains("RFC822.HEADER {71}\r\nFrom: a@b.c\r\n"));
    }

    #[test]
    fn seen_and_needs() {
        let p = |s: &str| {
            let mut p = Parser::default();
            match p.feed(format!("a FETCH 1 {s}\r\n").as_bytes()).1 {
                Event::Command(Command {
                    body: CommandBody::Fetch { attrs, .. },
                    ..
                }) => attrs,
                e => panic!("{e:?}"),
            }
        };
        assert!(
            implies_seen(&p("BODY[]"))
                && implies_seen(&p("RFC822"))
                && implies_seen(&p("BINARY[1]"))
        );
        assert!(!implies_seen(&p(
            "(BODY.PEEK[] RFC822.HEADER BINARY.PEEK[1] ENVELOPE)"
        )));
        assert!(
            !needs_message(&p("(FLAGS UID MODSEQ INTERNALDATE)")) && needs_message(&p("ENVELOPE"))
        );
        // The whole message and its size are sent without a MIME parse.
        assert!(!needs_parse(&p(
            "(BODY.PEEK[] RFC822 RFC822.SIZE FLAGS UID)"
        )));
        for parsed in [
            "BODY[TEXT]",
            "BODY[1]",
            "RFC822.HEADER",
            "BINARY[]",
            "BODYSTRUCTURE",
        ] {
            assert!(needs_parse(&p(parsed)), "{parsed}");
        }
    }
}
