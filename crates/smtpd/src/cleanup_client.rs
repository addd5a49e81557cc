//! The cleanup conversation from the event loop's side: a non-blocking
//! connection to `public/cleanup` that queues proto::cleanup frames and
//! decodes replies as they arrive, so the loop never waits on cleanup.
//!
//! The loop stops reading the SMTP client while [`CleanupClient::backlog`]
//! is above [`BACKLOG_LIMIT`]: that, and the content decoder's one chunk,
//! is all the message text a connection ever holds in memory.

use std::io::{self, Read, Write};
use std::path::Path;

use mio::net::UnixStream;
use proto::cleanup::{Reply, Request};

/// Stop feeding client input to the session above this many bytes waiting
/// to go to cleanup.
pub const BACKLOG_LIMIT: usize = 128 * 1024;

/// Most reply bytes buffered from cleanup (replies are tiny).
const MAX_REPLY_BUFFER: usize = 64 * 1024;

/// A cleanup connection.
#[derive(Debug)]
pub struct CleanupClient {
    sock: UnixStream,
    out: Vec<u8>,
    sent: usize,
    inbuf: Vec<u8>,
    /// The peer hung up or the socket failed.
    broken: bool,
    /// The socket may have bytes to read: set by an event on it (and at
    /// first), cleared when a read would block. The loop drives a
    /// connection on every client event; without this each round would
    /// end in a read of cleanup's socket that fails with EAGAIN.
    readable: bool,
}

impl CleanupClient {
    /// Connects (without blocking) to `queue_dir/public/cleanup`.
    ///
    /// # Errors
    /// Nobody listens, or the backlog is full.
    pub fn connect(queue_dir: &Path) -> io::Result<CleanupClient> {
        let sock = UnixStream::connect(queue_dir.join(proto::cleanup::SERVICE))?;
        Ok(CleanupClient {
            sock,
            out: Vec::new(),
            sent: 0,
            inbuf: Vec::new(),
            broken: false,
            readable: true,
        })
    }

    /// An event on the socket: there may be something to read.
    pub fn mark_readable(&mut self) {
        self.readable = true;
    }

    /// The socket, to register with the event loop.
    pub fn socket(&mut self) -> &mut UnixStream {
        &mut self.sock
    }

    /// Queues a request (nothing is written until [`CleanupClient::flush`]).
    pub fn send(&mut self, req: &Request) {
        if self.broken {
            return;
        }
        if proto::send(&mut self.out, req).is_err() {
            self.broken = true;
        }
    }

    /// Bytes queued and not yet written.
    pub fn backlog(&self) -> usize {
        self.out.len() - self.sent
    }

    /// True after a write or read error, or when cleanup hung up.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Writes queued bytes until the socket would block; true when
    /// something was written.
    pub fn flush(&mut self) -> bool {
        let mut wrote = false;
        while !self.broken && self.sent < self.out.len() {
            match self.sock.write(self.out.get(self.sent..).unwrap_or(&[])) {
                Ok(0) => self.broken = true,
                Ok(n) => {
                    self.sent += n;
                    wrote = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.broken = true,
            }
        }
        if self.sent == self.out.len() {
            self.out = Vec::new();
            self.sent = 0;
        } else if self.sent > 64 * 1024 {
            self.out.drain(..self.sent);
            self.sent = 0;
        }
        wrote
    }

    /// Reads what cleanup sent and returns the complete replies.
    pub fn read_replies(&mut self) -> Vec<Reply> {
        let mut buf = [0u8; 1024];
        while self.readable && !self.broken && self.inbuf.len() < MAX_REPLY_BUFFER {
            match self.sock.read(&mut buf) {
                Ok(0) => {
                    self.broken = true;
                }
                Ok(n) => self.inbuf.extend_from_slice(buf.get(..n).unwrap_or(&[])),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.broken = true,
            }
        }
        let mut out = Vec::new();
        while let Some(len) = self
            .inbuf
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(|b| u32::from_be_bytes(b) as usize)
        {
            if len > MAX_REPLY_BUFFER {
                self.broken = true;
                break;
            }
            let Some(frame) = self.inbuf.get(..4 + len) else {
                break;
            };
            let mut r: &[u8] = frame;
            match proto::recv::<_, Reply>(&mut r) {
                Ok(reply) => out.push(reply),
                Err(_) => {
                    self.broken = true;
                    break;
                }
            }
            self.inbuf.drain(..4 + len);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn frames_go_out_and_replies_come_back_in_pieces() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("public")).unwrap();
        let l = UnixListener::bind(dir.path().join("public/cleanup")).unwrap();
        let mut c = CleanupClient::connect(dir.path()).unwrap();
        let (mut peer, _) = l.accept().unwrap();
        c.send(&Request::Content(vec![b'x'; 10]));
        c.send(&Request::End);
        assert!(c.backlog() > 10);
        while c.backlog() > 0 {
            c.flush();
        }
        let r: Request = proto::recv(&mut peer).unwrap();
        assert_eq!(r, Request::Content(vec![b'x'; 10]));
        let r: Request = proto::recv(&mut peer).unwrap();
        assert_eq!(r, Request::End);
        let mut frame = Vec::new();
        proto::send(
            &mut frame,
            &Reply::Queued {
                queue_id: "ABC".into(),
            },
        )
        .unwrap();
        peer.write_all(&frame[..3]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(c.read_replies().is_empty());
        peer.write_all(&frame[3..]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        // The read that would block cleared readiness: no read (and no
        // EAGAIN) until the loop reports an event on the socket.
        assert!(c.read_replies().is_empty());
        c.mark_readable();
        assert_eq!(
            c.read_replies(),
            vec![Reply::Queued {
                queue_id: "ABC".into()
            }]
        );
        drop(peer);
        std::thread::sleep(std::time::Duration::from_millis(20));
        c.mark_readable();
        assert!(c.read_replies().is_empty());
        assert!(c.is_broken());
    }
}
