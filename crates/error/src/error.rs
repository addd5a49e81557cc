//! error - Postfix-compatible error/retry mail delivery agent
//!
//! # Synopsis
//!
//! master.cf:
//!
//! ```text
//! error     unix  -       -       y       -       -       error
//! retry     unix  -       -       y       -       -       error
//! ```
//!
//! # Description
//!
//! Run as the `error` service (or any service name but `retry`), it
//! bounces every recipient of a delivery request; as `retry` it defers
//! them. The request's nexthop is the reason: `error:5.1.1 user has
//! left` bounces with code 5.1.1 and text `user has left`; without a code
//! the default is 5.0.0 (retry: 4.0.0). Each recipient is logged as
//! `QID: to=<r>, relay=none, delay=..., delays=..., dsn=5.1.1, status=bounced (user has left)`.
//! qmgr handles the plain `error` and `retry` transports itself; this
//! program serves other service names that master.cf points at it.
//!
//! # Talks to
//!
//! Serves `private/error`, `private/retry` (proto::deliver requests from
//! qmgr); opens queue files only to hold the delivery lock.
//!
//! # Security
//!
//! Runs as mail_owner, chrooted; reads nothing but its requests and the
//! queue file's header. The nexthop text is logged printable and cut.
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
//! error(8), discard(8), qmgr(8), transport(5).

fn main() {
    let (daemon, ()) = ipc::daemon::start(|_config, _args| Ok(()));
    error::serve(daemon, |service| {
        if service == "retry" {
            error::Kind::Defer
        } else {
            error::Kind::Bounce
        }
    });
}
