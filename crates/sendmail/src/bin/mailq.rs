//! mailq - list the mail queue (Sendmail compatibility)
//!
//! # Synopsis
//!
//! `mailq [-C config_dir] [-v]`
//!
//! # Description
//!
//! The same program as sendmail(1) in `-bp` mode: it runs
//! command_directory/postqueue -p, which prints each queued message with
//! its queue id, size, arrival time, sender, recipients and reasons.
//!
//! # Talks to
//!
//! Execs postqueue(1).
//!
//! # Security
//!
//! Runs as the calling user; postqueue decides what may be shown.
//!
//! # Diagnostics
//!
//! `mailq: fatal: ...` on stderr; exit 69 when postqueue cannot be run,
//! otherwise postqueue's exit status.
//!
//! # Configuration parameters
//!
//! - command_directory (/usr/sbin): where postqueue is.
//!
//! # See also
//!
//! sendmail(1), postqueue(1).

fn main() {
    sendmail::main(sendmail::Mode::Mailq)
}
