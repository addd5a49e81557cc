//! A queue of work for a daemon's worker threads (smtpd's restriction
//! workers, qmgr's delivery threads). Idle workers wait on a condition
//! variable and a new piece of work wakes one of them: with a channel
//! receiver behind a mutex instead, each piece also woke the next idle
//! worker to take the receiver (two more context switches each).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, PoisonError};

/// Work waiting for a worker; closed when its owner is gone.
pub struct WorkQueue<T> {
    /// The work, and whether the queue is closed.
    work: Mutex<(VecDeque<T>, bool)>,
    ready: Condvar,
}

impl<T> std::fmt::Debug for WorkQueue<T> {
    /// The work itself need not be printable (boxed closures).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkQueue")
    }
}

impl<T> Default for WorkQueue<T> {
    fn default() -> Self {
        WorkQueue {
            work: Mutex::new((VecDeque::new(), false)),
            ready: Condvar::new(),
        }
    }
}

impl<T> WorkQueue<T> {
    /// Queues a piece of work and wakes one idle worker.
    pub fn push(&self, item: T) {
        self.work
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .push_back(item);
        self.ready.notify_one();
    }

    /// Closes the queue: the workers finish what is queued, then
    /// [`WorkQueue::next`] gives None.
    pub fn close(&self) {
        self.work.lock().unwrap_or_else(PoisonError::into_inner).1 = true;
        self.ready.notify_all();
    }

    /// The next piece of work, waiting for one; None once the queue is
    /// closed and empty.
    pub fn next(&self) -> Option<T> {
        let mut q = self.work.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(item) = q.0.pop_front() {
                return Some(item);
            }
            if q.1 {
                return None;
            }
            q = self.ready.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn workers_take_everything_queued_then_end_when_closed() {
        let q = Arc::new(WorkQueue::default());
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let q = Arc::clone(&q);
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    while let Some(i) = q.next() {
                        got.push(i);
                    }
                    got
                })
            })
            .collect();
        for i in 0..100 {
            q.push(i);
        }
        q.close();
        let mut all: Vec<i32> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|_| panic!("worker panicked")))
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(q.next(), None, "closed and empty");
    }
}
