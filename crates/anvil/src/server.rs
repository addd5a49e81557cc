//! The event loop: many clients, one frame per request, a timer for the
//! window sweep and the status report.

use std::time::{Duration, Instant};

use ipc::Stream;
use ipc::clients::Clients;
use ipc::multi::MultiServer;
use mio::{Events, Poll};
use proto::anvil::{Reply, Request};
use proto::serve::FrameClient;

use crate::Settings;
use crate::table::{Event, Table, key};

/// Most unanswered input one client may have (several small frames).
const MAX_INPUT: usize = 16 * 1024;

/// Most unread output one client may have.
const MAX_OUTPUT: usize = 64 * 1024;

/// Most clients connected at once (smtpd processes, or their one-shot calls).
const MAX_CLIENTS: usize = 4096;

/// How often expired rate windows are swept.
const SWEEP: Duration = Duration::from_secs(1);

type Client = FrameClient<Stream>;

/// Serves until master goes away.
pub(crate) fn run(mut server: MultiServer, settings: Settings) -> ! {
    let Ok(mut poll) = Poll::new() else {
        maillog::fatal!("epoll: cannot create")
    };
    if let Err(e) = server.register(poll.registry(), 0) {
        maillog::fatal!("register listeners: {e}");
    }
    let mut table = Table::new(settings.rate_unit);
    let mut clients: Clients<Client> = Clients::new(MAX_CLIENTS);
    let mut events = Events::with_capacity(64);
    let mut last_sweep = Instant::now();
    let mut last_status = Instant::now();
    loop {
        let now = Instant::now();
        if now.duration_since(last_sweep) >= SWEEP {
            last_sweep = now;
            table.sweep(now);
        }
        if now.duration_since(last_status) >= settings.status_time {
            last_status = now;
            report(&mut table);
        }
        if server.should_exit() {
            report(&mut table);
            std::process::exit(0);
        }
        if poll.poll(&mut events, Some(SWEEP)).is_err() {
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
                    || true,
                    |s| FrameClient::new(s, MAX_INPUT, MAX_OUTPUT),
                );
            } else if let Some(c) = clients.get_mut(tok)
                && !c.serve_ready(
                    |r: Request| handle(&r, &mut table, Instant::now()),
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

fn report(table: &mut Table) {
    for line in table.status_lines() {
        maillog::info!("{line}");
    }
}

/// Answers one request.
pub(crate) fn handle(request: &Request, table: &mut Table, now: Instant) -> Reply {
    let (count, rate) = match request {
        Request::Connect { service, client } => table.connect(&key(service, client), now),
        Request::Disconnect { service, client } => table.disconnect(&key(service, client), now),
        Request::Message { service, client } => {
            table.event(&key(service, client), Event::Message, now)
        }
        Request::Auth { service, client } => table.event(&key(service, client), Event::Auth, now),
        Request::Lookup { service, client } => table.lookup(&key(service, client), now),
    };
    Reply::Counts { count, rate }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_map_to_the_table() {
        let mut t = Table::new(Duration::from_secs(60));
        let now = Instant::now();
        let c = |s: &str| Request::Connect {
            service: s.into(),
            client: "192.0.2.1".into(),
        };
        assert_eq!(
            handle(&c("smtp"), &mut t, now),
            Reply::Counts { count: 1, rate: 1 }
        );
        assert_eq!(
            handle(&c("smtp"), &mut t, now),
            Reply::Counts { count: 2, rate: 2 }
        );
        let d = Request::Disconnect {
            service: "smtp".into(),
            client: "192.0.2.1".into(),
        };
        assert_eq!(handle(&d, &mut t, now), Reply::Counts { count: 1, rate: 2 });
        let l = Request::Lookup {
            service: "smtp".into(),
            client: "192.0.2.1".into(),
        };
        assert_eq!(handle(&l, &mut t, now), Reply::Counts { count: 1, rate: 2 });
    }
}
