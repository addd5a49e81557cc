//! The trigger server (Postfix's trigger_server.c): wake-up requests arrive
//! as a few bytes on a fifo or a short unix-socket connection; each request
//! calls the handler with the bytes read. master writes `W` to the service
//! every `wakeup` seconds; `pickup` and `qmgr` are triggered this way.
//!
//! A daemon can also ask for its own timer: the handler is then called with
//! an empty request when no trigger arrived for that long.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::daemon::{Context, Daemon, Polled, exit_quietly};
use crate::listener::Listener;
use crate::status::Status;

/// Most bytes taken from one trigger (Postfix reads 1024).
pub const TRIGGER_BUF_SIZE: usize = 1024;

/// How long a unix-socket trigger client may take to send its bytes.
const TRIGGER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The wake-up request master sends (Postfix's TRIGGER_REQ_WAKEUP).
pub const WAKEUP: u8 = b'W';

impl Daemon {
    /// Serves triggers until max_use, max_idle, or master goes away. With
    /// `timer`, the handler also runs with an empty request when no trigger
    /// came for that long.
    pub fn trigger_server<F>(mut self, timer: Option<Duration>, mut handler: F) -> !
    where
        F: FnMut(&[u8], &Context),
    {
        let mut served: u64 = 0;
        let mut idle_since = Instant::now();
        let mut last_run = Instant::now();
        loop {
            let idle = self.idle_left(idle_since);
            if idle.is_some_and(|d| d.is_zero()) {
                exit_quietly();
            }
            let tick = timer.map(|t| t.saturating_sub(last_run.elapsed()));
            let wait = match (idle, tick) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let ready = match self.poll_listeners(wait) {
                Polled::MasterGone => exit_quietly(),
                Polled::Listener(i) => Some(i),
                Polled::TimedOut | Polled::Nothing => None,
            };
            let mut request = Vec::new();
            let mut got = false;
            if let Some(i) = ready {
                got = self.read_trigger(i, &mut request);
            } else if tick.is_some_and(|d| d.is_zero()) {
                got = true;
            }
            if !got {
                continue;
            }
            self.notify(Status::Taken);
            handler(&request, &self.ctx);
            last_run = Instant::now();
            served = served.saturating_add(1);
            if self.used_up(served) {
                exit_quietly();
            }
            self.notify(Status::Available);
            idle_since = Instant::now();
        }
    }

    /// Reads one trigger from listener `i` into `out`; false when there was none.
    fn read_trigger(&self, i: usize, out: &mut Vec<u8>) -> bool {
        let mut buf = [0u8; TRIGGER_BUF_SIZE];
        let n = match self.listeners.get(i) {
            Some(Listener::Fifo(f)) => (&*f).read(&mut buf).unwrap_or(0),
            Some(l) => match l.accept() {
                Ok(Some(mut s)) => {
                    let _ = s.set_read_timeout(Some(TRIGGER_READ_TIMEOUT));
                    s.read(&mut buf).unwrap_or(0)
                }
                _ => return false,
            },
            None => 0,
        };
        out.extend_from_slice(buf.get(..n).unwrap_or(&[]));
        n > 0
    }
}
