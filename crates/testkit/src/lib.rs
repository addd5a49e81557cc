//! Support code for tests only; never a dependency of a program, only a
//! `[dev-dependencies]` entry.
//!
//! It holds what the integration tests of several crates shared by copy:
//! where the built binaries are ([`bin_dir`], reachable by other users
//! from any checkout), polling ([`wait_until`]), what a test needs and the
//! one way to skip ([`need_instance`], [`need_program`], [`skip`],
//! [`skip_unless_root`]; a missing prerequisite that the project's scripts
//! provide fails the test, see the `skip` module), a free TCP port
//! ([`free_port`]) and a temporary instance ([`Instance`]): a temp dir
//! with `etc/main.cf` and `etc/master.cf` written from strings, `spool` as
//! queue_directory and `maillog` as maillog_file, started either by
//! spawning `master` directly or through `postfix start`, and stopped when
//! dropped.
//!
//! Functions panic on setup failures: they are meant for tests.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support")]

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod accounts;
mod bins;
pub mod dovecot;
mod skip;

pub use bins::bin_dir;
pub use skip::{
    SKIP_LOG_ENV, have_program, is_root, need_bins, need_file, need_instance, need_mail_owner,
    need_others_can_run, need_program, skip, skip_unless_root, test_name,
};

/// Runs the program `exe` (a command called `name`) with an argument that
/// is not UTF-8 and checks that it answers with its `NAME: fatal: usage:`
/// line and a failure status, not a panic (std::env::args panics, exit
/// 101).
pub fn assert_non_utf8_argument_is_usage_error(exe: &str, name: &str) {
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"-\xff\xfe");
    let out = Command::new(exe)
        .arg(bad)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert_ne!(out.status.code(), Some(101), "{err}");
    assert!(err.contains(&format!("{name}: fatal: usage: ")), "{err}");
}

fn mail_owner_account() -> Option<nix::unistd::User> {
    nix::unistd::User::from_name("postfix").ok().flatten()
}

/// The uid and gid of `postfix` when running as root (created if
/// missing, see [`need_mail_owner`]), else `None` (the queue then belongs
/// to the user running the tests).
pub fn mail_owner() -> Option<(u32, u32)> {
    if !is_root() {
        return None;
    }
    need_mail_owner();
    mail_owner_account().map(|u| (u.uid.as_raw(), u.gid.as_raw()))
}

/// Polls `f` every 20 ms until it is true (`true`) or `limit` passes
/// (`false`).
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A TCP port on 127.0.0.1 free at the time of the call, and never one
/// this process handed out before (the kernel may give the port of a
/// just-closed probe again: two services of one test got the same one).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Makes `p` mode 0755: a directory others may search (daemons running as
/// `postfix` must reach main.cf, the queue and sockets through it).
pub fn open_dir(p: &Path) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// How an [`Instance`] was started, so that drop stops it the same way.
enum Running {
    No,
    Master(Child),
    Postfix,
}

/// A temporary instance: `BASE/etc` (main.cf, master.cf), `BASE/spool`
/// (queue_directory), `BASE/maillog`. Stopped when dropped, if started.
pub struct Instance {
    _dir: Option<tempfile::TempDir>,
    /// The instance's top directory (canonical).
    pub base: PathBuf,
    /// The configuration directory, `BASE/etc`.
    pub config_dir: PathBuf,
    /// queue_directory, `BASE/spool`.
    pub qdir: PathBuf,
    /// maillog_file, `BASE/maillog`.
    pub maillog: PathBuf,
    /// The whole main.cf as written.
    pub main_cf: String,
    running: Running,
}

impl Instance {
    /// An instance in a new temp dir (mode 0755): see [`Instance::new_in`].
    pub fn new(main_extra: &str, master_cf: &str) -> Instance {
        let dir = tempfile::tempdir().unwrap();
        open_dir(dir.path());
        let base = dir.path().canonicalize().unwrap();
        let mut inst = Instance::new_in(&base, main_extra, master_cf);
        inst._dir = Some(dir);
        inst
    }

    /// An instance under `base` (which must exist): writes main.cf with
    /// queue_directory, daemon_directory, command_directory (both
    /// [`bin_dir`]) and maillog_file, then `main_extra`; master.cf is
    /// `master_cf`. Creates `spool/pid` (mode 0755), not the rest of the
    /// queue: [`Instance::start_master`] or `postfix start` does that.
    pub fn new_in(base: &Path, main_extra: &str, master_cf: &str) -> Instance {
        let bin = bin_dir();
        let config_dir = base.join("etc");
        let qdir = base.join("spool");
        let maillog = base.join("maillog");
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::create_dir_all(qdir.join("pid")).unwrap();
        open_dir(&qdir);
        let main_cf = format!(
            "queue_directory = {}\ndaemon_directory = {b}\ncommand_directory = {b}\n\
             maillog_file = {}\n{main_extra}",
            qdir.display(),
            maillog.display(),
            b = bin.display(),
        );
        std::fs::write(config_dir.join("main.cf"), &main_cf).unwrap();
        std::fs::write(config_dir.join("master.cf"), master_cf).unwrap();
        Instance {
            _dir: None,
            base: base.to_path_buf(),
            config_dir,
            qdir,
            maillog,
            main_cf,
            running: Running::No,
        }
    }

    /// Creates the queue layout (owned by [`mail_owner`]), spawns `master
    /// -c CONFIG` (stderr discarded) and waits up to 10 s for
    /// `QUEUE/socket` (e.g. `private/rewrite`). Drop sends it SIGTERM.
    pub fn start_master(&mut self, socket: &str) {
        queue::layout::create_or_repair(&self.qdir, mail_owner(), None).unwrap();
        let master = Command::new(bin_dir().join("master"))
            .arg("-c")
            .arg(&self.config_dir)
            .env("MAIL_CONFIG", &self.config_dir)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.running = Running::Master(master);
        let sock = self.socket(socket);
        assert!(
            wait_until(Duration::from_secs(10), || sock.exists()),
            "master did not create {socket}"
        );
    }

    /// Runs `postfix -c CONFIG args...`.
    pub fn postfix(&self, args: &[&str]) -> Output {
        Command::new(bin_dir().join("postfix"))
            .arg("-c")
            .arg(&self.config_dir)
            .args(args)
            .output()
            .unwrap()
    }

    /// `postfix start`, which must succeed. Drop runs `postfix stop` and
    /// waits up to 10 s for master to exit (then kills it).
    pub fn start_postfix(&mut self) {
        let out = self.postfix(&["start"]);
        // Stopped on drop even when start half failed.
        self.running = Running::Postfix;
        assert!(
            out.status.success(),
            "postfix start failed: {}\nmaillog:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// The path of the socket `name` under the queue (e.g. `private/auth`).
    pub fn socket(&self, name: &str) -> PathBuf {
        self.qdir.join(name)
    }

    /// Waits up to 10 s for the socket `name`; panics with the maillog if
    /// it does not appear.
    pub fn wait_socket(&self, name: &str) {
        let sock = self.socket(name);
        assert!(
            wait_until(Duration::from_secs(10), || sock.exists()),
            "no {} after start; maillog:\n{}",
            sock.display(),
            self.log()
        );
    }

    /// The maillog so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.maillog).unwrap_or_default()
    }

    /// Waits up to 10 s until the maillog contains `needle`.
    pub fn wait_log(&self, needle: &str) -> bool {
        wait_until(Duration::from_secs(10), || self.log().contains(needle))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        match &mut self.running {
            Running::No => {}
            Running::Master(master) => {
                let pid = nix::unistd::Pid::from_raw(master.id() as i32);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM);
                let _ = master.wait();
            }
            Running::Postfix => {
                let pid = std::fs::read_to_string(self.qdir.join("pid/master.pid"))
                    .ok()
                    .and_then(|t| t.trim().parse::<i32>().ok());
                let _ = self.postfix(&["stop"]);
                if let Some(pid) = pid {
                    let p = nix::unistd::Pid::from_raw(pid);
                    if !wait_until(Duration::from_secs(10), || {
                        nix::sys::signal::kill(p, None).is_err()
                    }) {
                        let _ = nix::sys::signal::kill(p, nix::sys::signal::SIGKILL);
                    }
                }
            }
        }
    }
}
