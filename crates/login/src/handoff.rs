//! The login process tells its parent who logged in: one line, the user
//! name, on a pipe the parent reads. The parent (root when the service runs
//! as root) then finds the mailbox and starts the mail process as that
//! user, connected to the login process by a socketpair made before the
//! login process was forked. A login that fails, or a client that leaves,
//! closes the pipe with nothing written: no mail process starts.
//!
//! The parent trusts the name: the login process got it from the auth
//! service's OK. (Dovecot goes further and has the master ask the auth
//! service again with a cookie; our auth service has no master interface
//! yet.)

use std::io::{self, Read, Write};

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

#[cfg(test)]
mod tests {
    use super::*;

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
