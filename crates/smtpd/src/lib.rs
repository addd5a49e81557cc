//! The protocol core of smtpd(8), with no sockets.
//!
//! Everything here takes bytes and returns values, so unit tests, property
//! tests and fuzzers drive it directly; the I/O shell (the mio event loop,
//! TLS, the cleanup conversation) is built on top later.
//!
//! - [`line`]: splits client input into command lines (line_length_limit,
//!   smtpd_forbid_bare_newline).
//! - [`command`]: parses one command line into a typed [`command::Command`],
//!   with Postfix's syntax-error replies.
//! - [`data`]: decodes DATA content (dot-unstuffing, end only at
//!   CRLF.CRLF, CRLF to LF, size counting) and BDAT chunks.
//! - [`session`]: the session state machine: a state, a command table with
//!   flags, and actions for the shell to perform.

pub mod command;
pub mod data;
pub mod line;
pub mod reply;
pub mod restrict;
pub mod session;
