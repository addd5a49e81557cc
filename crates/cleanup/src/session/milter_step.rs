//! The milter step of a [`Session`] at end of message: the milters see
//! the processed message, their verdict answers the client, their
//! modifications go into the queue file (see `crate::milters`).

use std::io::Write;

use proto::cleanup::{RecipientSpec, Reply, flags};

use super::{Failure, Session};
use crate::milters::split_reply;

impl Session<'_> {
    /// Runs the milters, if any, and writes the (changed) message to the
    /// queue file. A reply means the message ends here (refused,
    /// discarded, or a write error).
    pub(super) fn run_milters(&mut self) -> Option<Reply> {
        let content = self.held_content.take()?;
        let specs = std::mem::take(&mut self.milters);
        let rcpts: Vec<String> = self.recipients.iter().map(|r| r.address.clone()).collect();
        let sender = self.sender.clone().unwrap_or_default();
        // Our own Received header is not shown to milters (Postfix).
        let hide = content.starts_with(b"Received:");
        let mut mail = milter::Mail::parse(&sender, rcpts, &content, hide);
        drop(content);
        let facts = self
            .settings
            .milters
            .facts(&self.begin, &self.queue_id, self.queue_dir);
        let outcome = milter::run(&specs, &facts, &mut mail);
        let to = self
            .recipients
            .first()
            .map(|r| r.address.clone())
            .unwrap_or_default();
        let log = |what: &str, text: &str| {
            maillog::info!(
                "{}: {what}: END-OF-MESSAGE from {}: {}; from=<{}> to=<{}>",
                self.queue_id,
                origin(&facts),
                maillog::printable(text, 200),
                maillog::printable(&sender, 100),
                maillog::printable(&to, 100)
            );
        };
        match outcome.verdict {
            milter::Verdict::Reject(t) | milter::Verdict::Tempfail(t) => {
                let (status, text) = split_reply(&t);
                log("milter-reject", &format!("{status} {text}"));
                // The milter's own code (554, 421, ...), as Postfix passes
                // a milter reply on.
                let code = t
                    .get(..3)
                    .and_then(|c| c.parse::<u16>().ok())
                    .filter(|c| {
                        (400..600).contains(c)
                            && u16::from(status.as_bytes().first().copied().unwrap_or(0))
                                == u16::from(b'0') + c / 100
                    })
                    .unwrap_or(0);
                return Some(Reply::Rejected { status, text, code });
            }
            milter::Verdict::Discard(name) => {
                log("milter-discard", "milter triggers DISCARD action");
                return Some(Reply::Discarded {
                    reason: format!("discarded by milter {name}"),
                });
            }
            milter::Verdict::Accept => {}
        }
        if let Some(reason) = &mail.quarantine {
            log(
                "milter-hold",
                &format!("milter triggers HOLD action: {reason}"),
            );
            self.begin.flags |= flags::HOLD;
        }
        self.sender = Some(mail.sender.clone());
        let mut kept: Vec<RecipientSpec> = Vec::new();
        for a in &mail.recipients {
            let spec = self
                .recipients
                .iter()
                .find(|r| &r.address == a)
                .cloned()
                .unwrap_or(RecipientSpec {
                    address: a.clone(),
                    orcpt: None,
                    notify: 0,
                });
            kept.push(spec);
        }
        self.recipients = kept;
        let w = self.writer.as_mut()?;
        if let Err(e) = w.write_all(&mail.content()) {
            return Some(self.failure_reply(Failure::Write(e)));
        }
        None
    }
}

impl Session<'_> {
    /// An attribute learned after Begin (smtpd's FILTER and REDIRECT).
    pub(super) fn set_attribute(&mut self, name: String, value: String) {
        if value.len() > 1000 {
            return;
        }
        match name.as_str() {
            "redirect" => self.redirect = Some(value),
            "content_filter" => {
                let attrs = &mut self.begin.attributes;
                attrs.retain(|(k, _)| k != "content_filter");
                attrs.push((name, value));
            }
            other => maillog::warning!(
                "{}: unknown attribute {}: ignored",
                self.queue_id,
                maillog::printable(other, 50)
            ),
        }
    }
}

/// `name[addr]`, as the log names the client.
fn origin(f: &milter::Facts) -> String {
    format!("{}[{}]", f.client_name, f.client_addr)
}
