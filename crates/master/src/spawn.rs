//! Starting a child: `daemon_directory/command` with argv
//! `command -n service -t type [-c] [-u] [-z] -s N [master.cf args]`,
//! the status pipe as fd 3 and the listeners from fd 4 (see
//! [`ipc::inherit`]), and an environment of import_environment alone (its
//! bare names with master's values, its `name=value` entries as given, as
//! Postfix's clean_env) plus `MAIL_CONFIG` set to the configuration
//! directory and `MAIL_SERVICE_MAXPROC` to the service's maxproc (0: no
//! limit; smtpd caps its sessions with it): nothing else of whatever
//! environment started master.

use std::io::IsTerminal;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use config::Config;
use ipc::args::ServiceArgs;

use crate::service::Service;

/// The argv (after `argv[0]`) master gives a child of `svc`.
pub(crate) fn child_args(svc: &Service) -> Vec<String> {
    let e = &svc.entry;
    let kind = match e.kind {
        config::master_cf::ServiceType::Inet => "inet",
        config::master_cf::ServiceType::Unix => "unix",
        config::master_cf::ServiceType::Fifo => "fifo",
        config::master_cf::ServiceType::Pass => "pass",
        _ => "unix",
    };
    ServiceArgs {
        program: e.command.clone(),
        service_name: e.name.clone(),
        service_type: kind.to_string(),
        chroot: e.chroot,
        unpriv: e.unpriv,
        // A service master wakes up must stay; max_idle/max_use would end it.
        no_limits: e.wakeup > 0,
        verbose: false,
        nsock: svc.listeners.len(),
        overrides: Vec::new(),
        extra: e.args.clone(),
    }
    .to_argv()
}

/// glibc's malloc gives each new thread an arena of its own, up to eight
/// per CPU, and an arena keeps what its threads once used: cleanup's
/// client threads and qmgr's delivery threads held some 100 KB each in
/// arenas. Two arenas serve the daemons' few busy threads as well.
/// import_environment may set another value (or MALLOC_ARENA_MAX=0, glibc's
/// default).
const MALLOC_ARENA_MAX: (&str, &str) = ("MALLOC_ARENA_MAX", "2");

/// The environment children get from import_environment (a bad entry is
/// warned about and left out; the rest still applies).
pub(crate) fn child_environment(config: &Config) -> Vec<(String, String)> {
    let mut env = vec![(MALLOC_ARENA_MAX.0.to_owned(), MALLOC_ARENA_MAX.1.to_owned())];
    for entry in privsep::setgid::split_environment_list(&config.str("import_environment")) {
        // One entry at a time, so one bad entry costs only itself.
        match privsep::setgid::environment(&format!("{{{entry}}}"), false) {
            Ok(pairs) => {
                for (name, value) in pairs {
                    env.retain(|(n, _): &(String, String)| *n != name);
                    env.push((name, value));
                }
            }
            Err(e) => maillog::warning!("import_environment: {e}"),
        }
    }
    env
}

/// Forks and execs one child of `svc`; returns its pid.
///
/// # Errors
/// fork or exec failed (std reports an exec failure from the child).
pub(crate) fn spawn(svc: &Service, config: &Config, config_dir: &Path) -> std::io::Result<u32> {
    let mut cmd = Command::new(&svc.path);
    cmd.arg0(&svc.entry.command)
        .args(child_args(svc))
        .env_clear()
        .envs(child_environment(config))
        .env("MAIL_CONFIG", config_dir)
        // A multi-session server (smtpd) caps its sessions at maxproc.
        .env("MAIL_SERVICE_MAXPROC", svc.entry.maxproc.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    // A terminal master was started from (start-fg at a shell) is not
    // handed on: a daemon holds no tty. Otherwise stderr (the journal
    // under systemd, /dev/null once detached) is, for fatal errors.
    if std::io::stderr().is_terminal() {
        cmd.stderr(Stdio::null());
    }
    let fds: Vec<i32> = svc.listeners.iter().map(|l| l.fd.as_raw_fd()).collect();
    ipc::inherit::pass_fds(&mut cmd, svc.status_write.as_raw_fd(), &fds);
    // The Child handle is dropped: master reaps with waitpid(-1) on SIGCHLD.
    cmd.spawn().map(|c| c.id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_get_import_environment_and_an_arena_limit() {
        let dir = std::path::Path::new("/nonexistent");
        let config = Config::from_text(
            dir,
            "import_environment = PATH NO_SUCH_VARIABLE_Y LANG=C, {A = b c}, =bad\n",
        )
        .unwrap();
        let path = std::env::var("PATH").unwrap();
        assert_eq!(
            child_environment(&config),
            vec![
                ("MALLOC_ARENA_MAX".to_owned(), "2".to_owned()),
                ("PATH".to_owned(), path),
                ("LANG".to_owned(), "C".to_owned()),
                ("A".to_owned(), "b c".to_owned()),
            ]
        );
        // The arena limit is a default that import_environment can change.
        let config = Config::from_text(dir, "import_environment = MALLOC_ARENA_MAX=8\n").unwrap();
        assert_eq!(
            child_environment(&config),
            vec![("MALLOC_ARENA_MAX".to_owned(), "8".to_owned())]
        );
    }
}
