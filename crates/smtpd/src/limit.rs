//! maxproc as a limit on concurrent SMTP sessions: in Postfix each smtpd
//! process holds one session, so master.cf's maxproc (`smtp inet ... 10
//! smtpd`) caps the service's sessions. Here one process serves many, so
//! the cap is kept across all processes of the service with one lock file
//! per session slot: `queue_directory/pid/TYPE.SERVICE.session.K`, K below
//! maxproc. A session holds an flock on one slot file while it lasts; a
//! process that finds no free slot leaves further clients in the listen
//! backlog (as a Postfix service at maxproc does) and tries again when a
//! session ends or a moment later. Locks die with their process, so a
//! crash never leaks a slot.
//!
//! master passes maxproc in the environment ([`MAXPROC_ENV`]); 0 or none
//! means no limit.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::path::Path;

/// The environment variable master sets to the service's maxproc.
pub const MAXPROC_ENV: &str = "MAIL_SERVICE_MAXPROC";

/// Most slot files a process opens (a larger maxproc is no limit here).
const MAX_SLOTS: usize = 4096;

/// The session slots of one service.
#[derive(Debug)]
pub struct SessionLimit {
    files: Vec<File>,
    /// Which slot file each connection (by its server slot) holds.
    held: HashMap<usize, usize>,
}

impl SessionLimit {
    /// Opens the slot files of service `name` of `kind` under `queue_dir`,
    /// before the jail (they are created root's when master runs as root).
    /// `None` when maxproc is 0 (no limit) or too large.
    ///
    /// # Errors
    /// A slot file cannot be created or opened.
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
        let mut files = Vec::with_capacity(maxproc);
        for k in 0..maxproc {
            let path = queue_dir.join(format!("pid/{kind}.{safe}.session.{k}"));
            files.push(
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&path)?,
            );
        }
        Ok(Some(SessionLimit {
            files,
            held: HashMap::new(),
        }))
    }

    /// Takes a free slot for a new session; `None` when all maxproc are in
    /// use (in this process or another).
    pub fn take(&mut self) -> Option<usize> {
        let busy: Vec<usize> = self.held.values().copied().collect();
        (0..self.files.len())
            .filter(|k| !busy.contains(k))
            .find(|k| self.files.get(*k).is_some_and(|f| f.try_lock().is_ok()))
    }

    /// Records that connection `conn` holds slot `k`.
    pub fn hold(&mut self, conn: usize, k: usize) {
        self.held.insert(conn, k);
    }

    /// Frees the slot file `k` (a slot taken but not used).
    pub fn give_back(&mut self, k: usize) {
        if let Some(f) = self.files.get(k) {
            let _ = f.unlock();
        }
    }

    /// Frees the slot held by connection `conn`, if any.
    pub fn release(&mut self, conn: usize) {
        if let Some(k) = self.held.remove(&conn) {
            self.give_back(k);
        }
    }
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
        assert!(b.take().is_some());
        assert!(
            SessionLimit::open(dir.path(), "inet", "x", 0)
                .unwrap()
                .is_none()
        );
    }
}
