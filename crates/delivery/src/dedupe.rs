//! Duplicate suppression for a retried delivery.
//!
//! An agent can die after a mailbox delivery was committed (Maildir link
//! into `new/` and directory fsync, or mbox fsync) but before the
//! recipient was marked done; qmgr then retries, and says so with
//! [`Message::maybe_delivered`]. Before writing again the agent looks for
//! the earlier copy: a Maildir file whose name carries the delivery tag
//! ([`Message::delivery_tag`], always given to Maildir deliveries), or an
//! mbox message with the recipient's `Delivered-To:` and the queue id in
//! cleanup's Received header. Commands (`|cmd`, mailbox_command, pipe)
//! and forwarding cannot be checked: as with Postfix they may run twice.

use std::path::Path;

use crate::agent::{Message, Outcome};

/// When the request says the message may have been delivered and the
/// Maildir `dir` holds the copy tagged `tag`: the outcome to report
/// instead of delivering again. A read error means "not found" (a
/// duplicate is better than a loss).
pub fn maildir_duplicate(msg: &Message<'_>, dir: &Path, tag: &str) -> Option<Outcome> {
    if !msg.maybe_delivered() {
        return None;
    }
    match mailstore::maildir::find_tagged(dir, tag) {
        Ok(Some(_)) => Some(Outcome::stored(
            "delivered to maildir (duplicate suppressed)",
        )),
        Ok(None) => None,
        Err(e) => {
            maillog::warning!("{}: duplicate check: {e}", msg.queue_id());
            None
        }
    }
}

/// The recipient named in the `Delivered-To:` line of `prepend`.
fn delivered_to<'a>(prepend: &[&'a str]) -> Option<&'a str> {
    prepend
        .iter()
        .find_map(|l| l.strip_prefix("Delivered-To: "))
}

/// The outcome of an mbox delivery that prepended `prepend`: found again
/// by [`mbox_duplicate`] on a retry when it names the recipient in a
/// `Delivered-To:` line ([`Outcome::stored`]), else only sent.
pub fn mbox_delivered(prepend: &[&str]) -> Outcome {
    if delivered_to(prepend).is_some() {
        Outcome::stored("delivered to mailbox")
    } else {
        Outcome::sent("delivered to mailbox")
    }
}

/// The same for the mbox at `path`; `prepend` are the lines the delivery
/// would add (their `Delivered-To:` names the recipient; without one
/// nothing can be checked).
pub fn mbox_duplicate(msg: &Message<'_>, path: &Path, prepend: &[&str]) -> Option<Outcome> {
    if !msg.maybe_delivered() {
        return None;
    }
    let to = delivered_to(prepend)?;
    match mailstore::mbox::find_delivery(path, to, msg.queue_id()) {
        Ok(true) => Some(Outcome::stored(
            "delivered to mailbox (duplicate suppressed)",
        )),
        Ok(false) => None,
        Err(e) => {
            maillog::warning!("{}: duplicate check: {e}", msg.queue_id());
            None
        }
    }
}
