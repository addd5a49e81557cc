//! Claims on maildrop files, so a file pickup sends twice becomes one
//! queue file.
//!
//! pickup removes a maildrop file only after cleanup answered; a pickup
//! killed in between leaves the file, and the next pickup sends it again
//! with `maildrop_retry`, so that cleanup answers with the first queue
//! file instead of writing a second. That only works when the first queue
//! file is complete by the time the second cleanup looks for it. So
//! cleanup claims the maildrop file (a shared open-file-description lock,
//! independent of the flock pickup holds) from `Begin` until its own queue
//! file is complete or given up, and pickup does not send a file that a
//! cleanup still claims ([`maildrop_claimed`]) but waits for the claim to
//! go: a killed cleanup's claim goes with it.

use crate::{Queue, QueueId, queue_path};
use std::fs::File;
use std::io;
use std::path::Path;

/// A cleanup's claim on a maildrop file; dropping it lets go.
#[derive(Debug)]
pub struct MaildropClaim {
    _file: File,
}

/// Claims maildrop file `id` under `queue_dir` (read access suffices).
pub fn claim_maildrop(queue_dir: &Path, id: &QueueId) -> io::Result<MaildropClaim> {
    let file = File::open(queue_path(queue_dir, Queue::Maildrop, id))?;
    let lock = lock(nix::libc::F_RDLCK);
    set_lock(&file, &lock)?;
    Ok(MaildropClaim { _file: file })
}

/// True while some cleanup claims maildrop file `id`.
pub fn maildrop_claimed(queue_dir: &Path, id: &QueueId) -> io::Result<bool> {
    let file = File::open(queue_path(queue_dir, Queue::Maildrop, id))?;
    let mut lock = lock(nix::libc::F_WRLCK);
    get_lock(&file, &mut lock)?;
    Ok(i32::from(lock.l_type) != nix::libc::F_UNLCK)
}

fn lock(kind: i32) -> nix::libc::flock {
    nix::libc::flock {
        l_type: kind as nix::libc::c_short,
        l_whence: nix::libc::SEEK_SET as nix::libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_lock(file: &File, lock: &nix::libc::flock) -> io::Result<()> {
    nix::fcntl::fcntl(file, nix::fcntl::FcntlArg::F_OFD_SETLK(lock))
        .map(|_| ())
        .map_err(io::Error::from)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn get_lock(file: &File, lock: &mut nix::libc::flock) -> io::Result<()> {
    nix::fcntl::fcntl(file, nix::fcntl::FcntlArg::F_OFD_GETLK(lock))
        .map(|_| ())
        .map_err(io::Error::from)
}

// Elsewhere, process-wide POSIX locks: cleanup opens each maildrop file
// once per claim, so closing another descriptor does not drop it.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_lock(file: &File, lock: &nix::libc::flock) -> io::Result<()> {
    nix::fcntl::fcntl(file, nix::fcntl::FcntlArg::F_SETLK(lock))
        .map(|_| ())
        .map_err(io::Error::from)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn get_lock(file: &File, lock: &mut nix::libc::flock) -> io::Result<()> {
    nix::fcntl::fcntl(file, nix::fcntl::FcntlArg::F_GETLK(lock))
        .map(|_| ())
        .map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_seen_until_dropped_even_in_the_same_process() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("maildrop")).unwrap();
        let id = QueueId::new(std::time::Duration::from_secs(1_700_000_000), 42);
        std::fs::write(queue_path(dir.path(), Queue::Maildrop, &id), b"x").unwrap();
        assert!(!maildrop_claimed(dir.path(), &id).unwrap());
        let claim = claim_maildrop(dir.path(), &id).unwrap();
        let second = claim_maildrop(dir.path(), &id).unwrap();
        assert!(maildrop_claimed(dir.path(), &id).unwrap());
        drop(claim);
        assert!(maildrop_claimed(dir.path(), &id).unwrap());
        drop(second);
        assert!(!maildrop_claimed(dir.path(), &id).unwrap());
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let id = QueueId::new(std::time::Duration::from_secs(1_700_000_000), 43);
        assert!(maildrop_claimed(dir.path(), &id).is_err());
        assert!(claim_maildrop(dir.path(), &id).is_err());
    }
}
