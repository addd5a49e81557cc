//! After login: the login process relays cleartext between the client
//! (whose TLS it terminates) and the mail process, until either side
//! closes or the client is idle for the idle timeout.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::conn::Client;

/// Relays until one side closes or `idle` passes without client input.
/// `pending` (input pipelined after the login command) goes to the mail
/// process first. Returns true when the idle timeout ended it.
///
/// # Errors
/// I/O errors on either side.
pub fn relay(client: &mut Client, mut mail: UnixStream, idle: Duration) -> io::Result<bool> {
    let pending = client.take_pending();
    if !pending.is_empty() {
        mail.write_all(&pending)?;
    }
    let mut buf = vec![0u8; 64 * 1024];
    let ms = i32::try_from(idle.as_millis()).unwrap_or(i32::MAX);
    loop {
        let (client_ready, mail_ready) = {
            let conn = client.conn()?;
            let tcp = conn.tcp().as_fd();
            let mut fds = [
                PollFd::new(tcp, PollFlags::POLLIN),
                PollFd::new(mail.as_fd(), PollFlags::POLLIN),
            ];
            let n = match poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(io::Error::from(e)),
            };
            if n == 0 {
                return Ok(true);
            }
            let ready = |f: &PollFd<'_>| {
                f.revents().is_some_and(|r| {
                    r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                })
            };
            (ready(&fds[0]), ready(&fds[1]))
        };
        if mail_ready {
            let n = mail.read(&mut buf)?;
            if n == 0 {
                return Ok(false);
            }
            let conn = client.conn()?;
            conn.write_all(buf.get(..n).unwrap_or_default())?;
            conn.flush()?;
        }
        if client_ready {
            let n = client.conn()?.read(&mut buf)?;
            if n == 0 {
                return Ok(false);
            }
            mail.write_all(buf.get(..n).unwrap_or_default())?;
        }
    }
}
