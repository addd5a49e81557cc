//! Signals as readable events for master's poll loop: the signals are
//! blocked and delivered through a signalfd, so no handler code runs
//! asynchronously (no self-pipe and no `unsafe` needed). Children start
//! with an empty signal mask again (std's spawn resets it).

use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// A signalfd for a fixed set of signals.
#[derive(Debug)]
pub struct Signals {
    fd: SignalFd,
}

impl Signals {
    /// Blocks `list` in the calling thread and opens a signalfd for it. Call
    /// before any thread is started, so no other thread takes the signals.
    ///
    /// # Errors
    /// sigprocmask or signalfd failed.
    pub fn new(list: &[Signal]) -> Result<Signals, nix::errno::Errno> {
        let mut set = SigSet::empty();
        for s in list {
            set.add(*s);
        }
        set.thread_block()?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(Signals { fd })
    }

    /// The signals that arrived since the last call (each at most once per read).
    pub fn pending(&self) -> Vec<Signal> {
        let mut out = Vec::new();
        while let Ok(Some(info)) = self.fd.read_signal() {
            let Ok(n) = i32::try_from(info.ssi_signo) else {
                continue;
            };
            if let Ok(sig) = Signal::try_from(n)
                && !out.contains(&sig)
            {
                out.push(sig);
            }
        }
        out
    }
}

impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
