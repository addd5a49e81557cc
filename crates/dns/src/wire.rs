//! One question to one nameserver: a query over our own UDP socket (a
//! random id, the kernel's random source port, the answer checked against
//! both and against the question), asked again over TCP when the answer
//! comes back truncated. Messages are encoded and decoded by hickory-proto.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, Query};
use hickory_proto::rr::{Name, RecordType};

/// The largest DNS message read over UDP or TCP.
pub(crate) const MAX_MESSAGE: usize = 65_535;

/// Asks `server` for `qname`/`rtype` within `timeout`.
pub(crate) fn query(
    server: SocketAddr,
    qname: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<Message, String> {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    // Ask for the AD bit (RFC 6840 5.7): a validating resolver then says
    // whether the answer was DNSSEC-validated (DANE trusts it).
    m.metadata.authentic_data = true;
    m.add_query(Query::query(qname.clone(), rtype));
    let bytes = m.to_vec().map_err(|e| e.to_string())?;
    let id = m.metadata.id;
    let bind: SocketAddr = if server.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let sock = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
    sock.connect(server).map_err(|e| e.to_string())?;
    sock.send(&bytes).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| "timeout".to_string())?;
        sock.set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err("timeout".into());
            }
            Err(e) => return Err(e.to_string()),
        };
        let Ok(answer) = Message::from_vec(buf.get(..n).unwrap_or_default()) else {
            continue;
        };
        if !matches_question(&answer, id, qname, rtype) {
            continue;
        }
        if answer.metadata.truncation {
            return query_tcp(server, &bytes, qname, rtype, id, timeout);
        }
        return Ok(answer);
    }
}

/// The answer is to our question: same id, a response, same name and type.
fn matches_question(m: &Message, id: u16, qname: &Name, rtype: RecordType) -> bool {
    m.metadata.id == id
        && m.metadata.message_type == MessageType::Response
        && m.queries
            .first()
            .is_none_or(|q| q.query_type() == rtype && q.name() == qname)
}

fn query_tcp(
    server: SocketAddr,
    bytes: &[u8],
    qname: &Name,
    rtype: RecordType,
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
    if !matches_question(&m, id, qname, rtype) {
        return Err("TCP answer to another question".into());
    }
    Ok(m)
}
