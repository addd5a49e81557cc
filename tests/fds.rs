//! Open file descriptors of a mail system process, from /proc, checked
//! against what ARCHITECTURE.md lets it hold: its listening and client
//! sockets, the status pipe to master, event descriptors (epoll, signalfd,
//! eventfd, timerfd), /dev/null on stdio, and the log. Not allowed:
//! - a terminal (inherited from whoever started the mail system);
//! - a file or directory open for writing, other than /dev/null,
//!   maillog_file and master's own pid lock (queue files being written
//!   are work in progress: an idle daemon holds none);
//! - for a chrooted daemon, a directory outside its chroot (a way out of
//!   the jail with fchdir).
//!
//! Used by the privilege tests of tests/privilege.rs (an instance) and
//! tests/install.rs (the installed system, every daemon).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

/// One descriptor.
#[derive(Debug, Clone)]
pub(crate) struct Fd {
    /// Its number.
    pub num: u32,
    /// readlink of /proc/PID/fd/N (`socket:[..]`, a path, ...).
    pub target: String,
    /// open(2) flags from fdinfo.
    pub flags: u32,
    /// True when it is a directory.
    pub dir: bool,
}

/// The descriptors of `pid` (empty when the process is gone).
pub(crate) fn open_fds(pid: u32) -> Vec<Fd> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return out;
    };
    for e in entries.flatten() {
        let Ok(num) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(target) = std::fs::read_link(e.path()) else {
            continue;
        };
        let flags = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{num}"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("flags:"))
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            })
            .unwrap_or(0);
        let dir = std::fs::metadata(e.path()).is_ok_and(|m| m.is_dir());
        out.push(Fd {
            num,
            target: target.to_string_lossy().into_owned(),
            flags,
            dir,
        });
    }
    out.sort_by_key(|f| f.num);
    out
}

/// What the check needs to know about the system the process belongs to.
pub(crate) struct System<'a> {
    /// Where the system's / is on the host (`/` unless it runs in a root).
    pub root: &'a Path,
    /// queue_directory, as the system sees it.
    pub queue_dir: &'a Path,
    /// maillog_file, as the system sees it, if set.
    pub maillog_file: Option<&'a Path>,
}

impl System<'_> {
    /// A host path as the system sees it.
    fn inside(&self, host: &str) -> PathBuf {
        let host = host.strip_suffix(" (deleted)").unwrap_or(host);
        match Path::new(host).strip_prefix(self.root) {
            Ok(rel) => Path::new("/").join(rel),
            Err(_) => PathBuf::from(host),
        }
    }
}

/// Problems with the descriptors of `pid` (program `comm`, chrooted or
/// not), one line each; empty when all is as allowed.
pub(crate) fn problems(sys: &System<'_>, pid: u32, comm: &str, chrooted: bool) -> Vec<String> {
    let mut bad = Vec::new();
    for fd in open_fds(pid) {
        let t = &fd.target;
        if t.starts_with("/dev/pts/") || t.starts_with("/dev/tty") || t == "/dev/console" {
            bad.push(format!("{comm} ({pid}): fd {} is a terminal: {t}", fd.num));
            continue;
        }
        if !t.starts_with('/') {
            // socket:[..], pipe:[..], anon_inode:[..]
            continue;
        }
        let path = sys.inside(t);
        let writable = fd.flags & 0o3 != 0;
        if writable {
            let allowed = path == Path::new("/dev/null")
                || sys.maillog_file.is_some_and(|f| path == f)
                || (comm == "master" && path == sys.queue_dir.join("pid/master.pid"))
                // smtpd's session slots (maxproc across its processes):
                // a lock file in pid/, written never.
                || (comm == "smtpd"
                    && path.parent() == Some(&sys.queue_dir.join("pid"))
                    && path.extension().is_some_and(|e| e == "sessions"))
                // verify's cache, rewritten in place through the file
                // opened before its chroot (Debian's data_directory).
                || (comm == "verify" && path == Path::new("/var/lib/postfix/verify_cache.db"));
            if !allowed {
                bad.push(format!(
                    "{comm} ({pid}): fd {} open for writing: {} (flags {:o})",
                    fd.num,
                    path.display(),
                    fd.flags
                ));
            }
        }
        if chrooted && fd.dir && !path.starts_with(sys.queue_dir) {
            bad.push(format!(
                "{comm} ({pid}): fd {} is a directory outside its chroot: {}",
                fd.num,
                path.display()
            ));
        }
    }
    bad
}

/// All descriptors of `pid`, one per line (for failure messages).
pub(crate) fn describe(pid: u32) -> String {
    open_fds(pid)
        .iter()
        .map(|f| {
            format!(
                "  {} -> {} ({:o}{})",
                f.num,
                f.target,
                f.flags,
                if f.dir { ", dir" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
