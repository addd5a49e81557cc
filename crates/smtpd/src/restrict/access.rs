//! access(5) tables for check_client_access, check_helo_access,
//! check_sender_access and check_recipient_access: the keys each looks
//! up, in Postfix's order, and what a table's value means.
//!
//! Keys:
//! - client: the host name, then its parent domains (`example.com`, `com`
//!   when smtpd_access_maps is in parent_domain_matches_subdomains, else
//!   `.example.com`, `.com`), then the address and its prefixes
//!   (`192.0.2.1`, `192.0.2`, `192.0`, `192`; IPv6 `2001:db8::1`,
//!   `2001:db8:`, `2001:db8`, `2001`, splitting at the rightmost `:`).
//! - helo: the name and its parent domains.
//! - sender and recipient (after trivial-rewrite): `user+ext@domain`,
//!   `user@domain`, `domain` and its parents, `user+ext@`, `user@`; the
//!   null sender as smtpd_null_access_lookup_key (`<>`).
//!
//! Pattern tables (regexp:, pcre:) see only the first, full key.

/// One key and whether it is a partial (derived) key, which pattern
/// tables skip.
pub(crate) type Key = (String, bool);

/// Keys for a host name: the name, then parent domains; none past the
/// first for a numeric name.
pub(crate) fn domain_keys(name: &str, parent_style: bool) -> Vec<Key> {
    let name = name.to_lowercase();
    let mut keys = Vec::new();
    if name.is_empty() {
        return keys;
    }
    keys.push((name.clone(), false));
    if name.parse::<std::net::IpAddr>().is_ok()
        || name
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok()
    {
        return keys;
    }
    let mut rest = name.as_str();
    while let Some(i) = rest.get(1..).and_then(|r| r.find('.')).map(|i| i + 1) {
        let Some(dotted) = rest.get(i..) else { break };
        let key = if parent_style {
            dotted.get(1..).unwrap_or_default()
        } else {
            dotted
        };
        if key.is_empty() || key == "." {
            break;
        }
        keys.push((key.to_string(), true));
        rest = dotted;
    }
    keys
}

/// Keys for a client address: the address, then its prefixes.
pub(crate) fn addr_keys(addr: &str) -> Vec<Key> {
    let delim = if addr.contains(':') { ':' } else { '.' };
    let mut keys = Vec::new();
    let mut cur = addr.to_lowercase();
    let mut partial = false;
    loop {
        keys.push((cur.clone(), partial));
        partial = true;
        match cur.rfind(delim) {
            Some(i) if i > 0 => cur.truncate(i),
            _ => break,
        }
    }
    keys
}

/// Keys for a resolved mail address (Postfix's check_mail_access).
pub(crate) fn mail_keys(addr: &str, delimiters: &str, parent_style: bool) -> Vec<Key> {
    let full = addr.to_lowercase();
    let (local, domain) = match full.rfind('@') {
        Some(at) => (
            full.get(..at).unwrap_or_default(),
            full.get(at + 1..).unwrap_or_default(),
        ),
        None => (full.as_str(), ""),
    };
    let quote = address::quote_local;
    let split = address::split_extension(local, delimiters);
    let mut keys: Vec<Key> = Vec::new();
    let at_domain = |l: &str| {
        if domain.is_empty() {
            quote(l)
        } else {
            format!("{}@{domain}", quote(l))
        }
    };
    keys.push((at_domain(local), false));
    if let Some(e) = split {
        keys.push((at_domain(e.base), true));
    }
    if !domain.is_empty() {
        keys.extend(
            domain_keys(domain, parent_style)
                .into_iter()
                .map(|(k, _)| (k, true)),
        );
    }
    if !local.is_empty() {
        keys.push((format!("{}@", quote(local)), true));
        if let Some(e) = split {
            keys.push((format!("{}@", quote(e.base)), true));
        }
    }
    keys
}

/// What an access table's value says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// OK, RELAY or an all-numeric value: permit.
    Permit,
    /// DUNNO: as if not found, stop looking in this table.
    Dunno,
    /// REJECT [dsn] [text]: access_map_reject_code.
    Reject { dsn: String, text: String },
    /// DEFER [dsn] [text]: access_map_defer_code.
    Defer { dsn: String, text: String },
    /// DEFER_IF_PERMIT [text].
    DeferIfPermit { dsn: String, text: String },
    /// DEFER_IF_REJECT [text].
    DeferIfReject { dsn: String, text: String },
    /// 4NN/5NN [dsn] text.
    Code {
        code: u16,
        dsn: String,
        text: String,
    },
    /// HOLD [text]: hold the message, go on.
    Hold(String),
    /// DISCARD [text]: discard the message, permit.
    Discard(String),
    /// WARN / INFO [text]: log and go on.
    Log { warn: bool, text: String },
    /// FILTER transport:nexthop: send the message to this content filter.
    Filter(String),
    /// REDIRECT address: deliver the message to this address only.
    Redirect(String),
    /// BCC address: add this recipient.
    Bcc(String),
    /// PREPEND header: value: add this header at the top.
    Prepend(String),
    /// HANGUP, or FILTER / REDIRECT / BCC / PREPEND without a valid
    /// argument: logged, go on.
    Unsupported(String),
    /// Anything else: a list of restrictions to evaluate.
    Restrictions(String),
}

/// Splits `[d.d.d] text` into a DSN (or `default`) and the text; the
/// DSN's class is forced to the reply's class later.
fn dsn_split(default: &str, text: &str) -> (String, String) {
    let mut words = text.splitn(2, char::is_whitespace);
    let first = words.next().unwrap_or_default();
    if is_dsn(first) {
        (
            first.to_string(),
            words.next().unwrap_or_default().trim_start().to_string(),
        )
    } else {
        (default.to_string(), text.to_string())
    }
}

/// `[245].d{1,3}.d{1,3}`.
pub(crate) fn is_dsn(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && matches!(parts.first(), Some(&"2" | &"4" | &"5"))
        && parts
            .iter()
            .skip(1)
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `Name: value` with a valid header name.
fn is_header(text: &str) -> bool {
    text.split_once(':')
        .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_graphic() && b != b':'))
}

/// Parses an access table value (Postfix's check_table_result).
pub(crate) fn parse_action(value: &str) -> Action {
    let value = value.trim();
    let (cmd, text) = match value.find([' ', '\t']) {
        Some(i) => (
            value.get(..i).unwrap_or_default(),
            value.get(i..).unwrap_or_default().trim_start(),
        ),
        None => (value, ""),
    };
    let upper = cmd.to_ascii_uppercase();
    match upper.as_str() {
        "DUNNO" => Action::Dunno,
        "OK" | "RELAY" => Action::Permit,
        "REJECT" => {
            let (dsn, text) = dsn_split("5.7.1", text);
            Action::Reject { dsn, text }
        }
        "DEFER" => {
            let (dsn, text) = dsn_split("4.7.1", text);
            Action::Defer { dsn, text }
        }
        "DEFER_IF_PERMIT" => {
            let (dsn, text) = dsn_split("4.7.1", text);
            Action::DeferIfPermit { dsn, text }
        }
        "DEFER_IF_REJECT" => {
            let (dsn, text) = dsn_split("4.7.1", text);
            Action::DeferIfReject { dsn, text }
        }
        "HOLD" => Action::Hold(text.to_string()),
        "DISCARD" => Action::Discard(text.to_string()),
        "WARN" => Action::Log {
            warn: true,
            text: text.to_string(),
        },
        "INFO" => Action::Log {
            warn: false,
            text: text.to_string(),
        },
        "FILTER" if text.contains(':') => Action::Filter(text.to_string()),
        "REDIRECT" if text.contains('@') => Action::Redirect(text.to_string()),
        "BCC" if text.contains('@') => Action::Bcc(text.to_string()),
        "PREPEND" if is_header(text) => Action::Prepend(text.to_string()),
        "FILTER" | "REDIRECT" | "BCC" | "PREPEND" | "HANGUP" => Action::Unsupported(upper),
        _ if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => Action::Permit,
        _ if cmd.len() == 3
            && !text.is_empty()
            && matches!(cmd.as_bytes().first(), Some(b'4' | b'5'))
            && cmd.bytes().all(|b| b.is_ascii_digit()) =>
        {
            let code: u16 = cmd.parse().unwrap_or(554);
            let default = if code < 500 { "4.7.1" } else { "5.7.1" };
            let (dsn, text) = dsn_split(default, text);
            Action::Code { code, dsn, text }
        }
        _ => Action::Restrictions(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_changing_actions() {
        assert_eq!(
            parse_action("FILTER smtp:[127.0.0.1]:10025"),
            Action::Filter("smtp:[127.0.0.1]:10025".into())
        );
        assert_eq!(
            parse_action("redirect a@example.com"),
            Action::Redirect("a@example.com".into())
        );
        assert_eq!(
            parse_action("BCC b@example.com"),
            Action::Bcc("b@example.com".into())
        );
        assert_eq!(
            parse_action("PREPEND X-Seen: yes"),
            Action::Prepend("X-Seen: yes".into())
        );
        assert_eq!(parse_action("FILTER"), Action::Unsupported("FILTER".into()));
        assert_eq!(
            parse_action("PREPEND no header"),
            Action::Unsupported("PREPEND".into())
        );
        assert_eq!(parse_action("HANGUP"), Action::Unsupported("HANGUP".into()));
    }

    fn k(v: Vec<Key>) -> Vec<String> {
        v.into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn client_keys_in_postfix_order() {
        assert_eq!(
            k(domain_keys("Mail.Sub.Example.COM", true)),
            [
                "mail.sub.example.com",
                "sub.example.com",
                "example.com",
                "com"
            ]
        );
        assert_eq!(
            k(domain_keys("mail.example.com", false)),
            ["mail.example.com", ".example.com", ".com"]
        );
        assert_eq!(k(domain_keys("192.0.2.1", true)), ["192.0.2.1"]);
        assert_eq!(
            k(addr_keys("192.0.2.1")),
            ["192.0.2.1", "192.0.2", "192.0", "192"]
        );
        assert_eq!(
            k(addr_keys("2001:db8::1")),
            ["2001:db8::1", "2001:db8:", "2001:db8", "2001"]
        );
        assert!(!addr_keys("192.0.2.1")[0].1 && addr_keys("192.0.2.1")[1].1);
    }

    #[test]
    fn mail_keys_in_postfix_order() {
        assert_eq!(
            k(mail_keys("User+Tag@Sub.Example.com", "+", true)),
            [
                "user+tag@sub.example.com",
                "user@sub.example.com",
                "sub.example.com",
                "example.com",
                "com",
                "user+tag@",
                "user@"
            ]
        );
        assert_eq!(
            k(mail_keys("u@example.com", "", false)),
            ["u@example.com", "example.com", ".com", "u@"]
        );
    }

    #[test]
    fn actions() {
        assert_eq!(parse_action("OK"), Action::Permit);
        assert_eq!(parse_action("relay"), Action::Permit);
        assert_eq!(parse_action("12345"), Action::Permit);
        assert_eq!(parse_action("DUNNO whatever"), Action::Dunno);
        assert_eq!(
            parse_action("REJECT"),
            Action::Reject {
                dsn: "5.7.1".into(),
                text: "".into()
            }
        );
        assert_eq!(
            parse_action("REJECT 5.7.2 go away"),
            Action::Reject {
                dsn: "5.7.2".into(),
                text: "go away".into()
            }
        );
        assert_eq!(
            parse_action("defer busy"),
            Action::Defer {
                dsn: "4.7.1".into(),
                text: "busy".into()
            }
        );
        assert_eq!(
            parse_action("450 4.2.0 later"),
            Action::Code {
                code: 450,
                dsn: "4.2.0".into(),
                text: "later".into()
            }
        );
        assert_eq!(
            parse_action("550 no"),
            Action::Code {
                code: 550,
                dsn: "5.7.1".into(),
                text: "no".into()
            }
        );
        assert_eq!(parse_action("HOLD spam?"), Action::Hold("spam?".into()));
        assert_eq!(parse_action("DISCARD"), Action::Discard("".into()));
        assert_eq!(
            parse_action("permit_mynetworks, reject"),
            Action::Restrictions("permit_mynetworks, reject".into())
        );
        assert!(is_dsn("5.7.1") && is_dsn("4.3.0") && !is_dsn("5.7") && !is_dsn("6.1.1"));
    }

    proptest::proptest! {
        #[test]
        fn hostile_input_never_panics(s in "\\PC{0,80}", d in "[+.-]{0,3}") {
            let _ = parse_action(&s);
            let _ = domain_keys(&s, true);
            let _ = domain_keys(&s, false);
            let _ = addr_keys(&s);
            let _ = mail_keys(&s, &d, true);
        }
    }
}
