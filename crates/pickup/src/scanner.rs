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
}

#[derive(Debug, Default)]
struct State {
    requested: bool,
    running: bool,
}

impl Scanner {
    /// A scanner for `pickup` with its thread started. A thread that
    /// cannot be started at all is fatal, as any resource shortage at a
    /// daemon's start: master starts pickup again later.
    pub(crate) fn start(pickup: Arc<Pickup>) -> Arc<Scanner> {
        let scanner = Arc::new(Scanner {
            pickup,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let worker = Arc::clone(&scanner);
        if let Err(e) = std::thread::Builder::new()
            .name("scan".into())
            .spawn(move || worker.run())
        {
            maillog::fatal!("cannot start the scan thread: {e}");
        }
        scanner
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks for a scan of maildrop/.
    pub(crate) fn request(&self) {
        self.state().requested = true;
        self.changed.notify_all();
    }

    /// Waits (up to `limit`) until no scan runs or is asked for.
    pub(crate) fn wait_idle(&self, limit: Duration) {
        let st = self.state();
        let _ = self
            .changed
            .wait_timeout_while(st, limit, |st| st.running || st.requested);
    }

    fn run(&self) {
        loop {
            let mut st = self
                .changed
                .wait_while(self.state(), |st| !st.requested)
                .unwrap_or_else(PoisonError::into_inner);
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
        // Something a scan does: a postdrop temporary left for two days
        // is removed.
        let stale = q.path().join("maildrop/.tmp.1.1");
        let f = std::fs::File::create(&stale).unwrap();
        let two_days = std::time::SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
        f.set_modified(two_days).unwrap();
        let scanner = Scanner::start(Arc::new(Pickup::new(q.path(), 0)));
        scanner.request();
        scanner.wait_idle(Duration::from_secs(10));
        assert!(!stale.exists(), "no scan ran");
        let st = scanner.state();
        assert!(!st.requested && !st.running, "{st:?}");
    }
}
