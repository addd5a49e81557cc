//! Passing descriptors from master to a child (and an empty signal mask): the status pipe at
//! [`STATUS_FD`] (3) and the listeners at
//! [`LISTEN_FD`], [`LISTEN_FD`]+1, ... (4, 5, ...).
//!
//! Master keeps every descriptor close-on-exec, so a child gets exactly the
//! ones [`pass_fds`] places; the child takes them with [`take`] and marks
//! them close-on-exec again so its own helpers do not inherit listeners.
//!
//! # Security
//!
//! This is one of the two places with `unsafe` (the other is
//! [`take`]): after fork and before exec only async-signal-safe calls are
//! allowed, so the descriptor shuffle is done with raw `fcntl`/`dup2`
//! on a list built before the fork.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::status::STATUS_FD;

/// close_range(2)'s flag: mark close-on-exec instead of closing.
const CLOSE_RANGE_CLOEXEC: nix::libc::c_uint = 1 << 2;

/// The first inherited listener.
pub const LISTEN_FD: RawFd = 4;

/// Arranges for `cmd`'s child to get `status` as fd 3 and `listeners` as fd 4, 5, ...
/// Nothing else is inherited: every other descriptor is made close-on-exec
/// in the child, also one the parent inherited without the flag.
pub fn pass_fds(cmd: &mut Command, status: RawFd, listeners: &[RawFd]) {
    let mut sources: Vec<RawFd> = Vec::with_capacity(listeners.len() + 1);
    sources.push(status);
    sources.extend_from_slice(listeners);
    // Above every target, so moving one source never overwrites another.
    let count = RawFd::try_from(sources.len()).unwrap_or(RawFd::MAX / 2);
    let high = STATUS_FD.saturating_add(count).saturating_add(1);
    let mut scratch: Vec<RawFd> = vec![-1; sources.len()];
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the forked child before exec. It calls only
    // sigemptyset, sigprocmask, fcntl, dup2 and the close_range system call,
    // which are async-signal-safe, on
    // integers prepared before the fork; `scratch` was allocated before the
    // fork and is only written to, never grown, so nothing allocates.
    unsafe {
        cmd.pre_exec(move || {
            // master blocks the signals it reads from a signalfd; a blocked
            // mask survives exec, and a child must die on SIGTERM.
            let mut set = std::mem::MaybeUninit::<nix::libc::sigset_t>::uninit();
            nix::libc::sigemptyset(set.as_mut_ptr());
            if nix::libc::sigprocmask(nix::libc::SIG_SETMASK, set.as_ptr(), std::ptr::null_mut())
                < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            for (i, fd) in sources.iter().enumerate() {
                let copy = nix::libc::fcntl(*fd, nix::libc::F_DUPFD_CLOEXEC, high);
                if copy < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if let Some(slot) = scratch.get_mut(i) {
                    *slot = copy;
                }
            }
            for (i, copy) in scratch.iter().enumerate() {
                let target = STATUS_FD.saturating_add(RawFd::try_from(i).unwrap_or(0));
                // dup2 clears close-on-exec on the target.
                if nix::libc::dup2(*copy, target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // Anything else the parent was given without close-on-exec (a
            // terminal, a descriptor leaked by whoever started master)
            // closes at exec: marked, not closed, so std's own exec-error
            // pipe still works. close_range(CLOSE_RANGE_CLOEXEC) where the
            // kernel has it (5.11), else fcntl on the usual range.
            let first = STATUS_FD.saturating_add(count);
            let first_u = u32::try_from(first).unwrap_or(u32::MAX);
            if nix::libc::syscall(
                nix::libc::SYS_close_range,
                first_u,
                u32::MAX,
                CLOSE_RANGE_CLOEXEC,
            ) < 0
            {
                for fd in first..4096 {
                    nix::libc::fcntl(fd, nix::libc::F_SETFD, nix::libc::FD_CLOEXEC);
                }
            }
            Ok(())
        });
    }
}

/// Takes inherited descriptor `fd` (a child calls this once per fd at
/// startup) and marks it close-on-exec. `None` when it is not open.
pub fn take(fd: RawFd) -> Option<OwnedFd> {
    #[allow(unsafe_code)]
    // SAFETY: F_GETFD on any integer is harmless; it fails with EBADF when the
    // descriptor is not open, and then we do not claim it.
    let flags = unsafe { nix::libc::fcntl(fd, nix::libc::F_GETFD) };
    if flags < 0 {
        return None;
    }
    #[allow(unsafe_code)]
    // SAFETY: the descriptor is open (checked above) and, by the master-child
    // protocol, was passed to this process for the skeleton alone; the
    // skeleton calls take() once per number, so there is a single owner.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let _ = nix::fcntl::fcntl(
        &owned,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    Some(owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    #[test]
    fn child_sees_fds_at_three_and_four() {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let (r2, w2) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        // Only 3 and 4 are checked: other tests in this process open
        // descriptors at the same time, so what else a child sees at 5 and
        // up is not this function's doing.
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg("echo status >&3; echo listen >&4");
        pass_fds(&mut cmd, w.as_raw_fd(), &[w2.as_raw_fd()]);
        let status = cmd.status().unwrap();
        drop(w);
        drop(w2);
        assert!(status.success());
        let mut s = String::new();
        std::fs::File::from(r).read_to_string(&mut s).unwrap();
        assert_eq!(s, "status\n");
        s.clear();
        std::fs::File::from(r2).read_to_string(&mut s).unwrap();
        assert_eq!(s, "listen\n");
    }

    #[test]
    fn take_refuses_closed_fd() {
        assert!(take(9999).is_none());
    }
}
