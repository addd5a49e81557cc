//! postfix-import-queue - move mail from Postfix's queue into ours
//!
//! # Synopsis
//!
//! ```text
//! postfix-import-queue [-n] [-c config_dir]
//! ```
//!
//! # Description
//!
//! Run as root, with the mail system stopped (it refuses while a master,
//! Postfix's or ours, holds queue_directory/pid/master.pid), over a
//! queue_directory that Postfix used: every Postfix queue file in maildrop/, incoming/,
//! active/, deferred/ and hold/ is read (Postfix's record format) and its
//! message written into our queue with its envelope (see the library's
//! `import` module for where each goes), then the Postfix file is
//! removed. Our own queue files are recognised and left alone, so running
//! it again, or on a queue with no Postfix mail, does nothing. The package
//! (pkg/setup), scripts/install and the service unit (ExecStartPre) run it
//! before the daemons start.
//!
//! `-n`: only read and report what would be imported.
//! `-c config_dir`: the main.cf to read.
//!
//! A Postfix file is removed only after our copy is complete and fsynced;
//! a journal in queue_directory/pid/ records each copy begun, so a rerun
//! after a crash finishes it instead of copying the message twice.
//!
//! # Talks to
//!
//! The queue directory only: Postfix's files are read and removed, ours
//! written with the queue library. No socket; the daemons are not running.
//!
//! # Security
//!
//! Opens the journal as root, then runs as mail_owner (the owner of the
//! queue files), without a chroot. Postfix's files are untrusted input:
//! names must be Postfix queue names, lengths and pointers are checked,
//! symbolic links are not followed; maildrop files stay untrusted (our
//! pickup takes them).
//!
//! # Diagnostics
//!
//! One log line per message (`ID: imported from Postfix deferred/8/87D8...:
//! from=<...>, nrcpt=N (incoming)`), to the mail log and stderr. Files that
//! cannot be imported safely are left where they are and listed with the
//! reason, followed by the steps to drain them with Postfix; the exit
//! status is then 1 (and the service does not start while they are
//! there). Exit 64 on a bad command line, 1 on a fatal error (not root, a
//! master running, an unusable configuration).
//!
//! # Configuration parameters
//!
//! - queue_directory (/var/spool/postfix)
//! - mail_owner (postfix)
//! - syslog_name (postfix)
//! - maillog_file (empty)
//!
//! # See also
//!
//! postsuper(1), postqueue(1), pickup(8), qmgr(8), postfix(1).

use postfix_import::import::{self, Report};
use postfix_import::journal::Journal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// sysexits.h EX_USAGE.
const EX_USAGE: u8 = 64;
const USAGE: &str = "usage: postfix-import-queue [-n] [-c config_dir]";
/// The journal, relative to queue_directory.
const JOURNAL: &str = "pid/postfix-import.journal";

struct Fatal(String, u8);

fn main() -> ExitCode {
    match args().and_then(|(dir, dry)| run(dir, dry)) {
        Ok(code) => code,
        Err(Fatal(msg, code)) => {
            eprintln!("postfix-import-queue: fatal: {msg}");
            ExitCode::from(code)
        }
    }
}

fn args() -> Result<(Option<PathBuf>, bool), Fatal> {
    let usage = || Fatal(USAGE.into(), EX_USAGE);
    let mut argv = std::env::args_os().skip(1);
    let mut dir = None;
    let mut dry = false;
    while let Some(a) = argv.next() {
        match a.to_str() {
            Some("-n") => dry = true,
            Some("-c") => dir = Some(PathBuf::from(argv.next().ok_or_else(usage)?)),
            Some("-v") => {}
            _ => return Err(usage()),
        }
    }
    Ok((dir, dry))
}

fn run(dir: Option<PathBuf>, dry: bool) -> Result<ExitCode, Fatal> {
    let dir = dir.unwrap_or_else(config::default_config_dir);
    let cfg = config::Config::load(&dir).map_err(|e| Fatal(e.to_string(), 1))?;
    let file = cfg.str("maillog_file");
    maillog::init(
        maillog::Setup::new(maillog::Options {
            syslog_name: cfg.str("syslog_name"),
            program: "postfix-import-queue".into(),
            maillog_file: (!file.is_empty()).then(|| PathBuf::from(file)),
            stderr: true,
        })
        .hostname(&cfg.str("myhostname")),
    );
    if !privsep::is_root() {
        return Err(Fatal("must be run by the super-user".into(), 1));
    }
    let owner =
        privsep::check_mail_owner(&cfg.str("mail_owner")).map_err(|e| Fatal(e.to_string(), 1))?;
    let qdir = PathBuf::from(cfg.str("queue_directory"));
    if !qdir.join("pid").is_dir() {
        // No queue yet (postfix check makes it): nothing to import.
        return Ok(ExitCode::SUCCESS);
    }
    // A master at work (Postfix's or ours) would race with the copy.
    if let Some(pid) = ipc::pidfile::running(&ipc::pidfile::path(&qdir)) {
        return Err(Fatal(
            format!("the mail system is running (master pid {pid}): stop it first"),
            1,
        ));
    }
    let jpath = qdir.join(JOURNAL);
    let mut journal =
        Journal::open(&jpath).map_err(|e| Fatal(format!("open {}: {e}", jpath.display()), 1))?;
    let _dropped = privsep::drop_privileges(&owner, None).map_err(|e| Fatal(e.to_string(), 1))?;
    let report = import::run(&qdir, &mut journal, dry);
    Ok(summary(&qdir, &report, dry))
}

fn summary(qdir: &Path, report: &Report, dry: bool) -> ExitCode {
    let verb = if dry { "would import" } else { "imported" };
    if dry {
        for i in &report.imported {
            eprintln!(
                "postfix-import-queue: {}: {verb} into {}: from=<{}>, nrcpt={}",
                i.from,
                i.queue.as_str(),
                i.sender,
                i.recipients
            );
        }
    }
    if !report.imported.is_empty() || !report.finished.is_empty() {
        maillog::info!(
            "{verb} {} messages from the Postfix queue in {}",
            report.imported.len(),
            qdir.display()
        );
    }
    if report.left.is_empty() {
        return ExitCode::SUCCESS;
    }
    maillog::warning!(
        "{} Postfix queue files in {} were not imported and are left in place:",
        report.left.len(),
        qdir.display()
    );
    for (file, why) in &report.left {
        maillog::warning!("  {file}: {why}");
    }
    let say = |s: &str| eprintln!("postfix-import-queue: {s}");
    say("Our mail system does not start while they are there. Either deliver them");
    say("with Postfix (reinstall it; our package's files stay as configuration):");
    say("    postqueue -f          # try every deferred message now");
    say("    postsuper -r ALL hold # if held mail should go too (or postsuper -d)");
    say("    postqueue -p          # wait until it says \"Mail queue is empty\"");
    say("then install again; or move the files listed above out of the queue");
    say("directory and start the mail system (systemctl start postfix).");
    ExitCode::from(1)
}
