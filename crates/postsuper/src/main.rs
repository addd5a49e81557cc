//! postsuper - Postfix superintendent
//!
//! # Synopsis
//!
//! ```text
//! postsuper [-psSv] [-c config_dir] [-d queue_id] [-h queue_id] [-H queue_id]
//!           [-r queue_id] [-e queue_id] [-f queue_id] [queue...]
//! ```
//!
//! # Description
//!
//! Queue maintenance for the super-user (or mail_owner). Each of `-d`,
//! `-e`, `-f`, `-h`, `-H` and `-r` takes a queue id, `ALL` (every message), or `-`
//! (queue ids read from stdin, one per line), and may be repeated. The
//! optional queue names after the options limit where messages are looked
//! for; the defaults are Postfix's:
//!
//! - `-d`: delete the message (the queue file and its bounce/, defer/ and
//!   trace/ logs) from hold, incoming, active and deferred. Logs
//!   `ID: removed`, then prints `Deleted: N messages`. Deleting a message
//!   in active/ while qmgr works on it is allowed, as in Postfix: qmgr
//!   copes with the file vanishing.
//! - `-h`: put the message on hold: move it from incoming, active or
//!   deferred to hold/, where qmgr does not look. `Placed on hold: N
//!   messages`.
//! - `-H`: release it from hold: move it to deferred/ with its time stamp
//!   set to now and wake qmgr (request `D`: scan deferred/ for mail that
//!   is due). Postfix moves it back to the queue it came from; here
//!   deferred/ is where qmgr picks it up at once. `Released from hold: N
//!   messages`.
//! - `-r`: requeue the message from hold, incoming, active and deferred.
//!   Postfix sends it through pickup and cleanup again (new address
//!   rewriting); here it is moved to incoming/ with its recipients' done
//!   or pending state kept, and qmgr is woken (request `I`), so it is
//!   retried at once with the routing of the moment, but not rewritten.
//!   `Requeued: N messages`.
//! - `-s`: structure check: create missing queue directories and repair
//!   owner and mode (`queue::layout::create_or_repair`), and move queue
//!   files that sit in the wrong hashed subdirectory (or at the top of a
//!   hashed queue) to where they belong. Runs before any other operation.
//! - `-p`: purge temporary files left by writers that died (names starting
//!   with `.tmp.` older than a day) from incoming and maildrop.
//! - `-S`, `-v`: accepted for compatibility.
//! - `-e`: forced expiration: mark the message (in hold, incoming, active
//!   or deferred) so that qmgr returns it to the sender, without another
//!   delivery attempt, the next time it takes it (`queue::expire`: the
//!   sticky bit, since qmgr's delay-warning mark has Postfix's
//!   group-execute bit). Its recipients are bounced with the reason of
//!   their last delay, or `message is administratively expired`. A message
//!   in hold stays there until released. `ID: expired`, then
//!   `Force-expired: N messages`.
//! - `-f`: as `-e`, and release the message from hold (as `-H`).
//! - `-c config_dir`: the main.cf to read.
//!
//! # Talks to
//!
//! The queue directory only (rename, unlink), and public/qmgr to wake it
//! after `-H` and `-r`. Coordination with qmgr goes through the file
//! system alone.
//!
//! # Security
//!
//! Only root and mail_owner may run it, as with Postfix. Queue ids from the
//! command line and stdin pass `QueueId::parse` before any path is built;
//! queue names pass `Queue::parse`. Files are renamed and removed, never
//! read, except by `-s`, which examines directory entries.
//!
//! # Diagnostics
//!
//! Per message `postsuper: ID: removed` (`placed on hold`, `released from
//! hold`, `requeued`) to the mail log and stderr, then the summary line.
//! `postsuper: fatal: ...` on a bad command line (exit 64), for a user
//! other than root or mail_owner, or when the configuration cannot be read
//! (exit 1). A queue id that is not found is silently skipped (as
//! Postfix); an invalid one is a warning.
//!
//! # Configuration parameters
//!
//! - queue_directory (/var/spool/postfix).
//! - mail_owner (postfix), setgid_group (postdrop): who may run it; owners
//!   for `-s` repairs.
//! - syslog_name (postfix), maillog_file: logging;
//!   maillog_file_permissions (0600): mode of a new maillog_file.
//!
//! # See also
//!
//! postqueue(1), postcat(1), qmgr(8), postfix(1) check.

mod ops;

use queue::Queue;
use std::path::PathBuf;
use std::process::ExitCode;

/// sysexits.h EX_USAGE.
const EX_USAGE: u8 = 64;

const USAGE: &str = "usage: postsuper [-c config_dir] [-d queue_id] [-e queue_id] [-f queue_id] [-h queue_id] [-H queue_id] [-p] [-r queue_id] [-s] [-S] [-v] [queue...]";

/// What one option asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// -d
    Delete,
    /// -h
    Hold,
    /// -H
    Release,
    /// -r
    Requeue,
    /// -e, and the first half of -f: forced expiration.
    Expire,
}

impl Action {
    /// Postfix's default queues for each action.
    pub(crate) fn default_queues(self) -> &'static [Queue] {
        match self {
            Action::Delete | Action::Requeue | Action::Expire => {
                &[Queue::Hold, Queue::Incoming, Queue::Active, Queue::Deferred]
            }
            Action::Hold => &[Queue::Incoming, Queue::Active, Queue::Deferred],
            Action::Release => &[Queue::Hold],
        }
    }
}

/// The parsed command line.
#[derive(Debug, Default)]
struct Args {
    config_dir: Option<PathBuf>,
    requests: Vec<(Action, String)>,
    structure: bool,
    purge: bool,
    queues: Vec<Queue>,
}

struct Fatal(String, u8);

fn main() -> ExitCode {
    let argv = utf8_args().ok_or_else(|| Fatal(USAGE.into(), EX_USAGE));
    match argv
        .and_then(|argv| parse_args(&argv))
        .and_then(|a| run(&a))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fatal(msg, code)) => {
            eprintln!("postsuper: fatal: {msg}");
            ExitCode::from(code)
        }
    }
}

/// The arguments after argv[0]; `None` when one is not UTF-8 (a usage
/// error: std::env::args would panic on it).
fn utf8_args() -> Option<Vec<String>> {
    std::env::args_os()
        .skip(1)
        .map(|a| a.into_string().ok())
        .collect()
}

fn parse_args(argv: &[String]) -> Result<Args, Fatal> {
    let usage = || Fatal(USAGE.into(), EX_USAGE);
    let mut a = Args::default();
    let mut i = 0;
    while let Some(arg) = argv.get(i) {
        i += 1;
        let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            let q =
                Queue::parse(arg).map_err(|_| Fatal(format!("unknown queue: {arg}"), EX_USAGE))?;
            a.queues.push(q);
            continue;
        };
        for (pos, flag) in flags.char_indices() {
            if matches!(flag, 'c' | 'd' | 'e' | 'f' | 'h' | 'H' | 'r') {
                let attached = flags.get(pos + 1..).unwrap_or_default();
                let value = if attached.is_empty() {
                    i += 1;
                    argv.get(i - 1).cloned().ok_or_else(usage)?
                } else {
                    attached.to_string()
                };
                match flag {
                    'c' => a.config_dir = Some(PathBuf::from(value)),
                    'd' => a.requests.push((Action::Delete, value)),
                    'e' => a.requests.push((Action::Expire, value)),
                    // -f: expire, and release from hold (Postfix's exp_rel_one).
                    'f' => {
                        a.requests.push((Action::Expire, value.clone()));
                        a.requests.push((Action::Release, value));
                    }
                    'h' => a.requests.push((Action::Hold, value)),
                    'H' => a.requests.push((Action::Release, value)),
                    _ => a.requests.push((Action::Requeue, value)),
                }
                break;
            }
            match flag {
                's' => a.structure = true,
                'p' => a.purge = true,
                'S' | 'v' => {}
                _ => return Err(usage()),
            }
        }
    }
    if a.requests.is_empty() && !a.structure && !a.purge {
        // Postfix's default: a structure check.
        a.structure = true;
    }
    Ok(a)
}

fn run(a: &Args) -> Result<(), Fatal> {
    let dir = a
        .config_dir
        .clone()
        .unwrap_or_else(config::default_config_dir);
    let cfg = config::Config::load(&dir).map_err(|e| Fatal(e.to_string(), 1))?;
    let file = cfg.str("maillog_file");
    let perms = cfg.str("maillog_file_permissions");
    let mode = maillog::parse_file_permissions(&perms);
    maillog::init(
        maillog::Setup::new(maillog::Options {
            syslog_name: cfg.str("syslog_name"),
            program: "postsuper".into(),
            maillog_file: (!file.is_empty()).then(|| PathBuf::from(file)),
            stderr: true,
        })
        .file_permissions(mode.unwrap_or(maillog::DEFAULT_FILE_PERMISSIONS))
        .hostname(&cfg.str("myhostname")),
    );
    if mode.is_none() {
        maillog::warning!("ignoring bad permissions: maillog_file_permissions = {perms}");
    }
    let owner = check_user(&cfg)?;
    let qdir = PathBuf::from(cfg.str("queue_directory"));
    if a.structure {
        let setgid = privsep::lookup_group(&cfg.str("setgid_group"))
            .ok()
            .flatten();
        ops::structure(&qdir, owner, setgid).map_err(|e| Fatal(e, 1))?;
    }
    // The repairs above may need root; everything after runs as
    // mail_owner, as Postfix's postsuper does, so that queue
    // subdirectories it makes (a release into deferred/) are mail_owner's,
    // not root's.
    if let Some((uid, gid)) = owner {
        let account = privsep::Account {
            name: cfg.str("mail_owner"),
            uid,
            gid,
        };
        privsep::drop_privileges(&account, None).map_err(|e| Fatal(e.to_string(), 1))?;
    }
    if a.purge {
        ops::purge(&qdir);
    }
    let mut stdin_ids: Option<Vec<String>> = None;
    for action in [
        Action::Delete,
        Action::Hold,
        Action::Expire,
        Action::Release,
        Action::Requeue,
    ] {
        let mut names: Vec<String> = Vec::new();
        for (act, value) in &a.requests {
            if *act != action {
                continue;
            }
            if value == "-" {
                let ids = stdin_ids.get_or_insert_with(read_stdin_ids);
                names.extend(ids.iter().cloned());
            } else {
                names.push(value.clone());
            }
        }
        if names.is_empty() {
            continue;
        }
        let queues: &[Queue] = if a.queues.is_empty() {
            action.default_queues()
        } else {
            &a.queues
        };
        let n = ops::apply(&qdir, action, &names, queues);
        summary(action, n);
        // qmgr may be down; it scans its queues when it starts. `D` asks it
        // to scan deferred/ for files that are due (released ones are: their
        // time stamp is now), `I` to scan incoming/.
        let wake = match action {
            Action::Release => Some(b'D'),
            Action::Requeue => Some(b'I'),
            Action::Delete | Action::Hold | Action::Expire => None,
        };
        if let Some(byte) = wake.filter(|_| n > 0) {
            let _ = proto::trigger_with(&qdir, "public/qmgr", byte);
        }
    }
    Ok(())
}

fn summary(action: Action, n: usize) {
    let what = match action {
        Action::Delete => "Deleted",
        Action::Hold => "Placed on hold",
        Action::Release => "Released from hold",
        Action::Requeue => "Requeued",
        Action::Expire => "Force-expired",
    };
    if n > 0 {
        maillog::info!("{what}: {n} message{}", if n == 1 { "" } else { "s" });
    }
}

/// Queue ids from stdin, one per line (at most a million, each line bounded).
fn read_stdin_ids() -> Vec<String> {
    use std::io::{BufRead, Read};
    let mut out = Vec::new();
    let mut line = Vec::new();
    let mut stdin = std::io::stdin().lock();
    while out.len() < 1_000_000 {
        line.clear();
        match stdin.by_ref().take(4096).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let t = text.trim();
        if !t.is_empty() {
            out.push(t.to_string());
        }
    }
    out
}

/// Root or mail_owner only. Returns mail_owner's (uid, gid) when root, for
/// repairs.
fn check_user(cfg: &config::Config) -> Result<Option<(u32, u32)>, Fatal> {
    let uid = nix::unistd::getuid().as_raw();
    let owner = privsep::lookup_user(&cfg.str("mail_owner")).ok().flatten();
    if uid == 0 {
        return Ok(owner.map(|o| (o.uid, o.gid)));
    }
    if owner.is_some_and(|o| o.uid == uid) {
        return Ok(None);
    }
    Err(Fatal(
        "use of this command is reserved for the superuser".into(),
        1,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Args, Fatal> {
        parse_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn forced_expiration_options() {
        let a = args(&["-e", "ALL", "deferred"]).ok().unwrap();
        assert_eq!(a.requests, vec![(Action::Expire, "ALL".to_string())]);
        // -f: expire, then release from hold.
        let a = args(&["-fABC"]).ok().unwrap();
        assert_eq!(
            a.requests,
            vec![
                (Action::Expire, "ABC".into()),
                (Action::Release, "ABC".into())
            ]
        );
        assert!(args(&["-e"]).is_err());
    }

    #[test]
    fn command_lines() {
        let a = args(&["-d", "ALL", "deferred"]).ok().unwrap();
        assert_eq!(a.requests, vec![(Action::Delete, "ALL".to_string())]);
        assert_eq!(a.queues, vec![Queue::Deferred]);
        assert!(!a.structure);
        let a = args(&["-hABC", "-H", "-", "-c", "/x"]).ok().unwrap();
        assert_eq!(
            a.requests,
            vec![(Action::Hold, "ABC".into()), (Action::Release, "-".into())]
        );
        assert!(args(&[]).ok().unwrap().structure);
        assert!(args(&["-d"]).is_err());
        assert!(args(&["-d", "x", "nosuchqueue"]).is_err());
        assert!(args(&["-Z"]).is_err());
    }
}
