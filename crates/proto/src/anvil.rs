//! anvil: connection count and rate per (service, client), for smtpd's
//! smtpd_client_connection_count_limit and _rate_limit.
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
        /// Connections in the last anvil_rate_time_unit.
        rate: u32,
    },
}
