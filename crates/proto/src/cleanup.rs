//! cleanup: pickup, smtpd, bounce and sendmail -bs hand a message to
//! cleanup, which rewrites it, writes the queue file, fsyncs it and only then
//! answers [`Reply::Queued`].
//!
//! A conversation: [`Request::Begin`], any number of [`Request::Recipient`]
//! (recipients may also come from headers with [`flags::EXTRACT_RECIPIENTS`]),
//! [`Request::Content`] chunks of the message (header and body as the client
//! received it, lines ending in `\n` — smtpd removes the CR and the dot
//! stuffing), then [`Request::End`]. cleanup answers [`Reply::Started`]
//! with the new queue id right after `Begin` (so smtpd and pickup can log
//! `QUEUEID: client=...`), and once more after `End`; or early with
//! [`Reply::Rejected`] when it cannot go on (size limit), then hangs up.

use serde::{Deserialize, Serialize};

/// The socket, under the queue directory.
pub const SERVICE: &str = "public/cleanup";

/// Bits of [`Begin::flags`].
pub mod flags {
    /// Take recipients from To/Cc/Bcc (sendmail -t) and remove Bcc.
    pub const EXTRACT_RECIPIENTS: u32 = 1 << 0;
    /// Put the message on hold (a HOLD action also does).
    pub const HOLD: u32 = 1 << 1;
    /// A local submission (sendmail/pickup): the Received header says so.
    pub const LOCAL_SUBMISSION: u32 = 1 << 2;
    /// Skip header_checks and body_checks (bounces, Postfix's -o receive_override_options).
    pub const NO_CHECKS: u32 = 1 << 3;
    /// Skip canonical and virtual alias mapping.
    pub const NO_ADDRESS_MAPS: u32 = 1 << 4;
    /// Message is a bounce or notification: never bounce it in turn.
    pub const NOTIFICATION: u32 = 1 << 5;
    /// An address verification probe (verify only): cleanup writes the
    /// `trace_flags` attribute ([`crate::deliver::trace::MTA_VRFY`]) so
    /// that qmgr and the delivery agents deliver nothing. Only this flag
    /// sets it: a `trace_flags` in [`super::Begin::attributes`] is dropped.
    pub const VERIFY_PROBE: u32 = 1 << 6;
    /// `sendmail -bv`: verify the recipients and mail the sender a
    /// report instead of delivering. cleanup writes `trace_flags` with
    /// [`crate::deliver::trace::USR_VRFY`]; postdrop and pickup pass this
    /// flag on from a local submission.
    pub const VERIFY_REPORT: u32 = 1 << 7;
}

/// Start of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Begin {
    /// Bits from [`flags`].
    pub flags: u32,
    /// The envelope sender; empty for the null sender `<>`.
    pub sender: String,
    /// The full name for a missing From header (sendmail -F).
    pub full_name: Option<String>,
    /// Facts for Received and the log: `client_name`, `client_address`,
    /// `helo_name`, `protocol` (SMTP, ESMTP, ESMTPS, ESMTPSA), `sasl_username`,
    /// `tls` (description), `login_name` (local submitter), `rewrite_context`
    /// (`local` or `remote`), `dsn_envid`, `dsn_ret` (`FULL`/`HDRS`), `body` (`7BIT`/`8BITMIME`).
    pub attributes: Vec<(String, String)>,
}

/// One envelope recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientSpec {
    /// The address as given (cleanup rewrites it).
    pub address: String,
    /// DSN ORCPT, when the client gave one.
    pub orcpt: Option<String>,
    /// DSN NOTIFY bits ([`crate::deliver::notify`]); 0 = default.
    pub notify: u8,
}

/// From client to cleanup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// First message of a conversation.
    Begin(Begin),
    /// An envelope recipient.
    Recipient(RecipientSpec),
    /// Up to [`crate::CONTENT_CHUNK`] bytes of message text.
    Content(Vec<u8>),
    /// End of the message: write, fsync, answer.
    End,
    /// The client gives up (smtpd lost its client): discard, answer nothing.
    Abort,
    /// An envelope attribute learned after Begin (smtpd's FILTER and
    /// REDIRECT access actions): `content_filter` (`transport:nexthop`,
    /// replaces any earlier one) or `redirect` (the only recipient).
    Attribute(String, String),
}

/// From cleanup to client: one reply per message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// Answer to `Begin`: the queue file exists (not yet complete).
    Started {
        /// Its queue id.
        queue_id: String,
    },
    /// The queue file is complete and fsynced.
    Queued {
        /// Its queue id.
        queue_id: String,
    },
    /// Accepted and thrown away (a DISCARD action, or no recipients left
    /// after expansion to nothing): the client treats it as success.
    Discarded {
        /// Why, for the log.
        reason: String,
    },
    /// Refused: the client reports a permanent (5.x.x) or temporary (4.x.x)
    /// error with this enhanced status code and text.
    Rejected {
        /// Enhanced status code, for example `5.3.4`.
        status: String,
        /// Text for the client, e.g. `message file too big`.
        text: String,
        /// The SMTP code to answer with when it is not the usual one for
        /// the status (a milter's custom `554`); 0: smtpd chooses by the
        /// status class.
        #[serde(default)]
        code: u16,
    },
}
