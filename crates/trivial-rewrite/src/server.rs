//! The event loop: one process serves every client at once (clients such
//! as qmgr, cleanup and smtpd keep their connection open), each request a
//! [`proto`] frame answered at once. Requests are cheap and never block,
//! so they are handled inline in the loop.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use ipc::Stream;
use ipc::multi::MultiServer;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use proto::rewrite::{Reply, Request};
use proto::serve::FrameClient;

use crate::settings::Settings;

/// Client tokens start here; lower ones belong to the skeleton.
const FIRST_CLIENT: usize = 1024;

/// Most bytes buffered from one client (a few frames; requests are small).
const MAX_INPUT: usize = 64 * 1024;

/// Most reply bytes kept for a client that does not read.
const MAX_OUTPUT: usize = 256 * 1024;

/// One connected client.
type Client = FrameClient<Stream>;

/// How often table files are checked for changes.
const CHANGE_CHECK: Duration = Duration::from_secs(1);

/// Serves until master goes away, max_idle passes, or the process retires
/// (max_use clients taken, or a table file changed): a retiring process
/// takes no new clients and hangs up on each client between two requests
/// (clients reconnect, to a fresh process), then exits.
pub(crate) fn run(mut server: MultiServer, settings: &Settings, probes: &Settings) -> ! {
    let Ok(mut poll) = Poll::new() else {
        maillog::fatal!("epoll: cannot create")
    };
    if let Err(e) = server.register(poll.registry(), 0) {
        maillog::fatal!("register listeners: {e}");
    }
    let mut clients: HashMap<usize, Client> = HashMap::new();
    let mut next = FIRST_CLIENT;
    let mut events = Events::with_capacity(64);
    let mut changed = false;
    let mut last_check = Instant::now();
    loop {
        if !changed && last_check.elapsed() >= CHANGE_CHECK {
            last_check = Instant::now();
            changed = settings.tables_changed() || probes.tables_changed();
        }
        let retiring = changed || !server.accepting();
        if retiring {
            clients.retain(|_, c| {
                let busy = !c.is_idle();
                if !busy {
                    let fd = c.stream.as_raw_fd();
                    let _ = poll.registry().deregister(&mut SourceFd(&fd));
                    server.client_done();
                }
                busy
            });
            if clients.is_empty() {
                std::process::exit(0);
            }
        }
        if server.should_exit() {
            std::process::exit(0);
        }
        let timeout = server
            .timeout()
            .unwrap_or(Duration::from_secs(60))
            .min(CHANGE_CHECK);
        if poll.poll(&mut events, Some(timeout)).is_err() {
            continue;
        }
        for ev in events.iter() {
            let tok = ev.token();
            if server.is_status(tok) {
                continue;
            }
            if let Some(i) = server.listener_index(tok) {
                while server.accepting() && !changed {
                    let Ok(Some(s)) = server.accept(i) else { break };
                    let fd = s.as_raw_fd();
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if poll
                        .registry()
                        .register(&mut SourceFd(&fd), Token(next), interest)
                        .is_ok()
                    {
                        clients.insert(next, FrameClient::new(s, MAX_INPUT, MAX_OUTPUT));
                        next = next.wrapping_add(1).max(FIRST_CLIENT);
                    } else {
                        server.client_done();
                    }
                }
            } else if let Some(c) = clients.get_mut(&tok.0)
                && !c.serve_ready(
                    |r: Request| handle(&r, settings, probes),
                    proto::serve::Ready::of(
                        ev.is_readable(),
                        ev.is_writable(),
                        ev.is_read_closed() || ev.is_error(),
                    ),
                )
            {
                let fd = c.stream.as_raw_fd();
                let _ = poll.registry().deregister(&mut SourceFd(&fd));
                clients.remove(&tok.0);
                server.client_done();
            }
        }
    }
}

/// Answers one request.
pub(crate) fn handle(request: &Request, s: &Settings, probes: &Settings) -> Reply {
    let (sender, address, s) = match request {
        Request::Rewrite { context, address } => {
            return Reply::Rewritten {
                address: crate::rewrite::rewrite(address, *context, s),
            };
        }
        Request::Resolve { sender, address } => (sender, address, s),
        Request::ResolveVerify { sender, address } => (sender, address, probes),
    };
    let r = crate::resolve::resolve(sender, address, s);
    Reply::Resolved {
        transport: r.transport,
        nexthop: r.nexthop,
        recipient: r.recipient,
        class: r.class,
        flags: r.flags,
        reason: r.reason,
    }
}
