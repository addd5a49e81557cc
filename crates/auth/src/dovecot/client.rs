//! The client's side: [`Client`], blocking, one exchange at a time, for
//! smtpd (and later pop3d and imapd) against our `auth` service or Dovecot.

use std::io::{self, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::line::{
    AuthRequest, ClientRequest, ServerReply, VERSION_MAJOR, VERSION_MINOR, printable, read_line,
};

/// How long [`Client`] waits for a reply by default. Longer than the
/// largest failure delay of our own `auth` daemon.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

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
    private: Vec<String>,
    cookie: Option<String>,
    login: bool,
    next_id: u32,
    last_id: Option<u32>,
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
            private: Vec::new(),
            cookie: None,
            login: false,
            next_id: 1,
            last_id: None,
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
                Ok(ServerReply::Mech { name, .. }) => self.private.push(name),
                Ok(ServerReply::Cookie(c)) => self.cookie = Some(c),
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

    /// True when the server offers `name`, private mechanisms (Dovecot's
    /// APOP) included.
    pub fn offers(&self, name: &str) -> bool {
        self.mechanisms
            .iter()
            .chain(&self.private)
            .any(|m| m.eq_ignore_ascii_case(name))
    }

    /// The COOKIE of this connection, for the master's REQUEST.
    pub fn cookie(&self) -> Option<&str> {
        self.cookie.as_deref()
    }

    /// Makes the next exchanges logins (no `nologin` flag): the server
    /// keeps a successful result for one master REQUEST naming
    /// [`Client::last_request_id`] and [`Client::cookie`]. Default: off.
    pub fn set_login(&mut self, login: bool) {
        self.login = login;
    }

    /// The id of the last AUTH request sent.
    pub fn last_request_id(&self) -> Option<u32> {
        self.last_id
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
        self.last_id = Some(id);
        self.temporary = false;
        let req = ClientRequest::Auth(AuthRequest {
            id,
            mechanism: mechanism.to_string(),
            service: info.service.clone(),
            local_ip: (!info.local_ip.is_empty()).then(|| info.local_ip.clone()),
            remote_ip: (!info.remote_ip.is_empty()).then(|| info.remote_ip.clone()),
            secured: info.secured,
            nologin: !self.login,
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
    use crate::dovecot::{Event, ServerConnection, server_handshake};
    use crate::sasl::Mechanism;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    const BOTH: &[Mechanism] = &[Mechanism::Plain, Mechanism::Login];

    fn b64(s: &[u8]) -> String {
        STANDARD.encode(s)
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
                    Ok(Event::None | Event::MasterRequest { .. }) => continue,
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
}
