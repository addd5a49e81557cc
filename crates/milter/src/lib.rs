//! The client side of Sendmail's milter protocol (version 6, as Postfix's
//! MILTER_README describes it), shared by smtpd and cleanup.
//!
//! # Synopsis
//!
//! ```text
//! let settings = milter::Settings::from_config(&cfg);
//! let milters = milter::parse_list(&cfg.str("smtpd_milters"), &settings)?;
//! let mut mail = milter::Mail::parse(sender, recipients, &content, 1);
//! let outcome = milter::run(&milters, &settings, &facts, &mut mail);
//! ```
//!
//! # Description
//!
//! [`run`] takes one message through each milter in turn: it connects
//! (`inet:host:port` or `unix:/path`, within milter_connect_timeout),
//! negotiates (SMFIC_OPTNEG with milter_protocol, every modification
//! action offered, the milter's wishes for events, replies and macro
//! lists honoured), then sends the connect, HELO, MAIL, RCPT (one per
//! recipient), DATA, header, end-of-header, body and end-of-message
//! events, each preceded by its macros (milter_connect_macros, ...,
//! milter_end_of_data_macros; values from [`Facts::macros`], with
//! Postfix's names: `j`, `{daemon_name}`, `{client_addr}`, `i`,
//! `{auth_authen}`, `{mail_addr}`, `{rcpt_addr}`, ...). Commands wait
//! milter_command_timeout for a reply, content events
//! milter_content_timeout.
//!
//! A milter's replies: continue, accept (no more events for this milter),
//! reject / tempfail / a custom reply code (for the whole message; at
//! RCPT for that recipient only), discard, skip (no more body), progress
//! (wait on). At end of message it may ask for modifications, applied to
//! [`Mail`] before the next milter sees the message: add, insert, change
//! and delete header, replace body, add and delete recipient, change
//! sender, quarantine (the caller puts the message on hold).
//!
//! A milter that cannot be reached, times out or breaks the protocol is
//! handled by milter_default_action (or the `default_action` of its
//! `{ ... }` entry): `accept` (go on without it), `tempfail` (451 4.7.1
//! Service unavailable - try again later), `reject` (550 5.7.1 Command
//! rejected) or `quarantine` (accept, hold).
//!
//! As in Postfix, our own first header (the Received header cleanup
//! adds) is not shown to milters: header change requests count headers
//! without it, header insert requests count it (so a DKIM-Signature
//! inserted at 0 lands above it).
//!
//! # Security
//!
//! Milters are trusted configuration, but their packets are still parsed
//! with a bounds-checked cursor and limited to [`packet::MAX_PACKET`]
//! bytes; a replaced body is limited by the caller's size limit.
//!
//! # Configuration parameters
//!
//! milter_protocol (6), milter_default_action (tempfail),
//! milter_connect_timeout (30s), milter_command_timeout (30s),
//! milter_content_timeout (300s), milter_connect_macros,
//! milter_helo_macros, milter_mail_macros, milter_rcpt_macros,
//! milter_data_macros, milter_end_of_header_macros,
//! milter_end_of_data_macros, milter_macro_daemon_name, milter_macro_v.

pub mod packet;

mod conn;
mod mail;
mod run;
mod settings;

pub use mail::{Edit, Header, Mail};
pub use run::{Facts, Outcome, Verdict, check_recipient, run};
pub use settings::{DefaultAction, Endpoint, MacroLists, Settings, Spec, parse_list};

use std::fmt;

/// What went wrong with one milter.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Reading, writing or connecting failed (a timeout included).
    Io(std::io::Error),
    /// A packet longer than [`packet::MAX_PACKET`].
    TooLong(usize),
    /// The milter sent something the protocol does not allow.
    Protocol(String),
    /// A bad milter address or `{ }` attribute in main.cf.
    Config(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::TooLong(n) => write!(f, "packet of {n} bytes is too long"),
            Error::Protocol(s) => write!(f, "protocol error: {s}"),
            Error::Config(s) => write!(f, "{s}"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests;
