//! Mailbox locks that agree with Debian's MUAs and MDAs: a dotlock
//! (`mbox.lock`, as liblockfile, mutt and procmail make it) and an fcntl
//! write lock on the mailbox file.
//!
//! The dotlock is made NFS-safe: a uniquely named file is created with
//! O_EXCL beside the mailbox and hard-linked to `mbox.lock`; the link
//! counts as taken when the unique file then has two links (link() may
//! report failure over NFS after succeeding). A lock older than
//! `stale_after` is removed, as Postfix does after stale_lock_time.
//!
//! The fcntl lock is an open-file-description lock on Linux (`F_OFD_SETLK`):
//! it conflicts with the classic POSIX locks that mutt and procmail take,
//! and unlike those it also excludes other threads of this process.
//! Both locks are retried with a bounded wait (Postfix's
//! deliver_lock_attempts and deliver_lock_delay) and then give
//! [`Error::Locked`], a temporary failure.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::error::{Error, Result};

/// How long and how often to try for a lock.
#[derive(Debug, Clone)]
pub struct LockOptions {
    /// How many times a lock is tried at most (deliver_lock_attempts, 20).
    pub attempts: u32,
    /// The longest pause between two tries (deliver_lock_delay, 1s). Tries
    /// start 5 ms apart and double up to this; the total wait is bounded by
    /// `attempts * delay`.
    pub delay: Duration,
    /// A dotlock older than this is stale and removed (stale_lock_time, 500s).
    pub stale_after: Duration,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            attempts: 20,
            delay: Duration::from_secs(1),
            stale_after: Duration::from_secs(500),
        }
    }
}

impl LockOptions {
    /// The deadline and pause schedule for one lock.
    fn schedule(&self) -> Backoff {
        let total = self.delay.saturating_mul(self.attempts.max(1));
        Backoff {
            deadline: Instant::now() + total,
            pause: Duration::from_millis(5).min(self.delay),
            max: self.delay,
        }
    }
}

/// Pauses between lock attempts.
struct Backoff {
    deadline: Instant,
    pause: Duration,
    max: Duration,
}

impl Backoff {
    /// Sleeps before the next try; false when the time is up.
    fn wait(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        thread::sleep(self.pause.min(self.deadline - now));
        self.pause = self.pause.saturating_mul(2).min(self.max);
        true
    }
}

/// A held dotlock; dropping it removes the lock file.
#[derive(Debug)]
pub struct DotLock {
    path: PathBuf,
}

impl DotLock {
    /// The lock file, `<mailbox>.lock`.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DotLock {
    fn drop(&mut self) {
        // Nothing useful can be done if this fails; a stale lock is broken
        // by the next writer after stale_after.
        let _ = fs::remove_file(&self.path);
    }
}

/// The dotlock file name for a mailbox: the mailbox path plus `.lock`.
pub fn dotlock_path(mailbox: &Path) -> PathBuf {
    let mut name: OsString = mailbox.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// Takes the dotlock `<mailbox>.lock`.
///
/// # Errors
///
/// [`Error::Locked`] when another holder keeps it for the whole bounded
/// wait; [`Error::Io`] when the lock cannot be created at all (for example
/// EACCES in a spool directory the caller cannot write).
pub fn dotlock(mailbox: &Path, options: &LockOptions) -> Result<DotLock> {
    let lock = dotlock_path(mailbox);
    let dir = match mailbox.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let unique = dir.join(unique_lock_name(mailbox));
    let mut backoff = options.schedule();
    loop {
        match try_dotlock(&unique, &lock)? {
            true => return Ok(DotLock { path: lock }),
            false => {
                break_stale(&lock, options.stale_after);
                if !backoff.wait() {
                    return Err(Error::Locked { path: lock });
                }
            }
        }
    }
}

/// `.<mailbox name>.lk<pid>.<n>.<host>`: unique on this host, and the
/// host name keeps it unique on a shared NFS spool.
fn unique_lock_name(mailbox: &Path) -> OsString {
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    let base = mailbox
        .file_name()
        .map(|s| s.to_os_string())
        .unwrap_or_default();
    let mut name = OsString::from(".");
    name.push(base);
    name.push(format!(".lk{}.{n}.", std::process::id()));
    name.push(crate::maildir::hostname_for_names());
    name
}

/// One try: create the unique file, link it to the lock name.
fn try_dotlock(unique: &Path, lock: &Path) -> Result<bool> {
    let create = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(unique)
    };
    let file = match create() {
        // Left by a crashed process that had our pid: ours to remove.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let _ = fs::remove_file(unique);
            create()
        }
        other => other,
    }
    .map_err(|e| Error::io("create lock file", unique, e))?;
    drop(file);
    let linked = fs::hard_link(unique, lock);
    // Over NFS the link may have been made although link() failed: the
    // unique file's link count is the truth.
    let taken = match fs::symlink_metadata(unique) {
        Ok(meta) => meta.nlink() == 2,
        Err(_) => false,
    };
    let _ = fs::remove_file(unique);
    match linked {
        Ok(()) => Ok(true),
        Err(_) if taken => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::io("create lock file", lock, e)),
    }
}

/// Removes a lock older than `stale_after`.
fn break_stale(lock: &Path, stale_after: Duration) {
    let Ok(meta) = fs::symlink_metadata(lock) else {
        return;
    };
    let Ok(modified) = meta.modified() else {
        return;
    };
    let age = SystemTime::now()
        .duration_since(modified)
        .unwrap_or(Duration::ZERO);
    if age > stale_after {
        // Re-check that it is still the same stale file, to narrow the race
        // with a writer that broke it and took a fresh one meanwhile.
        if let Ok(again) = fs::symlink_metadata(lock)
            && again.ino() == meta.ino()
            && again.dev() == meta.dev()
        {
            let _ = fs::remove_file(lock);
        }
    }
}

/// Takes an exclusive fcntl write lock on the whole of `file`, retrying
/// within the bounded wait. The lock is released when the file is closed.
///
/// # Errors
///
/// [`Error::Locked`] when it stays locked; [`Error::Io`] when fcntl fails
/// for another reason (EBADF, ENOLCK).
pub fn fcntl_lock(file: &File, path: &Path, options: &LockOptions) -> Result<()> {
    let mut backoff = options.schedule();
    loop {
        match try_fcntl_lock(file) {
            Ok(()) => return Ok(()),
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES) => {
                if !backoff.wait() {
                    return Err(Error::Locked {
                        path: path.to_path_buf(),
                    });
                }
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Error::io("lock", path, io::Error::from(e))),
        }
    }
}

fn write_lock() -> nix::libc::flock {
    nix::libc::flock {
        l_type: nix::libc::F_WRLCK as nix::libc::c_short,
        l_whence: nix::libc::SEEK_SET as nix::libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn try_fcntl_lock(file: &File) -> nix::Result<()> {
    let lock = write_lock();
    nix::fcntl::fcntl(file, nix::fcntl::FcntlArg::F_OFD_SETLK(&lock)).map(|_| ())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn try_fcntl_lock(file: &File) -> nix::Result<()> {
    let lock = write_lock();
    nix::fcntl::fcntl(file, nix::fcntl::FcntlArg::F_SETLK(&lock)).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> LockOptions {
        LockOptions {
            attempts: 3,
            delay: Duration::from_millis(20),
            stale_after: Duration::from_secs(300),
        }
    }

    #[test]
    fn dotlock_excludes_and_releases() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("user");
        let lock = dotlock(&mbox, &quick()).unwrap();
        assert!(dir.path().join("user.lock").exists());
        assert!(matches!(
            dotlock(&mbox, &quick()),
            Err(Error::Locked { .. })
        ));
        drop(lock);
        assert!(!dir.path().join("user.lock").exists());
        let again = dotlock(&mbox, &quick()).unwrap();
        drop(again);
        // No unique temporary names are left behind.
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn stale_dotlock_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("user");
        let lock = dir.path().join("user.lock");
        fs::write(&lock, b"").unwrap();
        let old = SystemTime::now() - Duration::from_secs(600);
        File::options()
            .write(true)
            .open(&lock)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let held = dotlock(&mbox, &quick()).unwrap();
        // The lock now held is ours: fresh.
        let age = SystemTime::now()
            .duration_since(fs::metadata(&lock).unwrap().modified().unwrap())
            .unwrap_or_default();
        assert!(age < Duration::from_secs(60));
        drop(held);
    }

    #[test]
    fn fresh_foreign_dotlock_is_respected() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("user");
        fs::write(dir.path().join("user.lock"), b"").unwrap();
        let started = Instant::now();
        assert!(matches!(
            dotlock(&mbox, &quick()),
            Err(Error::Locked { .. })
        ));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(dir.path().join("user.lock").exists());
    }

    #[test]
    fn dotlock_in_unwritable_place_is_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("missing-dir").join("user");
        assert!(matches!(dotlock(&mbox, &quick()), Err(Error::Io { .. })));
    }

    #[test]
    fn fcntl_lock_excludes_other_descriptions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mbox");
        let a = File::create(&path).unwrap();
        let b = File::options().write(true).open(&path).unwrap();
        fcntl_lock(&a, &path, &quick()).unwrap();
        assert!(matches!(
            fcntl_lock(&b, &path, &quick()),
            Err(Error::Locked { .. })
        ));
        drop(a);
        fcntl_lock(&b, &path, &quick()).unwrap();
    }
}
