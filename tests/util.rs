//! Test helpers: a temporary instance (config dir, queue dir, maillog) on
//! free ports, the `postfix` command run against it, and process checks.
//! An [`Instance`] always stops what it started when dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The directory holding the built binaries (target/<profile>).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/system-HASH
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf();
    for b in ["master", "postfix", "echo"] {
        assert!(
            dir.join(b).is_file(),
            "{} missing: run `cargo build --workspace --bins` before the tests",
            dir.join(b).display()
        );
    }
    dir
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// True when [::1] can be bound.
pub fn ipv6_available() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// Why the instance tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    if nix::unistd::geteuid().is_root()
        && nix::unistd::User::from_name("postfix")
            .ok()
            .flatten()
            .is_none()
    {
        return Some(
            "needs the mail_owner account `postfix` when running as root (.ci/run creates it)"
                .into(),
        );
    }
    None
}

/// Prints the skip line and returns true when the test should stop.
pub fn skipped(test: &str) -> bool {
    match skip_reason() {
        Some(r) => {
            println!("skipped: {test}: {r}");
            true
        }
        None => false,
    }
}

/// Polls `f` every 20 ms until it is true or `limit` passes.
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

/// A temporary instance.
pub struct Instance {
    /// Holds everything; removed on drop.
    pub dir: tempfile::TempDir,
    /// The configuration directory (main.cf, master.cf).
    pub config_dir: PathBuf,
    /// queue_directory.
    pub qdir: PathBuf,
    /// maillog_file.
    pub maillog: PathBuf,
    /// The port of the default echo service on 127.0.0.1 (and [::1]).
    pub port: u16,
    /// True when the echo service also listens on [::1].
    pub v6: bool,
}

impl Instance {
    /// An instance with `main_extra` appended to main.cf and the given master.cf.
    pub fn new(main_extra: &str, master_cf: &str) -> Instance {
        let dir = tempfile::tempdir().unwrap();
        // Canonical, so it compares with /proc/PID/root.
        let base = dir.path().canonicalize().unwrap();
        let config_dir = base.join("etc");
        let qdir = base.join("spool");
        let maillog = base.join("maillog");
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::create_dir_all(qdir.join("pid")).unwrap();
        let bin = bin_dir();
        let main_cf = format!(
            "queue_directory = {}\ndaemon_directory = {}\ncommand_directory = {}\nmaillog_file = {}\n\
             inet_interfaces = loopback-only\nservice_throttle_time = 2s\n{main_extra}",
            qdir.display(),
            bin.display(),
            bin.display(),
            maillog.display()
        );
        std::fs::write(config_dir.join("main.cf"), main_cf).unwrap();
        let inst = Instance {
            dir,
            config_dir,
            qdir,
            maillog,
            port: 0,
            v6: false,
        };
        inst.write_master_cf(master_cf);
        inst
    }

    /// An instance running echo on 127.0.0.1:PORT ([::1]:PORT when
    /// available, maxproc 4) and on the unix socket private/echo.
    pub fn echo() -> Instance {
        let port = free_port();
        let v6 = ipv6_available();
        let mut cf = format!("127.0.0.1:{port} inet n - n - 4 echo\necho unix - n n - 4 echo\n");
        if v6 {
            cf.push_str(&format!("[::1]:{port} inet n - n - 4 echo\n"));
        }
        let mut inst = Instance::new("", &cf);
        inst.port = port;
        inst.v6 = v6;
        inst
    }

    /// Replaces master.cf.
    pub fn write_master_cf(&self, text: &str) {
        std::fs::write(self.config_dir.join("master.cf"), text).unwrap();
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

    /// Runs `postfix -c CONFIG args...` as another user.
    pub fn postfix_as(&self, uid: u32, gid: u32, args: &[&str]) -> Output {
        use std::os::unix::process::CommandExt;
        Command::new(bin_dir().join("postfix"))
            .arg("-c")
            .arg(&self.config_dir)
            .args(args)
            .uid(uid)
            .gid(gid)
            .output()
            .unwrap()
    }

    /// Gives the whole instance directory to `uid:gid`.
    pub fn chown_all(&self, uid: u32, gid: u32) {
        fn walk(p: &Path, uid: u32, gid: u32) {
            std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
            if p.is_dir() && !p.is_symlink() {
                for e in std::fs::read_dir(p).unwrap().flatten() {
                    walk(&e.path(), uid, gid);
                }
            }
        }
        walk(self.dir.path(), uid, gid);
    }

    /// `postfix start`, which must succeed.
    pub fn start(&self) {
        let out = self.postfix(&["start"]);
        assert!(
            out.status.success(),
            "postfix start failed: {}\nmaillog:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// The maillog so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.maillog).unwrap_or_default()
    }

    /// master's pid from the pid file (only meaningful while running).
    pub fn master_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.qdir.join("pid/master.pid")).ok()?;
        text.trim().parse().ok()
    }

    /// master's live children.
    pub fn children(&self) -> Vec<i32> {
        match self.master_pid() {
            Some(m) => children_of(m),
            None => Vec::new(),
        }
    }

    /// The path of a unix service socket.
    pub fn socket(&self, private: bool, name: &str) -> PathBuf {
        self.qdir
            .join(if private { "private" } else { "public" })
            .join(name)
    }

    /// Live processes other than this one that mention the instance's
    /// directory in their command line or environment.
    pub fn leftovers(&self) -> Vec<i32> {
        let needle = self
            .dir
            .path()
            .canonicalize()
            .unwrap()
            .display()
            .to_string();
        let me = std::process::id() as i32;
        all_pids()
            .into_iter()
            .filter(|p| *p != me && alive(*p))
            .filter(|p| {
                ["cmdline", "environ"].iter().any(|f| {
                    std::fs::read(format!("/proc/{p}/{f}"))
                        .map(|b| String::from_utf8_lossy(&b).contains(&needle))
                        .unwrap_or(false)
                })
            })
            .collect()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if self.master_pid().is_some() {
            let _ = self.postfix(&["stop"]);
        }
        for p in self.leftovers() {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::SIGKILL);
        }
    }
}

/// Sends "pid" over TCP and returns the serving process's pid.
pub fn ask_pid(addr: SocketAddr) -> i32 {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    ask(s)
}

/// Sends "pid" over a unix socket and returns the serving process's pid.
pub fn ask_pid_unix(path: &Path) -> i32 {
    let s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    ask(s)
}

fn ask<S: std::io::Read + Write>(mut s: S) -> i32 {
    s.write_all(b"pid\n").unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    line.trim()
        .strip_prefix("pid ")
        .expect("pid reply")
        .parse()
        .unwrap()
}

/// True when a TCP connection to `addr` is accepted by the kernel.
pub fn answers(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// 127.0.0.1:port.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// True when the process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat.get(i + 1..))
            .and_then(|r| r.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Live processes whose parent is `ppid`.
pub fn children_of(ppid: i32) -> Vec<i32> {
    all_pids()
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let r = s.get(s.rfind(')')? + 1..)?.to_string();
                    r.split_whitespace().nth(1)?.parse::<i32>().ok()
                })
                == Some(ppid)
        })
        .filter(|p| alive(*p))
        .collect()
}

/// Sends SIGKILL.
pub fn kill9(pid: i32) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
}
