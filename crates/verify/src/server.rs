//! The event loop: many clients (smtpd processes asking, qmgr reporting),
//! one frame per request, answered in order; a one-second tick that saves
//! the cache when it changed and runs the periodic cleanup. SIGTERM
//! (master stopping) and master's exit save the cache before verify
//! exits.

use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant, SystemTime};

use ipc::Stream;
use ipc::clients::Clients;
use ipc::multi::MultiServer;
use ipc::signals::Signals;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use proto::serve::FrameClient;
use proto::verify::{Reply, Request};

use crate::cache::{Cache, MAX_ADDRESS};
use crate::probe::Sender;

/// The signal token.
const SIGNALS: Token = Token(1000);

/// Most unanswered input one client may have.
const MAX_INPUT: usize = 16 * 1024;

/// Most unread output one client may have.
const MAX_OUTPUT: usize = 64 * 1024;

/// Most clients connected at once.
const MAX_CLIENTS: usize = 4096;

/// How often the cache is saved (when changed) and the cleanup checked.
const TICK: Duration = Duration::from_secs(1);

type Client = FrameClient<Stream>;

/// What the loop needs besides the cache.
#[derive(Debug)]
pub(crate) struct Run {
    /// Sends probes.
    pub(crate) sender: Sender,
    /// address_verify_cache_cleanup_interval (None: never).
    pub(crate) cleanup_interval: Option<Duration>,
}

/// Seconds since the epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Serves until master goes away or SIGTERM.
pub(crate) fn run(mut server: MultiServer, signals: Signals, mut cache: Cache, run: Run) -> ! {
    let Ok(mut poll) = Poll::new() else {
        maillog::fatal!("epoll: cannot create")
    };
    if let Err(e) = server.register(poll.registry(), 0) {
        maillog::fatal!("register listeners: {e}");
    }
    let sig_fd = signals.as_fd().as_raw_fd();
    if let Err(e) = poll
        .registry()
        .register(&mut SourceFd(&sig_fd), SIGNALS, Interest::READABLE)
    {
        maillog::fatal!("register signals: {e}");
    }
    let mut clients: Clients<Client> = Clients::new(MAX_CLIENTS);
    let mut events = Events::with_capacity(64);
    let mut last_cleanup = Instant::now();
    let mut last_save: Option<Instant> = None;
    loop {
        // At most once a second: the table is written whole.
        if last_save.is_none_or(|t| t.elapsed() >= TICK) && cache.save() {
            last_save = Some(Instant::now());
        }
        if let Some(every) = run.cleanup_interval
            && last_cleanup.elapsed() >= every
        {
            last_cleanup = Instant::now();
            let (retained, dropped) = cache.cleanup(now());
            maillog::info!(
                "cache {} full cleanup: retained={retained} dropped={dropped} entries",
                cache.name()
            );
        }
        if server.should_exit() {
            finish(&mut cache);
        }
        if poll.poll(&mut events, Some(TICK)).is_err() {
            continue;
        }
        for ev in events.iter() {
            let tok = ev.token();
            if tok == SIGNALS {
                if !signals.pending().is_empty() {
                    finish(&mut cache);
                }
                continue;
            }
            if server.is_status(tok) {
                continue;
            }
            if let Some(i) = server.listener_index(tok) {
                clients.accept(
                    &mut server,
                    poll.registry(),
                    i,
                    || true,
                    |s| FrameClient::new(s, MAX_INPUT, MAX_OUTPUT),
                );
            } else if let Some(c) = clients.get_mut(tok)
                && !c.serve(|r: Request| handle(r, &mut cache, &run.sender, now()))
            {
                clients.hang_up(tok, poll.registry(), &mut server);
            }
        }
    }
}

fn finish(cache: &mut Cache) -> ! {
    let _ = cache.save();
    std::process::exit(0)
}

/// Answers one request (Postfix's verify_query_service and
/// verify_update_service).
pub(crate) fn handle(r: Request, cache: &mut Cache, sender: &Sender, now: u64) -> Reply {
    match r {
        Request::Query { address } => {
            if !acceptable(&address) {
                return Reply::Bad;
            }
            let a = cache.query(&address, now);
            if a.probe && !sender.send(&address, now) {
                cache.probe_not_sent(&address);
            }
            Reply::Status {
                status: a.status,
                reason: a.text,
            }
        }
        Request::Update {
            address,
            status,
            reason,
        } => {
            if !acceptable(&address) || status == proto::verify::Status::Unknown {
                maillog::warning!(
                    "bad recipient status {} for recipient {}",
                    status.code(),
                    maillog::printable(&address, 200)
                );
                return Reply::Bad;
            }
            cache.update(&address, status, &reason, now);
            Reply::Ok
        }
    }
}

/// An address verify takes: not empty (the null sender is never
/// verified), not absurdly long, no control characters.
fn acceptable(address: &str) -> bool {
    !address.is_empty() && address.len() <= MAX_ADDRESS && !address.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Policy;
    use proto::verify::Status;

    #[test]
    fn bad_requests_are_refused() {
        let p = Policy {
            pos_expire: 10,
            pos_refresh: 5,
            neg_expire: 10,
            neg_refresh: 5,
            neg_cache: true,
        };
        let mut c = Cache::new(p, None, Vec::new());
        let s = Sender {
            queue_dir: "/nonexistent".into(),
            cleanup: "public/cleanup".into(),
            sender: String::new(),
            sender_ttl: 0,
            in_flight: Default::default(),
        };
        let q = |a: &str| Request::Query { address: a.into() };
        assert_eq!(handle(q(""), &mut c, &s, 1), Reply::Bad);
        assert_eq!(handle(q("a\nb@c"), &mut c, &s, 1), Reply::Bad);
        let u = Request::Update {
            address: "a@b".into(),
            status: Status::Unknown,
            reason: "x".into(),
        };
        assert_eq!(handle(u, &mut c, &s, 1), Reply::Bad);
        let u = Request::Update {
            address: "a@b".into(),
            status: Status::Deliverable,
            reason: "delivers to mailbox".into(),
        };
        assert_eq!(handle(u, &mut c, &s, 2), Reply::Ok);
        assert_eq!(
            handle(q("A@B"), &mut c, &s, 3),
            Reply::Status {
                status: Status::Deliverable,
                reason: "delivers to mailbox".into()
            }
        );
    }
}
