//! pop3d's parts, as a library for the binary and its tests: see
//! main.rs for the program.
//!
//! - [`session`]: the three processes of a connection.
//! - [`login`]: the AUTHORIZATION state (login process).
//! - [`mail`]: the TRANSACTION and UPDATE states (mail process).
//! - [`mailbox`]: where a user's mail is; listing, streaming, removing.
//! - [`settings`]: what main.cf says.

pub mod login;
pub mod mail;
pub mod mailbox;
pub mod session;
pub mod settings;
