//! postcat - show Postfix queue file contents
//!
//! # Synopsis
//!
//! ```text
//! postcat [-bdehoqv] [-c config_dir] [files...]
//! postcat [-bdehoqv] [-c config_dir] -q queue_id...
//! ```
//!
//! # Description
//!
//! Prints queue files in Postfix's postcat shape. With `-q` the arguments
//! are queue ids, looked for in maildrop, incoming, active, deferred, hold
//! and saved under queue_directory (named `deferred/ID` in the output);
//! otherwise they are file names.
//!
//! - `-e`: the envelope: `*** ENVELOPE RECORDS name ***`, then
//!   `message_size:` (content length, content offset, recipient count, 0,
//!   content length, in Postfix's 15-wide columns), `message_arrival_time:`,
//!   `named_attribute: name=value` for each attribute,
//!   `dsn_envelope_id:`, `dsn_return_flags:`, `sender:`, and per recipient
//!   `dsn_orig_rcpt:`, `dsn_notify_flags:`, `original_recipient:` and
//!   `recipient:` (`done_recipient:` once delivered); then the
//!   `*** MESSAGE CONTENTS name ***`, `*** HEADER EXTRACTED name ***` and
//!   `*** MESSAGE FILE END name ***` markers around the content.
//! - `-h`: the message header (up to the first line that is neither a
//!   header field nor its continuation).
//! - `-b`: the message body (from there on).
//! - none of the three: all of them.
//! - `-c config_dir`: main.cf for queue_directory. `-d`, `-o`, `-v`: accepted.
//!
//! # Talks to
//!
//! Nothing: reads queue files only.
//!
//! # Security
//!
//! Not set-uid; the caller needs read access to the queue (root or
//! mail_owner) or to the named file. A queue file is untrusted input: it is
//! checked whole by the queue library before anything is printed, and the
//! content checksum as it streams; a damaged file is an error, never a
//! panic. Named files that do not sit in a queue directory are copied to a
//! private temporary directory to be opened.
//!
//! # Diagnostics
//!
//! `postcat: fatal: ...` on stderr and exit 1 for a file that cannot be
//! opened, is not a complete queue file, or is damaged (output may stop
//! part way). Exit 64 for a bad command line.
//!
//! # Configuration parameters
//!
//! - queue_directory (/var/spool/postfix): where `-q` looks.
//!
//! # See also
//!
//! postsuper(1), postqueue(1), the `queue` crate (file format).

mod show;

use config::getopt::{Arg, getopt};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: postcat [-b (body text)] [-c config_dir] [-d (decimal record type)] [-e (envelope records)] [-h (header text)] [-q (access queue)] [-v] [file(s)...]";

/// The parsed command line.
#[derive(Debug, Default, PartialEq, Eq)]
struct Args {
    config_dir: Option<PathBuf>,
    show: show::Sections,
    queue: bool,
    names: Vec<String>,
}

struct Fatal(String, u8);

fn main() -> ExitCode {
    let argv = config::getopt::utf8_args().ok_or_else(|| Fatal(USAGE.into(), 64));
    match argv
        .and_then(|argv| parse_args(&argv))
        .and_then(|a| run(&a))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fatal(msg, code)) => {
            eprintln!("postcat: fatal: {msg}");
            ExitCode::from(code)
        }
    }
}

fn parse_args(argv: &[String]) -> Result<Args, Fatal> {
    let usage = || Fatal(USAGE.into(), 64);
    let mut a = Args::default();
    for arg in getopt(argv, "c").map_err(|_| usage())? {
        match arg {
            Arg::Operand(name) => a.names.push(name),
            Arg::Value(_, dir) => a.config_dir = Some(PathBuf::from(dir)),
            Arg::Flag('b') => a.show.body = true,
            Arg::Flag('e') => a.show.envelope = true,
            Arg::Flag('h') => a.show.header = true,
            Arg::Flag('q') => a.queue = true,
            Arg::Flag('d' | 'o' | 'v' | 'r') => {}
            Arg::Flag(_) => return Err(usage()),
        }
    }
    if !(a.show.body || a.show.envelope || a.show.header) {
        a.show = show::Sections {
            envelope: true,
            header: true,
            body: true,
        };
    }
    if a.names.is_empty() {
        return Err(usage());
    }
    Ok(a)
}

fn run(a: &Args) -> Result<(), Fatal> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let tz = jiff::tz::TimeZone::system();
    let qdir = if a.queue {
        let dir = a
            .config_dir
            .clone()
            .unwrap_or_else(config::default_config_dir);
        let cfg = config::Config::load(&dir).map_err(|e| Fatal(e.to_string(), 1))?;
        Some(PathBuf::from(cfg.str("queue_directory")))
    } else {
        None
    };
    for name in &a.names {
        let (qf, label, _tmp) = match &qdir {
            Some(q) => {
                let (qf, label) = open_queued(q, name)?;
                (qf, label, None)
            }
            None => open_file(Path::new(name))?,
        };
        let shown = show::show(&qf, &label, a.show, &tz, &mut out).and_then(|()| out.flush());
        match shown {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => {
                let _ = out.flush();
                return Err(Fatal(format!("{label}: {e}"), 1));
            }
        }
    }
    Ok(())
}

/// Postfix's search order for `-q`.
const SEARCH: [queue::Queue; 6] = [
    queue::Queue::Maildrop,
    queue::Queue::Incoming,
    queue::Queue::Active,
    queue::Queue::Deferred,
    queue::Queue::Hold,
    queue::Queue::Saved,
];

fn open_queued(qdir: &Path, name: &str) -> Result<(queue::QueueFile, String), Fatal> {
    let id = queue::QueueId::parse(name)
        .map_err(|_| Fatal(format!("bad mail queue ID: {}", visible(name)), 1))?;
    for q in SEARCH {
        match queue::QueueFile::open_read_only(qdir, q, &id) {
            Ok(qf) => return Ok((qf, format!("{q}/{id}"))),
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(Fatal(format!("open queue file {id}: {e}"), 1)),
        }
    }
    Err(Fatal(
        format!("open queue file {id}: No such file or directory"),
        1,
    ))
}

/// Opens a named file: in place when it sits in a queue directory under
/// its id, else through a private copy.
fn open_file(path: &Path) -> Result<(queue::QueueFile, String, Option<tempfile::TempDir>), Fatal> {
    let label = path.display().to_string();
    if let Some((qdir, q, id)) = locate(path)
        && let Ok(qf) = queue::QueueFile::open_read_only(&qdir, q, &id)
    {
        return Ok((qf, label, None));
    }
    let open_err = |e: std::io::Error| Fatal(format!("open {label}: {e}"), 1);
    let meta = std::fs::metadata(path).map_err(open_err)?;
    if !meta.is_file() {
        return Err(Fatal(format!("{label}: not a regular file"), 1));
    }
    let tmp = tempfile::tempdir().map_err(open_err)?;
    let id = queue::QueueId::parse("0000000000B").map_err(|e| Fatal(e.to_string(), 1))?;
    let hold = tmp.path().join("hold");
    std::fs::create_dir(&hold).map_err(open_err)?;
    let copy = queue::queue_path(tmp.path(), queue::Queue::Hold, &id);
    std::fs::copy(path, &copy).map_err(open_err)?;
    let qf = queue::QueueFile::open_read_only(tmp.path(), queue::Queue::Hold, &id)
        .map_err(|e| Fatal(format!("{label}: {}", describe(&e)), 1))?;
    Ok((qf, label, Some(tmp)))
}

/// `QDIR/queue/ID` or `QDIR/queue/H/ID` (hashed).
fn locate(path: &Path) -> Option<(PathBuf, queue::Queue, queue::QueueId)> {
    let id = queue::QueueId::parse(path.file_name()?.to_str()?).ok()?;
    let parent = path.parent()?;
    let try_queue = |dir: &Path| -> Option<(PathBuf, queue::Queue)> {
        let q = queue::Queue::parse(dir.file_name()?.to_str()?).ok()?;
        Some((dir.parent()?.to_path_buf(), q))
    };
    let (qdir, q) = try_queue(parent).or_else(|| try_queue(parent.parent()?))?;
    (queue::queue_path(&qdir, q, &id) == path).then_some((qdir, q, id))
}

fn describe(e: &queue::Error) -> String {
    match e {
        queue::Error::Incomplete { .. } => "not a complete queue file".into(),
        other => other.to_string(),
    }
}

fn visible(text: &str) -> String {
    maillog::printable(text, 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Option<Args> {
        parse_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>()).ok()
    }

    #[test]
    fn command_lines() {
        let a = args(&["-q", "ID"]).unwrap();
        assert!(a.queue && a.show.envelope && a.show.header && a.show.body);
        let a = args(&["-hq", "ID"]).unwrap();
        assert!(a.show.header && !a.show.body && !a.show.envelope);
        let a = args(&["-c/x", "-be", "f"]).unwrap();
        assert_eq!(a.config_dir, Some(PathBuf::from("/x")));
        assert!(a.show.body && a.show.envelope && !a.show.header);
        assert!(args(&["-q"]).is_none());
        assert!(args(&["-Z", "f"]).is_none());
    }

    #[test]
    fn locates_files_in_queue_directories() {
        let id = queue::QueueId::parse("0000000000B").unwrap();
        let q = Path::new("/var/spool/postfix");
        let p = queue::queue_path(q, queue::Queue::Deferred, &id);
        assert_eq!(
            locate(&p),
            Some((q.to_path_buf(), queue::Queue::Deferred, id))
        );
        let p = queue::queue_path(q, queue::Queue::Active, &id);
        assert_eq!(
            locate(&p),
            Some((q.to_path_buf(), queue::Queue::Active, id))
        );
        assert_eq!(locate(Path::new("/tmp/file")), None);
        assert_eq!(locate(Path::new("/tmp/0000000000B")), None);
    }
}
