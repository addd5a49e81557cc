//! Building a delivery status notification (RFC 3464) as Postfix's bounce
//! daemon writes it: a multipart/report with the human-readable text, the
//! message/delivery-status part, and the original message (message/rfc822)
//! or only its headers (text/rfc822-headers).
//!
//! [`write_notice`] writes the whole message to any [`Write`]; the original
//! content is streamed from a reader, never held in memory. Nothing here
//! touches the queue or a socket, so the tests drive it directly.

use queue::status_log::Record;
use std::io::{self, BufRead, BufReader, Read, Write};

/// What kind of notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Non-delivery (bounce/<id>): Action failed.
    Failure,
    /// Delay warning (defer/<id>): Action delayed.
    Delay,
    /// Success report (trace/<id>): Action delivered.
    Success,
    /// `sendmail -bv` report (trace/<id> of a verify-only message):
    /// Action deliverable or undeliverable (Postfix's verify template).
    Verify,
}

/// How much of the original message goes into the third part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Return {
    /// The whole message (message/rfc822).
    Full,
    /// Its headers only (text/rfc822-headers).
    Headers,
    /// Nothing (the queue file could not be read).
    Nothing,
}

/// Everything a notification says.
#[derive(Debug, Clone)]
pub(crate) struct Notice<'a> {
    /// Failure, delay or success.
    pub(crate) kind: Kind,
    /// A copy for the postmaster (double bounce): other subject.
    pub(crate) postmaster_copy: bool,
    /// myhostname.
    pub(crate) myhostname: &'a str,
    /// Queue id of the original message.
    pub(crate) queue_id: &'a str,
    /// Envelope sender of the original message ("" for `<>`).
    pub(crate) sender: &'a str,
    /// Who gets the notification (To: header).
    pub(crate) to: &'a str,
    /// Arrival of the original, RFC 2822 date text.
    pub(crate) arrival_date: &'a str,
    /// Will-Retry-Until for delay warnings, RFC 2822 date text.
    pub(crate) retry_until: Option<&'a str>,
    /// delay_warning_time in hours and maximal_queue_lifetime in days (delay text).
    pub(crate) delay_hours: u64,
    /// maximal_queue_lifetime in days.
    pub(crate) lifetime_days: u64,
    /// DSN ENVID of the original, if any.
    pub(crate) envid: Option<&'a str>,
    /// The per-recipient records.
    pub(crate) records: Vec<&'a Record>,
    /// MIME boundary, unique per notification.
    pub(crate) boundary: String,
    /// What to return of the original.
    pub(crate) ret: Return,
}

impl Notice<'_> {
    fn subject(&self) -> &'static str {
        match (self.kind, self.postmaster_copy) {
            (Kind::Failure, false) => "Undelivered Mail Returned to Sender",
            (Kind::Failure, true) => "Postmaster Copy: Undelivered Mail",
            (Kind::Delay, false) => "Delayed Mail (still being retried)",
            (Kind::Delay, true) => "Postmaster Warning: Delayed Mail",
            (Kind::Success, _) => "Successful Mail Delivery Report",
            (Kind::Verify, _) => "Mail Delivery Status Report",
        }
    }

    fn description(&self) -> &'static str {
        match (self.kind, self.ret) {
            (Kind::Failure, Return::Headers) => "Undelivered Message Headers",
            (Kind::Failure, _) => "Undelivered Message",
            (Kind::Delay, Return::Headers) => "Delayed Message Headers",
            (Kind::Delay, _) => "Delayed Message",
            (Kind::Success, Return::Headers) => "Delivered Message Headers",
            (Kind::Success, _) => "Delivered Message",
            (Kind::Verify, Return::Headers) => "Message Headers",
            (Kind::Verify, _) => "Message",
        }
    }

    /// Postfix's default templates (bounce(5)), with $myhostname filled in.
    fn text(&self) -> String {
        let host = self.myhostname;
        let help = "For further assistance, please send mail to postmaster.\n\n\
                    If you do so, please include this problem report. You can\n\
                    delete your own text from the attached returned message.\n\n\
                    \x20                  The mail system\n";
        match self.kind {
            Kind::Failure => format!(
                "This is the mail system at host {host}.\n\n\
                 I'm sorry to have to inform you that your message could not\n\
                 be delivered to one or more recipients. It's attached below.\n\n{help}"
            ),
            Kind::Delay => format!(
                "This is the mail system at host {host}.\n\n\
                 ####################################################################\n\
                 # THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n\
                 ####################################################################\n\n\
                 Your message could not be delivered for more than {} hour(s).\n\
                 It will be retried until it is {} day(s) old.\n\n{help}",
                self.delay_hours, self.lifetime_days
            ),
            Kind::Success => format!(
                "This is the mail system at host {host}.\n\n\
                 Your message was successfully delivered to the destination(s)\n\
                 listed below. If the message was delivered to mailbox you will\n\
                 receive no further notifications. Otherwise you may still receive\n\
                 notifications of mail delivery errors from other systems.\n\n\
                 \x20                  The mail system\n"
            ),
            Kind::Verify => format!(
                "This is the mail system at host {host}.\n\n\
                 Enclosed is the mail delivery report that you requested.\n\n\
                 \x20                  The mail system\n"
            ),
        }
    }

    fn action(&self, r: &Record) -> String {
        let a = clean(&r.action);
        match (self.kind, a.as_str()) {
            (Kind::Failure, "") => "failed".into(),
            (Kind::Delay, "" | "deferred") => "delayed".into(),
            (Kind::Success, "") => "delivered".into(),
            _ => a,
        }
    }
}

/// Makes header text safe: no control characters (a CR or LF would start
/// a new header), at most 990 bytes.
fn clean(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if out.len() > 990 {
        let mut cut = 990;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// Writes the notification headers and the first two parts, and the
/// header of the third, ready for the original content.
fn write_head(n: &Notice<'_>, out: &mut dyn Write) -> io::Result<()> {
    let b = &n.boundary;
    let eight_bit = n.ret != Return::Nothing;
    write!(
        out,
        "From: MAILER-DAEMON@{host} (Mail Delivery System)\n\
         Subject: {subject}\n\
         To: {to}\n\
         Auto-Submitted: auto-replied\n\
         MIME-Version: 1.0\n\
         Content-Type: multipart/report; report-type=delivery-status;\n\
         \tboundary=\"{b}\"\n\
         Content-Transfer-Encoding: {cte}\n\n\
         This is a MIME-encapsulated message.\n\n",
        host = n.myhostname,
        subject = n.subject(),
        to = clean(n.to),
        cte = if eight_bit { "8bit" } else { "7bit" },
    )?;
    // Part 1: the text for people.
    write!(
        out,
        "--{b}\nContent-Description: Notification\n\
         Content-Type: text/plain; charset=us-ascii\n\n{}\n",
        n.text()
    )?;
    for r in &n.records {
        let rcpt = clean(&r.recipient);
        if !r.original.is_empty() && r.original != r.recipient {
            write!(out, "<{rcpt}> (expanded from <{}>)", clean(&r.original))?;
        } else {
            write!(out, "<{rcpt}>")?;
        }
        writeln!(out, ": {}\n", clean(&r.reason))?;
    }
    // Part 2: the machine-readable report.
    write!(
        out,
        "--{b}\nContent-Description: Delivery report\n\
         Content-Type: message/delivery-status\n\n\
         Reporting-MTA: dns; {}\n\
         X-Postfix-Queue-ID: {}\n\
         X-Postfix-Sender: rfc822; {}\n",
        n.myhostname,
        n.queue_id,
        clean(n.sender)
    )?;
    if let Some(envid) = n.envid {
        writeln!(out, "Original-Envelope-Id: {}", clean(envid))?;
    }
    writeln!(out, "Arrival-Date: {}", n.arrival_date)?;
    for r in &n.records {
        write!(out, "\nFinal-Recipient: rfc822; {}\n", clean(&r.recipient))?;
        match &r.dsn_orcpt {
            Some(o) if !o.is_empty() => writeln!(out, "Original-Recipient: {}", clean(o))?,
            _ if !r.original.is_empty() => {
                writeln!(out, "Original-Recipient: rfc822;{}", clean(&r.original))?
            }
            _ => {}
        }
        writeln!(out, "Action: {}", n.action(r))?;
        writeln!(out, "Status: {}", clean(&r.status))?;
        if !r.relay.is_empty() && r.relay != "none" && r.relay.contains('[') {
            let host = r.relay.split('[').next().unwrap_or_default();
            writeln!(out, "Remote-MTA: dns; {}", clean(host))?;
        }
        writeln!(out, "Diagnostic-Code: X-Postfix; {}", clean(&r.reason))?;
        if let (Kind::Delay, Some(until)) = (n.kind, n.retry_until) {
            writeln!(out, "Will-Retry-Until: {until}")?;
        }
    }
    writeln!(out)?;
    // Part 3 header.
    match n.ret {
        Return::Nothing => {}
        Return::Full => write!(
            out,
            "--{b}\nContent-Description: {}\nContent-Type: message/rfc822\n\
             Content-Transfer-Encoding: 8bit\n\n",
            n.description()
        )?,
        Return::Headers => write!(
            out,
            "--{b}\nContent-Description: {}\nContent-Type: text/rfc822-headers\n\
             Content-Transfer-Encoding: 8bit\n\n",
            n.description()
        )?,
    }
    Ok(())
}

/// Writes the whole notification: head, the original (all of it or its
/// headers, per `n.ret`) from `original`, and the closing boundary.
///
/// # Errors
/// Errors of `out` or `original` (a damaged queue file shows up here).
pub(crate) fn write_notice(
    n: &Notice<'_>,
    original: Option<&mut dyn Read>,
    out: &mut dyn Write,
) -> io::Result<()> {
    write_head(n, out)?;
    let ends_in_newline = match (n.ret, original) {
        (Return::Full, Some(r)) => copy_all(r, out)?,
        (Return::Headers, Some(r)) => copy_headers(r, out)?,
        _ => true,
    };
    if !ends_in_newline {
        writeln!(out)?;
    }
    write!(out, "\n--{}--\n", n.boundary)
}

/// Copies everything; true when it ended in a newline (or was empty).
fn copy_all(r: &mut dyn Read, out: &mut dyn Write) -> io::Result<bool> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut last = b'\n';
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(last == b'\n'),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        out.write_all(chunk)?;
        if let Some(&b) = chunk.last() {
            last = b;
        }
    }
}

/// Copies the header section: lines up to the first empty one. True when
/// the copy ended in a newline.
fn copy_headers(r: &mut dyn Read, out: &mut dyn Write) -> io::Result<bool> {
    let mut reader = BufReader::with_capacity(64 * 1024, r);
    let mut at_line_start = true;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(at_line_start);
        }
        let mut used = 0;
        let mut done = false;
        for &b in buf {
            if at_line_start && (b == b'\n' || b == b'\r') {
                // An empty line (or "\r\n"): the headers end here.
                done = true;
                break;
            }
            used += 1;
            at_line_start = b == b'\n';
        }
        out.write_all(buf.get(..used).unwrap_or_default())?;
        reader.consume(used);
        if done {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> Record {
        Record {
            recipient: "nosuch@example.org".into(),
            original: "nosuch".into(),
            dsn_orcpt: None,
            status: "5.1.1".into(),
            action: "failed".into(),
            relay: "local".into(),
            reason: "unknown user: \"nosuch\"".into(),
            time: 1,
        }
    }

    fn notice<'a>(r: &'a Record, ret: Return) -> Notice<'a> {
        Notice {
            kind: Kind::Failure,
            postmaster_copy: false,
            myhostname: "mx.example.org",
            queue_id: "ABCDEFGHJK1",
            sender: "alice@example.org",
            to: "alice@example.org",
            arrival_date: "Mon, 23 Nov 2026 12:11:53 +0000 (UTC)",
            retry_until: None,
            delay_hours: 4,
            lifetime_days: 5,
            envid: None,
            records: vec![r],
            boundary: "ABCDEFGHJK1.1795000000/mx.example.org".into(),
            ret,
        }
    }

    fn render(n: &Notice<'_>, original: &[u8]) -> String {
        let mut out = Vec::new();
        let mut r: &[u8] = original;
        write_notice(n, Some(&mut r), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn failure_notice_has_postfix_shape() {
        let r = rec();
        let text = render(
            &notice(&r, Return::Full),
            b"Subject: hi\nFrom: alice\n\nbody line\n",
        );
        assert!(text.starts_with("From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\n"));
        assert!(text.contains("Subject: Undelivered Mail Returned to Sender\n"));
        assert!(text.contains("I'm sorry to have to inform you that your message could not\n"));
        assert!(
            text.contains(
                "<nosuch@example.org> (expanded from <nosuch>): unknown user: \"nosuch\"\n"
            )
        );
        assert!(text.contains("Reporting-MTA: dns; mx.example.org\nX-Postfix-Queue-ID: ABCDEFGHJK1\nX-Postfix-Sender: rfc822; alice@example.org\nArrival-Date: Mon, 23 Nov 2026"));
        assert!(text.contains("\nFinal-Recipient: rfc822; nosuch@example.org\nOriginal-Recipient: rfc822;nosuch\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: X-Postfix; unknown user: \"nosuch\"\n"));
        assert!(text.contains("Content-Type: message/rfc822\nContent-Transfer-Encoding: 8bit\n\nSubject: hi\nFrom: alice\n\nbody line\n\n--ABCDEFGHJK1.1795000000/mx.example.org--\n"));
    }

    #[test]
    fn headers_only_stops_at_the_empty_line() {
        let r = rec();
        let text = render(
            &notice(&r, Return::Headers),
            b"Subject: hi\r\nX: y\r\n\r\nsecret body\n",
        );
        assert!(text.contains("Content-Type: text/rfc822-headers\n"));
        assert!(text.contains("Subject: hi\r\nX: y\r\n\n--ABCD"));
        assert!(!text.contains("secret body"));
        // No empty line at all, no final newline.
        let text = render(&notice(&r, Return::Headers), b"Subject: x");
        assert!(text.ends_with("Subject: x\n\n--ABCDEFGHJK1.1795000000/mx.example.org--\n"));
    }

    #[test]
    fn success_report() {
        let mut r = rec();
        r.action = "delivered".into();
        r.status = "2.0.0".into();
        r.reason = "delivered to mailbox".into();
        let mut n = notice(&r, Return::Headers);
        n.kind = Kind::Success;
        let text = render(&n, b"Subject: s\n\nb\n");
        assert!(text.contains("Subject: Successful Mail Delivery Report\n"));
        assert!(text.contains("Action: delivered\nStatus: 2.0.0\n"));
        assert!(text.contains("Content-Description: Delivered Message Headers\n"));
    }

    #[test]
    fn verify_report_as_postfix() {
        let mut r = rec();
        r.action = "undeliverable".into();
        r.status = "5.1.1".into();
        r.reason = "unknown user: \"nosuch\"".into();
        let mut n = notice(&r, Return::Headers);
        n.kind = Kind::Verify;
        let text = render(&n, b"Subject: probe\n\n");
        assert!(text.contains("Subject: Mail Delivery Status Report\n"));
        assert!(text.contains("Enclosed is the mail delivery report that you requested.\n"));
        assert!(text.contains("Action: undeliverable\nStatus: 5.1.1\n"));
    }

    #[test]
    fn delay_notice_and_hostile_text() {
        let mut r = rec();
        r.action = "deferred".into();
        r.status = "4.4.1".into();
        r.reason = "evil\r\nBcc: everyone".into();
        let mut n = notice(&r, Return::Nothing);
        n.kind = Kind::Delay;
        n.retry_until = Some("Sat, 28 Nov 2026 12:11:53 +0000 (UTC)");
        let text = render(&n, b"");
        assert!(text.contains("Subject: Delayed Mail (still being retried)\n"));
        assert!(text.contains("Action: delayed\nStatus: 4.4.1\n"));
        assert!(text.contains("Will-Retry-Until: Sat, 28 Nov 2026"));
        assert!(text.contains("for more than 4 hour(s)"));
        assert!(!text.contains("\nBcc:"));
        assert!(text.contains("Content-Transfer-Encoding: 7bit\n"));
    }
}
