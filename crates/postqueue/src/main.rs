//! postqueue - Postfix queue control
//!
//! # Synopsis
//!
//! ```text
//! postqueue [-v] [-c config_dir] -p
//! postqueue [-v] [-c config_dir] -j
//! postqueue [-v] [-c config_dir] -f
//! postqueue [-v] [-c config_dir] -i queue_id
//! postqueue [-v] [-c config_dir] -s site
//! ```
//!
//! # Description
//!
//! - `-p`: lists the queue in Sendmail's mailq format, exactly as Postfix
//!   prints it with long queue ids (`enable_long_queue_ids = yes`, the
//!   only kind this system makes): a heading line, then per message the
//!   queue id (followed by `*` when it is in the active queue, `!` when it
//!   is on hold), the size, the arrival time and the sender
//!   (`MAILER-DAEMON` for `<>`), then each pending recipient indented,
//!   with the reason it was deferred in parentheses above it (once for a
//!   run of recipients with the same reason), a blank line between
//!   messages, and `-- N Kbytes in M Requests.` or `Mail queue is empty`.
//! - `-j`: the same data as JSON, one object per line, as Postfix's
//!   `postqueue -j`: `queue_name`, `queue_id`, `arrival_time`,
//!   `message_size`, `forced_expire`, `sender`, `recipients` (each with
//!   `address` and, when deferred, `delay_reason`).
//! - `-f`: asks qmgr to retry all deferred mail now (writes the `F`
//!   request to public/qmgr).
//! - `-i queue_id`: asks the flush service to retry one deferred message
//!   now (it makes the file due and wakes qmgr), as Postfix's
//!   flush_send_file; postqueue touches no queue file, so users in
//!   authorized_flush_users may do it.
//! - `-s site`: asks the flush service (public/$flush_service_name) to
//!   deliver now the deferred mail for `site`, as smtpd's ETRN does; a
//!   site outside fast_flush_domains is refused.
//! - `-c config_dir`: the main.cf to read (default `$MAIL_CONFIG` or
//!   /etc/postfix). `-v` is accepted.
//!
//! # Talks to
//!
//! public/showq (the listing: users cannot read the queue themselves),
//! public/qmgr (flush requests).
//!
//! # Security
//!
//! Installed set-gid setgid_group (postdrop), as Postfix's postqueue, so
//! that users reach public/showq and public/qmgr (public/ is searchable by
//! that group only). Run so by a user other than root it is *unsafe*
//! (privsep::setgid): a configuration directory from `-c` or MAIL_CONFIG
//! other than /etc/postfix must be listed in /etc/postfix/main.cf as
//! alternate_config_directories or multi_instance_directories, and the
//! environment is emptied except for import_environment's `name=value`
//! entries (a safe run keeps its named variables too). Descriptors 0, 1
//! and 2 are opened on /dev/null when closed, before anything else.
//! Arguments must be UTF-8. showq's answers are treated as untrusted:
//! control characters are escaped in JSON and replaced in the text
//! listing.
//!
//! # Diagnostics
//!
//! `postqueue: fatal: ...` on stderr. Exit status 0 on success, 69
//! (EX_UNAVAILABLE) when showq or qmgr cannot be reached ("mail system is
//! down"), 64 (EX_USAGE) for a bad command line (also one that is not
//! UTF-8), 77 (EX_NOPERM) for a user not in authorized_mailq_users or
//! authorized_flush_users, or an unauthorized configuration directory
//! (`postqueue: error: unauthorized configuration directory name: DIR`,
//! then `postqueue: fatal: specify "alternate_config_directories = DIR"
//! or "multi_instance_directories = DIR" in /etc/postfix/main.cf`;
//! Postfix exits 69 there), 1 otherwise.
//!
//! # Configuration parameters
//!
//! - queue_directory (/var/spool/postfix): where public/showq and
//!   public/qmgr are.
//! - authorized_mailq_users (static:anyone), authorized_flush_users
//!   (static:anyone): who may list and flush.
//! - alternate_config_directories (empty), multi_instance_directories
//!   (empty): in /etc/postfix/main.cf, the directories an unsafe run may use.
//! - import_environment (MAIL_CONFIG ... LANG=C): the environment kept.
//!
//! # See also
//!
//! mailq(1), sendmail(1), showq(8), qmgr(8), postsuper(1).

mod format;

use config::getopt::Arg;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// sysexits.h EX_USAGE.
const EX_USAGE: u8 = 64;
/// sysexits.h EX_UNAVAILABLE.
const EX_UNAVAILABLE: u8 = 69;
/// sysexits.h EX_SOFTWARE.
const EX_SOFTWARE: u8 = 70;
/// sysexits.h EX_NOPERM: the user is not in an authorized_* list.
const EX_NOPERM: u8 = 77;
/// sysexits.h EX_CONFIG: an authorized_* list cannot be read.
const EX_CONFIG: u8 = 78;

const USAGE: &str =
    "usage: postqueue -f | postqueue -i queueid | postqueue -j | postqueue -p | postqueue -s site";

/// What was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    List,
    Json,
    Flush,
    FlushId(String),
    FlushSite(String),
}

/// A fatal error: message and exit status.
struct Fatal(String, u8);

fn main() -> ExitCode {
    // Before anything is opened: a closed stdout or stderr must not become
    // a file we open.
    if let Err(e) = privsep::setgid::open_standard_fds() {
        eprintln!("postqueue: fatal: {e}");
        return ExitCode::from(EX_UNAVAILABLE);
    }
    let result = utf8_args()
        .and_then(|argv| parse_args(&argv))
        .and_then(|(dir, mode)| run(dir, &mode));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fatal(msg, code)) => {
            eprintln!("postqueue: fatal: {msg}");
            ExitCode::from(code)
        }
    }
}

/// The arguments after argv[0]; one that is not UTF-8 is a usage error.
fn utf8_args() -> Result<Vec<String>, Fatal> {
    std::env::args_os()
        .skip(1)
        .map(|a| a.into_string().map_err(|_| Fatal(USAGE.into(), EX_USAGE)))
        .collect()
}

fn parse_args(argv: &[String]) -> Result<(Option<PathBuf>, Mode), Fatal> {
    let usage = || Fatal(USAGE.into(), EX_USAGE);
    let mut dir = None;
    let mut mode = None;
    for arg in config::getopt::getopt(argv, "cis").map_err(|_| usage())? {
        match arg {
            Arg::Value('c', value) => dir = Some(PathBuf::from(value)),
            Arg::Value('i', id) => set(&mut mode, Mode::FlushId(id))?,
            Arg::Value(_, site) => set(&mut mode, Mode::FlushSite(site))?,
            Arg::Flag('p') => set(&mut mode, Mode::List)?,
            Arg::Flag('j') => set(&mut mode, Mode::Json)?,
            Arg::Flag('f') => set(&mut mode, Mode::Flush)?,
            Arg::Flag('v') => {}
            Arg::Flag(_) | Arg::Operand(_) => return Err(usage()),
        }
    }
    Ok((dir, mode.ok_or_else(usage)?))
}

fn set(mode: &mut Option<Mode>, new: Mode) -> Result<(), Fatal> {
    if mode.is_some() {
        return Err(Fatal(
            "specify one of -f, -i, -j, -p or -s".into(),
            EX_USAGE,
        ));
    }
    *mode = Some(new);
    Ok(())
}

fn run(dir: Option<PathBuf>, mode: &Mode) -> Result<(), Fatal> {
    // Set-gid postdrop when installed so: -c and MAIL_CONFIG are the
    // caller's, so only directories the default main.cf lists are read.
    let dir = privsep::setgid::config_dir(dir.as_deref()).map_err(|e| {
        if let Some(line) = e.error_line() {
            eprintln!("postqueue: error: {line}");
        }
        Fatal(e.to_string(), EX_NOPERM)
    })?;
    let cfg = config::Config::load(&dir).map_err(|e| Fatal(e.to_string(), 1))?;
    privsep::setgid::clean_env(&cfg.str("import_environment"))
        .map_err(|e| Fatal(e.to_string(), EX_CONFIG))?;
    let qdir = PathBuf::from(cfg.str("queue_directory"));
    let (param, action) = match mode {
        Mode::List | Mode::Json => ("authorized_mailq_users", "view the mail queue"),
        _ => ("authorized_flush_users", "flush the mail queue"),
    };
    check_user_acl(&cfg, param, action)?;
    match mode {
        Mode::List => list(&cfg, &dir, &qdir, false),
        Mode::Json => list(&cfg, &dir, &qdir, true),
        Mode::Flush => flush(&qdir),
        Mode::FlushSite(site) => flush_site(&qdir, &cfg.str("flush_service_name"), site),
        Mode::FlushId(id) => flush_id(&qdir, &cfg.str("flush_service_name"), id),
    }
}

/// The queue's owners (root and mail_owner) may always; anyone else as
/// main.cf parameter `param` says.
fn check_user_acl(cfg: &config::Config, param: &str, action: &str) -> Result<(), Fatal> {
    let uid = nix::unistd::getuid();
    let owner = nix::unistd::User::from_name(&cfg.str("mail_owner"))
        .ok()
        .flatten()
        .map(|u| u.uid);
    if uid.is_root() || Some(uid) == owner {
        return Ok(());
    }
    match tables::acl::check_user(&cfg.str(param), uid.as_raw()) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(who)) => Err(Fatal(
            format!("{who} is not allowed to {action}"),
            EX_NOPERM,
        )),
        Err(e) => Err(Fatal(format!("{param}: {e}"), EX_CONFIG)),
    }
}

/// Reads showq's listing and prints it as it arrives. When the showq
/// service does not answer, root lists the queue directly with a showq
/// process of its own (`showq -S`), as Postfix's postqueue does; anyone
/// else learns that the mail system is down.
fn list(
    cfg: &config::Config,
    config_dir: &std::path::Path,
    qdir: &std::path::Path,
    json: bool,
) -> Result<(), Fatal> {
    let down = || {
        Fatal(
            "Queue report unavailable - mail system is down".into(),
            EX_UNAVAILABLE,
        )
    };
    let (mut s, direct) = match proto::connect(qdir, proto::showq::SERVICE) {
        Ok(s) => (s, None),
        Err(e) if nix::unistd::geteuid().is_root() => {
            let why = match &e {
                proto::Error::Connect { source, .. } => source
                    .raw_os_error()
                    .map(|n| nix::errno::Errno::from_raw(n).desc().to_string())
                    .unwrap_or_else(|| source.to_string()),
                other => other.to_string(),
            };
            eprintln!(
                "postqueue: warning: Mail system is down -- accessing queue directly \
                 (Connect to the {} showq service: {why})",
                cfg.str("mail_name")
            );
            let (s, child) = showq_direct(cfg, config_dir).map_err(|e| {
                Fatal(
                    format!("cannot run {}/showq: {e}", cfg.str("daemon_directory")),
                    EX_UNAVAILABLE,
                )
            })?;
            (s, Some(child))
        }
        Err(_) => return Err(down()),
    };
    let result = list_from(&mut s, json, down);
    if let Some(mut child) = direct {
        drop(s);
        let _ = child.wait();
    }
    result
}

/// Starts `daemon_directory/showq -S` on one end of a socket pair; returns
/// the other end and the child.
fn showq_direct(
    cfg: &config::Config,
    config_dir: &std::path::Path,
) -> std::io::Result<(std::os::unix::net::UnixStream, std::process::Child)> {
    use std::os::fd::OwnedFd;
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    ours.set_read_timeout(Some(proto::IPC_TIMEOUT))?;
    let program = PathBuf::from(cfg.str("daemon_directory")).join("showq");
    let child = std::process::Command::new(program)
        .arg("-S")
        .env("MAIL_CONFIG", config_dir)
        .stdin(std::process::Stdio::from(OwnedFd::from(theirs)))
        .stdout(std::process::Stdio::null())
        .spawn()?;
    Ok((ours, child))
}

/// Sends the list request on a showq connection and prints the answer.
fn list_from(
    s: &mut std::os::unix::net::UnixStream,
    json: bool,
    down: impl Fn() -> Fatal,
) -> Result<(), Fatal> {
    proto::send(s, &proto::showq::Request::List).map_err(|_| down())?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let tz = jiff::tz::TimeZone::system();
    let mut mailq = format::Mailq::default();
    loop {
        let reply: proto::showq::Reply = proto::recv(s)
            .map_err(|e| Fatal(format!("malformed showq server response: {e}"), EX_SOFTWARE))?;
        let written = match reply {
            proto::showq::Reply::Entry(m) if json => format::json_line(&m, &mut out),
            proto::showq::Reply::Entry(m) => mailq.message(&m, &tz, &mut out),
            proto::showq::Reply::End => break,
        };
        if let Err(e) = written {
            return output_error(e);
        }
    }
    let done = if json { Ok(()) } else { mailq.finish(&mut out) };
    match done.and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) => output_error(e),
    }
}

/// A closed pipe (`postqueue -p | head`) is not an error.
fn output_error(e: std::io::Error) -> Result<(), Fatal> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(Fatal(format!("output write error: {e}"), 74))
    }
}

fn flush(qdir: &std::path::Path) -> Result<(), Fatal> {
    proto::trigger_with(qdir, "public/qmgr", b'F').map_err(|_| {
        Fatal(
            "Cannot flush mail queue - mail system is down".into(),
            EX_UNAVAILABLE,
        )
    })
}

/// Asks the flush service for `site`'s deferred mail (Postfix's
/// postqueue.c flush_site, its messages and exit statuses).
fn flush_site(qdir: &std::path::Path, service: &str, site: &str) -> Result<(), Fatal> {
    use proto::flush::Reply;
    let shown = config::main_cf::printable(site, 100);
    let down = || {
        Fatal(
            "Cannot flush mail queue - mail system is down".into(),
            EX_UNAVAILABLE,
        )
    };
    match proto::flush::send_site(qdir, &format!("public/{service}"), site) {
        Ok(Reply::Ok) => Ok(()),
        Ok(Reply::Bad) => Err(Fatal(format!("Invalid request: \"{shown}\""), EX_USAGE)),
        Ok(Reply::Deny) => Err(Fatal(
            format!("Flush service is not configured for destination \"{shown}\""),
            EX_UNAVAILABLE,
        )),
        Ok(Reply::Fail) | Err(_) => Err(down()),
    }
}

/// Asks the flush service to deliver one deferred message now (Postfix's
/// flush_send_file): postqueue itself never touches queue files, so users
/// in authorized_flush_users can do it too.
fn flush_id(qdir: &std::path::Path, service: &str, id: &str) -> Result<(), Fatal> {
    use proto::flush::Reply;
    let qid = queue::QueueId::parse(id).map_err(|e| Fatal(e.to_string(), EX_USAGE))?;
    let down = || {
        Fatal(
            "Cannot flush mail queue - mail system is down".into(),
            EX_UNAVAILABLE,
        )
    };
    match proto::flush::send_file(qdir, &format!("public/{service}"), qid.as_str()) {
        Ok(Reply::Ok) => Ok(()),
        Ok(Reply::Bad) => Err(Fatal(format!("Invalid request: \"{id}\""), EX_USAGE)),
        Ok(Reply::Deny | Reply::Fail) | Err(_) => Err(down()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Option<(Option<PathBuf>, Mode)> {
        parse_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>()).ok()
    }

    #[test]
    fn command_lines() {
        assert_eq!(args(&["-p"]), Some((None, Mode::List)));
        assert_eq!(
            args(&["-c", "/x", "-j"]),
            Some((Some(PathBuf::from("/x")), Mode::Json))
        );
        assert_eq!(
            args(&["-iABC"]).map(|a| a.1),
            Some(Mode::FlushId("ABC".into()))
        );
        assert_eq!(
            args(&["-v", "-s", "example.org"]).map(|a| a.1),
            Some(Mode::FlushSite("example.org".into()))
        );
        assert!(args(&["-p", "-f"]).is_none());
        assert!(args(&[]).is_none());
        assert!(args(&["-x"]).is_none());
        assert!(args(&["-i"]).is_none());
    }
}
