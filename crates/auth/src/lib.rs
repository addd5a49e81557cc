//! auth - password checks for smtpd's SASL, and later pop3d and imapd.
//!
//! # Synopsis
//!
//! ```text
//! PassDb::from_spec("passwd-file:/etc/postfix/passwd, shadow") -> Result<PassDb, Error>
//! PassDb::verify(user, password) -> Result<Option<Authenticated>, Error>
//! sasl::Exchange::start(mechanism, initial_response) -> (Exchange, Step)
//! sasl::Exchange::step(response) -> Step
//! limiter::FailureLimiter::{check, record_failure, record_success}
//! dovecot::Client::connect(path) -> io::Result<Client>
//! dovecot::Client::{mechanisms, begin(mech, initial, &ClientInfo), respond(response)} -> Step
//! dovecot::ServerConnection::handle_line(line) -> Result<Event, ProtocolError>
//! dovecot::{ClientRequest, ServerReply}::{parse, encode}
//! ```
//!
//! # Description
//!
//! [`passdb`] reads Dovecot passwd-files and the system shadow file and checks
//! SHA512-CRYPT, SHA256-CRYPT, yescrypt (`$y$`, Debian's shadow default),
//! BLF-CRYPT, ARGON2ID and PLAIN passwords ([`scheme`]). A successful check yields an [`Authenticated`] value that
//! only this crate can construct; daemons hand a session to a user only
//! with one in hand.
//!
//! [`sasl`] implements the PLAIN (RFC 4616) and LOGIN mechanisms as pure
//! state machines over base64 client responses, and APOP (RFC 1939) the
//! way Dovecot carries it (a private SASL mechanism; [`PassDb::verify_apop`]
//! checks the digest against cleartext passwd-file entries, [`md5`]). [`limiter`] delays and
//! rate-limits failed attempts per client, with time passed in.
//!
//! [`dovecot`] speaks Dovecot's authentication protocol, the one Postfix
//! uses with `smtpd_sasl_type = dovecot`: line parsers and encoders for
//! both directions, the server's per-connection state machine (used by the
//! `auth` daemon, crates/authd), and a blocking [`dovecot::Client`] that
//! smtpd (and later pop3d and imapd) uses to ask our `auth` service or a
//! real Dovecot.
//!
//! # Security
//!
//! Inputs from clients are length-limited and never panic: SASL responses
//! ([`sasl::MAX_RESPONSE`]), protocol lines ([`dovecot::MAX_LINE`]),
//! requests in progress per connection ([`dovecot::MAX_PENDING`]). PLAIN passwords
//! are compared in constant time; unknown users cost one hash check, like
//! known ones. Password files are trusted input written by the administrator.
//!
//! # Diagnostics
//!
//! Errors say why an entry could not be checked, naming the scheme, the
//! user, the file and the line (`unsupported password scheme $1$
//! (MD5-CRYPT) for user alice (/etc/shadow, line 12)`). Callers log them.
//!
//! # Configuration parameters
//!
//! Read by the `auth` daemon, not by this library: `auth_passdb`
//! (passwd-file:PATH, shadow, pam; tried in order), `auth_failure_delay`,
//! `auth_failure_limit`, `auth_client_limit`.

pub mod dovecot;
pub mod limiter;
pub mod md5;
pub mod passdb;
pub mod sasl;
pub mod scheme;

pub use passdb::{Authenticated, Error, PassDb, Source};
