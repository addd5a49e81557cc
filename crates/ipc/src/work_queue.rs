//! A queue of work for a daemon's worker threads (smtpd's restriction
//! workers, qmgr's delivery threads, cleanup's client threads). Idle workers wait on a condition
//! variable and a new piece of work wakes one of them: with a channel
//! receiver behind a mutex instead, each piece also woke the next idle
//! worker to take the receiver (two more context switches each).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, PoisonError};

/// Work waiting for a worker; closed when its owner is gone.
pub struct WorkQueue<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

struct State<T> {
    work: VecDeque<T>,
    closed: bool,
    /// Workers waiting for work (woken ones count until they take it).
    idle: usize,
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
            state: Mutex::new(State {
                work: VecDeque::new(),
                closed: false,
                idle: 0,
            }),
            ready: Condvar::new(),
        }
    }
}

impl<T> WorkQueue<T> {
    /// Queues a piece of work and wakes one idle worker. True when no
    /// idle worker is left for it (more work is queued than workers
    /// wait): an owner that grows its pool on demand starts one then.
    pub fn push(&self, item: T) -> bool {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.work.push_back(item);
        let unserved = s.work.len() > s.idle;
        drop(s);
        self.ready.notify_one();
        unserved
    }

    /// The oldest piece of work, without waiting (None when there is
    /// none): for an owner that could not start a worker for it.
    pub fn try_next(&self) -> Option<T> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .work
            .pop_front()
    }

    /// Workers waiting for work now.
    pub fn idle(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .idle
    }

    /// Closes the queue: the workers finish what is queued, then
    /// [`WorkQueue::next`] gives None.
    pub fn close(&self) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = true;
        self.ready.notify_all();
    }

    /// The next piece of work, waiting for one; None once the queue is
    /// closed and empty.
    pub fn next(&self) -> Option<T> {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(item) = s.work.pop_front() {
                return Some(item);
            }
            if s.closed {
                return None;
            }
            s.idle += 1;
            s = self.ready.wait(s).unwrap_or_else(PoisonError::into_inner);
            s.idle -= 1;
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

    #[test]
    fn push_says_when_no_idle_worker_is_left() {
        let q = Arc::new(WorkQueue::default());
        assert!(q.push(1), "no worker at all");
        assert_eq!(q.try_next(), Some(1));
        // A worker that, after each piece, waits to be let go on.
        let (took, taken) = std::sync::mpsc::channel();
        let (go, gate) = std::sync::mpsc::channel::<()>();
        let worker = {
            let q = Arc::clone(&q);
            std::thread::spawn(move || {
                while let Some(i) = q.next() {
                    took.send(i).unwrap();
                    gate.recv().unwrap();
                }
            })
        };
        let wait_idle = || {
            while q.idle() == 0 {
                std::thread::yield_now();
            }
        };
        wait_idle();
        // The idle worker's; then, whether or not it has woken yet, no
        // one's.
        assert!(!q.push(2));
        assert!(q.push(3));
        assert_eq!(taken.recv().unwrap(), 2);
        go.send(()).unwrap();
        assert_eq!(taken.recv().unwrap(), 3);
        go.send(()).unwrap();
        wait_idle();
        assert!(!q.push(4));
        assert_eq!(taken.recv().unwrap(), 4);
        go.send(()).unwrap();
        q.close();
        worker.join().unwrap();
        assert_eq!(q.try_next(), None);
    }
}
