//! The imapd daemon: the three processes of a connection ([`session`]),
//! the not-authenticated state in the login process ([`login`]), and the
//! authenticated and selected states in the mail process ([`mail`] with
//! the command groups [`select`], [`fetch`], [`folders`], [`copy`]).

pub mod copy;
pub mod fetch;
pub mod folders;
pub mod login;
pub mod mail;
pub mod park;
pub mod select;
pub mod session;
pub mod settings;
