//! One SASL exchange with the auth service (Dovecot's auth protocol, the
//! client side in [`auth::dovecot`]), for AUTH, for USER/PASS (sent as
//! PLAIN) and for APOP (sent as Dovecot's private APOP mechanism). As a
//! login ([`authenticate_login`]) it also yields the [`Ticket`] the
//! privileged side verifies.

use std::io;
use std::path::Path;

use auth::dovecot::{self, ClientInfo, Step};
use base64::Engine;

/// How an exchange ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Authenticated as this user.
    Ok(String),
    /// Wrong credentials (or a mechanism the service lacks).
    Fail,
    /// The auth service failed or could not be reached.
    TempFail,
    /// The client sent `*`.
    Aborted,
}

/// The base64 initial response of PLAIN for `user` and `password`.
pub fn plain_response(user: &str, password: &str) -> String {
    let mut raw = Vec::with_capacity(user.len() + password.len() + 2);
    raw.push(0);
    raw.extend_from_slice(user.as_bytes());
    raw.push(0);
    raw.extend_from_slice(password.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// What the privileged side needs to ask the auth service who logged in
/// (see [`crate::handoff::verify`]): the user the auth service named, the
/// id of the AUTH request that succeeded, and the cookie of that
/// connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The user name from the auth service's OK.
    pub user: String,
    /// The AUTH request's id.
    pub auth_id: u32,
    /// The COOKIE of the connection it was sent on.
    pub cookie: String,
}

/// The APOP initial response for AUTH APOP (Dovecot's form): base64 of
/// `timestamp NUL user NUL digest`, the digest from the client's 32 hex
/// digits as 16 bytes. None when `hex_digest` is not 32 hex digits.
pub fn apop_response(timestamp: &str, user: &str, hex_digest: &str) -> Option<String> {
    if hex_digest.len() != 32 || !hex_digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut raw = Vec::with_capacity(timestamp.len() + user.len() + 18);
    raw.extend_from_slice(timestamp.as_bytes());
    raw.push(0);
    raw.extend_from_slice(user.as_bytes());
    raw.push(0);
    for i in (0..32).step_by(2) {
        raw.push(u8::from_str_radix(hex_digest.get(i..i + 2)?, 16).ok()?);
    }
    Some(base64::engine::general_purpose::STANDARD.encode(raw))
}

/// True when the auth service at `path` offers `mechanism`, private ones
/// (APOP) included; false when it cannot be reached.
pub fn offers(path: &Path, mechanism: &str) -> bool {
    dovecot::Client::connect(path).is_ok_and(|c| c.offers(mechanism))
}

/// Runs an exchange with the service at `path`: `ask` gets each base64
/// challenge and returns the client's answer (None: the client went away
/// or answered `*`). A check only (`nologin`): use [`authenticate_login`]
/// when a mail process is to be started for the user.
pub fn authenticate(
    path: &Path,
    mechanism: &str,
    initial: Option<&str>,
    info: &ClientInfo,
    ask: &mut dyn FnMut(&str) -> io::Result<Option<String>>,
) -> Outcome {
    exchange(path, mechanism, initial, info, ask, false).0
}

/// As [`authenticate`], as a login: on success also the [`Ticket`] that
/// the privileged side verifies with the auth service before it starts a
/// mail process ([`crate::handoff::send_ticket`], [`crate::handoff::verify`]).
pub fn authenticate_login(
    path: &Path,
    mechanism: &str,
    initial: Option<&str>,
    info: &ClientInfo,
    ask: &mut dyn FnMut(&str) -> io::Result<Option<String>>,
) -> (Outcome, Option<Ticket>) {
    exchange(path, mechanism, initial, info, ask, true)
}

fn exchange(
    path: &Path,
    mechanism: &str,
    initial: Option<&str>,
    info: &ClientInfo,
    ask: &mut dyn FnMut(&str) -> io::Result<Option<String>>,
    login: bool,
) -> (Outcome, Option<Ticket>) {
    let mut client = match dovecot::Client::connect(path) {
        Ok(c) => c,
        Err(e) => {
            maillog::warning!("connect to auth server {}: {e}", path.display());
            return (Outcome::TempFail, None);
        }
    };
    if !client.offers(mechanism) {
        return (Outcome::Fail, None);
    }
    client.set_login(login);
    let mut step = client.begin(mechanism, initial, info);
    let outcome = loop {
        match step {
            Ok(Step::Ok(user)) => break Outcome::Ok(user),
            Ok(Step::Fail(_)) if client.last_failure_temporary() => break Outcome::TempFail,
            Ok(Step::Fail(_)) => break Outcome::Fail,
            Ok(Step::Continue(challenge)) => match ask(&challenge) {
                Ok(Some(answer)) if answer.trim() != "*" => step = client.respond(answer.trim()),
                Ok(_) | Err(_) => break Outcome::Aborted,
            },
            Err(e) => {
                maillog::warning!("auth server {}: {e}", path.display());
                break Outcome::TempFail;
            }
        }
    };
    let ticket = match (&outcome, client.last_request_id(), client.cookie()) {
        (Outcome::Ok(user), Some(auth_id), Some(cookie)) if login => Some(Ticket {
            user: user.clone(),
            auth_id,
            cookie: cookie.to_string(),
        }),
        _ => None,
    };
    (outcome, ticket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apop_response_form() {
        let r = apop_response("<1.2@h>", "mrose", "c4c9334bac560ecc979e58001b3e22fb").unwrap();
        let raw = base64::engine::general_purpose::STANDARD.decode(r).unwrap();
        assert_eq!(&raw[..14], b"<1.2@h>\0mrose\0");
        assert_eq!(raw.len(), 14 + 16);
        assert_eq!(raw[14], 0xc4);
        assert_eq!(apop_response("<t>", "u", "xyz"), None);
        assert_eq!(apop_response("<t>", "u", &"g".repeat(32)), None);
    }

    #[test]
    fn plain_and_no_server() {
        assert_eq!(plain_response("a", "b"), "AGEAYg==");
        let dir = tempfile::tempdir().unwrap();
        let out = authenticate(
            &dir.path().join("none"),
            "PLAIN",
            Some("AGEAYg=="),
            &ClientInfo::default(),
            &mut |_| Ok(None),
        );
        assert_eq!(out, Outcome::TempFail);
    }
}
