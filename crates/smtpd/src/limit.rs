//! maxproc as a limit on concurrent SMTP sessions: in Postfix each smtpd
//! process holds one session, so master.cf's maxproc (`smtp inet ... 10
//! smtpd`) caps the service's sessions. Here one process serves many, so
//! the cap is kept across all processes of the service with one lock file,
//! `queue_directory/pid/TYPE.SERVICE.sessions`, whose byte K (K below
//! maxproc) is session slot K: a session holds an open-file-description
//! write lock (`F_OFD_SETLK`) on its byte while it lasts. A process that
//! finds no free slot leaves further clients in the listen backlog (as a
//! Postfix service at maxproc does) and tries again when a session ends
//! or a moment later. Locks die with their process, so a crash never
//! leaks a slot; one descriptor per process, whatever maxproc is.
//!
//! Each process looks for a free slot from its own starting byte (spread
//! by its process id), not from byte 0: the sessions of one process then
//! sit together, and a new session seldom tries a byte that another
//! process holds (each such try is a failed fcntl; from byte 0, a session
//! tried every slot held anywhere, 14 failed calls a message at 20
//! sessions in scripts/bench).
//!
//! master passes maxproc in the environment ([`MAXPROC_ENV`]); 0 or none
//! means no limit.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::path::Path;

/// The environment variable master sets to the service's maxproc.
pub const MAXPROC_ENV: &str = "MAIL_SERVICE_MAXPROC";

/// The largest maxproc kept as a limit (a larger one is no limit here).
const MAX_SLOTS: usize = 1 << 20;

/// The session slots of one service.
#[derive(Debug)]
pub struct SessionLimit {
    file: File,
    slots: usize,
    /// Which slot each connection (by its server slot) holds.
    held: HashMap<usize, usize>,
    /// Slot K is taken by this process (one byte a slot: with thousands
    /// of sessions a lookup in `held` for each slot tried made every take
    /// cost the square of the sessions held).
    mine: Vec<bool>,
    /// Slot K was found taken by another process: not tried again until
    /// a look at the others finds nothing (then every slot is tried).
    /// Without it a process filling up behind another one's slots tried
    /// each of them at every new session: with thousands of sessions
    /// (scripts/bench smtp -C 10000) thousands of failed fcntl calls,
    /// each walking the file's list of thousands of locks, an accept.
    others: Vec<bool>,
    /// Where this process starts looking for a free slot.
    start: usize,
}

impl SessionLimit {
    /// Opens the slot file of service `name` of `kind` under `queue_dir`,
    /// before the jail (it is created root's when master runs as root).
    /// `None` when maxproc is 0 (no limit) or too large.
    ///
    /// # Errors
    /// The slot file cannot be created or opened.
    pub fn open(
        queue_dir: &Path,
        kind: &str,
        name: &str,
        maxproc: usize,
    ) -> std::io::Result<Option<SessionLimit>> {
        if maxproc == 0 || maxproc > MAX_SLOTS {
            return Ok(None);
        }
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = queue_dir.join(format!("pid/{kind}.{safe}.sessions"));
        // Write access: fcntl write locks need it. Nothing is written.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        Ok(Some(SessionLimit {
            file,
            slots: maxproc,
            held: HashMap::new(),
            mine: vec![false; maxproc],
            others: vec![false; maxproc],
            start: spread(std::process::id(), maxproc),
        }))
    }

    /// Takes a free slot for a new session; `None` when all maxproc are in
    /// use (in this process or another).
    pub fn take(&mut self) -> Option<usize> {
        let k = match self.try_slots() {
            Some(k) => k,
            None => {
                // Slots seen taken by others may have been freed since.
                self.others.iter_mut().for_each(|o| *o = false);
                self.try_slots()?
            }
        };
        if let Some(m) = self.mine.get_mut(k) {
            *m = true;
        }
        Some(k)
    }

    /// Tries the slots neither this process holds nor it saw another
    /// one hold, from `start`; marks those found taken.
    fn try_slots(&mut self) -> Option<usize> {
        for i in 0..self.slots {
            let k = (self.start + i) % self.slots;
            if self.mine.get(k).copied().unwrap_or(true)
                || self.others.get(k).copied().unwrap_or(true)
            {
                continue;
            }
            if lock_byte(&self.file, k, nix::libc::F_WRLCK).is_ok() {
                return Some(k);
            }
            if let Some(o) = self.others.get_mut(k) {
                *o = true;
            }
        }
        None
    }

    /// Records that connection `conn` holds slot `k`.
    pub fn hold(&mut self, conn: usize, k: usize) {
        self.held.insert(conn, k);
    }

    /// Frees slot `k` (a slot taken but not used).
    pub fn give_back(&mut self, k: usize) {
        let _ = lock_byte(&self.file, k, nix::libc::F_UNLCK);
        if let Some(m) = self.mine.get_mut(k) {
            *m = false;
        }
    }

    /// Frees the slot held by connection `conn`, if any.
    pub fn release(&mut self, conn: usize) {
        if let Some(k) = self.held.remove(&conn) {
            self.give_back(k);
        }
    }
}

/// A starting slot below `slots` for process `pid`: Fibonacci hashing,
/// so that the few processes of a service start far apart.
fn spread(pid: u32, slots: usize) -> usize {
    let h = u64::from(pid).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    usize::try_from(h).unwrap_or(0) % slots.max(1)
}

/// Sets (`F_WRLCK`, without waiting) or clears (`F_UNLCK`) the OFD lock on
/// byte `k` of `file`.
fn lock_byte(file: &File, k: usize, kind: i32) -> std::io::Result<()> {
    let lock = nix::libc::flock {
        l_type: kind as nix::libc::c_short,
        l_whence: nix::libc::SEEK_SET as nix::libc::c_short,
        l_start: i64::try_from(k).unwrap_or(i64::MAX),
        l_len: 1,
        l_pid: 0,
    };
    nix::fcntl::fcntl(file, nix::fcntl::FcntlArg::F_OFD_SETLK(&lock))
        .map(|_| ())
        .map_err(std::io::Error::from)
}

/// The maxproc master passed (0: none or no limit).
pub fn maxproc_from_env() -> usize {
    std::env::var(MAXPROC_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_shared_between_openers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pid")).unwrap();
        let mut a = SessionLimit::open(dir.path(), "inet", "127.0.0.1:25", 2)
            .unwrap()
            .unwrap();
        let mut b = SessionLimit::open(dir.path(), "inet", "127.0.0.1:25", 2)
            .unwrap()
            .unwrap();
        let k = a.take().unwrap();
        a.hold(7, k);
        let k2 = b.take().unwrap();
        b.hold(1, k2);
        assert_ne!(k, k2);
        assert_eq!(a.take(), None);
        assert_eq!(b.take(), None);
        a.release(7);
        // b saw k taken; the full look after the marks finds it free.
        assert_eq!(b.take(), Some(k));
        // Every slot can be taken, from any start.
        let mut c = SessionLimit::open(dir.path(), "inet", "y", 5)
            .unwrap()
            .unwrap();
        for start in 0..5 {
            c.start = start;
            let mut got: Vec<usize> = (0..5)
                .map(|conn| {
                    let k = c.take().unwrap();
                    c.hold(conn, k);
                    k
                })
                .collect();
            assert_eq!(c.take(), None);
            got.sort_unstable();
            assert_eq!(got, vec![0, 1, 2, 3, 4]);
            (0..5).for_each(|conn| c.release(conn));
        }
        assert!(
            SessionLimit::open(dir.path(), "inet", "x", 0)
                .unwrap()
                .is_none()
        );
    }
}
