//! The ipc error type.

use std::fmt;
use std::path::PathBuf;

/// Errors from the service command line and master's pid file.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A service option needs a value and has none (`-n`, `-t`, `-s`, `-o`).
    MissingValue(&'static str),
    /// `-s` is not a number up to [`crate::args::MAX_SOCKETS`].
    BadSocketCount(String),
    /// `-o` without `name=value`.
    BadOverride(String),
    /// An option letter no service knows.
    InvalidOption(char),
    /// Another master holds the pid-file lock.
    AlreadyRunning,
    /// The pid file could not be opened, locked or written.
    PidFile {
        /// The pid file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MissingValue(opt) => write!(f, "option {opt} requires a value"),
            Error::BadSocketCount(v) => write!(f, "bad socket count: {v}"),
            Error::BadOverride(v) => write!(f, "bad -o argument: {v} (expected name=value)"),
            Error::InvalidOption(c) => write!(f, "invalid option: {c}"),
            Error::AlreadyRunning => write!(f, "the Postfix mail system is already running"),
            Error::PidFile { path, source } => {
                write!(f, "open lock file {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::PidFile { source, .. } => Some(source),
            _ => None,
        }
    }
}
