//! showq: lists the queue for postqueue -p / mailq, which users run but
//! cannot read the queue themselves. The client sends [`Request::List`] and
//! reads [`Reply::Entry`] frames until [`Reply::End`].

use serde::{Deserialize, Serialize};

/// The socket, under the queue directory.
pub const SERVICE: &str = "public/showq";

/// From client to showq.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// List every message in maildrop, incoming, active, deferred and hold.
    List,
}

/// One recipient still to be delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRecipient {
    /// Its address.
    pub address: String,
    /// Why it was deferred (from defer/<id>), empty if it was not.
    pub reason: String,
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Queue name (`active`, `deferred`, `hold`, `incoming`, `maildrop`).
    pub queue_name: String,
    /// Queue id.
    pub queue_id: String,
    /// Arrival time, seconds since the epoch.
    pub arrival_secs: u64,
    /// Size of the message content in bytes.
    pub size: u64,
    /// Envelope sender, empty for `<>`.
    pub sender: String,
    /// Recipients not yet done.
    pub recipients: Vec<PendingRecipient>,
    /// Why the message is forced to expire, or other notes (unused now).
    pub notes: Vec<String>,
}

/// From showq to client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// One message.
    Entry(Message),
    /// No more.
    End,
}
