//! The login process tells its parent who logged in: one line, the user
//! name, on a pipe the parent reads. The parent (root when the service runs
//! as root) then finds the mailbox and starts the mail process as that
//! user, connected to the login process by a socketpair made before the
//! login process was forked. A login that fails, or a client that leaves,
//! closes the pipe with nothing written: no mail process starts.
//!
//! The parent need not trust the login process: with [`send_ticket`] the
//! login process sends the user, the id of its successful AUTH request and
//! its auth connection's cookie ([`crate::sasl::Ticket`], from
//! [`crate::sasl::authenticate_login`]), and the parent, which knows the
//! login process's pid because it started it, asks the auth service with
//! [`verify`] (Dovecot's auth-master REQUEST). Only a user that the auth
//! service authenticated for that very process comes back, once; a
//! forged or replayed ticket gets nothing, and no mail process starts.
//!
//! ```text
//! login process:  let (out, ticket) = sasl::authenticate_login(path, mech, initial, &info, &mut ask);
//!                 handoff::send_ticket(&mut pipe, &ticket)?;
//! parent (root):  let ticket = handoff::receive_ticket(&pipe)?;      // Option<Ticket>
//!                 match handoff::verify(path, login_child.id(), &ticket) {
//!                     Verified::User(name) => start the mail process as name,
//!                     Verified::Refused | Verified::TempFail => no mail process,
//!                 }
//! ```
//!
//! ([`send`] and [`receive`], the name alone, remain for callers that
//! have not moved to tickets; nothing verifies that name.)

use std::io::{self, Read, Write};
use std::path::Path;

use auth::dovecot::{self, MasterAnswer};

use crate::sasl::Ticket;

/// Longest user name passed.
pub const NAME_LIMIT: usize = 512;

/// Sends the user name.
///
/// # Errors
/// Write errors; `InvalidInput` for a name with a line end or NUL.
pub fn send<W: Write>(mut pipe: W, user: &str) -> io::Result<()> {
    if user.is_empty() || user.len() > NAME_LIMIT || user.bytes().any(|b| b == b'\n' || b == 0) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    pipe.write_all(format!("{user}\n").as_bytes())?;
    pipe.flush()
}

/// Waits for the user name; None when the pipe closed without one.
///
/// # Errors
/// Read errors.
pub fn receive<R: Read>(pipe: R) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    pipe.take(u64::try_from(NAME_LIMIT).unwrap_or(512) + 1)
        .read_to_end(&mut buf)?;
    let Some(end) = buf.iter().position(|&b| b == b'\n') else {
        return Ok(None);
    };
    buf.truncate(end);
    Ok(String::from_utf8(buf).ok().filter(|s| !s.is_empty()))
}

/// Longest ticket line.
pub const TICKET_LIMIT: usize = NAME_LIMIT + 128;

/// Sends a ticket: `user TAB auth_id TAB cookie LF`.
///
/// # Errors
/// Write errors; `InvalidInput` for a name or cookie with a TAB, line end
/// or NUL, or too long.
pub fn send_ticket<W: Write>(mut pipe: W, ticket: &Ticket) -> io::Result<()> {
    let bad = |s: &str, max: usize| {
        s.is_empty() || s.len() > max || s.bytes().any(|b| matches!(b, b'\n' | b'\r' | b'\t' | 0))
    };
    if bad(&ticket.user, NAME_LIMIT) || bad(&ticket.cookie, 100) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    pipe.write_all(format!("{}\t{}\t{}\n", ticket.user, ticket.auth_id, ticket.cookie).as_bytes())?;
    pipe.flush()
}

/// Parses one ticket line (with or without its LF).
pub fn parse_ticket(line: &[u8]) -> Option<Ticket> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let text = std::str::from_utf8(line).ok()?;
    let mut f = text.split('\t');
    let (Some(user), Some(id), Some(cookie), None) = (f.next(), f.next(), f.next(), f.next())
    else {
        return None;
    };
    if user.is_empty() || cookie.is_empty() || user.len() > NAME_LIMIT {
        return None;
    }
    Some(Ticket {
        user: user.to_string(),
        auth_id: id.parse().ok()?,
        cookie: cookie.to_string(),
    })
}

/// Waits for a ticket; None when the pipe closed without one or the line
/// is not a ticket. Reads a byte at a time up to the LF, so that what
/// follows stays in the pipe.
///
/// # Errors
/// Read errors.
pub fn receive_ticket<R: Read>(mut pipe: R) -> io::Result<Option<Ticket>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if pipe.read(&mut byte)? == 0 {
            return Ok(None);
        }
        if byte[0] == b'\n' {
            return Ok(parse_ticket(&line));
        }
        line.push(byte[0]);
        if line.len() > TICKET_LIMIT {
            return Ok(None);
        }
    }
}

/// What the auth service said about a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// The auth service authenticated this user for the login process:
    /// start the mail process as this user (the auth service's name).
    User(String),
    /// Not a login of that process (forged, replayed, expired): start
    /// nothing.
    Refused,
    /// The auth service could not be asked: start nothing, try later.
    TempFail,
}

/// Asks the auth service at `auth_path` whether the login process
/// `login_pid` (the parent knows it: it started the process) did
/// authenticate `ticket`'s user. Logs a refusal. The same call serves
/// pop3d and imapd.
pub fn verify(auth_path: &Path, login_pid: u32, ticket: &Ticket) -> Verified {
    match dovecot::master_request(auth_path, login_pid, ticket.auth_id, &ticket.cookie) {
        Ok(MasterAnswer::User(u)) if u == ticket.user => Verified::User(u),
        Ok(MasterAnswer::User(u)) => {
            maillog::warning!(
                "login process {login_pid} claimed user <{}>, but the auth service authenticated <{}>: refused",
                maillog::printable(&ticket.user, 100),
                maillog::printable(&u, 100)
            );
            Verified::Refused
        }
        Ok(MasterAnswer::NotFound) => {
            maillog::warning!(
                "login process {login_pid} claimed user <{}>, which the auth service did not authenticate for it: refused",
                maillog::printable(&ticket.user, 100)
            );
            Verified::Refused
        }
        Ok(MasterAnswer::Fail(why)) => {
            maillog::warning!(
                "auth service {}: REQUEST refused: {why}",
                auth_path.display()
            );
            Verified::TempFail
        }
        Err(e) => {
            maillog::warning!("auth service {}: REQUEST: {e}", auth_path.display());
            Verified::TempFail
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets() {
        let t = Ticket {
            user: "alice@virt.test".into(),
            auth_id: 3,
            cookie: "00ff".into(),
        };
        let mut out = Vec::new();
        send_ticket(&mut out, &t).unwrap();
        out.extend_from_slice(b"+OK rest");
        let mut r = &out[..];
        assert_eq!(receive_ticket(&mut r).unwrap(), Some(t.clone()));
        assert_eq!(r, b"+OK rest");
        assert_eq!(receive_ticket(&b"alice\n"[..]).unwrap(), None);
        assert_eq!(receive_ticket(&b"a\tx\tc\n"[..]).unwrap(), None);
        assert_eq!(receive_ticket(&b""[..]).unwrap(), None);
        let mut bad = t.clone();
        bad.user = "a\tb".into();
        assert!(send_ticket(&mut Vec::new(), &bad).is_err());
        // No auth service: a temporary failure, never a user.
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(verify(&dir.path().join("auth"), 1, &t), Verified::TempFail);
    }

    #[test]
    fn a_name_or_nothing() {
        let mut out = Vec::new();
        send(&mut out, "alice@virt.test").unwrap();
        assert_eq!(
            receive(&out[..]).unwrap().as_deref(),
            Some("alice@virt.test")
        );
        assert_eq!(receive(&b""[..]).unwrap(), None);
        assert_eq!(receive(&b"partial"[..]).unwrap(), None);
        assert!(send(&mut Vec::new(), "a\nb").is_err());
    }
}

/// How the login process hands a logged-in session over: the line it
/// writes after its ticket (and, for imapd, the login command's tag).
#[derive(Debug, PartialEq, Eq)]
pub enum Mode {
    /// It relays (TLS): the mail process gets the socketpair.
    Relay,
    /// The mail process gets the client's socket; base64 of the input
    /// the client pipelined after its login.
    Direct(String),
}

/// Longest pipelined input handed over with `direct` (more: relayed).
pub const DIRECT_PENDING_LIMIT: usize = 16 * 1024;

/// Reads one line a byte at a time (what follows stays in the socket for
/// the mail process); None at the end of input, past `limit` bytes or
/// for text that is not UTF-8.
pub fn read_line(mut sock: &std::os::unix::net::UnixStream, limit: usize) -> Option<String> {
    use std::io::Read;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match sock.read(&mut byte) {
            Ok(1) => {}
            _ => return None,
        }
        if byte[0] == b'\n' {
            return String::from_utf8(line).ok();
        }
        line.push(byte[0]);
        if line.len() > limit {
            return None;
        }
    }
}

/// Reads the [`Mode`] line.
pub fn read_mode(sock: &std::os::unix::net::UnixStream) -> Option<Mode> {
    let text = read_line(sock, DIRECT_PENDING_LIMIT * 2)?;
    match text.split_once(' ') {
        None if text == "relay" => Some(Mode::Relay),
        None if text == "direct" => Some(Mode::Direct(String::new())),
        Some(("direct", b64)) => Some(Mode::Direct(b64.to_string())),
        _ => None,
    }
}
