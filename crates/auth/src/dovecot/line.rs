//! Single lines of the protocol, for either side: tab-escaping, parsing and
//! encoding of [`ClientRequest`] and [`ServerReply`], and [`read_line`].

use std::fmt;
use std::io::{self, BufRead, Read};

/// Protocol major version we speak; a peer with another major is refused.
pub const VERSION_MAJOR: u32 = 1;
/// Protocol minor version we announce.
pub const VERSION_MINOR: u32 = 2;
/// Longest line accepted, without the LF (Dovecot's own limit).
pub const MAX_LINE: usize = 16384;
/// Most parameters accepted on one line.
pub const MAX_PARAMS: usize = 64;

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

/// printable - client text made safe and short (100 characters) for a
/// log line: maillog's printable with Postfix's usual cut.
pub fn printable(s: &str) -> String {
    maillog::printable(s, 100)
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
    /// `REQUEST <id> <client_pid> <client_auth_id> <cookie>`: the master
    /// (privileged) side asks who a login process's finished request
    /// authenticated (Dovecot's auth-master protocol). Answered by
    /// [`ServerReply::User`] or [`ServerReply::NotFound`].
    Request {
        /// This request's id.
        id: u32,
        /// The login process's pid (its CPID).
        client_pid: u32,
        /// The id of the login process's AUTH request that ended in OK.
        auth_id: u32,
        /// The COOKIE the server gave that login connection.
        cookie: String,
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
            "REQUEST" => Ok(ClientRequest::Request {
                id: number("REQUEST", f.get(1), "id")?,
                client_pid: number("REQUEST", f.get(2), "client pid")?,
                auth_id: number("REQUEST", f.get(3), "client auth id")?,
                cookie: text("REQUEST", f.get(4), "cookie")?,
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
            ClientRequest::Request {
                id,
                client_pid,
                auth_id,
                cookie,
            } => format!(
                "REQUEST\t{id}\t{client_pid}\t{auth_id}\t{}\n",
                escape(cookie)
            ),
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
    /// `USER <id> <user> [params]`: the answer to a master
    /// [`ClientRequest::Request`]: that login authenticated this user.
    User {
        /// The REQUEST's id.
        id: u32,
        /// The user name.
        user: String,
        /// Other parameters.
        extra: Vec<Param>,
    },
    /// `NOTFOUND <id>`: no such finished login (never authenticated,
    /// already asked for, expired, or the cookie or pid do not match).
    NotFound(u32),
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
            | ServerReply::Fail { id, .. }
            | ServerReply::User { id, .. }
            | ServerReply::NotFound(id) => Some(*id),
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
            "USER" => Ok(ServerReply::User {
                id: number("USER", f.get(1), "id")?,
                user: text("USER", f.get(2), "user")?,
                extra: params(rest(3)),
            }),
            "NOTFOUND" => Ok(ServerReply::NotFound(number("NOTFOUND", f.get(1), "id")?)),
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
            ServerReply::User { id, user, extra } => {
                let mut out = format!("USER\t{id}\t{}", escape(user));
                for p in extra {
                    p.encode(&mut out);
                }
                out.push('\n');
                out
            }
            ServerReply::NotFound(id) => format!("NOTFOUND\t{id}\n"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dovecot::fuzz_lines;

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

    proptest::proptest! {
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
