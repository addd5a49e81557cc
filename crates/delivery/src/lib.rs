//! What the delivery agents `local`, `virtual`, `pipe` and `smtp` share.
//!
//! Postfix keeps this in global/: deliver_request.c (the request loop),
//! log_adhoc.c (the `to=` line), mail_copy.c (copying a message with
//! From_, Return-Path, Delivered-To), pipe_command.c (running a command
//! with a time limit and capturing its output), sys_exits.c, set_eugid.c
//! and delivered_hdr.c. Here:
//!
//! - [`agent`]: [`agent::serve`] reads one [`proto::deliver::Request`],
//!   opens the queue file read-only, calls the agent once per recipient
//!   and answers one [`proto::deliver::Reply`]; [`agent::Message`] is what
//!   an agent sees of the message; [`agent::Outcome`] what it reports.
//!   [`agent::serve_all`] is the same for agents that deliver all
//!   recipients in one transaction (smtp, lmtp) and report each as it
//!   becomes known.
//! - [`commit`]: group commit for a batch of requests: one fsync of
//!   each Maildir `new/` for the whole batch ([`commit::maildir_deliver`]).
//! - [`dedupe`]: a retried delivery that may already have been made
//!   looks for the earlier copy in the Maildir or mbox first.
//! - [`logline`]: the `to=<...>, relay=..., delay=..., delays=a/b/c/d,
//!   dsn=..., status=...` line in Postfix's shape.
//! - [`copy`]: streams the content with the From_ line, prepended headers,
//!   `>From ` quoting, dot stuffing and another line end.
//! - [`headers`]: the Delivered-To headers of a message (loop detection)
//!   and the Return-Path / X-Original-To / Delivered-To lines to prepend.
//! - [`command`]: runs a command (`|command` aliases, mailbox_command,
//!   pipe(8)) as a given user, message on stdin, bounded output, time
//!   limit, result mapped to a DSN as Postfix does ([`sysexits`]).
//! - [`privs`]: switching the effective user and group around one
//!   delivery, and back to root.
//! - [`macros`]: `$name`, `${name}`, `${name?text}`, `${name:text}`
//!   expansion with values inserted literally (pipe's argv, forward_path).
//! - [`verify_only`]: address verification probes and `sendmail -bv`:
//!   [`agent::Message::verify_only`] says the agent must deliver nothing,
//!   only report what it would do.
//!
//! # Synopsis
//!
//! ```text
//! daemon.single_server(|stream, ctx| {
//!     delivery::agent::serve(stream, "local", &mut |msg, rcpt| {
//!         let outcome = Outcome::sent("delivered to mailbox");
//!         msg.log(&rcpt.address, &rcpt.original, "local", &outcome);
//!         outcome
//!     })
//! });
//! ```
//!
//! # Security
//!
//! Everything in a request, a queue file, a header or a command's output
//! is untrusted: parsing is bounded, logged text goes through
//! [`maillog::printable`], nothing panics.

pub mod agent;
pub mod command;
pub mod commit;
pub mod copy;
pub mod dedupe;
pub mod headers;
pub mod logline;
pub mod macros;
pub mod privs;
pub mod sysexits;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod verify_only;

pub use agent::{Message, Outcome};
