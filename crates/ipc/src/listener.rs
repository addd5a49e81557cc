//! The listeners a child inherits and the client streams it accepts.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};

/// An inherited listening endpoint, by master.cf type.
#[derive(Debug)]
pub enum Listener {
    /// `inet`: a TCP listener.
    Tcp(TcpListener),
    /// `unix` or `pass`: a Unix-domain stream listener.
    Unix(UnixListener),
    /// `fifo`: a named pipe, opened read-write by master.
    Fifo(File),
}

/// A connected client.
#[derive(Debug)]
pub enum Stream {
    /// A TCP client.
    Tcp(TcpStream),
    /// A Unix-domain client.
    Unix(UnixStream),
}

impl Listener {
    /// Wraps an inherited descriptor according to the service type (`-t`).
    pub fn from_fd(service_type: &str, fd: OwnedFd) -> Listener {
        match service_type {
            "inet" => Listener::Tcp(TcpListener::from(fd)),
            "fifo" => Listener::Fifo(File::from(fd)),
            _ => Listener::Unix(UnixListener::from(fd)),
        }
    }

    /// Accepts one client without blocking; `Ok(None)` when another process
    /// took it first. The stream is returned in blocking mode.
    ///
    /// # Errors
    /// accept() failed for another reason, or this is a fifo.
    pub fn accept(&self) -> io::Result<Option<Stream>> {
        let res = match self {
            Listener::Tcp(l) => l.accept().map(|(s, _)| Stream::Tcp(s)),
            Listener::Unix(l) => l.accept().map(|(s, _)| Stream::Unix(s)),
            Listener::Fifo(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "accept on a fifo",
                ));
            }
        };
        match res {
            Ok(s) => {
                s.set_nonblocking(false)?;
                Ok(Some(s))
            }
            Err(e) if is_transient(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Makes accept() (or a fifo read) non-blocking; children share listeners.
    ///
    /// # Errors
    /// fcntl failed.
    pub fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.set_nonblocking(true),
            Listener::Unix(l) => l.set_nonblocking(true),
            Listener::Fifo(f) => {
                use nix::fcntl::{FcntlArg, OFlag, fcntl};
                let fl = fcntl(f, FcntlArg::F_GETFL).map_err(io::Error::from)?;
                let fl = OFlag::from_bits_truncate(fl) | OFlag::O_NONBLOCK;
                fcntl(f, FcntlArg::F_SETFL(fl))
                    .map(|_| ())
                    .map_err(io::Error::from)
            }
        }
    }
}

/// Errors that mean "no client after all" (another child won the race, or
/// the client gave up before we accepted).
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
    ) || e.raw_os_error() == Some(nix::libc::EPROTO)
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix(l) => l.as_fd(),
            Listener::Fifo(f) => f.as_fd(),
        }
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl Stream {
    /// Sets the read timeout (None = wait forever).
    ///
    /// # Errors
    /// setsockopt failed.
    pub fn set_read_timeout(&self, t: Option<std::time::Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Unix(s) => s.set_read_timeout(t),
        }
    }

    /// Sets blocking or non-blocking mode (a multi-server wants non-blocking).
    ///
    /// # Errors
    /// fcntl failed.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nonblocking(on),
            Stream::Unix(s) => s.set_nonblocking(on),
        }
    }

    /// The peer's address for logging: `host[addr]`-style text, or `local`.
    pub fn peer(&self) -> String {
        match self {
            Stream::Tcp(s) => s
                .peer_addr()
                .map(|a| format!("[{}]:{}", a.ip(), a.port()))
                .unwrap_or_else(|_| "unknown".to_string()),
            Stream::Unix(_) => "local".to_string(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_without_client_is_none() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let l = Listener::from_fd("inet", OwnedFd::from(l));
        l.set_nonblocking().unwrap();
        assert!(l.accept().unwrap().is_none());
    }

    #[test]
    fn accepts_unix_client() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        let l = Listener::from_fd("unix", OwnedFd::from(UnixListener::bind(&p).unwrap()));
        l.set_nonblocking().unwrap();
        let mut c = UnixStream::connect(&p).unwrap();
        let mut s = l.accept().unwrap().unwrap();
        c.write_all(b"hi").unwrap();
        let mut b = [0u8; 2];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"hi");
        assert_eq!(s.peer(), "local");
    }
}
