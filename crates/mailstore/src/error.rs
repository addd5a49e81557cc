//! `mailstore::Error`: why a delivery or a mailbox operation failed, and
//! whether the delivery agent should defer (4.x.x) or bounce (5.x.x).
//!
//! The mapping follows Postfix's `mbox_dsn()`: a busy lock or a transient
//! error is 4.2.0, a full file system 4.3.0, a quota or file-size limit
//! 5.2.2, a destination that is not a regular file 5.2.0. Any other I/O
//! error is treated as temporary: deferring a message costs a retry,
//! bouncing it on a passing EIO would lose it for the sender.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What kind of object was found where a regular file was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileKind {
    /// A symbolic link (refused, as Postfix's local does).
    Symlink,
    /// A directory.
    Directory,
    /// A named pipe.
    Fifo,
    /// A socket.
    Socket,
    /// A character or block device.
    Device,
    /// Anything else.
    Other,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Symlink => "a symbolic link",
            FileKind::Directory => "a directory",
            FileKind::Fifo => "a named pipe",
            FileKind::Socket => "a socket",
            FileKind::Device => "a device",
            FileKind::Other => "not a regular file",
        })
    }
}

/// Every failure of this crate.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A system call on `path` failed; `op` names it ("open", "write", "fsync", ...).
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Reading the message content from the caller's source failed.
    Source {
        /// The error returned by the source.
        source: io::Error,
    },
    /// The mailbox is locked by someone else and stayed locked for the whole
    /// bounded wait. Temporary: try again later.
    Locked {
        /// The mailbox (or its `.lock` file).
        path: PathBuf,
    },
    /// The mailbox (mbox) or the message file (Maildir) would grow past the
    /// size limit (mailbox_size_limit).
    SizeLimit {
        /// The mailbox or message file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// The destination exists but is not a regular file (symlink, directory,
    /// FIFO, device); delivery is refused.
    NotRegularFile {
        /// The destination.
        path: PathBuf,
        /// What was found there.
        kind: FileKind,
    },
    /// The mailbox has more than one hard link; delivery is refused, since
    /// the other name could be anywhere.
    HardLinked {
        /// The mailbox.
        path: PathBuf,
        /// Its link count.
        links: u64,
    },
    /// The mailbox is not owned by the expected user (Postfix's
    /// strict_mailbox_ownership). Temporary, so the administrator can fix it.
    WrongOwner {
        /// The mailbox.
        path: PathBuf,
        /// The owner found.
        uid: u32,
        /// The owner expected.
        expected: u32,
    },
    /// A line to prepend (Return-Path, Delivered-To) contained CR or LF.
    BadPrependLine {
        /// The offending line, as given (for the log; make it printable).
        line: String,
    },
    /// A Maildir++ folder name is empty, starts with a dot, or contains `/`
    /// or a control character.
    BadFolderName {
        /// The name, as given.
        name: String,
    },
    /// A message or folder disappeared (moved or expunged by another
    /// session) between listing and use.
    NotFound {
        /// The path that was expected.
        path: PathBuf,
    },
    /// A Maildir++ folder already exists.
    FolderExists {
        /// The folder directory.
        path: PathBuf,
    },
}

/// Shorthand for this crate's results.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an OS error with the operation and path.
    pub fn io(op: &'static str, path: &Path, source: io::Error) -> Error {
        Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// The RFC 3463 enhanced status code a delivery agent should report,
    /// such as `4.2.0` (mailbox locked) or `5.2.2` (mailbox full).
    pub fn status(&self) -> &'static str {
        match self {
            Error::Io { source, .. } => io_status(source),
            Error::Source { .. } => "4.3.0",
            Error::Locked { .. } => "4.2.0",
            Error::SizeLimit { .. } => "5.2.2",
            Error::NotRegularFile { .. } | Error::HardLinked { .. } => "5.2.0",
            Error::WrongOwner { .. } => "4.2.0",
            Error::BadPrependLine { .. } => "4.3.0",
            Error::BadFolderName { .. } => "5.2.0",
            Error::NotFound { .. } => "4.2.0",
            Error::FolderExists { .. } => "5.2.0",
        }
    }

    /// True when the failure is temporary (defer and retry), false when it
    /// is permanent (bounce).
    pub fn is_temporary(&self) -> bool {
        self.status().starts_with('4')
    }
}

/// Postfix's mbox_dsn(): the status for an errno.
fn io_status(err: &io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(code) if code == nix::libc::EDQUOT || code == nix::libc::EFBIG => "5.2.2",
        Some(code) if code == nix::libc::ENOSPC => "4.3.0",
        _ => "4.2.0",
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, path, source } => {
                write!(f, "cannot {op} {}: {source}", path.display())
            }
            Error::Source { source } => write!(f, "error reading message: {source}"),
            Error::Locked { path } => {
                write!(
                    f,
                    "unable to lock {}: resource temporarily unavailable",
                    path.display()
                )
            }
            Error::SizeLimit { path, limit } => {
                write!(
                    f,
                    "{}: mailbox size limit of {limit} bytes exceeded (File too large)",
                    path.display()
                )
            }
            Error::NotRegularFile { path, kind } => {
                write!(
                    f,
                    "destination {} is {kind}, not a regular file",
                    path.display()
                )
            }
            Error::HardLinked { path, links } => {
                write!(f, "destination {} has {links} hard links", path.display())
            }
            Error::WrongOwner {
                path,
                uid,
                expected,
            } => write!(
                f,
                "destination {} is owned by uid {uid}, not by recipient uid {expected}",
                path.display()
            ),
            Error::BadPrependLine { line } => {
                write!(f, "header line to prepend contains a line break: {line:?}")
            }
            Error::BadFolderName { name } => write!(f, "invalid Maildir++ folder name: {name:?}"),
            Error::NotFound { path } => write!(f, "{}: no such file or directory", path.display()),
            Error::FolderExists { path } => write!(f, "folder {} already exists", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } | Error::Source { source } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes() {
        let p = Path::new("/x");
        assert_eq!(Error::Locked { path: p.into() }.status(), "4.2.0");
        assert!(Error::Locked { path: p.into() }.is_temporary());
        let full = Error::SizeLimit {
            path: p.into(),
            limit: 1,
        };
        assert_eq!(full.status(), "5.2.2");
        assert!(!full.is_temporary());
        let efbig = Error::io("write", p, io::Error::from_raw_os_error(nix::libc::EFBIG));
        assert_eq!(efbig.status(), "5.2.2");
        let enospc = Error::io("write", p, io::Error::from_raw_os_error(nix::libc::ENOSPC));
        assert_eq!(enospc.status(), "4.3.0");
        let eio = Error::io("write", p, io::Error::from_raw_os_error(nix::libc::EIO));
        assert!(eio.is_temporary());
        let link = Error::NotRegularFile {
            path: p.into(),
            kind: FileKind::Symlink,
        };
        assert_eq!(link.status(), "5.2.0");
        assert!(link.to_string().contains("symbolic link"));
    }
}
