//! SASL mechanisms PLAIN (RFC 4616) and LOGIN as pure state machines, and
//! APOP (RFC 1939) as Dovecot carries it over SASL: one initial response,
//! `challenge NUL user NUL digest` with the 16-byte MD5 digest in binary.
//!
//! The server side of an exchange: [`Exchange::start`] takes the mechanism
//! and the optional initial response from the AUTH command, and each
//! [`Exchange::step`] takes one client response line. Both return a
//! [`Step`]: a base64 challenge to send (`334 <challenge>` in SMTP, `+ ` in
//! IMAP), the decoded credentials to check, or a failure. Responses are
//! base64 as sent on the wire; `*` cancels (RFC 4954); an initial response
//! of `=` means an empty one. Every response is bounded by
//! [`MAX_RESPONSE`] bytes before decoding, every field by [`MAX_FIELD`].

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Longest base64 client response accepted.
pub const MAX_RESPONSE: usize = 4096;
/// Longest decoded user name, authorization id or password.
pub const MAX_FIELD: usize = 1024;

/// The LOGIN mechanism's prompts, base64 of "Username:" and "Password:".
pub const LOGIN_USERNAME_PROMPT: &str = "VXNlcm5hbWU6";
/// See [`LOGIN_USERNAME_PROMPT`].
pub const LOGIN_PASSWORD_PROMPT: &str = "UGFzc3dvcmQ6";

/// A SASL mechanism we offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 4616.
    Plain,
    /// The de facto LOGIN mechanism (draft-murchison-sasl-login).
    Login,
    /// POP3's APOP as a SASL mechanism (Dovecot's `APOP`, a private one:
    /// never offered to SMTP or IMAP clients).
    Apop,
}

impl Mechanism {
    /// Parses a mechanism name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        if name.eq_ignore_ascii_case("PLAIN") {
            Some(Mechanism::Plain)
        } else if name.eq_ignore_ascii_case("LOGIN") {
            Some(Mechanism::Login)
        } else if name.eq_ignore_ascii_case("APOP") {
            Some(Mechanism::Apop)
        } else {
            None
        }
    }

    /// The name as advertised in EHLO / CAPABILITY.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::Apop => "APOP",
        }
    }

    /// True for mechanisms announced with Dovecot's `private` flag: only
    /// clients that ask for them by name (pop3d) use them.
    pub fn private(self) -> bool {
        self == Mechanism::Apop
    }
}

/// APOP's proof: the greeting's timestamp and the MD5 digest of the
/// timestamp followed by the password.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ApopProof {
    /// The timestamp, `<...>`, as the greeting showed it.
    pub challenge: String,
    /// MD5(challenge + password).
    pub digest: [u8; 16],
}

/// What the client claims; check `authcid` and `password` against a PassDb.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Authorization identity (PLAIN only); `None` when empty.
    pub authzid: Option<String>,
    /// Authentication identity: the login name.
    pub authcid: String,
    /// The password (empty for APOP).
    pub password: String,
    /// APOP's digest instead of a password.
    pub apop: Option<ApopProof>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("authzid", &self.authzid)
            .field("authcid", &self.authcid)
            .field("password", &"<hidden>")
            .field("apop", &self.apop)
            .finish()
    }
}

impl Credentials {
    /// True when no authorization identity was asked for, or it is the login
    /// itself: we do not let one user act as another.
    pub fn authzid_ok(&self) -> bool {
        self.authzid.as_deref().is_none_or(|z| z == self.authcid)
    }
}

/// Why an exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslError {
    /// The client sent `*` (SMTP 501 5.7.0).
    Cancelled,
    /// Not valid base64.
    BadBase64,
    /// Decoded, but not in the mechanism's format (missing NULs, not UTF-8...).
    Malformed,
    /// A response or field longer than the limits.
    TooLong,
    /// A step after the exchange had finished.
    Finished,
}

impl fmt::Display for SaslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SaslError::Cancelled => "authentication cancelled",
            SaslError::BadBase64 => "invalid base64 data",
            SaslError::Malformed => "malformed authentication data",
            SaslError::TooLong => "authentication data too long",
            SaslError::Finished => "authentication exchange already finished",
        })
    }
}

impl std::error::Error for SaslError {}

/// The next thing to do in an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this base64 challenge and wait for a response.
    Challenge(String),
    /// The client has given its credentials.
    Done(Credentials),
    /// The exchange failed.
    Failed(SaslError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    ApopWaiting,
    PlainWaiting,
    LoginUser,
    LoginPassword(String),
    Finished,
}

/// One server-side SASL exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    state: State,
}

impl Exchange {
    /// Starts an exchange. `initial` is the initial response from the AUTH
    /// command line, if any (`=` for an empty one).
    pub fn start(mechanism: Mechanism, initial: Option<&str>) -> (Exchange, Step) {
        let mut ex = Exchange {
            state: match mechanism {
                Mechanism::Plain => State::PlainWaiting,
                Mechanism::Login => State::LoginUser,
                Mechanism::Apop => State::ApopWaiting,
            },
        };
        let step = match initial {
            Some(resp) => ex.step(resp),
            None => match mechanism {
                // Only with an initial response (Dovecot refuses it too).
                Mechanism::Apop => {
                    ex.state = State::Finished;
                    Step::Failed(SaslError::Malformed)
                }
                Mechanism::Plain => Step::Challenge(String::new()),
                Mechanism::Login => Step::Challenge(LOGIN_USERNAME_PROMPT.to_string()),
            },
        };
        (ex, step)
    }

    /// Feeds one client response (base64, without CRLF).
    pub fn step(&mut self, response: &str) -> Step {
        let state = std::mem::replace(&mut self.state, State::Finished);
        if state == State::Finished {
            return Step::Failed(SaslError::Finished);
        }
        let decoded = match decode(response) {
            Ok(d) => d,
            Err(e) => return Step::Failed(e),
        };
        match state {
            State::ApopWaiting => match parse_apop(&decoded) {
                Ok(c) => Step::Done(c),
                Err(e) => Step::Failed(e),
            },
            State::PlainWaiting => match parse_plain(&decoded) {
                Ok(c) => Step::Done(c),
                Err(e) => Step::Failed(e),
            },
            State::LoginUser => match field(decoded) {
                Ok(user) => {
                    self.state = State::LoginPassword(user);
                    Step::Challenge(LOGIN_PASSWORD_PROMPT.to_string())
                }
                Err(e) => Step::Failed(e),
            },
            State::LoginPassword(user) => match field(decoded) {
                Ok(password) => Step::Done(Credentials {
                    authzid: None,
                    authcid: user,
                    password,
                    apop: None,
                }),
                Err(e) => Step::Failed(e),
            },
            State::Finished => Step::Failed(SaslError::Finished),
        }
    }
}

/// decode - checks the limits and decodes one base64 response.
fn decode(response: &str) -> Result<Vec<u8>, SaslError> {
    let response = response.trim_end_matches(['\r', '\n']);
    if response == "*" {
        return Err(SaslError::Cancelled);
    }
    if response.len() > MAX_RESPONSE {
        return Err(SaslError::TooLong);
    }
    if response == "=" {
        return Ok(Vec::new());
    }
    STANDARD.decode(response).map_err(|_| SaslError::BadBase64)
}

fn field(bytes: Vec<u8>) -> Result<String, SaslError> {
    if bytes.len() > MAX_FIELD {
        return Err(SaslError::TooLong);
    }
    if bytes.contains(&0) {
        return Err(SaslError::Malformed);
    }
    String::from_utf8(bytes).map_err(|_| SaslError::Malformed)
}

/// parse_plain - splits `authzid NUL authcid NUL passwd` (RFC 4616).
fn parse_plain(data: &[u8]) -> Result<Credentials, SaslError> {
    let mut parts = data.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    let authzid = field(authzid.to_vec())?;
    let authcid = field(authcid.to_vec())?;
    let password = field(password.to_vec())?;
    if authcid.is_empty() {
        return Err(SaslError::Malformed);
    }
    Ok(Credentials {
        authzid: (!authzid.is_empty()).then_some(authzid),
        authcid,
        password,
        apop: None,
    })
}

/// Longest APOP timestamp accepted.
const MAX_CHALLENGE: usize = 200;

/// parse_apop - splits `challenge NUL user NUL digest` (Dovecot's
/// mech-apop): the digest is the last 16 bytes, binary (it may hold NULs).
fn parse_apop(data: &[u8]) -> Result<Credentials, SaslError> {
    let Some(split) = data.len().checked_sub(17) else {
        return Err(SaslError::Malformed);
    };
    let (head, tail) = data.split_at(split);
    let Some((&0, digest)) = tail.split_first() else {
        return Err(SaslError::Malformed);
    };
    let mut parts = head.splitn(2, |&b| b == 0);
    let (Some(challenge), Some(user)) = (parts.next(), parts.next()) else {
        return Err(SaslError::Malformed);
    };
    let challenge = field(challenge.to_vec())?;
    let user = field(user.to_vec())?;
    if user.is_empty()
        || challenge.len() > MAX_CHALLENGE
        || !challenge.starts_with('<')
        || !challenge.ends_with('>')
    {
        return Err(SaslError::Malformed);
    }
    let digest: [u8; 16] = digest.try_into().map_err(|_| SaslError::Malformed)?;
    Ok(Credentials {
        authzid: None,
        authcid: user,
        password: String::new(),
        apop: Some(ApopProof { challenge, digest }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> String {
        STANDARD.encode(s)
    }

    #[test]
    fn plain_initial_response() {
        let (_, step) =
            Exchange::start(Mechanism::Plain, Some(&b64(b"\0user@example.com\0secret")));
        match step {
            Step::Done(c) => {
                assert_eq!(c.authzid, None);
                assert_eq!(c.authcid, "user@example.com");
                assert_eq!(c.password, "secret");
                assert!(c.authzid_ok());
                assert!(!format!("{c:?}").contains("secret"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plain_with_challenge_and_authzid() {
        let (mut ex, step) = Exchange::start(Mechanism::from_name("plain").unwrap(), None);
        assert_eq!(step, Step::Challenge(String::new()));
        match ex.step(&b64(b"admin\0user\0pw")) {
            Step::Done(c) => {
                assert_eq!(c.authzid.as_deref(), Some("admin"));
                assert!(!c.authzid_ok());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(ex.step("dGVzdA=="), Step::Failed(SaslError::Finished));
    }

    #[test]
    fn plain_malformed() {
        let cases: &[(&str, SaslError)] = &[
            ("!!!notbase64", SaslError::BadBase64),
            ("=", SaslError::Malformed),
            ("*", SaslError::Cancelled),
        ];
        for (resp, err) in cases {
            let (_, step) = Exchange::start(Mechanism::Plain, Some(resp));
            assert_eq!(step, Step::Failed(*err), "{resp}");
        }
        for bad in [&b"user\0pw"[..], b"\0\0pw", b"a\0b\0c\0d", b"\0u\xff\0pw"] {
            let (_, step) = Exchange::start(Mechanism::Plain, Some(&b64(bad)));
            assert_eq!(step, Step::Failed(SaslError::Malformed), "{bad:?}");
        }
        let huge = b64(&vec![b'a'; MAX_RESPONSE]);
        let (_, step) = Exchange::start(Mechanism::Plain, Some(&huge));
        assert_eq!(step, Step::Failed(SaslError::TooLong));
        let mut long_pw = b"\0u\0".to_vec();
        long_pw.extend(vec![b'p'; MAX_FIELD + 1]);
        let (_, step) = Exchange::start(Mechanism::Plain, Some(&b64(&long_pw)));
        assert_eq!(step, Step::Failed(SaslError::TooLong));
    }

    #[test]
    fn login_exchange() {
        let (mut ex, step) = Exchange::start(Mechanism::from_name("LOGIN").unwrap(), None);
        assert_eq!(step, Step::Challenge("VXNlcm5hbWU6".to_string()));
        assert_eq!(
            ex.step(&b64(b"user@example.com")),
            Step::Challenge("UGFzc3dvcmQ6".to_string())
        );
        match ex.step(&b64(b"secret")) {
            Step::Done(c) => {
                assert_eq!(c.authcid, "user@example.com");
                assert_eq!(c.password, "secret");
                assert_eq!(c.authzid, None);
            }
            other => panic!("{other:?}"),
        }
        // Initial response carries the user name.
        let (mut ex, step) = Exchange::start(Mechanism::Login, Some(&b64(b"bob")));
        assert_eq!(step, Step::Challenge(LOGIN_PASSWORD_PROMPT.to_string()));
        assert!(
            matches!(ex.step("=\r\n"), Step::Done(c) if c.password.is_empty() && c.authcid == "bob")
        );
    }

    #[test]
    fn apop_initial_response() {
        let mut data = b"<1896.697170952@dbc.mtview.ca.us>\0mrose\0".to_vec();
        let digest = [0u8, 1, 2, 0, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0];
        data.extend_from_slice(&digest);
        let (_, step) = Exchange::start(Mechanism::from_name("apop").unwrap(), Some(&b64(&data)));
        match step {
            Step::Done(c) => {
                assert_eq!(c.authcid, "mrose");
                assert!(c.password.is_empty());
                let p = c.apop.unwrap();
                assert_eq!(p.challenge, "<1896.697170952@dbc.mtview.ca.us>");
                assert_eq!(p.digest, digest);
            }
            other => panic!("{other:?}"),
        }
        assert!(Mechanism::Apop.private() && !Mechanism::Plain.private());
        let (_, step) = Exchange::start(Mechanism::Apop, None);
        assert_eq!(step, Step::Failed(SaslError::Malformed));
        for bad in [
            &b"<a@b>\0user\0short"[..],
            b"noangle\0user\0AAAAAAAAAAAAAAAA",
            b"<a@b>\0\0AAAAAAAAAAAAAAAA",
            b"<a@b>userAAAAAAAAAAAAAAAAA",
        ] {
            let (_, step) = Exchange::start(Mechanism::Apop, Some(&b64(bad)));
            assert_eq!(step, Step::Failed(SaslError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn login_malformed() {
        let (mut ex, _) = Exchange::start(Mechanism::Login, None);
        assert_eq!(ex.step("%%%"), Step::Failed(SaslError::BadBase64));
        assert_eq!(ex.step(&b64(b"x")), Step::Failed(SaslError::Finished));
        let (mut ex, _) = Exchange::start(Mechanism::Login, None);
        assert_eq!(ex.step(&b64(b"a\0b")), Step::Failed(SaslError::Malformed));
        let (mut ex, _) = Exchange::start(Mechanism::Login, None);
        ex.step(&b64(b"u"));
        assert_eq!(ex.step("*"), Step::Failed(SaslError::Cancelled));
        let (mut ex, _) = Exchange::start(Mechanism::Login, None);
        assert_eq!(
            ex.step(&"A".repeat(MAX_RESPONSE + 4)),
            Step::Failed(SaslError::TooLong)
        );
        assert_eq!(Mechanism::from_name("CRAM-MD5"), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(mech in 0u8..3, initial in proptest::option::of(".{0,200}"), steps in proptest::collection::vec(".{0,200}", 0..4)) {
            let m = match mech { 0 => Mechanism::Plain, 1 => Mechanism::Login, _ => Mechanism::Apop };
            let (mut ex, _) = Exchange::start(m, initial.as_deref());
            for s in &steps {
                let _ = ex.step(s);
            }
        }

        #[test]
        fn plain_roundtrip(user in "[^\\x00]{1,50}", pw in "[^\\x00]{0,50}") {
            let data = format!("\0{user}\0{pw}");
            let (_, step) = Exchange::start(Mechanism::Plain, Some(&b64(data.as_bytes())));
            match step {
                Step::Done(c) => { proptest::prop_assert_eq!(c.authcid, user); proptest::prop_assert_eq!(c.password, pw); }
                other => proptest::prop_assert!(false, "{:?}", other),
            }
        }
    }
}
