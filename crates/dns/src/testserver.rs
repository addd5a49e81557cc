//! A tiny authoritative DNS server for tests (feature `test-support`):
//! answers from a fixed list of records over UDP and TCP on one port of
//! 127.0.0.1; NXDOMAIN for names it does not know, an empty answer (no
//! data) for known names without records of the asked type. A UDP answer
//! longer than 512 bytes is sent truncated (TC=1) so that clients retry
//! over TCP. The threads live as long as the test process.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, MX, PTR, TLSA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// One record (or behaviour) of a name.
#[derive(Debug, Clone)]
pub enum Rec {
    A(String),
    Aaaa(String),
    Mx(u16, String),
    Txt(String),
    Ptr(String),
    /// Answer SERVFAIL for this name.
    ServFail,
    /// Never answer questions about this name.
    Silent,
    /// The name exists (no records).
    Exists,
    /// A TLSA record (usage, selector, matching type, data).
    Tlsa(u8, u8, u8, Vec<u8>),
    /// Answers about this name come without the AD bit (not validated);
    /// all others have it set, as from a validating resolver.
    Unsigned,
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    udp_queries: Arc<AtomicUsize>,
    tcp_queries: Arc<AtomicUsize>,
}

impl Server {
    /// resolv.conf text naming this server, with a 1 s timeout, one round.
    pub fn resolv_conf(&self) -> String {
        format!(
            "nameserver {}#{}\noptions timeout:1 attempts:1\n",
            self.addr.ip(),
            self.addr.port()
        )
    }

    /// Questions answered over UDP so far.
    pub fn udp_queries(&self) -> usize {
        self.udp_queries.load(Ordering::SeqCst)
    }

    /// Questions answered over TCP so far.
    pub fn tcp_queries(&self) -> usize {
        self.tcp_queries.load(Ordering::SeqCst)
    }
}

/// Starts a server for `records` (name without trailing dot, record).
pub fn start(records: Vec<(String, Rec)>) -> Server {
    let records = Arc::new(records);
    // The same port for UDP and TCP.
    let (sock, tcp) = loop {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        if let Ok(tcp) = TcpListener::bind(addr) {
            break (sock, tcp);
        }
    };
    let addr = sock.local_addr().unwrap();
    let udp_queries = Arc::new(AtomicUsize::new(0));
    let tcp_queries = Arc::new(AtomicUsize::new(0));
    {
        let records = records.clone();
        let count = udp_queries.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = sock.recv_from(&mut buf) else {
                    return;
                };
                let Some(mut out) = answer(&records, &buf[..n]) else {
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                if out.len() > 512 {
                    let mut m = Message::from_vec(&out).unwrap();
                    m.answers.clear();
                    m.metadata.truncation = true;
                    out = m.to_vec().unwrap();
                }
                let _ = sock.send_to(&out, peer);
            }
        });
    }
    {
        let count = tcp_queries.clone();
        std::thread::spawn(move || {
            for conn in tcp.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut lenb = [0u8; 2];
                if conn.read_exact(&mut lenb).is_err() {
                    continue;
                }
                let mut q = vec![0u8; usize::from(u16::from_be_bytes(lenb))];
                if conn.read_exact(&mut q).is_err() {
                    continue;
                }
                let Some(out) = answer(&records, &q) else {
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let mut framed = (out.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&out);
                let _ = conn.write_all(&framed);
            }
        });
    }
    Server {
        addr,
        udp_queries,
        tcp_queries,
    }
}

/// The encoded answer to a query, or None to stay silent.
fn answer(records: &[(String, Rec)], query: &[u8]) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    let query = q.queries.first().cloned()?;
    let qname = query.name().to_ascii().to_lowercase();
    let qname = qname.trim_end_matches('.');
    let mut m = Message::response(q.metadata.id, OpCode::Query);
    m.add_query(query.clone());
    let mut known = false;
    m.metadata.authentic_data = true;
    for (name, rec) in records {
        if !name.eq_ignore_ascii_case(qname) {
            continue;
        }
        known = true;
        let rdata = match (rec, query.query_type()) {
            (Rec::Unsigned, _) => {
                m.metadata.authentic_data = false;
                continue;
            }
            (Rec::Tlsa(u, s, t, d), RecordType::TLSA) => {
                RData::TLSA(TLSA::new((*u).into(), (*s).into(), (*t).into(), d.clone()))
            }
            (Rec::Silent, _) => return None,
            (Rec::ServFail, _) => {
                m.metadata.response_code = ResponseCode::ServFail;
                continue;
            }
            (Rec::A(v), RecordType::A) => RData::A(A(v.parse().unwrap())),
            (Rec::Aaaa(v), RecordType::AAAA) => RData::AAAA(AAAA(v.parse().unwrap())),
            (Rec::Mx(p, v), RecordType::MX) => RData::MX(MX::new(*p, Name::from_ascii(v).unwrap())),
            (Rec::Txt(v), RecordType::TXT) => RData::TXT(TXT::new(vec![v.clone()])),
            (Rec::Ptr(v), RecordType::PTR) => RData::PTR(PTR(Name::from_ascii(v).unwrap())),
            _ => continue,
        };
        m.add_answer(Record::from_rdata(query.name().clone(), 60, rdata));
    }
    if !known {
        m.metadata.response_code = ResponseCode::NXDomain;
    }
    m.to_vec().ok()
}
