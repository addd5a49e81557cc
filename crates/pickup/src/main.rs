//! pickup - Postfix local mail pickup
//!
//! # Synopsis
//!
//! master.cf: `pickup unix n - n 60 1 pickup` (or `fifo`)
//!
//! # Description
//!
//! Waits for wake-ups on public/pickup (postdrop writes one after each
//! submission it leaves in maildrop/, master one every `wakeup` seconds)
//! and, on each, and once at start, scans the maildrop queue (on a thread
//! of its own, so that a long scan does not keep hand-overs waiting).
//! Every complete file, taken in arrival (queue id) order, eight in
//! conversation at once (each on its own connection, so cleanup syncs
//! incoming/ once for several), is streamed to cleanup over
//! public/cleanup:
//! `Begin` (flags local_submission, plus extract_recipients when sendmail
//! was given `-t`; the sender; the full name; attributes `rewrite_context`
//! = local, `login_name`, `uid`, the DSN and body values, and
//! `content_filter` when main.cf or a master.cf `-o` sets it), each
//! recipient, the content in chunks, and `End`. The maildrop file is
//! removed only after cleanup answers that the message is queued (fsynced)
//! or discarded; a message cleanup rejects for good (a 5.x.x status: over
//! message_size_limit, a header_checks REJECT) is logged and removed. When
//! cleanup cannot be reached, hangs up, or refuses for now (a 4.x.x status,
//! such as a queue file write error), the file stays and the scan stops
//! until the next wake-up.
//! Files still being written (no complete mark) are left alone; one
//! unfinished for more than a day (its postdrop was killed, and sendmail
//! did not report success) is removed with a warning, as are postdrop
//! temporary names (`.tmp.*`) of that age.
//!
//! It also scans every 60 seconds by itself, so mail is picked up even
//! under a master.cf line without a wakeup time.
//!
//! On a unix public/pickup, postdrop hands a small message over directly
//! (proto::pickup: the byte `M`, then the message as cleanup frames) so
//! that it needs no maildrop file. Each hand-over is served by a pooled
//! thread (at most 64 at once), which first gives postdrop the go-ahead
//! (postdrop writes a maildrop file when none comes within 2 seconds), and
//! goes to cleanup exactly as a maildrop file would (the same envelope
//! checks, the submitter's uid from the socket's peer credentials,
//! content_filter, the same `uid=` log line) and is answered with
//! cleanup's verdict: queued or discarded; refused
//! for good (logged); or, when cleanup is unavailable or refuses for now,
//! 4.3.0, after which postdrop writes the maildrop file. Before exiting
//! (max_use, master gone) pickup waits for the hand-overs in flight; on
//! SIGTERM (postfix stop) it takes no new ones and gives those in flight
//! up to 4 seconds.
//!
//! Exactly once when killed: each message carries `maildrop_id` (cleanup
//! keeps it in the queue file, and qmgr takes no file from incoming/ while
//! its maildrop file exists); a file that may have been sent before (it
//! is older than this pickup, or an attempt of this pickup got no answer)
//! also carries `maildrop_retry=1`, and cleanup then answers with the
//! first queue file instead of writing a second. After removing a
//! maildrop file pickup wakes qmgr (`public/qmgr`).
//!
//! # Talks to
//!
//! Serves: public/pickup (fifo or unix: wake-ups; unix: also postdrop's
//! hand-overs, proto::pickup). Calls: public/cleanup (proto::cleanup);
//! wakes public/qmgr.
//!
//! # Security
//!
//! Runs as mail_owner (unpriv column `-`), chrooted when master.cf says so.
//! Maildrop files are written by local users and owned by them: each is
//! untrusted input, parsed by the queue library's checked reader; a
//! malformed one is moved to corrupt/ with a warning (removed when even
//! that fails). Only the sender, recipients, full name, extract_recipients
//! and checked DSN and body values are passed on; cleanup's other flags
//! cannot be set by a user. The login name a file claims is believed for
//! root and mail_owner only; anyone else's must resolve to the file's
//! owner, or the owner's own name (or uid) is used. A hand-over is
//! checked the same way, its owner being the socket peer's uid (only
//! set-gid postdrop reaches public/).
//!
//! # Diagnostics
//!
//! - `QUEUEID: uid=1000 from=<alice>` for each message handed on (the
//!   queue id cleanup gave it).
//! - `warning: QUEUEID: rejected: 5.3.4 message file too big` for a message
//!   cleanup refused; the maildrop file is removed.
//! - `warning: QUEUEID: cleanup: 4.3.0 text; will try again`: kept.
//! - `warning: maildrop/ID: ...: moved to corrupt/ID` for a bad file.
//! - `warning: public/cleanup: ...` when cleanup cannot be reached; the
//!   file is tried again at the next wake-up.
//!
//! # Configuration parameters
//!
//! - queue_directory (/var/spool/postfix): where maildrop/ is.
//! - mail_owner (postfix): the account it runs as.
//! - max_use, max_idle: via the ipc skeleton (master passes `-z` to
//!   services with a wakeup time).
//! - syslog_name (postfix), maillog_file (empty): logging.
//!
//! # See also
//!
//! postdrop(1), sendmail(1), cleanup(8), master(8).

mod direct;
mod scan;
mod scanner;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Scan this often even without a wake-up.
const SCAN_INTERVAL: Duration = Duration::from_secs(60);

/// How long an exit waits for a scan under way (one stopped half way is
/// safe: a file sent again carries maildrop_retry).
const DRAIN_SCAN_WAIT: Duration = Duration::from_secs(60);

fn main() {
    let (daemon, ()) = ipc::daemon::start(|_config, _args| Ok(()));
    let ctx = daemon.context();
    // Under master the skeleton has made queue_directory the working
    // directory (it is "/" inside the chroot); run by hand it has not.
    let queue_dir = if ctx.args.service_name.is_empty() {
        PathBuf::from(ctx.config.str("queue_directory"))
    } else {
        PathBuf::from(".")
    };
    let pickup = Arc::new(
        scan::Pickup::new(&queue_dir, nix::unistd::geteuid().as_raw())
            .with_content_filter(&ctx.config.str("content_filter")),
    );
    let flight = Arc::new(direct::InFlight::default());
    direct::stop_on_sigterm(&flight);
    let scanner = scanner::Scanner::start(Arc::clone(&pickup));
    scanner.request();
    let handovers = direct::Handovers::new(pickup, Arc::clone(&flight));
    let (asked, drained) = (Arc::clone(&scanner), flight);
    daemon.trigger_server_with_handover(
        Some(SCAN_INTERVAL),
        move |_request, _ctx| asked.request(),
        move |handover, _ctx| handovers.serve(handover),
        move || {
            drained.drain();
            scanner.wait_idle(DRAIN_SCAN_WAIT);
        },
    );
}
