//! pickup: postdrop hands a small message to pickup itself instead of
//! leaving it in maildrop/ for pickup's next scan.
//!
//! postdrop connects to [`SERVICE`] (a unix socket: master.cf's `pickup
//! unix ...`, Postfix's default; a fifo there means the maildrop file as
//! before) and writes the byte [`HANDOVER`] (the trigger server's
//! hand-over mark). pickup answers at once with a
//! [`crate::cleanup::Reply`]: `Started` (with an empty queue id: go ahead)
//! or `Rejected` 4.x.x (busy: keep the message). No answer within a few
//! seconds means nobody serves the socket (pickup throttled or stopped
//! while master holds the socket): postdrop keeps the message, having sent
//! none of it. After the go-ahead, postdrop sends the message as
//! [`crate::cleanup::Request`] frames:
//! `Begin` (sender, full name, the kept flags, and the attributes
//! `login_name`, `dsn_envid`, `dsn_ret`, `body`), each `Recipient`, the
//! `Content` chunks and `End`. pickup checks all of it again (the peer's
//! uid comes from the socket, not from the message), gives it to cleanup
//! as it gives a maildrop file, and answers once more with a
//! [`crate::cleanup::Reply`]:
//!
//! - `Queued`: cleanup has the queue file, complete and fsynced.
//! - `Discarded`, or `Rejected` with a 5.x.x status: handled for good,
//!   as pickup handles such a maildrop file (logged, nothing queued).
//! - `Rejected` with a 4.x.x status: nothing was queued; postdrop writes
//!   the maildrop file after all.
//!
//! No answer (pickup or cleanup went away after the message was complete)
//! leaves it unknown whether cleanup queued it; postdrop then fails with
//! a temporary error rather than risk a second copy.

/// The socket, under the queue directory.
pub const SERVICE: &str = "public/pickup";

/// The first byte of a hand-over (a wake-up is any other byte).
pub const HANDOVER: u8 = b'M';

/// Status pickup answers with when it cannot take the message now (too
/// many in flight, cleanup unavailable): postdrop writes the maildrop file.
pub const NOT_NOW: &str = "4.3.0";

/// How long postdrop waits for the go-ahead before it keeps the message.
pub const GO_AHEAD_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The go-ahead.
#[must_use]
pub fn go_ahead() -> crate::cleanup::Reply {
    crate::cleanup::Reply::Started {
        queue_id: String::new(),
    }
}

/// True for a reply after which postdrop must keep the message itself
/// (write the maildrop file): pickup queued nothing.
#[must_use]
pub fn must_keep(reply: &crate::cleanup::Reply) -> bool {
    matches!(reply, crate::cleanup::Reply::Rejected { status, .. } if !status.starts_with('5'))
}
