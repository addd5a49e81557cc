//! qmgr - Postfix-compatible queue manager
//!
//! # Synopsis
//!
//! master.cf: `qmgr fifo n - n 300 1 qmgr` (Postfix's line), or
//! `qmgr unix n - n 300 1 qmgr` (a socket: each trigger is a short
//! connection, read without blocking the loop).
//!
//! # Description
//!
//! qmgr is one long-lived process. It takes new mail from incoming/ and
//! mail whose retry time has come from deferred/ into active/ (at most
//! qmgr_message_active_limit messages, also bounded by the descriptors it
//! may open), asks trivial-rewrite (one connection kept open) where each
//! pending recipient goes, and sends [`proto::deliver::Request`]s to
//! `private/<transport>`, each with at most
//! `<transport>_destination_recipient_limit` recipients (default
//! default_destination_recipient_limit; 1 for local), with at most
//! `<transport>_destination_concurrency_limit` requests in flight per
//! (transport, nexthop) (default default_destination_concurrency_limit; 2
//! for local) and at most the transport's master.cf maxproc
//! (default_process_limit for `-`) per transport.
//!
//! Batches (our own, not in Postfix): when more requests wait for a
//! destination than the window lets go, up to
//! `<transport>_delivery_batch_limit` of them (default
//! default_delivery_batch_limit, 1: no batches; 20 for local and
//! virtual) go at once on one agent connection and take one slot of the
//! window; the agent answers each. local and virtual make a batch's
//! Maildir deliveries durable with one fsync of each `new/` directory
//! instead of one per message, and qmgr syncs each queue file's done
//! marks once, after the answers. A batch that loses its connection
//! leaves every request not answered yet deferred (and flagged
//! maybe-delivered), as a single request would be.
//!
//! Slow start and feedback, as Postfix's qmgr: a destination starts at
//! initial_destination_concurrency requests in flight; each delivery that
//! reached the destination (positive feedback,
//! default_destination_concurrency_positive_feedback) widens the window by
//! one up to the limit; each site failure (every recipient deferred and no
//! server reached, relay=none) narrows it (negative feedback). When the
//! failures fill default_destination_concurrency_failed_cohort_limit
//! cohorts the destination is dead: its queued and newly arriving mail is
//! deferred, without a delivery attempt, with `delivery temporarily
//! suspended: REASON`, for minimal_backoff_time (or until a flush,
//! `postqueue -f`); then it starts again.
//! destination_concurrency_feedback_debug logs each window change.
//!
//! Deliveries run on a small pool of worker threads, each doing one
//! blocking request and recording its results, so deliveries to different
//! destinations and agents proceed in parallel while the main loop (mio)
//! keeps taking triggers. Per recipient: delivered, the recipient is marked
//! done in the queue file (pwrite + fdatasync; the agent's own mark is
//! left unsynced when the delivery finishes the message and local or
//! virtual would find its copy on a maybe_delivered retry); bounced, a
//! record goes to the bounce log (private/bounce) and then the done mark;
//! deferred, a record goes to the defer log (private/defer) and the
//! recipient stays pending. An agent that closes the connection or does not answer within
//! ipc_timeout leaves all its recipients deferred with `delivery
//! temporarily suspended: ...`, logged by qmgr; the message is retried,
//! never lost. The transports `error` (bounce with the nexthop text) and
//! `retry` (defer) are built in, as are the redirections Postfix's qmgr
//! makes: resolver failure (`4.3.0 address resolver failure`), a bad
//! address (`5.1.3 bad address syntax`) and defer_transports.
//!
//! When a message has no request left: if pending recipients remain and
//! the message is older than maximal_queue_lifetime (bounce_queue_lifetime
//! for the null sender) they are bounced (`4.4.7`, `message expired: ...`);
//! otherwise, once it is older than delay_warning_time (when set, and the
//! sender is not null), a delay warning is asked for once (private/defer
//! Warn), and the group execute bit of the queue file records that it was
//! sent. With nothing pending, a bounce or trace log makes qmgr ask the
//! bounce service to Flush (a notification to the sender; the bounce daemon
//! sends a bounce of a `<>` message to postmaster); only when that succeeds
//! is the message removed, with its defer, bounce and trace logs. With
//! recipients pending the message moves to deferred/ with its next retry
//! time as the file's mtime: now + its age, bounded by
//! minimal_backoff_time and maximal_backoff_time (the interval doubles as
//! the message ages). The defer log is removed when a message comes back
//! from deferred/, so it holds the latest attempt's reasons.
//!
//! At startup qmgr takes back what active/ holds (a crash left it there:
//! only the pending recipients are delivered; a file still locked by an
//! agent is looked at again 10 seconds later), then scans incoming/ and
//! deferred/. hold/ is never scanned. Incomplete files in incoming/ are
//! left alone until their writer marks them complete, and removed once
//! a day old (a cleanup that died; its client still has the message).
//!
//! Exactly once across crashes: the delivery agents mark each delivered
//! recipient done themselves before they answer (qmgr marks again,
//! harmlessly), and an agent that finds, once it holds the queue file's
//! lock, that the qmgr which sent the request has gone delivers nothing
//! (a request can wait in an agent's listen queue after its qmgr died).
//! A message whose agent died or timed out after it got a request, or
//! that qmgr took back from active/ at startup, gets the
//! other-execute bit of its queue file, and every later request for it
//! carries `maybe_delivered=1`: local and virtual then look for the
//! earlier copy in the mailbox before they write. A message in incoming/
//! whose envelope names a `maildrop_id` (set by pickup) is not taken
//! while that maildrop file exists (looked at again a second later, or
//! on pickup's wake-up after it removed the file), so that a pickup
//! killed before its removal, which sends the file again, finds the
//! first copy through cleanup.
//!
//! Address verification probes (a `trace_flags` attribute with
//! MTA_VRFY, written by cleanup for verify(8)) bypass content filters;
//! their agents deliver nothing, and qmgr reports each recipient's result
//! to private/verify instead of bouncing or deferring it, logs it as
//! `status=deliverable` or `status=undeliverable` and removes the probe.
//!
//! # Triggers
//!
//! Bytes written to public/qmgr: `I` and `W` (master's wake-up, cleanup's
//! trigger) scan incoming/; `D` scans deferred/ for messages whose retry
//! time has come; `F` (flush, as `postqueue -f` sends) scans deferred/
//! ignoring retry times; `A` scans both, ignoring retry times (Postfix's
//! `postqueue -f` sends `FADI`). In a flush, defer_transports deliver.
//! deferred/ is also scanned every queue_run_delay.
//!
//! # Talks to
//!
//! private/rewrite (resolve), private/<transport> (deliveries),
//! private/bounce (bounce and trace logs, Flush), private/defer (defer
//! logs, Warn), private/verify (probe results). Triggered on public/qmgr by cleanup, master and postqueue.
//!
//! # Security
//!
//! Runs as mail_owner, optionally chrooted. Queue files are untrusted: a
//! malformed one goes to corrupt/ with a warning. Replies from agents are
//! untrusted: statuses for recipients not in the request are ignored,
//! missing ones defer. Transport names are validated before a socket path
//! is built.
//!
//! # Diagnostics
//!
//! `QID: from=<sender>, size=N, nrcpt=N (queue active)`, `QID: removed`,
//! `QID: to=<...>, relay=none, delay=..., delays=..., dsn=4.3.0,
//! status=deferred (delivery temporarily suspended: ...)` for agent
//! failures, `QID: from=<sender>, status=expired, returned to sender`, and
//! warnings naming the queue id for file and service problems. qmgr exits
//! when master goes away; recipients in flight then stay pending and are
//! retried by the next qmgr.
//!
//! # Configuration parameters
//!
//! - qmgr_message_active_limit (20000), queue_run_delay (300s)
//! - minimal_backoff_time (300s), maximal_backoff_time (4000s)
//! - maximal_queue_lifetime (5d), bounce_queue_lifetime (5d), delay_warning_time (0h)
//! - default_destination_concurrency_limit (20),
//!   `<transport>`_destination_concurrency_limit (local: 2)
//! - default_destination_recipient_limit (50),
//!   `<transport>`_destination_recipient_limit (local: 1)
//! - default_delivery_batch_limit (1), `<transport>`_delivery_batch_limit
//!   (local: 20, virtual: 20): the most messages sent at once (a batch)
//!   on one agent connection for one destination
//! - default_process_limit (100), master.cf maxproc: deliveries in flight per transport
//! - initial_destination_concurrency (5), `<transport>`_initial_destination_concurrency
//! - default_destination_concurrency_failed_cohort_limit (1), per transport too
//! - default_destination_concurrency_positive_feedback,
//!   default_destination_concurrency_negative_feedback (1; `N/concurrency`)
//! - destination_concurrency_feedback_debug (no)
//! - defer_transports (empty), soft_bounce (no)
//! - ipc_timeout (3600s): delivery agent replies; qmgr_ipc_timeout (60s):
//!   trivial-rewrite and bounce replies
//! - address_verify_service_name (verify), address_verify_negative_cache (yes)
//! - address_verify_pending_request_limit (5000): probes in memory beyond
//!   it are deferred without a delivery attempt (`4.3.2 Too many address
//!   verification requests`), as Postfix's qmgr
//!
//! # See also
//!
//! trivial-rewrite(8), bounce(8), local(8), cleanup(8), postqueue(1), master(8).

mod filter;
mod forced;
mod kept;
mod manager;
mod params;
mod probe;
mod resolver;
mod window;
mod work;

use ipc::Listener;
use manager::TriggerSource;

fn main() {
    let (daemon, ()) = ipc::daemon::start(|_config, _args| Ok(()));
    let fd_limit = raise_fd_limit();
    let params = params::Params::load(&daemon.context().config, fd_limit);
    let mut sources = Vec::new();
    for l in daemon.listeners() {
        sources.push(match l {
            Listener::Fifo(f) => match f.try_clone() {
                Ok(f) => TriggerSource::Fifo(f),
                Err(e) => maillog::fatal!("duplicate trigger fifo: {e}"),
            },
            _ => TriggerSource::Socket,
        });
    }
    manager::run(daemon.multi_server(), sources, params)
}

/// Raises the open-file limit to its hard maximum (each active message
/// keeps its queue file open) and returns the limit in effect.
fn raise_fd_limit() -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                usize::try_from(hard).unwrap_or(usize::MAX)
            } else {
                usize::try_from(soft).unwrap_or(usize::MAX)
            }
        }
        Err(_) => 1024,
    }
}
