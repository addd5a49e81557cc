//! reject_unverified_recipient and reject_unverified_sender (Postfix's
//! reject_unverified_address in smtpd_check.c): ask the verify service
//! (`private/` + address_verify_service_name) whether the address is
//! deliverable.
//!
//! The first query for an address starts a probe; smtpd asks again up to
//! address_verify_poll_count times, address_verify_poll_delay apart,
//! while the answer is "unknown", so a probe that finishes quickly (a
//! local user, a fast remote server) decides this very RCPT TO. Then:
//!
//! - deliverable: nothing (the next restriction decides);
//! - unknown or deferred: unverified_*_defer_code (450) `<addr>:
//!   Recipient address rejected: unverified address: <why>`, through
//!   unverified_*_tempfail_action (defer_if_permit: only when the rest
//!   of the restrictions would permit; defer: right away);
//! - undeliverable: unverified_*_reject_code (450 by default, as in
//!   Postfix; 550 to reject) `<addr>: Recipient address rejected:
//!   undeliverable address: <why>`;
//! - verify cannot be reached: 450 `address verification problem`
//!   through the tempfail action, with a warning.
//!
//! unverified_*_reject_reason, when set, replaces `<why>` in 4xx and 5xx
//! replies. The DSN is 4.1.1 for a recipient, 4.1.0 for a sender, its
//! class following the reply code. The null sender is never verified.

use std::time::Duration;

use proto::verify::{self, Reply as VerifyReply, Status as VerifyStatus};

use super::*;

/// What a tempfail does (unverified_*_tempfail_action).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tempfail {
    /// defer_if_permit: defer only when the restrictions would permit.
    DeferIfPermit,
    /// defer: reject with the 4xx reply now.
    Defer,
}

/// One address kind's reply settings.
#[derive(Debug, Clone)]
pub(super) struct Kind {
    /// unverified_*_reject_code.
    reject_code: u16,
    /// unverified_*_defer_code.
    defer_code: u16,
    /// unverified_*_reject_reason.
    reason: String,
    /// unverified_*_tempfail_action.
    tempfail: Tempfail,
}

/// The settings of both restrictions.
#[derive(Debug, Clone)]
pub(super) struct Unverified {
    /// `private/` + address_verify_service_name.
    service: String,
    /// address_verify_poll_count.
    poll_count: u32,
    /// address_verify_poll_delay.
    poll_delay: Duration,
    recipient: Kind,
    sender: Kind,
}

/// Which address is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Which {
    /// reject_unverified_recipient.
    Recipient,
    /// reject_unverified_sender.
    Sender,
}

fn tempfail(cfg: &config::Config, name: &str) -> Result<Tempfail, String> {
    match cfg.str(name).trim() {
        "defer_if_permit" => Ok(Tempfail::DeferIfPermit),
        "defer" => Ok(Tempfail::Defer),
        other => Err(format!(
            "{name}: unknown action \"{other}\": use defer or defer_if_permit"
        )),
    }
}

impl Unverified {
    /// From main.cf.
    ///
    /// # Errors
    /// A bad tempfail action.
    pub(super) fn from_config(cfg: &config::Config) -> Result<Unverified, String> {
        let code = |n: &str| u16::try_from(cfg.int(n)).unwrap_or(450);
        let kind = |k: &str| -> Result<Kind, String> {
            Ok(Kind {
                reject_code: code(&format!("unverified_{k}_reject_code")),
                defer_code: code(&format!("unverified_{k}_defer_code")),
                reason: cfg.str(&format!("unverified_{k}_reject_reason")),
                tempfail: tempfail(cfg, &format!("unverified_{k}_tempfail_action"))?,
            })
        };
        Ok(Unverified {
            service: format!("private/{}", cfg.str("address_verify_service_name")),
            poll_count: u32::try_from(cfg.int("address_verify_poll_count").max(1)).unwrap_or(3),
            poll_delay: cfg.time("address_verify_poll_delay"),
            recipient: kind("recipient")?,
            sender: kind("sender")?,
        })
    }
}

impl Eval<'_, '_> {
    /// reject_unverified_recipient / reject_unverified_sender.
    pub(super) fn unverified(&mut self, which: Which) -> Status {
        let addr = match which {
            Which::Recipient => self.f.recipient,
            Which::Sender => self.f.sender,
        };
        let Some(addr) = addr.filter(|a| !a.is_empty()) else {
            return Status::Dunno;
        };
        let u = self.r.unverified.clone();
        let (kind, class, dsn) = match which {
            Which::Recipient => (&u.recipient, "Recipient address", "4.1.1"),
            Which::Sender => (&u.sender, "Sender address", "4.1.0"),
        };
        let Some((status, why)) = self.ask_verify(&u, addr) else {
            maillog::warning!(
                "{} service failure",
                u.service.trim_start_matches("private/")
            );
            return self.tempfail(
                kind.tempfail,
                450,
                dsn,
                format!("<{addr}>: {class} rejected: address verification problem"),
            );
        };
        let code = match status {
            VerifyStatus::Deliverable => return Status::Dunno,
            VerifyStatus::Unknown | VerifyStatus::Deferred => kind.defer_code,
            VerifyStatus::Undeliverable => kind.reject_code,
        };
        let why = if kind.reason.is_empty() {
            why
        } else {
            kind.reason.clone()
        };
        if code < 500 {
            let why: String = why.chars().take(250).collect();
            self.tempfail(
                kind.tempfail,
                code,
                dsn,
                format!("<{addr}>: {class} rejected: unverified address: {why}"),
            )
        } else {
            self.reject(
                code,
                dsn,
                format!("<{addr}>: {class} rejected: undeliverable address: {why}"),
            )
        }
    }

    /// Queries verify, polling while a probe is in progress; None when
    /// verify cannot be reached or refuses the address.
    fn ask_verify(&self, u: &Unverified, addr: &str) -> Option<(VerifyStatus, String)> {
        let mut count = 0;
        loop {
            let answer = match verify::query(&self.r.queue_dir, &u.service, addr) {
                Ok(VerifyReply::Status { status, reason }) => (status, reason),
                Ok(_) | Err(_) => return None,
            };
            count += 1;
            if answer.0 != VerifyStatus::Unknown || count >= u.poll_count {
                return Some(answer);
            }
            std::thread::sleep(u.poll_delay);
        }
    }

    /// Postfix's DEFER_IF_PERMIT2/3: a 4xx reply now (defer), or recorded
    /// for when the restrictions would permit (defer_if_permit).
    fn tempfail(&mut self, action: Tempfail, code: u16, dsn: &str, text: String) -> Status {
        match action {
            Tempfail::Defer => self.reject(code, dsn, text),
            Tempfail::DeferIfPermit => {
                if self.defer_if_permit.is_none() {
                    self.defer_if_permit = Some(make_reply(code, dsn, text));
                }
                Status::Dunno
            }
        }
    }
}
