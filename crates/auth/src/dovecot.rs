//! Dovecot's authentication protocol (auth-client protocol 1.x): both sides.
//!
//! This is what Postfix speaks with `smtpd_sasl_type = dovecot` and what
//! Dovecot's `auth` service listens for. It is a line protocol over a
//! stream socket: each line is a command and TAB-separated parameters,
//! ending in LF. Optional parameters are `name=value` pairs or bare flags;
//! unknown ones are ignored. Values use Dovecot's tab-escaping, with
//! `\x01` as the escape character ([`escape`], [`unescape`]).
//!
//! ```text
//! C: VERSION 1 2              S: VERSION 1 2
//! C: CPID <pid>               S: MECH PLAIN plaintext
//!                             S: MECH LOGIN plaintext
//!                             S: SPID <pid>
//!                             S: CUID <n>
//!                             S: COOKIE <hex>
//!                             S: DONE
//! C: AUTH <id> PLAIN service=smtp nologin lip=.. rip=.. [secured] [resp=<base64>]
//!                             S: CONT <id> <base64>
//! C: CONT <id> <base64>
//!                             S: OK <id> user=<name>
//!                          or S: FAIL <id> reason=<text> [user=<name>] [temp]
//! ```
//!
//! Three layers:
//!
//! - [`ClientRequest`] and [`ServerReply`]: parsing and encoding of single
//!   lines, for either side. Parsers take `&str` without the LF and never
//!   panic; lines longer than [`MAX_LINE`] are refused by the readers.
//! - [`ServerConnection`]: the server's per-connection state machine, with
//!   no I/O. It checks the handshake, keeps the pending requests (many AUTH
//!   ids may be interleaved on one connection, at most [`MAX_PENDING`]),
//!   runs the SASL exchange of each ([`crate::sasl`]) and hands out
//!   [`Event::Verify`] when a request's credentials are complete. The caller
//!   checks them, waits out any failure delay, and writes the OK or FAIL
//!   made by [`ServerReply::ok`] / [`ServerReply::fail`].
//! - [`Client`]: a blocking client for smtpd (and later pop3d and imapd),
//!   one exchange at a time, which also works against a real Dovecot.
//!
//! Postfix's side (src/xsasl/xsasl_dovecot_server.c) sends `VERSION 1 0`
//! and `CPID`, reads until `DONE` (without `DONE` the handshake fails),
//! takes mechanisms from `MECH` lines (`plaintext` means "sends the password
//! in the clear"; `private` hides one), sends AUTH as above (the initial
//! response already in base64), passes a `CONT` challenge to the SMTP client
//! as it is (an empty one gives `334 `), takes `user=` from OK and shows
//! `reason=` from FAIL in its 535 reply. It ignores replies for other ids.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::sasl::{self, Credentials, Exchange, Mechanism};

/// Protocol major version we speak; a peer with another major is refused.
pub const VERSION_MAJOR: u32 = 1;
/// Protocol minor version we announce.
pub const VERSION_MINOR: u32 = 2;
/// Longest line accepted, without the LF (Dovecot's own limit).
pub const MAX_LINE: usize = 16384;
/// Most requests one connection may have in progress; the oldest one is
/// dropped when a new one would exceed this (a client may abandon an
/// exchange without telling us, as Postfix does on `*`).
pub const MAX_PENDING: usize = 64;
/// Most parameters accepted on one line.
pub const MAX_PARAMS: usize = 64;
/// How long [`Client`] waits for a reply by default. Longer than the
/// largest failure delay of our own `auth` daemon.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The escape character of Dovecot's tab-escaping.
const ESC: char = '\u{1}';

/// escape - Dovecot's str_tabescape: `\x01`, TAB, CR, LF and NUL become
/// `\x01` followed by `1`, `t`, `r`, `n` and `0`.
pub fn escape(s: &str) -> String {
    if !s.contains(['\u{1}', '\t', '\r', '\n', '\0']) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\u{1}' => out.push_str("\u{1}1"),
            '\t' => out.push_str("\u{1}t"),
            '\r' => out.push_str("\u{1}r"),
            '\n' => out.push_str("\u{1}n"),
            '\0' => out.push_str("\u{1}0"),
            c => out.push(c),
        }
    }
    out
}

/// unescape - the inverse of [`escape`]. Any other character after `\x01`
/// stands for itself; a trailing lone `\x01` is dropped. `l` is read as LF
/// too (some documentation spells it so).
pub fn unescape(s: &str) -> String {
    if !s.contains(ESC) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != ESC {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('1') => out.push(ESC),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('n' | 'l') => out.push('\n'),
            Some('0') => out.push('\0'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// An optional parameter: `name=value` or a bare flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The name (before `=`).
    pub name: String,
    /// The unescaped value; `None` for a flag.
    pub value: Option<String>,
}

impl Param {
    /// A `name=value` parameter.
    pub fn new(name: &str, value: &str) -> Param {
        Param {
            name: name.to_string(),
            value: Some(value.to_string()),
        }
    }

    /// A flag parameter.
    pub fn flag(name: &str) -> Param {
        Param {
            name: name.to_string(),
            value: None,
        }
    }

    fn parse(field: &str) -> Param {
        match field.split_once('=') {
            Some((n, v)) => Param::new(&unescape(n), &unescape(v)),
            None => Param::flag(&unescape(field)),
        }
    }

    fn encode(&self, out: &mut String) {
        out.push('\t');
        out.push_str(&escape(&self.name));
        if let Some(v) = &self.value {
            out.push('=');
            out.push_str(&escape(v));
        }
    }
}

/// Why a line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// An empty line.
    Empty,
    /// A command this side does not know (callers usually ignore it).
    UnknownCommand(String),
    /// A required parameter is missing.
    Missing {
        /// The command.
        command: &'static str,
        /// The parameter.
        what: &'static str,
    },
    /// A number (id, pid, version) is not a decimal number.
    BadNumber {
        /// The command.
        command: &'static str,
        /// The offending text (cut to 40 characters).
        text: String,
    },
    /// More than [`MAX_PARAMS`] parameters.
    TooManyParams,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => f.write_str("empty line"),
            ParseError::UnknownCommand(c) => write!(f, "unknown command {}", printable(c)),
            ParseError::Missing { command, what } => write!(f, "{command}: missing {what}"),
            ParseError::BadNumber { command, text } => {
                write!(f, "{command}: bad number {}", printable(text))
            }
            ParseError::TooManyParams => f.write_str("too many parameters"),
        }
    }
}

impl std::error::Error for ParseError {}

/// printable - client text made safe and short for a log line.
pub fn printable(s: &str) -> String {
    s.chars()
        .take(100)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Splits a line into its TAB-separated fields, bounded.
fn fields(line: &str) -> Result<Vec<&str>, ParseError> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return Err(ParseError::Empty);
    }
    let f: Vec<&str> = line.split('\t').collect();
    if f.len() > MAX_PARAMS + 3 {
        return Err(ParseError::TooManyParams);
    }
    Ok(f)
}

fn number(
    command: &'static str,
    field: Option<&&str>,
    what: &'static str,
) -> Result<u32, ParseError> {
    let text = field.ok_or(ParseError::Missing { command, what })?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::BadNumber {
            command,
            text: text.chars().take(40).collect(),
        });
    }
    text.parse().map_err(|_| ParseError::BadNumber {
        command,
        text: text.chars().take(40).collect(),
    })
}

fn text(
    command: &'static str,
    field: Option<&&str>,
    what: &'static str,
) -> Result<String, ParseError> {
    field
        .map(|s| unescape(s))
        .ok_or(ParseError::Missing { command, what })
}

fn params(rest: &[&str]) -> Vec<Param> {
    rest.iter()
        .map(|f| Param::parse(f))
        .filter(|p| !(p.name.is_empty() && p.value.is_none()))
        .collect()
}

/// The parameters of an AUTH request that we act on; the rest are kept in
/// `extra`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// The request id chosen by the client (unique on its connection).
    pub id: u32,
    /// The SASL mechanism name as sent.
    pub mechanism: String,
    /// `service=`: smtp, imap, pop3...
    pub service: String,
    /// `lip=`: the local (server) address of the end client's connection.
    pub local_ip: Option<String>,
    /// `rip=`: the remote address of the end client.
    pub remote_ip: Option<String>,
    /// `secured`: the end client's connection is encrypted (or local).
    pub secured: bool,
    /// `nologin`: only authenticate; no login session follows.
    pub nologin: bool,
    /// `resp=`: the initial response, base64 (empty for an empty one).
    pub initial_response: Option<String>,
    /// Other parameters, unescaped, in order.
    pub extra: Vec<Param>,
}

impl AuthRequest {
    fn from_params(id: u32, mechanism: String, all: Vec<Param>) -> AuthRequest {
        let mut r = AuthRequest {
            id,
            mechanism,
            service: String::new(),
            local_ip: None,
            remote_ip: None,
            secured: false,
            nologin: false,
            initial_response: None,
            extra: Vec::new(),
        };
        for p in all {
            match (p.name.as_str(), p.value) {
                ("service", Some(v)) => r.service = v,
                ("lip", Some(v)) => r.local_ip = Some(v),
                ("rip", Some(v)) => r.remote_ip = Some(v),
                ("resp", Some(v)) => r.initial_response = Some(v),
                ("secured", _) => r.secured = true,
                ("nologin", None) => r.nologin = true,
                (_, value) => r.extra.push(Param {
                    name: p.name,
                    value,
                }),
            }
        }
        r
    }
}

/// A line from client to server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientRequest {
    /// `VERSION <major> <minor>`.
    Version(u32, u32),
    /// `CPID <pid>`: the client's process id.
    Cpid(u32),
    /// `AUTH <id> <mechanism> [params]`.
    Auth(AuthRequest),
    /// `CONT <id> <base64>`: the client's response to a challenge.
    Cont {
        /// Request id.
        id: u32,
        /// The response, base64.
        data: String,
    },
}

impl ClientRequest {
    /// Parses one line (without or with its LF).
    ///
    /// # Errors
    /// [`ParseError`] for an empty, unknown or malformed line.
    pub fn parse(line: &str) -> Result<ClientRequest, ParseError> {
        let f = fields(line)?;
        let cmd = f.first().copied().unwrap_or("");
        match cmd {
            "VERSION" => Ok(ClientRequest::Version(
                number("VERSION", f.get(1), "major")?,
                number("VERSION", f.get(2), "minor")?,
            )),
            "CPID" => Ok(ClientRequest::Cpid(number("CPID", f.get(1), "pid")?)),
            "AUTH" => {
                let id = number("AUTH", f.get(1), "id")?;
                let mech = text("AUTH", f.get(2), "mechanism")?;
                let rest = f.get(3..).unwrap_or(&[]);
                Ok(ClientRequest::Auth(AuthRequest::from_params(
                    id,
                    mech,
                    params(rest),
                )))
            }
            "CONT" => Ok(ClientRequest::Cont {
                id: number("CONT", f.get(1), "id")?,
                data: f.get(2).map(|s| unescape(s)).unwrap_or_default(),
            }),
            other => Err(ParseError::UnknownCommand(other.chars().take(40).collect())),
        }
    }

    /// The line, with its LF.
    pub fn encode(&self) -> String {
        match self {
            ClientRequest::Version(a, b) => format!("VERSION\t{a}\t{b}\n"),
            ClientRequest::Cpid(p) => format!("CPID\t{p}\n"),
            ClientRequest::Cont { id, data } => format!("CONT\t{id}\t{}\n", escape(data)),
            ClientRequest::Auth(r) => {
                let mut out = format!("AUTH\t{}\t{}", r.id, escape(&r.mechanism));
                if !r.service.is_empty() {
                    Param::new("service", &r.service).encode(&mut out);
                }
                if r.nologin {
                    Param::flag("nologin").encode(&mut out);
                }
                if let Some(ip) = &r.local_ip {
                    Param::new("lip", ip).encode(&mut out);
                }
                if let Some(ip) = &r.remote_ip {
                    Param::new("rip", ip).encode(&mut out);
                }
                if r.secured {
                    Param::flag("secured").encode(&mut out);
                }
                for p in &r.extra {
                    p.encode(&mut out);
                }
                // Last, as Postfix and Dovecot's own clients do.
                if let Some(resp) = &r.initial_response {
                    Param::new("resp", resp).encode(&mut out);
                }
                out.push('\n');
                out
            }
        }
    }
}

/// A line from server to client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerReply {
    /// `VERSION <major> <minor>`.
    Version(u32, u32),
    /// `MECH <name> [flags]`, e.g. `MECH PLAIN plaintext`.
    Mech {
        /// Mechanism name.
        name: String,
        /// Security properties: plaintext, dictionary, active, anonymous,
        /// forward-secrecy, mutual-auth, private.
        flags: Vec<String>,
    },
    /// `SPID <pid>`: the server's process id.
    Spid(u32),
    /// `CUID <n>`: the connection's unique id.
    Cuid(u32),
    /// `COOKIE <hex>`: for the master's login hand-off (unused here).
    Cookie(String),
    /// `DONE`: end of the handshake.
    Done,
    /// `CONT <id> <base64>`: a challenge.
    Cont {
        /// Request id.
        id: u32,
        /// The challenge, base64 (may be empty).
        data: String,
    },
    /// `OK <id> [params]`: authenticated.
    Ok {
        /// Request id.
        id: u32,
        /// `user=`: the authenticated user name.
        user: Option<String>,
        /// Other parameters.
        extra: Vec<Param>,
    },
    /// `FAIL <id> [params]`: not authenticated.
    Fail {
        /// Request id.
        id: u32,
        /// `reason=`: text the client may show the end user.
        reason: Option<String>,
        /// `user=`: the user name, when known.
        user: Option<String>,
        /// `temp`: a temporary failure (database down); try again later.
        temp: bool,
        /// Other parameters.
        extra: Vec<Param>,
    },
}

impl ServerReply {
    /// `OK <id> user=<user>`.
    pub fn ok(id: u32, user: &str) -> ServerReply {
        ServerReply::Ok {
            id,
            user: Some(user.to_string()),
            extra: Vec::new(),
        }
    }

    /// `FAIL <id> [reason=..] [user=..] [temp]`.
    pub fn fail(id: u32, reason: Option<&str>, user: Option<&str>, temp: bool) -> ServerReply {
        ServerReply::Fail {
            id,
            reason: reason.map(str::to_string),
            user: user.map(str::to_string),
            temp,
            extra: Vec::new(),
        }
    }

    /// The request id this reply answers, if it answers one.
    pub fn id(&self) -> Option<u32> {
        match self {
            ServerReply::Cont { id, .. }
            | ServerReply::Ok { id, .. }
            | ServerReply::Fail { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// Parses one line (without or with its LF).
    ///
    /// # Errors
    /// [`ParseError`] for an empty, unknown or malformed line.
    pub fn parse(line: &str) -> Result<ServerReply, ParseError> {
        let f = fields(line)?;
        let cmd = f.first().copied().unwrap_or("");
        let rest = |i: usize| f.get(i..).unwrap_or(&[]);
        match cmd {
            "VERSION" => Ok(ServerReply::Version(
                number("VERSION", f.get(1), "major")?,
                number("VERSION", f.get(2), "minor")?,
            )),
            "MECH" => Ok(ServerReply::Mech {
                name: text("MECH", f.get(1), "name")?,
                flags: rest(2).iter().map(|s| unescape(s)).collect(),
            }),
            "SPID" => Ok(ServerReply::Spid(number("SPID", f.get(1), "pid")?)),
            "CUID" => Ok(ServerReply::Cuid(number("CUID", f.get(1), "id")?)),
            "COOKIE" => Ok(ServerReply::Cookie(text("COOKIE", f.get(1), "cookie")?)),
            "DONE" => Ok(ServerReply::Done),
            "CONT" => Ok(ServerReply::Cont {
                id: number("CONT", f.get(1), "id")?,
                data: f.get(2).map(|s| unescape(s)).unwrap_or_default(),
            }),
            "OK" => {
                let id = number("OK", f.get(1), "id")?;
                let mut user = None;
                let mut extra = Vec::new();
                for p in params(rest(2)) {
                    match (p.name.as_str(), p.value) {
                        ("user", Some(v)) => user = Some(v),
                        (_, value) => extra.push(Param {
                            name: p.name,
                            value,
                        }),
                    }
                }
                Ok(ServerReply::Ok { id, user, extra })
            }
            "FAIL" => {
                let id = number("FAIL", f.get(1), "id")?;
                let (mut reason, mut user, mut temp) = (None, None, false);
                let mut extra = Vec::new();
                for p in params(rest(2)) {
                    match (p.name.as_str(), p.value) {
                        ("reason", Some(v)) => reason = Some(v),
                        ("user", Some(v)) => user = Some(v),
                        ("temp", None) => temp = true,
                        (_, value) => extra.push(Param {
                            name: p.name,
                            value,
                        }),
                    }
                }
                Ok(ServerReply::Fail {
                    id,
                    reason,
                    user,
                    temp,
                    extra,
                })
            }
            other => Err(ParseError::UnknownCommand(other.chars().take(40).collect())),
        }
    }

    /// The line, with its LF.
    pub fn encode(&self) -> String {
        match self {
            ServerReply::Version(a, b) => format!("VERSION\t{a}\t{b}\n"),
            ServerReply::Mech { name, flags } => {
                let mut out = format!("MECH\t{}", escape(name));
                for fl in flags {
                    out.push('\t');
                    out.push_str(&escape(fl));
                }
                out.push('\n');
                out
            }
            ServerReply::Spid(p) => format!("SPID\t{p}\n"),
            ServerReply::Cuid(p) => format!("CUID\t{p}\n"),
            ServerReply::Cookie(c) => format!("COOKIE\t{}\n", escape(c)),
            ServerReply::Done => "DONE\n".to_string(),
            ServerReply::Cont { id, data } => format!("CONT\t{id}\t{}\n", escape(data)),
            ServerReply::Ok { id, user, extra } => {
                let mut out = format!("OK\t{id}");
                if let Some(u) = user {
                    Param::new("user", u).encode(&mut out);
                }
                for p in extra {
                    p.encode(&mut out);
                }
                out.push('\n');
                out
            }
            ServerReply::Fail {
                id,
                reason,
                user,
                temp,
                extra,
            } => {
                let mut out = format!("FAIL\t{id}");
                if let Some(r) = reason {
                    Param::new("reason", r).encode(&mut out);
                }
                if let Some(u) = user {
                    Param::new("user", u).encode(&mut out);
                }
                if *temp {
                    Param::flag("temp").encode(&mut out);
                }
                for p in extra {
                    p.encode(&mut out);
                }
                out.push('\n');
                out
            }
        }
    }
}

/// fuzz_lines - feeds arbitrary bytes, split at LF, to a server
/// connection and to both line parsers, and checks that whatever parses
/// encodes to a line that parses to the same value. For the fuzzer and
/// tests (feature `fuzzing`); panics only on a round-trip mismatch (a bug).
#[cfg(any(test, feature = "fuzzing"))]
pub fn fuzz_lines(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut conn = ServerConnection::new(&[Mechanism::Plain, Mechanism::Login]);
    for line in text.split('\n') {
        let _ = conn.handle_line(line);
        if let Ok(r) = ClientRequest::parse(line) {
            assert_eq!(
                ClientRequest::parse(&r.encode()).as_ref(),
                Ok(&r),
                "{line:?}"
            );
        }
        if let Ok(r) = ServerReply::parse(line) {
            assert_eq!(ServerReply::parse(&r.encode()).as_ref(), Ok(&r), "{line:?}");
        }
    }
}

/// The server's handshake: VERSION, one MECH per mechanism, SPID, CUID,
/// COOKIE and DONE, as one string of lines.
pub fn server_handshake(mechanisms: &[Mechanism], spid: u32, cuid: u32, cookie: &str) -> String {
    let mut out = ServerReply::Version(VERSION_MAJOR, VERSION_MINOR).encode();
    for m in mechanisms {
        out.push_str(
            &ServerReply::Mech {
                name: m.name().to_string(),
                flags: vec!["plaintext".to_string()],
            }
            .encode(),
        );
    }
    out.push_str(&ServerReply::Spid(spid).encode());
    out.push_str(&ServerReply::Cuid(cuid).encode());
    out.push_str(&ServerReply::Cookie(cookie.to_string()).encode());
    out.push_str(&ServerReply::Done.encode());
    out
}

/// What a request is about, for checks and log lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    /// The request id.
    pub id: u32,
    /// The mechanism.
    pub mechanism: Mechanism,
    /// `service=` (smtp, imap, pop3...).
    pub service: String,
    /// `rip=`, the end client's address, when given.
    pub remote_ip: Option<String>,
    /// `lip=`, when given.
    pub local_ip: Option<String>,
    /// `secured`.
    pub secured: bool,
}

/// What the caller of [`ServerConnection::handle_line`] must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Nothing to do (a handshake line, an ignored command).
    None,
    /// Send this reply now.
    Reply(ServerReply),
    /// The request's credentials are complete: check them and answer with
    /// [`ServerReply::ok`] or [`ServerReply::fail`] for `info.id`.
    Verify {
        /// The request.
        info: RequestInfo,
        /// What the client gave.
        credentials: Credentials,
    },
}

/// A protocol violation: the server logs it and closes the connection, as
/// Dovecot does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The first line was not VERSION.
    NoVersion,
    /// The client speaks another major version.
    VersionMismatch(u32),
    /// A line that does not parse.
    Parse(ParseError),
    /// AUTH with an id already in progress.
    DuplicateId(u32),
    /// A line longer than [`MAX_LINE`].
    LineTooLong,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::NoVersion => f.write_str("handshake did not start with VERSION"),
            ProtocolError::VersionMismatch(v) => {
                write!(f, "protocol version mismatch ({v} vs. {VERSION_MAJOR})")
            }
            ProtocolError::Parse(e) => write!(f, "protocol error: {e}"),
            ProtocolError::DuplicateId(id) => write!(f, "AUTH id {id} already in use"),
            ProtocolError::LineTooLong => write!(f, "line longer than {MAX_LINE} bytes"),
        }
    }
}

impl std::error::Error for ProtocolError {}

#[derive(Debug)]
struct Pending {
    info: RequestInfo,
    exchange: Exchange,
}

/// The server side of one client connection, with no I/O.
#[derive(Debug)]
pub struct ServerConnection {
    mechanisms: Vec<Mechanism>,
    version_seen: bool,
    client_pid: Option<u32>,
    pending: VecDeque<(u32, Pending)>,
}

impl ServerConnection {
    /// A new connection that offers these mechanisms. Send
    /// [`server_handshake`] first.
    pub fn new(mechanisms: &[Mechanism]) -> ServerConnection {
        ServerConnection {
            mechanisms: mechanisms.to_vec(),
            version_seen: false,
            client_pid: None,
            pending: VecDeque::new(),
        }
    }

    /// The client's CPID, once sent.
    pub fn client_pid(&self) -> Option<u32> {
        self.client_pid
    }

    /// Requests in progress (waiting for a CONT).
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Handles one line from the client (without or with its LF).
    ///
    /// # Errors
    /// A [`ProtocolError`]: log it and close the connection.
    pub fn handle_line(&mut self, line: &str) -> Result<Event, ProtocolError> {
        if line.len() > MAX_LINE {
            return Err(ProtocolError::LineTooLong);
        }
        let req = match ClientRequest::parse(line) {
            Ok(r) => r,
            // Unknown commands are ignored once the handshake is done.
            Err(ParseError::UnknownCommand(_)) if self.version_seen => return Ok(Event::None),
            Err(_) if !self.version_seen => return Err(ProtocolError::NoVersion),
            Err(e) => return Err(ProtocolError::Parse(e)),
        };
        match req {
            ClientRequest::Version(major, _) if major != VERSION_MAJOR => {
                Err(ProtocolError::VersionMismatch(major))
            }
            ClientRequest::Version(..) => {
                self.version_seen = true;
                Ok(Event::None)
            }
            _ if !self.version_seen => Err(ProtocolError::NoVersion),
            ClientRequest::Cpid(pid) => {
                self.client_pid = Some(pid);
                Ok(Event::None)
            }
            ClientRequest::Auth(r) => self.auth(r),
            ClientRequest::Cont { id, data } => Ok(self.cont(id, &data)),
        }
    }

    /// auth - starts a request.
    fn auth(&mut self, r: AuthRequest) -> Result<Event, ProtocolError> {
        if self.pending.iter().any(|(id, _)| *id == r.id) {
            return Err(ProtocolError::DuplicateId(r.id));
        }
        let mechanism = Mechanism::from_name(&r.mechanism).filter(|m| self.mechanisms.contains(m));
        let Some(mechanism) = mechanism else {
            return Ok(Event::Reply(ServerReply::fail(
                r.id,
                Some("Unsupported authentication mechanism"),
                None,
                false,
            )));
        };
        let info = RequestInfo {
            id: r.id,
            mechanism,
            service: r.service,
            remote_ip: r.remote_ip,
            local_ip: r.local_ip,
            secured: r.secured,
        };
        let (exchange, step) = Exchange::start(mechanism, r.initial_response.as_deref());
        Ok(self.after_step(info, exchange, step))
    }

    /// cont - feeds a response to a pending request.
    fn cont(&mut self, id: u32, data: &str) -> Event {
        let Some(pos) = self.pending.iter().position(|(i, _)| *i == id) else {
            return Event::Reply(ServerReply::fail(
                id,
                Some("Unknown authentication request"),
                None,
                false,
            ));
        };
        let Some((_, mut p)) = self.pending.remove(pos) else {
            return Event::None;
        };
        let step = p.exchange.step(data);
        self.after_step(p.info, p.exchange, step)
    }

    fn after_step(&mut self, info: RequestInfo, exchange: Exchange, step: sasl::Step) -> Event {
        match step {
            sasl::Step::Challenge(c) => {
                let id = info.id;
                if self.pending.len() >= MAX_PENDING {
                    self.pending.pop_front();
                }
                self.pending.push_back((id, Pending { info, exchange }));
                Event::Reply(ServerReply::Cont { id, data: c })
            }
            sasl::Step::Done(credentials) => Event::Verify { info, credentials },
            sasl::Step::Failed(e) => Event::Reply(ServerReply::fail(
                info.id,
                Some(&capitalize(&e.to_string())),
                None,
                false,
            )),
        }
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Reads one LF-terminated line of at most [`MAX_LINE`] bytes; `Ok(None)` at
/// end of file.
///
/// # Errors
/// Read errors, a line that is too long or not UTF-8 (`InvalidData`).
pub fn read_line<R: BufRead>(r: &mut R) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let limit = u64::try_from(MAX_LINE)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let n = r.by_ref().take(limit).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > MAX_LINE {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
    } else {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed mid-line",
        ));
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "line is not UTF-8"))
}

/// The end client an authentication is for (sent as AUTH parameters).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientInfo {
    /// `service=`: smtp, imap, pop3.
    pub service: String,
    /// `rip=`: the end client's address.
    pub remote_ip: String,
    /// `lip=`: our address on that connection.
    pub local_ip: String,
    /// `secured`: the connection is TLS-protected.
    pub secured: bool,
}

/// The outcome of one step of [`Client::begin`] / [`Client::respond`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this base64 challenge (`334 <challenge>`) and call
    /// [`Client::respond`] with the answer.
    Continue(String),
    /// Authenticated as this user.
    Ok(String),
    /// Not authenticated, with the server's reason (printable, capped).
    /// [`Client::last_failure_temporary`] tells a temporary failure apart.
    Fail(String),
}

/// A blocking client of the protocol: connected, handshake done,
/// mechanisms known. One exchange at a time.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    mechanisms: Vec<String>,
    next_id: u32,
    current: Option<u32>,
    temporary: bool,
}

impl Client {
    /// Connects to the socket at `path` and does the handshake.
    ///
    /// # Errors
    /// Connect or I/O errors; `InvalidData` for a server that is not a
    /// Dovecot auth server of major version 1 or whose handshake lacks DONE;
    /// `TimedOut` after [`CLIENT_TIMEOUT`].
    pub fn connect(path: &Path) -> io::Result<Client> {
        Client::from_stream(UnixStream::connect(path)?)
    }

    /// Does the handshake over an already connected stream.
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub fn from_stream(stream: UnixStream) -> io::Result<Client> {
        stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
        stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
        let mut writer = stream.try_clone()?;
        let hello = format!(
            "{}{}",
            ClientRequest::Version(VERSION_MAJOR, VERSION_MINOR).encode(),
            ClientRequest::Cpid(std::process::id()).encode()
        );
        writer.write_all(hello.as_bytes())?;
        let mut client = Client {
            reader: BufReader::new(stream),
            writer,
            mechanisms: Vec::new(),
            next_id: 1,
            current: None,
            temporary: false,
        };
        client.read_handshake()?;
        Ok(client)
    }

    fn read_handshake(&mut self) -> io::Result<()> {
        let mut version = false;
        // A handshake has a handful of lines; bound it anyway.
        for _ in 0..1000 {
            let Some(line) = read_line(&mut self.reader)? else {
                break;
            };
            match ServerReply::parse(&line) {
                Ok(ServerReply::Version(major, _)) if major != VERSION_MAJOR => {
                    return Err(invalid(format!(
                        "auth server protocol version mismatch ({major} vs. {VERSION_MAJOR})"
                    )));
                }
                Ok(ServerReply::Version(..)) => version = true,
                // Postfix skips mechanisms flagged private.
                Ok(ServerReply::Mech { name, flags })
                    if !flags.iter().any(|f| f.eq_ignore_ascii_case("private")) =>
                {
                    self.mechanisms.push(name);
                }
                Ok(ServerReply::Done) if version => return Ok(()),
                Ok(ServerReply::Done) => return Err(invalid("auth server sent no VERSION".into())),
                _ => {}
            }
        }
        Err(invalid("auth server handshake ended without DONE".into()))
    }

    /// Changes the reply timeout (default [`CLIENT_TIMEOUT`]).
    ///
    /// # Errors
    /// setsockopt failed.
    pub fn set_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.writer.set_read_timeout(Some(timeout))?;
        self.writer.set_write_timeout(Some(timeout))
    }

    /// The mechanisms the server offers (for the EHLO AUTH line).
    pub fn mechanisms(&self) -> &[String] {
        &self.mechanisms
    }

    /// True when the last [`Step::Fail`] was a temporary failure (the server
    /// said `temp`, or the connection failed): SMTP answers 454, not 535.
    pub fn last_failure_temporary(&self) -> bool {
        self.temporary
    }

    /// Starts an exchange: `AUTH id mech service=.. nologin lip=.. rip=..
    /// [secured] [resp=..]`. `initial` is the base64 initial response as the
    /// end client sent it (`=` for an empty one).
    ///
    /// # Errors
    /// I/O errors and timeouts; the connection is unusable afterwards.
    pub fn begin(
        &mut self,
        mechanism: &str,
        initial: Option<&str>,
        info: &ClientInfo,
    ) -> io::Result<Step> {
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        self.current = Some(id);
        self.temporary = false;
        let req = ClientRequest::Auth(AuthRequest {
            id,
            mechanism: mechanism.to_string(),
            service: info.service.clone(),
            local_ip: (!info.local_ip.is_empty()).then(|| info.local_ip.clone()),
            remote_ip: (!info.remote_ip.is_empty()).then(|| info.remote_ip.clone()),
            secured: info.secured,
            nologin: true,
            // RFC 4954's "=" is an empty initial response; Dovecot spells it
            // as an empty resp=.
            initial_response: initial.map(|r| {
                if r == "=" {
                    String::new()
                } else {
                    r.to_string()
                }
            }),
            extra: Vec::new(),
        });
        self.writer.write_all(req.encode().as_bytes())?;
        self.reply(id)
    }

    /// Sends the end client's response to the last challenge: `CONT id data`.
    ///
    /// # Errors
    /// `InvalidInput` when no exchange is in progress; I/O errors.
    pub fn respond(&mut self, response: &str) -> io::Result<Step> {
        let Some(id) = self.current else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no authentication in progress",
            ));
        };
        let req = ClientRequest::Cont {
            id,
            data: response.to_string(),
        };
        self.writer.write_all(req.encode().as_bytes())?;
        self.reply(id)
    }

    /// reply - reads until the reply for `id`, skipping replies for others.
    fn reply(&mut self, id: u32) -> io::Result<Step> {
        loop {
            let Some(line) = read_line(&mut self.reader)? else {
                self.current = None;
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection lost to authentication server",
                ));
            };
            let Ok(reply) = ServerReply::parse(&line) else {
                continue;
            };
            if reply.id() != Some(id) {
                continue;
            }
            return Ok(match reply {
                ServerReply::Cont { data, .. } => Step::Continue(data),
                ServerReply::Ok { user, .. } => {
                    self.current = None;
                    Step::Ok(user.unwrap_or_default())
                }
                ServerReply::Fail { reason, temp, .. } => {
                    self.current = None;
                    self.temporary = temp;
                    Step::Fail(printable(
                        reason.as_deref().unwrap_or("Authentication failed"),
                    ))
                }
                _ => continue,
            });
        }
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    const BOTH: &[Mechanism] = &[Mechanism::Plain, Mechanism::Login];

    fn b64(s: &[u8]) -> String {
        STANDARD.encode(s)
    }

    fn started() -> ServerConnection {
        let mut c = ServerConnection::new(BOTH);
        // What Postfix 3.x sends first (xsasl_dovecot_server_connect).
        assert_eq!(c.handle_line("VERSION\t1\t0\n"), Ok(Event::None));
        assert_eq!(c.handle_line("CPID\t4242\n"), Ok(Event::None));
        assert_eq!(c.client_pid(), Some(4242));
        c
    }

    fn verify(ev: Result<Event, ProtocolError>) -> (RequestInfo, Credentials) {
        match ev {
            Ok(Event::Verify { info, credentials }) => (info, credentials),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn escaping_round_trips() {
        let s = "a\tb\nc\rd\u{1}e\0f\\g";
        let e = escape(s);
        assert!(!e.contains(['\t', '\n', '\r', '\0']));
        assert_eq!(e, "a\u{1}tb\u{1}nc\u{1}rd\u{1}1e\u{1}0f\\g");
        assert_eq!(unescape(&e), s);
        assert_eq!(unescape("x\u{1}ly\u{1}zq\u{1}"), "x\nyzq");
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn handshake_as_postfix_reads_it() {
        let hs = server_handshake(BOTH, 77, 3, "0123456789abcdef0123456789abcdef");
        assert_eq!(
            hs,
            "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\nSPID\t77\nCUID\t3\n\
             COOKIE\t0123456789abcdef0123456789abcdef\nDONE\n"
        );
        let parsed: Vec<ServerReply> = hs.lines().map(|l| ServerReply::parse(l).unwrap()).collect();
        assert_eq!(parsed.last(), Some(&ServerReply::Done));
        assert_eq!(
            parsed.get(1),
            Some(&ServerReply::Mech {
                name: "PLAIN".into(),
                flags: vec!["plaintext".into()]
            })
        );
    }

    #[test]
    fn postfix_plain_with_initial_response() {
        let mut c = started();
        // Byte for byte what xsasl_dovecot_server_first writes for
        // "AUTH PLAIN AHVzZXJAZXhhbXBsZS5jb20Ac2VjcmV0" over TLS.
        let line = "AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=192.0.2.25\trip=198.51.100.7\tsecured\tresp=AHVzZXJAZXhhbXBsZS5jb20Ac2VjcmV0\n";
        let (info, creds) = verify(c.handle_line(line));
        assert_eq!(info.id, 1);
        assert_eq!(info.mechanism, Mechanism::Plain);
        assert_eq!(info.service, "smtp");
        assert_eq!(info.remote_ip.as_deref(), Some("198.51.100.7"));
        assert_eq!(info.local_ip.as_deref(), Some("192.0.2.25"));
        assert!(info.secured);
        assert_eq!(creds.authcid, "user@example.com");
        assert_eq!(creds.password, "secret");
        assert_eq!(c.pending(), 0);
        assert_eq!(
            ServerReply::ok(1, "user@example.com").encode(),
            "OK\t1\tuser=user@example.com\n"
        );
        assert_eq!(
            ServerReply::fail(
                1,
                Some("Authentication failed"),
                Some("user@example.com"),
                false
            )
            .encode(),
            "FAIL\t1\treason=Authentication failed\tuser=user@example.com\n"
        );
        assert_eq!(
            ServerReply::fail(2, None, None, true).encode(),
            "FAIL\t2\ttemp\n"
        );
    }

    #[test]
    fn postfix_plain_without_initial_response_gets_empty_cont() {
        let mut c = started();
        let ev =
            c.handle_line("AUTH\t7\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=127.0.0.1");
        assert_eq!(
            ev,
            Ok(Event::Reply(ServerReply::Cont {
                id: 7,
                data: String::new()
            }))
        );
        // An empty CONT encodes as "CONT\t7\t", which Postfix turns into "334 ".
        assert_eq!(
            ServerReply::Cont {
                id: 7,
                data: String::new()
            }
            .encode(),
            "CONT\t7\t\n"
        );
        let (info, creds) = verify(c.handle_line(&format!("CONT\t7\t{}", b64(b"\0bob\0pw"))));
        assert_eq!((info.id, info.secured), (7, false));
        assert_eq!(creds.authcid, "bob");
    }

    #[test]
    fn interleaved_login_and_plain() {
        let mut c = started();
        let cont = |id, data: &str| {
            Ok(Event::Reply(ServerReply::Cont {
                id,
                data: data.into(),
            }))
        };
        assert_eq!(
            c.handle_line("AUTH\t1\tLOGIN\tservice=smtp\tnologin"),
            cont(1, "VXNlcm5hbWU6")
        );
        assert_eq!(c.handle_line("AUTH\t2\tplain\tservice=imap"), cont(2, ""));
        assert_eq!(c.pending(), 2);
        assert_eq!(
            c.handle_line(&format!("CONT\t1\t{}", b64(b"alice"))),
            cont(1, "UGFzc3dvcmQ6")
        );
        let (i2, c2) = verify(c.handle_line(&format!("CONT\t2\t{}", b64(b"\0carol\0pw2"))));
        assert_eq!(
            (i2.id, i2.service.as_str(), c2.authcid.as_str()),
            (2, "imap", "carol")
        );
        let (i1, c1) = verify(c.handle_line(&format!("CONT\t1\t{}", b64(b"pw1"))));
        assert_eq!(
            (
                i1.id,
                i1.mechanism,
                c1.authcid.as_str(),
                c1.password.as_str()
            ),
            (1, Mechanism::Login, "alice", "pw1")
        );
        assert_eq!(c.pending(), 0);
        // The id is free again.
        assert!(matches!(
            c.handle_line("AUTH\t1\tLOGIN\tservice=smtp"),
            Ok(Event::Reply(_))
        ));
    }

    #[test]
    fn failures_and_protocol_errors() {
        let mut c = started();
        let fail = |ev: Result<Event, ProtocolError>| match ev {
            Ok(Event::Reply(ServerReply::Fail {
                id,
                reason,
                temp: false,
                ..
            })) => (id, reason.unwrap_or_default()),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            fail(c.handle_line("AUTH\t3\tCRAM-MD5\tservice=smtp")).1,
            "Unsupported authentication mechanism"
        );
        assert_eq!(
            fail(c.handle_line("CONT\t99\tAAAA")).1,
            "Unknown authentication request"
        );
        assert_eq!(
            fail(c.handle_line("AUTH\t4\tPLAIN\tresp=!!!")).1,
            "Invalid base64 data"
        );
        c.handle_line("AUTH\t5\tLOGIN").unwrap();
        assert_eq!(
            fail(c.handle_line("CONT\t5\t*")),
            (5, "Authentication cancelled".into())
        );
        c.handle_line("AUTH\t6\tLOGIN").unwrap();
        assert_eq!(
            c.handle_line("AUTH\t6\tLOGIN"),
            Err(ProtocolError::DuplicateId(6))
        );
        // Unknown commands and parameters are ignored.
        assert_eq!(c.handle_line("SOMETHING\tnew"), Ok(Event::None));
        assert!(matches!(
            c.handle_line("AUTH\t8\tPLAIN\tfuture-flag\tx=y\tsession=abc"),
            Ok(Event::Reply(ServerReply::Cont { id: 8, .. }))
        ));
        assert!(matches!(
            c.handle_line("AUTH\tx\tPLAIN"),
            Err(ProtocolError::Parse(_))
        ));
        assert!(matches!(
            c.handle_line("AUTH\t9"),
            Err(ProtocolError::Parse(_))
        ));
        assert_eq!(
            c.handle_line(&"A".repeat(MAX_LINE + 1)),
            Err(ProtocolError::LineTooLong)
        );

        let mut c = ServerConnection::new(BOTH);
        assert_eq!(
            c.handle_line("AUTH\t1\tPLAIN"),
            Err(ProtocolError::NoVersion)
        );
        assert_eq!(c.handle_line("HELLO"), Err(ProtocolError::NoVersion));
        assert_eq!(
            c.handle_line("VERSION\t2\t0"),
            Err(ProtocolError::VersionMismatch(2))
        );
        // A mechanism not offered on this server is refused like an unknown one.
        let mut c = ServerConnection::new(&[Mechanism::Plain]);
        c.handle_line("VERSION\t1\t1").unwrap();
        assert!(matches!(
            c.handle_line("AUTH\t1\tLOGIN"),
            Ok(Event::Reply(ServerReply::Fail { .. }))
        ));
    }

    #[test]
    fn abandoned_requests_are_bounded() {
        let mut c = started();
        for id in 0..(MAX_PENDING as u32 + 10) {
            c.handle_line(&format!("AUTH\t{id}\tLOGIN\tservice=smtp"))
                .unwrap();
            assert!(c.pending() <= MAX_PENDING);
        }
        // The oldest were dropped; the newest still works.
        assert!(matches!(
            c.handle_line(&format!("CONT\t0\t{}", b64(b"u"))),
            Ok(Event::Reply(ServerReply::Fail { .. }))
        ));
        let last = MAX_PENDING as u32 + 9;
        assert!(matches!(
            c.handle_line(&format!("CONT\t{last}\t{}", b64(b"u"))),
            Ok(Event::Reply(ServerReply::Cont { .. }))
        ));
    }

    #[test]
    fn lines_round_trip() {
        let reqs = [
            ClientRequest::Version(1, 2),
            ClientRequest::Cpid(9),
            ClientRequest::Cont {
                id: 3,
                data: "AAAA".into(),
            },
            ClientRequest::Auth(AuthRequest {
                id: 12,
                mechanism: "PLAIN".into(),
                service: "smtp".into(),
                local_ip: Some("::1".into()),
                remote_ip: Some("2001:db8::7".into()),
                secured: true,
                nologin: true,
                initial_response: Some(String::new()),
                extra: vec![Param::new("session", "a\tb"), Param::flag("no-penalty")],
            }),
        ];
        for r in reqs {
            assert_eq!(
                ClientRequest::parse(&r.encode()),
                Ok(r.clone()),
                "{:?}",
                r.encode()
            );
        }
        let replies = [
            ServerReply::Version(1, 2),
            ServerReply::Mech {
                name: "LOGIN".into(),
                flags: vec!["plaintext".into(), "dictionary".into()],
            },
            ServerReply::Spid(1),
            ServerReply::Cuid(2),
            ServerReply::Cookie("abc".into()),
            ServerReply::Done,
            ServerReply::Cont {
                id: 1,
                data: String::new(),
            },
            ServerReply::ok(1, "we\tird"),
            ServerReply::Fail {
                id: 4,
                reason: Some("Password\nexpired".into()),
                user: Some("u".into()),
                temp: true,
                extra: vec![Param::new("code", "temp_fail")],
            },
        ];
        for r in replies {
            assert_eq!(
                ServerReply::parse(&r.encode()),
                Ok(r.clone()),
                "{:?}",
                r.encode()
            );
        }
        // A lone escape character is an empty field, dropped both times.
        fuzz_lines(b"OK\t9\t\x01\tMi\t\x01\t\x01!\nAUTH\t1\tPLAIN\t\x01\tservice=\n");
        for seed in ["postfix-session", "server-replies"] {
            let path = format!(
                "{}/../../fuzz/corpus/dovecot_auth/{seed}",
                env!("CARGO_MANIFEST_DIR")
            );
            fuzz_lines(&std::fs::read(path).unwrap());
        }
        assert_eq!(ClientRequest::parse(""), Err(ParseError::Empty));
        assert!(matches!(
            ServerReply::parse("WHAT\t1"),
            Err(ParseError::UnknownCommand(_))
        ));
        let many = format!("AUTH\t1\tPLAIN{}", "\tx".repeat(MAX_PARAMS + 1));
        assert_eq!(ClientRequest::parse(&many), Err(ParseError::TooManyParams));
    }

    #[test]
    fn read_line_limits() {
        let mut r = io::Cursor::new(b"one\ntwo".to_vec());
        assert_eq!(read_line(&mut r).unwrap().as_deref(), Some("one"));
        assert_eq!(
            read_line(&mut r).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        let mut r = io::Cursor::new(Vec::<u8>::new());
        assert_eq!(read_line(&mut r).unwrap(), None);
        let mut long = vec![b'a'; MAX_LINE + 5];
        long.push(b'\n');
        let mut r = io::Cursor::new(long);
        assert_eq!(
            read_line(&mut r).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        let mut exact = vec![b'a'; MAX_LINE];
        exact.push(b'\n');
        let mut r = io::Cursor::new(exact);
        assert_eq!(read_line(&mut r).unwrap().map(|s| s.len()), Some(MAX_LINE));
    }

    /// A tiny server over one socket: our state machine, password "pw" for
    /// everyone except user "down", which is a temporary failure.
    fn serve(
        stream: UnixStream,
        handshake: Option<&'static str>,
    ) -> std::thread::JoinHandle<Vec<String>> {
        std::thread::spawn(move || {
            let mut w = stream.try_clone().unwrap();
            let hs = handshake
                .map(str::to_string)
                .unwrap_or_else(|| server_handshake(BOTH, 1, 1, "00"));
            w.write_all(hs.as_bytes()).unwrap();
            let mut r = BufReader::new(stream);
            let mut conn = ServerConnection::new(BOTH);
            let mut seen = Vec::new();
            while let Ok(Some(line)) = read_line(&mut r) {
                seen.push(line.clone());
                let reply = match conn.handle_line(&line) {
                    Ok(Event::None) => continue,
                    Ok(Event::Reply(r)) => r,
                    Ok(Event::Verify { info, credentials }) => {
                        if credentials.authcid == "down" {
                            ServerReply::fail(
                                info.id,
                                Some("Temporary authentication failure"),
                                None,
                                true,
                            )
                        } else if credentials.password == "pw" {
                            ServerReply::ok(info.id, &credentials.authcid)
                        } else {
                            ServerReply::fail(
                                info.id,
                                Some("Authentication failed"),
                                Some(&credentials.authcid),
                                false,
                            )
                        }
                    }
                    Err(_) => break,
                };
                w.write_all(reply.encode().as_bytes()).unwrap();
            }
            seen
        })
    }

    #[test]
    fn client_against_server() {
        let (a, b) = UnixStream::pair().unwrap();
        let server = serve(b, None);
        let mut c = Client::from_stream(a).unwrap();
        assert_eq!(c.mechanisms(), ["PLAIN", "LOGIN"]);
        let info = ClientInfo {
            service: "smtp".into(),
            remote_ip: "192.0.2.9".into(),
            local_ip: "192.0.2.1".into(),
            secured: true,
        };
        assert_eq!(
            c.begin("PLAIN", Some(&b64(b"\0alice\0pw")), &info).unwrap(),
            Step::Ok("alice".into())
        );
        assert_eq!(
            c.begin("PLAIN", Some(&b64(b"\0alice\0wrong")), &info)
                .unwrap(),
            Step::Fail("Authentication failed".into())
        );
        assert!(!c.last_failure_temporary());
        assert_eq!(
            c.respond("AAAA").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            c.begin("LOGIN", None, &info).unwrap(),
            Step::Continue("VXNlcm5hbWU6".into())
        );
        assert_eq!(
            c.respond(&b64(b"bob")).unwrap(),
            Step::Continue("UGFzc3dvcmQ6".into())
        );
        assert_eq!(c.respond(&b64(b"pw")).unwrap(), Step::Ok("bob".into()));
        assert_eq!(
            c.begin("PLAIN", None, &info).unwrap(),
            Step::Continue(String::new())
        );
        assert_eq!(
            c.respond(&b64(b"\0down\0pw")).unwrap(),
            Step::Fail("Temporary authentication failure".into())
        );
        assert!(c.last_failure_temporary());
        assert_eq!(
            c.begin("PLAIN", Some("="), &info).unwrap(),
            Step::Fail("Malformed authentication data".into())
        );
        assert_eq!(
            c.begin("GSSAPI", None, &info).unwrap(),
            Step::Fail("Unsupported authentication mechanism".into())
        );
        drop(c);
        let seen = server.join().unwrap();
        assert_eq!(seen.first().map(String::as_str), Some("VERSION\t1\t2"));
        assert!(seen.get(1).is_some_and(|l| l.starts_with("CPID\t")));
        assert_eq!(
            seen.get(2).map(String::as_str),
            Some(
                "AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=192.0.2.1\trip=192.0.2.9\tsecured\tresp=AGFsaWNlAHB3"
            )
        );
        assert!(seen.iter().any(|l| l.ends_with("\tresp=")), "{seen:?}");
    }

    #[test]
    fn client_handshake_checks() {
        let (a, mut b) = UnixStream::pair().unwrap();
        b.write_all(b"VERSION\t1\t1\nMECH\tPLAIN\tplaintext\nMECH\tSECRET\tprivate\nDONE\n")
            .unwrap();
        let c = Client::from_stream(a).unwrap();
        assert_eq!(c.mechanisms(), ["PLAIN"]);

        let (a, mut b) = UnixStream::pair().unwrap();
        b.write_all(b"VERSION\t2\t0\nDONE\n").unwrap();
        assert_eq!(
            Client::from_stream(a).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );

        let (a, mut b) = UnixStream::pair().unwrap();
        b.write_all(b"VERSION\t1\t2\nMECH\tPLAIN\n").unwrap();
        b.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(
            Client::from_stream(a).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn client_connects_by_path_and_sees_lost_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth");
        let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.write_all(server_handshake(BOTH, 1, 1, "00").as_bytes())
                .unwrap();
            let mut r = BufReader::new(s);
            // VERSION, CPID, AUTH; then hang up without answering.
            for _ in 0..3 {
                read_line(&mut r).unwrap();
            }
        });
        let mut c = Client::connect(&path).unwrap();
        let e = c
            .begin("PLAIN", Some("AGEAYg=="), &ClientInfo::default())
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        t.join().unwrap();
    }

    proptest::proptest! {
        #[test]
        fn server_never_panics(lines in proptest::collection::vec("[A-Z]{0,6}(\t[ -~\u{1}]{0,30}){0,5}", 0..12)) {
            let mut c = started();
            for l in &lines {
                let _ = c.handle_line(l);
            }
            let _ = ServerReply::parse(lines.first().map(String::as_str).unwrap_or(""));
        }

        #[test]
        fn lines_round_trip_whatever_parses(lines in proptest::collection::vec(
            "(VERSION|CPID|AUTH|CONT|MECH|OK|FAIL|DONE|SPID)(\t[0-9]{1,3})?(\t[ -~\u{1}\r]{0,12}){0,6}", 1..6)) {
            fuzz_lines(lines.join("\n").as_bytes());
        }

        #[test]
        fn escape_round_trip(s in "[\t\n\r\u{1}\0a-z=]{0,40}") {
            let e = escape(&s);
            proptest::prop_assert!(!e.contains(['\t', '\n', '\r', '\0']));
            proptest::prop_assert_eq!(unescape(&e), s);
        }
    }
}
