//! Queue names and queue file paths.
//!
//! [`Queue`] is the closed set of queue directories that hold per-message
//! files; [`Queue::parse`] is the one validator for a queue name from
//! outside. [`queue_path`] is the one place that decides where a message's
//! file lives, including the hashed subdirectory for the queues that
//! spool-layout/ marks hashed, so callers never build queue paths by hand.

use crate::error::{Error, printable};
use crate::id::QueueId;
use std::fmt;
use std::path::{Path, PathBuf};

/// A queue directory that holds files named by queue id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Queue {
    /// maildrop/: files dropped by postdrop, picked up by pickup.
    Maildrop,
    /// incoming/: new queue files written by cleanup.
    Incoming,
    /// active/: messages qmgr is delivering.
    Active,
    /// deferred/: messages waiting for a retry.
    Deferred,
    /// hold/: messages put on hold by the administrator or a table.
    Hold,
    /// corrupt/: damaged queue files, kept for inspection.
    Corrupt,
    /// bounce/: per-message logs of failed recipients.
    Bounce,
    /// defer/: per-message logs of deferred recipients.
    Defer,
    /// trace/: per-message delivery reports (DSN SUCCESS, sendmail -v).
    Trace,
    /// flush/: per-destination logs for `postqueue -s`.
    Flush,
    /// saved/: copies kept by `postsuper` and quarantine.
    Saved,
}

impl Queue {
    /// Every queue, in spool-layout order.
    pub const ALL: [Queue; 11] = [
        Queue::Maildrop,
        Queue::Incoming,
        Queue::Active,
        Queue::Deferred,
        Queue::Hold,
        Queue::Corrupt,
        Queue::Bounce,
        Queue::Defer,
        Queue::Trace,
        Queue::Flush,
        Queue::Saved,
    ];

    /// The directory name under queue_directory.
    pub fn as_str(self) -> &'static str {
        match self {
            Queue::Maildrop => "maildrop",
            Queue::Incoming => "incoming",
            Queue::Active => "active",
            Queue::Deferred => "deferred",
            Queue::Hold => "hold",
            Queue::Corrupt => "corrupt",
            Queue::Bounce => "bounce",
            Queue::Defer => "defer",
            Queue::Trace => "trace",
            Queue::Flush => "flush",
            Queue::Saved => "saved",
        }
    }

    /// Validates a queue name.
    ///
    /// # Errors
    /// [`Error::BadQueueName`] for anything not in [`Queue::ALL`].
    pub fn parse(text: &str) -> Result<Queue, Error> {
        Queue::ALL
            .into_iter()
            .find(|q| q.as_str() == text)
            .ok_or_else(|| Error::BadQueueName {
                text: printable(text),
            })
    }

    /// True when files live in one level of hashed subdirectories, as
    /// spool-layout/queue-dirs says.
    pub fn is_hashed(self) -> bool {
        crate::layout::is_hashed(self.as_str())
    }

    /// The queue's directory.
    pub fn dir(self, queue_dir: &Path) -> PathBuf {
        queue_dir.join(self.as_str())
    }
}

impl fmt::Display for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Queue {
    type Err = Error;
    fn from_str(s: &str) -> Result<Queue, Error> {
        Queue::parse(s)
    }
}

/// The directory that holds (or will hold) `id` in `queue`: the queue
/// directory itself, or its hashed subdirectory.
pub fn queue_file_dir(queue_dir: &Path, queue: Queue, id: &QueueId) -> PathBuf {
    let dir = queue.dir(queue_dir);
    if queue.is_hashed() {
        let mut buf = [0u8; 4];
        dir.join(&*id.hash_char().encode_utf8(&mut buf))
    } else {
        dir
    }
}

/// The path of message `id` in `queue`. The one function that decides it.
pub fn queue_path(queue_dir: &Path, queue: Queue, id: &QueueId) -> PathBuf {
    queue_file_dir(queue_dir, queue, id).join(id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_reject_others() {
        for q in Queue::ALL {
            assert_eq!(Queue::parse(q.as_str()).unwrap(), q);
        }
        for bad in ["", "ACTIVE", "../active", "public", "pid", "active/"] {
            assert!(Queue::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deferred_is_hashed_active_is_not() {
        let id = QueueId::parse("3v1ZZJ0Bwvz2Vr4").unwrap();
        let q = Path::new("/q");
        assert_eq!(
            queue_path(q, Queue::Active, &id),
            Path::new("/q/active/3v1ZZJ0Bwvz2Vr4")
        );
        assert_eq!(
            queue_path(q, Queue::Deferred, &id),
            Path::new("/q/deferred/v/3v1ZZJ0Bwvz2Vr4")
        );
    }
}
