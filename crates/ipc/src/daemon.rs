//! Daemon startup: what a service's main() calls first.
//!
//! [`start`] runs, in this order (Postfix's single_server_main and friends):
//! parse the command line ([`ServiceArgs`]); load main.cf from `$MAIL_CONFIG`
//! with the `-o` overrides; open the log (program = the command name,
//! syslog_name, maillog_file) before any jail; take the inherited status pipe
//! and listeners; chdir to queue_directory; run the daemon's pre-jail hook;
//! then, when root and asked (`-u`, `-c`), chroot to queue_directory and
//! become mail_owner via [`privsep::drop_privileges`] (with `-c` alone,
//! only the jail, via [`privsep::enter_chroot`] and its checks). A daemon
//! never serves without the [`privsep::PrivDropped`] proof, which
//! [`Daemon`] holds.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use config::Config;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use privsep::PrivDropped;

use crate::args::ServiceArgs;
use crate::inherit::{LISTEN_FD, take};
use crate::listener::Listener;
use crate::status::{STATUS_FD, Status, StatusPipe};

/// What a handler may read: the command line and the configuration.
#[derive(Debug)]
pub struct Context {
    /// The parsed command line.
    pub args: ServiceArgs,
    /// main.cf with the `-o` overrides applied.
    pub config: Config,
}

/// A started daemon, privilege already dropped, ready to serve.
#[derive(Debug)]
pub struct Daemon {
    pub(crate) ctx: Context,
    pub(crate) listeners: Vec<Listener>,
    pub(crate) status: Option<StatusPipe>,
    pub(crate) max_use: Option<u64>,
    pub(crate) max_idle: Option<Duration>,
    _priv: PrivDropped,
}

/// Starts a daemon: see the module documentation for the steps. The
/// pre-jail hook runs with full privilege and outside the chroot; what it
/// returns is handed back beside the [`Daemon`]. Every failure is fatal
/// (logged, exit 1), as a daemon cannot do anything useful half set up.
pub fn start<T, F>(pre_jail: F) -> (Daemon, T)
where
    F: FnOnce(&Config, &ServiceArgs) -> Result<T, String>,
{
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let args = match ServiceArgs::parse(argv) {
        Ok(a) => a,
        Err(e) => maillog::fatal!("{e}"),
    };
    // A parent that reads signals from a signalfd blocks them; a service
    // must die on SIGTERM whoever started it.
    let _ = nix::sys::signal::SigSet::all().thread_unblock();
    let config = load_config(&args);
    init_log(&args, &config);
    let (status, listeners) = take_fds(&args);
    if !args.service_name.is_empty() {
        let qdir = config.str("queue_directory");
        if let Err(e) = std::env::set_current_dir(&qdir) {
            maillog::fatal!("chdir {qdir}: {e}");
        }
    }
    let extra = match pre_jail(&config, &args) {
        Ok(t) => t,
        Err(e) => maillog::fatal!("{e}"),
    };
    let proof = jail(&args, &config);
    let (max_use, max_idle) = limits(&args, &config);
    let daemon = Daemon {
        ctx: Context { args, config },
        listeners,
        status,
        max_use,
        max_idle,
        _priv: proof,
    };
    (daemon, extra)
}

fn load_config(args: &ServiceArgs) -> Config {
    let dir = config::default_config_dir();
    let mut config = match Config::load(&dir) {
        Ok(c) => c,
        Err(e) => {
            maillog::init(maillog::Options {
                syslog_name: "postfix".to_string(),
                program: args.program.clone(),
                maillog_file: None,
                stderr: true,
            });
            maillog::fatal!("{e}")
        }
    };
    apply_args(&mut config, args);
    config
}

/// The `-o` overrides, after `service_name` (the `-n` argument) and
/// `process_name` (the program's base name): as in
/// Postfix, `$service_name` expands in any parameter, so that master.cf's
/// `-o syslog_name=postfix/$service_name` names the service.
fn apply_args(config: &mut Config, args: &ServiceArgs) {
    if !args.service_name.is_empty() {
        config.set_override("service_name", &args.service_name);
    }
    if !args.program.is_empty() {
        config.set_override("process_name", &args.program);
    }
    for (k, v) in &args.overrides {
        config.set_override(k, v);
    }
}

fn init_log(args: &ServiceArgs, config: &Config) {
    let file = config.str("maillog_file");
    // maillog_file records name the host by myhostname's first label, as
    // Postfix's postlogd does.
    maillog::init(
        maillog::Setup::new(maillog::Options {
            syslog_name: config.str("syslog_name"),
            program: args.program.clone(),
            maillog_file: (!file.is_empty()).then(|| PathBuf::from(file)),
            stderr: args.service_name.is_empty(),
        })
        .hostname(&config.str("myhostname")),
    );
    for w in config.warnings() {
        maillog::warning!("{w}");
    }
}

fn take_fds(args: &ServiceArgs) -> (Option<StatusPipe>, Vec<Listener>) {
    if args.service_name.is_empty() {
        return (None, Vec::new());
    }
    let status = take(STATUS_FD).map(|fd| StatusPipe::new(std::fs::File::from(fd)));
    let mut listeners = Vec::with_capacity(args.nsock);
    for i in 0..args.nsock {
        let fd = LISTEN_FD.saturating_add(i32::try_from(i).unwrap_or(0));
        let Some(owned) = take(fd) else {
            maillog::fatal!("no listener on descriptor {fd} (expected {})", args.nsock)
        };
        let l = Listener::from_fd(&args.service_type, owned);
        if let Err(e) = l.set_nonblocking() {
            maillog::fatal!("non-blocking listener {fd}: {e}");
        }
        listeners.push(l);
    }
    (status, listeners)
}

fn jail(args: &ServiceArgs, config: &Config) -> PrivDropped {
    if !privsep::is_root() || !(args.unpriv || args.chroot) {
        return privsep::unprivileged();
    }
    let qdir = PathBuf::from(config.str("queue_directory"));
    let chroot = args.chroot.then_some(qdir.as_path());
    if !args.unpriv {
        // Chroot but keep root (unpriv=n chroot=y): privsep's checks of
        // the jail, no proof of dropped privilege beyond it.
        if let Some(dir) = chroot
            && let Err(e) = privsep::enter_chroot(dir)
        {
            maillog::fatal!("chroot {}: {e}", dir.display());
        }
        return privsep::unprivileged();
    }
    let owner = config.str("mail_owner");
    let account = match privsep::lookup_user(&owner) {
        Ok(Some(a)) if a.uid != 0 => a,
        Ok(Some(_)) => maillog::fatal!("mail_owner {owner} has privileged user ID"),
        Ok(None) => maillog::fatal!("unknown mail_owner user name: {owner}"),
        Err(e) => maillog::fatal!("look up mail_owner {owner}: {e}"),
    };
    match privsep::drop_privileges(&account, chroot) {
        Ok(p) => p,
        Err(e) => maillog::fatal!("drop privileges to {owner}: {e}"),
    }
}

fn limits(args: &ServiceArgs, config: &Config) -> (Option<u64>, Option<Duration>) {
    if args.no_limits {
        return (None, None);
    }
    let max_use = u64::try_from(config.int("max_use")).ok().filter(|n| *n > 0);
    let idle = config.time("max_idle");
    (max_use, (!idle.is_zero()).then_some(idle))
}

impl Daemon {
    /// The command line and configuration.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The inherited listeners.
    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }

    /// Reports busy or available to master (nothing when run by hand).
    pub(crate) fn notify(&mut self, status: Status) {
        if let Some(p) = self.status.as_mut() {
            let _ = p.notify(status);
        }
    }

    /// Reports a client taken while the process stays available (a
    /// multi-client server), in one write.
    pub(crate) fn notify_taken_available(&mut self) {
        if let Some(p) = self.status.as_mut() {
            let _ = p.notify_taken_available();
        }
    }

    /// True when max_use clients have been served.
    pub(crate) fn used_up(&self, served: u64) -> bool {
        self.max_use.is_some_and(|m| served >= m)
    }

    /// How long to wait for a client before max_idle ends the process.
    pub(crate) fn idle_left(&self, idle_since: Instant) -> Option<Duration> {
        self.max_idle
            .map(|m| m.saturating_sub(idle_since.elapsed()))
    }
}

/// What one poll of the status pipe and the listeners found.
pub(crate) enum Polled {
    /// Listener index with pending input.
    Listener(usize),
    /// The wait ran out with nothing ready.
    TimedOut,
    /// The status pipe broke: master is gone or retired this process.
    MasterGone,
    /// Nothing to do (EINTR, or a race).
    Nothing,
}

impl Daemon {
    /// Waits up to `wait` (forever with `None`) for a listener to become
    /// readable or for master to close the status pipe; master gone wins
    /// over a ready listener.
    pub(crate) fn poll_listeners(&self, wait: Option<Duration>) -> Polled {
        let timeout = match wait {
            Some(d) => PollTimeout::try_from(d).unwrap_or(PollTimeout::MAX),
            None => PollTimeout::NONE,
        };
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(self.listeners.len() + 1);
        if let Some(s) = &self.status {
            // No events asked: POLLERR/POLLHUP still arrive when the read end closes.
            fds.push(PollFd::new(s.fd(), PollFlags::empty()));
        }
        let base = fds.len();
        for l in &self.listeners {
            fds.push(PollFd::new(std::os::fd::AsFd::as_fd(l), PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(0) => return Polled::TimedOut,
            Ok(_) => {}
            Err(_) => return Polled::Nothing,
        }
        let broken = PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL;
        if base == 1
            && fds
                .first()
                .and_then(|f| f.revents())
                .is_some_and(|r| r.intersects(broken))
        {
            return Polled::MasterGone;
        }
        fds.iter()
            .skip(base)
            .position(|f| f.revents().is_some_and(|r| r.intersects(PollFlags::POLLIN)))
            .map_or(Polled::Nothing, Polled::Listener)
    }
}

/// Exits the process after a voluntary stop (max_use, max_idle, master gone).
pub(crate) fn exit_quietly() -> ! {
    std::process::exit(0)
}

#[cfg(test)]
impl Daemon {
    /// A daemon built by hand for unit tests of the servers.
    pub(crate) fn for_test(
        listeners: Vec<Listener>,
        status: Option<StatusPipe>,
        max_use: Option<u64>,
        max_idle: Option<Duration>,
    ) -> (Daemon, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.cf"), "").unwrap();
        let config = Config::load(dir.path()).unwrap();
        let daemon = Daemon {
            ctx: Context {
                args: ServiceArgs::default(),
                config,
            },
            listeners,
            status,
            max_use,
            max_idle,
            _priv: privsep::unprivileged(),
        };
        (daemon, dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::OwnedFd;

    #[test]
    fn service_name_expands_in_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::from_text(dir.path(), "").unwrap();
        let argv = [
            "relay",
            "-n",
            "relay",
            "-t",
            "unix",
            "-o",
            "syslog_name=postfix/$service_name",
        ];
        let args = ServiceArgs::parse(argv.iter().map(|a| a.to_string())).unwrap();
        apply_args(&mut config, &args);
        assert_eq!(config.str("syslog_name"), "postfix/relay");
    }

    #[test]
    fn poll_sees_timeout_client_and_master_gone() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let l = Listener::from_fd("inet", OwnedFd::from(l));
        let (r, w) = nix::unistd::pipe().unwrap();
        let status = StatusPipe::new(std::fs::File::from(w));
        let (d, _dir) = Daemon::for_test(vec![l], Some(status), None, None);
        let short = Some(Duration::from_millis(10));
        assert!(matches!(d.poll_listeners(short), Polled::TimedOut));
        let _c = TcpStream::connect(addr).unwrap();
        let wait = Some(Duration::from_secs(5));
        assert!(matches!(d.poll_listeners(wait), Polled::Listener(0)));
        // Master gone wins over a waiting client.
        drop(r);
        assert!(matches!(d.poll_listeners(wait), Polled::MasterGone));
    }
}
