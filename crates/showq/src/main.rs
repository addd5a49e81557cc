//! showq - list the mail queue
//!
//! # Synopsis
//!
//! master.cf (Postfix's standard line): `showq unix n - n - - showq`
//!
//! # Description
//!
//! showq answers [`proto::showq::Request::List`] on public/showq with one
//! [`proto::showq::Reply::Entry`] per message in maildrop, incoming,
//! active, deferred and hold (in that order, each sorted by queue id,
//! which is arrival order), then [`proto::showq::Reply::End`]. An entry
//! holds the queue name, queue id, arrival time, size (the content
//! length), envelope sender and the recipients still pending, each with
//! the reason it was deferred, taken from the last record for it in
//! defer/<id> ([`queue::status_log`]). `postqueue -p` (mailq) and
//! `postqueue -j` format the answer; users run them but cannot read the
//! queue themselves, which is why this service exists.
//!
//! Files that are not complete (a writer at work) or do not parse are
//! skipped without a word: showq only reads, and leaves quarantine to qmgr
//! and pickup. A message with very many recipients lists as many as fit
//! in one frame, and a note says how many more there are.
//!
//! `showq -S` serves one client on standard input (a Unix socket) and
//! exits: `postqueue -p` run by root while the mail system is down lists
//! the queue that way, as with Postfix.
//!
//! # Talks to
//!
//! Serves public/showq (postqueue). Reads the queue directories and
//! defer/ logs; writes nothing.
//!
//! # Security
//!
//! Runs as mail_owner, optionally chrooted (chroot=n in the standard
//! line). Any local user can connect (public/); the request carries no
//! data besides its kind. Queue files and logs are untrusted: they are
//! opened read-only through the queue library, which validates them, and
//! bad ones are skipped. Low sensitivity: it discloses envelope data that
//! mailq shows to local users anyway (authorized_mailq_users is not
//! enforced yet).
//!
//! # Diagnostics
//!
//! `warning: showq: ...` when a queue directory cannot be read or the
//! client goes away; the client then sees a short listing.
//!
//! # Configuration parameters
//!
//! - max_use (100), max_idle (100s): via the ipc skeleton.
//!
//! # See also
//!
//! postqueue(1), mailq(1), qmgr(8); `queue::status_log`.

mod list;

use std::os::fd::AsFd;

fn main() {
    // -S: one client on standard input, a socket (postqueue run by root
    // while the mail system is down), in queue_directory.
    if std::env::args_os().skip(1).any(|a| a == "-S") {
        let (daemon, ()) = ipc::daemon::start(|_config, _args| Ok(()));
        let qdir = daemon.context().config.str("queue_directory");
        let stdin = std::io::stdin().as_fd().try_clone_to_owned();
        match stdin {
            Ok(fd) => list::serve(
                &mut std::os::unix::net::UnixStream::from(fd),
                std::path::Path::new(&qdir),
            ),
            Err(e) => maillog::fatal!("standard input: {e}"),
        }
        return;
    }
    let (daemon, ()) = ipc::daemon::start(|_config, _args| Ok(()));
    daemon.single_server(|stream, _ctx| {
        if let ipc::Stream::Unix(s) = stream {
            list::serve(s, std::path::Path::new("."));
        }
    });
}
