//! `BODY[section]<partial>` and `BINARY[section]` extraction (RFC 3501 6.4.5,
//! RFC 9051 6.4.5): the whole message, HEADER, HEADER.FIELDS (...),
//! HEADER.FIELDS.NOT (...), TEXT, MIME and part numbers, with partial
//! ranges; BINARY decodes base64 and quoted-printable.

use super::PartRef;
use crate::parse::{Section, SectionText};
use mail_parser::Message;
use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use std::borrow::Cow;

/// The octets of `BODY[section]` (before any partial range). `None`: the
/// part does not exist (the client gets an empty string or NO).
pub fn section_bytes<'m>(
    raw: &'m [u8],
    msg: Option<&'m Message<'_>>,
    s: &Section,
) -> Option<Cow<'m, [u8]>> {
    let Some(msg) = msg else {
        // Unparsed: only the whole message, its header (none) and text.
        return match (&s.part[..], &s.text) {
            ([], None) => Some(Cow::Borrowed(raw)),
            ([], Some(SectionText::Text)) => Some(Cow::Borrowed(raw)),
            ([], Some(_)) => Some(Cow::Borrowed(&b""[..])),
            _ => None,
        };
    };
    let root = PartRef::root(msg);
    if s.part.is_empty() {
        return Some(match &s.text {
            None => Cow::Borrowed(raw),
            Some(t) => text_of(root, t),
        });
    }
    let p = root.descend(&s.part)?;
    Some(match &s.text {
        None => Cow::Borrowed(p.body_bytes()),
        Some(SectionText::Mime) => Cow::Borrowed(p.header_bytes()),
        Some(t) => match p.nested() {
            Some(m) => text_of(PartRef::root(m), t),
            None => Cow::Borrowed(&b""[..]),
        },
    })
}

fn text_of<'m>(root: PartRef<'m, '_>, t: &SectionText) -> Cow<'m, [u8]> {
    match t {
        SectionText::Header | SectionText::Mime => Cow::Borrowed(root.header_bytes()),
        SectionText::Text => Cow::Borrowed(root.body_bytes()),
        SectionText::HeaderFields(names) => {
            Cow::Owned(filter_fields(root.header_bytes(), names, true))
        }
        SectionText::HeaderFieldsNot(names) => {
            Cow::Owned(filter_fields(root.header_bytes(), names, false))
        }
    }
}

/// The header fields whose names are (`keep`) or are not in `names`
/// (upper case), in order, followed by a blank line when any field was
/// kept or the header had one (as Dovecot does).
pub fn filter_fields(header: &[u8], names: &[String], keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for field in fields(header) {
        let name = field
            .split(|&c| c == b':')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        let listed = names
            .iter()
            .any(|n| n.as_bytes().eq_ignore_ascii_case(name));
        if listed == keep {
            out.extend_from_slice(field);
        }
    }
    if !out.is_empty()
        || header == b"\r\n"
        || header.ends_with(b"\r\n\r\n")
        || header.ends_with(b"\n\n")
    {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Split a header block into fields (each with its continuation lines
/// and line end); the blank line and anything after it are left out.
pub fn fields(header: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let rest = header.get(pos..)?;
        if rest.is_empty() || rest.starts_with(b"\r\n") || rest.starts_with(b"\n") {
            return None;
        }
        let mut end = 0;
        loop {
            match rest[end..].iter().position(|&c| c == b'\n') {
                None => {
                    end = rest.len();
                    break;
                }
                Some(i) => {
                    end += i + 1;
                    if !matches!(rest.get(end), Some(b' ') | Some(b'\t')) {
                        break;
                    }
                }
            }
        }
        pos += end;
        Some(&rest[..end])
    })
}

/// Apply `<offset.count>`: the octets from `offset`, at most `count`.
pub fn partial(data: &[u8], range: Option<(u64, u64)>) -> &[u8] {
    match range {
        None => data,
        Some((o, n)) => {
            let start = usize::try_from(o).unwrap_or(usize::MAX).min(data.len());
            let end = start
                .saturating_add(usize::try_from(n).unwrap_or(usize::MAX))
                .min(data.len());
            &data[start..end]
        }
    }
}

/// Why BINARY cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryError {
    /// No such part.
    NoPart,
    /// The content-transfer-encoding is unknown or the data does not decode:
    /// `NO [UNKNOWN-CTE]`.
    UnknownCte,
}

/// The decoded octets of `BINARY[part]` (the whole message for `[]`).
pub fn binary_bytes<'m>(
    raw: &'m [u8],
    msg: Option<&'m Message<'_>>,
    part: &[u32],
) -> Result<Cow<'m, [u8]>, BinaryError> {
    if part.is_empty() {
        return Ok(Cow::Borrowed(raw));
    }
    let msg = msg.ok_or(BinaryError::NoPart)?;
    let p = PartRef::root(msg)
        .descend(part)
        .ok_or(BinaryError::NoPart)?;
    let body = p.body_bytes();
    let cte = p
        .header_unfolded("Content-Transfer-Encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    match cte.trim_ascii() {
        b"" | b"7bit" | b"8bit" | b"binary" => Ok(Cow::Borrowed(body)),
        b"base64" => {
            let clean: Vec<u8> = body
                .iter()
                .copied()
                .filter(|c| !c.is_ascii_whitespace())
                .collect();
            base64_decode(&clean)
                .map(Cow::Owned)
                .ok_or(BinaryError::UnknownCte)
        }
        b"quoted-printable" => quoted_printable_decode(body)
            .map(Cow::Owned)
            .ok_or(BinaryError::UnknownCte),
        _ => Err(BinaryError::UnknownCte),
    }
}
