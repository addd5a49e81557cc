//! A private Dovecot (Debian's dovecot-core and the protocol packages
//! scripts/install-deps installs) for tests that compare with it or use
//! it as a peer: its own base_dir, state_dir and log in a temporary
//! directory, running as root without Dovecot's system accounts
//! (default_internal_user = root), started in the foreground and stopped
//! (SIGTERM, then SIGKILL) when dropped.
//!
//! ```text
//! let dc = Dovecot::start("protocols = lmtp\n...", |d| d.join("run/lmtp"));
//! dc.path() ; dc.log() ; dc.version()
//! ```

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::wait_until;

/// The path of Debian's Dovecot master binary.
pub const DOVECOT: &str = "/usr/sbin/dovecot";

/// A running private Dovecot.
pub struct Dovecot {
    dir: tempfile::TempDir,
    child: Child,
}

/// How a started Dovecot shows it is ready: a Unix socket that accepts,
/// or a TCP port on 127.0.0.1 that accepts.
pub enum Ready {
    /// A Unix socket that accepts.
    Socket(PathBuf),
    /// A TCP port on 127.0.0.1 that accepts.
    Port(u16),
}

impl Dovecot {
    /// Starts Dovecot with `conf` (the protocol-specific part of
    /// dovecot.conf; `{dir}` in it stands for the temporary directory)
    /// after the common lines (base_dir, state_dir, log_path, root as
    /// internal and login user unless `conf` names another login user).
    /// `ready` names, from the directory, what must accept before this
    /// returns (10 s at most, else it panics with Dovecot's stderr and log).
    pub fn start(conf: &str, ready: impl FnOnce(&Path) -> Ready) -> Dovecot {
        crate::need_program(DOVECOT, "dovecot-core");
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().canonicalize().expect("canonical tempdir");
        // Mail and login processes that are not root must reach their
        // sockets and homes under the directory.
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let b = d.display();
        let login = if conf.contains("default_login_user") {
            String::new()
        } else {
            "default_login_user = root\n".to_string()
        };
        let text = format!(
            "base_dir = {b}/run\nstate_dir = {b}/state\nlog_path = {b}/dovecot.log\n\
             default_internal_user = root\ndefault_internal_group = root\n{login}{}",
            conf.replace("{dir}", &b.to_string())
        );
        std::fs::write(d.join("dovecot.conf"), text).expect("write dovecot.conf");
        let child = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(d.join("dovecot.conf"))
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(d.join("stderr")).expect("stderr file"))
            .spawn()
            .expect("spawn dovecot");
        let mut dovecot = Dovecot { dir, child };
        let ready = ready(&d);
        let mut exited = None;
        let up = wait_until(Duration::from_secs(10), || {
            exited = dovecot.child.try_wait().ok().flatten();
            exited.is_some()
                || match &ready {
                    Ready::Socket(p) => std::os::unix::net::UnixStream::connect(p).is_ok(),
                    Ready::Port(port) => std::net::TcpStream::connect(("127.0.0.1", *port)).is_ok(),
                }
        });
        assert!(
            up && exited.is_none(),
            "Dovecot never answered (exit: {exited:?}); stderr:\n{}\nlog:\n{}",
            std::fs::read_to_string(d.join("stderr")).unwrap_or_default(),
            dovecot.log()
        );
        dovecot
    }

    /// Its temporary directory (what `{dir}` stood for).
    pub fn path(&self) -> PathBuf {
        self.dir
            .path()
            .canonicalize()
            .unwrap_or_else(|_| self.dir.path().to_path_buf())
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("dovecot.log")).unwrap_or_default()
    }

    /// The version Dovecot logged when it started ("" before that).
    pub fn version(&self) -> String {
        self.log()
            .lines()
            .find_map(|l| {
                l.split_once("Dovecot v")
                    .map(|(_, v)| v.split(' ').next().unwrap_or("").to_string())
            })
            .unwrap_or_default()
    }

    /// The messages (their text) in `Maildir/new` under `home`.
    pub fn maildir_new(home: &Path) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(home.join("Maildir/new"))
            .map(|d| {
                d.flatten()
                    .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM: Dovecot's master stops its services, then exits.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        if !wait_until(Duration::from_secs(5), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        }) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
