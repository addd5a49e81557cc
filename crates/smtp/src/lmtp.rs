//! lmtp - Postfix-compatible LMTP client
//!
//! # Synopsis
//!
//! master.cf:
//!
//! ```text
//! lmtp      unix  -       -       y       -       -       lmtp
//! ```
//!
//! # Description
//!
//! lmtp delivers mail to a local mail store that speaks LMTP (RFC 2033),
//! such as Dovecot's LMTP server, with the same client as smtp(8): the
//! nexthop is `unix:PATH` (a socket, relative to the queue directory when
//! chrooted), `inet:host:port`, `[host]:port` or `host` (port 24; never
//! an MX lookup). The session is LHLO (no HELO fallback), MAIL FROM,
//! RCPT TO for each recipient, DATA, and after the final dot one reply
//! per accepted recipient, so each recipient's delivery succeeds or fails
//! on its own. No loop detection. Log lines as smtp's, with
//! `relay=host[addr]:port` or `relay=$myhostname[PATH]`.
//!
//! # Talks to
//!
//! Serves `private/lmtp` for qmgr; reads queue files; connects to LMTP
//! servers over TCP or Unix-domain sockets.
//!
//! # Security
//!
//! As smtp(8): mail_owner, chrooted; server replies and queue files are
//! untrusted and read with bounds.
//!
//! # Diagnostics
//!
//! One `to=` line per recipient.
//!
//! # Configuration parameters
//!
//! The smtp_* parameters of smtp(8), each read as its lmtp_* twin when
//! main.cf's parameter table has one (lmtp_connect_timeout, ...).
//!
//! # See also
//!
//! lmtp(8), smtp(8), RFC 2033.

fn main() {
    smtp::run(true)
}
