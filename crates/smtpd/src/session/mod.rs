//! The SMTP session state machine, with no I/O.
//!
//! [`Session::receive`] takes client bytes as they arrive and returns how
//! many it used plus a list of [`Action`]s for the shell to perform in
//! order: send a reply, start TLS, begin / feed / end the cleanup
//! conversation, close. Commands are dispatched through [`COMMAND_TABLE`],
//! whose [`Flags`] say what is allowed before HELO/EHLO, before STARTTLS
//! when TLS is required, before AUTH when authentication is required, and
//! which commands must end a pipelined group.
//!
//! Some answers come from outside (the recipient access check, the queue
//! id from cleanup, VRFY / ETRN lookups, SASL): the session then returns
//! an action asking for it and pauses ([`Session::is_paused`]); until the
//! shell answers with [`Session::recipient_checked`],
//! [`Session::message_queued`], [`Session::answer`] or
//! [`Session::auth_step`], `receive` uses no bytes. This keeps replies in
//! command order under pipelining. The smtpd_*_restrictions are not here:
//! the recipient hook is where they plug in.
//!
//! Safety properties (tested below): a line is never a command while the
//! session is in DATA or reading a BDAT chunk, even when a BDAT command
//! was refused (its bytes are skipped); after STARTTLS every byte that
//! arrived before the handshake is thrown away (CVE-2011-0411); under
//! smtpd_forbid_unauth_pipelining an unauthenticated client that sends
//! ahead of a command that must end a group is disconnected; errors count
//! towards smtpd_soft_error_limit (the shell sleeps
//! smtpd_error_sleep_time) and smtpd_hard_error_limit (421, close), and
//! so do the junk commands (HELO, EHLO, RSET, NOOP, VRFY, ETRN) beyond
//! smtpd_junk_command_limit, so a client that only sends NOOP or RSET is
//! hung up on; a message received forgives both counts, as in Postfix.

use crate::command::{self, Command, CommandError, MailParams, RcptParams, Verb};
use crate::data::{BdatDecoder, BdatEvent, DataDecoder, DataEvent};
use crate::line::{LineError, LineReader};
use crate::reply::Reply;

mod answers;
mod commands;
mod config;

pub use config::{Config, SaslSecurity};

/// The mechanisms smtpd announces, before filtering.
const MECHANISMS: [&str; 2] = ["PLAIN", "LOGIN"];

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Greeting sent, no HELO/EHLO yet (also right after STARTTLS).
    Connected,
    /// HELO/EHLO done, no transaction.
    Greeted,
    /// MAIL accepted.
    Mail,
    /// At least one RCPT accepted.
    Rcpt,
    /// Reading DATA content.
    Data,
    /// In a BDAT transaction (between or inside chunks).
    Bdat,
    /// QUIT or a fatal error: the connection closes.
    Quit,
}

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Send this reply.
    Reply(Reply),
    /// Start the TLS handshake now (after sending the preceding 220). The
    /// plaintext that followed STARTTLS has been discarded; call
    /// [`Session::tls_started`] when the handshake is done.
    StartTls,
    /// A MAIL command was accepted: a transaction with this sender begins
    /// (the shell opens the cleanup conversation, now or at the first
    /// recipient).
    BeginMessage {
        /// The sender.
        sender: address::Path,
        /// Its ESMTP parameters.
        params: MailParams,
    },
    /// Access-check a HELO/EHLO name (with [`Config::stage_checks`]), then
    /// answer with [`Session::helo_checked`]. The session is paused.
    CheckHelo {
        /// The name the client gave.
        name: String,
    },
    /// Access-check a sender (with [`Config::stage_checks`]), then answer
    /// with [`Session::sender_checked`]. The session is paused.
    CheckSender {
        /// The sender.
        sender: address::Path,
        /// Its ESMTP parameters.
        params: MailParams,
    },
    /// Run the DATA-stage checks (with [`Config::stage_checks`]) before
    /// DATA or the first BDAT chunk, then answer with
    /// [`Session::data_checked`]. The session is paused.
    CheckData,
    /// Access-check this recipient (restrictions), then answer with
    /// [`Session::recipient_checked`]. The session is paused.
    CheckRecipient {
        /// The recipient.
        recipient: address::Path,
        /// Its ESMTP parameters.
        params: RcptParams,
    },
    /// The recipient passed the check: add it to the message.
    AddRecipient {
        /// The recipient.
        recipient: address::Path,
        /// Its ESMTP parameters.
        params: RcptParams,
    },
    /// Message text for cleanup (lines end in `\n`, at most
    /// [`proto::CONTENT_CHUNK`] bytes).
    Content(Vec<u8>),
    /// The whole message was received: finish the cleanup conversation and
    /// answer with [`Session::message_queued`]. The session is paused.
    EndMessage {
        /// Decoded message size.
        size: u64,
    },
    /// Drop the transaction (RSET, an error, a refused message).
    AbortMessage,
    /// The client sent a non-SMTP command (an HTTP request, a header);
    /// the text, printable and cut, for the warning. 221 and Close follow.
    NonSmtpCommand(String),
    /// Look up a VRFY address; answer with [`Session::answer`].
    Verify(String),
    /// Run ETRN for a domain; answer with [`Session::answer`].
    Etrn(String),
    /// Start a SASL exchange; answer with [`Session::auth_step`].
    Auth {
        /// Upper-cased mechanism name.
        mechanism: String,
        /// The initial response, if given.
        initial: Option<String>,
    },
    /// A client line of the SASL exchange (`*` cancels: answer
    /// `501 5.7.0 Authentication aborted`); answer with [`Session::auth_step`].
    AuthResponse(String),
    /// The client passed smtpd_soft_error_limit: sleep
    /// smtpd_error_sleep_time before reading more.
    ErrorSleep,
    /// Close the connection (after sending the preceding replies).
    Close,
}

/// The shell's answer during a SASL exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthStep {
    /// Send `334 challenge` and wait for the next client line.
    Challenge(String),
    /// Authenticated as this user.
    Success(String),
    /// Failed: send this reply (535 5.7.8 ...).
    Failure(Reply),
}

/// Command table flags (Postfix's SMTPD_CMD_FLAG_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags {
    /// Allowed before HELO/EHLO when smtpd_helo_required.
    pub pre_helo: bool,
    /// Allowed before STARTTLS when TLS is required.
    pub pre_tls: bool,
    /// Allowed before AUTH when authentication is required.
    pub pre_auth: bool,
    /// Must end a pipelined group: nothing may follow in the same send.
    pub last: bool,
}

const fn flags(pre_helo: bool, pre_tls: bool, pre_auth: bool, last: bool) -> Flags {
    Flags {
        pre_helo,
        pre_tls,
        pre_auth,
        last,
    }
}

/// The command table: verb and flags.
pub const COMMAND_TABLE: [(Verb, Flags); 13] = [
    (Verb::Helo, flags(true, true, true, true)),
    (Verb::Ehlo, flags(true, true, true, true)),
    (Verb::StartTls, flags(true, true, true, true)),
    (Verb::Auth, flags(false, false, true, true)),
    (Verb::Mail, flags(false, false, false, false)),
    (Verb::Rcpt, flags(false, false, false, false)),
    (Verb::Data, flags(false, false, false, true)),
    (Verb::Bdat, flags(false, false, false, false)),
    (Verb::Rset, flags(true, true, true, false)),
    (Verb::Noop, flags(true, true, true, true)),
    (Verb::Vrfy, flags(false, false, false, true)),
    (Verb::Etrn, flags(false, false, false, false)),
    (Verb::Quit, flags(true, true, true, true)),
];

/// The flags of a verb.
pub fn flags_of(verb: Verb) -> Flags {
    COMMAND_TABLE
        .iter()
        .find(|(v, _)| *v == verb)
        .map(|(_, f)| *f)
        .unwrap_or(flags(false, false, false, true))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    None,
    Recipient(address::Path, RcptParams),
    Queued,
    Answer,
    /// AUTH started or a challenge sent: waiting for the shell.
    AuthAnswer,
    /// A 334 challenge was sent: the next line is the client's response.
    Auth,
    /// STARTTLS accepted: waiting for the handshake.
    Tls,
    /// HELO (false) or EHLO (true) waiting for its check.
    Helo(String, bool),
    /// MAIL waiting for its check.
    Sender(address::Path, MailParams),
    /// DATA (`None`) or the first BDAT (size, last) waiting for its check.
    DataCheck(Option<(u64, bool)>),
}

/// One SMTP session; see the module documentation.
#[derive(Debug)]
pub struct Session {
    cfg: std::sync::Arc<Config>,
    state: State,
    lines: LineReader,
    data: Option<DataDecoder>,
    bdat: Option<BdatDecoder>,
    /// Bytes of a refused BDAT chunk still to skip, and its reply.
    bdat_skip: Option<(u64, Reply)>,
    /// The current BDAT chunk: its size and LAST.
    bdat_chunk: (u64, bool),
    helo: Option<String>,
    esmtp: bool,
    tls: bool,
    authenticated: Option<String>,
    recipients: usize,
    errors: u32,
    /// Junk commands (HELO, EHLO, RSET, NOOP, VRFY, ETRN) since the last message.
    junk: u32,
    /// The command being run is a junk command: count it when it is answered.
    junk_due: bool,
    pending: Pending,
    /// The client was refused at connect: every command but QUIT gets
    /// `503 5.7.0 Error: access denied for <this>`.
    denied: Option<String>,
    /// Per command (in [`STAT_NAMES`] order): (total, failed).
    stats: [(u32, u32); STAT_NAMES.len()],
    /// Index into `stats` of the last command read.
    last: Option<usize>,
}

/// The names in a `disconnect from` log line, in Postfix's order.
pub const STAT_NAMES: [&str; 14] = [
    "helo", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "bdat", "rset", "noop", "vrfy",
    "etrn", "quit", "unknown",
];

impl Session {
    /// A new session; send [`Session::greeting`] first.
    pub fn new(cfg: Config) -> Session {
        Session::with_config(std::sync::Arc::new(cfg))
    }

    /// A new session sharing its settings with others (a server's many
    /// connections hold one copy).
    pub fn with_config(cfg: std::sync::Arc<Config>) -> Session {
        let lines = LineReader::new(cfg.line_length_limit, cfg.bare_newline);
        Session {
            cfg,
            state: State::Connected,
            lines,
            data: None,
            bdat: None,
            bdat_skip: None,
            bdat_chunk: (0, false),
            helo: None,
            esmtp: false,
            tls: false,
            authenticated: None,
            recipients: 0,
            errors: 0,
            junk: 0,
            junk_due: false,
            pending: Pending::None,
            denied: None,
            stats: [(0, 0); STAT_NAMES.len()],
            last: None,
        }
    }

    /// The 220 greeting.
    pub fn greeting(&self) -> Reply {
        Reply::new(220, None, self.cfg.banner.clone())
    }

    /// The reply to send when the server shuts down.
    pub fn shutdown_reply(&self) -> Reply {
        Reply::new(
            421,
            Some("4.3.2"),
            format!(
                "{} Service shutting down, closing transmission channel",
                self.cfg.hostname
            ),
        )
    }

    /// The client sent bytes before the greeting was sent (the shell
    /// noticed): under smtpd_forbid_unauth_pipelining Postfix answers
    /// `554 5.5.0 Error: SMTP protocol synchronization` and hangs up;
    /// otherwise nothing happens and the bytes are read as usual.
    pub fn pregreet(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if self.cfg.forbid_unauth_pipelining {
            out.push(Action::Reply(sync_error()));
            self.close(&mut out);
        }
        out
    }

    /// The client was refused at connect (the shell sent `reply` instead
    /// of the greeting): from now on every command but QUIT is answered
    /// `503 5.7.0 Error: access denied for host[addr]`, as Postfix does
    /// with smtpd_delay_reject = no. The refusal counts as an error.
    pub fn deny_access(&mut self, client: &str) {
        self.denied = Some(client.to_string());
        self.errors = self.errors.saturating_add(1);
    }

    /// Command counts as Postfix logs them at disconnect:
    /// `ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4` (`ok/total` where some failed).
    pub fn command_counts(&self) -> String {
        let mut out = String::new();
        let (mut ok, mut total) = (0u32, 0u32);
        for (name, (t, f)) in STAT_NAMES.iter().zip(self.stats.iter()) {
            if *t == 0 {
                continue;
            }
            let good = t.saturating_sub(*f);
            ok = ok.saturating_add(good);
            total = total.saturating_add(*t);
            if good == *t {
                out.push_str(&format!("{name}={t} "));
            } else {
                out.push_str(&format!("{name}={good}/{t} "));
            }
        }
        if ok == total {
            out.push_str(&format!("commands={total}"));
        } else {
            out.push_str(&format!("commands={ok}/{total}"));
        }
        out
    }

    /// The last command read, upper case (`CONNECT` before any), for
    /// `lost connection after X` and `timeout after X`; `END-OF-MESSAGE`
    /// once a message was received, as Postfix says.
    pub fn last_command(&self) -> &'static str {
        if self.state == State::Data {
            return "DATA";
        }
        if self.pending == Pending::Queued {
            return "END-OF-MESSAGE";
        }
        match self.last.and_then(|i| STAT_NAMES.get(i)) {
            None => "CONNECT",
            Some(&"unknown") => "UNKNOWN",
            Some(name) => match *name {
                "helo" => "HELO",
                "ehlo" => "EHLO",
                "starttls" => "STARTTLS",
                "auth" => "AUTH",
                "mail" => "MAIL",
                "rcpt" => "RCPT",
                "data" => "DATA",
                "bdat" => "BDAT",
                "rset" => "RSET",
                "noop" => "NOOP",
                "vrfy" => "VRFY",
                "etrn" => "ETRN",
                _ => "QUIT",
            },
        }
    }

    fn count_command(&mut self, line: &[u8]) {
        let word = line
            .split(|b| *b == b' ' || *b == b'\t')
            .next()
            .unwrap_or(&[]);
        let name = Verb::from_name(word).map(|v| v.name().to_ascii_lowercase());
        let i = name
            .and_then(|n| STAT_NAMES.iter().position(|s| *s == n))
            .unwrap_or(STAT_NAMES.len() - 1);
        self.last = Some(i);
        if let Some(st) = self.stats.get_mut(i) {
            st.0 = st.0.saturating_add(1);
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// True while an answer from the shell is awaited.
    pub fn is_paused(&self) -> bool {
        !matches!(self.pending, Pending::None | Pending::Auth)
    }

    /// The authenticated user, if any.
    pub fn authenticated(&self) -> Option<&str> {
        self.authenticated.as_deref()
    }

    /// The HELO/EHLO name, if any.
    pub fn helo_name(&self) -> Option<&str> {
        self.helo.as_deref()
    }

    /// True after a successful STARTTLS handshake.
    pub fn tls_active(&self) -> bool {
        self.tls
    }

    /// The protocol name for the Received header: SMTP, ESMTP, ESMTPS,
    /// ESMTPA or ESMTPSA.
    pub fn protocol(&self) -> &'static str {
        match (self.esmtp, self.tls, self.authenticated.is_some()) {
            (false, _, _) => "SMTP",
            (true, false, false) => "ESMTP",
            (true, true, false) => "ESMTPS",
            (true, false, true) => "ESMTPA",
            (true, true, true) => "ESMTPSA",
        }
    }

    /// Takes client bytes; returns how many were used and what to do.
    /// Bytes not used must be offered again (after answering a pause).
    pub fn receive(&mut self, input: &[u8]) -> (usize, Vec<Action>) {
        let mut out = Vec::new();
        let mut used = 0;
        loop {
            if self.pending == Pending::Tls {
                // Plaintext that arrived before the TLS handshake is
                // dropped unread (CVE-2011-0411).
                return (input.len(), out);
            }
            if self.state == State::Quit || self.is_paused() {
                return (used, out);
            }
            let rest = input.get(used..).unwrap_or(&[]);
            // Content first: DATA, BDAT chunks, skipped BDAT chunks.
            if self.state == State::Data || self.bdat_reading() || self.bdat_skip.is_some() {
                let buffered = self.lines.take_buffered();
                let n = self.content(&buffered, &mut out);
                let left = buffered.get(n..).unwrap_or(&[]);
                if !left.is_empty() {
                    // The content ended inside the buffered bytes.
                    let more = self.lines.unread(left);
                    debug_assert!(more.is_empty());
                    continue;
                }
                if rest.is_empty() || self.content_waits_for_answer() {
                    return (used, out);
                }
                used += self.content(rest, &mut out);
                continue;
            }
            if let Some(line) = self.lines.next_line() {
                self.line(line, input.len() > used, &mut out);
                continue;
            }
            if rest.is_empty() {
                return (used, out);
            }
            used += self.lines.feed(rest);
        }
    }

    fn bdat_reading(&self) -> bool {
        self.state == State::Bdat && self.bdat.as_ref().is_some_and(|b| b.remaining() > 0)
    }

    fn content_waits_for_answer(&self) -> bool {
        self.is_paused() || self.state == State::Quit
    }

    /// Feeds content bytes to the active decoder; returns bytes used.
    fn content(&mut self, bytes: &[u8], out: &mut Vec<Action>) -> usize {
        if let Some((left, reply)) = self.bdat_skip.take() {
            let n = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
            let left = left - n as u64;
            if left == 0 {
                self.error_reply(reply, out);
            } else {
                self.bdat_skip = Some((left, reply));
            }
            return n;
        }
        if self.state == State::Data {
            let Some(dec) = self.data.as_mut() else {
                self.state = State::Greeted;
                return 0;
            };
            let mut ev = Vec::new();
            let n = dec.feed(bytes, &mut ev);
            for e in ev {
                match e {
                    DataEvent::Chunk(c) => out.push(Action::Content(c)),
                    DataEvent::End { size, too_big } => {
                        self.data = None;
                        if too_big {
                            self.end_transaction(out);
                            self.error_reply(too_big_reply(), out);
                        } else {
                            out.push(Action::EndMessage { size });
                            self.pending = Pending::Queued;
                        }
                    }
                    DataEvent::BareLf => {
                        self.data = None;
                        self.end_transaction(out);
                        out.push(Action::Reply(self.bare_lf_reply()));
                        self.close(out);
                    }
                }
            }
            return n;
        }
        let Some(dec) = self.bdat.as_mut() else {
            return 0;
        };
        let mut ev = Vec::new();
        let n = dec.feed(bytes, &mut ev);
        for e in ev {
            match e {
                BdatEvent::Chunk(c) => out.push(Action::Content(c)),
                BdatEvent::ChunkEnd { size, too_big } => self.bdat_chunk_end(size, too_big, out),
            }
        }
        n
    }
}

fn too_big_reply() -> Reply {
    Reply::new(552, Some("5.3.4"), "Error: message file too big")
}

fn ok_queued() -> Reply {
    Reply::new(250, Some("2.0.0"), "Ok: queued")
}

fn sync_error() -> Reply {
    Reply::new(554, Some("5.5.0"), "Error: SMTP protocol synchronization")
}

fn ok(enhanced: &'static str) -> Reply {
    Reply::new(250, Some(enhanced), "Ok")
}

fn bad_sequence(text: &str) -> Reply {
    Reply::new(503, Some("5.5.1"), format!("Error: {text}"))
}

impl Session {
    fn bare_lf_reply(&self) -> Reply {
        Reply::new(
            self.cfg.bare_newline_reject_code,
            Some("5.5.2"),
            "Error: bare <LF> received",
        )
    }

    fn close(&mut self, out: &mut Vec<Action>) {
        out.push(Action::Close);
        self.state = State::Quit;
        self.pending = Pending::None;
    }

    /// Sends an error reply and counts it against the error limits.
    fn error_reply(&mut self, reply: Reply, out: &mut Vec<Action>) {
        out.push(Action::Reply(reply));
        if let Some(st) = self.last.and_then(|i| self.stats.get_mut(i)) {
            st.1 = st.1.saturating_add(1).min(st.0);
        }
        self.errors = self.errors.saturating_add(1);
        self.check_error_limits(out);
    }

    /// Hangs up at smtpd_hard_error_limit, sleeps past the soft limit.
    fn check_error_limits(&mut self, out: &mut Vec<Action>) {
        if self.state == State::Quit {
            return;
        }
        if self.errors >= self.cfg.hard_error_limit {
            out.push(Action::Reply(Reply::new(
                421,
                Some("4.7.0"),
                format!("{} Error: too many errors", self.cfg.hostname),
            )));
            self.end_transaction(out);
            self.close(out);
        } else if self.errors >= self.cfg.soft_error_limit {
            out.push(Action::ErrorSleep);
        }
    }

    /// A junk command was answered: beyond smtpd_junk_command_limit it
    /// counts as an error (Postfix's `junk_cmds++ > limit`).
    fn count_junk(&mut self, out: &mut Vec<Action>) {
        if !std::mem::take(&mut self.junk_due) {
            return;
        }
        let over = self.junk > self.cfg.junk_command_limit;
        self.junk = self.junk.saturating_add(1);
        if over && self.state != State::Quit {
            self.errors = self.errors.saturating_add(1);
            // A soft-limit sleep for a command already answered is not
            // needed: the hard limit is what ends an endless NOOP loop.
            if self.errors >= self.cfg.hard_error_limit {
                self.check_error_limits(out);
            }
        }
    }

    fn in_transaction(&self) -> bool {
        matches!(
            self.state,
            State::Mail | State::Rcpt | State::Data | State::Bdat
        )
    }

    /// Drops any transaction (AbortMessage when one was open).
    fn end_transaction(&mut self, out: &mut Vec<Action>) {
        if self.in_transaction() {
            out.push(Action::AbortMessage);
        }
        self.data = None;
        self.bdat = None;
        self.recipients = 0;
        if self.state != State::Quit {
            self.state = if self.helo.is_some() {
                State::Greeted
            } else {
                State::Connected
            };
        }
    }

    fn bdat_chunk_end(&mut self, size: u64, too_big: bool, out: &mut Vec<Action>) {
        let (count, last) = self.bdat_chunk;
        if too_big {
            self.end_transaction(out);
            self.error_reply(too_big_reply(), out);
        } else if last {
            self.bdat = None;
            out.push(Action::EndMessage { size });
            self.pending = Pending::Queued;
        } else {
            out.push(Action::Reply(Reply::new(
                250,
                Some("2.0.0"),
                format!("Ok: {count} bytes"),
            )));
        }
    }

    /// One line from the line reader; `more` is true when bytes follow it.
    fn line(&mut self, line: Result<Vec<u8>, LineError>, more: bool, out: &mut Vec<Action>) {
        let more = more || self.lines.has_buffered();
        let line = match line {
            Ok(l) => l,
            Err(LineError::TooLong) => {
                self.error_reply(Reply::new(500, Some("5.5.0"), "Error: line too long"), out);
                return;
            }
            Err(LineError::BareLf) => {
                out.push(Action::Reply(self.bare_lf_reply()));
                self.end_transaction(out);
                self.close(out);
                return;
            }
        };
        if self.pending == Pending::Auth {
            out.push(Action::AuthResponse(
                String::from_utf8_lossy(&line).into_owned(),
            ));
            self.pending = Pending::AuthAnswer;
            return;
        }
        self.count_command(&line);
        let cmd = match command::parse(&line) {
            Ok(c) => c,
            Err(e) => {
                // A refused BDAT still carries its chunk: skip those bytes.
                if let (CommandError::Syntax(Verb::Bdat), Some(n)) = (&e, bdat_count(&line)) {
                    self.skip_chunk(n, e.reply());
                    return;
                }
                if e == CommandError::Unrecognized && self.non_smtp(&line) {
                    // An HTTP request or a mail header sent as a command:
                    // not an SMTP client (Postfix's smtpd_forbidden_commands).
                    out.push(Action::NonSmtpCommand(maillog::printable_bytes(&line, 100)));
                    out.push(Action::Reply(Reply::new(
                        221,
                        Some("2.7.0"),
                        "Error: I can break rules, too. Goodbye.",
                    )));
                    self.end_transaction(out);
                    self.close(out);
                    return;
                }
                self.error_reply(e.reply(), out);
                return;
            }
        };
        let verb = cmd.verb();
        let fl = flags_of(verb);
        if fl.last
            && more
            && verb != Verb::StartTls
            && self.cfg.forbid_unauth_pipelining
            && self.authenticated.is_none()
        {
            out.push(Action::Reply(sync_error()));
            self.end_transaction(out);
            self.close(out);
            return;
        }
        let refusal = if let Some(who) = self.denied.as_ref().filter(|_| verb != Verb::Quit) {
            Some(Reply::new(
                503,
                Some("5.7.0"),
                format!("Error: access denied for {who}"),
            ))
        } else if self.cfg.tls_required && !self.tls && !fl.pre_tls {
            Some(Reply::new(
                530,
                Some("5.7.0"),
                "Must issue a STARTTLS command first",
            ))
        } else if self.cfg.auth_required && self.authenticated.is_none() && !fl.pre_auth {
            Some(Reply::new(530, Some("5.7.0"), "Authentication required"))
        } else if self.cfg.helo_required && self.helo.is_none() && !fl.pre_helo {
            Some(bad_sequence("send HELO/EHLO first"))
        } else {
            None
        };
        if let Some(reply) = refusal {
            if let Command::Bdat { size, .. } = cmd {
                self.skip_chunk(size, reply);
            } else {
                self.error_reply(reply, out);
            }
            return;
        }
        self.junk_due = matches!(
            verb,
            Verb::Helo | Verb::Ehlo | Verb::Rset | Verb::Noop | Verb::Vrfy | Verb::Etrn
        );
        self.execute(cmd, out);
        if self.pending == Pending::None {
            self.count_junk(out);
        }
    }

    /// A forbidden command word (smtpd_forbidden_commands), or a line that
    /// looks like a message header (`Name: value`).
    fn non_smtp(&self, line: &[u8]) -> bool {
        let word = line
            .split(|b| *b == b' ' || *b == b'\t')
            .next()
            .unwrap_or(&[]);
        if self
            .cfg
            .forbidden_commands
            .iter()
            .any(|f| f.as_bytes().eq_ignore_ascii_case(word))
        {
            return true;
        }
        word.len() > 1
            && word.last() == Some(&b':')
            && word
                .iter()
                .take(word.len() - 1)
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
    }

    fn skip_chunk(&mut self, size: u64, reply: Reply) {
        // An empty chunk is "skipped" at once by the content loop.
        self.bdat_skip = Some((size, reply));
    }

    fn ehlo_reply(&self) -> Reply {
        let mut l = vec![self.cfg.hostname.clone(), "PIPELINING".into()];
        if self.cfg.message_size_limit > 0 {
            l.push(format!("SIZE {}", self.cfg.message_size_limit));
        } else {
            l.push("SIZE".into());
        }
        if !self.cfg.disable_vrfy_command {
            l.push("VRFY".into());
        }
        l.push("ETRN".into());
        if self.cfg.tls_offered && !self.tls {
            l.push("STARTTLS".into());
        }
        if self.auth_offered() && self.authenticated.is_none() {
            l.push(format!("AUTH {}", self.mechanisms().join(" ")));
        }
        for k in [
            "ENHANCEDSTATUSCODES",
            "8BITMIME",
            "DSN",
            "SMTPUTF8",
            "CHUNKING",
        ] {
            l.push(k.into());
        }
        Reply::multi(250, l)
    }

    fn auth_offered(&self) -> bool {
        self.cfg.auth_enabled
            && (self.tls || !self.cfg.tls_auth_only)
            && !self.mechanisms().is_empty()
    }

    /// The mechanisms smtpd_sasl_security_options (or, under TLS,
    /// smtpd_sasl_tls_security_options) leave.
    fn mechanisms(&self) -> Vec<&'static str> {
        let sec = self.security();
        MECHANISMS.into_iter().filter(|m| sec.allows(m)).collect()
    }

    fn security(&self) -> SaslSecurity {
        if self.tls {
            self.cfg.sasl_tls_security
        } else {
            self.cfg.sasl_security
        }
    }
}

/// An ETRN argument Postfix accepts: a host name (letters, digits, `-`,
/// `_`, non-empty labels, not all numeric) or an address literal `[...]`.
fn etrn_domain_ok(d: &str) -> bool {
    if let Some(inner) = d.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let bare = match inner.get(..5) {
            Some(p) if p.eq_ignore_ascii_case("ipv6:") => inner.get(5..).unwrap_or(""),
            _ => inner,
        };
        return bare.parse::<std::net::IpAddr>().is_ok();
    }
    !d.is_empty()
        && d.len() <= 255
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        && !d.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// The count of a `BDAT n ...` line whose syntax was otherwise refused, so
/// its chunk can still be skipped.
fn bdat_count(line: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(line).ok()?;
    let mut words = text.split_ascii_whitespace();
    if !words.next()?.eq_ignore_ascii_case("BDAT") {
        return None;
    }
    let n = words.next()?;
    if n.len() > 18 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

#[cfg(test)]
mod tests;
