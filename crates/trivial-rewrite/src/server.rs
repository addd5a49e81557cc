//! The event loop: one process serves every client at once (clients such
//! as qmgr, cleanup and smtpd keep their connection open), each request a
//! [`proto`] frame answered at once. Requests are cheap and never block,
//! so they are handled inline in the loop.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use ipc::Stream;
use ipc::multi::MultiServer;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use proto::rewrite::{Reply, Request};

use crate::settings::Settings;

/// Client tokens start here; lower ones belong to the skeleton.
const FIRST_CLIENT: usize = 1024;

/// Most bytes buffered from one client (a few frames; requests are small).
const MAX_INPUT: usize = 64 * 1024;

/// Most reply bytes kept for a client that does not read.
const MAX_OUTPUT: usize = 256 * 1024;

/// One connected client.
struct Client {
    stream: Stream,
    input: Vec<u8>,
    output: Vec<u8>,
}

/// How often table files are checked for changes.
const CHANGE_CHECK: Duration = Duration::from_secs(1);

/// Serves until master goes away, max_idle passes, or the process retires
/// (max_use clients taken, or a table file changed): a retiring process
/// takes no new clients and hangs up on each client between two requests
/// (clients reconnect, to a fresh process), then exits.
pub(crate) fn run(mut server: MultiServer, settings: &Settings) -> ! {
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
            changed = settings.tables_changed();
        }
        let retiring = changed || !server.accepting();
        if retiring {
            clients.retain(|_, c| {
                let busy = !c.input.is_empty() || !c.output.is_empty();
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
                        clients.insert(
                            next,
                            Client {
                                stream: s,
                                input: Vec::new(),
                                output: Vec::new(),
                            },
                        );
                        next = next.wrapping_add(1).max(FIRST_CLIENT);
                    } else {
                        server.client_done();
                    }
                }
            } else if let Some(c) = clients.get_mut(&tok.0)
                && !serve(c, settings)
            {
                let fd = c.stream.as_raw_fd();
                let _ = poll.registry().deregister(&mut SourceFd(&fd));
                clients.remove(&tok.0);
                server.client_done();
            }
        }
    }
}

/// Reads what is there, answers complete requests, writes what it can;
/// false when the client is gone or misbehaved.
fn serve(c: &mut Client, s: &Settings) -> bool {
    if !flush(c) {
        return false;
    }
    let mut buf = [0u8; 8192];
    loop {
        match c.stream.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                c.input.extend_from_slice(buf.get(..n).unwrap_or(&[]));
                if !answer_frames(c, s) {
                    return false;
                }
                if c.input.len() > MAX_INPUT || c.output.len() > MAX_OUTPUT {
                    maillog::warning!("client sends too much or reads too little: disconnecting");
                    return false;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    flush(c)
}

/// Answers every complete frame in the input buffer.
fn answer_frames(c: &mut Client, s: &Settings) -> bool {
    loop {
        let Some(len) = c
            .input
            .first_chunk::<4>()
            .map(|b| u32::from_be_bytes(*b) as usize)
        else {
            return true;
        };
        if len > proto::MAX_FRAME.min(MAX_INPUT) {
            maillog::warning!("request of {len} bytes: disconnecting");
            return false;
        }
        let total = len + 4;
        if c.input.len() < total {
            return true;
        }
        let request: Result<Request, proto::Error> =
            proto::recv(&mut c.input.get(..total).unwrap_or(&[]));
        c.input.drain(..total);
        let reply = match request {
            Ok(r) => handle(&r, s),
            Err(e) => {
                maillog::warning!("malformed request: {e}");
                return false;
            }
        };
        if proto::send(&mut c.output, &reply).is_err() {
            return false;
        }
    }
}

/// Answers one request.
pub(crate) fn handle(request: &Request, s: &Settings) -> Reply {
    match request {
        Request::Rewrite { context, address } => Reply::Rewritten {
            address: crate::rewrite::rewrite(address, *context, s),
        },
        Request::Resolve { sender, address } => {
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
    }
}

/// Writes pending output; false when the client is gone.
fn flush(c: &mut Client) -> bool {
    while !c.output.is_empty() {
        match c.stream.write(&c.output) {
            Ok(0) => return false,
            Ok(n) => {
                c.output.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}
