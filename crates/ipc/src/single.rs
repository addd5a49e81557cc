//! The single-connection server (Postfix's single_server.c): accept one
//! client, report busy, run the handler to completion, report available,
//! repeat. Several processes share the listeners; master forks more while
//! all of them are busy.

use std::time::Instant;

use crate::daemon::{Context, Daemon, Polled, exit_quietly};
use crate::listener::{Listener, Stream};
use crate::status::Status;

/// Pause after a failed accept() before trying again.
const ACCEPT_ERROR_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

impl Daemon {
    /// Serves clients one at a time until max_use, max_idle, or master goes away.
    /// The stream is closed after the handler returns.
    pub fn single_server<F>(mut self, mut handler: F) -> !
    where
        F: FnMut(&mut Stream, &Context),
    {
        if self
            .listeners
            .iter()
            .any(|l| matches!(l, Listener::Fifo(_)))
        {
            maillog::fatal!("a fifo service needs the trigger server, not the single server");
        }
        let mut served: u64 = 0;
        let mut idle_since = Instant::now();
        loop {
            match self.wait_for_client(idle_since) {
                Polled::Listener(i) => {
                    let accepted = match self.listeners.get(i).map(|l| l.accept()) {
                        Some(Ok(Some(s))) => s,
                        Some(Ok(None)) | None => continue,
                        Some(Err(e)) => {
                            // EMFILE and friends: do not spin on a readable listener.
                            maillog::warning!("accept connection: {e}");
                            std::thread::sleep(ACCEPT_ERROR_PAUSE);
                            continue;
                        }
                    };
                    let mut stream = accepted;
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

    /// Polls the listeners and the status pipe until max_idle runs out.
    fn wait_for_client(&self, idle_since: Instant) -> Polled {
        let wait = self.idle_left(idle_since);
        if wait.is_some_and(|d| d.is_zero()) {
            return Polled::TimedOut;
        }
        self.poll_listeners(wait)
    }
}
