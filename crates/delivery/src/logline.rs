//! The delivery log line, in the shape Postfix's log_adhoc() writes and
//! pflogsumm reads:
//!
//! ```text
//! QID: to=<bob@example.org>, orig_to=<bob>, relay=local, delay=0.12, delays=0.01/0/0/0.11, dsn=2.0.0, status=sent (delivered to maildir)
//! ```
//!
//! `orig_to=` appears only when the original recipient is known and
//! differs from the recipient. `delays=a/b/c/d` are: before the delivery
//! agent got the request, in the queue manager (0 here: qmgr does not
//! pass its own times), connection setup (0 for local agents), and the
//! delivery itself.

use std::time::Duration;

use proto::deliver::Action;

/// Longest text from the outcome put into a log line.
pub const TEXT_LIMIT: usize = 400;

/// Formats a delay as Postfix does: whole seconds from 100 s on, else two
/// significant digits with at most two after the decimal point, without
/// trailing zeros (`0.12`, `1.1`, `12`, `0`).
pub fn format_delay(d: Duration) -> String {
    let secs = d.as_secs_f64();
    let text = if secs >= 10.0 {
        format!("{}", secs.floor() as u64)
    } else if secs >= 1.0 {
        format!("{:.1}", (secs * 10.0).floor() / 10.0)
    } else {
        format!("{:.2}", (secs * 100.0).floor() / 100.0)
    };
    if text.contains('.') {
        let t = text.trim_end_matches('0').trim_end_matches('.');
        t.to_string()
    } else {
        text
    }
}

/// The status word: `sent`, `deferred` or `bounced`.
pub fn status_word(action: Action) -> &'static str {
    match action {
        Action::Delivered => "sent",
        Action::Deferred => "deferred",
        Action::Bounced => "bounced",
    }
}

/// What goes into one line.
#[derive(Debug, Clone)]
pub struct Line<'a> {
    /// Queue id.
    pub queue_id: &'a str,
    /// The recipient, internal form.
    pub to: &'a str,
    /// The original recipient, internal form ("" when unknown).
    pub orig_to: &'a str,
    /// relay= value.
    pub relay: &'a str,
    /// From arrival to now.
    pub delay: Duration,
    /// a/b/c/d.
    pub delays: [Duration; 4],
    /// Enhanced status code.
    pub dsn: &'a str,
    /// What happened.
    pub action: Action,
    /// Why (untrusted parts are made printable here).
    pub text: &'a str,
}

impl Line<'_> {
    /// The text after `postfix/local[pid]: `.
    pub fn render(&self) -> String {
        self.render_as(status_word(self.action))
    }

    /// As [`Line::render`] with another status word (`deliverable`,
    /// `undeliverable` for address verification).
    pub fn render_as(&self, word: &str) -> String {
        let mut s = format!(
            "{}: to=<{}>",
            self.queue_id,
            maillog::printable(&address::quote_822_local(self.to), 300)
        );
        if !self.orig_to.is_empty() && !self.orig_to.eq_ignore_ascii_case(self.to) {
            s.push_str(&format!(
                ", orig_to=<{}>",
                maillog::printable(&address::quote_822_local(self.orig_to), 300)
            ));
        }
        let [a, b, c, d] = self.delays.map(format_delay);
        s.push_str(&format!(
            ", relay={}, delay={}, delays={a}/{b}/{c}/{d}, dsn={}, status={} ({})",
            maillog::printable(self.relay, 100),
            format_delay(self.delay),
            maillog::printable(self.dsn, 20),
            word,
            maillog::printable(self.text, TEXT_LIMIT),
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_look_like_postfix() {
        assert_eq!(format_delay(Duration::from_millis(120)), "0.12");
        assert_eq!(format_delay(Duration::from_millis(100)), "0.1");
        assert_eq!(format_delay(Duration::from_millis(4)), "0");
        assert_eq!(format_delay(Duration::ZERO), "0");
        assert_eq!(format_delay(Duration::from_millis(1150)), "1.1");
        assert_eq!(format_delay(Duration::from_millis(2000)), "2");
        assert_eq!(format_delay(Duration::from_millis(12_700)), "12");
        assert_eq!(format_delay(Duration::from_secs(345)), "345");
    }

    #[test]
    fn line_shape() {
        let l = Line {
            queue_id: "ABC",
            to: "bob@example.org",
            orig_to: "bob",
            relay: "local",
            delay: Duration::from_millis(120),
            delays: [
                Duration::from_millis(10),
                Duration::ZERO,
                Duration::ZERO,
                Duration::from_millis(110),
            ],
            dsn: "2.0.0",
            action: Action::Delivered,
            text: "delivered to maildir",
        };
        assert_eq!(
            l.render(),
            "ABC: to=<bob@example.org>, orig_to=<bob>, relay=local, delay=0.12, \
             delays=0.01/0/0/0.11, dsn=2.0.0, status=sent (delivered to maildir)"
        );
        let same = Line {
            orig_to: "Bob@Example.org",
            ..l.clone()
        };
        assert!(!same.render().contains("orig_to"));
        let quoted = Line {
            to: "john doe@example.org",
            orig_to: "",
            ..l
        };
        assert!(quoted.render().contains("to=<\"john doe\"@example.org>"));
    }
}
