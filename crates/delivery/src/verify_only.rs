//! Verify-only delivery requests (Postfix's DEL_REQ_TRACE_ONLY): an
//! address verification probe from verify(8) carries the `trace_flags`
//! attribute with MTA_VRFY. An agent given one delivers nothing: it
//! resolves the recipient as far as it would (aliases, .forward, the
//! user or mailbox lookup; smtp: up to the RCPT TO reply) and reports
//! what it would have done (`delivers to mailbox`, `delivers to command:
//! ...`, `forwards to ...`), dsn 2.0.0, or the failure it found. Its log
//! lines say `status=deliverable` or `status=undeliverable`; qmgr tells
//! verify the result and removes the probe.
//!
//! The flag is read from the request's attributes, which qmgr copies
//! from the queue file; cleanup writes `trace_flags` there only for its
//! own VERIFY_PROBE clients, never from a submitter's attributes.

use proto::deliver::{Action, trace};

use crate::agent::Message;

impl Message<'_> {
    /// True when this request must not deliver (a probe or `sendmail -bv`).
    pub fn verify_only(&self) -> bool {
        trace::verify_only(trace::of(&self.request.attributes))
    }
}

/// The log line's status word: `deliverable`/`undeliverable` for a
/// verify-only request, as Postfix's verify_append logs them; otherwise
/// `sent`, `deferred`, `bounced`.
pub fn status_word(verify_only: bool, action: Action) -> &'static str {
    match (verify_only, action) {
        (true, Action::Delivered) => "deliverable",
        (true, _) => "undeliverable",
        (false, a) => crate::logline::status_word(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_words_as_postfix() {
        assert_eq!(status_word(true, Action::Delivered), "deliverable");
        assert_eq!(status_word(true, Action::Bounced), "undeliverable");
        assert_eq!(status_word(true, Action::Deferred), "undeliverable");
        assert_eq!(status_word(false, Action::Bounced), "bounced");
    }
}
