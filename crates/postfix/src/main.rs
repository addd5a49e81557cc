//! postfix - Postfix control program
//!
//! # Synopsis
//!
//! `postfix [-c config_dir] [-v] command`
//!
//! where command is `start`, `start-fg`, `stop`, `abort`, `reload`,
//! `status`, `check`, `flush`, `set-permissions` or
//! `upgrade-configuration`.
//!
//! # Description
//!
//! - `check`: parse main.cf and master.cf, warn (once per parameter) about
//!   each parameter main.cf or a master.cf `-o` option sets that no program
//!   reads yet (`warning: /etc/postfix/main.cf, line 12: parameter
//!   smtpd_proxy_filter is not supported yet and has no effect`; postconf(5)
//!   lists them), create or repair the queue directory tree (owner
//!   mail_owner and group setgid_group when root), and verify that
//!   daemon_directory holds every command master.cf names. An smtpd
//!   restriction list (main.cf, or an smtpd service's `-o`) naming a
//!   restriction or a table type that is not built is a problem
//!   (config::restrictions).
//! - `start`: check, then start `daemon_directory/master` detached (own
//!   session, stdio to /dev/null) and wait until it is up or has failed, in
//!   which case its error is printed and the exit status is 1.
//! - `start-fg`: check, then run master in the foreground (this process
//!   becomes master; Ctrl-C stops it).
//! - `stop`: SIGTERM to master, then wait until it has stopped its children
//!   and released the pid file. `abort`: SIGKILL to master and its children
//!   at once.
//! - `reload`: SIGHUP to master (reread main.cf and master.cf).
//! - `flush`: deliver deferred mail now (`postqueue -f`).
//! - `set-permissions`: repair the queue tree's owners and modes and make
//!   command_directory's postdrop and postqueue set-gid setgid_group, as
//!   Postfix's postfix-script does.
//! - `upgrade-configuration`: append to master.cf the standard services
//!   it lacks (flush, trace, anvil, discard, retry; verify commented out),
//!   taken from the master.cf this suite ships.
//! - `status`: exit 0 and say `the Postfix mail system is running: PID: N`,
//!   or exit 1 with `the Postfix mail system is not running`.
//!
//! master is found through queue_directory/pid/master.pid and its lock.
//!
//! # Talks to
//!
//! master, by signals and the pid file.
//!
//! # Security
//!
//! Run by the administrator (root on a real server, the developer for a
//! development instance). Reads only the configuration it is given.
//!
//! # Diagnostics
//!
//! Messages go to stderr and to the log as `postfix/postfix-script`, as
//! Postfix's postfix-script prints them: `starting the Postfix mail system`,
//! `stopping ...`, `refreshing ...`, `fatal: the Postfix mail system is
//! already running`, `fatal: the Postfix mail system is not running`.
//! Exit status 0 on success, 1 on failure.
//!
//! # Configuration parameters
//!
//! - queue_directory (/var/spool/postfix), daemon_directory
//!   (/usr/libexec/postfix), command_directory (/usr/sbin).
//! - mail_owner (postfix), setgid_group (postdrop): queue ownership.
//! - syslog_name (postfix), maillog_file (empty): logging.
//!
//! # See also
//!
//! master(8), postconf(1), master(5).

mod admin;
mod check;
mod check_restrictions;
mod control;

use std::path::PathBuf;

/// The command line.
#[derive(Debug)]
struct Opts {
    config_dir: PathBuf,
    command: String,
}

fn usage() -> ! {
    eprintln!(
        "postfix: fatal: usage: postfix [-c config_dir] [-v] start | start-fg | stop | abort | reload | status | check | flush | set-permissions | upgrade-configuration"
    );
    std::process::exit(1)
}

fn parse_args() -> Opts {
    let mut config_dir = None;
    let mut command = None;
    let mut it = std::env::args_os().skip(1);
    while let Some(a) = it.next() {
        match a.to_str() {
            Some("-c") => config_dir = Some(PathBuf::from(it.next().unwrap_or_else(|| usage()))),
            Some("-v" | "-D") => {}
            Some(c) if !c.starts_with('-') && command.is_none() => command = Some(c.to_string()),
            _ => usage(),
        }
    }
    // master changes to the queue directory before it reads master.cf, so
    // a relative -c (or MAIL_CONFIG) must become absolute here.
    let config_dir = config_dir.unwrap_or_else(config::default_config_dir);
    let config_dir = std::path::absolute(&config_dir).unwrap_or(config_dir);
    Opts {
        config_dir,
        command: command.unwrap_or_else(|| usage()),
    }
}

fn main() {
    let opts = parse_args();
    let ctl = control::Control::new(&opts.config_dir);
    match opts.command.as_str() {
        "check" => ctl.check(),
        "start" => ctl.start(),
        "start-fg" => ctl.start_fg(),
        "stop" => ctl.stop(),
        "abort" => ctl.abort(),
        "reload" => ctl.reload(),
        "status" => ctl.status(),
        "flush" => admin::flush(ctl.config()),
        "set-permissions" => admin::set_permissions(ctl.config()),
        "upgrade-configuration" => admin::upgrade_configuration(ctl.config()),
        other => {
            eprintln!("postfix: fatal: unknown command: '{other}'");
            usage()
        }
    }
}
