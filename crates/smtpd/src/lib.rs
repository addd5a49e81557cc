//! smtpd(8): the SMTP server.
//!
//! The protocol core has no sockets: everything there takes bytes and
//! returns values, so unit tests, property tests and fuzzers drive it
//! directly. The I/O shell around it runs the event loop.
//!
//! Protocol core:
//! - [`line`]: splits client input into command lines (line_length_limit,
//!   smtpd_forbid_bare_newline).
//! - [`command`]: parses one command line into a typed [`command::Command`],
//!   with Postfix's syntax-error replies.
//! - [`data`]: decodes DATA content (dot-unstuffing, end only at
//!   CRLF.CRLF, CRLF to LF, size counting) and BDAT chunks.
//! - [`session`]: the session state machine: a state, a command table with
//!   flags, and actions for the shell to perform (commands.rs executes a
//!   command, answers.rs takes the answers from outside, config.rs holds
//!   its settings).
//!
//! I/O shell:
//! - [`settings`]: main.cf to [`session::Config`], TLS, limits.
//! - [`server`]: the mio event loop under ipc's multi-server skeleton.
//! - [`conn`]: one client connection: socket, TLS, session, cleanup.
//! - [`cleanup_client`]: the non-blocking cleanup conversation.
//! - [`workers`]: threads for blocking work (restrictions, anvil, SASL).
//! - [`standalone`]: `smtpd -S`, one session on stdin/stdout (`sendmail -bs`).
//! - [`restrict`]: the smtpd_*_restrictions.

pub mod anvil;
pub mod cleanup_client;
pub mod command;
pub mod conn;
pub mod data;
pub mod filters;
pub mod limit;
pub mod line;
pub mod reply;
pub mod restrict;
pub mod rewrite;
pub mod sasl;
pub mod server;
pub mod session;
pub mod settings;
pub mod standalone;
pub mod workers;
