//! One running master.cf service: its listeners, its status pipe, its
//! children and the accounting that decides when to fork another
//! (Postfix's master_avail.c and master_service.c).

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use config::master_cf::Service as Entry;
use ipc::status::{Record, Status, decode_all};

use crate::listener::{Endpoint, Listener};

/// Bookkeeping for one child process.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChildState {
    /// Waiting for a client.
    pub(crate) avail: bool,
    /// Clients taken so far (0 at death with a bad exit = bad startup).
    pub(crate) use_count: u64,
    /// master sent it SIGTERM (stop, removal): its death is not a warning.
    pub(crate) killed: bool,
}

/// A service master runs.
#[derive(Debug)]
pub(crate) struct Service {
    /// The master.cf entry.
    pub(crate) entry: Entry,
    /// `daemon_directory/command`.
    pub(crate) path: PathBuf,
    /// Where it listens.
    pub(crate) endpoint: Endpoint,
    /// Its open listeners.
    pub(crate) listeners: Vec<Listener>,
    /// Read end of the status pipe (non-blocking).
    pub(crate) status_read: File,
    /// Write end, handed to each child as fd 3.
    pub(crate) status_write: OwnedFd,
    /// A partial status record carried to the next read.
    status_buf: Vec<u8>,
    /// Live children by pid.
    pub(crate) children: HashMap<u32, ChildState>,
    /// Children that are waiting for a client.
    pub(crate) avail: usize,
    /// No new children until then (after a bad startup).
    pub(crate) throttled_until: Option<Instant>,
    /// When to send the next wake-up.
    pub(crate) next_wakeup: Option<Instant>,
    /// A child took a client since the last wake-up (for `N?` wakeups).
    pub(crate) used: bool,
}

/// A fresh status pipe: (read end non-blocking, write end), both close-on-exec.
///
/// # Errors
/// pipe2 failed.
pub(crate) fn status_pipe() -> Result<(File, OwnedFd), String> {
    use nix::fcntl::OFlag;
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let r = File::from(r);
    let fl =
        nix::fcntl::fcntl(&r, nix::fcntl::FcntlArg::F_GETFL).map_err(|e| format!("fcntl: {e}"))?;
    let fl = OFlag::from_bits_truncate(fl) | OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&r, nix::fcntl::FcntlArg::F_SETFL(fl)).map_err(|e| format!("fcntl: {e}"))?;
    Ok((r, w))
}

impl Service {
    /// A service with its listeners already open.
    ///
    /// # Errors
    /// The status pipe could not be made.
    pub(crate) fn new(
        entry: Entry,
        path: PathBuf,
        endpoint: Endpoint,
        listeners: Vec<Listener>,
    ) -> Result<Service, String> {
        let (status_read, status_write) = status_pipe()?;
        let next_wakeup = (entry.wakeup > 0).then(|| {
            if entry.wakeup_if_used {
                Instant::now() + Duration::from_secs(u64::from(entry.wakeup))
            } else {
                Instant::now()
            }
        });
        Ok(Service {
            entry,
            path,
            endpoint,
            listeners,
            status_read,
            status_write,
            status_buf: Vec::new(),
            children: HashMap::new(),
            avail: 0,
            throttled_until: None,
            next_wakeup,
            used: false,
        })
    }

    /// maxproc, with 0 meaning no limit.
    pub(crate) fn max_proc(&self) -> usize {
        match self.entry.maxproc {
            0 => usize::MAX,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        }
    }

    /// True when master should watch the listeners: nobody is waiting for a
    /// client, there is room for another child, and no throttle is on.
    pub(crate) fn wants_listen(&self) -> bool {
        self.avail == 0
            && self.children.len() < self.max_proc()
            && self.throttled_until.is_none()
            && !self.listeners.is_empty()
    }

    /// Records a new child; a new child counts as available (it will accept).
    pub(crate) fn add_child(&mut self, pid: u32) {
        self.children.insert(
            pid,
            ChildState {
                avail: true,
                ..ChildState::default()
            },
        );
        self.avail += 1;
    }

    /// Forgets a dead child; returns its state.
    pub(crate) fn remove_child(&mut self, pid: u32) -> Option<ChildState> {
        let st = self.children.remove(&pid)?;
        if st.avail {
            self.avail = self.avail.saturating_sub(1);
        }
        Some(st)
    }

    /// Reads whatever status records arrived and updates the accounting.
    pub(crate) fn read_status(&mut self) {
        let mut buf = [0u8; 4096];
        loop {
            let n = match self.status_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            self.status_buf
                .extend_from_slice(buf.get(..n).unwrap_or(&[]));
            let (records, used) = decode_all(&self.status_buf);
            self.status_buf.drain(..used);
            for r in records {
                self.apply(r);
            }
        }
    }

    fn apply(&mut self, r: Record) {
        let Some(child) = self.children.get_mut(&r.pid) else {
            return; // a child of an earlier incarnation, or a stray record
        };
        match r.status {
            Status::Taken => {
                if child.avail {
                    child.avail = false;
                    self.avail = self.avail.saturating_sub(1);
                }
                child.use_count = child.use_count.saturating_add(1);
                self.used = true;
            }
            Status::Available => {
                if !child.avail {
                    child.avail = true;
                    self.avail += 1;
                }
            }
        }
    }

    /// Replaces the status pipe: children holding the old write end see the
    /// read end close and exit after their current client (reload).
    /// Returns the pids of those children, which no longer count here.
    ///
    /// # Errors
    /// pipe2 failed; nothing changed.
    pub(crate) fn retire_children(&mut self) -> Result<Vec<u32>, String> {
        let (r, w) = status_pipe()?;
        self.status_read = r;
        self.status_write = w;
        self.status_buf.clear();
        self.avail = 0;
        Ok(self.children.drain().map(|(pid, _)| pid).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn entry() -> Entry {
        Entry {
            name: "x".into(),
            kind: config::master_cf::ServiceType::Unix,
            private: true,
            unpriv: false,
            chroot: false,
            wakeup: 0,
            wakeup_if_used: false,
            maxproc: 2,
            command: "echo".into(),
            args: vec![],
            line: 1,
        }
    }

    #[test]
    fn accounting_follows_status_records() {
        let mut s = Service::new(
            entry(),
            "/bin/true".into(),
            Endpoint::Unix("/x".into()),
            vec![],
        )
        .unwrap();
        s.add_child(10);
        assert_eq!(s.avail, 1);
        let mut w = File::from(s.status_write.try_clone().unwrap());
        w.write_all(
            &Record {
                pid: 10,
                status: Status::Taken,
            }
            .encode(),
        )
        .unwrap();
        s.read_status();
        assert_eq!(s.avail, 0);
        assert_eq!(s.children[&10].use_count, 1);
        w.write_all(
            &Record {
                pid: 10,
                status: Status::Available,
            }
            .encode(),
        )
        .unwrap();
        w.write_all(
            &Record {
                pid: 99,
                status: Status::Taken,
            }
            .encode(),
        )
        .unwrap();
        s.read_status();
        assert_eq!(s.avail, 1);
        assert!(s.remove_child(10).unwrap().avail);
        assert_eq!(s.avail, 0);
    }

    #[test]
    fn zero_maxproc_is_unlimited() {
        let mut e = entry();
        e.maxproc = 0;
        let s = Service::new(e, "/bin/true".into(), Endpoint::Unix("/x".into()), vec![]).unwrap();
        assert_eq!(s.max_proc(), usize::MAX);
    }
}
