//! Child deaths (SIGCHLD) and stopping everything (SIGTERM, SIGINT).
//!
//! A child that exits abnormally is logged as Postfix does
//! (`warning: process /path pid N exit status S`, `... killed by signal S`);
//! one that died before taking any client also throttles its service for
//! service_throttle_time (`warning: /path: bad command startup -- throttling`),
//! so a broken daemon is not forked in a tight loop.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::event::{Master, Retired, throttle_time};

/// How long `postfix stop` children get between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How a child ended.
#[derive(Debug, Clone, Copy)]
enum End {
    Exit(i32),
    Signal(i32),
}

impl Master {
    /// Reaps every child that has exited.
    pub(crate) fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => self.child_died(pid, End::Exit(code)),
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    self.child_died(pid, End::Signal(sig as i32))
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }

    fn child_died(&mut self, pid: Pid, end: End) {
        let Ok(pid) = u32::try_from(pid.as_raw()) else {
            return;
        };
        let abnormal = !matches!(end, End::Exit(0));
        if let Some(r) = self.retired.remove(&pid) {
            if abnormal && !r.killed {
                log_end(&r.path.display().to_string(), pid, end);
            }
            return;
        }
        let throttle = throttle_time(&self.config);
        for s in &mut self.services {
            let Some(st) = s.remove_child(pid) else {
                continue;
            };
            if st.killed || !abnormal {
                return;
            }
            let path = s.path.display().to_string();
            log_end(&path, pid, end);
            if st.use_count == 0 && s.throttled_until.is_none() {
                maillog::warning!("{path}: bad command startup -- throttling");
                s.throttled_until = Some(Instant::now() + throttle);
            }
            return;
        }
    }

    /// Sends SIGTERM to every child (and forgets them as service children).
    pub(crate) fn kill_children(&mut self, sig: Signal) {
        for s in &mut self.services {
            for (pid, st) in s.children.iter_mut() {
                st.killed = true;
                send(*pid, sig);
            }
        }
        for (pid, r) in self.retired.iter_mut() {
            r.killed = true;
            send(*pid, sig);
        }
    }

    fn child_count(&self) -> usize {
        self.services
            .iter()
            .map(|s| s.children.len())
            .sum::<usize>()
            + self.retired.len()
    }

    /// Stops every child (SIGTERM, then SIGKILL after a grace period),
    /// removes the pid file and exits.
    pub(crate) fn terminate(&mut self, sig: Signal) -> ! {
        maillog::info!("terminating on signal {}", sig as i32);
        // Listeners close first so no new client waits on a dying service.
        for s in &mut self.services {
            s.listeners.clear();
        }
        self.kill_children(Signal::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        while self.child_count() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            self.reap();
        }
        if self.child_count() > 0 {
            self.kill_children(Signal::SIGKILL);
            let deadline = Instant::now() + Duration::from_secs(1);
            while self.child_count() > 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
                self.reap();
            }
        }
        if let Some(l) = self.pid_lock.take() {
            l.remove();
        }
        std::process::exit(0)
    }

    /// Moves children of a retired incarnation to the reap-only list.
    pub(crate) fn retire(&mut self, pids: Vec<u32>, path: &std::path::Path, killed: bool) {
        for pid in pids {
            if killed {
                send(pid, Signal::SIGTERM);
            }
            self.retired.insert(
                pid,
                Retired {
                    path: path.to_path_buf(),
                    killed,
                },
            );
        }
    }
}

fn send(pid: u32, sig: Signal) {
    if let Ok(p) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(p), sig);
    }
}

fn log_end(path: &str, pid: u32, end: End) {
    match end {
        End::Exit(code) => maillog::warning!("process {path} pid {pid} exit status {code}"),
        End::Signal(sig) => maillog::warning!("process {path} pid {pid} killed by signal {sig}"),
    }
}
