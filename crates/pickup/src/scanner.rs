//! The maildrop scan on a thread of its own: a wake-up asks for a scan
//! and returns at once, so that postdrop's hand-overs are taken while a
//! long scan (a backlog after cleanup was down) runs. Wake-ups that come
//! during a scan make one more scan after it.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::scan::Pickup;

/// Asks for scans and runs them, one at a time.
#[derive(Debug)]
pub(crate) struct Scanner {
    pickup: Arc<Pickup>,
    state: Mutex<State>,
    changed: Condvar,
    /// False when the thread could not be started: scans run in the caller.
    threaded: bool,
}

#[derive(Debug, Default)]
struct State {
    requested: bool,
    running: bool,
}

impl Scanner {
    /// A scanner for `pickup` with its thread started.
    pub(crate) fn start(pickup: Arc<Pickup>) -> Arc<Scanner> {
        let mut scanner = Arc::new(Scanner {
            pickup,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            threaded: true,
        });
        let worker = Arc::clone(&scanner);
        let spawned = std::thread::Builder::new()
            .name("scan".into())
            .spawn(move || worker.run());
        if let Err(e) = spawned {
            maillog::warning!("scan thread: {e}; scanning in the main thread");
            if let Some(s) = Arc::get_mut(&mut scanner) {
                s.threaded = false;
            }
        }
        scanner
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks for a scan of maildrop/ (at once when there is no thread).
    pub(crate) fn request(&self) {
        if !self.threaded {
            self.pickup.scan();
            return;
        }
        self.state().requested = true;
        self.changed.notify_all();
    }

    /// Waits (up to `limit`) until no scan runs or is asked for.
    pub(crate) fn wait_idle(&self, limit: Duration) {
        if !self.threaded {
            return;
        }
        let st = self.state();
        let _ = self
            .changed
            .wait_timeout_while(st, limit, |st| st.running || st.requested);
    }

    fn run(&self) {
        loop {
            let mut st = self.state();
            while !st.requested {
                st = self
                    .changed
                    .wait(st)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            st.requested = false;
            st.running = true;
            drop(st);
            self.pickup.scan();
            self.state().running = false;
            self.changed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_scanned_and_waited_for() {
        let q = tempfile::tempdir().unwrap();
        queue::layout::create_or_repair(q.path(), None, None).unwrap();
        let pickup = Arc::new(Pickup::new(q.path(), 0));
        let scanner = Scanner::start(pickup);
        scanner.request();
        scanner.wait_idle(Duration::from_secs(10));
        let st = scanner.state();
        assert!(!st.requested && !st.running, "{st:?}");
    }
}
