//! Delivery requests: qmgr to a delivery agent (`private/<transport>`:
//! local, virtual, pipe services, smtp). The agent opens the queue file
//! itself to stream the content (and holds a shared lock on it), delivers
//! each recipient, marks each delivered recipient done in the file before
//! it answers (as Postfix's agents do), and answers with one status per
//! recipient. qmgr marks recipients done too (again, harmlessly) and
//! records failures; an agent that dies without answering leaves every
//! recipient it had not marked pending, so the message is retried, never
//! lost. A retry that may repeat an unmarked delivery carries the
//! attribute `maybe_delivered=1`, and the agent looks for the earlier
//! copy first.
//!
//! A connection may carry several requests, one after the other: when a
//! reply says [`Reply::more`], the client may send the next request on the
//! same connection within [`KEEP_IDLE`] instead of connecting again.
//!
//! A batch: the client may also send several requests at once (for
//! several messages to one destination), the first saying in
//! [`Request::batched`] how many follow it, at most [`BATCH_LIMIT`]; the
//! agent reads them all, delivers them, and answers one [`Reply`] per
//! request, in the order of the requests. local and virtual make their
//! Maildir deliveries of a batch durable together (one fsync of each
//! `new/` directory for the batch, not one per message), and only then
//! mark, log and answer; other agents deliver a batch one request after
//! the other.

use serde::{Deserialize, Serialize};

/// DSN NOTIFY bits.
pub mod notify {
    /// NOTIFY=NEVER.
    pub const NEVER: u8 = 1;
    /// NOTIFY=SUCCESS.
    pub const SUCCESS: u8 = 2;
    /// NOTIFY=FAILURE.
    pub const FAILURE: u8 = 4;
    /// NOTIFY=DELAY.
    pub const DELAY: u8 = 8;
}

/// The message attribute `trace_flags` (Postfix's MAIL_ATTR_TRACE_FLAGS):
/// cleanup writes it into a probe's queue file only when its own client
/// asked with [`crate::cleanup::flags::VERIFY_PROBE`], and qmgr passes it
/// on in [`Request::attributes`]. A delivery agent that sees
/// [`trace::MTA_VRFY`] or [`trace::USR_VRFY`] there delivers nothing: it
/// resolves the recipient as far as it would and reports what it would
/// have done (`delivers to mailbox`, the RCPT TO reply).
pub mod trace {
    /// The attribute name.
    pub const ATTR: &str = "trace_flags";
    /// DEL_REQ_FLAG_MTA_VRFY: an address verification probe (verify(8)).
    pub const MTA_VRFY: u32 = 1 << 8;
    /// DEL_REQ_FLAG_USR_VRFY: `sendmail -bv` (a report to the sender).
    pub const USR_VRFY: u32 = 1 << 9;
    /// DEL_REQ_FLAG_RECORD: record each delivery (`sendmail -v`).
    pub const RECORD: u32 = 1 << 10;

    /// The bits of an attribute value (0 for anything but a decimal number).
    pub fn parse(value: &str) -> u32 {
        value.trim().parse().unwrap_or(0)
    }

    /// The trace flags in a list of attributes.
    pub fn of(attributes: &[(String, String)]) -> u32 {
        attributes
            .iter()
            .find(|(k, _)| k == ATTR)
            .map_or(0, |(_, v)| parse(v))
    }

    /// True when the flags ask for verification only, no delivery
    /// (Postfix's DEL_REQ_TRACE_ONLY).
    pub fn verify_only(flags: u32) -> bool {
        flags & (MTA_VRFY | USR_VRFY) != 0
    }
}

/// One recipient in a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// Its index in the queue file (what qmgr marks done).
    pub index: u32,
    /// The address to deliver to.
    pub address: String,
    /// The address before rewriting (for Delivered-To/X-Original-To and DSNs).
    pub original: String,
    /// DSN ORCPT.
    pub dsn_orcpt: Option<String>,
    /// DSN NOTIFY bits.
    pub dsn_notify: u8,
}

/// One delivery request: one message, one nexthop, one or more recipients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Queue name where the file is (normally `active`).
    pub queue_name: String,
    /// Queue id.
    pub queue_id: String,
    /// Envelope sender, empty for `<>`.
    pub sender: String,
    /// Next hop from trivial-rewrite.
    pub nexthop: String,
    /// Arrival time in seconds since the epoch (for delay= in the log).
    pub arrival_secs: u64,
    /// Arrival time, microseconds part.
    pub arrival_micros: u32,
    /// Recipients.
    pub recipients: Vec<Recipient>,
    /// Message attributes from the queue file (client info, dsn_envid, dsn_ret, ...).
    pub attributes: Vec<(String, String)>,
    /// How many more requests the client sent right after this one, as
    /// one batch, before it reads any reply (0: a request alone; at most
    /// [`BATCH_LIMIT`]). Only the first request of a batch says so; the
    /// others carry 0.
    pub batched: u32,
}

/// The most requests that may follow the first one of a batch
/// ([`Request::batched`]); an agent sent more closes the connection.
pub const BATCH_LIMIT: u32 = 1000;

/// What happened to a recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Delivered (dsn 2.x.x): mark done.
    Delivered,
    /// Temporary failure (4.x.x): retry later.
    Deferred,
    /// Permanent failure (5.x.x): bounce to the sender, mark done.
    Bounced,
}

/// The result for one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The recipient's index in the queue file.
    pub index: u32,
    /// What happened.
    pub action: Action,
    /// Enhanced status code (`2.0.0`, `4.2.0`, `5.1.1`).
    pub dsn: String,
    /// relay= in the log (`local`, `virtual`, `pipe-name`, `host[addr]:port`).
    pub relay: String,
    /// The text for the log and the DSN (`delivered to maildir`).
    pub text: String,
    /// Recipients added by alias or .forward expansion are delivered as new
    /// messages through cleanup; this says how many, for the log.
    pub expanded: u32,
    /// Delivered into a mailbox where a retry flagged `maybe_delivered`
    /// finds the copy and does not write another (local's and virtual's
    /// Maildir and mbox deliveries): qmgr need not make the agent's done
    /// mark durable when this delivery finishes the message, since a crash
    /// before its removal brings the file back with `maybe_delivered`.
    pub findable: bool,
}

/// The agent's answer: one status for every recipient in the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// Per-recipient results, any order.
    pub statuses: Vec<Status>,
    /// The agent reads another request on this connection if the client
    /// sends one within [`KEEP_IDLE`] (false: it closes after this reply).
    pub more: bool,
}

/// How long a client (qmgr) may keep an idle agent connection whose last
/// reply said [`Reply::more`] and still send another request on it. An
/// agent waits [`NEXT_REQUEST_WAIT`] for the next request, well longer,
/// so that it never closes a connection that a client is about to use.
pub const KEEP_IDLE: std::time::Duration = std::time::Duration::from_secs(5);

/// How long an agent waits for another request on a connection.
pub const NEXT_REQUEST_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
