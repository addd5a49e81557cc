//! imapd end to end (issue 10): Python's imaplib (tests/py/imapcheck.py)
//! against a real instance with the smtp tests' virtual users, mail
//! delivered by the suite through smtpd or sendmail and virtual. Every
//! command and extension the issue lists, plain, STARTTLS and IMAPS, every
//! login method; two concurrent sessions and IDLE; the MIME corpus
//! (tests/imap-corpus and crates/imapd/tests/corpus) with ENVELOPE and
//! BODYSTRUCTURE compared with a private Dovecot's over the same Maildir;
//! a Maildir that Dovecot served; real clients from Debian (mbsync, mutt).
//! The same script also runs against Dovecot (imap_suite_is_right_against_dovecot),
//! which shows that the checks themselves are right.

use crate::util::{SmtpInstance, SmtpSetup, answers, free_port, local, need_smtp, wait_until};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

struct Imap {
    s: SmtpInstance,
    port: u16,
    ssl_port: u16,
}

fn py_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("py")
}

fn start(main: &[&str]) -> Imap {
    need_smtp();
    testkit::need_bins(&["imapd"]);
    let port = free_port();
    let ssl_port = free_port();
    let mut setup = SmtpSetup::new()
        .tls()
        .user("dave@virt.test", "dave/")
        .master(&format!(
            "127.0.0.1:{port} inet n n n - - imapd\n\
             127.0.0.1:{ssl_port} inet n n n - - imapd\n  -o imapd_tls_wrappermode=yes\n"
        ))
        .main("imapd_login_failure_delay = 0");
    for m in main {
        setup = setup.main(m);
    }
    let s = setup.start();
    for p in [port, ssl_port] {
        assert!(
            wait_until(Duration::from_secs(10), || answers(local(p))),
            "imapd not on {p}\n{}",
            s.inst.log()
        );
    }
    Imap { s, port, ssl_port }
}

/// Runs imapcheck.py CHECK against `port` (and `ssl_port`) with the
/// instance's CA, SMTP port and sendmail, then `args`.
fn run_check(s: &SmtpInstance, check: &str, port: u16, ssl_port: u16, args: &[&str]) -> Output {
    let mut cmd = Command::new("python3");
    cmd.arg(py_dir().join("imapcheck.py"))
        .arg(check)
        .arg("--port")
        .arg(port.to_string())
        .arg("--ssl-port")
        .arg(ssl_port.to_string())
        .arg("--smtp-port")
        .arg(s.port.to_string());
    if let Some(p) = &s.pki {
        cmd.arg("--ca").arg(&p.ca);
    }
    cmd.args(args).output().unwrap()
}

impl Imap {
    fn py(&self, check: &str, args: &[&str]) -> String {
        let out = run_check(&self.s, check, self.port, self.ssl_port, args);
        assert!(
            out.status.success(),
            "imapcheck.py {check} {args:?} failed:\n{}{}\nmaillog:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.s.base.join("maillog")).unwrap_or_default())
            .into_owned()
    }

    fn maildir(&self, user: &str) -> PathBuf {
        self.s.base.join("vmail").join(user)
    }

    /// Delivers `n` messages to alice through smtpd and waits for them.
    fn seed(&self, user: &str, n: usize) {
        let before = self.s.maildir(user).len();
        self.py(
            "deliver",
            &[
                "--user",
                &format!("{user}@virt.test"),
                "--count",
                &n.to_string(),
                "--tag",
                "seed",
            ],
        );
        self.s.wait_mail(user, before + n);
    }

    fn sendmail_args(&self) -> Vec<String> {
        vec![
            "--sendmail".into(),
            testkit::bin_dir().join("sendmail").display().to_string(),
            "--config".into(),
            self.s.inst.config_dir.display().to_string(),
        ]
    }
}

#[test]
fn imap_capabilities_and_every_login_plain_starttls_imaps() {
    let p = start(&[]);
    p.seed("alice", 1);
    for mode in ["plain", "stls", "ssl"] {
        let out = p.py("caps", &["--mode", mode]);
        assert!(out.contains("\"login\""), "{out}");
    }
    let log = p.log();
    assert!(log.contains("alice@virt.test"), "{log}");
}

#[test]
fn imap_mailboxes_list_lsub_status_special_use_mutf7() {
    let p = start(&[]);
    p.seed("alice", 1);
    let out = p.py("mailboxes", &[]);
    assert!(out.contains("Entw&APw-rfe"), "{out}");
    // Maildir++ folders beside the INBOX, names in modified UTF-7.
    let md = p.maildir("alice");
    for dir in [
        ".Sent",
        ".Drafts",
        ".Trash",
        ".Junk",
        ".Archive",
        ".Archive.Y2026",
        ".Entw&APw-rfe",
        ".&ZeVnLIqe-",
    ] {
        assert!(
            md.join(dir).join("cur").is_dir(),
            "no Maildir++ folder {dir} in {}",
            md.display()
        );
    }
    assert!(!md.join(".Archive.Y2026.Q1").exists(), "DELETE left it");
    let subs = std::fs::read_to_string(md.join("subscriptions")).unwrap_or_default();
    assert!(
        subs.contains("Archive.Y2026") || subs.contains("Archive.2026"),
        "subscriptions: {subs}"
    );
}

#[test]
fn imap_append_and_fetch_every_item_and_section() {
    let p = start(&[]);
    p.seed("alice", 1);
    p.py("fetch", &[]);
    p.py("fetch", &["--mode", "ssl"]);
}

#[test]
fn imap_search_esearch_sort_thread() {
    let p = start(&[]);
    p.seed("alice", 1);
    p.py("search", &[]);
}

#[test]
fn imap_store_copy_move_expunge_close_unselect() {
    let p = start(&[]);
    p.seed("alice", 1);
    p.py("store", &[]);
}

#[test]
fn imap_condstore_and_qresync() {
    let p = start(&[]);
    p.seed("alice", 1);
    p.py("condstore", &[]);
    // MODSEQs persist: a new session (after a restart) sees the same
    // HIGHESTMODSEQ as the end of the last one, never less.
    p.s.inst.postfix(&["stop"]);
    p.s.inst.start();
    assert!(wait_until(Duration::from_secs(10), || answers(local(
        p.port
    ))));
    p.py("state", &[]);
}

/// Two sessions: flags and expunges in one are seen by the other; IDLE
/// reports mail that the suite delivers with sendmail within a second of
/// its arrival in the Maildir.
#[test]
fn imap_two_sessions_and_idle_reports_a_sendmail_delivery() {
    let p = start(&[]);
    p.seed("alice", 1);
    let md = p.maildir("alice").display().to_string();
    let mut args: Vec<String> = vec!["--maildir".into(), md];
    args.extend(p.sendmail_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = p.py("two", &args);
    println!("imap_two_sessions: {}", out.trim());
}

/// A private Dovecot IMAP server (tests/py/imapdovecot.py) over one Maildir.
struct Dovecot {
    dir: tempfile::TempDir,
    child: std::process::Child,
    port: u16,
    ssl_port: u16,
}

impl Dovecot {
    fn start(maildir: &Path, pki: Option<&crate::util::Pki>) -> Dovecot {
        testkit::need_program("/usr/lib/dovecot/imap", "dovecot-imapd");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let ssl_port = free_port();
        let mut cmd = Command::new("python3");
        cmd.arg(py_dir().join("imapdovecot.py"))
            .arg("--dir")
            .arg(dir.path())
            .arg("--maildir")
            .arg(maildir)
            .arg("--port")
            .arg(port.to_string())
            .arg("--ssl-port")
            .arg(ssl_port.to_string());
        for u in ["alice@virt.test", "bob@virt.test", "dave@virt.test"] {
            cmd.arg("--user").arg(u);
        }
        if let Some(p) = pki {
            cmd.arg("--cert").arg(&p.cert).arg("--key").arg(&p.key);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
            .spawn()
            .unwrap();
        let mut dc = Dovecot {
            dir,
            child,
            port,
            ssl_port,
        };
        let up = wait_until(Duration::from_secs(10), || answers(local(port)));
        assert!(
            up && dc.child.try_wait().unwrap().is_none(),
            "Dovecot did not start:\n{}\n{}",
            std::fs::read_to_string(dc.dir.path().join("stderr")).unwrap_or_default(),
            dc.log()
        );
        dc
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        if !wait_until(Duration::from_secs(5), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        }) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The corpus of MIME shapes, delivered through smtpd: ENVELOPE,
/// BODYSTRUCTURE, BODY and RFC822.SIZE from our imapd equal a real
/// Dovecot's over the same Maildir (literals read as strings; the
/// differences crates/imapd/tests/dovecot_corpus.rs documents aside).
#[test]
fn imap_corpus_envelope_and_bodystructure_match_dovecot() {
    if testkit::skip_unless_root("the private Dovecot runs as root") {
        return;
    }
    let p = start(&[]);
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [
        Path::new(env!("CARGO_MANIFEST_DIR")).join("imap-corpus"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/imapd/tests/corpus"),
    ] {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "eml") {
                files.push(e.path());
            }
        }
    }
    files.sort();
    assert!(files.len() >= 20, "corpus: {files:?}");
    let mut args: Vec<String> = vec!["--user".into(), "dave@virt.test".into()];
    for f in &files {
        args.push("--file".into());
        args.push(f.display().to_string());
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    p.py("corpus", &a);
    p.s.wait_mail("dave", files.len());
    // Ours first (it indexes the Maildir), then Dovecot beside it.
    let dc = Dovecot::start(&p.maildir("dave"), None);
    let out = run_check(
        &p.s,
        "compare",
        p.port,
        p.ssl_port,
        &[
            "--user",
            "dave@virt.test",
            "--other-port",
            &dc.port.to_string(),
        ],
    );
    assert!(
        out.status.success(),
        "ours and Dovecot's differ:\n{}{}\nDovecot:\n{}\nmaillog:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        dc.log(),
        p.log()
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("\"compared\": {}", files.len())),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A Maildir that a real Dovecot served (folders, flags, keywords,
/// subscriptions, a MOVE and an EXPUNGE, all made through Dovecot's IMAP):
/// our imapd shows the same UIDVALIDITY, UIDs, flags, keywords, folders
/// and subscriptions.
#[test]
fn imap_opens_a_maildir_that_dovecot_served() {
    if testkit::skip_unless_root("the private Dovecot runs as root") {
        return;
    }
    let p = start(&[]);
    p.seed("bob", 2);
    let md = p.maildir("bob");
    let theirs = {
        let dc = Dovecot::start(&md, None);
        let check = |c: &str| {
            let out = run_check(&p.s, c, dc.port, 0, &["--user", "bob@virt.test"]);
            assert!(
                out.status.success(),
                "Dovecot {c}: {}{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                dc.log()
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        check("populate");
        check("state")
    };
    assert!(md.join("dovecot-uidlist").is_file());
    assert!(md.join("dovecot-keywords").is_file());
    let ours = p.py("state", &["--user", "bob@virt.test"]);
    assert_eq!(
        ours.trim(),
        theirs.trim(),
        "ours differs from what Dovecot showed\nmaillog:\n{}",
        p.log()
    );
    for kw in ["$Label1", "Project-X", "$Junk"] {
        assert!(theirs.contains(kw), "{theirs}");
    }
}

/// The suite itself against a real Dovecot: the checks are right.
#[test]
fn imap_suite_is_right_against_dovecot() {
    if testkit::skip_unless_root("the private Dovecot runs as root") {
        return;
    }
    need_smtp();
    let s = SmtpSetup::new().tls().start();
    let out = run_check(&s, "deliver", 0, 0, &[]);
    assert!(out.status.success(), "{out:?}");
    s.wait_mail("alice", 1);
    let md = s.base.join("vmail/alice");
    let dc = Dovecot::start(&md, s.pki.as_ref());
    for (check, mode) in [
        ("caps", "plain"),
        ("caps", "stls"),
        ("caps", "ssl"),
        ("mailboxes", "plain"),
        ("fetch", "plain"),
        ("search", "plain"),
        ("store", "plain"),
        ("condstore", "plain"),
        ("two", "plain"),
    ] {
        let md_s = md.display().to_string();
        let sendmail = testkit::bin_dir().join("sendmail").display().to_string();
        let config = s.inst.config_dir.display().to_string();
        let out = run_check(
            &s,
            check,
            dc.port,
            dc.ssl_port,
            &[
                "--mode",
                mode,
                "--maildir",
                &md_s,
                "--sendmail",
                &sendmail,
                "--config",
                &config,
            ],
        );
        assert!(
            out.status.success(),
            "{check} {mode} against Dovecot: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            dc.log()
        );
    }
}

/// The messages of a Maildir folder: (file name, contents).
fn maildir_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = std::fs::read_dir(dir.join(sub)) {
            for e in rd.flatten() {
                out.push((
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap_or_default(),
                ));
            }
        }
    }
    out
}

fn subject_of(m: &[u8]) -> String {
    String::from_utf8_lossy(m)
        .lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// mbsync (isync) syncs a server mailbox of 1,000 messages with folders to
/// a local Maildir over STARTTLS, then back: a flag set and a message
/// moved locally reach the server, a flag set on the server reaches the
/// local copy, and nothing is lost or duplicated.
#[test]
fn imap_mbsync_syncs_1000_messages_with_folders_and_back() {
    testkit::need_program("mbsync", "isync");
    let n: usize = std::env::var("SYSTEM_TESTS_IMAP_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let p = start(&[]);
    p.py(
        "deliver",
        &[
            "--user",
            "dave@virt.test",
            "--count",
            &n.to_string(),
            "--tag",
            "sync",
        ],
    );
    p.s.wait_mail("dave", n);
    // Folders with mail on the server (made through IMAP).
    p.py("populate", &["--user", "dave@virt.test"]);
    let before = p.py("state", &["--user", "dave@virt.test"]);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    std::fs::create_dir_all(w.join("local")).unwrap();
    // The server's own certificate (leaf and CA): isync trusts a
    // certificate listed in CertificateFile as it is.
    let ca = p.s.pki.as_ref().unwrap().cert.display().to_string();
    let rc = w.join("mbsyncrc");
    std::fs::write(
        &rc,
        format!(
            "IMAPAccount srv\nHost localhost\nPort {}\nUser dave@virt.test\nPass \"{}\"\n\
             SSLType STARTTLS\nCertificateFile {ca}\nAuthMechs LOGIN\n\n\
             IMAPStore remote\nAccount srv\n\n\
             MaildirStore local\nPath {l}/\nInbox {l}/INBOX\nSubFolders Verbatim\n\n\
             Channel ch\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\nExpunge Both\n\
             SyncState *\nSync All\n",
            p.port,
            crate::util::PASSWORD,
            l = w.join("local").display()
        ),
    )
    .unwrap();
    let mbsync = || {
        let out = Command::new("mbsync")
            .arg("-c")
            .arg(&rc)
            .arg("-a")
            .env("HOME", w)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mbsync: {}{}\n{}\nmaillog:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&rc).unwrap_or_default(),
            p.log()
        );
    };
    mbsync();
    let inbox = w.join("local/INBOX");
    let local = maildir_files(&inbox);
    // populate moved one INBOX message to Privat and expunged one.
    assert_eq!(local.len(), n + 5 - 2, "local INBOX after the first sync");
    let projects = maildir_files(&w.join("local/Work/Projects"));
    assert_eq!(projects.len(), 3, "local Work/Projects");
    // Locally: flag one message, move another into Privat.
    let (flag_name, flag_msg) = local
        .iter()
        .find(|(_, m)| subject_of(m) == "sync 17")
        .cloned()
        .unwrap();
    let (move_name, move_msg) = local
        .iter()
        .find(|(_, m)| subject_of(m) == "sync 42")
        .cloned()
        .unwrap();
    let sub = |name: &str| {
        if inbox.join("cur").join(name).exists() {
            "cur"
        } else {
            "new"
        }
    };
    let base = flag_name.split(":2,").next().unwrap().to_string();
    let old_flags = flag_name.split(":2,").nth(1).unwrap_or("").to_string();
    let mut flags: Vec<char> = old_flags.chars().chain(['F']).collect();
    flags.sort();
    flags.dedup();
    std::fs::rename(
        inbox.join(sub(&flag_name)).join(&flag_name),
        inbox
            .join("cur")
            .join(format!("{base}:2,{}", flags.iter().collect::<String>())),
    )
    .unwrap();
    let privat = w.join("local/Privat");
    let moved_name = move_name
        .split(":2,")
        .next()
        .unwrap()
        .split(",U=")
        .next()
        .unwrap()
        .to_string();
    std::fs::rename(
        inbox.join(sub(&move_name)).join(&move_name),
        privat.join("cur").join(format!("{moved_name}:2,S")),
    )
    .unwrap();
    mbsync();
    let after = p.py("state", &["--user", "dave@virt.test"]);
    let has = |state: &str, folder: &str, subject: &str, flag: Option<&str>| -> bool {
        let Some(i) = state.find(&format!("\"{folder}\": {{")) else {
            return false;
        };
        let rest = &state[i..];
        let end = rest.find("\"uidvalidity\"").unwrap_or(rest.len());
        let section = &rest[..end];
        section.split("], [").any(|m| {
            m.contains(&format!("\"Subject: {subject}\""))
                && flag.is_none_or(|f| m.contains(&format!("\"{}\"", f.replace('\\', "\\\\"))))
        })
    };
    assert!(
        has(&after, "INBOX", "sync 17", Some("\\Flagged")),
        "the local flag did not reach the server:\n{after}"
    );
    assert!(
        has(&after, "Privat", "sync 42", Some("\\Seen")) && !has(&after, "INBOX", "sync 42", None),
        "the local move did not reach the server:\n{after}"
    );
    assert!(has(&before, "INBOX", "sync 42", None));
    // Back: nothing lost, nothing doubled, the flag and the move survive
    // a fresh sync into an empty local store.
    let total = |state: &str| state.matches("\"Subject: ").count();
    assert_eq!(total(&after), total(&before), "messages lost or doubled");
    let again = tempfile::tempdir().unwrap();
    std::fs::write(
        &rc,
        std::fs::read_to_string(&rc).unwrap().replace(
            &w.join("local").display().to_string(),
            &again.path().display().to_string(),
        ),
    )
    .unwrap();
    mbsync();
    let fresh = maildir_files(&again.path().join("INBOX"));
    assert_eq!(fresh.len(), n + 5 - 3, "a fresh sync of the INBOX");
    let flagged = fresh
        .iter()
        .find(|(_, m)| subject_of(m) == "sync 17")
        .unwrap();
    assert!(
        flagged.0.split(":2,").nth(1).unwrap_or("").contains('F'),
        "{}",
        flagged.0
    );
    // (mbsync adds an X-TUID header to what it uploads.)
    let privat_again = maildir_files(&again.path().join("Privat"));
    let moved = privat_again
        .iter()
        .find(|(_, m)| subject_of(m) == "sync 42")
        .expect("the moved message in a fresh sync of Privat");
    assert!(
        String::from_utf8_lossy(&moved.1).ends_with(&*String::from_utf8_lossy(
            &move_msg[move_msg.windows(2).position(|w| w == b"\n\n").unwrap()..]
        )),
        "the moved message's text changed"
    );
    let body = |m: &[u8]| m[m.windows(2).position(|w| w == b"\n\n").unwrap_or(0)..].to_vec();
    assert_eq!(
        body(&flagged.1),
        body(&flag_msg),
        "the flagged message's text changed"
    );
}

/// mutt (Debian's) under tmux opens the INBOX over IMAP, lists it and
/// shows a message's text.
#[test]
fn imap_mutt_opens_the_inbox_and_reads_a_message() {
    testkit::need_program("mutt", "mutt");
    testkit::need_program("tmux", "tmux");
    let p = start(&[]);
    p.py("deliver", &["--count", "3", "--tag", "mutt"]);
    p.s.wait_mail("alice", 3);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let rc = w.join("muttrc");
    std::fs::write(
        &rc,
        format!(
            "set folder=\"imap://alice%40virt.test@localhost:{}/\"\nset spoolfile=\"+INBOX\"\n\
             set imap_pass=\"{}\"\nset ssl_starttls=yes\nset ssl_force_tls=no\n\
             set certificate_file=\"{}\"\nset imap_check_subscribed=no\nset mail_check=1\n\
             set sort=date\nset pager_stop=yes\nset header_cache=\"\"\nset message_cachedir=\"\"\n\
             set record=\"\"\nset postponed=\"\"\nset move=no\nset mbox_type=Maildir\n",
            p.port,
            crate::util::PASSWORD,
            p.s.pki.as_ref().unwrap().ca.display()
        ),
    )
    .unwrap();
    let sock = format!("imaptest-{}", std::process::id());
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .arg("-L")
            .arg(&sock)
            .args(args)
            .env("HOME", w)
            .output()
            .unwrap()
    };
    // The pane stays a while after mutt ends, so that an error shows.
    let cmd = format!("mutt -n -F {}; sleep 20", rc.display());
    let out = tmux(&[
        "new-session",
        "-d",
        "-x",
        "150",
        "-y",
        "40",
        "-s",
        "mutt",
        &cmd,
    ]);
    assert!(out.status.success(), "tmux: {out:?}");
    let screen = || {
        String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", "mutt"]).stdout).into_owned()
    };
    let listed = wait_until(Duration::from_secs(30), || screen().contains("mutt 2"));
    let index = screen();
    let _ = tmux(&["send-keys", "-t", "mutt", "Enter"]);
    let shown = wait_until(Duration::from_secs(20), || {
        let s = screen();
        s.contains("Subject: mutt ") && s.contains(" of 3\n")
    });
    let pager = screen();
    let _ = tmux(&["send-keys", "-t", "mutt", "q", "q"]);
    let _ = tmux(&["kill-server"]);
    assert!(
        listed && shown,
        "mutt did not show the message.\nindex:\n{index}\npager:\n{pager}\nmaillog:\n{}",
        p.log()
    );
    assert!(
        index.contains("mutt 0") && index.contains("mutt 1"),
        "{index}"
    );
}
