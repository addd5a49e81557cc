//! The client connection of a login process: plain TCP or TLS over it,
//! read one line at a time with a cap on the line length.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

/// Plain or TLS.
#[derive(Debug)]
pub enum Conn {
    /// Cleartext.
    Plain(TcpStream),
    /// TLS terminated here.
    Tls(Box<tls::TlsStream<TcpStream>>),
}

impl Conn {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(t) => t.get_ref(),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(t) => match t.read(buf) {
                // A peer that closes without close_notify: end of input.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(t) => t.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(t) => t.flush(),
        }
    }
}

/// One line read by [`Client::read_line`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line without its CRLF (or LF).
    Text(Vec<u8>),
    /// Longer than the limit; the rest of it was skipped.
    TooLong,
    /// The client closed the connection.
    Eof,
}

/// A connection with its input buffer.
#[derive(Debug)]
pub struct Client {
    conn: Option<Conn>,
    buf: Vec<u8>,
}

impl Client {
    /// Wraps a connection.
    pub fn new(conn: Conn) -> Client {
        Client {
            conn: Some(conn),
            buf: Vec::new(),
        }
    }

    /// The connection.
    ///
    /// # Errors
    /// Only after a failed [`Client::start_tls`] (the connection is gone).
    pub fn conn(&mut self) -> io::Result<&mut Conn> {
        self.conn
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }

    /// True once TLS is active.
    pub fn is_tls(&self) -> bool {
        matches!(self.conn, Some(Conn::Tls(_)))
    }

    /// Bytes received but not yet returned as lines (pipelined input that
    /// goes to the mail process after login).
    pub fn take_pending(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// Raw input for a caller that frames it itself (IMAP literals): the
    /// buffered bytes if any, else what one read returns; appended to
    /// `out`. Returns how many bytes were added (0: end of input).
    ///
    /// # Errors
    /// Read errors and timeouts.
    pub fn read_more(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        if !self.buf.is_empty() {
            let n = self.buf.len();
            out.append(&mut self.buf);
            return Ok(n);
        }
        let mut chunk = [0u8; 4096];
        let n = self.conn()?.read(&mut chunk)?;
        out.extend_from_slice(chunk.get(..n).unwrap_or_default());
        Ok(n)
    }

    /// Puts bytes back in front of the input (what a caller of
    /// [`Client::read_more`] did not consume, for [`Client::take_pending`]).
    pub fn unread(&mut self, data: &[u8]) {
        let mut v = data.to_vec();
        v.append(&mut self.buf);
        self.buf = v;
    }

    /// Writes `text` and flushes.
    ///
    /// # Errors
    /// Write errors.
    pub fn send(&mut self, text: &str) -> io::Result<()> {
        let c = self.conn()?;
        c.write_all(text.as_bytes())?;
        c.flush()
    }

    /// Reads one line of at most `limit` bytes.
    ///
    /// # Errors
    /// Read errors and timeouts (`WouldBlock`/`TimedOut` with a read timeout).
    pub fn read_line(&mut self, limit: usize) -> io::Result<Line> {
        let mut skipping = false;
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                if skipping {
                    return Ok(Line::TooLong);
                }
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.len() > limit {
                    return Ok(Line::TooLong);
                }
                return Ok(Line::Text(line));
            }
            if self.buf.len() > limit {
                self.buf.clear();
                skipping = true;
            }
            let mut chunk = [0u8; 4096];
            let n = self.conn()?.read(&mut chunk)?;
            if n == 0 {
                return Ok(Line::Eof);
            }
            self.buf
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }

    /// STLS/STARTTLS: discards pipelined plaintext (CVE-2011-0411) and
    /// runs the handshake. Returns how many bytes were discarded.
    ///
    /// # Errors
    /// Handshake failures; the connection is unusable afterwards.
    pub fn start_tls(&mut self, config: Arc<rustls::ServerConfig>) -> io::Result<usize> {
        let discarded = self.buf.len();
        self.buf.clear();
        let tcp = match self.conn.take() {
            Some(Conn::Plain(s)) => s,
            Some(other) => {
                self.conn = Some(other);
                return Err(io::Error::other("TLS already active"));
            }
            None => return Err(io::Error::from(io::ErrorKind::NotConnected)),
        };
        let t = tls::TlsStream::accept(config, tcp).map_err(|e| io::Error::other(e.to_string()))?;
        self.conn = Some(Conn::Tls(Box::new(t)));
        Ok(discarded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn raw_input_and_putting_it_back() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let mut c = Client::new(Conn::Plain(server));
        peer.write_all(b"a LOGIN {3}\r\nabc\r\nb NOOP\r\n").unwrap();
        let mut buf = Vec::new();
        while !buf.ends_with(b"b NOOP\r\n") {
            assert!(c.read_more(&mut buf).unwrap() > 0);
        }
        // What the caller did not use goes back, ahead of later input.
        c.unread(b"b NOOP\r\n");
        assert_eq!(c.read_line(100).unwrap(), Line::Text(b"b NOOP".to_vec()));
        c.unread(b"rest");
        assert_eq!(c.take_pending(), b"rest");
    }
}
