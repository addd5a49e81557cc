//! resolv.conf(5): the `nameserver`, `search`/`domain` and `options
//! timeout:N attempts:N ndots:N` lines that a stub resolver needs. Read
//! before chroot; unknown lines and options are ignored as the C library
//! ignores them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The most nameservers used (as the C resolver: MAXNS = 3).
pub const MAX_SERVERS: usize = 3;

/// The most search domains kept (glibc: 6).
pub const MAX_SEARCH: usize = 6;

/// Upper bounds the C library applies to `timeout:` and `attempts:`.
const MAX_TIMEOUT_SECS: u64 = 30;
const MAX_ATTEMPTS: u32 = 5;

/// What a resolv.conf says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    /// Nameservers in order (at least one: 127.0.0.1 when none is named).
    pub servers: Vec<SocketAddr>,
    /// Search domains, without trailing dots.
    pub search: Vec<String>,
    /// Per-query timeout (`options timeout:N`, default 5 s).
    pub timeout: Duration,
    /// Rounds over all servers (`options attempts:N`, default 2).
    pub attempts: u32,
    /// A name with at least this many dots is tried as is first (`ndots:N`, default 1).
    pub ndots: usize,
}

impl Default for ResolvConf {
    fn default() -> ResolvConf {
        ResolvConf {
            servers: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53)],
            search: Vec::new(),
            timeout: Duration::from_secs(5),
            attempts: 2,
            ndots: 1,
        }
    }
}

impl ResolvConf {
    /// Parses resolv.conf text. A nameserver may carry a port for tests
    /// (`127.0.0.1#5353` or `127.0.0.1:5353` or `[::1]:5353`).
    pub fn parse(text: &str) -> ResolvConf {
        let mut conf = ResolvConf::default();
        let mut servers = Vec::new();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {}
                Some("search") => {
                    conf.search = words
                        .take(MAX_SEARCH)
                        .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
                        .filter(|d| !d.is_empty())
                        .collect();
                }
                Some("domain") => {
                    conf.search = words
                        .next()
                        .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
                        .filter(|d| !d.is_empty())
                        .into_iter()
                        .collect();
                }
                Some("options") => words.for_each(|o| conf.option(o)),
                _ => {}
            }
        }
        // nameserver lines again, without cutting at `#` (ADDR#PORT).
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if words.next() != Some("nameserver") {
                continue;
            }
            if let Some(sa) = words.next().and_then(parse_server)
                && servers.len() < MAX_SERVERS
            {
                servers.push(sa);
            }
        }
        if !servers.is_empty() {
            conf.servers = servers;
        }
        conf
    }

    fn option(&mut self, o: &str) {
        let Some((name, value)) = o.split_once(':') else {
            return;
        };
        let Ok(n) = value.parse::<u64>() else { return };
        match name {
            "timeout" => self.timeout = Duration::from_secs(n.clamp(1, MAX_TIMEOUT_SECS)),
            "attempts" => {
                self.attempts = u32::try_from(n)
                    .unwrap_or(MAX_ATTEMPTS)
                    .clamp(1, MAX_ATTEMPTS)
            }
            "ndots" => self.ndots = usize::try_from(n.min(15)).unwrap_or(1),
            _ => {}
        }
    }
}

/// `ADDR`, `ADDR#PORT`, `ADDR:PORT` (IPv4) or `[ADDR]:PORT`.
fn parse_server(s: &str) -> Option<SocketAddr> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa);
    }
    if let Some((a, p)) = s.split_once('#') {
        return Some(SocketAddr::new(a.parse().ok()?, p.parse().ok()?));
    }
    // fe80::1%eth0: the zone is not supported; drop it.
    let s = s.split('%').next().unwrap_or(s);
    s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_search_and_options() {
        let c = ResolvConf::parse(
            "# comment\nsearch Example.org. lab.example.org\nnameserver 192.0.2.1\n\
             nameserver 127.0.0.1#5353\nnameserver ::1\nnameserver 192.0.2.9\n\
             options rotate timeout:2 attempts:3 ndots:2 bogus:x\n",
        );
        assert_eq!(
            c.servers,
            vec![
                "192.0.2.1:53".parse().unwrap(),
                "127.0.0.1:5353".parse().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
        assert_eq!(c.search, vec!["example.org", "lab.example.org"]);
        assert_eq!(c.timeout, Duration::from_secs(2));
        assert_eq!(c.attempts, 3);
        assert_eq!(c.ndots, 2);
    }

    #[test]
    fn defaults_and_bounds() {
        let d = ResolvConf::parse("");
        assert_eq!(d, ResolvConf::default());
        assert_eq!(d.servers, vec!["127.0.0.1:53".parse().unwrap()]);
        let c =
            ResolvConf::parse("options timeout:0 attempts:99\ndomain x.test\nnameserver junk\n");
        assert_eq!(c.timeout, Duration::from_secs(1));
        assert_eq!(c.attempts, 5);
        assert_eq!(c.search, vec!["x.test"]);
        assert_eq!(c.servers, ResolvConf::default().servers);
    }
}
