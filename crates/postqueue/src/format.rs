//! The two output formats: Postfix's showq_compat (mailq) and showq_json.

use proto::showq::Message;
use std::io::{self, Write};

/// The heading, as Postfix prints it with long queue ids.
pub(crate) const HEADING: &str =
    "----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------\n";

/// What mailq prints for the null sender (Postfix's empty_address_recipient
/// wording in showq).
const EMPTY_SENDER: &str = "MAILER-DAEMON";

/// State of a mailq listing in progress.
#[derive(Debug, Default)]
pub(crate) struct Mailq {
    count: u64,
    bytes: u64,
}

/// Replaces control and format characters: an address or reason must not
/// start a new line of the listing (maillog's printable, uncut).
fn visible(text: &str) -> String {
    maillog::printable(text, usize::MAX)
}

/// asctime()'s `Mon Nov 23 12:11:53` (day padded with a space), local time.
pub(crate) fn arrival(secs: u64, tz: &jiff::tz::TimeZone) -> String {
    let ts = i64::try_from(secs)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.to_zoned_datetime(tz.clone())
        .strftime("%a %b %e %H:%M:%S")
        .to_string()
}

impl Mailq {
    /// Prints one message (and the heading before the first one).
    pub(crate) fn message(
        &mut self,
        m: &Message,
        tz: &jiff::tz::TimeZone,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        if self.count > 0 {
            out.write_all(b"\n")?;
        } else {
            out.write_all(HEADING.as_bytes())?;
        }
        let mut id = visible(&m.queue_id);
        match m.queue_name.as_str() {
            "active" => id.push('*'),
            "hold" => id.push('!'),
            _ => {}
        }
        let sender = if m.sender.is_empty() {
            EMPTY_SENDER.to_string()
        } else {
            visible(&m.sender)
        };
        writeln!(
            out,
            "{id:<17} {:>8} {:<19.19} {sender}",
            m.size,
            arrival(m.arrival_secs, tz)
        )?;
        let mut saved = String::new();
        for r in &m.recipients {
            let why = visible(&r.reason);
            if why != saved {
                saved = why;
                let show = if saved.is_empty() {
                    "reason unavailable"
                } else {
                    saved.as_str()
                };
                let pad = 76usize.saturating_sub(show.len());
                writeln!(out, "{:pad$}({show})", "")?;
            }
            writeln!(
                out,
                "{:<17} {:>8} {:<19} {}",
                "",
                "",
                "",
                visible(&r.address)
            )?;
        }
        self.count += 1;
        self.bytes = self.bytes.saturating_add(m.size);
        Ok(())
    }

    /// Prints the summary line.
    pub(crate) fn finish(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.count == 0 {
            out.write_all(b"Mail queue is empty\n")
        } else {
            writeln!(
                out,
                "\n-- {} Kbytes in {} Request{}.",
                self.bytes / 1024,
                self.count,
                if self.count == 1 { "" } else { "s" }
            )
        }
    }
}

/// Postfix's json_quote: control characters escaped, `"` and `\` too.
pub(crate) fn json_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        match c {
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// One message as a JSON line.
pub(crate) fn json_line(m: &Message, out: &mut dyn Write) -> io::Result<()> {
    let sender = if m.sender.is_empty() {
        EMPTY_SENDER
    } else {
        m.sender.as_str()
    };
    let mut line = format!(
        "{{\"queue_name\": \"{}\", \"queue_id\": \"{}\", \"arrival_time\": {}, \
         \"message_size\": {}, \"forced_expire\": false, \"sender\": \"{}\", \"recipients\": [",
        json_quote(&m.queue_name),
        json_quote(&m.queue_id),
        m.arrival_secs,
        m.size,
        json_quote(sender)
    );
    for (i, r) in m.recipients.iter().enumerate() {
        if i > 0 {
            line.push_str(", ");
        }
        line.push_str(&format!("{{\"address\": \"{}\"", json_quote(&r.address)));
        if !r.reason.is_empty() {
            line.push_str(&format!(
                ", \"delay_reason\": \"{}\"",
                json_quote(&r.reason)
            ));
        }
        line.push('}');
    }
    line.push_str("]}\n");
    out.write_all(line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::showq::PendingRecipient;

    fn msg(queue: &str, id: &str, rcpts: &[(&str, &str)]) -> Message {
        Message {
            queue_name: queue.into(),
            queue_id: id.into(),
            // Mon Nov 23 12:11:53 2026 UTC
            arrival_secs: 1_795_435_913,
            size: 1234,
            sender: "alice@example.org".into(),
            recipients: rcpts
                .iter()
                .map(|(a, r)| PendingRecipient {
                    address: (*a).into(),
                    reason: (*r).into(),
                })
                .collect(),
            notes: vec![],
        }
    }

    #[test]
    fn mailq_format_is_postfix_exactly() {
        let tz = jiff::tz::TimeZone::UTC;
        let mut out = Vec::new();
        let mut q = Mailq::default();
        q.message(
            &msg("active", "4Hq3Vz1XyZk", &[("bob@example.net", "")]),
            &tz,
            &mut out,
        )
        .unwrap();
        let mut m = msg(
            "deferred",
            "4Hq3Vz1XyZm",
            &[
                (
                    "carol@example.net",
                    "connect to example.net: Connection refused",
                ),
                (
                    "dave@example.net",
                    "connect to example.net: Connection refused",
                ),
                ("erin@example.net", ""),
            ],
        );
        m.sender = String::new();
        m.size = 2000;
        q.message(&m, &tz, &mut out).unwrap();
        q.message(&msg("hold", "4Hq3Vz1XyZn", &[("f@x", "")]), &tz, &mut out)
            .unwrap();
        q.finish(&mut out).unwrap();
        let expect = "\
----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------
4Hq3Vz1XyZk*          1234 Mon Nov 23 12:11:53 alice@example.org
                                               bob@example.net

4Hq3Vz1XyZm           2000 Mon Nov 23 12:11:53 MAILER-DAEMON
                                  (connect to example.net: Connection refused)
                                               carol@example.net
                                               dave@example.net
                                                          (reason unavailable)
                                               erin@example.net

4Hq3Vz1XyZn!          1234 Mon Nov 23 12:11:53 alice@example.org
                                               f@x

-- 4 Kbytes in 3 Requests.
";
        assert_eq!(String::from_utf8(out).unwrap(), expect);
        let mut out = Vec::new();
        Mailq::default().finish(&mut out).unwrap();
        assert_eq!(out, b"Mail queue is empty\n");
    }

    #[test]
    fn json_lines_as_postfix() {
        let mut out = Vec::new();
        json_line(
            &msg(
                "deferred",
                "4Hq3Vz1XyZk",
                &[("bob@x", "said \"no\"\n"), ("c@x", "")],
            ),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"queue_name\": \"deferred\", \"queue_id\": \"4Hq3Vz1XyZk\", \"arrival_time\": 1795435913, \
             \"message_size\": 1234, \"forced_expire\": false, \"sender\": \"alice@example.org\", \
             \"recipients\": [{\"address\": \"bob@x\", \"delay_reason\": \"said \\\"no\\\"\\n\"}, \
             {\"address\": \"c@x\"}]}\n"
        );
        assert_eq!(json_quote("\u{1}"), "\\u0001");
    }
}
