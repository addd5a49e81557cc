//! master - Postfix-compatible master process
//!
//! # Synopsis
//!
//! `master [-c config_dir] [-d] [-s] [-t] [-v]`
//!
//! # Description
//!
//! master reads main.cf and master.cf, creates every listener master.cf
//! names (inet `[host:]port` over IPv4 and IPv6, unix sockets and fifos in
//! queue_directory/public/ and private/), and starts service processes on
//! demand: when a listener becomes readable and no child of that service is
//! waiting, it forks `daemon_directory/<command>` with the listeners as
//! fd 4.. and a status pipe as fd 3 (see the ipc crate), up to the maxproc
//! column. Children report busy/available over the status pipe; they exit
//! by themselves after max_use clients or max_idle seconds idle. Services
//! with a wakeup column get a `W` written to their fifo or socket every N
//! seconds (`N?`: only when used since the last wake-up).
//!
//! A child that exits abnormally before it took a client counts as a bad
//! startup: the service is throttled for service_throttle_time.
//!
//! Signals: SIGHUP rereads both files (new services start, removed ones
//! stop, unchanged listeners stay open); SIGTERM and SIGINT stop every child
//! (SIGTERM, then SIGKILL after 5 s), remove the pid file and exit.
//!
//! master runs in the foreground. `-s` (used by `postfix start`) detaches it
//! into its own session and points stdio to /dev/null once it is up. `-t`
//! only tests whether a master runs: exit 0 when none does. Log records go
//! to syslog (or maillog_file) and are copied to stderr only until a `-s`
//! master detaches, or in the foreground when stderr is a terminal; under
//! systemd (`postfix start-fg`, stderr is the journal) stderr gets only
//! fatal errors, so that each line reaches the journal once. `-d` and `-v` are
//! accepted for compatibility.
//!
//! # Talks to
//!
//! Its children (status pipes, signals); clients only through the
//! listeners it hands on. `postfix` finds it through the pid file.
//!
//! # Security
//!
//! Runs as root on a real server and starts children as root; each child
//! with unpriv=y becomes mail_owner (no capabilities) and each with chroot=y
//! is chrooted to queue_directory, both done by the child's ipc skeleton.
//! master refuses to start as root when mail_owner is root or missing.
//! Started by another user, nothing changes uid and that is logged once.
//! master reads no network input. Sockets and fifos are born with their
//! final mode (umask around bind/mkfifo) and handed to mail_owner with
//! lchown, so a name swapped for a symlink in a directory mail_owner can
//! write never makes root change another file.
//!
//! # Diagnostics
//!
//! - `daemon started -- version X, configuration DIR`, `reload -- ...`,
//!   `terminating on signal 15`.
//! - `fatal: the Postfix mail system is already running`: another master
//!   holds queue_directory/pid/master.pid (exit 1).
//! - `warning: process /path pid N exit status S` and
//!   `warning: /path: bad command startup -- throttling`.
//!
//! # Configuration parameters
//!
//! - queue_directory (/var/spool/postfix): sockets, pid file, chroot.
//! - daemon_directory (/usr/libexec/postfix): where commands live.
//! - mail_owner (postfix): the unprivileged account.
//! - inet_interfaces (all), inet_protocols (all): addresses for `port`-only services.
//! - service_throttle_time (60s): pause after a bad startup.
//! - max_use (100), max_idle (100s): passed on to children through main.cf.
//! - syslog_name (postfix), maillog_file (empty): logging;
//!   maillog_file_permissions (0600): mode of a new maillog_file.
//! - import_environment (MAIL_CONFIG ... LANG=C ...): the whole environment
//!   of a child besides MAIL_CONFIG: its names with master's values, its
//!   `name=value` entries as given (Postfix's clean_env); nothing else of
//!   the environment that started master reaches a child.
//!
//! # See also
//!
//! postfix(1), master(5), the ipc crate (service skeleton).

mod event;
mod listener;
mod reap;
mod reload;
mod service;
mod setup;
mod spawn;

fn main() {
    let opts = setup::parse_args();
    if opts.test {
        setup::test_running(&opts);
    }
    setup::start(&opts).run()
}
