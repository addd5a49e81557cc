//! Helpers for auth's integration tests: one of our instances (master and
//! auth) in a temporary directory, stopped when dropped.

#![allow(dead_code)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The directory of the built binaries, when master and postfix are there
/// beside auth (`cargo build --bins -p master -p postfix -p authd`).
pub(crate) fn bin_dir() -> Result<PathBuf, String> {
    let auth = PathBuf::from(env!("CARGO_BIN_EXE_auth"));
    let dir = auth.parent().map(Path::to_path_buf).unwrap_or_default();
    for b in ["master", "postfix"] {
        if !dir.join(b).is_file() {
            return Err(format!(
                "{} missing: run `cargo build --bins -p master -p postfix -p authd` first",
                dir.join(b).display()
            ));
        }
    }
    Ok(dir)
}

/// Why an instance cannot run here, if it cannot.
pub(crate) fn skip_reason() -> Option<String> {
    if let Err(e) = bin_dir() {
        return Some(e);
    }
    if nix::unistd::geteuid().is_root()
        && nix::unistd::User::from_name("postfix")
            .ok()
            .flatten()
            .is_none()
    {
        return Some("needs the mail_owner account `postfix` when running as root".into());
    }
    None
}

/// Polls `f` every 20 ms until it is true or `limit` passes.
pub(crate) fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
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

/// A directory others may search (Postfix's smtpd, running as `postfix`,
/// must reach our socket through it).
pub(crate) fn open_dir(p: &Path) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Our instance: master with the auth service only.
pub(crate) struct Ours {
    /// The configuration directory.
    pub(crate) config_dir: PathBuf,
    /// queue_directory.
    pub(crate) qdir: PathBuf,
    /// maillog_file.
    pub(crate) maillog: PathBuf,
    /// The passwd-file auth_passdb names.
    pub(crate) passwd: PathBuf,
    bin: PathBuf,
    started: bool,
}

impl Ours {
    /// Writes an instance under `base` (which must exist) with
    /// `auth_passdb = passwd-file:BASE/etc/passwd` and `main_extra`.
    pub(crate) fn new(base: &Path, main_extra: &str) -> Ours {
        let bin = bin_dir().unwrap();
        let config_dir = base.join("etc");
        let qdir = base.join("spool");
        let maillog = base.join("maillog");
        let passwd = config_dir.join("passwd");
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::create_dir_all(qdir.join("pid")).unwrap();
        open_dir(&qdir);
        let main_cf = format!(
            "queue_directory = {q}\ndaemon_directory = {b}\ncommand_directory = {b}\n\
             maillog_file = {l}\ninet_interfaces = loopback-only\nservice_throttle_time = 2s\n\
             auth_passdb = passwd-file:{p}\n{main_extra}",
            q = qdir.display(),
            b = bin.display(),
            l = maillog.display(),
            p = passwd.display(),
        );
        std::fs::write(config_dir.join("main.cf"), main_cf).unwrap();
        // The line etc-postfix/master.cf ships.
        std::fs::write(
            config_dir.join("master.cf"),
            "auth      unix  -       n       n       -       1       auth\n",
        )
        .unwrap();
        Ours {
            config_dir,
            qdir,
            maillog,
            passwd,
            bin,
            started: false,
        }
    }

    /// Replaces the passwd-file.
    pub(crate) fn write_passwd(&self, text: &str) {
        let tmp = self.passwd.with_extension("new");
        let mut f = std::fs::File::create(&tmp).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        std::fs::rename(&tmp, &self.passwd).unwrap();
    }

    /// Runs `postfix -c CONFIG args...`.
    pub(crate) fn postfix(&self, args: &[&str]) -> Output {
        Command::new(self.bin.join("postfix"))
            .arg("-c")
            .arg(&self.config_dir)
            .args(args)
            .output()
            .unwrap()
    }

    /// Starts master and waits for private/auth.
    pub(crate) fn start(&mut self) {
        let out = self.postfix(&["start"]);
        assert!(
            out.status.success(),
            "postfix start failed: {}\nmaillog:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        self.started = true;
        let sock = self.socket();
        assert!(
            wait_until(Duration::from_secs(10), || sock.exists()),
            "no {} after start; maillog:\n{}",
            sock.display(),
            self.log()
        );
    }

    /// The auth socket.
    pub(crate) fn socket(&self) -> PathBuf {
        self.qdir.join("private/auth")
    }

    /// The maillog so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.maillog).unwrap_or_default()
    }

    /// Waits until the maillog contains `needle`.
    pub(crate) fn wait_log(&self, needle: &str) -> bool {
        wait_until(Duration::from_secs(10), || self.log().contains(needle))
    }
}

impl Drop for Ours {
    fn drop(&mut self) {
        if !self.started {
            return;
        }
        let pidfile = self.qdir.join("pid/master.pid");
        let pid = std::fs::read_to_string(&pidfile)
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
