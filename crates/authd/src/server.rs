//! The accept loop: a mio loop over master's listeners and status pipe
//! (ipc's multi-server), one thread per client connection, at most
//! `auth_client_limit` of them. A thread tells the loop it ended through a
//! channel and a mio waker, so that master's max_idle and max_use rules
//! see the right client count.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};

use ipc::Stream;
use ipc::multi::MultiServer;
use mio::{Events, Poll, Token, Waker};

use crate::conn::{Peer, Shared, serve};

const WAKER: Token = Token(0);
const FIRST_LISTENER: usize = 1;

/// run - serves until master goes away, max_use is reached or max_idle
/// passes with no client (and no finished login waits for its REQUEST);
/// then exits.
pub(crate) fn run(mut server: MultiServer, shared: Arc<Shared>) -> ! {
    let mut poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => maillog::fatal!("epoll: {e}"),
    };
    let waker = match Waker::new(poll.registry(), WAKER) {
        Ok(w) => Arc::new(w),
        Err(e) => maillog::fatal!("waker: {e}"),
    };
    if let Err(e) = server.register(poll.registry(), FIRST_LISTENER) {
        maillog::fatal!("register listeners: {e}");
    }
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let mut events = Events::with_capacity(64);
    let mut master_gone = false;
    loop {
        reap(&mut server, &done_rx);
        let mut timeout = server.timeout();
        if server.should_exit() {
            // A finished login whose REQUEST has not come yet (the login
            // process has closed its connection, the service process has
            // not yet asked) keeps the process: a new one would not know
            // it, and the login would be refused. Unless master is gone.
            let waiting = shared
                .logins
                .lock()
                .ok()
                .and_then(|mut l| l.waiting(std::time::Instant::now()));
            match waiting {
                Some(left) if !master_gone => {
                    timeout = Some(left + std::time::Duration::from_millis(10));
                }
                _ => std::process::exit(0),
            }
        }
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            maillog::fatal!("epoll wait: {e}");
        }
        for ev in &events {
            let token = ev.token();
            if token == WAKER {
                continue;
            }
            if server.is_status(token) {
                master_gone = true;
                continue;
            }
            if let Some(i) = server.listener_index(token) {
                accept_all(&mut server, i, &shared, &done_tx, &waker);
            }
        }
    }
}

/// reap - counts the connections whose threads ended.
fn reap(server: &mut MultiServer, done: &Receiver<()>) {
    while done.try_recv().is_ok() {
        server.client_done();
    }
}

/// accept_all - takes every pending client of listener `i` (mio is
/// edge-triggered) and starts a thread for each, or closes it when the
/// process is at auth_client_limit.
///
/// Unlike other multi-servers, auth goes on accepting after max_use
/// connections: its clients (smtpd processes) hold their connections for
/// their whole life, and with one auth process a refusal would leave new
/// ones waiting until every old one left. max_use only makes the process
/// exit at the first moment it has no client.
fn accept_all(
    server: &mut MultiServer,
    i: usize,
    shared: &Arc<Shared>,
    done: &Sender<()>,
    waker: &Arc<Waker>,
) {
    loop {
        let stream = match server.accept(i) {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(e) => {
                maillog::warning!("accept: {e}");
                return;
            }
        };
        // accept() counted it; the count includes this one.
        if server.clients() > shared.settings.client_limit {
            maillog::warning!(
                "too many connections ({} already): closing a new one; raise auth_client_limit",
                shared.settings.client_limit
            );
            drop(stream);
            server.client_done();
            continue;
        }
        if let Err(e) = spawn(stream, shared, done, waker) {
            maillog::warning!("cannot start a connection thread: {e}");
            server.client_done();
        }
    }
}

fn spawn(
    stream: Stream,
    shared: &Arc<Shared>,
    done: &Sender<()>,
    waker: &Arc<Waker>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    let shared = Arc::clone(shared);
    let done = done.clone();
    let waker = Arc::clone(waker);
    std::thread::Builder::new()
        .name("conn".into())
        .stack_size(512 * 1024)
        .spawn(move || {
            match stream {
                Stream::Unix(s) => {
                    let peer = peer_of(&s);
                    if let Ok(r) = s.try_clone() {
                        serve(r, s, peer, &shared);
                    }
                }
                Stream::Tcp(s) => {
                    if let Ok(r) = s.try_clone() {
                        serve(r, s, Peer::default(), &shared);
                    }
                }
            }
            let _ = done.send(());
            let _ = waker.wake();
        })?;
    Ok(())
}

/// peer_of - the pid and uid at the other end of a UNIX-domain socket.
pub(crate) fn peer_of<S: std::os::fd::AsFd>(s: &S) -> Peer {
    match nix::sys::socket::getsockopt(s, nix::sys::socket::sockopt::PeerCredentials) {
        Ok(c) => Peer {
            pid: u32::try_from(c.pid()).ok(),
            uid: Some(c.uid()),
        },
        Err(_) => Peer::default(),
    }
}
