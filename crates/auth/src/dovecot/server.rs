//! The server's side: the handshake it sends and [`ServerConnection`], the
//! per-connection state machine, with no I/O.

use std::collections::VecDeque;
use std::fmt;

use super::line::{
    AuthRequest, ClientRequest, MAX_LINE, ParseError, ServerReply, VERSION_MAJOR, VERSION_MINOR,
};
use crate::sasl::{self, Credentials, Exchange, Mechanism};

/// Most requests one connection may have in progress; the oldest one is
/// dropped when a new one would exceed this (a client may abandon an
/// exchange without telling us, as Postfix does on `*`).
pub const MAX_PENDING: usize = 64;

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
        // Dovecot's APOP: private (clients list it only when asked by
        // name), dictionary and active; no password crosses the wire.
        let flags: &[&str] = if m.private() {
            &["private", "dictionary", "active"]
        } else {
            &["plaintext"]
        };
        out.push_str(
            &ServerReply::Mech {
                name: m.name().to_string(),
                flags: flags.iter().map(|f| f.to_string()).collect(),
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
    /// `nologin`: only a check. Without it a login session follows, and
    /// the server keeps the result for the master's REQUEST.
    pub nologin: bool,
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
    /// A master's `REQUEST`: answer [`ServerReply::User`] when the
    /// connection with this cookie, whose client has this pid, finished
    /// request `auth_id` with OK (a login, not `nologin`), and forget it;
    /// else [`ServerReply::NotFound`]. Only privileged peers may ask.
    MasterRequest {
        /// The REQUEST's id.
        id: u32,
        /// The login process's pid.
        client_pid: u32,
        /// The login's AUTH id.
        auth_id: u32,
        /// The cookie of the login's connection.
        cookie: String,
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
            ClientRequest::Request {
                id,
                client_pid,
                auth_id,
                cookie,
            } => Ok(Event::MasterRequest {
                id,
                client_pid,
                auth_id,
                cookie,
            }),
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
            nologin: r.nologin,
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

    proptest::proptest! {
        #[test]
        fn server_never_panics(lines in proptest::collection::vec("[A-Z]{0,6}(\t[ -~\u{1}]{0,30}){0,5}", 0..12)) {
            let mut c = started();
            for l in &lines {
                let _ = c.handle_line(l);
            }
            let _ = ServerReply::parse(lines.first().map(String::as_str).unwrap_or(""));
        }

    }
}
