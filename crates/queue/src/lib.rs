//! Queue ids, queue files and the queue directory layout.
//!
//! CONTRACT (other crates build against this; keep it):
//!
//! ```text
//! queue::layout::create_or_repair(queue_dir: &Path, owner: Option<(u32, u32)>, setgid_gid: Option<u32>)
//!     -> Result<Vec<String>, queue::Error>
//!   creates every directory spool-layout/ lists, fixes owner and mode,
//!   returns one line per repair made (for `postfix check` to log).
//! ```

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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {}", path.display(), source),
        }
    }
}

impl std::error::Error for Error {}

pub mod layout {
    //! The queue directory tree (placeholder: creates the directories only).
    use super::Error;
    use std::path::Path;

    /// Queue subdirectories.
    pub const DIRS: &[&str] = &[
        "maildrop", "incoming", "active", "deferred", "hold", "corrupt", "bounce", "defer",
        "trace", "public", "private", "pid",
    ];

    /// Creates missing queue directories and repairs owner and mode.
    ///
    /// # Errors
    /// A directory cannot be created.
    pub fn create_or_repair(
        queue_dir: &Path,
        _owner: Option<(u32, u32)>,
        _setgid_gid: Option<u32>,
    ) -> Result<Vec<String>, Error> {
        let mut made = Vec::new();
        for d in DIRS {
            let p = queue_dir.join(d);
            if !p.is_dir() {
                std::fs::create_dir_all(&p).map_err(|source| Error::Io {
                    path: p.clone(),
                    source,
                })?;
                made.push(format!("created {}", p.display()));
            }
        }
        Ok(made)
    }
}
