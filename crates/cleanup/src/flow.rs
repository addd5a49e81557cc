//! in_flow_delay: a new message waits while the incoming queue backs up.
//!
//! Postfix's qmgr puts one token into a pipe for each message it takes from
//! incoming/ (and refills the pipe to the process limit when idle); smtpd,
//! cleanup and pickup take a token per new client and, finding none, pause
//! in_flow_delay before going on. The effect: when messages arrive faster
//! than qmgr takes them in, more than default_process_limit messages ahead,
//! each new one waits up to in_flow_delay.
//!
//! Here there is no token pipe. cleanup, which every new message passes
//! (smtpd, pickup, sendmail -bs; not bounce notices), looks at the backlog
//! itself: the files in incoming/ that are not messages this process is
//! still receiving. When that exceeds default_process_limit, a new message
//! waits, rechecking every [`RECHECK`], until the backlog is back under the
//! limit or in_flow_delay has passed, then goes on as Postfix's does. The
//! normal path pays one mutex and a clock read: the directory is read at
//! most once per [`RECHECK`] per process (stopping after limit + 1
//! entries), and only when in_flow_delay is not zero.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long one look at incoming/ is trusted, and the step of a pause.
pub(crate) const RECHECK: Duration = Duration::from_millis(100);

/// The incoming-queue backlog check shared by a cleanup process's clients.
#[derive(Debug)]
pub(crate) struct Flow {
    /// in_flow_delay; zero turns the check off.
    delay: Duration,
    /// default_process_limit: the backlog allowed before new mail waits.
    limit: usize,
    /// Messages this process is receiving (their files are in incoming/).
    in_flight: AtomicUsize,
    /// The last look: when, and whether the queue was backing up.
    last: Mutex<Option<(Instant, bool)>>,
}

/// Counts a message as being received until dropped.
pub(crate) struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Flow {
    /// A check with this in_flow_delay and backlog limit.
    pub(crate) fn new(delay: Duration, limit: usize) -> Flow {
        Flow {
            delay,
            limit: limit.max(1),
            in_flight: AtomicUsize::new(0),
            last: Mutex::new(None),
        }
    }

    /// Marks a message as being received (its file is in incoming/ but is
    /// no backlog) until the guard is dropped.
    pub(crate) fn receiving(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    /// Waits, up to in_flow_delay, while incoming/ under `queue_dir` backs
    /// up; returns how long it waited.
    pub(crate) fn pause(&self, queue_dir: &Path) -> Duration {
        if self.delay.is_zero() || !self.backing_up(queue_dir, false) {
            return Duration::ZERO;
        }
        let start = Instant::now();
        let deadline = start + self.delay;
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            std::thread::sleep(RECHECK.min(deadline - now));
            if !self.backing_up(queue_dir, true) {
                break;
            }
        }
        start.elapsed()
    }

    /// Whether more than the limit of messages wait in incoming/, from the
    /// last look when it is recent and `fresh` is not asked.
    fn backing_up(&self, queue_dir: &Path, fresh: bool) -> bool {
        let now = Instant::now();
        if !fresh
            && let Ok(last) = self.last.lock()
            && let Some((at, answer)) = *last
            && now.duration_since(at) < RECHECK
        {
            return answer;
        }
        let mine = self.in_flight.load(Ordering::Relaxed);
        let wanted = self.limit.saturating_add(mine).saturating_add(1);
        let count = match std::fs::read_dir(queue_dir.join("incoming")) {
            Ok(dir) => dir.take(wanted).count(),
            Err(_) => 0,
        };
        let answer = count.saturating_sub(mine) > self.limit;
        if let Ok(mut last) = self.last.lock() {
            *last = Some((now, answer));
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming_with(files: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("incoming")).unwrap();
        for n in 0..files {
            std::fs::write(dir.path().join("incoming").join(format!("F{n}")), "").unwrap();
        }
        dir
    }

    #[test]
    fn no_pause_while_the_queue_keeps_up() {
        let dir = incoming_with(5);
        let flow = Flow::new(Duration::from_secs(5), 5);
        assert_eq!(flow.pause(dir.path()), Duration::ZERO);
        // Messages still being received are no backlog.
        let dir = incoming_with(8);
        let _a = flow.receiving();
        let _b = flow.receiving();
        let _c = flow.receiving();
        assert_eq!(flow.pause(dir.path()), Duration::ZERO);
    }

    #[test]
    fn pause_is_bounded_by_in_flow_delay() {
        let dir = incoming_with(6);
        let flow = Flow::new(Duration::from_millis(350), 5);
        let waited = flow.pause(dir.path());
        assert!(waited >= Duration::from_millis(350), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        // Zero turns it off.
        let off = Flow::new(Duration::ZERO, 5);
        assert_eq!(off.pause(dir.path()), Duration::ZERO);
    }

    #[test]
    fn pause_ends_when_the_backlog_drains() {
        let dir = incoming_with(6);
        let flow = Flow::new(Duration::from_secs(10), 5);
        let path = dir.path().to_path_buf();
        let drain = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(250));
            std::fs::remove_file(path.join("incoming").join("F0")).unwrap();
        });
        let waited = flow.pause(dir.path());
        drain.join().unwrap();
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
    }
}
