//! One SASL exchange with the auth service (Dovecot's auth protocol, the
//! client side in [`auth::dovecot`]), for AUTH and for USER/PASS (sent as
//! PLAIN).

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

/// Runs an exchange with the service at `path`: `ask` gets each base64
/// challenge and returns the client's answer (None: the client went away
/// or answered `*`).
pub fn authenticate(
    path: &Path,
    mechanism: &str,
    initial: Option<&str>,
    info: &ClientInfo,
    ask: &mut dyn FnMut(&str) -> io::Result<Option<String>>,
) -> Outcome {
    let mut client = match dovecot::Client::connect(path) {
        Ok(c) => c,
        Err(e) => {
            maillog::warning!("connect to auth server {}: {e}", path.display());
            return Outcome::TempFail;
        }
    };
    if !client
        .mechanisms()
        .iter()
        .any(|m| m.eq_ignore_ascii_case(mechanism))
    {
        return Outcome::Fail;
    }
    let mut step = client.begin(mechanism, initial, info);
    loop {
        match step {
            Ok(Step::Ok(user)) => return Outcome::Ok(user),
            Ok(Step::Fail(_)) if client.last_failure_temporary() => return Outcome::TempFail,
            Ok(Step::Fail(_)) => return Outcome::Fail,
            Ok(Step::Continue(challenge)) => match ask(&challenge) {
                Ok(Some(answer)) if answer.trim() != "*" => step = client.respond(answer.trim()),
                Ok(_) | Err(_) => return Outcome::Aborted,
            },
            Err(e) => {
                maillog::warning!("auth server {}: {e}", path.display());
                return Outcome::TempFail;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
