//! RFC 5322 address lists parsed from the raw header value for ENVELOPE:
//! display names stay as sent (encoded words undecoded, quotes removed),
//! groups become the start and end markers of RFC 3501, and broken
//! addresses come out as Dovecot shows them (MISSING_MAILBOX,
//! MISSING_DOMAIN). mail-parser's own address parser decodes names, which
//! ENVELOPE must not do, so this one is ours.

/// One ENVELOPE address-list element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvItem {
    /// An address (name, source route, mailbox, host).
    Addr {
        /// Display name (or a comment), raw.
        name: Option<Vec<u8>>,
        /// Source route (`@a,@b`).
        adl: Option<Vec<u8>>,
        /// Local part; None when missing.
        mailbox: Option<Vec<u8>>,
        /// Domain; None when missing.
        host: Option<Vec<u8>>,
    },
    /// Start of a group: its name.
    GroupStart(Vec<u8>),
    /// End of a group.
    GroupEnd,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(Vec<u8>, bool), // text, was quoted
    Special(u8),
    DomainLiteral(Vec<u8>),
    Comment(Vec<u8>),
}

fn is_special(c: u8) -> bool {
    matches!(
        c,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b':' | b';' | b'@' | b'\\' | b',' | b'"'
    )
}

fn tokenize(v: &[u8]) -> Vec<Tok> {
    let mut t = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let c = v[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => {
                let mut depth = 0usize;
                let mut text = Vec::new();
                while i < v.len() {
                    let c = v[i];
                    i += 1;
                    match c {
                        b'\\' if i < v.len() => {
                            text.push(v[i]);
                            i += 1;
                        }
                        b'(' => {
                            if depth > 0 {
                                text.push(c);
                            }
                            depth += 1;
                        }
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                            text.push(c);
                        }
                        _ => text.push(c),
                    }
                }
                t.push(Tok::Comment(text));
            }
            b'"' => {
                i += 1;
                let mut text = Vec::new();
                while i < v.len() && v[i] != b'"' {
                    if v[i] == b'\\' && i + 1 < v.len() {
                        i += 1;
                    }
                    if v[i] != b'\r' && v[i] != b'\n' {
                        text.push(v[i]);
                    }
                    i += 1;
                }
                i += 1;
                t.push(Tok::Word(text, true));
            }
            b'[' => {
                let start = i;
                while i < v.len() && v[i] != b']' {
                    i += 1;
                }
                i = (i + 1).min(v.len());
                t.push(Tok::DomainLiteral(v[start..i].to_vec()));
            }
            c if is_special(c) => {
                t.push(Tok::Special(c));
                i += 1;
            }
            _ => {
                let start = i;
                while i < v.len()
                    && !is_special(v[i])
                    && !matches!(v[i], b' ' | b'\t' | b'\r' | b'\n')
                {
                    i += 1;
                }
                t.push(Tok::Word(v[start..i].to_vec(), false));
            }
        }
    }
    t
}

fn join(words: &[Vec<u8>]) -> Vec<u8> {
    words.join(&b' ')
}

/// Parse an address-list header value (raw bytes).
pub fn parse_address_list(v: &[u8]) -> Vec<EnvItem> {
    let toks = tokenize(v);
    let mut out = Vec::new();
    let mut i = 0;
    let mut in_group = false;
    while i < toks.len() {
        let mut words: Vec<Vec<u8>> = Vec::new();
        let mut quoted_any = false;
        let mut comment: Option<Vec<u8>> = None;
        // Phrase (or local part) words up to a special.
        while let Some(t) = toks.get(i) {
            match t {
                Tok::Word(w, q) => {
                    words.push(w.clone());
                    quoted_any |= *q;
                }
                Tok::Comment(c) => comment = comment.or(Some(c.clone())),
                Tok::DomainLiteral(d) => words.push(d.clone()),
                Tok::Special(_) => break,
            }
            i += 1;
        }
        let next = match toks.get(i) {
            Some(Tok::Special(c)) => Some(*c),
            _ => None,
        };
        i += 1;
        match next {
            Some(b'<') => {
                let mut adl = Vec::new();
                let mut local: Vec<u8> = Vec::new();
                let mut host: Vec<u8> = Vec::new();
                let mut at = false;
                // Source route: @a,@b:
                if matches!(toks.get(i), Some(Tok::Special(b'@'))) {
                    while let Some(t) = toks.get(i) {
                        i += 1;
                        match t {
                            Tok::Special(b':') => break,
                            Tok::Special(b'>') => {
                                i -= 1;
                                break;
                            }
                            Tok::Special(c) => adl.push(*c),
                            Tok::Word(w, _) | Tok::DomainLiteral(w) => adl.extend_from_slice(w),
                            Tok::Comment(_) => {}
                        }
                    }
                }
                while let Some(t) = toks.get(i) {
                    i += 1;
                    match t {
                        Tok::Special(b'>') => break,
                        Tok::Special(b'@') => at = true,
                        Tok::Word(w, _) | Tok::DomainLiteral(w) => {
                            if at {
                                host.extend_from_slice(w)
                            } else {
                                local.extend_from_slice(w)
                            }
                        }
                        Tok::Special(b'.') => {}
                        _ => {}
                    }
                }
                let name = if words.is_empty() {
                    comment
                } else {
                    Some(join(&words))
                };
                out.push(EnvItem::Addr {
                    name,
                    adl: (!adl.is_empty()).then_some(adl),
                    mailbox: (!local.is_empty()).then_some(local),
                    host: (!host.is_empty()).then_some(host),
                });
                skip_to_separator(&toks, &mut i, &mut in_group, &mut out);
            }
            Some(b':') if !in_group => {
                out.push(EnvItem::GroupStart(join(&words)));
                in_group = true;
            }
            Some(b'@') => {
                let mut host = Vec::new();
                while let Some(t) = toks.get(i) {
                    match t {
                        Tok::Word(w, _) | Tok::DomainLiteral(w) => {
                            host.extend_from_slice(w);
                            i += 1;
                        }
                        Tok::Comment(c) => {
                            comment = comment.or(Some(c.clone()));
                            i += 1;
                        }
                        Tok::Special(_) => break,
                    }
                }
                let local: Vec<u8> = words.concat();
                out.push(EnvItem::Addr {
                    name: comment,
                    adl: None,
                    mailbox: (!local.is_empty()).then_some(local),
                    host: (!host.is_empty()).then_some(host),
                });
                skip_to_separator(&toks, &mut i, &mut in_group, &mut out);
            }
            sep => {
                if !words.is_empty() {
                    if words.len() == 1 && !quoted_any {
                        let w = words.pop().unwrap_or_default();
                        out.push(EnvItem::Addr {
                            name: comment,
                            adl: None,
                            mailbox: Some(w),
                            host: None,
                        });
                    } else {
                        out.push(EnvItem::Addr {
                            name: Some(join(&words)),
                            adl: None,
                            mailbox: None,
                            host: None,
                        });
                    }
                }
                if sep == Some(b';') && in_group {
                    out.push(EnvItem::GroupEnd);
                    in_group = false;
                }
            }
        }
    }
    if in_group {
        out.push(EnvItem::GroupEnd);
    }
    out
}

/// After an address: skip to the next ',' (or ';' ending a group).
fn skip_to_separator(toks: &[Tok], i: &mut usize, in_group: &mut bool, out: &mut Vec<EnvItem>) {
    while let Some(t) = toks.get(*i) {
        *i += 1;
        match t {
            Tok::Special(b',') => return,
            Tok::Special(b';') if *in_group => {
                out.push(EnvItem::GroupEnd);
                *in_group = false;
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(name: Option<&str>, mailbox: Option<&str>, host: Option<&str>) -> EnvItem {
        EnvItem::Addr {
            name: name.map(|s| s.as_bytes().to_vec()),
            adl: None,
            mailbox: mailbox.map(|s| s.as_bytes().to_vec()),
            host: host.map(|s| s.as_bytes().to_vec()),
        }
    }

    #[test]
    fn forms() {
        assert_eq!(
            parse_address_list(b" \"John Klensin\" <KLENSIN@MIT.EDU>, minutes@CNRI.Reston.VA.US"),
            vec![
                addr(Some("John Klensin"), Some("KLENSIN"), Some("MIT.EDU")),
                addr(None, Some("minutes"), Some("CNRI.Reston.VA.US"))
            ]
        );
        assert_eq!(
            parse_address_list(b"=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>"),
            vec![addr(
                Some("=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?="),
                Some("keld"),
                Some("dkuug.dk")
            )]
        );
        assert_eq!(
            parse_address_list(b"a@b.c (Real Name)"),
            vec![addr(Some("Real Name"), Some("a"), Some("b.c"))]
        );
        assert_eq!(
            parse_address_list(b"Friends: a@x.org, b@y.org;, c@z"),
            vec![
                EnvItem::GroupStart(b"Friends".to_vec()),
                addr(None, Some("a"), Some("x.org")),
                addr(None, Some("b"), Some("y.org")),
                EnvItem::GroupEnd,
                addr(None, Some("c"), Some("z"))
            ]
        );
        assert_eq!(
            parse_address_list(b"undisclosed-recipients:;"),
            vec![
                EnvItem::GroupStart(b"undisclosed-recipients".to_vec()),
                EnvItem::GroupEnd
            ]
        );
        assert_eq!(
            parse_address_list(b"broken address without at"),
            vec![addr(Some("broken address without at"), None, None)]
        );
        assert_eq!(
            parse_address_list(b"user"),
            vec![addr(None, Some("user"), None)]
        );
        assert_eq!(
            parse_address_list(b"J. Smith <js@x>"),
            vec![addr(Some("J. Smith"), Some("js"), Some("x"))]
        );
        assert_eq!(
            parse_address_list(b"<@r1,@r2:u@h>"),
            vec![EnvItem::Addr {
                name: None,
                adl: Some(b"@r1,@r2".to_vec()),
                mailbox: Some(b"u".to_vec()),
                host: Some(b"h".to_vec())
            }]
        );
        assert_eq!(
            parse_address_list(b"u@[1.2.3.4]"),
            vec![addr(None, Some("u"), Some("[1.2.3.4]"))]
        );
        assert_eq!(parse_address_list(b""), vec![]);
        assert_eq!(parse_address_list(b",,"), vec![]);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(v in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = parse_address_list(&v);
        }
    }
}
