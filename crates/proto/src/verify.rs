//! verify: the address verification service (private/verify), Postfix's
//! verify_clnt protocol with typed messages.
//!
//! smtpd's reject_unverified_recipient and reject_unverified_sender ask
//! [`Request::Query`]; verify answers from its cache and, for an address
//! it knows nothing (or nothing fresh) about, sends a probe message
//! through cleanup. qmgr reports each probe recipient's fate with
//! [`Request::Update`]. One request and one reply per call ([`query`],
//! [`update`]); a client may send several on one connection.

use serde::{Deserialize, Serialize};

/// The socket, under the queue directory (address_verify_service_name).
pub const SERVICE: &str = "private/verify";

/// An address's status: Postfix's DEL_RCPT_STAT_* (the numbers are the
/// cache entries' first field, as in Postfix's verify_cache).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Deliverable (DEL_RCPT_STAT_OK, 0).
    Deliverable,
    /// Temporarily undeliverable (DEL_RCPT_STAT_DEFER, 1).
    Deferred,
    /// Undeliverable (DEL_RCPT_STAT_BOUNCE, 2).
    Undeliverable,
    /// Not known yet: a probe is on its way (DEL_RCPT_STAT_TODO, 3).
    Unknown,
}

impl Status {
    /// Postfix's number for the status (cache entries, logs).
    pub fn code(self) -> u8 {
        match self {
            Status::Deliverable => 0,
            Status::Deferred => 1,
            Status::Undeliverable => 2,
            Status::Unknown => 3,
        }
    }

    /// The status with Postfix's number `n`.
    pub fn from_code(n: u8) -> Option<Status> {
        match n {
            0 => Some(Status::Deliverable),
            1 => Some(Status::Deferred),
            2 => Some(Status::Undeliverable),
            3 => Some(Status::Unknown),
            _ => None,
        }
    }
}

/// From a client (smtpd, qmgr) to verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// What is known about `address`? Sends a probe when nothing fresh is.
    Query {
        /// The address, internal form.
        address: String,
    },
    /// A probe's result for `address` (from qmgr).
    Update {
        /// The address, internal form.
        address: String,
        /// Deliverable, deferred or undeliverable.
        status: Status,
        /// The delivery agent's text (`delivers to mailbox`, `unknown user: "x"`).
        reason: String,
    },
}

/// From verify to the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The answer to a query.
    Status {
        /// What is known.
        status: Status,
        /// Why (the text of the last probe, or `Address verification in progress`).
        reason: String,
    },
    /// An update was taken.
    Ok,
    /// The request was refused (a malformed address); Postfix's VRFY_STAT_BAD.
    Bad,
}

/// How long a client waits for verify.
pub const CLIENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Asks verify at `service` under `queue_dir` about `address`.
///
/// # Errors
/// verify is not running or did not answer in [`CLIENT_TIMEOUT`].
pub fn query(
    queue_dir: &std::path::Path,
    service: &str,
    address: &str,
) -> Result<Reply, crate::Error> {
    call(
        queue_dir,
        service,
        &Request::Query {
            address: address.to_string(),
        },
    )
}

/// Tells verify at `service` under `queue_dir` what a probe found.
///
/// # Errors
/// verify is not running or did not answer in [`CLIENT_TIMEOUT`].
pub fn update(
    queue_dir: &std::path::Path,
    service: &str,
    address: &str,
    status: Status,
    reason: &str,
) -> Result<Reply, crate::Error> {
    call(
        queue_dir,
        service,
        &Request::Update {
            address: address.to_string(),
            status,
            reason: reason.to_string(),
        },
    )
}

fn call(
    queue_dir: &std::path::Path,
    service: &str,
    request: &Request,
) -> Result<Reply, crate::Error> {
    let mut s = crate::connect(queue_dir, service)?;
    s.set_read_timeout(Some(CLIENT_TIMEOUT))
        .map_err(crate::Error::Io)?;
    s.set_write_timeout(Some(CLIENT_TIMEOUT))
        .map_err(crate::Error::Io)?;
    crate::send(&mut s, request)?;
    crate::recv(&mut s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_postfix_numbers() {
        for n in 0..4 {
            assert_eq!(Status::from_code(n).map(Status::code), Some(n));
        }
        assert_eq!(Status::from_code(4), None);
        assert_eq!(Status::Unknown.code(), 3);
    }
}
