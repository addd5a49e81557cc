//! mynetworks: the networks whose clients permit_mynetworks trusts.
//!
//! An explicit `mynetworks` is a list of `net/mask` items (IPv4
//! `192.0.2.0/24`, IPv6 `[2001:db8::]/32` or `2001:db8::/32`), single
//! addresses (`192.0.2.7`, `[::1]`), `!item` exclusions (the first match
//! decides), `/file/name` (the file's words are items) and `type:table`
//! (the client address is looked up as a key). Host names are ignored
//! with a warning: trusting a client by its reverse name is not safe.
//! Without an explicit value it is computed from mynetworks_style: `host`
//! (loopback and this machine's own addresses), `subnet` (the subnets of
//! this machine's interfaces) or `class` (their whole class A/B/C
//! networks; IPv6 as subnet).

use std::net::IpAddr;

/// One parsed item.
#[derive(Debug)]
enum Item {
    Net {
        addr: IpAddr,
        prefix: u8,
        negate: bool,
    },
    Table {
        table: Box<tables::Table>,
        negate: bool,
    },
}

/// A parsed mynetworks list.
#[derive(Debug, Default)]
pub struct Networks {
    items: Vec<Item>,
}

/// Most words taken from one `/file/name` item.
const MAX_FILE_WORDS: usize = 100_000;

impl Networks {
    /// Parses a list; `warn` receives one line per ignored item.
    ///
    /// # Errors
    /// A table in the list cannot be opened, or a file cannot be read.
    pub fn parse(list: &str, warn: &mut dyn FnMut(String)) -> Result<Networks, String> {
        let mut items = Vec::new();
        for word in tables::split_list(list) {
            add(word, &mut items, warn, 0)?;
        }
        Ok(Networks { items })
    }

    /// Whether `addr` is in the list. A table that fails does not match.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let mapped = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        for item in &self.items {
            let (hit, negate) = match item {
                Item::Net {
                    addr: net,
                    prefix,
                    negate,
                } => (
                    in_net(addr, *net, *prefix) || mapped.is_some_and(|m| in_net(m, *net, *prefix)),
                    *negate,
                ),
                Item::Table { table, negate } => {
                    let key = addr.to_string();
                    (matches!(table.lookup(&key), Ok(Some(_))), *negate)
                }
            };
            if hit {
                return !negate;
            }
        }
        false
    }

    /// Whether the list holds nothing.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

fn add(
    word: &str,
    items: &mut Vec<Item>,
    warn: &mut dyn FnMut(String),
    depth: usize,
) -> Result<(), String> {
    let (negate, word) = match word.strip_prefix('!') {
        Some(w) => (true, w),
        None => (false, word),
    };
    if word.starts_with('/') {
        if depth > 5 {
            return Err(format!("{word}: files nest too deeply"));
        }
        let text = std::fs::read_to_string(word).map_err(|e| format!("open {word}: {e}"))?;
        let text: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join(" ");
        for w in tables::split_list(&text).into_iter().take(MAX_FILE_WORDS) {
            let w = if negate {
                format!("!{w}")
            } else {
                w.to_string()
            };
            add(&w, items, warn, depth + 1)?;
        }
        return Ok(());
    }
    if !word.starts_with('[') && word.contains(':') && word.parse::<IpAddr>().is_err() {
        let bare = word.split('/').next().unwrap_or(word);
        if bare.parse::<IpAddr>().is_err() {
            let table = tables::open(word, tables::Flags::default()).map_err(|e| e.to_string())?;
            items.push(Item::Table {
                table: Box::new(table),
                negate,
            });
            return Ok(());
        }
    }
    match parse_net(word) {
        Some((addr, prefix, host_bits)) => {
            if host_bits {
                warn(format!(
                    "mynetworks: non-null host address bits in \"{word}\", using the network address"
                ));
            }
            items.push(Item::Net {
                addr,
                prefix,
                negate,
            });
        }
        None => warn(format!(
            "mynetworks: ignoring \"{word}\": not a network address (host names are not trusted)"
        )),
    }
    Ok(())
}

/// `addr`, `addr/len`, `[addr]`, `[addr]/len`: the masked network, its
/// prefix length, and whether host bits were set.
fn parse_net(word: &str) -> Option<(IpAddr, u8, bool)> {
    let (a, len) = match word.rsplit_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
        None => (word, None),
    };
    let a = a
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(a);
    let addr: IpAddr = a.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = len.unwrap_or(max);
    if prefix > max {
        return None;
    }
    let masked = mask(addr, prefix);
    Some((masked, prefix, masked != addr))
}

pub(crate) use config::networks::mask;

fn in_net(addr: IpAddr, net: IpAddr, prefix: u8) -> bool {
    addr.is_ipv4() == net.is_ipv4() && mask(addr, prefix) == net
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &str) -> (Networks, Vec<String>) {
        let mut w = Vec::new();
        let n = Networks::parse(list, &mut |s| w.push(s)).unwrap();
        (n, w)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_ipv4_ipv6_and_brackets() {
        let (n, w) = nets("127.0.0.0/8, 192.0.2.7 [::1]/128 [2001:db8::]/32 10.1.0.0/16");
        assert!(w.is_empty(), "{w:?}");
        assert!(n.contains(ip("127.1.2.3")));
        assert!(n.contains(ip("192.0.2.7")));
        assert!(!n.contains(ip("192.0.2.8")));
        assert!(n.contains(ip("::1")));
        assert!(!n.contains(ip("::2")));
        assert!(n.contains(ip("2001:db8:ffff::1")));
        assert!(!n.contains(ip("2001:db9::1")));
        assert!(n.contains(ip("10.1.200.3")));
        assert!(!n.contains(ip("10.2.0.1")));
        // IPv4-mapped client addresses match IPv4 networks.
        assert!(n.contains(ip("::ffff:127.0.0.1")));
        assert!(!n.contains(ip("198.51.100.1")));
    }

    #[test]
    fn negation_host_bits_names_and_files() {
        let (n, w) = nets("!192.0.2.5 192.0.2.0/24 mail.example.com 10.0.0.1/8");
        assert!(!n.contains(ip("192.0.2.5")));
        assert!(n.contains(ip("192.0.2.6")));
        assert!(n.contains(ip("10.9.9.9")));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w.iter().any(|l| l.contains("mail.example.com")));
        assert!(w.iter().any(|l| l.contains("non-null host address bits")));
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("nets");
        std::fs::write(&f, "# trusted\n198.51.100.0/24\n[2001:db8::1]\n").unwrap();
        let (n, _) = nets(&format!("{}", f.display()));
        assert!(n.contains(ip("198.51.100.77")));
        assert!(n.contains(ip("2001:db8::1")));
        assert!(!n.contains(ip("203.0.113.1")));
        assert!(Networks::parse("/nonexistent/file", &mut |_| {}).is_err());
    }

    #[test]
    fn tables_are_looked_up_by_address() {
        let (n, _) = nets("inline:{ 203.0.113.9=ok }");
        assert!(n.contains(ip("203.0.113.9")));
        assert!(!n.contains(ip("203.0.113.10")));
    }
}
