//! master's event loop: one poll over the signalfd, every service's status
//! pipe, and the listeners of services that have no child waiting (a
//! readable listener there means "fork one more"). Timers: throttle ends and
//! wake-ups.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use config::Config;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;

use crate::listener;
use crate::service::Service;
use crate::spawn;

/// A child of a service that was reloaded or removed; it is only reaped.
#[derive(Debug, Clone)]
pub(crate) struct Retired {
    /// Its program, for log lines.
    pub(crate) path: PathBuf,
    /// master sent it SIGTERM.
    pub(crate) killed: bool,
}

/// Everything master holds while running.
#[derive(Debug)]
pub(crate) struct Master {
    /// The configuration directory.
    pub(crate) config_dir: PathBuf,
    /// main.cf as loaded.
    pub(crate) config: Config,
    /// main.cf's text, to see on reload whether it changed.
    pub(crate) main_cf_text: String,
    /// queue_directory.
    pub(crate) qdir: PathBuf,
    /// mail_owner's uid and gid when master runs as root.
    pub(crate) owner: Option<(u32, u32)>,
    /// Running services, in master.cf order.
    pub(crate) services: Vec<Service>,
    /// Children of retired or stopped services.
    pub(crate) retired: HashMap<u32, Retired>,
    /// Pending signals.
    pub(crate) signals: ipc::signals::Signals,
    /// The pid-file lock, released at exit.
    pub(crate) pid_lock: Option<ipc::pidfile::PidLock>,
}

/// What a poll slot belongs to.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Signals,
    Status(usize),
    Listener(usize),
}

impl Master {
    /// Runs until SIGTERM or SIGINT.
    pub(crate) fn run(mut self) -> ! {
        loop {
            self.timers(Instant::now());
            let ready = self.wait();
            let mut signalled = false;
            for slot in ready {
                match slot {
                    Slot::Signals => signalled = true,
                    Slot::Status(i) => {
                        if let Some(s) = self.services.get_mut(i) {
                            s.read_status();
                        }
                    }
                    Slot::Listener(i) => self.on_demand(i),
                }
            }
            if signalled {
                for sig in self.signals.pending() {
                    match sig {
                        Signal::SIGCHLD => self.reap(),
                        Signal::SIGHUP => self.reload(),
                        Signal::SIGTERM | Signal::SIGINT => self.terminate(sig),
                        _ => {}
                    }
                }
            }
        }
    }

    /// Polls; returns the slots that are ready.
    fn wait(&self) -> Vec<Slot> {
        let mut slots = vec![Slot::Signals];
        let mut fds = vec![PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
        for (i, s) in self.services.iter().enumerate() {
            slots.push(Slot::Status(i));
            fds.push(PollFd::new(s.status_read.as_fd(), PollFlags::POLLIN));
            if s.wants_listen() {
                for l in &s.listeners {
                    slots.push(Slot::Listener(i));
                    fds.push(PollFd::new(l.fd.as_fd(), PollFlags::POLLIN));
                }
            }
        }
        let timeout = self
            .next_deadline()
            .map(|t| t.saturating_duration_since(Instant::now()) + Duration::from_millis(1))
            .map_or(PollTimeout::NONE, |d| {
                PollTimeout::try_from(d).unwrap_or(PollTimeout::MAX)
            });
        if !matches!(poll(&mut fds, timeout), Ok(n) if n > 0) {
            return Vec::new();
        }
        let mut ready: Vec<Slot> = Vec::new();
        for (slot, fd) in slots.iter().zip(fds.iter()) {
            if fd.revents().is_some_and(|r| !r.is_empty()) {
                // One listener of a service is enough to fork one child.
                let dup = matches!((slot, ready.last()), (Slot::Listener(a), Some(Slot::Listener(b))) if a == b);
                if !dup {
                    ready.push(*slot);
                }
            }
        }
        ready
    }

    /// The earliest throttle end or wake-up.
    fn next_deadline(&self) -> Option<Instant> {
        self.services
            .iter()
            .flat_map(|s| [s.throttled_until, s.next_wakeup])
            .flatten()
            .min()
    }

    /// Ends throttles and sends due wake-ups.
    fn timers(&mut self, now: Instant) {
        for s in &mut self.services {
            if s.throttled_until.is_some_and(|t| t <= now) {
                s.throttled_until = None;
            }
            if s.next_wakeup.is_some_and(|t| t <= now) {
                if !s.entry.wakeup_if_used || s.used {
                    listener::wake(&s.endpoint, &s.listeners);
                }
                s.used = false;
                s.next_wakeup = Some(now + Duration::from_secs(u64::from(s.entry.wakeup)));
            }
        }
    }

    /// A listener is readable and no child waits: fork one, up to maxproc.
    fn on_demand(&mut self, i: usize) {
        let Some(s) = self.services.get_mut(i) else {
            return;
        };
        if !s.wants_listen() {
            return;
        }
        match spawn::spawn(s, &self.config, &self.config_dir) {
            Ok(pid) => s.add_child(pid),
            Err(e) => {
                maillog::warning!("{}: {e}", s.path.display());
                maillog::warning!("{}: bad command startup -- throttling", s.path.display());
                s.throttled_until = Some(Instant::now() + throttle_time(&self.config));
            }
        }
    }
}

/// service_throttle_time (60s).
pub(crate) fn throttle_time(config: &Config) -> Duration {
    let t = config.time("service_throttle_time");
    if t.is_zero() {
        Duration::from_secs(60)
    } else {
        t
    }
}

#[cfg(test)]
impl Master {
    /// A master over a temp dir with `main.cf` text, for unit tests (no
    /// signals are blocked).
    pub(crate) fn for_test(dir: &std::path::Path, main_cf: &str) -> Master {
        let qdir = dir.join("q");
        for d in ["q/public", "q/private", "q/pid", "etc"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let text = format!(
            "queue_directory = {}\ndaemon_directory = /bin\n{main_cf}",
            qdir.display()
        );
        std::fs::write(dir.join("etc/main.cf"), &text).unwrap();
        Master {
            config_dir: dir.join("etc"),
            config: Config::load(&dir.join("etc")).unwrap(),
            main_cf_text: text,
            qdir,
            owner: None,
            services: Vec::new(),
            retired: HashMap::new(),
            signals: ipc::signals::Signals::new(&[]).unwrap(),
            pid_lock: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakeup_if_used_waits_for_use() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Master::for_test(dir.path(), "");
        std::fs::write(
            m.config_dir.join("master.cf"),
            "tick fifo n - n 1? 1 echo\n",
        )
        .unwrap();
        m.reload();
        let fd = m.services[0].listeners[0].fd.try_clone().unwrap();
        let read = || {
            let mut b = [0u8; 8];
            nix::unistd::read(&fd, &mut b).unwrap_or(0)
        };
        let later = Instant::now() + Duration::from_secs(5);
        m.timers(later);
        assert_eq!(read(), 0, "not used: no wake-up");
        m.services[0].used = true;
        m.timers(later + Duration::from_secs(5));
        assert_eq!(read(), 1, "used: one wake-up");
        assert!(!m.services[0].used);
    }

    #[test]
    fn plain_wakeup_fires_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Master::for_test(dir.path(), "");
        std::fs::write(
            m.config_dir.join("master.cf"),
            "tick fifo n - n 60 1 echo\n",
        )
        .unwrap();
        m.reload();
        m.timers(Instant::now());
        let mut b = [0u8; 8];
        assert_eq!(
            nix::unistd::read(&m.services[0].listeners[0].fd, &mut b).unwrap(),
            1
        );
        assert!(m.next_deadline().unwrap() > Instant::now() + Duration::from_secs(50));
    }
}
