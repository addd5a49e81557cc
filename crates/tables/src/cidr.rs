//! cidr: tables (cidr_table(5)): rules tried in order against an IPv4 or
//! IPv6 address; the first match returns its result.
//!
//! ```text
//! 192.168.0.0/16      result   # the key is in the network
//! 10.1.2.3            result   # the key is this address (a /32 or /128)
//! !10.0.0.0/8         result   # the key is not in the network
//! [2001:db8::]/32     result   # IPv6, brackets optional
//! if 10.0.0.0/8       # the rules up to endif apply only to keys in
//! ...                 #   the network (if !pattern: not in it)
//! endif
//! ```
//!
//! An IPv4 pattern matches IPv4 keys only, an IPv6 pattern IPv6 keys only
//! (as Postfix); a key that is not an address matches nothing (a `!` rule
//! neither). A pattern whose address has bits set past the prefix length
//! is refused with the network Postfix suggests, as is a prefix past 32 or
//! 128. Results are returned as written (no `$1` substitution). As in the
//! other file tables here, a malformed rule is an error naming file and
//! line, where Postfix logs a warning and skips the rule.

use std::net::IpAddr;
use std::path::Path;

use crate::text::{logical_lines, read_text};
use crate::{Error, SyntaxError};

/// A network: address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn contains(&self, key: IpAddr) -> bool {
        match (self.addr, key) {
            (IpAddr::V4(n), IpAddr::V4(k)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(k) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(k)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(k) & mask
            }
            _ => false,
        }
    }
}

#[derive(Debug)]
enum Rule {
    Match {
        net: Net,
        negate: bool,
        result: String,
    },
    If {
        net: Net,
        negate: bool,
        /// Index of the matching `endif`.
        end: usize,
    },
    Endif,
}

/// A parsed cidr: table.
#[derive(Debug)]
pub(crate) struct CidrTable {
    rules: Vec<Rule>,
}

impl CidrTable {
    /// Reads and parses a table file.
    pub(crate) fn open(path: &Path) -> Result<CidrTable, Error> {
        let text = read_text(path)?;
        CidrTable::parse(path, &text)
    }

    /// Parses table text; `path` is used in error messages only.
    pub(crate) fn parse(path: &Path, text: &str) -> Result<CidrTable, Error> {
        let mut warnings = Vec::new();
        let mut rules = Vec::new();
        let mut open_ifs: Vec<(usize, usize)> = Vec::new();
        for line in logical_lines(path, text, &mut warnings)? {
            let err = |kind| Error::syntax(path, line.line, kind);
            let rule = parse_rule(&line.text).map_err(err)?;
            match &rule {
                Rule::If { .. } => open_ifs.push((rules.len(), line.line)),
                Rule::Endif => {
                    let (start, _) = open_ifs
                        .pop()
                        .ok_or_else(|| err(SyntaxError::EndifWithoutIf))?;
                    let here = rules.len();
                    if let Some(Rule::If { end, .. }) = rules.get_mut(start) {
                        *end = here;
                    }
                }
                Rule::Match { .. } => {}
            }
            rules.push(rule);
        }
        if let Some((_, line)) = open_ifs.pop() {
            return Err(Error::syntax(path, line, SyntaxError::MissingEndif));
        }
        Ok(CidrTable { rules })
    }

    /// The result of the first rule that matches `key`.
    pub(crate) fn lookup(&self, key: &str) -> Option<String> {
        let key = parse_key(key)?;
        let mut i = 0usize;
        while let Some(rule) = self.rules.get(i) {
            match rule {
                Rule::If { net, negate, end } => {
                    if net.contains(key) == *negate {
                        i = *end;
                    }
                }
                Rule::Endif => {}
                Rule::Match {
                    net,
                    negate,
                    result,
                } => {
                    if net.contains(key) != *negate {
                        return Some(result.clone());
                    }
                }
            }
            i = i.saturating_add(1);
        }
        None
    }
}

/// A search key: an address, IPv6 possibly in brackets; an IPv6 zone
/// (`%eth0`) is ignored.
fn parse_key(key: &str) -> Option<IpAddr> {
    let key = key.trim();
    let key = key
        .strip_prefix('[')
        .and_then(|k| k.strip_suffix(']'))
        .unwrap_or(key);
    let key = key.strip_prefix("IPv6:").unwrap_or(key);
    let key = key.split_once('%').map_or(key, |(a, _)| a);
    key.parse().ok()
}

fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    match text.find(char::is_whitespace) {
        Some(i) => (&text[..i], text[i..].trim()),
        None => (text, ""),
    }
}

fn parse_rule(text: &str) -> Result<Rule, SyntaxError> {
    let (first, rest) = split_word(text);
    if first.eq_ignore_ascii_case("endif") {
        return if rest.is_empty() {
            Ok(Rule::Endif)
        } else {
            Err(SyntaxError::ExtraText)
        };
    }
    if first.eq_ignore_ascii_case("if") {
        let (pattern, extra) = split_word(rest);
        if !extra.is_empty() {
            return Err(SyntaxError::ExtraText);
        }
        let (net, negate) = parse_pattern(pattern)?;
        return Ok(Rule::If {
            net,
            negate,
            end: 0,
        });
    }
    let (net, negate) = parse_pattern(first)?;
    Ok(Rule::Match {
        net,
        negate,
        result: rest.to_string(),
    })
}

/// `[!]address[/prefix]`, IPv6 optionally in brackets (`[::1]/128`).
fn parse_pattern(text: &str) -> Result<(Net, bool), SyntaxError> {
    let bad = || SyntaxError::BadAddressPattern {
        text: text.to_string(),
    };
    if text.is_empty() {
        return Err(SyntaxError::ExpectedPattern);
    }
    let (negate, body) = match text.strip_prefix('!') {
        Some(b) => (true, b),
        None => (false, text),
    };
    let (addr, prefix) = match body.rsplit_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (body, None),
    };
    let addr = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(bad()),
            }
        }
        Some(_) => return Err(bad()),
    };
    let net = Net { addr, prefix };
    let masked = match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    };
    if masked != addr {
        return Err(SyntaxError::NonNullHostBits {
            text: body.to_string(),
            suggestion: format!("{masked}/{prefix}"),
        });
    }
    Ok((net, negate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> CidrTable {
        CidrTable::parse(Path::new("t.cidr"), text).unwrap()
    }

    fn err(text: &str) -> (usize, SyntaxError) {
        match CidrTable::parse(Path::new("t.cidr"), text).unwrap_err() {
            Error::Syntax { line, kind, .. } => (line, kind),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn first_match_ipv4_and_ipv6() {
        let t = table(
            "# comment\n192.168.1.1 exact\n192.168.0.0/16 REJECT private\n\
             0.0.0.0/0 any-v4\n[2001:db8::]/32 doc\n::1 loopback\n::/0 any-v6\n",
        );
        assert_eq!(t.lookup("192.168.1.1").as_deref(), Some("exact"));
        assert_eq!(t.lookup("192.168.7.9").as_deref(), Some("REJECT private"));
        assert_eq!(t.lookup("10.0.0.1").as_deref(), Some("any-v4"));
        assert_eq!(t.lookup("2001:db8:1::5").as_deref(), Some("doc"));
        assert_eq!(t.lookup("[2001:db8::1]").as_deref(), Some("doc"));
        assert_eq!(t.lookup("::1").as_deref(), Some("loopback"));
        assert_eq!(t.lookup("fe80::1%eth0").as_deref(), Some("any-v6"));
        assert_eq!(t.lookup("example.com"), None);
        assert_eq!(t.lookup(""), None);
    }

    #[test]
    fn v4_patterns_do_not_match_v6_keys() {
        let t = table("0.0.0.0/0 v4\n");
        assert_eq!(t.lookup("::ffff:10.0.0.1"), None);
        assert_eq!(t.lookup("10.0.0.1").as_deref(), Some("v4"));
    }

    #[test]
    fn negation_and_if_endif() {
        let t = table(
            "if 10.0.0.0/8\n  \n!10.1.0.0/16 outside-10.1\nendif\n\
             if !172.16.0.0/12\n192.0.2.0/24 test-net\nendif\n172.16.0.0/12 rfc1918\n",
        );
        assert_eq!(t.lookup("10.2.3.4").as_deref(), Some("outside-10.1"));
        assert_eq!(t.lookup("10.1.3.4"), None);
        assert_eq!(t.lookup("192.0.2.9").as_deref(), Some("test-net"));
        assert_eq!(t.lookup("172.17.0.1").as_deref(), Some("rfc1918"));
        assert_eq!(t.lookup("8.8.8.8"), None);
    }

    #[test]
    fn bad_patterns_name_the_line() {
        let (line, kind) = err("1.2.3.0/24 ok\n1.2.3.4/24 x\n");
        assert_eq!(line, 2);
        assert_eq!(
            kind.to_string(),
            "non-null host address bits in \"1.2.3.4/24\", perhaps you should use \"1.2.3.0/24\" instead"
        );
        assert!(matches!(
            err("1.2.3.0/33 x\n").1,
            SyntaxError::BadAddressPattern { .. }
        ));
        assert!(matches!(
            err("::/129 x\n").1,
            SyntaxError::BadAddressPattern { .. }
        ));
        assert!(matches!(
            err("host.example x\n").1,
            SyntaxError::BadAddressPattern { .. }
        ));
        assert!(matches!(
            err("1.2.3.0/x x\n").1,
            SyntaxError::BadAddressPattern { .. }
        ));
        assert_eq!(err("endif\n").1, SyntaxError::EndifWithoutIf);
        assert_eq!(err("if 10.0.0.0/8\n").1, SyntaxError::MissingEndif);
        assert_eq!(
            err("if 10.0.0.0/8 extra\nendif\n").1,
            SyntaxError::ExtraText
        );
    }

    proptest::proptest! {
        #[test]
        fn random_tables_never_panic(text in "[0-9a-f:./!\\[\\] \nifend]{0,120}", key in "[0-9a-f:.\\[\\]%]{0,40}") {
            if let Ok(t) = CidrTable::parse(Path::new("t"), &text) {
                let _ = t.lookup(&key);
            }
        }
    }
}
