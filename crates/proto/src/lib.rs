//! Requests and replies between daemons: Postfix's mail_proto, with typed
//! messages instead of attribute lists.
//!
//! Every conversation runs over a Unix-domain stream socket under the queue
//! directory (`public/cleanup`, `private/rewrite`, `private/<transport>`,
//! `private/bounce`, `public/showq`). Each message is one frame: a 4-byte
//! big-endian length, then the postcard encoding of the message. Frames are
//! at most [`MAX_FRAME`] bytes; a peer that sends more, or a frame that does
//! not decode, is a protocol error, never a panic. Peers are untrusted in
//! the sense that a buggy or compromised daemon must not crash another.
//!
//! Wake-ups (cleanup to qmgr, postdrop to pickup) are not frames: one byte
//! written to the fifo or socket with [`trigger`].
//!
//! # Synopsis
//!
//! ```text
//! let mut s = proto::connect(queue_dir, proto::cleanup::SERVICE)?;
//! proto::send(&mut s, &cleanup::Request::Begin { .. })?;
//! let reply: cleanup::Reply = proto::recv(&mut s)?;
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

pub mod anvil;
pub mod bounce;
pub mod cleanup;
pub mod deliver;
pub mod flush;
pub mod pickup;
pub mod recent;
pub mod rewrite;
pub mod serve;
pub mod showq;
pub mod verify;

/// The largest frame a peer may send: content travels in chunks well below it.
pub const MAX_FRAME: usize = 1 << 20;

/// The largest content chunk a client puts in one frame.
pub const CONTENT_CHUNK: usize = 64 * 1024;

/// Default time to wait on a peer (Postfix's ipc_timeout).
pub const IPC_TIMEOUT: Duration = Duration::from_secs(3600);

/// Errors talking to another daemon.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Connecting to the service socket failed.
    Connect {
        /// The socket path.
        path: String,
        /// The cause.
        source: io::Error,
    },
    /// Reading or writing the socket failed, or the peer hung up.
    Io(io::Error),
    /// The peer announced a frame larger than [`MAX_FRAME`].
    FrameTooLarge(usize),
    /// A frame did not decode as the expected message.
    Decode(postcard::Error),
    /// Encoding failed (a message larger than [`MAX_FRAME`]).
    Encode(postcard::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect { path, source } => write!(f, "connect to {path}: {source}"),
            Error::Io(e) => write!(f, "{e}"),
            Error::FrameTooLarge(n) => write!(f, "frame of {n} bytes exceeds {MAX_FRAME}"),
            Error::Decode(e) => write!(f, "malformed message: {e}"),
            Error::Encode(e) => write!(f, "cannot encode message: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

/// Connects to `queue_dir/service` (for example `private/rewrite`) with
/// [`IPC_TIMEOUT`] on reads and writes.
///
/// # Errors
/// The socket does not exist or nobody listens on it.
pub fn connect(queue_dir: &Path, service: &str) -> Result<UnixStream, Error> {
    let path = queue_dir.join(service);
    let s = UnixStream::connect(&path).map_err(|source| Error::Connect {
        path: path.display().to_string(),
        source,
    })?;
    s.set_read_timeout(Some(IPC_TIMEOUT))?;
    s.set_write_timeout(Some(IPC_TIMEOUT))?;
    Ok(s)
}

/// Writes one message as a frame. The caller flushes a buffered writer.
///
/// # Errors
/// Encoding or writing failed.
pub fn send<W: Write, T: Serialize>(w: &mut W, msg: &T) -> Result<(), Error> {
    let body = postcard::to_stdvec(msg).map_err(Error::Encode)?;
    if body.len() > MAX_FRAME {
        return Err(Error::FrameTooLarge(body.len()));
    }
    let len = u32::try_from(body.len()).map_err(|_| Error::FrameTooLarge(body.len()))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    w.write_all(&frame)?;
    Ok(())
}

/// Reads one frame and decodes it.
///
/// # Errors
/// The peer hung up, sent too much, or sent something else.
pub fn recv<R: Read, T: DeserializeOwned>(r: &mut R) -> Result<T, Error> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(Error::FrameTooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    postcard::from_bytes(&body).map_err(Error::Decode)
}

/// A stream read through a buffer and written straight through: one read
/// system call takes every frame that has arrived, where [`recv`] on the
/// bare stream makes two a frame (length, body). For a server's side of a
/// conversation that owns its connection (what it reads ahead belongs to
/// the same conversation); replies still go out at once.
#[derive(Debug)]
pub struct Buffered<S: Read> {
    inner: io::BufReader<S>,
}

impl<S: Read> Buffered<S> {
    /// Wraps `stream` with a buffer of `capacity` bytes.
    pub fn new(stream: S, capacity: usize) -> Buffered<S> {
        Buffered {
            inner: io::BufReader::with_capacity(capacity, stream),
        }
    }
}

impl<S: Read> Read for Buffered<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<S: Read + Write> Write for Buffered<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.get_mut().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.get_mut().flush()
    }
}

/// Sends a request and reads its reply on a fresh connection.
///
/// # Errors
/// As [`connect`], [`send`] and [`recv`].
pub fn call<Q: Serialize, A: DeserializeOwned>(
    queue_dir: &Path,
    service: &str,
    request: &Q,
) -> Result<A, Error> {
    let mut s = connect(queue_dir, service)?;
    send(&mut s, request)?;
    recv(&mut s)
}

/// Wakes a trigger service (`public/qmgr`, `public/pickup`): writes one byte
/// to its fifo or Unix socket without blocking. A service that is not
/// running is not an error the caller can act on, so it is reported but
/// harmless: the service scans its queue when it starts.
///
/// # Errors
/// The fifo or socket could not be opened or written.
pub fn trigger(queue_dir: &Path, service: &str) -> io::Result<()> {
    trigger_with(queue_dir, service, b'W')
}

/// Like [`trigger`], with another request byte: Postfix's qmgr reads `W`
/// (wake up: scan incoming), `F` (flush: retry deferred mail now, as
/// `postqueue -f` asks), `D` (deliver deferred mail) and `A` (scan all).
///
/// # Errors
/// The fifo or socket could not be opened or written.
pub fn trigger_with(queue_dir: &Path, service: &str, byte: u8) -> io::Result<()> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let path = queue_dir.join(service);
    let meta = std::fs::metadata(&path)?;
    if meta.file_type().is_fifo() {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(&path)?;
        match f.write(&[byte]) {
            Ok(_) => Ok(()),
            // A full fifo already holds a wake-up.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    } else {
        let mut s = UnixStream::connect(&path)?;
        s.set_write_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(&[byte])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        let req = cleanup::Request::Recipient(cleanup::RecipientSpec {
            address: "bob@example.org".into(),
            orcpt: None,
            notify: 0,
        });
        send(&mut buf, &req).unwrap();
        let back: cleanup::Request = recv(&mut buf.as_slice()).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn oversized_and_garbage_frames_are_errors() {
        let mut big = Vec::new();
        big.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            recv::<_, cleanup::Request>(&mut big.as_slice()),
            Err(Error::FrameTooLarge(_))
        ));
        let garbage = [0u8, 0, 0, 3, 0xff, 0xff, 0xff];
        assert!(matches!(
            recv::<_, cleanup::Request>(&mut garbage.as_slice()),
            Err(Error::Decode(_))
        ));
        let short = [0u8, 0, 0, 9, 1];
        assert!(matches!(
            recv::<_, cleanup::Request>(&mut short.as_slice()),
            Err(Error::Io(_))
        ));
    }
}
