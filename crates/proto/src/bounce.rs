//! bounce, defer and trace: per-recipient status logs and the delivery
//! status notifications made from them (RFC 3464).
//!
//! qmgr appends a record for each failed (bounce log) or deferred (defer
//! log) recipient, then asks for a notification with [`Request::Flush`] (a
//! bounce) or [`Request::Warn`] (a delay warning). The bounce daemon sends
//! the notification through cleanup from the null sender and answers.

use serde::{Deserialize, Serialize};

/// The socket for bounce logs and non-delivery notifications.
pub const SERVICE: &str = "private/bounce";
/// The socket for defer logs and delay warnings.
pub const DEFER_SERVICE: &str = "private/defer";

/// Which per-message log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Log {
    /// bounce/<id>: permanent failures.
    Bounce,
    /// defer/<id>: temporary failures, with the latest reason.
    Defer,
    /// trace/<id>: successes that the sender asked to hear of (NOTIFY=SUCCESS).
    Trace,
}

/// One recipient's record in a log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The recipient address.
    pub recipient: String,
    /// Its original address.
    pub original: String,
    /// DSN ORCPT.
    pub dsn_orcpt: Option<String>,
    /// Enhanced status code.
    pub dsn: String,
    /// `delivered`, `deferred`, `failed`, `expanded`, `relayed`.
    pub action: String,
    /// relay= value.
    pub relay: String,
    /// The reason text.
    pub text: String,
}

/// Requests to the bounce daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Add a record to a message's log.
    Append {
        /// Which log.
        log: Log,
        /// The message.
        queue_id: String,
        /// The record.
        entry: Entry,
    },
    /// Send a non-delivery notification for everything in bounce/<id> (and
    /// success notices from trace/<id>), then remove those logs.
    Flush {
        /// Queue name of the original message (to copy its content).
        queue_name: String,
        /// The message.
        queue_id: String,
        /// Its envelope sender; `<>` means: send to postmaster once, never loop.
        sender: String,
    },
    /// Send a delay warning for the records in defer/<id>.
    Warn {
        /// Queue name of the original message.
        queue_name: String,
        /// The message.
        queue_id: String,
        /// Its envelope sender.
        sender: String,
    },
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// Done (notification queued, with its queue id when one was sent).
    Ok {
        /// Queue id of the notification, if one was sent.
        notification: Option<String>,
    },
    /// Could not be done now; qmgr keeps the message and tries again.
    Failed {
        /// Why.
        reason: String,
    },
}
