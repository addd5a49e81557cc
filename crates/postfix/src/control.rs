//! start, stop, abort, reload and status: master found through its pid file.

use std::io::IsTerminal;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use config::Config;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long `stop` waits for master to finish.
const STOP_WAIT: Duration = Duration::from_secs(15);

/// The instance being controlled.
pub(crate) struct Control {
    config: Config,
    pid_file: PathBuf,
    daemon_dir: PathBuf,
}

impl Control {
    /// Loads main.cf and opens the log (fatal on a bad main.cf).
    pub(crate) fn new(dir: &Path) -> Control {
        log_init("postfix", None, None);
        let config = match Config::load(dir) {
            Ok(c) => c,
            Err(e) => maillog::fatal!("{e}"),
        };
        let file = config.str("maillog_file");
        log_init(
            &config.str("syslog_name"),
            (!file.is_empty()).then(|| PathBuf::from(file)),
            Some(&config.str("myhostname")),
        );
        let qdir = PathBuf::from(config.str("queue_directory"));
        Control {
            pid_file: ipc::pidfile::path(&qdir),
            daemon_dir: PathBuf::from(config.str("daemon_directory")),
            config,
        }
    }

    fn running(&self) -> Option<i32> {
        ipc::pidfile::running(&self.pid_file).map(|p| i32::try_from(p).unwrap_or(0))
    }

    fn must_run(&self) -> Pid {
        match self.running() {
            Some(p) if p > 0 => Pid::from_raw(p),
            _ => maillog::fatal!("the Postfix mail system is not running"),
        }
    }

    /// The loaded main.cf.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// `postfix check`.
    pub(crate) fn check(&self) {
        for w in self.config.warnings() {
            maillog::warning!("{w}");
        }
        let problems = crate::check::check(&self.config);
        for p in &problems {
            maillog::error!("{p}");
        }
        if !problems.is_empty() {
            std::process::exit(1);
        }
    }

    fn master_command(&self) -> Command {
        let mut cmd = Command::new(self.daemon_dir.join("master"));
        cmd.arg("-c")
            .arg(self.config.config_dir())
            .env("MAIL_CONFIG", self.config.config_dir());
        cmd
    }

    fn refuse_if_running(&self) {
        if self.running().is_some() {
            maillog::fatal!("the Postfix mail system is already running");
        }
    }

    /// `postfix start`: master detached; waits until it is up or failed.
    pub(crate) fn start(&self) {
        self.refuse_if_running();
        self.check();
        maillog::info!("starting the Postfix mail system");
        let mut cmd = self.master_command();
        cmd.arg("-s")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => maillog::fatal!("{}: {e}", self.daemon_dir.join("master").display()),
        };
        // master closes its stderr once every listener is open.
        let mut text = String::new();
        if let Some(mut err) = child.stderr.take() {
            let _ = err.by_ref().take(64 * 1024).read_to_string(&mut text);
        }
        let deadline = Instant::now() + Duration::from_millis(300);
        let mut failed = text.contains("fatal:");
        while !failed && Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(_)) => failed = true,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break,
            }
        }
        if failed {
            let _ = child.wait();
            eprint!("{text}");
            maillog::fatal!("the Postfix mail system failed to start");
        }
    }

    /// `postfix start-fg`: this process becomes master.
    ///
    /// Under systemd stderr is the journal, which also receives syslog:
    /// records are copied to stderr only when it is a terminal (master
    /// does the same), so that each line reaches the journal once.
    pub(crate) fn start_fg(&self) {
        if !std::io::stderr().is_terminal() {
            let file = self.config.str("maillog_file");
            maillog::init(
                maillog::Setup::new(maillog::Options {
                    syslog_name: self.config.str("syslog_name"),
                    program: "postfix-script".to_string(),
                    maillog_file: (!file.is_empty()).then(|| PathBuf::from(file)),
                    stderr: false,
                })
                .hostname(&self.config.str("myhostname")),
            );
            if self.running().is_some() {
                eprintln!("postfix: fatal: the Postfix mail system is already running");
            }
        }
        self.refuse_if_running();
        self.check();
        maillog::info!("starting the Postfix mail system");
        let e = self.master_command().exec();
        maillog::fatal!("{}: {e}", self.daemon_dir.join("master").display())
    }

    /// `postfix stop`: SIGTERM, then wait for master to let go of the pid file.
    pub(crate) fn stop(&self) {
        let pid = self.must_run();
        maillog::info!("stopping the Postfix mail system");
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_WAIT;
        while self.running().is_some() {
            if Instant::now() > deadline {
                maillog::fatal!("stop timeout: master pid {pid} still running");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `postfix abort`: SIGKILL to master's children and master.
    pub(crate) fn abort(&self) {
        let pid = self.must_run();
        maillog::info!("aborting the Postfix mail system");
        // Stop master first so it cannot fork replacements.
        let _ = kill(pid, Signal::SIGSTOP);
        for child in children_of(pid.as_raw()) {
            let _ = kill(Pid::from_raw(child), Signal::SIGKILL);
        }
        let _ = kill(pid, Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.running().is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(&self.pid_file);
    }

    /// `postfix reload`: SIGHUP.
    pub(crate) fn reload(&self) {
        let pid = self.must_run();
        maillog::info!("refreshing the Postfix mail system");
        let _ = kill(pid, Signal::SIGHUP);
    }

    /// `postfix status`.
    pub(crate) fn status(&self) {
        match self.running() {
            Some(pid) => maillog::info!("the Postfix mail system is running: PID: {pid}"),
            None => {
                maillog::info!("the Postfix mail system is not running");
                std::process::exit(1)
            }
        }
    }
}

/// Opens the log: syslog (or maillog_file, whose records name `host`'s
/// first label), copied to stderr for the person at the command, but not
/// when stderr is the journal (systemd's ExecReload, ExecStop), which
/// receives syslog as well: a copy would log each line twice there.
fn log_init(name: &str, file: Option<PathBuf>, host: Option<&str>) {
    let setup = maillog::Setup::new(maillog::Options {
        syslog_name: name.to_string(),
        program: "postfix-script".to_string(),
        maillog_file: file,
        stderr: !stderr_is_journal(),
    });
    maillog::init(match host {
        Some(h) => setup.hostname(h),
        None => setup,
    });
}

/// Pids whose parent is `ppid`, from /proc.
fn children_of(ppid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| parent_of(*pid) == Some(ppid))
        .collect()
}

/// The ppid field of /proc/PID/stat (after the parenthesised command name).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')?.saturating_add(1)..)?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// True when stderr is systemd's journal stream: systemd names it in
/// JOURNAL_STREAM as "device:inode" (systemd.exec(5)).
fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(st) = nix::sys::stat::fstat(std::io::stderr()) else {
        return false;
    };
    stream.to_str() == Some(&format!("{}:{}", st.st_dev, st.st_ino))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_own_children() {
        let mut c = Command::new("sleep").arg("5").spawn().unwrap();
        let me = i32::try_from(std::process::id()).unwrap();
        let kids = children_of(me);
        c.kill().unwrap();
        c.wait().unwrap();
        assert!(kids.contains(&i32::try_from(c.id()).unwrap()));
    }
}
