//! A stand-in auth service for the tests of pop3d's and imapd's
//! privileged side (and of [`crate::handoff::verify`]): it answers the
//! master REQUEST for one login only, and NOTFOUND for any other. Not
//! used by any program; public so both daemons' tests share it.

use std::io::{BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;

use auth::dovecot::{Event, ServerConnection, ServerReply, read_line, server_handshake};
use auth::sasl::Mechanism;

/// One login the stub confirms: the login process's pid, the AUTH
/// request id, the connection cookie and the user.
#[derive(Debug, Clone)]
pub struct Login {
    /// The login process's pid.
    pub pid: u32,
    /// The id of the AUTH request that succeeded.
    pub auth_id: u32,
    /// The cookie of the auth connection.
    pub cookie: String,
    /// The user the auth service authenticated.
    pub user: String,
}

/// Listens on `path` (in a thread, for the rest of the process) and
/// confirms `login` only.
///
/// # Errors
/// The socket cannot be bound.
pub fn serve(path: &Path, login: Login) -> std::io::Result<()> {
    let listener = UnixListener::bind(path)?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let Ok(mut w) = stream.try_clone() else {
                continue;
            };
            if w.write_all(server_handshake(&[Mechanism::Plain], 1, 1, "x").as_bytes())
                .is_err()
            {
                continue;
            }
            let mut r = BufReader::new(stream);
            let mut conn = ServerConnection::new(&[Mechanism::Plain]);
            while let Ok(Some(line)) = read_line(&mut r) {
                if let Ok(Event::MasterRequest {
                    id,
                    client_pid,
                    auth_id,
                    cookie,
                }) = conn.handle_line(&line)
                {
                    let reply = if client_pid == login.pid
                        && auth_id == login.auth_id
                        && cookie == login.cookie
                    {
                        ServerReply::User {
                            id,
                            user: login.user.clone(),
                            extra: Vec::new(),
                        }
                    } else {
                        ServerReply::NotFound(id)
                    };
                    if w.write_all(reply.encode().as_bytes()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    Ok(())
}
