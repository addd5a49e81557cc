//! The trigger server (Postfix's trigger_server.c): wake-up requests arrive
//! as a few bytes on a fifo or a short unix-socket connection; each request
//! calls the handler with the bytes read. master writes `W` to the service
//! every `wakeup` seconds; `pickup` and `qmgr` are triggered this way.
//!
//! A daemon can also ask for its own timer: the handler is then called with
//! an empty request when no trigger arrived for that long.
//!
//! [`Daemon::trigger_server_with_handover`] also takes longer conversations
//! on the same unix socket: a client whose first byte is [`HANDOVER`] is
//! handed over whole (pickup takes postdrop's messages this way), and the
//! daemon's `drain` runs before any exit, so that conversations in flight
//! can finish first.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::daemon::{Context, Daemon, Polled, exit_quietly};
use crate::listener::{Listener, Stream};
use crate::status::Status;

/// Most bytes taken from one trigger (Postfix reads 1024).
pub const TRIGGER_BUF_SIZE: usize = 1024;

/// How long a unix-socket trigger client may take to send its bytes.
const TRIGGER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The wake-up request master sends (Postfix's TRIGGER_REQ_WAKEUP).
pub const WAKEUP: u8 = b'W';

/// First byte of a unix-socket client that wants a conversation rather
/// than a wake-up (see [`Daemon::trigger_server_with_handover`]).
pub const HANDOVER: u8 = b'M';

/// A unix-socket client that opened with [`HANDOVER`].
#[derive(Debug)]
pub struct Handover {
    /// The connection, blocking, with the trigger read timeout still set.
    pub stream: UnixStream,
    /// What was read after the [`HANDOVER`] byte along with it.
    pub read_ahead: Vec<u8>,
}

/// What one listener gave.
enum Got {
    Nothing,
    Trigger,
    Handover(Handover),
}

impl Daemon {
    /// Serves triggers until max_use, max_idle, or master goes away. With
    /// `timer`, the handler also runs with an empty request when no trigger
    /// came for that long.
    pub fn trigger_server<F>(self, timer: Option<Duration>, handler: F) -> !
    where
        F: FnMut(&[u8], &Context),
    {
        self.serve_triggers(timer, handler, None::<fn(Handover, &Context)>, || {})
    }

    /// Like [`Daemon::trigger_server`], and a unix-socket client whose
    /// first byte is [`HANDOVER`] goes to `converse` (which should not
    /// block for long: a thread of its own serves it) instead of being a
    /// trigger; such clients do not count towards max_use. `drain` runs
    /// before the process exits (max_use, max_idle, master gone) and
    /// should wait for the conversations in flight.
    pub fn trigger_server_with_handover<F, C, D>(
        self,
        timer: Option<Duration>,
        handler: F,
        converse: C,
        drain: D,
    ) -> !
    where
        F: FnMut(&[u8], &Context),
        C: FnMut(Handover, &Context),
        D: Fn(),
    {
        self.serve_triggers(timer, handler, Some(converse), drain)
    }

    fn serve_triggers<F, C, D>(
        mut self,
        timer: Option<Duration>,
        mut handler: F,
        mut converse: Option<C>,
        drain: D,
    ) -> !
    where
        F: FnMut(&[u8], &Context),
        C: FnMut(Handover, &Context),
        D: Fn(),
    {
        let exit = || -> ! {
            drain();
            exit_quietly()
        };
        let mut served: u64 = 0;
        let mut idle_since = Instant::now();
        let mut last_run = Instant::now();
        loop {
            let idle = self.idle_left(idle_since);
            if idle.is_some_and(|d| d.is_zero()) {
                exit();
            }
            let tick = timer.map(|t| t.saturating_sub(last_run.elapsed()));
            let wait = match (idle, tick) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let ready = match self.poll_listeners(wait) {
                Polled::MasterGone => exit(),
                Polled::Listener(i) => Some(i),
                Polled::TimedOut | Polled::Nothing => None,
            };
            let mut request = Vec::new();
            let mut got = false;
            if let Some(i) = ready {
                match self.read_trigger(i, &mut request, converse.is_some()) {
                    Got::Nothing => {}
                    Got::Trigger => got = true,
                    Got::Handover(h) => {
                        if let Some(c) = converse.as_mut() {
                            c(h, &self.ctx);
                        }
                        idle_since = Instant::now();
                    }
                }
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
                exit();
            }
            self.notify(Status::Available);
            idle_since = Instant::now();
        }
    }

    /// Reads one trigger from listener `i` into `out`; with `handover`, a
    /// unix client opening with [`HANDOVER`] is returned instead.
    fn read_trigger(&self, i: usize, out: &mut Vec<u8>, handover: bool) -> Got {
        let mut buf = [0u8; TRIGGER_BUF_SIZE];
        let n = match self.listeners.get(i) {
            Some(Listener::Fifo(f)) => (&*f).read(&mut buf).unwrap_or(0),
            Some(l) => match l.accept() {
                Ok(Some(mut s)) => {
                    let _ = s.set_read_timeout(Some(TRIGGER_READ_TIMEOUT));
                    let n = s.read(&mut buf).unwrap_or(0);
                    if let (true, Some(&HANDOVER), Stream::Unix(stream)) =
                        (handover, buf.first(), s)
                        && n > 0
                    {
                        let read_ahead = buf.get(1..n).unwrap_or_default().to_vec();
                        return Got::Handover(Handover { stream, read_ahead });
                    }
                    n
                }
                _ => return Got::Nothing,
            },
            None => 0,
        };
        out.extend_from_slice(buf.get(..n).unwrap_or(&[]));
        if n > 0 { Got::Trigger } else { Got::Nothing }
    }
}
