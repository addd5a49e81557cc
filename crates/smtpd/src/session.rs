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
use crate::line::{BareNewline, LineError, LineReader};
use crate::reply::Reply;

/// Session settings, from main.cf (Postfix's names in the field docs).
#[derive(Debug, Clone)]
pub struct Config {
    /// myhostname, used in HELO / EHLO / 421 replies.
    pub hostname: String,
    /// smtpd_banner, the text after `220 ` (default `$myhostname ESMTP $mail_name`).
    pub banner: String,
    /// line_length_limit (2048).
    pub line_length_limit: usize,
    /// smtpd_forbid_bare_newline (normalize).
    pub bare_newline: BareNewline,
    /// smtpd_forbid_bare_newline_reject_code (550).
    pub bare_newline_reject_code: u16,
    /// message_size_limit (10240000); 0 is no limit.
    pub message_size_limit: u64,
    /// disable_vrfy_command (no).
    pub disable_vrfy_command: bool,
    /// smtpd_helo_required (no).
    pub helo_required: bool,
    /// STARTTLS is offered (smtpd_tls_security_level may or encrypt, with a certificate).
    pub tls_offered: bool,
    /// smtpd_tls_security_level = encrypt: mail commands need TLS first.
    pub tls_required: bool,
    /// smtpd_sasl_auth_enable (no).
    pub auth_enabled: bool,
    /// smtpd_tls_auth_only (no): AUTH only over TLS.
    pub tls_auth_only: bool,
    /// Mail commands need AUTH first (a submission service's restrictions;
    /// set by the shell until restrictions exist).
    pub auth_required: bool,
    /// smtpd_forbid_unauth_pipelining (yes since Postfix 3.9).
    pub forbid_unauth_pipelining: bool,
    /// smtpd_soft_error_limit (10).
    pub soft_error_limit: u32,
    /// smtpd_hard_error_limit (20).
    pub hard_error_limit: u32,
    /// smtpd_recipient_limit (1000).
    pub recipient_limit: usize,
    /// smtpd_junk_command_limit (100).
    pub junk_command_limit: u32,
    /// smtpd_sasl_security_options (noanonymous): what is offered without TLS.
    pub sasl_security: SaslSecurity,
    /// smtpd_sasl_tls_security_options ($smtpd_sasl_security_options):
    /// what is offered after STARTTLS or in wrapper mode.
    pub sasl_tls_security: SaslSecurity,
    /// smtpd_forbidden_commands: words that end the session at once
    /// (`CONNECT GET POST`); lines shaped like a header do too.
    pub forbidden_commands: Vec<String>,
    /// Ask the shell at HELO/EHLO, MAIL and DATA/first BDAT
    /// ([`Action::CheckHelo`], [`Action::CheckSender`],
    /// [`Action::CheckData`]) for the smtpd_*_restrictions.
    pub stage_checks: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            hostname: "localhost".into(),
            banner: "localhost ESMTP Postfix".into(),
            line_length_limit: crate::line::DEFAULT_LINE_LENGTH_LIMIT,
            bare_newline: BareNewline::Normalize,
            bare_newline_reject_code: 550,
            message_size_limit: 10_240_000,
            disable_vrfy_command: false,
            helo_required: false,
            tls_offered: false,
            tls_required: false,
            auth_enabled: false,
            tls_auth_only: false,
            auth_required: false,
            forbid_unauth_pipelining: true,
            soft_error_limit: 10,
            hard_error_limit: 20,
            recipient_limit: 1000,
            junk_command_limit: 100,
            sasl_security: SaslSecurity::default(),
            sasl_tls_security: SaslSecurity::default(),
            forbidden_commands: vec!["CONNECT".into(), "GET".into(), "POST".into()],
            stage_checks: false,
        }
    }
}

/// smtpd_sasl_security_options: the mechanism properties refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaslSecurity {
    /// noplaintext: no mechanism that sends the password in the clear
    /// (PLAIN, LOGIN).
    pub noplaintext: bool,
    /// noanonymous: no ANONYMOUS.
    pub noanonymous: bool,
    /// nodictionary: no mechanism open to a passive dictionary attack
    /// (PLAIN, LOGIN, CRAM-MD5, DIGEST-MD5, NTLM).
    pub nodictionary: bool,
}

impl Default for SaslSecurity {
    fn default() -> SaslSecurity {
        SaslSecurity {
            noplaintext: false,
            noanonymous: true,
            nodictionary: false,
        }
    }
}

impl SaslSecurity {
    /// Parses `noplaintext, noanonymous ...`; other words (noactive,
    /// mutual_auth, forward_secrecy) are accepted and change nothing here.
    pub fn parse(text: &str) -> SaslSecurity {
        let mut s = SaslSecurity {
            noplaintext: false,
            noanonymous: false,
            nodictionary: false,
        };
        for w in text.split([',', ' ', '\t', '\n']).filter(|w| !w.is_empty()) {
            match w.to_ascii_lowercase().as_str() {
                "noplaintext" => s.noplaintext = true,
                "noanonymous" => s.noanonymous = true,
                "nodictionary" => s.nodictionary = true,
                _ => {}
            }
        }
        s
    }

    /// True when the mechanism may be used under these options.
    pub fn allows(&self, mechanism: &str) -> bool {
        let m = mechanism.to_ascii_uppercase();
        let plaintext = matches!(m.as_str(), "PLAIN" | "LOGIN");
        let dictionary = plaintext || matches!(m.as_str(), "CRAM-MD5" | "DIGEST-MD5" | "NTLM");
        !(self.noplaintext && plaintext
            || self.noanonymous && m == "ANONYMOUS"
            || self.nodictionary && dictionary)
    }
}

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

    fn execute(&mut self, cmd: Command, out: &mut Vec<Action>) {
        match cmd {
            Command::Helo(name) => self.helo_command(name, false, out),
            Command::Ehlo(name) => self.helo_command(name, true, out),
            Command::StartTls => {
                if !self.cfg.tls_offered {
                    self.error_reply(
                        Reply::new(502, Some("5.5.1"), "Error: command not implemented"),
                        out,
                    );
                } else if self.tls {
                    self.error_reply(
                        Reply::new(554, Some("5.5.1"), "Error: TLS already active"),
                        out,
                    );
                } else {
                    self.end_transaction(out);
                    out.push(Action::Reply(Reply::new(
                        220,
                        Some("2.0.0"),
                        "Ready to start TLS",
                    )));
                    // CVE-2011-0411: nothing sent before the handshake may
                    // be read as a command inside TLS.
                    let _ = self.lines.take_buffered();
                    out.push(Action::StartTls);
                    self.pending = Pending::Tls;
                }
            }
            Command::Auth { mechanism, initial } => {
                if !self.auth_offered() {
                    self.error_reply(bad_sequence("authentication not enabled"), out);
                } else if self.authenticated.is_some() {
                    self.error_reply(bad_sequence("already authenticated"), out);
                } else if self.in_transaction() {
                    self.error_reply(bad_sequence("MAIL transaction in progress"), out);
                } else if self.helo.is_none() {
                    self.error_reply(bad_sequence("send HELO/EHLO first"), out);
                } else if !self.security().allows(&mechanism) {
                    let m = maillog::printable(&mechanism, 60);
                    self.error_reply(
                        Reply::new(
                            535,
                            Some("5.7.8"),
                            format!(
                                "Error: authentication failed: Invalid authentication mechanism: '{m}'"
                            ),
                        ),
                        out,
                    );
                } else {
                    out.push(Action::Auth { mechanism, initial });
                    self.pending = Pending::AuthAnswer;
                }
            }
            Command::Mail { path, params } => {
                if self.in_transaction() {
                    self.error_reply(bad_sequence("nested MAIL command"), out);
                } else if params.size.is_some_and(|s| {
                    self.cfg.message_size_limit > 0 && s > self.cfg.message_size_limit
                }) {
                    self.error_reply(
                        Reply::new(552, Some("5.3.4"), "Message size exceeds fixed limit"),
                        out,
                    );
                } else if self.cfg.stage_checks {
                    out.push(Action::CheckSender {
                        sender: path.clone(),
                        params: params.clone(),
                    });
                    self.pending = Pending::Sender(path, params);
                } else {
                    self.begin_message(path, params, out);
                }
            }
            Command::Rcpt { path, params } => {
                if !matches!(self.state, State::Mail | State::Rcpt) {
                    self.error_reply(bad_sequence("need MAIL command"), out);
                } else if self.recipients >= self.cfg.recipient_limit {
                    out.push(Action::Reply(Reply::new(
                        452,
                        Some("4.5.3"),
                        "Error: too many recipients",
                    )));
                } else {
                    out.push(Action::CheckRecipient {
                        recipient: path.clone(),
                        params: params.clone(),
                    });
                    self.pending = Pending::Recipient(path, params);
                }
            }
            Command::Data => {
                if self.state == State::Bdat {
                    self.error_reply(bad_sequence("DATA after BDAT"), out);
                } else if self.state == State::Mail {
                    self.error_reply(
                        Reply::new(554, Some("5.5.1"), "Error: no valid recipients"),
                        out,
                    );
                } else if self.state != State::Rcpt {
                    self.error_reply(bad_sequence("need RCPT command"), out);
                } else if self.cfg.stage_checks {
                    out.push(Action::CheckData);
                    self.pending = Pending::DataCheck(None);
                } else {
                    self.start_data(out);
                }
            }
            Command::Bdat { size, last } => {
                if self.state == State::Mail {
                    self.skip_chunk(
                        size,
                        Reply::new(554, Some("5.5.1"), "Error: no valid recipients"),
                    );
                } else if !matches!(self.state, State::Rcpt | State::Bdat) {
                    self.skip_chunk(size, bad_sequence("need RCPT command"));
                } else if self.state == State::Rcpt && self.cfg.stage_checks {
                    out.push(Action::CheckData);
                    self.pending = Pending::DataCheck(Some((size, last)));
                } else {
                    self.start_chunk(size, last, out);
                }
            }
            Command::Rset => {
                self.end_transaction(out);
                out.push(Action::Reply(ok("2.0.0")));
            }
            Command::Noop => out.push(Action::Reply(ok("2.0.0"))),
            Command::Quit => {
                self.end_transaction(out);
                out.push(Action::Reply(Reply::new(221, Some("2.0.0"), "Bye")));
                self.close(out);
            }
            Command::Vrfy(text) => {
                if self.cfg.disable_vrfy_command {
                    self.error_reply(
                        Reply::new(502, Some("5.5.1"), "VRFY command is disabled"),
                        out,
                    );
                } else {
                    out.push(Action::Verify(text));
                    self.pending = Pending::Answer;
                }
            }
            Command::Etrn(domain) => {
                if self.helo.is_none() {
                    self.error_reply(bad_sequence("send HELO/EHLO first"), out);
                } else if self.in_transaction() {
                    self.error_reply(bad_sequence("MAIL transaction in progress"), out);
                } else {
                    // RFC 1985's `@domain` and `#queue` forms name the domain.
                    let d = domain
                        .strip_prefix(['@', '#'])
                        .unwrap_or(&domain)
                        .to_string();
                    if etrn_domain_ok(&d) {
                        out.push(Action::Etrn(d));
                        self.pending = Pending::Answer;
                    } else {
                        self.error_reply(
                            Reply::new(501, None, "Error: invalid parameter syntax"),
                            out,
                        );
                    }
                }
            }
        }
    }

    fn helo_command(&mut self, name: String, esmtp: bool, out: &mut Vec<Action>) {
        self.end_transaction(out);
        if self.cfg.stage_checks {
            out.push(Action::CheckHelo { name: name.clone() });
            self.pending = Pending::Helo(name, esmtp);
        } else {
            self.greeted(name, esmtp, out);
        }
    }

    fn greeted(&mut self, name: String, esmtp: bool, out: &mut Vec<Action>) {
        self.helo = Some(name);
        self.esmtp = esmtp;
        self.state = State::Greeted;
        let reply = if esmtp {
            self.ehlo_reply()
        } else {
            Reply::new(250, None, self.cfg.hostname.clone())
        };
        out.push(Action::Reply(reply));
    }

    fn begin_message(&mut self, sender: address::Path, params: MailParams, out: &mut Vec<Action>) {
        self.state = State::Mail;
        self.recipients = 0;
        out.push(Action::BeginMessage { sender, params });
        out.push(Action::Reply(ok("2.1.0")));
    }

    fn start_data(&mut self, out: &mut Vec<Action>) {
        self.state = State::Data;
        self.data = Some(DataDecoder::new(
            self.cfg.bare_newline,
            self.cfg.message_size_limit,
        ));
        out.push(Action::Reply(Reply::new(
            354,
            None,
            "End data with <CR><LF>.<CR><LF>",
        )));
    }

    fn start_chunk(&mut self, size: u64, last: bool, out: &mut Vec<Action>) {
        if self.state == State::Rcpt {
            self.bdat = Some(BdatDecoder::new(self.cfg.message_size_limit));
            self.state = State::Bdat;
        }
        self.bdat_chunk = (size, last);
        if let Some(dec) = self.bdat.as_mut() {
            dec.begin_chunk(size, last);
        }
        if size == 0 {
            let _ = self.content(&[], out);
        }
    }

    /// The shell's answer to [`Action::CheckHelo`]: `Ok` greets, `Err`
    /// sends the rejection (counted as an error; the client stays
    /// un-greeted).
    pub fn helo_checked(&mut self, verdict: Result<(), Reply>) -> Vec<Action> {
        let mut out = Vec::new();
        let Pending::Helo(name, esmtp) = std::mem::replace(&mut self.pending, Pending::None) else {
            return out;
        };
        match verdict {
            Ok(()) => self.greeted(name, esmtp, &mut out),
            Err(reply) => self.error_reply(reply, &mut out),
        }
        self.count_junk(&mut out);
        out
    }

    /// The shell's answer to [`Action::CheckSender`]: `Ok` starts the
    /// transaction ([`Action::BeginMessage`], 250), `Err` refuses MAIL.
    pub fn sender_checked(&mut self, verdict: Result<(), Reply>) -> Vec<Action> {
        let mut out = Vec::new();
        let Pending::Sender(sender, params) = std::mem::replace(&mut self.pending, Pending::None)
        else {
            return out;
        };
        match verdict {
            Ok(()) => self.begin_message(sender, params, &mut out),
            Err(reply) => self.error_reply(reply, &mut out),
        }
        out
    }

    /// The shell's answer to [`Action::CheckData`]: `Ok` sends 354 (or
    /// reads the BDAT chunk), `Err` refuses DATA (a refused BDAT chunk is
    /// skipped unread).
    pub fn data_checked(&mut self, verdict: Result<(), Reply>) -> Vec<Action> {
        let mut out = Vec::new();
        let Pending::DataCheck(bdat) = std::mem::replace(&mut self.pending, Pending::None) else {
            return out;
        };
        match (verdict, bdat) {
            (Ok(()), None) => self.start_data(&mut out),
            (Ok(()), Some((size, last))) => self.start_chunk(size, last, &mut out),
            (Err(reply), None) => self.error_reply(reply, &mut out),
            (Err(reply), Some((size, _))) => self.skip_chunk(size, reply),
        }
        out
    }

    /// The shell's answer to [`Action::CheckRecipient`]: `Ok` accepts the
    /// recipient, `Err` sends the rejection (counted as an error).
    pub fn recipient_checked(&mut self, verdict: Result<(), Reply>) -> Vec<Action> {
        let mut out = Vec::new();
        let Pending::Recipient(recipient, params) =
            std::mem::replace(&mut self.pending, Pending::None)
        else {
            return out;
        };
        match verdict {
            Ok(()) => {
                self.recipients += 1;
                self.state = State::Rcpt;
                out.push(Action::AddRecipient { recipient, params });
                out.push(Action::Reply(ok("2.1.5")));
            }
            Err(reply) => self.error_reply(reply, &mut out),
        }
        out
    }

    /// The shell's answer to [`Action::EndMessage`]: the queue id once
    /// cleanup has the message safely on disk, or the reply for a failure.
    pub fn message_queued(&mut self, result: Result<String, Reply>) -> Vec<Action> {
        let mut out = Vec::new();
        if self.pending != Pending::Queued {
            return out;
        }
        self.pending = Pending::None;
        self.data = None;
        self.bdat = None;
        self.recipients = 0;
        self.state = State::Greeted;
        if result.is_ok() {
            // A message received forgives earlier errors (Postfix).
            self.errors = 0;
            self.junk = 0;
        }
        match result {
            Ok(id) if id.is_empty() => out.push(Action::Reply(ok_queued())),
            Ok(id) => out.push(Action::Reply(Reply::new(
                250,
                Some("2.0.0"),
                format!("Ok: queued as {id}"),
            ))),
            Err(reply) => self.error_reply(reply, &mut out),
        }
        out
    }

    /// The shell's reply to [`Action::Verify`] or [`Action::Etrn`].
    pub fn answer(&mut self, reply: Reply) -> Vec<Action> {
        let mut out = Vec::new();
        if self.pending != Pending::Answer {
            return out;
        }
        self.pending = Pending::None;
        if reply.is_error() {
            self.error_reply(reply, &mut out);
        } else {
            out.push(Action::Reply(reply));
        }
        self.count_junk(&mut out);
        out
    }

    /// The shell's step in a SASL exchange started by [`Action::Auth`].
    pub fn auth_step(&mut self, step: AuthStep) -> Vec<Action> {
        let mut out = Vec::new();
        if self.pending != Pending::AuthAnswer {
            return out;
        }
        match step {
            AuthStep::Challenge(text) => {
                out.push(Action::Reply(Reply::new(334, None, text)));
                self.pending = Pending::Auth;
            }
            AuthStep::Success(user) => {
                self.pending = Pending::None;
                self.authenticated = Some(user);
                out.push(Action::Reply(Reply::new(
                    235,
                    Some("2.7.0"),
                    "Authentication successful",
                )));
            }
            AuthStep::Failure(reply) => {
                self.pending = Pending::None;
                self.error_reply(reply, &mut out);
            }
        }
        out
    }

    /// The TLS handshake after [`Action::StartTls`] finished: the session
    /// starts over (RFC 3207: the client must send EHLO again).
    pub fn tls_started(&mut self) {
        if self.pending == Pending::Tls {
            self.pending = Pending::None;
        }
        let _ = self.lines.take_buffered();
        self.tls = true;
        self.helo = None;
        self.esmtp = false;
        self.state = State::Connected;
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn replies(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Reply(r) => Some(r.to_string()),
                _ => None,
            })
            .collect()
    }

    /// The message content the session handed out, joined.
    fn content(actions: &[Action]) -> Vec<u8> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Content(c) => Some(c.as_slice()),
                _ => None,
            })
            .flatten()
            .copied()
            .collect()
    }

    /// Feeds all of `input`, accepting every recipient and queueing every
    /// message as "Q1", "Q2", ...; returns all actions.
    fn drive(s: &mut Session, input: &[u8]) -> Vec<Action> {
        let mut all = Vec::new();
        let mut pos = 0;
        let mut queued = 0;
        loop {
            let (n, acts) = s.receive(&input[pos..]);
            pos += n;
            let mut answer = Vec::new();
            for a in &acts {
                match a {
                    Action::CheckRecipient { .. } => answer = s.recipient_checked(Ok(())),
                    Action::EndMessage { .. } => {
                        queued += 1;
                        answer = s.message_queued(Ok(format!("Q{queued}")));
                    }
                    Action::Verify(v) => {
                        answer = s.answer(Reply::new(252, Some("2.0.0"), v.clone()))
                    }
                    Action::Etrn(_) => answer = s.answer(Reply::new(250, None, "Queuing started")),
                    _ => {}
                }
            }
            let progress = n > 0 || !answer.is_empty();
            all.extend(acts);
            all.extend(answer);
            if s.state() == State::Quit {
                return all;
            }
            if pos >= input.len() && !s.is_paused() && !progress {
                return all;
            }
            if !progress && s.is_paused() {
                return all;
            }
        }
    }

    fn cfg() -> Config {
        Config {
            hostname: "mx.example".into(),
            banner: "mx.example ESMTP Postfix".into(),
            forbid_unauth_pipelining: false,
            ..Config::default()
        }
    }

    #[test]
    fn full_transaction() {
        let mut s = Session::new(cfg());
        assert_eq!(s.greeting().to_string(), "220 mx.example ESMTP Postfix\r\n");
        let acts = drive(
            &mut s,
            b"EHLO c.example\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@mx.example>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n",
        );
        let r = replies(&acts);
        assert!(r[0].starts_with(
            "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n"
        ));
        assert!(r[0].ends_with(
            "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
        ));
        assert_eq!(
            r[1..].to_vec(),
            vec![
                "250 2.1.0 Ok\r\n",
                "250 2.1.5 Ok\r\n",
                "354 End data with <CR><LF>.<CR><LF>\r\n",
                "250 2.0.0 Ok: queued as Q1\r\n",
                "221 2.0.0 Bye\r\n",
            ]
        );
        let content = content(&acts);
        assert_eq!(content, b"Subject: x\n\nhi\n");
        assert!(acts.contains(&Action::EndMessage { size: 15 }));
        assert_eq!(acts.last(), Some(&Action::Close));
        assert_eq!(s.protocol(), "ESMTP");
    }

    #[test]
    fn smuggled_message_is_content_not_commands() {
        let mut s = Session::new(cfg());
        let input: &[u8] = b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nDATA\r\n\
            one\n.\nMAIL FROM:<evil@x>\r\nRCPT TO:<v@x>\r\nDATA\r\nsmuggled\r\n.\n\
            two\r.\nMAIL FROM:<evil2@x>\r\n\
            three\n.\r\nMAIL FROM:<evil3@x>\r\n.\r\nNOOP\r\n";
        let whole = drive(&mut s, input);
        let begins = whole
            .iter()
            .filter(|a| matches!(a, Action::BeginMessage { .. }))
            .count();
        assert_eq!(begins, 1, "a hidden MAIL FROM was executed");
        let ends = whole
            .iter()
            .filter(|a| matches!(a, Action::EndMessage { .. }))
            .count();
        assert_eq!(ends, 1);
        let content = content(&whole);
        let text = String::from_utf8_lossy(&content);
        assert!(text.contains("MAIL FROM:<evil@x>\n") && text.contains("MAIL FROM:<evil3@x>\n"));
        assert_eq!(
            replies(&whole).last().map(String::as_str),
            Some("250 2.0.0 Ok\r\n")
        );
        // Every split point gives the same actions.
        for i in 0..=input.len() {
            let mut s = Session::new(cfg());
            let mut acts = drive(&mut s, &input[..i]);
            acts.extend(drive(&mut s, &input[i..]));
            assert_eq!(acts, whole, "split at {i}");
        }
    }

    #[test]
    fn bare_lf_in_data_rejected_under_reject() {
        let mut s = Session::new(Config {
            bare_newline: BareNewline::Reject,
            ..cfg()
        });
        let acts = drive(
            &mut s,
            b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<u@x>\r\nDATA\r\nx\n.\nMAIL FROM:<e@x>\r\n",
        );
        let r = replies(&acts);
        assert_eq!(
            r.last().map(String::as_str),
            Some("550 5.5.2 Error: bare <LF> received\r\n")
        );
        assert!(acts.contains(&Action::AbortMessage));
        assert_eq!(acts.last(), Some(&Action::Close));
        assert_eq!(
            acts.iter()
                .filter(|a| matches!(a, Action::BeginMessage { .. }))
                .count(),
            1
        );
        let mut s = Session::new(Config {
            bare_newline: BareNewline::Reject,
            ..cfg()
        });
        let acts = drive(&mut s, b"NOOP\n");
        assert_eq!(
            replies(&acts),
            vec!["550 5.5.2 Error: bare <LF> received\r\n"]
        );
        assert_eq!(acts.last(), Some(&Action::Close));
    }

    #[test]
    fn starttls_discards_pipelined_plaintext() {
        let mut s = Session::new(Config {
            tls_offered: true,
            ..cfg()
        });
        let _ = drive(&mut s, b"EHLO c\r\n");
        let (used, acts) = s.receive(b"STARTTLS\r\nRSET\r\n");
        assert_eq!(used, 16, "the pipelined bytes are consumed (dropped)");
        assert_eq!(
            acts,
            vec![
                Action::Reply(Reply::new(220, Some("2.0.0"), "Ready to start TLS")),
                Action::StartTls
            ]
        );
        // More plaintext before the handshake is dropped too.
        let (used, acts) = s.receive(b"MAIL FROM:<a@b>\r\n");
        assert_eq!((used, acts), (17, vec![]));
        s.tls_started();
        assert!(s.tls_active());
        assert_eq!(s.state(), State::Connected);
        // Inside TLS: nothing of the RSET is left; EHLO no longer offers STARTTLS.
        let acts = drive(&mut s, b"EHLO c\r\n");
        assert_eq!(acts.len(), 1);
        assert!(!replies(&acts)[0].contains("STARTTLS"));
        assert_eq!(s.protocol(), "ESMTPS");
        // Also when the RSET arrives split in the same buffer as EHLO.
        let mut s = Session::new(Config {
            tls_offered: true,
            ..cfg()
        });
        let acts = drive(&mut s, b"EHLO c\r\nSTARTTLS\r\nRSET\r\nQUIT\r\n");
        assert!(acts.contains(&Action::StartTls));
        assert!(!acts.contains(&Action::Close));
        assert_eq!(replies(&acts).len(), 2);
    }

    #[test]
    fn tls_required_and_auth_required() {
        let mut s = Session::new(Config {
            tls_offered: true,
            tls_required: true,
            ..cfg()
        });
        let r = replies(&drive(&mut s, b"EHLO c\r\nMAIL FROM:<a@b>\r\nNOOP\r\n"));
        assert_eq!(r[1], "530 5.7.0 Must issue a STARTTLS command first\r\n");
        assert_eq!(r[2], "250 2.0.0 Ok\r\n");
        let mut s = Session::new(Config {
            auth_enabled: true,
            auth_required: true,
            ..cfg()
        });
        let acts = drive(&mut s, b"EHLO c\r\nMAIL FROM:<a@b>\r\nAUTH PLAIN\r\n");
        let r = replies(&acts);
        assert!(r[0].contains("250-AUTH PLAIN LOGIN\r\n"));
        assert_eq!(r[1], "530 5.7.0 Authentication required\r\n");
        assert_eq!(
            acts.last(),
            Some(&Action::Auth {
                mechanism: "PLAIN".into(),
                initial: None
            })
        );
        let acts = s.auth_step(AuthStep::Challenge(String::new()));
        assert_eq!(replies(&acts), vec!["334 \r\n"]);
        let (_, acts) = s.receive(b"AGEAYg==\r\nMAIL FROM:<a@b>\r\n");
        assert_eq!(acts, vec![Action::AuthResponse("AGEAYg==".into())]);
        let acts = s.auth_step(AuthStep::Success("a".into()));
        assert_eq!(
            replies(&acts),
            vec!["235 2.7.0 Authentication successful\r\n"]
        );
        let r = replies(&drive(&mut s, b""));
        assert_eq!(r, vec!["250 2.1.0 Ok\r\n"]);
        assert_eq!(s.protocol(), "ESMTPA");
        // smtpd_tls_auth_only hides AUTH without TLS.
        let mut s = Session::new(Config {
            auth_enabled: true,
            tls_auth_only: true,
            ..cfg()
        });
        let r = replies(&drive(&mut s, b"EHLO c\r\nAUTH PLAIN\r\n"));
        assert!(!r[0].contains("AUTH"));
        assert_eq!(r[1], "503 5.5.1 Error: authentication not enabled\r\n");
    }

    #[test]
    fn unauth_pipelining_forbidden() {
        let mut s = Session::new(Config {
            forbid_unauth_pipelining: true,
            ..cfg()
        });
        let acts = drive(&mut s, b"EHLO c\r\nMAIL FROM:<a@b>\r\n");
        assert_eq!(
            replies(&acts),
            vec!["554 5.5.0 Error: SMTP protocol synchronization\r\n"]
        );
        assert_eq!(acts.last(), Some(&Action::Close));
        let mut s = Session::new(Config {
            forbid_unauth_pipelining: true,
            ..cfg()
        });
        let acts = drive(&mut s, b"EHLO c\r\nQUIT\r\n");
        assert_eq!(
            replies(&acts),
            vec!["554 5.5.0 Error: SMTP protocol synchronization\r\n"]
        );
        let mut s = Session::new(Config {
            forbid_unauth_pipelining: true,
            ..cfg()
        });
        assert_eq!(s.pregreet().last(), Some(&Action::Close));
        let mut s = Session::new(cfg());
        assert!(s.pregreet().is_empty());
        // MAIL, RCPT pipelined after a separate EHLO are fine (PIPELINING).
        let mut s = Session::new(Config {
            forbid_unauth_pipelining: true,
            ..cfg()
        });
        let _ = drive(&mut s, b"EHLO c\r\n");
        let acts = drive(&mut s, b"MAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nDATA\r\n");
        assert_eq!(replies(&acts).len(), 3);
        let acts = drive(&mut s, b"x\r\n.\r\n");
        assert_eq!(replies(&acts), vec!["250 2.0.0 Ok: queued as Q1\r\n"]);
    }

    #[test]
    fn sequence_errors_and_error_limits() {
        let mut s = Session::new(Config {
            hard_error_limit: 3,
            soft_error_limit: 2,
            ..cfg()
        });
        let acts = drive(&mut s, b"RCPT TO:<u@x>\r\nDATA\r\nFOO\r\nNOOP\r\n");
        let r = replies(&acts);
        assert_eq!(
            r,
            vec![
                "503 5.5.1 Error: need MAIL command\r\n",
                "503 5.5.1 Error: need RCPT command\r\n",
                "500 5.5.2 Error: command not recognized\r\n",
                "421 4.7.0 mx.example Error: too many errors\r\n",
            ]
        );
        assert!(acts.contains(&Action::ErrorSleep));
        assert_eq!(acts.last(), Some(&Action::Close));
        let mut s = Session::new(cfg());
        let r = replies(&drive(
            &mut s,
            b"MAIL FROM:<a@b>\r\nMAIL FROM:<a@b>\r\nDATA\r\nMAIL FROM:<a@b> SIZE=99999999999\r\n",
        ));
        assert_eq!(r[1], "503 5.5.1 Error: nested MAIL command\r\n");
        assert_eq!(r[2], "554 5.5.1 Error: no valid recipients\r\n");
        let mut s = Session::new(Config {
            helo_required: true,
            ..cfg()
        });
        let r = replies(&drive(&mut s, b"MAIL FROM:<a@b>\r\n"));
        assert_eq!(r, vec!["503 5.5.1 Error: send HELO/EHLO first\r\n"]);
    }

    #[test]
    fn line_too_long_and_recipient_limit() {
        let mut s = Session::new(Config {
            line_length_limit: 20,
            recipient_limit: 1,
            ..cfg()
        });
        let mut input = b"NOOP ".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100));
        input.extend_from_slice(b"\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nRCPT TO:<v@x>\r\n");
        let r = replies(&drive(&mut s, &input));
        assert_eq!(
            r,
            vec![
                "500 5.5.0 Error: line too long\r\n",
                "250 2.1.0 Ok\r\n",
                "250 2.1.5 Ok\r\n",
                "452 4.5.3 Error: too many recipients\r\n",
            ]
        );
    }

    #[test]
    fn recipient_hook_rejects() {
        let mut s = Session::new(cfg());
        let (_, acts) = s.receive(b"HELO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nNOOP\r\n");
        assert!(s.is_paused());
        assert!(matches!(acts.last(), Some(Action::CheckRecipient { .. })));
        let acts = s.recipient_checked(Err(Reply::new(
            554,
            Some("5.7.1"),
            "<u@x>: Relay access denied",
        )));
        assert_eq!(
            replies(&acts),
            vec!["554 5.7.1 <u@x>: Relay access denied\r\n"]
        );
        let (_, acts) = s.receive(b"");
        assert_eq!(replies(&acts), vec!["250 2.0.0 Ok\r\n"]);
        assert_eq!(s.state(), State::Mail);
        assert_eq!(s.protocol(), "SMTP");
    }

    #[test]
    fn bdat_chunks_and_refused_bdat_skipped() {
        let mut s = Session::new(cfg());
        let acts = drive(
            &mut s,
            b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nBDAT 5\r\nab\r\ncBDAT 3 LAST\r\nd\r\nQUIT\r\n",
        );
        let r = replies(&acts);
        assert_eq!(r[3], "250 2.0.0 Ok: 5 bytes\r\n");
        assert_eq!(r[4], "250 2.0.0 Ok: queued as Q1\r\n");
        assert_eq!(r[5], "221 2.0.0 Bye\r\n");
        let content = content(&acts);
        assert_eq!(content, b"ab\ncd\n");
        // A BDAT without a transaction: its bytes are skipped, not executed.
        let mut s = Session::new(cfg());
        let acts = drive(
            &mut s,
            b"EHLO c\r\nBDAT 17 LAST\r\nMAIL FROM:<e@x>\r\nNOOP\r\n",
        );
        assert!(
            !acts
                .iter()
                .any(|a| matches!(a, Action::BeginMessage { .. }))
        );
        assert_eq!(
            replies(&acts)[1..].to_vec(),
            vec!["503 5.5.1 Error: need RCPT command\r\n", "250 2.0.0 Ok\r\n"]
        );
        // BDAT 0 LAST ends the message.
        let mut s = Session::new(cfg());
        let acts = drive(
            &mut s,
            b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nBDAT 2\r\nx\nBDAT 0 LAST\r\n",
        );
        assert!(acts.contains(&Action::EndMessage { size: 2 }));
    }

    #[test]
    fn vrfy_and_etrn_hooks() {
        let mut s = Session::new(cfg());
        let r = replies(&drive(&mut s, b"EHLO c\r\nVRFY u\r\nETRN x\r\n"));
        assert_eq!(
            r[1..].to_vec(),
            vec!["252 2.0.0 u\r\n", "250 Queuing started\r\n"]
        );
        let mut s = Session::new(Config {
            disable_vrfy_command: true,
            ..cfg()
        });
        let r = replies(&drive(&mut s, b"EHLO c\r\nVRFY u\r\n"));
        assert!(!r[0].contains("VRFY"));
        assert_eq!(r[1], "502 5.5.1 VRFY command is disabled\r\n");
    }

    #[test]
    fn etrn_domain_syntax() {
        let mut s = Session::new(cfg());
        let acts = drive(
            &mut s,
            b"EHLO c\r\nETRN @example.com\r\nETRN #x.example\r\nETRN bad!name\r\nETRN [192.0.2.1]\r\nETRN 1.2.3\r\nETRN trailing.dot.\r\n",
        );
        let asked: Vec<&str> = acts
            .iter()
            .filter_map(|a| match a {
                Action::Etrn(d) => Some(d.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(asked, vec!["example.com", "x.example", "[192.0.2.1]"]);
        let r = replies(&acts);
        assert_eq!(r[3], "501 Error: invalid parameter syntax\r\n");
        assert_eq!(r[5], "501 Error: invalid parameter syntax\r\n");
        assert_eq!(r[6], "501 Error: invalid parameter syntax\r\n");
    }

    #[test]
    fn junk_commands_beyond_the_limit_end_the_session() {
        // Postfix: junk_cmds++ > limit counts an error, so with limit 2 the
        // fourth junk command is the first error, the sixth the third.
        let c = Config {
            junk_command_limit: 2,
            hard_error_limit: 3,
            soft_error_limit: 10,
            ..cfg()
        };
        let mut s = Session::new(c.clone());
        let acts = drive(&mut s, &b"NOOP\r\n".repeat(10));
        let r = replies(&acts);
        assert_eq!(r.len(), 7, "{r:?}");
        assert!(r[..6].iter().all(|l| l == "250 2.0.0 Ok\r\n"), "{r:?}");
        assert_eq!(r[6], "421 4.7.0 mx.example Error: too many errors\r\n");
        assert_eq!(acts.last(), Some(&Action::Close));
        // RSET, HELO and VRFY count too.
        let mut s = Session::new(c.clone());
        let r = replies(&drive(
            &mut s,
            b"HELO c\r\nRSET\r\nVRFY u\r\nRSET\r\nRSET\r\nRSET\r\nRSET\r\n",
        ));
        assert_eq!(
            r.last().unwrap(),
            "421 4.7.0 mx.example Error: too many errors\r\n"
        );
        assert_eq!(r.len(), 7, "{r:?}");
        // A message received forgives them.
        let mut s = Session::new(c);
        let r = replies(&drive(
            &mut s,
            b"HELO c\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nDATA\r\nx\r\n.\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n",
        ));
        assert!(!r.iter().any(|l| l.starts_with("421")), "{r:?}");
        // Without a limit in reach nothing changes.
        let mut s = Session::new(cfg());
        let r = replies(&drive(&mut s, &b"NOOP\r\n".repeat(50)));
        assert!(r.iter().all(|l| l == "250 2.0.0 Ok\r\n"));
    }

    #[test]
    fn sasl_security_options_filter_mechanisms() {
        let c = Config {
            auth_enabled: true,
            sasl_security: SaslSecurity::parse("noanonymous, noplaintext"),
            sasl_tls_security: SaslSecurity::parse("noanonymous"),
            ..cfg()
        };
        let mut s = Session::new(c.clone());
        let r = replies(&drive(&mut s, b"EHLO c\r\nAUTH PLAIN\r\n"));
        assert!(!r[0].contains("AUTH"), "{}", r[0]);
        assert_eq!(r[1], "503 5.5.1 Error: authentication not enabled\r\n");
        // After STARTTLS, smtpd_sasl_tls_security_options applies.
        s.tls_started();
        let acts = drive(&mut s, b"EHLO c\r\nAUTH ANONYMOUS\r\nAUTH PLAIN\r\n");
        let r = replies(&acts);
        assert!(r[0].contains("250-AUTH PLAIN LOGIN\r\n"), "{}", r[0]);
        assert_eq!(
            r[1],
            "535 5.7.8 Error: authentication failed: Invalid authentication mechanism: 'ANONYMOUS'\r\n"
        );
        assert!(
            acts.iter()
                .any(|a| matches!(a, Action::Auth { mechanism, .. } if mechanism == "PLAIN"))
        );
        // The defaults (noanonymous) offer both.
        let mut s = Session::new(Config {
            auth_enabled: true,
            ..cfg()
        });
        let r = replies(&drive(&mut s, b"EHLO c\r\n"));
        assert!(r[0].contains("250-AUTH PLAIN LOGIN\r\n"), "{}", r[0]);
        let sec = SaslSecurity::parse("nodictionary");
        assert!(!sec.allows("cram-md5") && sec.allows("ANONYMOUS") && sec.allows("EXTERNAL"));
    }

    #[test]
    fn message_too_big() {
        let mut s = Session::new(Config {
            message_size_limit: 10,
            ..cfg()
        });
        let r = replies(&drive(
            &mut s,
            b"EHLO c\r\nMAIL FROM:<a@b> SIZE=11\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nDATA\r\n0123456789abc\r\n.\r\nNOOP\r\n",
        ));
        assert_eq!(r[1], "552 5.3.4 Message size exceeds fixed limit\r\n");
        assert_eq!(r[5], "552 5.3.4 Error: message file too big\r\n");
        assert_eq!(r[6], "250 2.0.0 Ok\r\n");
    }

    #[test]
    fn stage_checks_pause_and_refuse() {
        let mut s = Session::new(Config {
            stage_checks: true,
            ..cfg()
        });
        let (_, acts) = s.receive(b"EHLO c\r\nMAIL FROM:<a@b>\r\n");
        assert_eq!(acts, vec![Action::CheckHelo { name: "c".into() }]);
        assert!(s.is_paused());
        let acts = s.helo_checked(Err(Reply::new(
            550,
            Some("5.7.1"),
            "<c>: Helo command rejected: go away",
        )));
        assert_eq!(
            replies(&acts),
            vec!["550 5.7.1 <c>: Helo command rejected: go away\r\n"]
        );
        assert!(s.helo_name().is_none());
        // The pipelined MAIL is checked next, then refused.
        let (_, acts) = s.receive(b"");
        assert!(matches!(acts.as_slice(), [Action::CheckSender { .. }]));
        let acts = s.sender_checked(Err(Reply::new(
            554,
            Some("5.7.1"),
            "<a@b>: Sender address rejected",
        )));
        assert_eq!(replies(&acts).len(), 1);
        assert_eq!(s.state(), State::Connected);
        // Accepted HELO, MAIL, RCPT; DATA refused; BDAT refused skips its chunk.
        let (_, _) = s.receive(b"HELO c\r\n");
        let acts = s.helo_checked(Ok(()));
        assert_eq!(replies(&acts), vec!["250 mx.example\r\n"]);
        let (_, _) = s.receive(b"MAIL FROM:<a@b>\r\n");
        let acts = s.sender_checked(Ok(()));
        assert!(matches!(acts.first(), Some(Action::BeginMessage { .. })));
        let (_, _) = s.receive(b"RCPT TO:<u@x>\r\n");
        let _ = s.recipient_checked(Ok(()));
        let (_, acts) = s.receive(b"DATA\r\n");
        assert_eq!(acts, vec![Action::CheckData]);
        let acts = s.data_checked(Err(Reply::new(554, Some("5.7.1"), "Data command rejected")));
        assert_eq!(replies(&acts), vec!["554 5.7.1 Data command rejected\r\n"]);
        assert_eq!(s.state(), State::Rcpt);
        let (_, acts) = s.receive(b"BDAT 4 LAST\r\nQUITNOOP\r\n");
        assert_eq!(acts, vec![Action::CheckData]);
        let acts = s.data_checked(Err(Reply::new(554, Some("5.7.1"), "no")));
        assert!(acts.is_empty());
        let acts = drive(&mut s, b"");
        assert_eq!(
            replies(&acts),
            vec!["554 5.7.1 no\r\n", "250 2.0.0 Ok\r\n"],
            "the chunk was skipped, not executed"
        );
        let (_, _) = s.receive(b"DATA\r\n");
        let acts = s.data_checked(Ok(()));
        assert_eq!(
            replies(&acts),
            vec!["354 End data with <CR><LF>.<CR><LF>\r\n"]
        );
        assert_eq!(s.state(), State::Data);
    }

    #[test]
    fn http_and_headers_end_the_session() {
        for line in ["GET / HTTP/1.1", "post /x", "User-Agent: curl"] {
            let mut s = Session::new(cfg());
            let acts = drive(&mut s, format!("{line}\r\nNOOP\r\n").as_bytes());
            assert_eq!(
                replies(&acts),
                vec!["221 2.7.0 Error: I can break rules, too. Goodbye.\r\n"],
                "{line}"
            );
            assert!(matches!(acts.first(), Some(Action::NonSmtpCommand(_))));
            assert_eq!(acts.last(), Some(&Action::Close));
        }
        let mut s = Session::new(cfg());
        let acts = drive(&mut s, b"FROB x\r\n");
        assert_eq!(
            replies(&acts),
            vec!["500 5.5.2 Error: command not recognized\r\n"]
        );
    }

    #[test]
    fn denied_client_gets_503_but_may_quit() {
        let mut s = Session::new(cfg());
        s.deny_access("host[192.0.2.1]");
        let acts = drive(&mut s, b"EHLO c\r\nMAIL FROM:<a@b>\r\nQUIT\r\n");
        assert_eq!(
            replies(&acts),
            vec![
                "503 5.7.0 Error: access denied for host[192.0.2.1]\r\n",
                "503 5.7.0 Error: access denied for host[192.0.2.1]\r\n",
                "221 2.0.0 Bye\r\n"
            ]
        );
    }

    #[test]
    fn command_counts_for_the_disconnect_line() {
        let mut s = Session::new(cfg());
        assert_eq!(s.last_command(), "CONNECT");
        let _ = drive(
            &mut s,
            b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nDATA\r\nx\r\n.\r\nXYZZY\r\nRCPT TO:<v@x>\r\n",
        );
        assert_eq!(
            s.command_counts(),
            "ehlo=1 mail=1 rcpt=1/2 data=1 unknown=0/1 commands=4/6"
        );
        assert_eq!(s.last_command(), "RCPT");
        let _ = drive(&mut s, b"MAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nDATA\r\nabc");
        assert_eq!(s.last_command(), "DATA");
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..400), split in 0usize..400) {
            let mut s = Session::new(Config { line_length_limit: 64, tls_offered: true, auth_enabled: true, ..cfg() });
            let split = split.min(input.len());
            let _ = drive(&mut s, &input[..split]);
            let _ = drive(&mut s, &input[split..]);
        }

        #[test]
        fn content_is_never_a_command(parts in proptest::collection::vec(prop_oneof![
            Just("\r"), Just("\n"), Just("."), Just("\r\n"), Just("MAIL FROM:<e@x>"), Just("QUIT"),
            Just("RSET"), Just("BDAT 1 LAST"), Just("x")], 0..40), split in 0usize..200) {
            let body: String = parts.concat();
            let framed = format!("\r\n{body}");
            prop_assume!(!framed.contains("\r\n.\r\n"));
            let input = format!("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@x>\r\nDATA\r\n{body}\r\n.\r\n");
            let input = input.as_bytes();
            let split = split.min(input.len());
            let mut s = Session::new(cfg());
            let mut acts = drive(&mut s, &input[..split]);
            acts.extend(drive(&mut s, &input[split..]));
            prop_assert_eq!(acts.iter().filter(|a| matches!(a, Action::BeginMessage { .. })).count(), 1);
            prop_assert_eq!(acts.iter().filter(|a| matches!(a, Action::EndMessage { .. })).count(), 1);
            prop_assert!(!acts.contains(&Action::Close));
            prop_assert_eq!(s.state(), State::Greeted);
        }

        #[test]
        fn random_commands_never_panic(cmds in proptest::collection::vec(prop_oneof![
            Just("EHLO c\r\n"), Just("HELO c\r\n"), Just("MAIL FROM:<a@b>\r\n"), Just("RCPT TO:<u@x>\r\n"),
            Just("DATA\r\n"), Just("x\r\n.\r\n"), Just("BDAT 3\r\n"), Just("BDAT 0 LAST\r\n"), Just("RSET\r\n"),
            Just("\n.\n"), Just("abc"), Just("STARTTLS\r\n"), Just("AUTH PLAIN\r\n"), Just("QUIT\r\n")], 0..20)) {
            let mut s = Session::new(Config { tls_offered: true, auth_enabled: true, ..cfg() });
            let input: Vec<u8> = cmds.concat().into_bytes();
            let _ = drive(&mut s, &input);
        }
    }
}
