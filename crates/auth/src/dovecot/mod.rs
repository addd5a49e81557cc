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
//! A login (AUTH without `nologin`, from pop3d's login process) is
//! remembered by the server; the privileged process that then starts the
//! mail process asks `REQUEST id login_pid auth_id cookie` and gets `USER
//! id name` or `NOTFOUND id` (Dovecot's auth-master REQUEST; master.rs).
//!
//! Three layers, one file each:
//!
//! - line.rs: [`ClientRequest`] and [`ServerReply`], parsing and encoding
//!   of single lines, for either side, and [`read_line`]. Parsers take
//!   `&str` without the LF and never panic; lines longer than [`MAX_LINE`]
//!   are refused by the readers.
//! - server.rs: [`ServerConnection`], the server's per-connection state
//!   machine, with no I/O. It checks the handshake, keeps the pending
//!   requests (many AUTH ids may be interleaved on one connection, at most
//!   [`MAX_PENDING`]), runs the SASL exchange of each ([`crate::sasl`]) and
//!   hands out [`Event::Verify`] when a request's credentials are complete.
//!   The caller checks them, waits out any failure delay, and writes the OK
//!   or FAIL made by [`ServerReply::ok`] / [`ServerReply::fail`].
//! - client.rs: [`Client`], a blocking client for smtpd (and later pop3d
//!   and imapd), one exchange at a time, which also works against a real
//!   Dovecot.
//!
//! Postfix's side (src/xsasl/xsasl_dovecot_server.c) sends `VERSION 1 0`
//! and `CPID`, reads until `DONE` (without `DONE` the handshake fails),
//! takes mechanisms from `MECH` lines (`plaintext` means "sends the password
//! in the clear"; `private` hides one), sends AUTH as above (the initial
//! response already in base64), passes a `CONT` challenge to the SMTP client
//! as it is (an empty one gives `334 `), takes `user=` from OK and shows
//! `reason=` from FAIL in its 535 reply. It ignores replies for other ids.

mod client;
mod line;
mod master;
mod server;

pub use client::{CLIENT_TIMEOUT, Client, ClientInfo, Step};
pub use line::{
    AuthRequest, ClientRequest, MAX_LINE, MAX_PARAMS, Param, ParseError, ServerReply,
    VERSION_MAJOR, VERSION_MINOR, escape, printable, read_line, unescape,
};
pub use master::{MasterAnswer, master_request, request_over};
#[cfg(any(test, feature = "fuzzing"))]
pub use server::fuzz_lines;
pub use server::{
    Event, MAX_PENDING, ProtocolError, RequestInfo, ServerConnection, server_handshake,
};
