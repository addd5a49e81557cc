//! The single-connection server (Postfix's single_server.c): accept one
//! client, report busy, run the handler to completion, report available,
//! repeat. Several processes share the listeners; master forks more while
//! all of them are busy.

use std::time::Instant;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::daemon::{Context, Daemon, exit_quietly};
use crate::listener::{Listener, Stream};
use crate::status::Status;

/// Pause after a failed accept() before trying again.
const ACCEPT_ERROR_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// What one poll round found.
enum Ready {
    /// Listener index with a pending client.
    Listener(usize),
    /// max_idle passed with no client.
    Idle,
    /// The status pipe broke: master is gone or retired this process.
    MasterGone,
    /// Nothing to do (EINTR, or a race).
    Nothing,
}

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
                Ready::Listener(i) => {
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
                Ready::Idle | Ready::MasterGone => exit_quietly(),
                Ready::Nothing => {}
            }
        }
    }

    /// Polls the listeners and the status pipe.
    fn wait_for_client(&self, idle_since: Instant) -> Ready {
        let timeout = match self.idle_left(idle_since) {
            Some(d) if d.is_zero() => return Ready::Idle,
            Some(d) => PollTimeout::try_from(d).unwrap_or(PollTimeout::MAX),
            None => PollTimeout::NONE,
        };
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(self.listeners.len() + 1);
        if let Some(s) = &self.status {
            // No events asked: POLLERR/POLLHUP still arrive when the read end closes.
            fds.push(PollFd::new(s.fd(), PollFlags::empty()));
        }
        let base = fds.len();
        for l in &self.listeners {
            fds.push(PollFd::new(std::os::fd::AsFd::as_fd(l), PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(0) => return Ready::Idle,
            Ok(_) => {}
            Err(_) => return Ready::Nothing,
        }
        let broken = PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL;
        if base == 1
            && fds
                .first()
                .and_then(|f| f.revents())
                .is_some_and(|r| r.intersects(broken))
        {
            return Ready::MasterGone;
        }
        for (i, f) in fds.iter().enumerate().skip(base) {
            if f.revents().is_some_and(|r| r.intersects(PollFlags::POLLIN)) {
                return Ready::Listener(i - base);
            }
        }
        Ready::Nothing
    }
}
