//! Group commit of directory fsyncs: when several threads of one process
//! (cleanup's clients) each made an entry in the same directory and each
//! must see it durable before answering, one fsync that starts after all
//! the entries were made serves them all.
//!
//! Each caller draws a ticket after its entry exists, then takes the
//! directory's lock. If an fsync that started after its ticket was drawn
//! has completed meanwhile, its entry is durable and it returns at once;
//! otherwise it fsyncs the directory itself, covering every ticket drawn
//! so far. While one fsync runs, the callers that arrive queue on the lock
//! and the next fsync covers all of them, as a database's log commit does.
//! No caller returns before an fsync that began after its entry was made
//! has succeeded, so the durability is that of one fsync per entry.

use crate::error::Error;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// One directory's state.
#[derive(Debug, Default)]
pub(crate) struct DirSync {
    /// Tickets drawn so far.
    issued: AtomicU64,
    /// The highest ticket an fsync has covered.
    synced: Mutex<u64>,
}

/// The directories this process fsyncs (few: incoming/, maildrop/).
static DIRS: Mutex<Vec<(PathBuf, Arc<DirSync>)>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state stays consistent whatever a panicking holder did: at worst
    // an fsync is repeated.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A claim on a future fsync of a directory, drawn right after an entry
/// was made in it: any fsync of that directory begun after the draw makes
/// the entry durable.
#[derive(Debug)]
pub struct Ticket {
    state: Arc<DirSync>,
    n: u64,
}

/// Draws a ticket for `dir`, where this process has just made an entry.
pub fn ticket(dir: &Path) -> Ticket {
    let state = {
        let mut dirs = lock(&DIRS);
        match dirs.iter().find(|(p, _)| p == dir) {
            Some((_, s)) => Arc::clone(s),
            None => {
                let s = Arc::new(DirSync::default());
                dirs.push((dir.to_path_buf(), Arc::clone(&s)));
                s
            }
        }
    };
    let n = state.draw();
    Ticket { state, n }
}

impl Ticket {
    /// Returns once the entry is durable: at once when an fsync of the
    /// directory begun after the ticket was drawn has succeeded (another
    /// message's, while this one was being received), else after one that
    /// this call runs or shares.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be opened or synced.
    pub fn durable(self, dir: &Path) -> Result<(), Error> {
        self.state
            .commit(self.n, || crate::ops::fsync_dir(dir))
            .map(|_| ())
    }
}

/// Makes the entries made in `dir` so far durable, sharing the fsync with
/// other threads of the process that wait for the same directory.
///
/// # Errors
/// [`Error::Io`] when the directory cannot be opened or synced.
pub fn fsync_dir_grouped(dir: &Path) -> Result<(), Error> {
    ticket(dir).durable(dir)
}

impl DirSync {
    /// A new ticket: call after the entry exists.
    fn draw(&self) -> u64 {
        self.issued.fetch_add(1, Ordering::SeqCst).saturating_add(1)
    }

    /// Runs `sync` unless an fsync begun after `ticket` was drawn already
    /// covered it; true when this call ran it.
    pub(crate) fn commit(
        &self,
        ticket: u64,
        sync: impl FnOnce() -> Result<(), Error>,
    ) -> Result<bool, Error> {
        let mut synced = lock(&self.synced);
        if *synced >= ticket {
            return Ok(false);
        }
        // Every ticket drawn up to now belongs to an entry that exists.
        let covers = self.issued.load(Ordering::SeqCst);
        sync()?;
        *synced = covers;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::time::Duration;

    #[test]
    fn callers_waiting_on_a_running_fsync_share_the_next_one() {
        let state = Arc::new(DirSync::default());
        let (started_tx, started_rx) = channel::<()>();
        let (release_tx, release_rx) = channel::<()>();
        let first = {
            let state = Arc::clone(&state);
            std::thread::spawn(move || {
                state.commit(state.draw(), || {
                    started_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    Ok(())
                })
            })
        };
        started_rx.recv().unwrap();
        let syncs = Arc::new(AtomicU64::new(0));
        let waiters: Vec<_> = (0..7)
            .map(|_| {
                let state = Arc::clone(&state);
                let syncs = Arc::clone(&syncs);
                std::thread::spawn(move || {
                    state.commit(state.draw(), || {
                        syncs.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    })
                })
            })
            .collect();
        // Let the seven draw their tickets and queue on the lock.
        while state.issued.load(Ordering::SeqCst) < 8 {
            std::thread::sleep(Duration::from_millis(5));
        }
        release_tx.send(()).unwrap();
        assert!(first.join().unwrap().unwrap());
        let ran: usize = waiters
            .into_iter()
            .map(|w| usize::from(w.join().unwrap().unwrap()))
            .sum();
        assert_eq!(ran, 1, "one fsync serves the seven that waited");
        assert_eq!(syncs.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn an_fsync_begun_before_the_entry_does_not_cover_it() {
        let state = DirSync::default();
        assert!(state.commit(state.draw(), || Ok(())).unwrap());
        // A later entry: the earlier fsync does not count for it.
        assert!(state.commit(state.draw(), || Ok(())).unwrap());
    }

    #[test]
    fn a_failed_fsync_covers_nobody() {
        let state = DirSync::default();
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let err = state.commit(state.draw(), || crate::ops::fsync_dir(&gone));
        assert!(err.is_err());
        assert!(
            state.commit(state.draw(), || Ok(())).unwrap(),
            "the next caller syncs"
        );
    }

    #[test]
    fn an_fsync_begun_after_the_draw_covers_a_ticket_drawn_earlier() {
        let state = DirSync::default();
        let early = state.draw();
        // Another message's fsync, begun after `early` was drawn.
        assert!(state.commit(state.draw(), || Ok(())).unwrap());
        assert!(!state.commit(early, || Ok(())).unwrap(), "already durable");
        // One drawn after that fsync is not covered.
        let late = state.draw();
        assert!(state.commit(late, || Ok(())).unwrap());
    }

    #[test]
    fn grouped_fsync_of_a_real_directory() {
        let dir = tempfile::tempdir().unwrap();
        fsync_dir_grouped(dir.path()).unwrap();
        assert!(fsync_dir_grouped(&dir.path().join("missing")).is_err());
    }
}
