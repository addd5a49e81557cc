//! A small blocking DNS stub resolver for the restrictions that need DNS
//! (reject_rbl_client, reject_unknown_recipient_domain).
//!
//! Queries go over our own UDP socket to the nameservers of
//! `/etc/resolv.conf` (or of the file named by the environment variable
//! `MAIL_RESOLV_CONF`, which tests use to point at a server of their own),
//! with a short timeout and one retry per server; a truncated answer is
//! asked again over TCP. Messages are encoded and decoded with
//! hickory-proto. resolv.conf is read when the restrictions are built, so
//! that a chrooted smtpd still knows its servers.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

/// The environment variable that names another resolv.conf (tests).
pub const RESOLV_CONF_ENV: &str = "MAIL_RESOLV_CONF";

/// How long to wait for one server's answer.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The most nameservers used from resolv.conf (as the C resolver: 3).
const MAX_SERVERS: usize = 3;

/// The largest DNS message read over UDP or TCP.
const MAX_MESSAGE: usize = 65_535;

/// The outcome of one lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Records of the asked type (A/AAAA addresses, MX exchanges, TXT strings).
    Found(Vec<String>),
    /// The name does not exist, or has no records of that type.
    NotFound,
    /// No definite answer (timeout, SERVFAIL, no servers): try again later.
    Retry(String),
}

/// The nameservers to ask.
#[derive(Debug, Clone)]
pub struct Resolver {
    servers: Vec<SocketAddr>,
    timeout: Duration,
}

impl Resolver {
    /// Reads `$MAIL_RESOLV_CONF` or `/etc/resolv.conf`; without any
    /// `nameserver` line, 127.0.0.1 (as the C resolver does).
    pub fn from_system() -> Resolver {
        let path = std::env::var_os(RESOLV_CONF_ENV)
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| "/etc/resolv.conf".into());
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        Resolver::from_resolv_conf(&text)
    }

    /// Parses resolv.conf text: `nameserver ADDR` lines, an optional
    /// `ADDR#PORT` or `[ADDR]:PORT` form for tests on a high port.
    pub fn from_resolv_conf(text: &str) -> Resolver {
        let mut servers = Vec::new();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if words.next() != Some("nameserver") {
                continue;
            }
            let Some(addr) = words.next() else { continue };
            if let Some(sa) = parse_server(addr)
                && servers.len() < MAX_SERVERS
            {
                servers.push(sa);
            }
        }
        if servers.is_empty() {
            servers.push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53));
        }
        Resolver {
            servers,
            timeout: TIMEOUT,
        }
    }

    /// The same servers with another per-query timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Resolver {
        self.timeout = timeout;
        self
    }

    /// Looks up `name` (absolute; a trailing dot is added) for `rtype`.
    pub fn lookup(&self, name: &str, rtype: RecordType) -> Answer {
        let fqdn = if name.ends_with('.') {
            name.to_string()
        } else {
            format!("{name}.")
        };
        let Ok(qname) = Name::from_ascii(&fqdn) else {
            return Answer::NotFound;
        };
        let mut last = String::from("no nameserver answered");
        for server in &self.servers {
            for _ in 0..2 {
                match query(*server, &qname, rtype, self.timeout) {
                    Ok(m) => return interpret(&m, rtype),
                    Err(e) => last = format!("{server}: {e}"),
                }
            }
        }
        Answer::Retry(last)
    }
}

fn parse_server(s: &str) -> Option<SocketAddr> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa);
    }
    if let Some((a, p)) = s.split_once('#') {
        return Some(SocketAddr::new(a.parse().ok()?, p.parse().ok()?));
    }
    s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53))
}

fn request(qname: &Name, rtype: RecordType) -> Result<(u16, Vec<u8>), String> {
    // A random id (and the kernel's random source port) against spoofed
    // answers.
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(qname.clone(), rtype));
    let bytes = m.to_vec().map_err(|e| e.to_string())?;
    Ok((m.metadata.id, bytes))
}

/// One question to one server: UDP, then TCP when the answer is truncated.
fn query(
    server: SocketAddr,
    qname: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<Message, String> {
    let (id, bytes) = request(qname, rtype)?;
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0"
            .parse()
            .map_err(|_| "bad bind address".to_string())?
    } else {
        "[::]:0"
            .parse()
            .map_err(|_| "bad bind address".to_string())?
    };
    let sock = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
    sock.connect(server).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    sock.send(&bytes).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let n = sock.recv(&mut buf).map_err(|e| e.to_string())?;
        let Ok(m) = Message::from_vec(buf.get(..n).unwrap_or_default()) else {
            continue;
        };
        if m.metadata.id != id || m.metadata.message_type != MessageType::Response {
            continue;
        }
        if m.metadata.truncation {
            return query_tcp(server, &bytes, id, timeout);
        }
        return Ok(m);
    }
}

fn query_tcp(
    server: SocketAddr,
    bytes: &[u8],
    id: u16,
    timeout: Duration,
) -> Result<Message, String> {
    let mut s = TcpStream::connect_timeout(&server, timeout).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let len = u16::try_from(bytes.len()).map_err(|_| "query too long".to_string())?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    s.write_all(&out).map_err(|e| e.to_string())?;
    let mut lenb = [0u8; 2];
    s.read_exact(&mut lenb).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(lenb))];
    s.read_exact(&mut buf).map_err(|e| e.to_string())?;
    let m = Message::from_vec(&buf).map_err(|e| e.to_string())?;
    if m.metadata.id != id {
        return Err("answer with a wrong id".into());
    }
    Ok(m)
}

fn interpret(m: &Message, rtype: RecordType) -> Answer {
    match m.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => return Answer::NotFound,
        other => return Answer::Retry(format!("server answered {other}")),
    }
    let mut out = Vec::new();
    for r in &m.answers {
        match (&r.data, rtype) {
            (RData::A(a), RecordType::A) => out.push(a.0.to_string()),
            (RData::AAAA(a), RecordType::AAAA) => out.push(a.0.to_string()),
            (RData::MX(mx), RecordType::MX) => out.push(mx.exchange.to_ascii()),
            (RData::PTR(p), RecordType::PTR) => out.push(p.0.to_ascii()),
            (RData::TXT(t), RecordType::TXT) => {
                let s: Vec<String> = t
                    .txt_data
                    .iter()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .collect();
                out.push(s.concat());
            }
            _ => {}
        }
    }
    if out.is_empty() {
        Answer::NotFound
    } else {
        Answer::Found(out)
    }
}

/// A tiny authoritative DNS server for tests: answers from a fixed list of
/// (name, type, value) records on a UDP socket on 127.0.0.1, NXDOMAIN for
/// names it does not know.
#[cfg(test)]
pub(crate) mod testserver {
    use super::*;
    use hickory_proto::op::OpCode;
    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::{A, MX, TXT};

    /// A running server; it stops when the test process ends.
    pub(crate) struct Server {
        pub(crate) addr: SocketAddr,
    }

    /// Starts a server answering `records` (name without trailing dot,
    /// "A" / "MX" / "TXT", value).
    pub(crate) fn start(records: Vec<(&'static str, &'static str, &'static str)>) -> Server {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = sock.recv_from(&mut buf) else {
                    return;
                };
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let Some(query) = q.queries.first().cloned() else {
                    continue;
                };
                let qname = query.name().to_ascii().to_lowercase();
                let qname = qname.trim_end_matches('.').to_string();
                let mut m = Message::response(q.metadata.id, OpCode::Query);
                m.add_query(query.clone());
                let mut known = false;
                for (name, ty, value) in &records {
                    if *name != qname {
                        continue;
                    }
                    known = true;
                    let owner = query.name().clone();
                    let rdata = match (*ty, query.query_type()) {
                        ("A", RecordType::A) => RData::A(A(value.parse().unwrap())),
                        ("MX", RecordType::MX) => {
                            RData::MX(MX::new(10, Name::from_ascii(value).unwrap()))
                        }
                        ("TXT", RecordType::TXT) => RData::TXT(TXT::new(vec![value.to_string()])),
                        _ => continue,
                    };
                    m.add_answer(Record::from_rdata(owner, 60, rdata));
                }
                if !known {
                    m.metadata.response_code = ResponseCode::NXDomain;
                }
                let _ = sock.send_to(&m.to_vec().unwrap(), peer);
            }
        });
        Server { addr }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_parsing() {
        let r = Resolver::from_resolv_conf(
            "# c\nsearch x\nnameserver 192.0.2.1\nnameserver 127.0.0.1#5353\nnameserver ::1\nnameserver 192.0.2.9\n",
        );
        assert_eq!(
            r.servers,
            vec![
                "192.0.2.1:53".parse().unwrap(),
                "127.0.0.1:5353".parse().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
        let d = Resolver::from_resolv_conf("");
        assert_eq!(d.servers, vec!["127.0.0.1:53".parse().unwrap()]);
    }

    #[test]
    fn lookups_against_a_real_server() {
        let s = testserver::start(vec![
            ("2.0.0.127.rbl.test", "A", "127.0.0.2"),
            ("2.0.0.127.rbl.test", "TXT", "listed for testing"),
            ("mx.test", "MX", "mail.mx.test."),
        ]);
        let r = Resolver::from_resolv_conf(&format!("nameserver {}", s.addr));
        assert_eq!(
            r.lookup("2.0.0.127.rbl.test", RecordType::A),
            Answer::Found(vec!["127.0.0.2".into()])
        );
        assert_eq!(
            r.lookup("2.0.0.127.rbl.test", RecordType::TXT),
            Answer::Found(vec!["listed for testing".into()])
        );
        assert_eq!(
            r.lookup("mx.test", RecordType::MX),
            Answer::Found(vec!["mail.mx.test.".into()])
        );
        assert_eq!(r.lookup("nope.test", RecordType::A), Answer::NotFound);
        assert_eq!(r.lookup("mx.test", RecordType::A), Answer::NotFound);
        // A server that does not answer: Retry, quickly enough.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let r = Resolver::from_resolv_conf(&format!("nameserver {}", silent.local_addr().unwrap()))
            .with_timeout(Duration::from_millis(200));
        assert!(matches!(
            r.lookup("x.test", RecordType::A),
            Answer::Retry(_)
        ));
    }
}
