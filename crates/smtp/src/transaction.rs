//! One mail transaction in a session (Postfix's smtp_proto.c, the
//! xfer part): MAIL FROM with SIZE, BODY=8BITMIME, SMTPUTF8 and the DSN
//! parameters the server offers; RCPT TO for each recipient (NOTIFY=,
//! ORCPT=); DATA, the content streamed from the queue file with dot
//! stuffing, CRLF line ends and smtp_line_length_limit; the reply to the
//! final dot (one per recipient for LMTP). With PIPELINING, MAIL, RCPT and
//! DATA go in one write. 8-bit content for a server without 8BITMIME is
//! converted to quoted-printable on the way (`mime`).

use std::io::Write;

use delivery::{Message, Outcome};
use proto::deliver::Recipient;

use crate::conn::Conn;
use crate::session::{Features, Session, Talk};

impl Talk<'_> {
    /// MAIL, RCPT, DATA, content, end of data.
    pub(crate) fn transaction(
        &self,
        conn: &mut Conn,
        f: &Features,
        msg: &Message<'_>,
        rcpts: &[&Recipient],
        out: &mut Session,
    ) {
        let s = self.s;
        let mut mail = format!("MAIL FROM:<{}>", quote(msg.sender()));
        if f.size.is_some() {
            mail.push_str(&format!(" SIZE={}", msg.size()));
        }
        if f.eightbit
            && msg
                .attribute("body")
                .is_some_and(|b| b.eq_ignore_ascii_case("8BITMIME"))
        {
            mail.push_str(" BODY=8BITMIME");
        }
        if f.smtputf8 && (smtputf8_requested(msg) || needs_smtputf8(msg, rcpts)) {
            mail.push_str(" SMTPUTF8");
        }
        if f.dsn {
            if let Some(ret) = msg.attribute("dsn_ret").filter(|v| is_ret(v)) {
                mail.push_str(&format!(" RET={}", ret.to_ascii_uppercase()));
            }
            if let Some(envid) = msg.attribute("dsn_envid") {
                mail.push_str(&format!(" ENVID={}", xtext(envid)));
            }
        }
        let rcpt_lines: Vec<String> = rcpts
            .iter()
            .map(|r| {
                let mut line = format!("RCPT TO:<{}>", quote(&r.address));
                if f.dsn {
                    line.push_str(&dsn_rcpt_params(r));
                }
                line
            })
            .collect();
        let fail_all = |out: &mut Session, o: Outcome| out.rest = Some(o);
        // Send: everything at once with PIPELINING, else MAIL first.
        conn.set_timeout(s.mail_timeout);
        if f.pipelining {
            let mut batch = format!("{mail}\r\n");
            for l in &rcpt_lines {
                batch.push_str(l);
                batch.push_str("\r\n");
            }
            // A probe ends after RCPT TO: no DATA (crate::probe).
            if !msg.verify_only() {
                batch.push_str("DATA\r\n");
            }
            if let Err(e) = conn.send(batch.as_bytes()) {
                return fail_all(out, self.failure(e, "sending MAIL FROM"));
            }
        } else if let Err(e) = conn.send(format!("{mail}\r\n").as_bytes()) {
            return fail_all(out, self.failure(e, "sending MAIL FROM"));
        }
        let r = match conn.reply() {
            Ok(r) => r,
            Err(e) => return fail_all(out, self.failure(e, "sending MAIL FROM")),
        };
        if r.class() != 2 {
            let o = self.said(&r, "MAIL FROM");
            out.results = vec![Some(o); rcpts.len()];
            return;
        }
        let mut accepted = Vec::new();
        for (i, line) in rcpt_lines.iter().enumerate() {
            conn.set_timeout(s.rcpt_timeout);
            if !f.pipelining
                && let Err(e) = conn.send(format!("{line}\r\n").as_bytes())
            {
                return fail_all(out, self.failure(e, "sending RCPT TO"));
            }
            let r = match conn.reply() {
                Ok(r) => r,
                Err(e) => return fail_all(out, self.failure(e, "sending RCPT TO")),
            };
            if r.class() == 2 {
                accepted.push(i);
                crate::probe::accepted(msg, out, i, &r);
            } else if let Some(slot) = out.results.get_mut(i) {
                *slot = Some(self.said(&r, "RCPT TO"));
            }
        }
        if msg.verify_only() {
            return;
        }
        conn.set_timeout(s.data_init_timeout);
        if !f.pipelining {
            if accepted.is_empty() {
                return;
            }
            if let Err(e) = conn.send(b"DATA\r\n") {
                return fail_all(out, self.failure(e, "sending DATA command"));
            }
        }
        let r = match conn.reply() {
            Ok(r) => r,
            Err(e) => return fail_all(out, self.failure(e, "sending DATA command")),
        };
        if r.code != 354 {
            if !accepted.is_empty() {
                let o = self.said(&r, "DATA");
                set_all(out, &accepted, &o);
            }
            return;
        }
        if accepted.is_empty() {
            // RFC 2920: the server said 354 though no recipient was
            // accepted; end the empty message.
            conn.set_timeout(s.data_done_timeout);
            let _ = conn.send(b".\r\n").and_then(|()| conn.reply().map(|_| ()));
            return;
        }
        conn.set_timeout(s.data_xfer_timeout);
        let options = delivery::copy::Options {
            dot_stuff: true,
            eol: b"\r\n".to_vec(),
            ..delivery::copy::Options::default()
        };
        // 8BITMIME downgrade: a server without 8BITMIME gets 8-bit
        // content as quoted-printable (disable_mime_output_conversion).
        let downgrade = if f.eightbit || s.disable_mime_conversion {
            None
        } else {
            match crate::mime::scan(&mut msg.content()) {
                Ok(found) => found.eight_bit.then_some(found),
                Err(e) => {
                    let o = Outcome::defer("4.3.0", format!("error reading queue file: {e}"));
                    set_all(out, &accepted, &o);
                    return;
                }
            }
        };
        let limited = crate::linelimit::LineLimit::new(&mut *conn, s.line_length_limit);
        let mut writer = std::io::BufWriter::with_capacity(64 * 1024, limited);
        let copied = match downgrade {
            Some(found) => {
                let content = std::io::BufReader::with_capacity(64 * 1024, msg.content());
                let mut converted = crate::mime::Downgrade::new(content, found);
                delivery::copy::copy(&mut converted, &mut writer, &options)
            }
            None => delivery::copy::copy(&mut msg.content(), &mut writer, &options),
        };
        let flushed = writer.flush();
        drop(writer);
        match copied {
            Err(delivery::copy::Error::Read(e)) => {
                // Never end a message we could not read whole: the
                // server discards it when we hang up.
                let o = Outcome::defer("4.3.0", format!("error reading queue file: {e}"));
                set_all(out, &accepted, &o);
                return;
            }
            Err(delivery::copy::Error::Write(e)) => {
                return fail_all(out, self.failure(e.into(), "sending message body"));
            }
            Err(e) => {
                let o = Outcome::defer("4.3.0", format!("{e}"));
                set_all(out, &accepted, &o);
                return;
            }
            Ok(_) => {}
        }
        if let Err(e) = flushed {
            return fail_all(out, self.failure(e.into(), "sending message body"));
        }
        let stage = "sending end of data -- message may be sent more than once";
        conn.set_timeout(s.data_done_timeout);
        if let Err(e) = conn.send(b".\r\n") {
            return fail_all(out, self.failure(e, stage));
        }
        // LMTP answers once per accepted recipient, SMTP once.
        let replies = if s.lmtp { accepted.len() } else { 1 };
        for n in 0..replies {
            let r = match conn.reply() {
                Ok(r) => r,
                Err(e) => {
                    let rest: Vec<usize> = accepted.get(n..).unwrap_or_default().to_vec();
                    let o = self.failure(e, stage);
                    set_all(out, &rest, &o);
                    return;
                }
            };
            let o = if r.class() == 2 {
                Outcome {
                    dsn: r.dsn(),
                    ..Outcome::sent(maillog::printable(&r.text(), 400))
                }
            } else {
                self.said(&r, "end of DATA")
            };
            let targets: Vec<usize> = if s.lmtp {
                accepted.get(n).copied().into_iter().collect()
            } else {
                accepted.clone()
            };
            set_all(out, &targets, &o);
        }
    }
}

fn set_all(out: &mut Session, which: &[usize], o: &Outcome) {
    for i in which {
        if let Some(slot) = out.results.get_mut(*i) {
            *slot = Some(o.clone());
        }
    }
}

/// A 5.x.x code turned into 4.x.x (a soft failure after all).
pub(crate) fn soft_dsn(dsn: &str) -> String {
    match dsn.strip_prefix('5') {
        Some(rest) => format!("4{rest}"),
        None => dsn.to_string(),
    }
}

/// The address for MAIL FROM/RCPT TO: local part quoted as RFC 5321
/// needs (smtp_quote_rfc821_envelope), CR/LF never passed through.
fn quote(addr: &str) -> String {
    address::quote_822_local(addr).replace(['\r', '\n'], "")
}

/// The client asked for SMTPUTF8 when it submitted the message (smtpd
/// records it as the queue file attribute `smtputf8`).
pub(crate) fn smtputf8_requested(msg: &Message<'_>) -> bool {
    msg.attribute("smtputf8").is_some_and(|v| v == "yes")
}

/// The mail can only go to a server that offers SMTPUTF8 (RFC 6531): an
/// envelope address is not ASCII, or the client asked for SMTPUTF8 and a
/// header is not ASCII (as Postfix: without the request, UTF-8 headers go
/// as they are).
pub(crate) fn needs_smtputf8(msg: &Message<'_>, rcpts: &[&Recipient]) -> bool {
    !msg.sender().is_ascii()
        || rcpts.iter().any(|r| !r.address.is_ascii())
        || (smtputf8_requested(msg) && !headers_are_ascii(&mut msg.content()))
}

/// Most header bytes read to decide; past that the headers count as
/// not ASCII (the safe answer: a server without SMTPUTF8 is not used).
const HEADER_SCAN_LIMIT: u64 = 1024 * 1024;

/// The primary header block (up to the first empty line) is ASCII.
fn headers_are_ascii(src: &mut dyn std::io::Read) -> bool {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(std::io::Read::take(src, HEADER_SCAN_LIMIT));
    let mut line = Vec::new();
    let mut total = 0u64;
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            // The end of the content, or of what we read.
            Ok(0) => return total < HEADER_SCAN_LIMIT,
            Ok(_) if !line.is_ascii() => return false,
            Ok(_) if line == b"\n" || line == b"\r\n" => return true,
            Ok(n) => total += n as u64,
            Err(_) => return false,
        }
    }
}

/// RET= values we pass on.
fn is_ret(v: &str) -> bool {
    v.eq_ignore_ascii_case("FULL") || v.eq_ignore_ascii_case("HDRS")
}

/// NOTIFY= and ORCPT= for a server that offers DSN (RFC 3461), from what
/// the recipient was submitted with.
fn dsn_rcpt_params(r: &Recipient) -> String {
    use proto::deliver::notify;
    let mut out = String::new();
    if r.dsn_notify & notify::NEVER != 0 {
        out.push_str(" NOTIFY=NEVER");
    } else if r.dsn_notify != 0 {
        let words: Vec<&str> = [
            (notify::SUCCESS, "SUCCESS"),
            (notify::FAILURE, "FAILURE"),
            (notify::DELAY, "DELAY"),
        ]
        .iter()
        .filter(|(bit, _)| r.dsn_notify & bit != 0)
        .map(|(_, w)| *w)
        .collect();
        out.push_str(&format!(" NOTIFY={}", words.join(",")));
    }
    if let Some((kind, addr)) = r.dsn_orcpt.as_deref().and_then(|o| o.split_once(';'))
        && !kind.is_empty()
        && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        out.push_str(&format!(" ORCPT={kind};{}", xtext(addr)));
    }
    out
}

/// RFC 3461 xtext: `+HH` for `+`, `=` and bytes outside `!`..`~`.
fn xtext(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xtext_and_dsn_parameters() {
        assert_eq!(xtext("a+b=c d\u{e9}"), "a+2Bb+3Dc+20d+C3+A9");
        let r = Recipient {
            index: 0,
            address: "b@x".into(),
            original: "b@x".into(),
            dsn_orcpt: Some("rfc822;b+1@x".into()),
            dsn_notify: proto::deliver::notify::SUCCESS | proto::deliver::notify::DELAY,
        };
        assert_eq!(
            dsn_rcpt_params(&r),
            " NOTIFY=SUCCESS,DELAY ORCPT=rfc822;b+2B1@x"
        );
        let never = Recipient {
            dsn_notify: proto::deliver::notify::NEVER,
            dsn_orcpt: Some("bad type;x".into()),
            ..r
        };
        assert_eq!(dsn_rcpt_params(&never), " NOTIFY=NEVER");
    }
}
