//! The nexthop that trivial-rewrite resolved, and the servers it names
//! (Postfix's smtp_connect.c and smtp_addr.c): `domain` or `domain:port`
//! is looked up by MX (lowest preference first, equal preferences in
//! random order), falling back to the domain's own A/AAAA records when it
//! has no MX; `[host]` or `[host]:port` (also `[192.0.2.1]`) suppresses
//! the MX lookup. A null MX (RFC 7505) bounces at once. With loop
//! detection on (port 25), an MX list that reaches one of our own
//! addresses is cut there, and mail for which we are the best MX bounces
//! with "mail for X loops back to myself".

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use delivery::Outcome;

/// A parsed nexthop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Nexthop {
    /// The domain or host, without brackets.
    pub(crate) host: String,
    /// The TCP port.
    pub(crate) port: u16,
    /// Look up MX records (no brackets).
    pub(crate) mx: bool,
    /// A Unix-domain socket (LMTP `unix:PATH`) instead of host and port.
    pub(crate) path: Option<PathBuf>,
}

/// One server to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Server {
    /// Its name (the MX exchange or the host), or the address text.
    pub(crate) name: String,
    /// Where to connect (unused for a Unix-domain socket).
    pub(crate) addr: SocketAddr,
    /// A Unix-domain socket to connect to instead.
    pub(crate) path: Option<PathBuf>,
    /// Among the most preferred MX hosts (a 5xx loop then bounces).
    pub(crate) best_mx: bool,
}

impl Server {
    /// `host[addr]`, as in Postfix's log and DSN texts.
    pub(crate) fn namaddr(&self) -> String {
        match &self.path {
            Some(p) => format!("{}[{}]", self.name, p.display()),
            None => format!("{}[{}]", self.name, self.addr.ip()),
        }
    }

    /// `host[addr]:port`.
    pub(crate) fn namaddrport(&self) -> String {
        match &self.path {
            Some(_) => self.namaddr(),
            None => format!("{}[{}]:{}", self.name, self.addr.ip(), self.addr.port()),
        }
    }
}

/// Parses `[host]:port`, `[host]`, `host:port`, `host`, with an optional
/// `inet:` in front (lmtp style). `default_port` when none is given. For
/// LMTP (`lmtp`) also `unix:PATH`, and never an MX lookup.
pub(crate) fn parse(text: &str, default_port: u16, lmtp: bool) -> Result<Nexthop, String> {
    let text = text.trim();
    if lmtp && let Some(path) = text.strip_prefix("unix:") {
        if path.is_empty() || path.len() > 1000 || path.contains('\0') {
            return Err(format!("bad nexthop: {}", maillog::printable(text, 100)));
        }
        return Ok(Nexthop {
            host: String::new(),
            port: 0,
            mx: false,
            path: Some(PathBuf::from(path)),
        });
    }
    let text = text.strip_prefix("inet:").unwrap_or(text);
    let bad = || format!("bad nexthop: {}", maillog::printable(text, 100));
    let (host, port, mx) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(bad)?),
        };
        (host, port, false)
    } else {
        match text.rsplit_once(':') {
            // An IPv6 address without brackets has several colons.
            Some((h, p)) if !h.contains(':') => (h, Some(p), true),
            _ => (text, None, true),
        }
    };
    let host = host
        .strip_prefix("ipv6:")
        .or_else(|| host.strip_prefix("IPv6:"))
        .unwrap_or(host);
    if host.is_empty()
        || host.len() > 255
        || host.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    let port = match port {
        None => default_port,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?,
    };
    Ok(Nexthop {
        host: host.trim_end_matches('.').to_ascii_lowercase(),
        port,
        mx: mx && !lmtp,
        path: None,
    })
}

/// What the route lookup needs to know.
#[derive(Clone, Copy)]
pub(crate) struct Options<'a> {
    /// The resolver.
    pub(crate) resolver: &'a dns::Resolver,
    /// inet_protocols: IPv4, IPv6.
    pub(crate) ipv4: bool,
    /// See `ipv4`.
    pub(crate) ipv6: bool,
    /// Cut the list at our own addresses (smtp to port 25).
    pub(crate) loop_detect: bool,
    /// Our addresses (inet_interfaces, proxy_interfaces).
    pub(crate) own: &'a [IpAddr],
    /// smtp_mx_address_limit (0: none).
    pub(crate) address_limit: usize,
    /// The name logged for a Unix-domain socket server.
    pub(crate) myhostname: &'a str,
}

/// The servers to try for `hop`, best first, or the outcome for all
/// recipients when there is none.
pub(crate) fn servers(hop: &Nexthop, o: &Options<'_>) -> Result<Vec<Server>, Outcome> {
    if let Some(path) = &hop.path {
        return Ok(vec![Server {
            name: o.myhostname.to_string(),
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            path: Some(path.clone()),
            best_mx: true,
        }]);
    }
    if let Ok(ip) = hop.host.parse::<IpAddr>() {
        if o.loop_detect && o.own.contains(&ip) {
            return Err(loops(&hop.host));
        }
        return Ok(vec![Server {
            name: ip.to_string(),
            addr: SocketAddr::new(ip, hop.port),
            path: None,
            best_mx: true,
        }]);
    }
    if !hop.mx {
        return host_servers(&hop.host, hop.port, o);
    }
    let mx = match o.resolver.mx(&hop.host) {
        Ok(mx) => mx,
        Err(dns::Error::NoData { .. } | dns::Error::NotFound { .. }) => {
            return host_servers(&hop.host, hop.port, o);
        }
        Err(e) => return Err(dns_failure(&hop.host, "MX", &e)),
    };
    if mx.iter().any(|m| m.exchange.is_empty()) {
        return Err(Outcome::bounce(
            "5.1.0",
            format!("Domain {} does not accept mail (nullMX)", hop.host),
        ));
    }
    let mx = shuffle_equal(mx);
    let best = mx.first().map(|m| m.preference).unwrap_or(0);
    let mut out = Vec::new();
    let mut last_error = None;
    for m in &mx {
        match o.resolver.addresses(&m.exchange, o.ipv4, o.ipv6) {
            Ok(addrs) => {
                if o.loop_detect && addrs.iter().any(|a| o.own.contains(a)) {
                    // Only the MX hosts better than we are remain.
                    out.retain(|s: &(u16, Server)| s.0 < m.preference);
                    if out.is_empty() {
                        return Err(if m.preference == best {
                            loops(&hop.host)
                        } else {
                            Outcome::defer(
                                "4.4.4",
                                format!("unable to find primary relay for {}", hop.host),
                            )
                        });
                    }
                    break;
                }
                out.extend(addrs.into_iter().map(|a| {
                    (
                        m.preference,
                        Server {
                            name: m.exchange.clone(),
                            addr: SocketAddr::new(a, hop.port),
                            path: None,
                            best_mx: m.preference == best,
                        },
                    )
                }));
            }
            Err(e) => last_error = Some(dns_failure(&m.exchange, "A", &e)),
        }
    }
    let mut out: Vec<Server> = out.into_iter().map(|(_, s)| s).collect();
    if out.is_empty() {
        maillog::warning!("no MX host for {} has a valid address record", hop.host);
        return Err(last_error.unwrap_or_else(|| {
            Outcome::defer(
                "4.4.4",
                format!("no MX host for {} has a valid address record", hop.host),
            )
        }));
    }
    if o.address_limit > 0 {
        out.truncate(o.address_limit);
    }
    Ok(out)
}

/// The A/AAAA records of a host named without MX lookup (or a domain
/// without MX records).
fn host_servers(host: &str, port: u16, o: &Options<'_>) -> Result<Vec<Server>, Outcome> {
    match o.resolver.addresses(host, o.ipv4, o.ipv6) {
        Ok(addrs) => {
            if o.loop_detect && addrs.iter().any(|a| o.own.contains(a)) {
                return Err(loops(host));
            }
            let mut out: Vec<Server> = addrs
                .into_iter()
                .map(|a| Server {
                    name: host.to_string(),
                    addr: SocketAddr::new(a, port),
                    path: None,
                    best_mx: true,
                })
                .collect();
            if o.address_limit > 0 {
                out.truncate(o.address_limit);
            }
            Ok(out)
        }
        Err(e) => Err(dns_failure(host, "A", &e)),
    }
}

fn loops(name: &str) -> Outcome {
    Outcome::bounce("5.4.6", format!("mail for {name} loops back to myself"))
}

/// A lookup failure in Postfix's words: NXDOMAIN and no data bounce
/// (5.4.4), anything else defers (4.4.3).
fn dns_failure(name: &str, rtype: &str, e: &dns::Error) -> Outcome {
    let name = maillog::printable(name, 255);
    match e {
        dns::Error::Temporary { .. } => Outcome::defer(
            "4.4.3",
            format!(
                "Host or domain name not found. Name service error for name={name} type={rtype}: Host not found, try again"
            ),
        ),
        dns::Error::NoData { .. } => Outcome::bounce(
            "5.4.4",
            format!(
                "Host or domain name not found. Name service error for name={name} type={rtype}: No address associated with hostname"
            ),
        ),
        dns::Error::BadName { .. } => Outcome::bounce(
            "5.4.4",
            format!("Name service error for {name}: invalid host or domain name"),
        ),
        _ => Outcome::bounce(
            "5.4.4",
            format!(
                "Host or domain name not found. Name service error for name={name} type={rtype}: Host not found"
            ),
        ),
    }
}

/// Equal preferences in random order (RFC 5321 section 5.1), the list
/// still sorted by preference.
fn shuffle_equal(mut mx: Vec<dns::Mx>) -> Vec<dns::Mx> {
    let mut seed = random_seed();
    let mut start = 0;
    while start < mx.len() {
        let pref = mx.get(start).map(|m| m.preference);
        let end = mx
            .iter()
            .skip(start)
            .position(|m| Some(m.preference) != pref)
            .map_or(mx.len(), |n| start + n);
        if let Some(group) = mx.get_mut(start..end) {
            // Fisher-Yates with a xorshift generator: unpredictability
            // does not matter here, only spreading the load.
            for i in (1..group.len()).rev() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let j = usize::try_from(seed % (i as u64 + 1)).unwrap_or(0);
                group.swap(i, j);
            }
        }
        start = end;
    }
    mx
}

fn random_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    (t ^ u64::from(std::process::id()).rotate_left(32)) | 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use delivery::agent::Outcome;
    use dns::testserver::{Rec, start};
    use proto::deliver::Action;
    use std::time::Duration;

    #[test]
    fn nexthop_forms() {
        let p = |t: &str| parse(t, 25, false).unwrap();
        assert_eq!(
            p("Example.ORG"),
            Nexthop {
                host: "example.org".into(),
                port: 25,
                mx: true,
                path: None,
            }
        );
        assert_eq!(
            p("example.org:2525"),
            Nexthop {
                host: "example.org".into(),
                port: 2525,
                mx: true,
                path: None,
            }
        );
        assert_eq!(
            p("[mail.example.org]"),
            Nexthop {
                host: "mail.example.org".into(),
                port: 25,
                mx: false,
                path: None,
            }
        );
        assert_eq!(
            p("[127.0.0.1]:10025"),
            Nexthop {
                host: "127.0.0.1".into(),
                port: 10025,
                mx: false,
                path: None,
            }
        );
        assert_eq!(
            p("[ipv6:::1]:24"),
            Nexthop {
                host: "::1".into(),
                port: 24,
                mx: false,
                path: None,
            }
        );
        assert_eq!(
            p("inet:[127.0.0.1]:24"),
            Nexthop {
                host: "127.0.0.1".into(),
                port: 24,
                mx: false,
                path: None,
            }
        );
        assert_eq!(
            parse("unix:private/dovecot-lmtp", 24, true).unwrap().path,
            Some(PathBuf::from("private/dovecot-lmtp"))
        );
        assert!(parse("unix:/x", 24, false).is_err());
        assert!(!parse("lmtp.example", 24, true).unwrap().mx);
        for bad in ["", "[", "[x]y", "[x]:", "x:0", "x:99999", "[]", "a b"] {
            assert!(parse(bad, 25, false).is_err(), "{bad}");
        }
    }

    fn records() -> Vec<(String, Rec)> {
        let r = |n: &str, rec: Rec| (n.to_string(), rec);
        vec![
            r("two.test", Rec::Mx(10, "a.two.test.".into())),
            r("two.test", Rec::Mx(10, "b.two.test.".into())),
            r("two.test", Rec::Mx(20, "c.two.test.".into())),
            r("a.two.test", Rec::A("192.0.2.1".into())),
            r("b.two.test", Rec::A("192.0.2.2".into())),
            r("c.two.test", Rec::A("192.0.2.3".into())),
            r("plain.test", Rec::A("192.0.2.9".into())),
            r("null.test", Rec::Mx(0, ".".into())),
            r("broken.test", Rec::ServFail),
            r("self.test", Rec::Mx(10, "me.self.test.".into())),
            r("self.test", Rec::Mx(20, "backup.self.test.".into())),
            r("me.self.test", Rec::A("127.0.0.1".into())),
            r("backup.self.test", Rec::A("192.0.2.5".into())),
            r("backup.test", Rec::Mx(10, "a.two.test.".into())),
            r("backup.test", Rec::Mx(20, "me.self.test.".into())),
            r("backup.test", Rec::Mx(30, "c.two.test.".into())),
        ]
    }

    fn route(hop: &str, loop_detect: bool) -> Result<Vec<Server>, Outcome> {
        thread_local! {
            static SERVER: dns::testserver::Server = start(records());
        }
        let conf = SERVER.with(|s| s.resolv_conf());
        let resolver = dns::Resolver::new(dns::ResolvConf::parse(&conf))
            .with_timeout(Duration::from_millis(300), 1);
        let own = ["127.0.0.1".parse().unwrap()];
        let o = Options {
            resolver: &resolver,
            ipv4: true,
            ipv6: true,
            loop_detect,
            own: &own,
            address_limit: 5,
            myhostname: "client.test",
        };
        servers(&parse(hop, 25, false).unwrap(), &o)
    }

    #[test]
    fn mx_order_with_equal_preferences_shuffled() {
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..40 {
            let s = route("two.test", true).unwrap();
            assert_eq!(s.len(), 3);
            assert_eq!(s[2].name, "c.two.test");
            assert!(s[0].best_mx && s[1].best_mx && !s[2].best_mx);
            firsts.insert(s[0].name.clone());
            std::thread::sleep(Duration::from_micros(50));
        }
        assert_eq!(firsts.len(), 2, "equal preferences are shuffled");
    }

    #[test]
    fn no_mx_uses_the_address_and_brackets_skip_mx() {
        let s = route("plain.test", true).unwrap();
        assert_eq!(s[0].addr, "192.0.2.9:25".parse().unwrap());
        let s = route("[a.two.test]:2525", true).unwrap();
        assert_eq!(
            s,
            vec![Server {
                name: "a.two.test".into(),
                addr: "192.0.2.1:2525".parse().unwrap(),
                path: None,
                best_mx: true,
            }]
        );
    }

    #[test]
    fn failures() {
        let e = route("null.test", true).unwrap_err();
        assert_eq!((e.action, e.dsn.as_str()), (Action::Bounced, "5.1.0"));
        assert_eq!(e.text, "Domain null.test does not accept mail (nullMX)");
        let e = route("nowhere.test", true).unwrap_err();
        assert_eq!((e.action, e.dsn.as_str()), (Action::Bounced, "5.4.4"));
        assert!(
            e.text.contains("name=nowhere.test type=A: Host not found"),
            "{}",
            e.text
        );
        let e = route("broken.test", true).unwrap_err();
        assert_eq!((e.action, e.dsn.as_str()), (Action::Deferred, "4.4.3"));
        assert!(
            e.text.ends_with("type=MX: Host not found, try again"),
            "{}",
            e.text
        );
    }

    #[test]
    fn loops_to_ourselves() {
        let e = route("self.test", true).unwrap_err();
        assert_eq!((e.action, e.dsn.as_str()), (Action::Bounced, "5.4.6"));
        assert_eq!(e.text, "mail for self.test loops back to myself");
        // Not on another port (loop detection off).
        assert_eq!(route("self.test", false).unwrap().len(), 2);
        // We are a backup MX: only the better ones remain.
        let s = route("backup.test", true).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name, "a.two.test");
        let e = route("[127.0.0.1]", true).unwrap_err();
        assert_eq!(e.text, "mail for 127.0.0.1 loops back to myself");
    }
}
