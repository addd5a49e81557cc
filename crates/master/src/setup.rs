//! master's startup: command line, main.cf, log, the root checks, the pid
//! file lock, detaching, signals, and the first set of listeners.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use config::Config;
use nix::sys::signal::Signal;

use crate::event::Master;
use crate::listener;
use crate::reload::VERSION;

/// master's command line.
#[derive(Debug, Default)]
pub(crate) struct Opts {
    /// `-c config_dir`.
    pub(crate) config_dir: Option<PathBuf>,
    /// `-s`: detach into a new session, stdio to /dev/null after startup.
    pub(crate) detach: bool,
    /// `-t`: only test whether a master runs (exit 0 when none does).
    pub(crate) test: bool,
}

/// Parses argv; `fatal: usage` on anything unknown.
pub(crate) fn parse_args() -> Opts {
    let mut opts = Opts::default();
    let mut it = std::env::args_os().skip(1);
    while let Some(a) = it.next() {
        match a.to_str() {
            Some("-c") => match it.next() {
                Some(d) => opts.config_dir = Some(PathBuf::from(d)),
                None => usage(),
            },
            Some("-s") => opts.detach = true,
            Some("-t") => opts.test = true,
            Some("-d" | "-v") => {}
            _ => usage(),
        }
    }
    opts
}

fn usage() -> ! {
    eprintln!("postfix/master: fatal: usage: master [-c config_dir] [-d] [-s] [-t] [-v]");
    std::process::exit(1)
}

/// Whether log records are copied to stderr: with `-s` until detached
/// (`postfix start` reads them to report a failed start), in the
/// foreground only when stderr is a terminal. Under systemd (`postfix
/// start-fg`) stderr goes to the journal, as syslog does: a copy would log
/// every line twice, so there stderr gets only fatal errors, as with
/// Postfix 3.7.
static STDERR_COPIES: AtomicBool = AtomicBool::new(true);

/// `fatal: ...` to the log, and to stderr when the log does not copy
/// there (a failed foreground start must say why where it was started);
/// exits with status 1.
macro_rules! fatal {
    ($($a:tt)*) => {{
        let text = format!($($a)*);
        if !STDERR_COPIES.load(Ordering::Relaxed) {
            eprintln!("master: fatal: {text}");
        }
        maillog::fatal!("{text}")
    }};
}

/// Loads main.cf and opens the log (copies to stderr until detached).
pub(crate) fn config_and_log(dir: &Path) -> (Config, String) {
    let config = match Config::load(dir) {
        Ok(c) => c,
        Err(e) => {
            init_log("postfix", None, maillog::DEFAULT_FILE_PERMISSIONS, None);
            fatal!("{e}")
        }
    };
    let file = config.str("maillog_file");
    let perms = config.str("maillog_file_permissions");
    let mode = maillog::parse_file_permissions(&perms);
    init_log(
        &config.str("syslog_name"),
        (!file.is_empty()).then(|| PathBuf::from(file)),
        mode.unwrap_or(maillog::DEFAULT_FILE_PERMISSIONS),
        Some(&config.str("myhostname")),
    );
    if mode.is_none() {
        maillog::warning!("ignoring bad permissions: maillog_file_permissions = {perms}");
    }
    for w in config.warnings() {
        maillog::warning!("{w}");
    }
    let text = std::fs::read_to_string(dir.join("main.cf")).unwrap_or_default();
    (config, text)
}

/// A new maillog_file gets maillog_file_permissions (`mode`); its records
/// name the host by myhostname's first label (`host`).
fn init_log(name: &str, file: Option<PathBuf>, mode: u32, host: Option<&str>) {
    let setup = maillog::Setup::new(maillog::Options {
        syslog_name: name.to_string(),
        program: "master".to_string(),
        maillog_file: file,
        stderr: STDERR_COPIES.load(Ordering::Relaxed),
    })
    .file_permissions(mode);
    maillog::init(match host {
        Some(h) => setup.hostname(h),
        None => setup,
    });
}

/// Root: mail_owner must exist and not be root; returns its uid and gid.
/// Another user: privilege separation is off (logged once).
pub(crate) fn check_owner(config: &Config) -> Option<(u32, u32)> {
    if !privsep::is_root() {
        let uid = nix::unistd::getuid();
        let name = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map_or_else(|| uid.to_string(), |u| u.name);
        maillog::info!("privilege separation is off: running as user {name}");
        return None;
    }
    match mail_owner(config) {
        Ok(o) => Some(o),
        Err(e) => fatal!("{e}"),
    }
}

/// mail_owner's uid and gid, refusing a missing or privileged account with
/// the commands that create a proper one.
///
/// # Errors
/// The account is missing, is root, or the lookup failed.
pub(crate) fn mail_owner(config: &Config) -> Result<(u32, u32), String> {
    let main_cf = config.config_dir().join("main.cf");
    let main_cf = main_cf.display();
    let owner = config.str("mail_owner");
    let how = format!(
        "create the account with: groupadd -r postdrop; useradd -r -d /nonexistent -s /usr/sbin/nologin -U {owner}"
    );
    match privsep::lookup_user(&owner) {
        Ok(Some(a)) if a.uid == 0 => Err(format!(
            "file {main_cf}: parameter mail_owner: user {owner} has privileged user ID; \
             set mail_owner to an unprivileged account of its own ({how})"
        )),
        Ok(Some(a)) => Ok((a.uid, a.gid)),
        Ok(None) => Err(format!(
            "file {main_cf}: parameter mail_owner: unknown user name value: {owner}; {how}"
        )),
        Err(e) => Err(format!("look up mail_owner {owner}: {e}")),
    }
}

/// Builds the running master: pid lock, signals, listeners.
pub(crate) fn start(opts: &Opts) -> Master {
    let config_dir = opts
        .config_dir
        .clone()
        .unwrap_or_else(config::default_config_dir);
    STDERR_COPIES.store(
        opts.detach || std::io::stderr().is_terminal(),
        Ordering::Relaxed,
    );
    if opts.detach {
        // Not a process-group leader (postfix spawns us plainly), so this works.
        let _ = nix::unistd::setsid();
    }
    let (config, main_cf_text) = config_and_log(&config_dir);
    let owner = check_owner(&config);
    let qdir = PathBuf::from(config.str("queue_directory"));
    if let Err(e) = std::env::set_current_dir(&qdir) {
        fatal!("chdir {}: {e}", qdir.display());
    }
    let pid_lock = match ipc::pidfile::lock(&ipc::pidfile::path(&qdir)) {
        Ok(l) => l,
        Err(e) => fatal!("{e}"),
    };
    let signals = match ipc::signals::Signals::new(&[
        Signal::SIGCHLD,
        Signal::SIGHUP,
        Signal::SIGTERM,
        Signal::SIGINT,
    ]) {
        Ok(s) => s,
        Err(e) => fatal!("signalfd: {e}"),
    };
    let mut master = Master {
        config_dir,
        config,
        main_cf_text,
        qdir,
        owner,
        services: Vec::new(),
        retired: HashMap::new(),
        signals,
        pid_lock: Some(pid_lock),
    };
    open_services(&mut master);
    maillog::info!(
        "daemon started -- version {VERSION}, configuration {}",
        master.config_dir.display()
    );
    if opts.detach {
        detach_stdio();
    }
    master
}

/// Reads master.cf and opens every listener; any failure is fatal at startup.
fn open_services(master: &mut Master) {
    let path = master.config_dir.join("master.cf");
    let entries = match config::master_cf::load(&path) {
        Ok(e) => e,
        Err(e) => fatal!("{e}"),
    };
    for entry in entries {
        if master.not_built(&entry) {
            continue;
        }
        let ep = match listener::endpoint(&entry, &master.config, &master.qdir) {
            Ok(ep) => ep,
            Err(e) => fatal!("{}, line {}: {e}", path.display(), entry.line),
        };
        match master.start_service(entry, ep) {
            Ok(s) => master.services.push(s),
            Err(e) => fatal!("{e}"),
        }
    }
}

/// stdin, stdout and stderr to /dev/null: `postfix start` waits for
/// end-of-file on our stderr to know that startup is complete.
fn detach_stdio() {
    let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    else {
        return;
    };
    let _ = nix::unistd::dup2_stdin(&null);
    let _ = nix::unistd::dup2_stdout(&null);
    let _ = nix::unistd::dup2_stderr(&null);
}

/// `master -t`: exit 0 when no master holds the lock, 1 when one does.
pub(crate) fn test_running(opts: &Opts) -> ! {
    let dir = opts
        .config_dir
        .clone()
        .unwrap_or_else(config::default_config_dir);
    let qdir = Config::load(&dir)
        .map(|c| PathBuf::from(c.str("queue_directory")))
        .unwrap_or_else(|_| PathBuf::from("/var/spool/postfix"));
    match ipc::pidfile::running(&ipc::pidfile::path(&qdir)) {
        Some(_) => std::process::exit(1),
        None => std::process::exit(0),
    }
}
