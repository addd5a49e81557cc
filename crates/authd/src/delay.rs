//! Delayed replies: one timer thread writes each failure answer when its
//! delay is over, so that a delayed FAIL holds up neither other clients nor
//! other requests on the same connection (Dovecot's auth_failure_delay
//! works the same way).
//!
//! A connection may have at most [`MAX_OUTSTANDING`] replies waiting here;
//! beyond that its own thread sleeps out the delay itself, which slows only
//! the client that floods us.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most delayed replies one connection may have waiting.
pub(crate) const MAX_OUTSTANDING: usize = 16;

/// A connection's writing half, shared with the timer thread.
pub(crate) type Writer = Arc<Mutex<dyn Write + Send>>;

/// A connection's count of replies waiting in the timer.
pub(crate) type Outstanding = Arc<AtomicUsize>;

struct Job {
    due: Instant,
    seq: u64,
    writer: Writer,
    outstanding: Outstanding,
    line: String,
}

impl PartialEq for Job {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Job {}
impl PartialOrd for Job {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Job {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// The handle connections use to schedule replies.
#[derive(Debug, Clone)]
pub(crate) struct Delayer {
    tx: Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("due", &self.due).finish()
    }
}

impl Delayer {
    /// Starts the timer thread.
    ///
    /// # Errors
    /// The thread could not be started.
    pub(crate) fn start() -> std::io::Result<Delayer> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("delay".into())
            .spawn(move || timer(&rx))?;
        Ok(Delayer { tx })
    }

    /// Writes `line` to `writer` after `delay`: now when the delay is zero,
    /// from the timer thread when the connection has room there, else after
    /// sleeping in the calling (connection) thread.
    pub(crate) fn send(
        &self,
        delay: Duration,
        writer: &Writer,
        outstanding: &Outstanding,
        line: String,
    ) {
        if delay.is_zero() {
            write_line(writer, &line);
            return;
        }
        if outstanding.fetch_add(1, Ordering::SeqCst) >= MAX_OUTSTANDING {
            outstanding.fetch_sub(1, Ordering::SeqCst);
            std::thread::sleep(delay);
            write_line(writer, &line);
            return;
        }
        let job = Job {
            due: Instant::now() + delay,
            seq: 0,
            writer: Arc::clone(writer),
            outstanding: Arc::clone(outstanding),
            line,
        };
        if let Err(mpsc::SendError(job)) = self.tx.send(job) {
            // The timer thread is gone (cannot happen while we run): answer
            // late rather than never.
            job.outstanding.fetch_sub(1, Ordering::SeqCst);
            std::thread::sleep(delay);
            write_line(&job.writer, &job.line);
        }
    }
}

fn write_line(writer: &Writer, line: &str) {
    if let Ok(mut w) = writer.lock() {
        // A client that left does not need its answer.
        let _ = w.write_all(line.as_bytes());
    }
}

/// timer - the thread: a heap of jobs by due time.
fn timer(rx: &Receiver<Job>) {
    let mut heap: BinaryHeap<Reverse<Job>> = BinaryHeap::new();
    let mut seq: u64 = 0;
    loop {
        let now = Instant::now();
        while heap.peek().is_some_and(|Reverse(j)| j.due <= now) {
            if let Some(Reverse(job)) = heap.pop() {
                write_line(&job.writer, &job.line);
                job.outstanding.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let next = match heap.peek() {
            Some(Reverse(j)) => rx.recv_timeout(j.due.saturating_duration_since(now)),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match next {
            Ok(mut job) => {
                seq = seq.wrapping_add(1);
                job.seq = seq;
                heap.push(Reverse(job));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                if heap.is_empty() {
                    return;
                }
                // Flush what is left at its time.
                if let Some(Reverse(j)) = heap.peek() {
                    std::thread::sleep(j.due.saturating_duration_since(Instant::now()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default, Clone)]
    struct Sink(Arc<Mutex<Vec<(Instant, String)>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap()
                .push((Instant::now(), String::from_utf8_lossy(buf).into_owned()));
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn delayed_lines_come_in_due_order_without_blocking() {
        let d = Delayer::start().unwrap();
        let sink = Sink::default();
        let w: Writer = Arc::new(Mutex::new(sink.clone()));
        let out: Outstanding = Arc::default();
        let t0 = Instant::now();
        d.send(Duration::from_millis(300), &w, &out, "late\n".into());
        d.send(Duration::from_millis(100), &w, &out, "early\n".into());
        d.send(Duration::ZERO, &w, &out, "now\n".into());
        // Scheduling did not wait.
        assert!(t0.elapsed() < Duration::from_millis(100));
        assert_eq!(out.load(Ordering::SeqCst), 2);
        std::thread::sleep(Duration::from_millis(500));
        let got = sink.0.lock().unwrap().clone();
        let lines: Vec<&str> = got.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(lines, ["now\n", "early\n", "late\n"]);
        assert!(got[1].0.duration_since(t0) >= Duration::from_millis(100));
        assert!(got[2].0.duration_since(t0) >= Duration::from_millis(300));
        assert_eq!(out.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_flooding_connection_waits_itself() {
        let d = Delayer::start().unwrap();
        let sink = Sink::default();
        let w: Writer = Arc::new(Mutex::new(sink.clone()));
        let out: Outstanding = Arc::new(AtomicUsize::new(MAX_OUTSTANDING));
        let t0 = Instant::now();
        d.send(Duration::from_millis(50), &w, &out, "x\n".into());
        assert!(t0.elapsed() >= Duration::from_millis(50));
        assert_eq!(sink.0.lock().unwrap().len(), 1);
        assert_eq!(out.load(Ordering::SeqCst), MAX_OUTSTANDING);
    }
}
