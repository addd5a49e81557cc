//! The process: the ipc multi-server's mio loop accepts clients and hands
//! each to a pooled thread, which runs the blocking conversation
//! ([`crate::session::serve`]). A thread that finished a client waits for
//! the next one instead of exiting, so a steady load starts no threads; a
//! new thread starts only when every existing one is busy (at most
//! MAX_CLIENTS). A finished client is reported to the loop through a
//! channel and a mio waker, so the skeleton's client count (max_use,
//! max_idle, master going away) stays right.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use ipc::Stream;
use ipc::multi::MultiServer;
use ipc::work_queue::WorkQueue;
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
/// Read buffer of a conversation: a 2 KB message's envelope, or its
/// content and End, arrive in one read.
const READ_BUFFER: usize = 4 * 1024;
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
    let mut pool = Pool::new(done_tx, Arc::clone(&waker), Arc::clone(&settings));
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
            accept_all(&mut server, &mut pool);
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
fn accept_all(server: &mut MultiServer, pool: &mut Pool) {
    let listeners = server.context().args.nsock.max(1);
    for i in 0..listeners {
        while server.accepting() && server.clients() < MAX_CLIENTS {
            match server.accept(i) {
                Ok(Some(stream)) => {
                    if !pool.dispatch(stream) {
                        server.client_done();
                    }
                }
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

/// The client threads: idle ones wait on a shared queue of streams
/// ([`WorkQueue`]: a stream wakes one of them, and only it).
struct Pool {
    queue: Arc<WorkQueue<Stream>>,
    done: Sender<()>,
    waker: Arc<Waker>,
    settings: Arc<Settings>,
    /// Threads alive now (one whose conversation panicked has ended).
    alive: Arc<AtomicUsize>,
}

impl Pool {
    fn new(done: Sender<()>, waker: Arc<Waker>, settings: Arc<Settings>) -> Pool {
        Pool {
            queue: Arc::new(WorkQueue::default()),
            done,
            waker,
            settings,
            alive: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Hands the client to an idle thread, or to a new one when none is
    /// idle. False when no thread could take it (the client is dropped).
    fn dispatch(&mut self, stream: Stream) -> bool {
        if !self.queue.push(stream) || self.spawn() {
            return true;
        }
        // No new thread: a busy one takes the client when it is done,
        // unless there is none at all.
        if self.alive.load(Ordering::Acquire) > 0 {
            return true;
        }
        drop(self.queue.try_next());
        false
    }

    /// Starts a thread that serves what the queue brings.
    fn spawn(&mut self) -> bool {
        self.alive.fetch_add(1, Ordering::AcqRel);
        let worker = Worker {
            queue: Arc::clone(&self.queue),
            done: self.done.clone(),
            waker: Arc::clone(&self.waker),
            settings: Arc::clone(&self.settings),
            _alive: Alive(Arc::clone(&self.alive)),
        };
        let started = std::thread::Builder::new()
            .name("client".into())
            .stack_size(THREAD_STACK)
            .spawn(move || worker.run());
        if let Err(e) = started {
            // The closure, and with it the worker's count, is dropped.
            maillog::warning!("cannot start client thread: {e}");
            return false;
        }
        true
    }
}

/// One pooled thread's share of the pool.
struct Worker {
    queue: Arc<WorkQueue<Stream>>,
    done: Sender<()>,
    waker: Arc<Waker>,
    settings: Arc<Settings>,
    /// Counts this thread among the living until it ends.
    _alive: Alive,
}

/// One count of [`Pool::alive`], given back when dropped.
struct Alive(Arc<AtomicUsize>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Worker {
    /// Serves clients until the queue is gone (the process exits first).
    fn run(self) {
        while let Some(stream) = self.queue.next() {
            self.serve_one(stream);
        }
    }

    /// Serves one client and reports it done, even if the conversation
    /// panics (a bug: the thread then ends, the pool starts another).
    fn serve_one(&self, mut stream: Stream) {
        let _done = Done {
            done: self.done.clone(),
            waker: Arc::clone(&self.waker),
        };
        let ready = stream
            .set_nonblocking(false)
            .and_then(|()| stream.set_read_timeout(Some(CLIENT_TIMEOUT)));
        if ready.is_ok() {
            // smtpd and pickup send the envelope and then the content in
            // a few writes of several frames each: a buffer takes each
            // write with one read.
            let mut stream = proto::Buffered::new(&mut stream, READ_BUFFER);
            crate::session::serve(&mut stream, &self.settings);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_finished_thread_serves_the_next_client() {
        let poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).unwrap());
        let settings = Arc::new(crate::settings::tests::settings(""));
        let (done_tx, done_rx) = channel::<()>();
        let mut pool = Pool::new(done_tx, waker, settings);
        let wait_idle = |pool: &Pool| {
            for _ in 0..500 {
                if pool.queue.idle() == 1 {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("the thread did not go back to the pool");
        };
        for _ in 0..3 {
            // A client that hangs up at once: the conversation ends at EOF.
            let (ours, theirs) = UnixStream::pair().unwrap();
            drop(theirs);
            assert!(pool.dispatch(Stream::Unix(ours)));
            done_rx.recv_timeout(Duration::from_secs(5)).unwrap();
            wait_idle(&pool);
        }
        assert_eq!(
            pool.alive.load(Ordering::Acquire),
            1,
            "one thread served all three clients"
        );
        // A thread that ends (here: the queue closes; in life: a
        // conversation that panicked) no longer counts as one that will
        // take a queued client.
        pool.queue.close();
        for _ in 0..500 {
            if pool.alive.load(Ordering::Acquire) == 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the ended thread still counts as alive");
    }
}
