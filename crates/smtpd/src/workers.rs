//! A small pool of worker threads for the blocking work the event loop
//! must not do: restriction checks (table lookups, trivial-rewrite, DNS),
//! anvil, SASL, VRFY. A job runs on some worker; its answer comes back on
//! a channel, and a [`mio::Waker`] wakes the loop to collect it.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use ipc::work_queue::WorkQueue;

use mio::Waker;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The receiving end of a pool's answers: `(key, answer)`.
pub type Answers<T> = Receiver<(u64, T)>;

/// The pool; jobs answer with `(key, T)`.
#[derive(Debug)]
pub struct Pool<T> {
    queue: Arc<WorkQueue<Job>>,
    answers: Sender<(u64, T)>,
    waker: Arc<Waker>,
}

impl<T: Send + 'static> Pool<T> {
    /// Starts `threads` workers (at least one); returns the pool and the
    /// receiving end of the answers.
    ///
    /// # Errors
    /// A thread could not be started.
    pub fn new(threads: usize, waker: Arc<Waker>) -> std::io::Result<(Pool<T>, Answers<T>)> {
        let queue: Arc<WorkQueue<Job>> = Arc::new(WorkQueue::default());
        for i in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("worker{i}"))
                .stack_size(256 * 1024)
                .spawn(move || {
                    while let Some(job) = queue.next() {
                        job();
                    }
                })?;
        }
        let (answers, answers_rx) = channel();
        Ok((
            Pool {
                queue,
                answers,
                waker,
            },
            answers_rx,
        ))
    }

    /// Runs `f` on a worker; its result comes back tagged with `key`.
    pub fn run(&self, key: u64, f: impl FnOnce() -> T + Send + 'static) {
        let answers = self.answers.clone();
        let waker = Arc::clone(&self.waker);
        let job: Job = Box::new(move || {
            let out = f();
            if answers.send((key, out)).is_ok() {
                let _ = waker.wake();
            }
        });
        self.queue.push(job);
    }
}

impl<T> Drop for Pool<T> {
    /// The workers finish the jobs queued, then end.
    fn drop(&mut self) {
        self.queue.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll, Token};
    use std::time::Duration;

    #[test]
    fn answers_come_back_and_wake_the_loop() {
        let mut poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(7)).unwrap());
        let (pool, rx) = Pool::<u32>::new(2, waker).unwrap();
        for i in 0..10u64 {
            pool.run(i, move || u32::try_from(i * 2).unwrap());
        }
        let mut got = Vec::new();
        let mut events = Events::with_capacity(4);
        while got.len() < 10 {
            poll.poll(&mut events, Some(Duration::from_secs(5)))
                .unwrap();
            while let Ok(a) = rx.try_recv() {
                got.push(a);
            }
        }
        got.sort();
        assert_eq!(got[3], (3, 6));
    }
}
