//! One SMTP (or LMTP) session with one server (Postfix's smtp_proto.c):
//! greeting, EHLO (HELO when EHLO is refused; LHLO for LMTP), STARTTLS
//! as the security level says, then one mail transaction: MAIL FROM with
//! SIZE and BODY=8BITMIME when offered, RCPT TO for each recipient, DATA
//! and the content streamed from the queue file with dot stuffing and
//! CRLF line ends. With PIPELINING, MAIL, RCPT and DATA go in one write.
//!
//! The result is an outcome per recipient where the server decided
//! (accepted after the final dot, or refused), and an outcome for the rest
//! when the session failed before (a site failure: connect, greeting,
//! HELO, TLS, a lost connection, a timeout).

use std::io::Write;
use std::time::{Duration, Instant};

use delivery::{Message, Outcome};
use proto::deliver::Recipient;
use rustls_pki_types::ServerName;

use crate::conn::{Conn, Failure};
use crate::nexthop::Server;
use crate::reply::Reply;
use crate::settings::Settings;
use crate::tls::Level;

/// What one session achieved.
#[derive(Debug)]
pub(crate) struct Session {
    /// Per recipient (same order as given): the outcome the server gave.
    pub(crate) results: Vec<Option<Outcome>>,
    /// For recipients without a result: why.
    pub(crate) rest: Option<Outcome>,
    /// A TCP connection was made.
    pub(crate) connected: bool,
    /// Connection setup time (connect, greeting, HELO, TLS).
    pub(crate) setup: Duration,
}

/// What the server offered in its EHLO reply.
#[derive(Debug, Default, Clone)]
struct Features {
    pipelining: bool,
    starttls: bool,
    eightbit: bool,
    dsn: bool,
    smtputf8: bool,
    size: Option<u64>,
    /// AUTH mechanisms.
    auth: Vec<String>,
}

/// Runs one session with `server` for `rcpts` of `msg`; `nexthop` is
/// named in loop errors; `last`: no other server will be tried.
pub(crate) fn run(
    s: &Settings,
    server: &Server,
    nexthop: &str,
    msg: &Message<'_>,
    rcpts: &[&Recipient],
    last: bool,
) -> Session {
    let started = Instant::now();
    let mut out = Session {
        results: vec![None; rcpts.len()],
        rest: None,
        connected: false,
        setup: Duration::ZERO,
    };
    let connected = match &server.path {
        Some(path) => Conn::connect_unix(path, s.connect_timeout),
        None => Conn::connect(server.addr, s.bind_for(server.addr), s.connect_timeout),
    };
    let mut conn = match connected {
        Ok(c) => c,
        Err(e) => {
            out.rest = Some(Outcome::defer(
                "4.4.1",
                format!("connect to {}: {}", server.namaddrport(), io_text(&e)),
            ));
            return out;
        }
    };
    out.connected = true;
    let level = s.tls_level_for(nexthop);
    let t = Talk {
        s,
        server,
        nexthop,
        level,
    };
    let features = match t.hello(&mut conn) {
        Ok(f) => f,
        Err(o) => {
            out.rest = Some(o);
            return out;
        }
    };
    out.setup = started.elapsed();
    if needs_smtputf8(msg, rcpts) && !features.smtputf8 {
        // As Postfix: another server may support it; the last one's
        // refusal bounces.
        let text = format!(
            "message requires SMTPUTF8, but no server was found that supports SMTPUTF8. \
             The last attempted server was {}",
            server.namaddr()
        );
        if last {
            out.results = vec![Some(Outcome::bounce("5.6.7", text)); rcpts.len()];
        } else {
            out.rest = Some(Outcome::defer("4.6.7", text));
        }
        t.quit(&mut conn);
        return out;
    }
    if let Some(limit) = features.size.filter(|l| *l > 0)
        && msg.size() > limit
    {
        let o = Outcome::bounce(
            "5.3.4",
            format!(
                "message size {} exceeds size limit {limit} of server {}",
                msg.size(),
                server.namaddr()
            ),
        );
        out.results = vec![Some(o); rcpts.len()];
        t.quit(&mut conn);
        return out;
    }
    t.transaction(&mut conn, &features, msg, rcpts, &mut out);
    t.quit(&mut conn);
    out
}

struct Talk<'a> {
    s: &'a Settings,
    server: &'a Server,
    nexthop: &'a str,
    /// The TLS security level for this nexthop.
    level: Level,
}

impl Talk<'_> {
    /// A failure of the conversation itself: deferred.
    fn failure(&self, f: Failure, stage: &str) -> Outcome {
        match f {
            Failure::Lost => Outcome::defer(
                "4.4.2",
                format!(
                    "lost connection with {} while {stage}",
                    self.server.namaddr()
                ),
            ),
            Failure::Timeout => Outcome::defer(
                "4.4.2",
                format!(
                    "conversation with {} timed out while {stage}",
                    self.server.namaddr()
                ),
            ),
            Failure::Protocol(text) => Outcome::defer(
                "4.5.0",
                format!(
                    "host {} sent a malformed reply while {stage}: {}",
                    self.server.namaddr(),
                    maillog::printable(&text, 200)
                ),
            ),
        }
    }

    /// A refusal of the whole session (greeting, HELO).
    fn refused(&self, r: &Reply) -> Outcome {
        let text = format!(
            "host {} refused to talk to me: {}",
            self.server.namaddr(),
            maillog::printable(&r.text(), 400)
        );
        if r.class() == 5 {
            Outcome::bounce(&r.dsn(), text)
        } else {
            Outcome::defer(&soft_dsn(&r.dsn()), text)
        }
    }

    /// A reply to a command in the transaction.
    fn said(&self, r: &Reply, command: &str) -> Outcome {
        let text = format!(
            "host {} said: {} (in reply to {command} command)",
            self.server.namaddr(),
            maillog::printable(&r.text(), 400)
        );
        match r.class() {
            5 => Outcome::bounce(&r.dsn(), text),
            _ => Outcome::defer(&soft_dsn(&r.dsn()), text),
        }
    }

    fn command(
        &self,
        conn: &mut Conn,
        line: &str,
        timeout: Duration,
        stage: &str,
    ) -> Result<Reply, Outcome> {
        conn.set_timeout(timeout);
        conn.send(format!("{line}\r\n").as_bytes())
            .map_err(|f| self.failure(f, stage))?;
        conn.reply().map_err(|f| self.failure(f, stage))
    }

    /// Greeting, EHLO/HELO/LHLO, STARTTLS.
    fn hello(&self, conn: &mut Conn) -> Result<Features, Outcome> {
        let s = self.s;
        conn.set_timeout(s.helo_timeout);
        let greeting_stage = "receiving the initial server greeting";
        let greeting = conn.reply().map_err(|f| self.failure(f, greeting_stage))?;
        if greeting.class() != 2 {
            let mut o = self.refused(&greeting);
            // smtp_skip_5xx_greeting: another server may do better.
            if s.skip_5xx_greeting && !s.lmtp {
                o = Outcome::defer(&soft_dsn(&o.dsn), o.text);
            }
            return Err(o);
        }
        let mut features = self.ehlo(conn)?;
        if self.level != Level::None {
            if features.starttls {
                match self.starttls(conn) {
                    Ok(true) => features = self.ehlo(conn)?,
                    Ok(false) if self.level.required() => {
                        return Err(Outcome::defer(
                            "4.7.4",
                            format!(
                                "TLS is required, but host {} refused to start TLS",
                                self.server.namaddr()
                            ),
                        ));
                    }
                    Ok(false) => {}
                    Err(o) => return Err(o),
                }
            } else if self.level.required() {
                return Err(Outcome::defer(
                    "4.7.4",
                    format!(
                        "TLS is required, but was not offered by host {}",
                        self.server.namaddr()
                    ),
                ));
            }
        }
        if let Some(client) = &s.sasl {
            self.authenticate(conn, client, &features)?;
        }
        Ok(features)
    }

    /// AUTH with the credentials for this nexthop or server, if any.
    fn authenticate(
        &self,
        conn: &mut Conn,
        client: &crate::sasl::Client,
        f: &Features,
    ) -> Result<(), Outcome> {
        let creds = match client.credentials(self.nexthop, &self.server.name) {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(()),
            Err(e) => {
                maillog::warning!("{}", maillog::printable(&e, 300));
                return Err(Outcome::defer("4.7.0", "SASL configuration error"));
            }
        };
        if f.auth.is_empty() {
            return Ok(());
        }
        let failed = |why: String| {
            Outcome::defer(
                "4.7.0",
                format!(
                    "SASL authentication failed; cannot authenticate to server {}: {why}",
                    self.server.namaddr()
                ),
            )
        };
        let usable = conn.tls_summary().is_some() || client.plaintext_without_tls;
        let Some(mech) = crate::sasl::choose(&f.auth).filter(|_| usable) else {
            return Err(failed("no mechanism available".into()));
        };
        let stage = "performing the SASL authentication";
        let t = self.s.helo_timeout;
        let said = |r: &Reply| {
            Outcome::defer(
                "4.7.0",
                format!(
                    "SASL authentication failed; server {} said: {}",
                    self.server.namaddr(),
                    maillog::printable(&r.text(), 400)
                ),
            )
        };
        let mut r = if mech == "PLAIN" {
            self.command(
                conn,
                &format!("AUTH PLAIN {}", crate::sasl::plain(&creds)),
                t,
                stage,
            )?
        } else {
            let r = self.command(conn, "AUTH LOGIN", t, stage)?;
            if r.code != 334 {
                return Err(said(&r));
            }
            let r = self.command(conn, &crate::sasl::encode(&creds.user), t, stage)?;
            if r.code != 334 {
                return Err(said(&r));
            }
            self.command(conn, &crate::sasl::encode(&creds.password), t, stage)?
        };
        if r.code == 334 {
            // A challenge we do not expect: cancel the exchange.
            r = self.command(conn, "*", t, stage)?;
        }
        if r.class() == 2 {
            Ok(())
        } else {
            Err(said(&r))
        }
    }

    fn ehlo(&self, conn: &mut Conn) -> Result<Features, Outcome> {
        let s = self.s;
        let (verb, stage) = if s.lmtp {
            ("LHLO", "performing the LHLO handshake")
        } else {
            ("EHLO", "performing the EHLO handshake")
        };
        let r = self.command(
            conn,
            &format!("{verb} {}", s.helo_name),
            s.helo_timeout,
            stage,
        )?;
        if r.class() == 2 {
            self.check_loop(&r)?;
            return Ok(features_of(&r));
        }
        if s.lmtp {
            return Err(self.refused(&r));
        }
        let stage = "performing the HELO handshake";
        let r = self.command(
            conn,
            &format!("HELO {}", s.helo_name),
            s.helo_timeout,
            stage,
        )?;
        if r.class() != 2 {
            return Err(self.refused(&r));
        }
        self.check_loop(&r)?;
        Ok(Features::default())
    }

    /// The server answers HELO/EHLO with our own name: mail would loop.
    fn check_loop(&self, r: &Reply) -> Result<(), Outcome> {
        let name = r
            .lines
            .first()
            .and_then(|l| l.get(4..))
            .and_then(|t| t.split_whitespace().next())
            .unwrap_or("");
        if self.server.path.is_none()
            && self.s.loop_detect(self.server.addr.port())
            && name.eq_ignore_ascii_case(&self.s.myhostname)
        {
            maillog::warning!(
                "host {} replied to HELO/EHLO with my own hostname {}",
                self.server.namaddrport(),
                self.s.myhostname
            );
            let text = format!("mail for {} loops back to myself", self.nexthop);
            return Err(if self.server.best_mx {
                Outcome::bounce("5.4.6", text)
            } else {
                Outcome::defer("4.4.6", text)
            });
        }
        Ok(())
    }

    /// STARTTLS: Ok(true) when TLS is on, Ok(false) when the server
    /// refused the command.
    fn starttls(&self, conn: &mut Conn) -> Result<bool, Outcome> {
        let s = self.s;
        let stage = "receiving the STARTTLS response";
        let r = self.command(conn, "STARTTLS", s.starttls_timeout, stage)?;
        if r.code != 220 {
            return Ok(false);
        }
        let (config, verified) = match self.level {
            Level::Verify => match &s.tls.verified {
                Some(c) => (c.clone(), true),
                None => {
                    return Err(Outcome::defer(
                        "4.7.5",
                        "TLS is required, but no CA certificates could be loaded (smtp_tls_CAfile, smtp_tls_CApath)",
                    ));
                }
            },
            _ => (s.tls.unverified.clone(), false),
        };
        let name = match self.server.name.parse::<std::net::IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => match ServerName::try_from(self.server.name.clone()) {
                Ok(n) => n,
                Err(_) => ServerName::IpAddress(self.server.addr.ip().into()),
            },
        };
        if conn.has_unread() {
            // Text before the handshake must not count as inside TLS.
            maillog::warning!(
                "host {} sent data after the STARTTLS reply; discarded",
                self.server.namaddrport()
            );
        }
        conn.set_timeout(s.starttls_timeout);
        if let Err(e) = conn.start_tls(config, name) {
            return Err(Outcome::defer(
                "4.7.5",
                format!(
                    "Cannot start TLS: handshake failure with {}: {}",
                    self.server.namaddr(),
                    maillog::printable(&e, 200)
                ),
            ));
        }
        if let Some(summary) = conn.tls_summary() {
            maillog::info!(
                "{} TLS connection established to {}: {summary}",
                if verified { "Verified" } else { "Untrusted" },
                self.server.namaddrport()
            );
        }
        Ok(true)
    }

    /// MAIL, RCPT, DATA, content, end of data.
    fn transaction(
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
        if f.smtputf8 && needs_smtputf8(msg, rcpts) {
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
            batch.push_str("DATA\r\n");
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
            } else if let Some(slot) = out.results.get_mut(i) {
                *slot = Some(self.said(&r, "RCPT TO"));
            }
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
        let limited = crate::linelimit::LineLimit::new(&mut *conn, s.line_length_limit);
        let mut writer = std::io::BufWriter::with_capacity(64 * 1024, limited);
        let copied = delivery::copy::copy(&mut msg.content(), &mut writer, &options);
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

    fn quit(&self, conn: &mut Conn) {
        // smtp_skip_quit_response: do not wait for the answer.
        conn.set_timeout(self.s.quit_timeout.min(Duration::from_secs(5)));
        let _ = conn.send(b"QUIT\r\n");
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
fn soft_dsn(dsn: &str) -> String {
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

/// An envelope address is not ASCII: the mail can only go to a server
/// that offers SMTPUTF8 (RFC 6531).
fn needs_smtputf8(msg: &Message<'_>, rcpts: &[&Recipient]) -> bool {
    !msg.sender().is_ascii() || rcpts.iter().any(|r| !r.address.is_ascii())
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

/// The EHLO keywords we use.
fn features_of(r: &Reply) -> Features {
    let mut f = Features::default();
    for line in r.lines.iter().skip(1) {
        let Some(rest) = line.get(4..) else { continue };
        let mut words = rest.split_whitespace();
        let Some(keyword) = words.next() else {
            continue;
        };
        match keyword.to_ascii_uppercase().as_str() {
            "PIPELINING" => f.pipelining = true,
            "STARTTLS" => f.starttls = true,
            "8BITMIME" => f.eightbit = true,
            "DSN" => f.dsn = true,
            "SMTPUTF8" => f.smtputf8 = true,
            "SIZE" => f.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
            "AUTH" => f.auth.extend(words.map(str::to_ascii_uppercase)),
            k if k.starts_with("AUTH=") => {
                f.auth.extend(k.get(5..).map(str::to_string));
                f.auth.extend(words.map(str::to_ascii_uppercase));
            }
            _ => {}
        }
    }
    f
}

/// An OS error as Postfix prints it.
pub(crate) fn io_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None if e.kind() == std::io::ErrorKind::TimedOut => "Connection timed out".to_string(),
        None => e.to_string(),
    }
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
