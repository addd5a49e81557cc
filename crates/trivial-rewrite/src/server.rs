//! The event loop: one process serves every client at once (clients such
//! as qmgr, cleanup and smtpd keep their connection open), each request a
//! [`proto`] frame answered at once. Requests are cheap and never block,
//! so they are handled inline in the loop.

use std::time::{Duration, Instant};

use ipc::Stream;
use ipc::clients::Clients;
use ipc::multi::MultiServer;
use mio::{Events, Poll};
use proto::rewrite::{Reply, Request};
use proto::serve::FrameClient;

use crate::settings::Settings;

/// Most clients connected at once (every smtpd, cleanup and qmgr process).
const MAX_CLIENTS: usize = 4096;

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
    let mut clients: Clients<Client> = Clients::new(MAX_CLIENTS);
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
            clients.retain(poll.registry(), &mut server, |c| !c.is_idle());
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
                clients.accept(
                    &mut server,
                    poll.registry(),
                    i,
                    || !changed,
                    |s| FrameClient::new(s, MAX_INPUT, MAX_OUTPUT),
                );
            } else if let Some(c) = clients.get_mut(tok)
                && !c.serve_ready(
                    |r: Request| handle(&r, settings, probes),
                    proto::serve::Ready::of(
                        ev.is_readable(),
                        ev.is_writable(),
                        ev.is_read_closed() || ev.is_error(),
                    ),
                )
            {
                clients.hang_up(tok, poll.registry(), &mut server);
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
