//! One SMTP (or LMTP) session with one server (Postfix's smtp_proto.c):
//! greeting, EHLO (HELO when EHLO is refused; LHLO for LMTP), STARTTLS
//! as the security level says, AUTH (`sasl`), the SIZE and SMTPUTF8
//! checks, then one mail transaction (`transaction`), then QUIT, or the
//! session is kept for the next delivery (`cache`): [`reuse`] then starts
//! with RSET.
//!
//! The result is an outcome per recipient where the server decided
//! (accepted after the final dot, or refused), and an outcome for the rest
//! when the session failed before (a site failure: connect, greeting,
//! HELO, TLS, a lost connection, a timeout).

use std::time::{Duration, Instant};

use delivery::{Message, Outcome};
use proto::deliver::Recipient;
use rustls_pki_types::ServerName;

use crate::cache::Kept;
use crate::conn::{Conn, Failure};
use crate::nexthop::Server;
use crate::reply::Reply;
use crate::settings::Settings;
use crate::tls::Level;
use crate::transaction::{needs_smtputf8, soft_dsn};

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

/// How a session is run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Opts {
    /// No other server will be tried.
    pub(crate) last: bool,
    /// Keep a cleanly ended session for the connection cache.
    pub(crate) keep: bool,
    /// An MTA-STS policy in enforce mode applies (verified TLS).
    pub(crate) sts_verify: bool,
}

/// What the server offered in its EHLO reply.
#[derive(Debug, Default, Clone)]
pub(crate) struct Features {
    pub(crate) pipelining: bool,
    pub(crate) starttls: bool,
    pub(crate) eightbit: bool,
    pub(crate) dsn: bool,
    pub(crate) smtputf8: bool,
    pub(crate) size: Option<u64>,
    /// AUTH mechanisms.
    pub(crate) auth: Vec<String>,
}

/// Runs one session with `server` for `rcpts` of `msg`; `nexthop` is
/// named in loop errors; `last`: no other server will be tried. When
/// `keep`, a session that ended cleanly is returned for the connection
/// cache instead of being closed.
pub(crate) fn run(
    s: &Settings,
    server: &Server,
    nexthop: &str,
    msg: &Message<'_>,
    rcpts: &[&Recipient],
    o: Opts,
) -> (Session, Option<Kept>) {
    let Opts {
        last,
        keep,
        sts_verify,
    } = o;
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
            return (out, None);
        }
    };
    out.connected = true;
    let policy = sts_policy(s.tls_policy_for(nexthop), sts_verify);
    let t = Talk {
        s,
        server,
        nexthop,
        level: policy.level,
        policy: &policy,
    };
    let features = match t.hello(&mut conn) {
        Ok(f) => f,
        Err(o) => {
            out.rest = Some(o);
            return (out, None);
        }
    };
    out.setup = started.elapsed();
    t.exchange(&mut conn, &features, msg, rcpts, last, &mut out);
    let kept = Kept {
        conn,
        features,
        server: server.clone(),
        born: started,
        uses: 1,
    };
    let kept = t.finish(kept, keep && out.rest.is_none());
    (out, kept)
}

/// Runs one transaction over a session kept in the connection cache,
/// after an RSET; None when the session is no longer usable (the caller
/// then connects anew).
pub(crate) fn reuse(
    s: &Settings,
    mut kept: Kept,
    nexthop: &str,
    msg: &Message<'_>,
    rcpts: &[&Recipient],
    o: Opts,
) -> Option<(Session, Option<Kept>)> {
    let Opts {
        last,
        keep,
        sts_verify,
    } = o;
    let server = kept.server.clone();
    let policy = sts_policy(s.tls_policy_for(nexthop), sts_verify);
    let t = Talk {
        s,
        server: &server,
        nexthop,
        level: policy.level,
        policy: &policy,
    };
    match t.command(&mut kept.conn, "RSET", s.rset_timeout, "sending RSET") {
        Ok(r) if r.class() == 2 => {}
        _ => return None,
    }
    maillog::verbose!("reusing the session with {}", server.namaddrport());
    let mut out = Session {
        results: vec![None; rcpts.len()],
        rest: None,
        connected: true,
        setup: Duration::ZERO,
    };
    let features = kept.features.clone();
    t.exchange(&mut kept.conn, &features, msg, rcpts, last, &mut out);
    kept.uses = kept.uses.saturating_add(1);
    let kept = t.finish(kept, keep && out.rest.is_none());
    Some((out, kept))
}

/// An MTA-STS policy in enforce mode raises the level to `verify`
/// (DANE, when required, stays: it is stronger).
fn sts_policy(mut p: crate::tls::Policy, sts_verify: bool) -> crate::tls::Policy {
    if sts_verify && !matches!(p.level, Level::Verify | Level::DaneOnly) {
        p.level = Level::Verify;
    }
    p
}

pub(crate) struct Talk<'a> {
    pub(crate) s: &'a Settings,
    pub(crate) server: &'a Server,
    pub(crate) nexthop: &'a str,
    /// The TLS security level for this nexthop.
    pub(crate) level: Level,
    /// Its smtp_tls_policy_maps attributes.
    pub(crate) policy: &'a crate::tls::Policy,
}

impl Talk<'_> {
    /// The SMTPUTF8 and SIZE checks, then the mail transaction.
    fn exchange(
        &self,
        conn: &mut Conn,
        features: &Features,
        msg: &Message<'_>,
        rcpts: &[&Recipient],
        last: bool,
        out: &mut Session,
    ) {
        let server = self.server;
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
            return;
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
            return;
        }
        self.transaction(conn, features, msg, rcpts, out);
    }

    /// The end of a session: kept for the connection cache, or QUIT.
    fn finish(&self, mut kept: Kept, keep: bool) -> Option<Kept> {
        if keep {
            return Some(kept);
        }
        self.quit(&mut kept.conn);
        None
    }

    /// A failure of the conversation itself: deferred.
    pub(crate) fn failure(&self, f: Failure, stage: &str) -> Outcome {
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
    pub(crate) fn refused(&self, r: &Reply) -> Outcome {
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
    pub(crate) fn said(&self, r: &Reply, command: &str) -> Outcome {
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

    pub(crate) fn command(
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
        let (level, dane) = self.effective_level()?;
        let mut features = self.ehlo(conn)?;
        if level != Level::None {
            if features.starttls {
                match self.starttls(conn, level, dane) {
                    Ok(true) => features = self.ehlo(conn)?,
                    Ok(false) if level.required() => {
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
            } else if level.required() {
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

    /// The nexthop's domain or host.
    fn nexthop_host(&self) -> String {
        crate::nexthop::parse(self.nexthop, 25, self.s.lmtp)
            .map(|h| h.host.trim_end_matches('.').to_ascii_lowercase())
            .unwrap_or_default()
    }

    /// The level for this server: `dane` and `dane-only` after the TLSA
    /// lookup (with the records when they authenticate the server).
    fn effective_level(&self) -> Result<(Level, Option<Vec<dns::Tlsa>>), Outcome> {
        if !matches!(self.level, Level::Dane | Level::DaneOnly) {
            return Ok((self.level, None));
        }
        match crate::dane::lookup(&self.s.resolver, self.server, &self.nexthop_host()) {
            Err(e) => Err(Outcome::defer("4.7.5", maillog::printable(&e, 300))),
            Ok(crate::dane::State::Authenticate(t)) => Ok((Level::DaneOnly, Some(t))),
            Ok(crate::dane::State::Encrypt) => Ok((Level::Encrypt, None)),
            Ok(crate::dane::State::Insecure(why)) if self.level == Level::DaneOnly => {
                Err(Outcome::defer(
                    "4.7.5",
                    format!(
                        "TLS is required, but host {} has no usable TLSA records: {}",
                        self.server.namaddr(),
                        maillog::printable(&why, 200)
                    ),
                ))
            }
            Ok(crate::dane::State::Insecure(_)) => Ok((Level::May, None)),
        }
    }

    /// The client configuration for `level` (and TLSA records), and
    /// whether it authenticates the server.
    fn client_config(
        &self,
        level: Level,
        dane: Option<Vec<dns::Tlsa>>,
    ) -> Result<(std::sync::Arc<rustls::ClientConfig>, bool), Outcome> {
        use std::sync::Arc;
        let s = self.s;
        let bad = |e: String| {
            Outcome::defer(
                "4.7.5",
                format!("smtp_tls_policy_maps: {}", maillog::printable(&e, 200)),
            )
        };
        let custom = self.policy.protocols.is_some() || self.policy.ciphers.is_some();
        if let Some(tlsa) = dane {
            let mut names = vec![self.server.name.to_ascii_lowercase()];
            names.push(self.nexthop_host());
            let v = crate::dane::Verifier {
                tlsa,
                names,
                provider: Arc::new(rustls::crypto::ring::default_provider()),
            };
            return crate::tls::config_with(self.policy, Arc::new(v))
                .map(|c| (c, true))
                .map_err(bad);
        }
        if level == Level::Verify {
            let no_ca = || {
                Outcome::defer(
                    "4.7.5",
                    "TLS is required, but no CA certificates could be loaded (smtp_tls_CAfile, smtp_tls_CApath)",
                )
            };
            if !custom && self.policy.matches.is_empty() {
                return s.tls.verified.clone().map(|c| (c, true)).ok_or_else(no_ca);
            }
            let roots = s.tls.roots.clone().ok_or_else(no_ca)?;
            let names: Vec<String> = self
                .policy
                .matches
                .iter()
                .filter_map(|m| match m.to_ascii_lowercase().as_str() {
                    "hostname" => Some(self.server.name.clone()),
                    "nexthop" => Some(self.nexthop_host()),
                    "dot-nexthop" => None,
                    other => Some(other.to_string()),
                })
                .collect();
            let names = if names.is_empty() {
                vec![self.server.name.clone()]
            } else {
                names
            };
            let v = crate::tls::NamesVerifier::new(roots, names).map_err(bad)?;
            return crate::tls::config_with(self.policy, Arc::new(v))
                .map(|c| (c, true))
                .map_err(bad);
        }
        if custom {
            let v = crate::tls::AnyCertificate(Arc::new(rustls::crypto::ring::default_provider()));
            return crate::tls::config_with(self.policy, Arc::new(v))
                .map(|c| (c, false))
                .map_err(bad);
        }
        Ok((s.tls.unverified.clone(), false))
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
    fn starttls(
        &self,
        conn: &mut Conn,
        level: Level,
        dane: Option<Vec<dns::Tlsa>>,
    ) -> Result<bool, Outcome> {
        let s = self.s;
        let stage = "receiving the STARTTLS response";
        let r = self.command(conn, "STARTTLS", s.starttls_timeout, stage)?;
        if r.code != 220 {
            return Ok(false);
        }
        let (config, verified) = self.client_config(level, dane)?;
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

    fn quit(&self, conn: &mut Conn) {
        // smtp_skip_quit_response: do not wait for the answer.
        conn.set_timeout(self.s.quit_timeout.min(Duration::from_secs(5)));
        let _ = conn.send(b"QUIT\r\n");
    }
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
