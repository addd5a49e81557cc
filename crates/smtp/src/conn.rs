//! One connection to a server: plain TCP, or TLS after STARTTLS; reads
//! replies line by line through a bounded buffer, with a timeout set per
//! stage on the socket.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;

use crate::reply::{LINE_LIMIT, LINES_LIMIT, Reply, parse_line};

/// Why talking failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The connection closed or broke.
    Lost,
    /// No answer within the stage's time limit.
    Timeout,
    /// Something that is not an SMTP reply.
    Protocol(String),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Failure::Timeout,
            _ => Failure::Lost,
        }
    }
}

/// Most lines read for one reply before the server is taken to be
/// broken (the first [`LINES_LIMIT`] are kept).
const REPLY_LINES_READ_LIMIT: usize = 1000;

enum Stream {
    Plain(TcpStream),
    Unix(UnixStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

/// The socket under the stream, for time limits.
enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// A connection.
pub(crate) struct Conn {
    sock: Socket,
    stream: Stream,
    buf: Vec<u8>,
    start: usize,
}

impl Conn {
    /// Connects within `timeout` (0: the system's), from `bind` when given.
    pub(crate) fn connect(
        addr: SocketAddr,
        bind: Option<std::net::IpAddr>,
        timeout: Duration,
    ) -> io::Result<Conn> {
        let tcp = match bind {
            None if timeout.is_zero() => TcpStream::connect(addr)?,
            None => TcpStream::connect_timeout(&addr, timeout)?,
            Some(ip) => connect_from(ip, addr, timeout)?,
        };
        let _ = tcp.set_nodelay(true);
        Ok(Conn {
            stream: Stream::Plain(tcp.try_clone()?),
            sock: Socket::Tcp(tcp),
            buf: Vec::new(),
            start: 0,
        })
    }

    /// Connects to a Unix-domain socket (LMTP); `timeout` bounds the
    /// first exchange only, as connecting is immediate or refused.
    pub(crate) fn connect_unix(path: &std::path::Path, timeout: Duration) -> io::Result<Conn> {
        let unix = UnixStream::connect(path)?;
        let conn = Conn {
            stream: Stream::Unix(unix.try_clone()?),
            sock: Socket::Unix(unix),
            buf: Vec::new(),
            start: 0,
        };
        conn.set_timeout(timeout.max(Duration::from_secs(1)));
        Ok(conn)
    }

    /// The time limit for the next reads and writes.
    pub(crate) fn set_timeout(&self, d: Duration) {
        let d = Some(d.max(Duration::from_millis(1)));
        match &self.sock {
            Socket::Tcp(s) => {
                let _ = s.set_read_timeout(d);
                let _ = s.set_write_timeout(d);
            }
            Socket::Unix(s) => {
                let _ = s.set_read_timeout(d);
                let _ = s.set_write_timeout(d);
            }
        }
    }

    /// Sends bytes.
    pub(crate) fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.write_all(bytes)?;
        self.flush()?;
        Ok(())
    }

    /// Reads one reply.
    pub(crate) fn reply(&mut self) -> Result<Reply, Failure> {
        let mut reply = Reply {
            code: 0,
            lines: Vec::new(),
        };
        let mut count = 0usize;
        loop {
            let line = self.line()?;
            let (code, last, text) = parse_line(&line).map_err(|m| Failure::Protocol(m.0))?;
            count += 1;
            if count > REPLY_LINES_READ_LIMIT {
                return Err(Failure::Protocol("reply with too many lines".into()));
            }
            if reply.lines.len() < LINES_LIMIT {
                reply.lines.push(text);
            }
            reply.code = code;
            if last {
                return Ok(reply);
            }
        }
    }

    /// One line without its end, cut at [`LINE_LIMIT`].
    fn line(&mut self) -> Result<Vec<u8>, Failure> {
        let mut out = Vec::new();
        loop {
            if let Some(pos) = self
                .buf
                .get(self.start..)
                .and_then(|b| b.iter().position(|c| *c == b'\n'))
            {
                let end = self.start + pos;
                if let Some(piece) = self.buf.get(self.start..end) {
                    take_capped(&mut out, piece);
                }
                self.start = end + 1;
                return Ok(out);
            }
            if let Some(piece) = self.buf.get(self.start..) {
                take_capped(&mut out, piece);
            }
            self.buf.clear();
            self.start = 0;
            let mut chunk = [0u8; 4096];
            let n = match &mut self.stream {
                Stream::Plain(s) => s.read(&mut chunk)?,
                Stream::Unix(s) => s.read(&mut chunk)?,
                Stream::Tls(s) => s.read(&mut chunk)?,
            };
            if n == 0 {
                return Err(Failure::Lost);
            }
            self.buf
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }

    /// Unread bytes after the last reply (pipelining, or a server that
    /// talks before STARTTLS completes).
    pub(crate) fn has_unread(&self) -> bool {
        self.buf.len() > self.start
    }

    /// Turns the connection into TLS (after `220` to STARTTLS).
    pub(crate) fn start_tls(
        &mut self,
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<(), String> {
        let plain = match &self.stream {
            Stream::Plain(s) => s.try_clone().map_err(|e| e.to_string())?,
            Stream::Unix(_) => return Err("no TLS over a Unix-domain socket".into()),
            Stream::Tls(_) => return Err("TLS already active".into()),
        };
        let conn = ClientConnection::new(config, name).map_err(|e| e.to_string())?;
        let mut tls = StreamOwned::new(conn, plain);
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "timeout".to_string(),
                    _ => e.to_string(),
                })?;
        }
        self.stream = Stream::Tls(Box::new(tls));
        self.buf.clear();
        self.start = 0;
        Ok(())
    }

    /// `TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)`, as
    /// Postfix logs a session (OpenSSL's cipher names).
    pub(crate) fn tls_summary(&self) -> Option<String> {
        let Stream::Tls(s) = &self.stream else {
            return None;
        };
        let protocol = match s.conn.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
            other => format!("{other:?}"),
        };
        let suite = s.conn.negotiated_cipher_suite()?.suite();
        let raw = suite
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{suite:?}"));
        let cipher = openssl_name(&raw);
        let bits = if cipher.contains("AES_128") || cipher.contains("AES128") {
            128
        } else {
            256
        };
        Some(format!(
            "{protocol} with cipher {cipher} ({bits}/{bits} bits)"
        ))
    }
}

/// OpenSSL's name of a suite, as Postfix logs it: TLS13_AES_256_GCM_SHA384
/// is TLS_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 is
/// ECDHE-RSA-AES256-GCM-SHA384. (The tls crate names server sessions the
/// same way.)
fn openssl_name(iana: &str) -> String {
    if let Some(rest) = iana.strip_prefix("TLS13_") {
        return format!("TLS_{rest}");
    }
    let Some((kx, bulk)) = iana
        .strip_prefix("TLS_")
        .and_then(|r| r.split_once("_WITH_"))
    else {
        return iana.to_string();
    };
    let bulk = match bulk {
        "CHACHA20_POLY1305_SHA256" => "CHACHA20-POLY1305".to_string(),
        other => other.replacen("AES_", "AES", 1).replace('_', "-"),
    };
    format!("{}-{bulk}", kx.replace('_', "-"))
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.stream {
            Stream::Plain(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.stream {
            Stream::Plain(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

fn take_capped(out: &mut Vec<u8>, piece: &[u8]) {
    let room = LINE_LIMIT.saturating_sub(out.len());
    out.extend_from_slice(piece.get(..room.min(piece.len())).unwrap_or_default());
}

/// A connection from a given local address (smtp_bind_address), within
/// `timeout` (0: the kernel's): a non-blocking connect, then poll.
fn connect_from(
    local: std::net::IpAddr,
    addr: SocketAddr,
    timeout: Duration,
) -> io::Result<TcpStream> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrStorage, bind, connect, getsockopt, socket,
        sockopt,
    };
    use std::os::fd::{AsFd, AsRawFd};
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(io::Error::from)?;
    bind(
        fd.as_raw_fd(),
        &SockaddrStorage::from(SocketAddr::new(local, 0)),
    )
    .map_err(io::Error::from)?;
    match connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
        Ok(()) => {}
        Err(nix::errno::Errno::EINPROGRESS) => {
            let ms = if timeout.is_zero() {
                PollTimeout::NONE
            } else {
                PollTimeout::try_from(timeout.as_millis().min(i32::MAX as u128) as i32)
                    .unwrap_or(PollTimeout::MAX)
            };
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
            let ready = poll(&mut fds, ms).map_err(io::Error::from)?;
            if ready == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "Connection timed out",
                ));
            }
            let err = getsockopt(&fd, sockopt::SocketError).map_err(io::Error::from)?;
            if err != 0 {
                return Err(io::Error::from_raw_os_error(err));
            }
        }
        Err(e) => return Err(io::Error::from(e)),
    }
    let stream = TcpStream::from(fd);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cipher_names_as_openssl() {
        assert_eq!(
            openssl_name("TLS13_AES_256_GCM_SHA384"),
            "TLS_AES_256_GCM_SHA384"
        );
        assert_eq!(
            openssl_name("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
            "ECDHE-RSA-AES128-GCM-SHA256"
        );
        assert_eq!(
            openssl_name("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
            "ECDHE-ECDSA-CHACHA20-POLY1305"
        );
    }
}
