//! The queue library's one error type.
//!
//! Every fallible function in this crate returns [`Error`]. Variants carry
//! data (queue, queue id, path, offset, OS error), never ready-made
//! sentences; `Display` renders them in the shape Postfix daemons log
//! (`queue file active/ID: ...`). Nothing here logs: the daemon that gets an
//! error decides its severity and writes the log line.

use crate::id::QueueId;
use crate::name::Queue;
use std::fmt;
use std::path::PathBuf;

/// Errors from queue operations.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A file system operation failed.
    Io {
        /// The path involved.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A string is not a valid queue id (see [`QueueId::parse`]).
    BadQueueId {
        /// The offending text, made printable and cut to a short length.
        text: String,
    },
    /// A string is not a known queue name (see [`Queue::parse`]).
    BadQueueName {
        /// The offending text, made printable and cut to a short length.
        text: String,
    },
    /// The queue file is not marked complete (owner execute bit clear): a
    /// writer is still busy with it, or died before finishing. Such a file is
    /// never delivered; it is not corrupt either.
    Incomplete {
        /// The queue the file is in.
        queue: Queue,
        /// Its queue id.
        id: QueueId,
    },
    /// The queue file is marked complete but its contents are malformed.
    /// The daemon should log this and move the file to corrupt/
    /// ([`crate::quarantine`] does the move).
    Malformed {
        /// The queue the file is in.
        queue: Queue,
        /// Its queue id.
        id: QueueId,
        /// Its path.
        path: PathBuf,
        /// Byte offset in the file where the problem was found.
        offset: u64,
        /// What is wrong.
        problem: Problem,
    },
    /// A malformed queue file was moved to corrupt/.
    Quarantined {
        /// Why it was malformed (an [`Error::Malformed`]).
        cause: Box<Error>,
    },
    /// A malformed queue file could not be moved to corrupt/.
    QuarantineFailed {
        /// Why it was malformed.
        cause: Box<Error>,
        /// Why the move failed.
        error: Box<Error>,
    },
    /// A recipient index past the end of the recipient list.
    NoSuchRecipient {
        /// The queue id.
        id: QueueId,
        /// The index asked for.
        index: usize,
        /// How many recipients the file holds.
        count: usize,
    },
    /// A write operation on a queue file opened read-only.
    ReadOnly {
        /// The queue id.
        id: QueueId,
    },
    /// A queue path exists but is not a directory (or is a symbolic link).
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// The built-in spool layout (spool-layout/queue-dirs) has a bad line.
    /// This is a build defect; a unit test keeps it from shipping.
    Layout {
        /// Line number, counted from 1.
        line: usize,
        /// What is wrong.
        problem: &'static str,
    },
    /// An envelope field is longer than the format allows; the writer refuses
    /// to produce a file the reader would reject.
    TooLarge {
        /// The queue id being written.
        id: QueueId,
        /// What is too large.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
}

/// What is wrong with a malformed queue file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The path is not a regular file.
    NotRegularFile,
    /// The file does not start with the queue file magic.
    BadMagic,
    /// A format version this library cannot read.
    UnsupportedVersion(u16),
    /// The header's offsets and lengths do not describe this file.
    BadLayout,
    /// The file is shorter or longer than its header says.
    BadSize {
        /// Size the header implies.
        expected: u64,
        /// Actual size.
        actual: u64,
    },
    /// A section exceeds a named limit.
    TooLarge {
        /// Which section.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// The header and envelope checksum does not match.
    EnvelopeChecksum,
    /// The content checksum does not match (found at the end of reading).
    ContentChecksum,
    /// The envelope record cannot be decoded.
    BadEnvelope,
    /// The envelope's recipient count differs from the header's.
    RecipientCount,
    /// A recipient state byte holds an unknown value.
    BadRecipientState(u8),
    /// The end marker is missing or wrong.
    BadEndMarker,
    /// The file ended before a section did.
    Truncated,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotRegularFile => f.write_str("not a regular file"),
            Problem::BadMagic => f.write_str("bad magic number"),
            Problem::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
            Problem::BadLayout => f.write_str("inconsistent section offsets"),
            Problem::BadSize { expected, actual } => {
                write!(f, "file size {actual}, expected {expected}")
            }
            Problem::TooLarge { what, limit } => write!(f, "{what} exceeds limit {limit}"),
            Problem::EnvelopeChecksum => f.write_str("envelope checksum mismatch"),
            Problem::ContentChecksum => f.write_str("content checksum mismatch"),
            Problem::BadEnvelope => f.write_str("undecodable envelope record"),
            Problem::RecipientCount => f.write_str("recipient count mismatch"),
            Problem::BadRecipientState(b) => write!(f, "bad recipient state byte 0x{b:02x}"),
            Problem::BadEndMarker => f.write_str("bad end marker"),
            Problem::Truncated => f.write_str("premature end of file"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {}", path.display(), source),
            Error::BadQueueId { text } => write!(f, "bad queue id: {text}"),
            Error::BadQueueName { text } => write!(f, "bad queue name: {text}"),
            Error::Incomplete { queue, id } => {
                write!(f, "queue file {queue}/{id}: not marked complete")
            }
            Error::Malformed {
                queue,
                id,
                offset,
                problem,
                ..
            } => write!(f, "queue file {queue}/{id}: {problem} at offset {offset}"),
            Error::NoSuchRecipient { id, index, count } => {
                write!(
                    f,
                    "{id}: recipient index {index} out of range ({count} recipients)"
                )
            }
            Error::Quarantined { cause } => write!(f, "{cause}; moved to corrupt"),
            Error::QuarantineFailed { cause, error } => {
                write!(f, "{cause}; cannot move to corrupt: {error}")
            }
            Error::ReadOnly { id } => write!(f, "{id}: queue file opened read-only"),
            Error::NotADirectory { path } => {
                write!(f, "{}: not a directory", path.display())
            }
            Error::Layout { line, problem } => {
                write!(f, "spool-layout/queue-dirs line {line}: {problem}")
            }
            Error::TooLarge { id, what, limit } => {
                write!(f, "{id}: {what} exceeds limit {limit}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Quarantined { cause } => Some(cause.as_ref()),
            Error::QuarantineFailed { error, .. } => Some(error.as_ref()),
            _ => None,
        }
    }
}

impl Error {
    /// True when the file is damaged and belongs in corrupt/: a daemon logs
    /// the error and calls [`crate::quarantine`]. False for an incomplete
    /// file (a writer may still be at work) and for I/O errors (the
    /// environment, not the file, is at fault).
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Error::Malformed { .. })
    }

    /// The queue id the error is about, when there is one.
    pub fn queue_id(&self) -> Option<&QueueId> {
        match self {
            Error::Incomplete { id, .. }
            | Error::Malformed { id, .. }
            | Error::NoSuchRecipient { id, .. }
            | Error::ReadOnly { id }
            | Error::TooLarge { id, .. } => Some(id),
            Error::Quarantined { cause } | Error::QuarantineFailed { cause, .. } => {
                cause.queue_id()
            }
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

/// Makes untrusted text printable and short enough to log.
pub(crate) fn printable(text: &str) -> String {
    maillog::printable(text, 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_cuts_and_cleans() {
        assert_eq!(printable("a\nb\u{1b}c"), "a?b?c");
        assert_eq!(printable(&"x".repeat(500)).len(), 100);
    }

    #[test]
    fn display_names_queue_and_id() {
        let id = QueueId::parse("0000000000B").unwrap();
        let e = Error::Malformed {
            queue: Queue::Active,
            id,
            path: PathBuf::from("/q/active/0000000000A"),
            offset: 12,
            problem: Problem::BadMagic,
        };
        assert!(e.is_corrupt());
        assert_eq!(
            e.to_string(),
            "queue file active/0000000000B: bad magic number at offset 12"
        );
    }
}
