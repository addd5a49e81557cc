//! master's pid file, `queue_directory/pid/master.pid`, locked with an
//! exclusive flock for master's whole life. A second master on the same
//! queue directory fails to take the lock and refuses to start; `postfix
//! status|stop|reload` find the running master through it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::Error;

/// The pid file, relative to queue_directory.
pub const PID_FILE: &str = "pid/master.pid";

/// A held pid-file lock; dropped (and the lock released) when master exits.
#[derive(Debug)]
pub struct PidLock {
    file: File,
    path: PathBuf,
}

/// The pid file path for a queue directory.
pub fn path(queue_dir: &Path) -> PathBuf {
    queue_dir.join(PID_FILE)
}

/// Takes the lock and writes this process's pid, as Postfix does (`%10d\n`).
///
/// # Errors
/// [`Error::AlreadyRunning`] when another master holds it; [`Error::PidFile`] otherwise.
pub fn lock(path: &Path) -> Result<PidLock, Error> {
    let io = |source| Error::PidFile {
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Err(Error::AlreadyRunning),
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    writeln!(file, "{:>10}", std::process::id()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(PidLock {
        file,
        path: path.to_path_buf(),
    })
}

impl PidLock {
    /// Removes the pid file, then releases the lock (master's last act).
    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
        drop(self.file);
    }
}

/// The pid of the master holding the lock on `path`, or `None` when no
/// master runs (no file, or nobody holds the lock). A locked file whose
/// contents are not a pid gives `Some(0)`.
pub fn running(path: &Path) -> Option<u32> {
    let mut file = File::open(path).ok()?;
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            None
        }
        Err(_) => {
            let mut text = String::new();
            let _ = Read::by_ref(&mut file).take(64).read_to_string(&mut text);
            Some(text.trim().parse().unwrap_or(0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_and_running_sees_pid() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("master.pid");
        assert_eq!(running(&p), None);
        let l = lock(&p).unwrap();
        assert!(matches!(lock(&p), Err(Error::AlreadyRunning)));
        assert_eq!(running(&p), Some(std::process::id()));
        l.remove();
        assert!(!p.exists());
        assert_eq!(running(&p), None);
    }

    #[test]
    fn unlocked_stale_file_is_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("master.pid");
        std::fs::write(&p, "     12345\n").unwrap();
        assert_eq!(running(&p), None);
        let _l = lock(&p).unwrap();
    }
}
