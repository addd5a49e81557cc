//! anvil: connection count and rate per (service, client), for smtpd's
//! smtpd_client_connection_count_limit and _rate_limit; message (MAIL
//! FROM) and AUTH rates for smtpd_client_message_rate_limit and
//! smtpd_client_auth_rate_limit.
//!
//! One request frame and one reply frame per call ([`crate::call`]).

use serde::{Deserialize, Serialize};

/// The socket, under the queue directory.
pub const SERVICE: &str = "private/anvil";

/// From a server (smtpd) to anvil.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// A client connected: count it.
    Connect {
        /// The service name (`smtp`, `submission`, ...).
        service: String,
        /// The client address as text.
        client: String,
    },
    /// A client disconnected.
    Disconnect {
        /// The service name.
        service: String,
        /// The client address as text.
        client: String,
    },
    /// A client sent MAIL FROM: count it; the reply's `rate` is the
    /// client's message rate.
    Message {
        /// The service name.
        service: String,
        /// The client address as text.
        client: String,
    },
    /// A client sent AUTH: count it; the reply's `rate` is the client's
    /// AUTH rate.
    Auth {
        /// The service name.
        service: String,
        /// The client address as text.
        client: String,
    },
    /// Report the counts without changing them.
    Lookup {
        /// The service name.
        service: String,
        /// The client address as text.
        client: String,
    },
}

/// From anvil to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The current counts for (service, client).
    Counts {
        /// Concurrent connections now.
        count: u32,
        /// Connections in the last anvil_rate_time_unit (for Message and
        /// Auth: messages or AUTH commands in it).
        rate: u32,
    },
}

/// How long a client waits for anvil: a stuck anvil must not hold up
/// smtpd, which lets the client in when anvil cannot answer.
pub const CLIENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Sends one request to anvil under `queue_dir` and returns (count, rate).
///
/// # Errors
/// anvil is not running or did not answer in [`CLIENT_TIMEOUT`].
pub fn call_at(queue_dir: &std::path::Path, request: &Request) -> std::io::Result<(u32, u32)> {
    call(queue_dir, SERVICE, request)
}

/// [`call_at`] for an anvil at another socket (`anvil_service_name`).
///
/// # Errors
/// As [`call_at`].
pub fn call(
    queue_dir: &std::path::Path,
    service: &str,
    request: &Request,
) -> std::io::Result<(u32, u32)> {
    let to_io = |e: crate::Error| match e {
        crate::Error::Io(e) => e,
        crate::Error::Connect { source, .. } => source,
        other => std::io::Error::other(other.to_string()),
    };
    let mut s = crate::connect(queue_dir, service).map_err(to_io)?;
    s.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    s.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    crate::send(&mut s, request).map_err(to_io)?;
    match crate::recv(&mut s).map_err(to_io)? {
        Reply::Counts { count, rate } => Ok((count, rate)),
    }
}
