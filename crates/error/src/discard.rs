//! discard - Postfix-compatible discard mail delivery agent
//!
//! # Synopsis
//!
//! master.cf:
//!
//! ```text
//! discard   unix  -       -       y       -       -       discard
//! ```
//!
//! # Description
//!
//! discard reports every recipient of a delivery request as delivered
//! without delivering anything (transport_maps `discard:` entries, the
//! DISCARD action of access maps). The request's nexthop is the reason
//! logged, optionally led by a status code (`discard:2.0.0 spam`); the
//! default text is `discarded`. Each recipient is logged as
//! `QID: to=<r>, relay=none, delay=..., delays=..., dsn=2.0.0, status=sent (TEXT)`
//! and marked done in the queue file before qmgr gets the answer.
//!
//! # Talks to
//!
//! Serves `private/discard` (proto::deliver requests from qmgr); opens
//! the queue file to mark recipients done.
//!
//! # Security
//!
//! Runs as mail_owner, chrooted; reads nothing but its requests and the
//! queue file's header.
//!
//! # Diagnostics
//!
//! One `to=` line per recipient.
//!
//! # Configuration parameters
//!
//! None of its own; the log parameters (syslog_name, maillog_file).
//!
//! # See also
//!
//! discard(8), error(8), qmgr(8), transport(5).

fn main() {
    let (daemon, ()) = ipc::daemon::start(|_config, _args| Ok(()));
    error::serve(daemon, |_| error::Kind::Discard);
}
