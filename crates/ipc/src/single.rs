//! The single-connection server (Postfix's single_server.c): accept one
//! client, report busy, run the handler to completion, report available,
//! repeat. Several processes share the listeners; master forks more while
//! all of them are busy. [`Daemon::request_server`] is the same for a
//! service whose client may send several requests on one connection
//! (qmgr to the delivery agents): max_use then counts requests.

use std::time::Instant;

use crate::daemon::{Context, Daemon, Polled, exit_quietly};
use crate::listener::{Listener, Stream};
use crate::status::Status;

/// Where a request stands on its connection and in the process's life
/// ([`Daemon::request_server`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Turn {
    /// The connection's first request.
    pub first: bool,
    /// Its second request.
    pub second: bool,
    /// The last request this process serves (max_use): it exits after it.
    pub last: bool,
}

/// Pause after a failed accept() before trying again.
const ACCEPT_ERROR_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

impl Daemon {
    /// A fifo listener is the trigger server's: fatal here.
    fn refuse_fifo(&self) {
        if self
            .listeners
            .iter()
            .any(|l| matches!(l, Listener::Fifo(_)))
        {
            maillog::fatal!("a fifo service needs the trigger server, not the single server");
        }
    }

    /// A client from listener `i`, or None (another process took it, or
    /// accept failed: logged, and after a pause, so that EMFILE and the
    /// like do not spin on a readable listener).
    fn accept_at(&self, i: usize) -> Option<Stream> {
        match self.listeners.get(i).map(|l| l.accept()) {
            Some(Ok(Some(s))) => Some(s),
            Some(Ok(None)) | None => None,
            Some(Err(e)) => {
                maillog::warning!("accept connection: {e}");
                std::thread::sleep(ACCEPT_ERROR_PAUSE);
                None
            }
        }
    }

    /// Serves clients one at a time until max_use, max_idle, or master goes away.
    /// The stream is closed after the handler returns.
    pub fn single_server<F>(mut self, mut handler: F) -> !
    where
        F: FnMut(&mut Stream, &Context),
    {
        self.refuse_fifo();
        let mut served: u64 = 0;
        let mut idle_since = Instant::now();
        loop {
            match self.wait_for_client(idle_since) {
                Polled::Listener(i) => {
                    let Some(mut stream) = self.accept_at(i) else {
                        continue;
                    };
                    self.notify(Status::Taken);
                    handler(&mut stream, &self.ctx);
                    drop(stream);
                    served = served.saturating_add(1);
                    if self.used_up(served) {
                        exit_quietly();
                    }
                    self.notify(Status::Available);
                    idle_since = Instant::now();
                }
                Polled::TimedOut | Polled::MasterGone => exit_quietly(),
                Polled::Nothing => {}
            }
        }
    }

    /// Like [`Daemon::single_server`], but a connection may carry several
    /// requests. `handler` serves one request and returns `None` when
    /// there was none (the client closed or stayed idle), else whether the
    /// connection stays open for another. Its [`Turn`] says whether the
    /// request is the connection's first and whether it is the last this
    /// process serves (max_use counts requests), so that the handler can
    /// tell the client not to send more; the process exits after it.
    pub fn request_server<F>(mut self, mut handler: F) -> !
    where
        F: FnMut(&mut Stream, &Context, Turn) -> Option<bool>,
    {
        self.refuse_fifo();
        let mut served: u64 = 0;
        let mut idle_since = Instant::now();
        loop {
            match self.wait_for_client(idle_since) {
                Polled::Listener(i) => {
                    let Some(mut stream) = self.accept_at(i) else {
                        continue;
                    };
                    self.notify(Status::Taken);
                    let mut n: u64 = 0;
                    loop {
                        let last = self.used_up(served.saturating_add(1));
                        let turn = Turn {
                            first: n == 0,
                            second: n == 1,
                            last,
                        };
                        n = n.saturating_add(1);
                        match handler(&mut stream, &self.ctx, turn) {
                            None => break,
                            Some(more) => {
                                served = served.saturating_add(1);
                                if last || !more {
                                    break;
                                }
                            }
                        }
                    }
                    drop(stream);
                    if self.used_up(served) {
                        exit_quietly();
                    }
                    self.notify(Status::Available);
                    idle_since = Instant::now();
                }
                Polled::TimedOut | Polled::MasterGone => exit_quietly(),
                Polled::Nothing => {}
            }
        }
    }

    /// Polls the listeners and the status pipe until max_idle runs out.
    fn wait_for_client(&self, idle_since: Instant) -> Polled {
        let wait = self.idle_left(idle_since);
        if wait.is_some_and(|d| d.is_zero()) {
            return Polled::TimedOut;
        }
        self.poll_listeners(wait)
    }
}
