//! postdrop - Postfix mail posting utility
//!
//! # Synopsis
//!
//! `postdrop [-rv] [-c config_dir]`
//!
//! # Description
//!
//! Reads one message from standard input, as sendmail(1) writes it (a
//! stream of `proto::cleanup::Request` frames: Begin, Recipient...,
//! Content..., End), and checks it: envelope sender and recipients, and
//! the attributes `login_name` (of the real user id), `rewrite_context`
//! (`local`), `flags` (only extract_recipients is kept), `full_name`, and
//! the checked DSN and body-type values.
//!
//! A message of up to 256 KiB of content is held in memory and, when
//! public/pickup is a unix socket (master.cf's `pickup unix ...`, as
//! Postfix ships it), handed to pickup there (proto::pickup); pickup gives
//! it to cleanup as it would a maildrop file and answers once cleanup has
//! the queue file fsynced (or has refused the message for good, which
//! pickup logs as for a file). postdrop then exits 0 with no maildrop
//! file written at all: no file to create, fsync and remove per message.
//! There is no hand-over when main.cf sets non_smtpd_milters: cleanup
//! answers only after the milters, and sendmail should not wait for them.
//!
//! When pickup does not take the message (no socket, nobody listening, no
//! go-ahead within 2 seconds: pickup not running while master holds its
//! socket, too many in flight, cleanup unavailable or refusing for now),
//! and for every larger message, it goes into a new file in the maildrop
//! queue (`queue::enter_queue`), which is fsynced and marked complete
//! before postdrop exits 0; then it wakes pickup through public/pickup (a
//! failure there is harmless: pickup also scans the maildrop queue
//! periodically). Only when pickup went away after the whole message was
//! sent, without an answer, is the outcome unknown: postdrop then exits 75
//! and writes no file, since cleanup may already have queued it.
//!
//! NUL bytes, 8-bit text and long lines are passed through (cleanup repairs
//! them). A message larger than message_size_limit is refused.
//!
//! `-c config_dir`: read main.cf from there instead of `$MAIL_CONFIG` or
//! /etc/postfix. `-r`: accepted (the input is always in the internal
//! format). `-v`: more verbose logging.
//!
//! # Talks to
//!
//! Hands the message to pickup over queue_directory/public/pickup, or
//! writes queue_directory/maildrop and then one wake-up byte to
//! public/pickup.
//!
//! # Security
//!
//! Installed set-gid postdrop (setgid_group), so that users can write the
//! maildrop directory (mode 1730) without being able to read it. Its input
//! is untrusted: frames are bounded (proto::MAX_FRAME), the envelope is
//! bounded (16 MiB, and the queue format's field
//! limits), the caller chooses only the sender, recipients, full name, DSN
//! values and extract_recipients; postdrop sets login_name and
//! rewrite_context itself. Run set-gid by a user other than root it is
//! *unsafe* (privsep::setgid, Postfix's unsafe()): a configuration
//! directory from `-c` or MAIL_CONFIG other than /etc/postfix must be
//! listed in /etc/postfix/main.cf as alternate_config_directories or
//! multi_instance_directories, and the environment is emptied except for
//! import_environment's `name=value` entries (a safe run keeps its named
//! variables too). Descriptors 0, 1 and 2 are opened on /dev/null when
//! closed, before anything else. Terminal signals are
//! blocked, so a submission ends only at end of input, where an unfinished
//! file is removed; a maildrop file is user-owned, so pickup in turn treats
//! it as untrusted.
//!
//! # Diagnostics
//!
//! `postdrop: fatal: uid=N: text` on stderr and in the log. Exit status
//! (sysexits.h): 0 once pickup answered or the file is fsynced and
//! complete; 64 bad command line; 65 message over message_size_limit or
//! envelope too large; 70 malformed or truncated input; 71 /dev/null
//! cannot be opened; 73 the maildrop file cannot be created; 75 the file
//! cannot be written, or pickup did not answer after the whole message
//! went to it (`pickup did not answer whether it queued the message (it
//! may have)`); 77 unauthorized configuration directory (`postdrop:
//! error: unauthorized configuration directory name: DIR`, then
//! `postdrop: fatal: specify "alternate_config_directories = DIR" or
//! "multi_instance_directories = DIR" in /etc/postfix/main.cf`; Postfix
//! exits 1 there); 78 bad main.cf. On every failure the partial file is
//! removed.
//!
//! # Configuration parameters
//!
//! - queue_directory (/var/spool/postfix): where maildrop/ is.
//! - message_size_limit (10240000): largest message, 0 for no limit.
//! - non_smtpd_milters (empty): when set, no hand-over to pickup.
//! - alternate_config_directories (empty), multi_instance_directories
//!   (empty): in /etc/postfix/main.cf, configuration directories a
//!   set-gid postdrop accepts.
//! - import_environment (MAIL_CONFIG ... LANG=C): the environment kept.
//! - syslog_name (postfix), maillog_file (empty): logging.
//! - maillog_file_prefixes (/var, /dev/stdout): maillog_file must start
//!   with one of these, else postdrop logs `error: maillog_file value ...
//!   does not match any prefix in maillog_file_prefixes` and uses syslog
//!   (Postfix's postdrop exits there).
//! - maillog_file_permissions (0600): mode of a maillog_file postdrop
//!   creates; a set-gid run never creates it, and appends only to one that
//!   exists (else it logs to syslog).
//!
//! # See also
//!
//! sendmail(1), pickup(8), the queue crate.
#![cfg_attr(not(test), no_main)]

mod handover;
mod stream;

use std::io::BufReader;
use std::path::{Path, PathBuf};

use config::Config;

const EX_USAGE: i32 = 64;
const EX_NOPERM: i32 = 77;
const EX_CONFIG: i32 = 78;

fn fatal_status(status: i32, args: std::fmt::Arguments<'_>) -> ! {
    maillog::write(maillog::Severity::Fatal, args);
    std::process::exit(status)
}

macro_rules! die {
    ($status:expr, $($a:tt)*) => { fatal_status($status, format_args!($($a)*)) };
}

struct Args {
    config_dir: Option<PathBuf>,
    verbose: u32,
}

fn parse_args() -> Args {
    let mut out = Args {
        config_dir: None,
        verbose: 0,
    };
    let mut it = std::env::args_os().skip(1);
    while let Some(a) = it.next() {
        match a.to_str() {
            Some("-c") => match it.next() {
                Some(d) => out.config_dir = Some(PathBuf::from(d)),
                None => usage(),
            },
            Some("-r") => {}
            Some("-v") => out.verbose = out.verbose.saturating_add(1),
            Some("-rv" | "-vr") => out.verbose = out.verbose.saturating_add(1),
            _ => usage(),
        }
    }
    out
}

fn usage() -> ! {
    die!(EX_USAGE, "usage: postdrop [-rv] [-c config_dir]")
}

// C's main, without Rust's runtime set-up: it runs once for every message
// submitted. Before anything is opened, privsep::entry::run points closed
// standard descriptors to /dev/null (a closed stdout or stderr must not
// become the maildrop file or the log) and ignores SIGPIPE.
privsep::lean_main!(postdrop);

fn postdrop() {
    // Files and the maildrop entry are ours alone until marked complete.
    let _ = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    block_terminal_signals();
    let args = parse_args();
    let uid = nix::unistd::getuid();
    let config_dir = config_dir(args.config_dir.as_deref());
    let config = match Config::load(&config_dir) {
        Ok(c) => c,
        Err(e) => die!(EX_CONFIG, "{e}"),
    };
    // Set-gid: the caller's environment is not ours to trust.
    if let Err(e) = privsep::setgid::clean_env(&config.str("import_environment")) {
        die!(EX_CONFIG, "{e}");
    }
    init_log(&config);
    maillog::set_verbose(args.verbose);
    match tables::acl::check_user(&config.str("authorized_submit_users"), uid.as_raw()) {
        Ok(Ok(())) => {}
        Ok(Err(who)) => die!(EX_NOPERM, "{who} is not allowed to submit mail"),
        Err(e) => die!(EX_CONFIG, "authorized_submit_users: {e}"),
    }
    let login_name = match nix::unistd::User::from_uid(uid) {
        Ok(Some(u)) => u.name,
        _ => uid.to_string(),
    };
    let queue_dir = PathBuf::from(config.str("queue_directory"));
    let limit = config.size("message_size_limit");
    let who = stream::Submitter { login_name };
    let mut input = BufReader::with_capacity(128 * 1024, std::io::stdin().lock());
    // With non_smtpd_milters cleanup's answer waits for the milters:
    // sendmail should not, so the message goes to maildrop/ as in Postfix.
    let go_ahead = config
        .str("non_smtpd_milters")
        .trim()
        .is_empty()
        .then_some(proto::pickup::GO_AHEAD_WAIT);
    match stream::drop_message(&mut input, &queue_dir, limit, &who, go_ahead) {
        Ok(stream::Dropped::Maildrop(id)) => {
            maillog::verbose!("uid={uid}: queued as maildrop/{id}");
            if let Err(e) = proto::trigger(&queue_dir, proto::pickup::SERVICE) {
                maillog::verbose!("trigger public/pickup: {e}");
            }
        }
        // pickup logged what became of it, as for a maildrop file.
        Ok(stream::Dropped::HandedOver(reply)) => {
            maillog::verbose!("uid={uid}: handed to pickup: {reply:?}");
        }
        // The caller decided not to submit (sendmail -t found no
        // recipients) and says why itself: nothing to log.
        Err(e @ stream::DropError::Aborted) => std::process::exit(e.exit_status()),
        Err(e) => die!(e.exit_status(), "uid={uid}: {e}"),
    }
}

/// A user cannot stop postdrop half way with a terminal signal; when
/// sendmail goes away, end of input removes the unfinished file.
fn block_terminal_signals() {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTSTP,
    ] {
        set.add(s);
    }
    let _ = set.thread_block();
}

/// Postfix's checks for set-gid programs (privsep::setgid): a user may
/// not point postdrop at a main.cf of their own (with a queue_directory of
/// their choosing) unless the default main.cf allows that directory.
fn config_dir(cli: Option<&Path>) -> PathBuf {
    match privsep::setgid::config_dir(cli) {
        Ok(dir) => dir,
        Err(e) => {
            if let Some(line) = e.error_line() {
                maillog::write(maillog::Severity::Error, format_args!("{line}"));
            }
            die!(EX_NOPERM, "{e}")
        }
    }
}

/// Logs to maillog_file when set: only under maillog_file_prefixes (else
/// an error and syslog; Postfix is fatal), created with maillog_file_permissions, but never
/// created by a set-gid run (Postfix's postdrop logs through postlogd and
/// never opens the file): then the file is appended to only if it exists
/// and is writable, and syslog takes the records otherwise.
fn init_log(config: &Config) {
    let file = config.str("maillog_file");
    let opts = maillog::Options {
        syslog_name: config.str("syslog_name"),
        program: "postdrop".to_owned(),
        maillog_file: (!file.is_empty()).then(|| PathBuf::from(&file)),
        stderr: true,
    };
    let perms = config.str("maillog_file_permissions");
    let mode = maillog::parse_file_permissions(&perms);
    let setup = maillog::Setup::new(opts)
        .hostname(&config.str("myhostname"))
        .file_prefixes(&config.str("maillog_file_prefixes"))
        .file_permissions(mode.unwrap_or(maillog::DEFAULT_FILE_PERMISSIONS))
        .create_file(!privsep::setgid::is_unsafe());
    // Our umask (077, for the maildrop file) must not narrow the log's mode.
    use nix::sys::stat::{Mode, umask};
    let saved = umask(Mode::from_bits_truncate(0o022));
    let opened = maillog::try_init(setup.clone());
    umask(saved);
    match opened {
        Ok(()) => {}
        // Postfix is fatal here; a submission is worth more than the log
        // line, so it is refused loudly but only the file is given up.
        Err(e @ maillog::Error::BadPrefix { .. }) => {
            maillog::init(setup.without_maillog_file());
            maillog::error!("{e}; logging to syslog");
        }
        // Not writable with our rights: stderr and syslog still work.
        Err(_) => maillog::init(setup.without_maillog_file()),
    }
    if mode.is_none() {
        maillog::warning!("ignoring bad permissions: maillog_file_permissions = {perms}");
    }
}
