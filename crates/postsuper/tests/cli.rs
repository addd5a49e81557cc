//! postsuper's real binary against a temporary queue.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use queue::{Queue, QueueId};

struct Setup {
    _dir: tempfile::TempDir,
    etc: PathBuf,
    qdir: PathBuf,
    maillog: PathBuf,
    /// mail_owner's (uid, gid) when the test runs as root.
    owner: Option<(u32, u32)>,
}

fn setup() -> Option<Setup> {
    let uid = nix::unistd::getuid();
    let is_owner = nix::unistd::User::from_name("postfix")
        .ok()
        .flatten()
        .is_some_and(|u| u.uid == uid);
    if !uid.is_root() && !is_owner {
        testkit::skip("postsuper needs root or mail_owner");
        return None;
    }
    // As root, postsuper drops to mail_owner after its repairs: the queue
    // is mail_owner's, as in an instance.
    let owner = testkit::mail_owner();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (etc, qdir, maillog) = (base.join("etc"), base.join("spool"), base.join("maillog"));
    std::fs::create_dir_all(&etc).unwrap();
    queue::layout::create_or_repair(&qdir, owner, None).unwrap();
    std::fs::write(
        etc.join("main.cf"),
        format!(
            "queue_directory = {}\nmaillog_file = {}\n",
            qdir.display(),
            maillog.display()
        ),
    )
    .unwrap();
    Some(Setup {
        _dir: dir,
        etc,
        qdir,
        maillog,
        owner,
    })
}

impl Setup {
    fn postsuper(&self, args: &[&str], stdin: &str) -> Output {
        // What the test wrote as root becomes mail_owner's, as queue
        // files and status logs are in an instance.
        if let Some((uid, gid)) = self.owner {
            chown_tree(&self.qdir, uid, gid);
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_postsuper"))
            .arg("-c")
            .arg(&self.etc)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn enter(&self, to: Queue) -> QueueId {
        let mut w = queue::enter(&self.qdir).unwrap();
        w.write_all(b"Subject: x\n\nbody\n").unwrap();
        let mut env = queue::Envelope::new("a@x", std::time::SystemTime::now());
        env.add_recipient("b@y");
        let id = *w.finish(&env).unwrap().id();
        if to != Queue::Incoming {
            queue::rename(&self.qdir, &id, Queue::Incoming, to).unwrap();
        }
        id
    }
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() && !path.is_symlink() {
        for e in std::fs::read_dir(path).unwrap().flatten() {
            chown_tree(&e.path(), uid, gid);
        }
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn delete_one_all_and_from_stdin() {
    let Some(s) = setup() else { return };
    let a = s.enter(Queue::Deferred);
    let b = s.enter(Queue::Active);
    let c = s.enter(Queue::Hold);
    let d = s.enter(Queue::Incoming);
    let rec = queue::status_log::Record::default();
    queue::status_log::append(&s.qdir, Queue::Defer, &a, &rec).unwrap();

    let out = s.postsuper(&["-d", a.as_str()], "");
    assert!(out.status.success(), "{out:?}");
    let err = stderr(&out);
    assert!(err.contains(&format!("postsuper: {a}: removed")), "{err}");
    assert!(err.contains("postsuper: Deleted: 1 message\n"), "{err}");
    assert!(!queue::queue_path(&s.qdir, Queue::Deferred, &a).exists());
    assert!(!queue::queue_path(&s.qdir, Queue::Defer, &a).exists());
    let log = std::fs::read_to_string(&s.maillog).unwrap();
    assert!(log.contains("postfix/postsuper["), "{log}");
    assert!(log.contains(&format!(": {a}: removed")), "{log}");

    // ALL limited to a named queue.
    let out = s.postsuper(&["-d", "ALL", "hold"], "");
    assert!(
        stderr(&out).contains("Deleted: 1 message\n"),
        "{}",
        stderr(&out)
    );
    assert!(!queue::queue_path(&s.qdir, Queue::Hold, &c).exists());
    assert!(queue::queue_path(&s.qdir, Queue::Active, &b).exists());

    // Ids from stdin; a bad id is a warning, a missing one is skipped.
    let input = format!("{b}\n../etc\n{a}\n{d}\n");
    let out = s.postsuper(&["-d", "-"], &input);
    assert!(out.status.success(), "{out:?}");
    let err = stderr(&out);
    assert!(err.contains("Deleted: 2 messages\n"), "{err}");
    assert!(err.contains("warning:"), "{err}");
    for q in [Queue::Active, Queue::Incoming] {
        assert!(queue::list(&s.qdir, q).unwrap().is_empty());
    }
}

#[test]
fn hold_release_requeue() {
    let Some(s) = setup() else { return };
    let a = s.enter(Queue::Deferred);
    let b = s.enter(Queue::Incoming);
    let out = s.postsuper(&["-h", "ALL"], "");
    assert!(
        stderr(&out).contains("postsuper: Placed on hold: 2 messages\n"),
        "{}",
        stderr(&out)
    );
    assert_eq!(queue::list(&s.qdir, Queue::Hold).unwrap().len(), 2);
    // The release makes a's hashed deferred/ subdirectory again: as root,
    // it must be mail_owner's (qmgr could not read a root-owned one).
    let deferred = queue::queue_path(&s.qdir, Queue::Deferred, &a);
    let subdir = deferred.parent().unwrap().to_path_buf();
    if subdir != s.qdir.join("deferred") {
        std::fs::remove_dir(&subdir).unwrap();
    }
    let out = s.postsuper(&["-H", a.as_str()], "");
    assert!(stderr(&out).contains(&format!("postsuper: {a}: released from hold")));
    assert!(stderr(&out).contains("Released from hold: 1 message\n"));
    assert!(deferred.exists());
    if let Some((uid, _)) = s.owner {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&subdir).unwrap().uid(), uid);
        assert_eq!(std::fs::metadata(&deferred).unwrap().uid(), uid);
    }
    let out = s.postsuper(&["-r", "ALL"], "");
    assert!(
        stderr(&out).contains("Requeued: 2 messages\n"),
        "{}",
        stderr(&out)
    );
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(queue::list(&s.qdir, Queue::Incoming).unwrap(), want);
}

#[test]
fn structure_check_and_usage() {
    let Some(s) = setup() else { return };
    std::fs::remove_dir(s.qdir.join("hold")).unwrap();
    let out = s.postsuper(&["-s"], "");
    assert!(out.status.success(), "{out:?}");
    assert!(s.qdir.join("hold").is_dir());
    let out = s.postsuper(&["-Z"], "");
    assert_eq!(out.status.code(), Some(64));
    let out = s.postsuper(&["-d", "x", "nosuchqueue"], "");
    assert_eq!(out.status.code(), Some(64));
}

/// std::env::args panics (exit 101) on an argument that is not UTF-8.
#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error() {
    testkit::assert_non_utf8_argument_is_usage_error(env!("CARGO_BIN_EXE_postsuper"), "postsuper");
}
