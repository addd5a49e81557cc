//! Address verification probes (Postfix's verify_append, on qmgr's side):
//! a message whose queue file carries `trace_flags` with
//! [`trace::MTA_VRFY`] was sent by verify(8) to learn whether its
//! recipient is deliverable. The delivery agents deliver nothing for it
//! (they report what they would have done); qmgr sends each recipient's
//! result to the verify service instead of to the bounce or defer logs,
//! and marks the recipient done whatever the result, so that a probe is
//! never retried, never bounced, never delivered, and is removed after
//! its one pass. Only when verify cannot be told does the recipient stay
//! pending (the probe is tried again later, as Postfix does).
//!
//! A `sendmail -bv` message ([`trace::USR_VRFY`]) is handled the same
//! way, except that each result goes into the message's trace log
//! (action `deliverable` or `undeliverable`), from which bounce mails the
//! sender a "Mail Delivery Status Report" when the message is done.
//!
//! Both the address as queued and its original (before virtual alias
//! mapping) are updated, as Postfix's verify_append does: smtpd asks
//! about the original. With address_verify_negative_cache = no a failed
//! result is not cached.

use proto::deliver::{Action, Status, trace};
use proto::verify;

use crate::work::{Delivery, Env, MsgInfo};

/// What qmgr needs to report probe results.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `private/` + address_verify_service_name.
    pub(crate) service: String,
    /// address_verify_negative_cache.
    pub(crate) negative_cache: bool,
}

impl Settings {
    /// From main.cf.
    pub(crate) fn load(config: &config::Config) -> Settings {
        Settings {
            service: format!("private/{}", config.str("address_verify_service_name")),
            negative_cache: config.bool("address_verify_negative_cache"),
        }
    }
}

/// True for a verify-only message (a probe or `sendmail -bv`).
pub(crate) fn is_probe(msg: &MsgInfo) -> bool {
    trace::verify_only(trace::of(&msg.attributes))
}

/// True for a probe of the verify service (not `sendmail -bv`).
pub(crate) fn is_mta_probe(msg: &MsgInfo) -> bool {
    trace::of(&msg.attributes) & trace::MTA_VRFY != 0
}

/// Resolves a recipient: through the address_verify_* routes for a
/// probe, the regular ones otherwise.
///
/// # Errors
/// trivial-rewrite could not be asked.
pub(crate) fn resolve(
    resolver: &mut crate::resolver::Resolver,
    msg: &MsgInfo,
    address: &str,
) -> Result<crate::resolver::Route, proto::Error> {
    if is_mta_probe(msg) {
        resolver.resolve_verify(&msg.sender, address)
    } else {
        resolver.resolve(&msg.sender, address)
    }
}

/// The status word of a log line: `deliverable` or `undeliverable` for
/// a probe, as Postfix logs them; else `sent`, `deferred`, `bounced`.
pub(crate) fn status_word(msg: &MsgInfo, action: Action) -> &'static str {
    match (is_probe(msg), action) {
        (true, Action::Delivered) => "deliverable",
        (true, _) => "undeliverable",
        (false, Action::Delivered) => "sent",
        (false, Action::Deferred) => "deferred",
        (false, Action::Bounced) => "bounced",
    }
}

/// Reports a probe's statuses to verify and marks each reported
/// recipient done; returns what is still pending (verify could not be
/// told), as `record` does for normal mail.
pub(crate) fn settle(d: &Delivery, statuses: Vec<Status>, env: &Env) -> Vec<(u32, String, String)> {
    let mut pending = Vec::new();
    for st in statuses {
        let Some(r) = d.recipients.iter().find(|r| r.index == st.index) else {
            continue;
        };
        let status = match st.action {
            Action::Delivered => verify::Status::Deliverable,
            Action::Deferred => verify::Status::Deferred,
            Action::Bounced => verify::Status::Undeliverable,
        };
        let reported = if trace::of(&d.msg.attributes) & trace::MTA_VRFY == 0 {
            report(d, r, &st, env)
        } else if status == verify::Status::Deliverable || env.verify.negative_cache {
            let mut addrs = vec![r.original.as_str()];
            if !r.address.eq_ignore_ascii_case(&r.original) {
                addrs.push(r.address.as_str());
            }
            addrs
                .iter()
                .filter(|a| !a.is_empty())
                .try_for_each(|a| tell(env, a, status, &st.text))
        } else {
            Ok(())
        };
        match reported {
            Ok(()) => {
                if let Err(e) = crate::work::mark_done(&d.file, r.index) {
                    pending.push((r.index, "4.3.0".to_string(), e));
                }
            }
            Err(e) => {
                maillog::warning!("{}: {} service failure: {e}", d.msg.id, env.verify.service);
                pending.push((
                    r.index,
                    "4.3.0".to_string(),
                    format!("verify service failure: {e}"),
                ));
            }
        }
    }
    pending
}

/// A `sendmail -bv` result: a trace log record.
fn report(
    d: &Delivery,
    r: &proto::deliver::Recipient,
    st: &Status,
    env: &Env,
) -> Result<(), String> {
    let action = if st.action == Action::Delivered {
        "deliverable"
    } else {
        "undeliverable"
    };
    let entry = proto::bounce::Entry {
        recipient: r.address.clone(),
        original: r.original.clone(),
        dsn_orcpt: r.dsn_orcpt.clone(),
        dsn: st.dsn.clone(),
        action: action.to_string(),
        relay: st.relay.clone(),
        text: st.text.clone(),
    };
    crate::work::append(env, proto::bounce::Log::Trace, &d.msg.id, entry)
}

fn tell(env: &Env, address: &str, status: verify::Status, reason: &str) -> Result<(), String> {
    match verify::update(&env.queue_dir, &env.verify.service, address, status, reason) {
        Ok(verify::Reply::Ok) => Ok(()),
        Ok(other) => Err(format!("unexpected reply {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn msg(attrs: &[(&str, &str)]) -> MsgInfo {
        MsgInfo {
            id: queue::QueueId::parse("0000000000B").unwrap(),
            sender: String::new(),
            arrival: SystemTime::now(),
            active_at: SystemTime::now(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            force_expired: false,
        }
    }

    #[test]
    fn probes_are_known_by_their_trace_flags_and_logged_as_postfix() {
        let p = msg(&[("trace_flags", "256")]);
        assert!(is_probe(&p));
        assert_eq!(status_word(&p, Action::Delivered), "deliverable");
        assert_eq!(status_word(&p, Action::Bounced), "undeliverable");
        assert_eq!(status_word(&p, Action::Deferred), "undeliverable");
        let n = msg(&[("trace_flags", "1024"), ("x", "1")]);
        assert!(!is_probe(&n));
        assert_eq!(status_word(&n, Action::Bounced), "bounced");
    }
}
