//! The process: the ipc multi-server's mio loop accepts clients and hands
//! each to a thread of its own, which runs the blocking conversation
//! ([`crate::session::serve`]). A finished thread tells the loop through a
//! channel and a mio waker, so the skeleton's client count (max_use,
//! max_idle, master going away) stays right.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use ipc::Stream;
use ipc::multi::MultiServer;
use mio::{Events, Poll, Token, Waker};

use crate::settings::Settings;

/// The waker's token; the skeleton's tokens start after it.
const WAKER: Token = Token(0);
/// First token the skeleton may use.
const FIRST_SKELETON: usize = 1;
/// Most clients served at once; more wait in the listen queue.
const MAX_CLIENTS: usize = 2000;
/// Stack of a client thread: the conversation needs little.
const THREAD_STACK: usize = 512 * 1024;
/// Longest wait for a client's next frame (Postfix's ipc_timeout).
const CLIENT_TIMEOUT: Duration = proto::IPC_TIMEOUT;

/// Serves until the skeleton says to exit.
pub(crate) fn run(mut server: MultiServer, settings: Arc<Settings>) -> ! {
    let Ok(mut poll) = Poll::new() else {
        maillog::fatal!("epoll: cannot create")
    };
    let waker = match Waker::new(poll.registry(), WAKER) {
        Ok(w) => Arc::new(w),
        Err(e) => maillog::fatal!("mio waker: {e}"),
    };
    if let Err(e) = server.register(poll.registry(), FIRST_SKELETON) {
        maillog::fatal!("register listeners: {e}");
    }
    let (done_tx, done_rx) = channel::<()>();
    let mut events = Events::with_capacity(64);
    let mut retiring = false;
    loop {
        reap(&mut server, &done_rx);
        if server.should_exit() || (retiring && server.clients() == 0) {
            std::process::exit(0);
        }
        if !retiring && settings.tables_changed() {
            maillog::info!("table has changed -- restarting");
            retiring = true;
        }
        if !retiring {
            accept_all(&mut server, &settings, &done_tx, &waker);
        }
        let timeout = server.timeout().or(Some(Duration::from_secs(60)));
        if let Err(e) = poll.poll(&mut events, timeout)
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            maillog::fatal!("epoll: {e}");
        }
        for ev in events.iter() {
            // A listener event leads to accept_all at the top of the loop;
            // the status pipe marks master gone inside the skeleton.
            let _ = server.is_status(ev.token());
        }
    }
}

/// Counts finished clients.
fn reap(server: &mut MultiServer, done: &Receiver<()>) {
    while done.try_recv().is_ok() {
        server.client_done();
    }
}

/// Accepts every pending client (mio is edge-triggered) up to MAX_CLIENTS.
fn accept_all(
    server: &mut MultiServer,
    settings: &Arc<Settings>,
    done: &Sender<()>,
    waker: &Arc<Waker>,
) {
    let listeners = server.context().args.nsock.max(1);
    for i in 0..listeners {
        while server.accepting() && server.clients() < MAX_CLIENTS {
            match server.accept(i) {
                Ok(Some(stream)) => spawn(stream, settings, done, waker, server),
                Ok(None) => break,
                Err(e) => {
                    maillog::warning!("accept connection: {e}");
                    break;
                }
            }
        }
    }
}

/// Tells the loop that a client thread ended, when dropped.
struct Done {
    done: Sender<()>,
    waker: Arc<Waker>,
}

impl Drop for Done {
    fn drop(&mut self) {
        let _ = self.done.send(());
        let _ = self.waker.wake();
    }
}

/// Starts the thread that serves one client.
fn spawn(
    mut stream: Stream,
    settings: &Arc<Settings>,
    done: &Sender<()>,
    waker: &Arc<Waker>,
    server: &mut MultiServer,
) {
    let settings = Arc::clone(settings);
    let done = done.clone();
    let waker = Arc::clone(waker);
    let started = std::thread::Builder::new()
        .name("client".into())
        .stack_size(THREAD_STACK)
        .spawn(move || {
            // Reports the end even if the conversation panics (a bug).
            let _done = Done { done, waker };
            let ready = stream
                .set_nonblocking(false)
                .and_then(|()| stream.set_read_timeout(Some(CLIENT_TIMEOUT)));
            if ready.is_ok() {
                crate::session::serve(&mut stream, &settings);
            }
        });
    if let Err(e) = started {
        maillog::warning!("cannot start client thread: {e}");
        server.client_done();
    }
}
