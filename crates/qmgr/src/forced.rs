//! Forced expiration (`postsuper -e`/`-f`, Postfix's QMGR_FORCE_EXPIRE):
//! a queue file with the [`queue::expire`] mark is not delivered; at the
//! end of its pass every pending recipient is bounced, and the message is
//! logged `status=force-expired, returned to sender`. As in Postfix, a
//! recipient that was deferred before is bounced with the reason of its
//! last delay (from the defer log); the others with `4.7.0 message is
//! administratively expired`.

use std::collections::HashMap;

use queue::{Queue, QueueId};

use crate::work::Env;

/// The latest (dsn, reason) in the defer log, by recipient address.
pub(crate) fn delay_reasons(env: &Env, id: &QueueId) -> HashMap<String, (String, String)> {
    let mut out = HashMap::new();
    match queue::status_log::read(&env.queue_dir, Queue::Defer, id) {
        Ok(Some(log)) => {
            for r in log.records {
                out.insert(r.recipient, (r.status, r.reason));
            }
        }
        Ok(None) => {}
        Err(e) => maillog::warning!("{id}: cannot read defer log: {e}"),
    }
    out
}

/// The (dsn, text) a force-expired recipient is bounced with.
pub(crate) fn reason(
    reasons: &HashMap<String, (String, String)>,
    r: &queue::Recipient,
) -> (String, String) {
    match reasons.get(&r.address) {
        Some((dsn, text)) if !text.is_empty() => (dsn.clone(), text.clone()),
        _ => (
            "4.7.0".to_string(),
            "message is administratively expired".to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_delay_reason_or_postfix_words() {
        let mut reasons = HashMap::new();
        reasons.insert(
            "a@x".to_string(),
            (
                "4.4.1".to_string(),
                "connect to x: Connection refused".to_string(),
            ),
        );
        let rcpt = |a: &str| queue::Recipient {
            address: a.to_string(),
            original: String::new(),
            dsn_orcpt: None,
            dsn_notify: 0,
        };
        assert_eq!(
            reason(&reasons, &rcpt("a@x")).1,
            "connect to x: Connection refused"
        );
        assert_eq!(
            reason(&reasons, &rcpt("b@x")),
            (
                "4.7.0".to_string(),
                "message is administratively expired".to_string()
            )
        );
    }
}
