//! SMTP AUTH through a Dovecot-protocol auth server (smtpd_sasl_type =
//! dovecot, smtpd_sasl_path): one [`Exchange`] per AUTH command, stepped
//! on a worker thread because the auth server may take its time (failed
//! attempts are delayed on purpose).

use std::path::PathBuf;

use crate::reply::Reply;
use crate::session::AuthStep;

use auth::dovecot;

/// Facts the auth server is told about the client.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// `smtp`.
    pub service: String,
    /// The client's address.
    pub remote_ip: String,
    /// Our address.
    pub local_ip: String,
    /// TLS is active.
    pub secured: bool,
}

/// What the client said.
#[derive(Debug, Clone)]
pub enum Input {
    /// The AUTH command, with its initial response.
    Begin(Option<String>),
    /// A line answering a 334 challenge.
    Respond(String),
}

/// One SASL exchange.
pub struct Exchange {
    path: PathBuf,
    mechanism: String,
    info: ClientInfo,
    client: Option<dovecot::Client>,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

fn temporary_failure() -> Reply {
    Reply::new(454, Some("4.7.0"), "Temporary authentication failure")
}

impl Exchange {
    /// A new exchange with the auth server at `path` (relative to the
    /// queue directory, where the daemon runs).
    pub fn new(path: PathBuf, mechanism: String, info: ClientInfo) -> Exchange {
        Exchange {
            path,
            mechanism,
            info,
            client: None,
        }
    }

    /// The mechanism's name, for the log.
    pub fn mechanism(&self) -> &str {
        &self.mechanism
    }

    /// One step; blocks on the auth server. `namaddr` names the client in
    /// warnings.
    pub fn step(&mut self, input: Input, namaddr: &str) -> AuthStep {
        let result = match input {
            Input::Respond(line) if line.trim() == "*" => {
                self.client = None;
                return AuthStep::Failure(Reply::new(501, Some("5.7.0"), "Authentication aborted"));
            }
            Input::Begin(initial) => self.begin(initial.as_deref()),
            Input::Respond(line) => match self.client.as_mut() {
                Some(c) => c.respond(line.trim()),
                None => return AuthStep::Failure(temporary_failure()),
            },
        };
        match result {
            Ok(dovecot::Step::Continue(challenge)) => AuthStep::Challenge(challenge),
            Ok(dovecot::Step::Ok(user)) => {
                self.client = None;
                AuthStep::Success(user)
            }
            Ok(dovecot::Step::Fail(reason)) => {
                let temporary = self
                    .client
                    .take()
                    .is_some_and(|c| c.last_failure_temporary());
                let reason = if reason.is_empty() {
                    "authentication failure".to_string()
                } else {
                    reason
                };
                maillog::warning!(
                    "{namaddr}: SASL {} authentication failed: {}",
                    self.mechanism,
                    maillog::printable(&reason, 200)
                );
                if temporary {
                    AuthStep::Failure(temporary_failure())
                } else {
                    AuthStep::Failure(Reply::new(
                        535,
                        Some("5.7.8"),
                        "Error: authentication failed: authentication failure",
                    ))
                }
            }
            Err(e) => {
                self.client = None;
                maillog::warning!(
                    "{namaddr}: SASL {} authentication failed: {e}",
                    self.mechanism
                );
                AuthStep::Failure(temporary_failure())
            }
        }
    }

    fn begin(&mut self, initial: Option<&str>) -> std::io::Result<dovecot::Step> {
        let mut c = dovecot::Client::connect(&self.path)?;
        if !c
            .mechanisms()
            .iter()
            .any(|m| m.eq_ignore_ascii_case(&self.mechanism))
        {
            return Ok(dovecot::Step::Fail(format!(
                "mechanism {} not available",
                self.mechanism
            )));
        }
        let info = dovecot::ClientInfo {
            service: self.info.service.clone(),
            remote_ip: self.info.remote_ip.clone(),
            local_ip: self.info.local_ip.clone(),
            secured: self.info.secured,
        };
        let step = c.begin(&self.mechanism, initial, &info)?;
        self.client = Some(c);
        Ok(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_auth_server_is_a_temporary_failure_and_star_aborts() {
        let dir = tempfile::tempdir().unwrap();
        let mut ex = Exchange::new(
            dir.path().join("no-auth"),
            "PLAIN".into(),
            ClientInfo::default(),
        );
        assert_eq!(ex.mechanism(), "PLAIN");
        match ex.step(Input::Begin(Some("AGEAYg==".into())), "c[192.0.2.1]") {
            AuthStep::Failure(r) => assert_eq!(
                r.to_string(),
                "454 4.7.0 Temporary authentication failure\r\n"
            ),
            other => panic!("{other:?}"),
        }
        match ex.step(Input::Respond("*".into()), "c[192.0.2.1]") {
            AuthStep::Failure(r) => {
                assert_eq!(r.to_string(), "501 5.7.0 Authentication aborted\r\n")
            }
            other => panic!("{other:?}"),
        }
    }
}
