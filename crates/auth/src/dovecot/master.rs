//! The master's side of the login hand-off (Dovecot's auth-master
//! `REQUEST`): the privileged process that starts a mail process asks the
//! auth server who a login process authenticated, instead of believing
//! the login process.
//!
//! ```text
//! C: VERSION 1 2
//! C: REQUEST <id> <login pid> <login's AUTH id> <login connection's COOKIE>
//!                             S: (handshake lines: ignored)
//!                             S: USER <id> <user>      (and forgets it)
//!                          or S: NOTFOUND <id>
//!                          or S: FAIL <id> reason=...
//! ```

use std::io::{self, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::client::CLIENT_TIMEOUT;
use super::line::{ClientRequest, ServerReply, VERSION_MAJOR, VERSION_MINOR, printable, read_line};

/// What the auth server said about a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterAnswer {
    /// The login process did authenticate this user.
    User(String),
    /// No such finished login.
    NotFound,
    /// The server refused to answer (not a privileged peer...).
    Fail(String),
}

/// Asks the auth server at `path` who the login process `client_pid`
/// authenticated with its request `auth_id` on the connection whose
/// cookie is `cookie`. Each finished login can be asked for once.
///
/// # Errors
/// Connect and I/O errors, timeouts, a connection closed before the answer.
pub fn master_request(
    path: &Path,
    client_pid: u32,
    auth_id: u32,
    cookie: &str,
) -> io::Result<MasterAnswer> {
    let stream = UnixStream::connect(path)?;
    request_over(stream, client_pid, auth_id, cookie)
}

/// As [`master_request`], over a connected stream.
///
/// # Errors
/// As [`master_request`].
pub fn request_over(
    stream: UnixStream,
    client_pid: u32,
    auth_id: u32,
    cookie: &str,
) -> io::Result<MasterAnswer> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    let id = 1;
    let text = format!(
        "{}{}",
        ClientRequest::Version(VERSION_MAJOR, VERSION_MINOR).encode(),
        ClientRequest::Request {
            id,
            client_pid,
            auth_id,
            cookie: cookie.to_string(),
        }
        .encode()
    );
    writer.write_all(text.as_bytes())?;
    let mut reader = BufReader::new(stream);
    // The handshake is a handful of lines; bound the wait anyway.
    for _ in 0..1000 {
        let Some(line) = read_line(&mut reader)? else {
            break;
        };
        match ServerReply::parse(&line) {
            Ok(ServerReply::Version(major, _)) if major != VERSION_MAJOR => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("auth server protocol version mismatch ({major} vs. {VERSION_MAJOR})"),
                ));
            }
            Ok(ServerReply::User { id: i, user, .. }) if i == id => {
                return Ok(MasterAnswer::User(user));
            }
            Ok(ServerReply::NotFound(i)) if i == id => return Ok(MasterAnswer::NotFound),
            Ok(ServerReply::Fail { id: i, reason, .. }) if i == id => {
                return Ok(MasterAnswer::Fail(printable(
                    reason.as_deref().unwrap_or("refused"),
                )));
            }
            _ => {}
        }
    }
    Err(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection lost to authentication server",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dovecot::{Event, ServerConnection, server_handshake};
    use crate::sasl::Mechanism;

    #[test]
    fn request_and_answers() {
        for (answer, want) in [
            (
                ServerReply::User {
                    id: 1,
                    user: "alice@virt.test".into(),
                    extra: Vec::new(),
                },
                MasterAnswer::User("alice@virt.test".into()),
            ),
            (ServerReply::NotFound(1), MasterAnswer::NotFound),
        ] {
            let (a, b) = UnixStream::pair().unwrap();
            let t = std::thread::spawn(move || {
                let mut w = b.try_clone().unwrap();
                w.write_all(server_handshake(&[Mechanism::Plain], 1, 1, "c0").as_bytes())
                    .unwrap();
                let mut r = BufReader::new(b);
                let mut conn = ServerConnection::new(&[Mechanism::Plain]);
                loop {
                    let line = read_line(&mut r).unwrap().unwrap();
                    if let Ok(Event::MasterRequest {
                        id,
                        client_pid,
                        auth_id,
                        cookie,
                    }) = conn.handle_line(&line)
                    {
                        assert_eq!(
                            (id, client_pid, auth_id, cookie.as_str()),
                            (1, 4242, 7, "c\tx")
                        );
                        w.write_all(answer.encode().as_bytes()).unwrap();
                        return;
                    }
                }
            });
            assert_eq!(request_over(a, 4242, 7, "c\tx").unwrap(), want);
            t.join().unwrap();
        }
    }
}
