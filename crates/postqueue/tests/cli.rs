//! postqueue's real binary against a temporary queue: the listing comes
//! from a real showq under a real master; flush requests go to a small
//! stand-in for public/qmgr (qmgr is written by another helper).

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use queue::{Queue, QueueId};

struct Setup {
    _dir: tempfile::TempDir,
    etc: PathBuf,
    qdir: PathBuf,
    master: Option<Child>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(m) = self.master.as_mut() {
            let pid = nix::unistd::Pid::from_raw(m.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM);
            let _ = m.wait();
        }
    }
}

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_postqueue"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let (etc, qdir) = (base.join("etc"), base.join("spool"));
    std::fs::create_dir_all(&etc).unwrap();
    queue::layout::create_or_repair(&qdir, None, None).unwrap();
    std::fs::write(
        etc.join("main.cf"),
        format!(
            "queue_directory = {}\ndaemon_directory = {}\nmaillog_file = {}\n",
            qdir.display(),
            bin_dir().display(),
            base.join("maillog").display()
        ),
    )
    .unwrap();
    std::fs::write(etc.join("master.cf"), "showq unix n n n - - showq\n").unwrap();
    Setup {
        _dir: dir,
        etc,
        qdir,
        master: None,
    }
}

impl Setup {
    /// Starts master with showq (true); fails when master or showq is not
    /// built.
    fn start(&mut self, test: &str) -> bool {
        let bin = bin_dir();
        for b in ["master", "showq"] {
            assert!(
                bin.join(b).is_file(),
                "{test}: {b} is not built: run scripts/test or cargo build --workspace --bins"
            );
        }
        testkit::need_mail_owner();
        self.master = Some(
            Command::new(bin.join("master"))
                .arg("-c")
                .arg(&self.etc)
                .env("MAIL_CONFIG", &self.etc)
                .spawn()
                .unwrap(),
        );
        let sock = self.qdir.join("public/showq");
        let end = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(Instant::now() < end, "no public/showq");
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    fn postqueue(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_postqueue"))
            .arg("-c")
            .arg(&self.etc)
            .args(args)
            .env("TZ", "UTC")
            .output()
            .unwrap()
    }

    fn enter(&self, sender: &str, rcpts: &[&str], body: &str, arrival: u64) -> QueueId {
        let mut w = queue::enter(&self.qdir).unwrap();
        w.write_all(body.as_bytes()).unwrap();
        let t = std::time::UNIX_EPOCH + Duration::from_secs(arrival);
        let mut env = queue::Envelope::new(sender, t);
        for r in rcpts {
            env.add_recipient(r);
        }
        *w.finish(&env).unwrap().id()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

// Mon Nov 23 12:11:53 2026 UTC.
const ARRIVAL: u64 = 1_795_435_913;

#[test]
fn mailq_listing_is_postfix_exactly() {
    let mut s = setup();
    if !s.start("mailq_listing_is_postfix_exactly") {
        return;
    }
    let empty = s.postqueue(&["-p"]);
    assert!(empty.status.success(), "{empty:?}");
    assert_eq!(stdout(&empty), "Mail queue is empty\n");

    let a = s.enter(
        "alice@example.org",
        &["bob@example.net"],
        &"x".repeat(1500),
        ARRIVAL,
    );
    queue::rename(&s.qdir, &a, Queue::Incoming, Queue::Active).unwrap();
    let d = s.enter(
        "",
        &["carol@example.net", "dave@example.net"],
        "hi\n",
        ARRIVAL + 1,
    );
    queue::rename(&s.qdir, &d, Queue::Incoming, Queue::Deferred).unwrap();
    for r in ["carol@example.net", "dave@example.net"] {
        let rec = queue::status_log::Record {
            recipient: r.into(),
            reason: "delivery temporarily suspended: connect to example.net[192.0.2.1]:25: Connection refused".into(),
            ..Default::default()
        };
        queue::status_log::append(&s.qdir, Queue::Defer, &d, &rec).unwrap();
    }
    let h = s.enter(
        "erin@example.org",
        &["f@example.net"],
        "held\n",
        ARRIVAL + 2,
    );
    queue::rename(&s.qdir, &h, Queue::Incoming, Queue::Hold).unwrap();

    let out = s.postqueue(&["-p"]);
    assert!(out.status.success(), "{out:?}");
    let reason = "(delivery temporarily suspended: connect to example.net[192.0.2.1]:25: Connection refused)";
    let expect = format!(
        "----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------\n\
         {:<17} {:>8} Mon Nov 23 12:11:53 alice@example.org\n\
         {:47}bob@example.net\n\
         \n\
         {:<17} {:>8} Mon Nov 23 12:11:54 MAILER-DAEMON\n\
         {reason}\n\
         {:47}carol@example.net\n\
         {:47}dave@example.net\n\
         \n\
         {:<17} {:>8} Mon Nov 23 12:11:55 erin@example.org\n\
         {:47}f@example.net\n\
         \n\
         -- 1 Kbytes in 3 Requests.\n",
        format!("{a}*"),
        1500,
        "",
        d.to_string(),
        3,
        "",
        "",
        format!("{h}!"),
        5,
        ""
    );
    assert_eq!(stdout(&out), expect);

    let out = s.postqueue(&["-j"]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[0],
        format!(
            "{{\"queue_name\": \"active\", \"queue_id\": \"{a}\", \"arrival_time\": {ARRIVAL}, \
             \"message_size\": 1500, \"forced_expire\": false, \"sender\": \"alice@example.org\", \
             \"recipients\": [{{\"address\": \"bob@example.net\"}}]}}"
        )
    );
    assert!(lines[1].contains("\"delay_reason\": \"delivery temporarily suspended: connect to example.net[192.0.2.1]:25: Connection refused\""));
    assert!(lines[2].starts_with("{\"queue_name\": \"hold\""));
}

#[test]
fn without_showq_the_mail_system_is_down() {
    let s = setup();
    let out = s.postqueue(&["-p"]);
    let err = String::from_utf8_lossy(&out.stderr);
    if nix::unistd::geteuid().is_root() {
        // Root reads the queue itself (tests/compat.rs shows the listing).
        assert!(
            err.contains("Mail system is down -- accessing queue directly"),
            "{err}"
        );
    } else {
        assert_eq!(out.status.code(), Some(69));
        assert!(err.contains("postqueue: fatal: Queue report unavailable - mail system is down"));
    }
    let out = s.postqueue(&["-f"]);
    assert_eq!(out.status.code(), Some(69));
    let out = s.postqueue(&["-x"]);
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn flush_triggers_qmgr() {
    let s = setup();
    let qmgr = UnixListener::bind(s.qdir.join("public/qmgr")).unwrap();
    qmgr.set_nonblocking(false).unwrap();
    let read_trigger = || {
        let (mut c, _) = qmgr.accept().unwrap();
        let mut b = Vec::new();
        c.read_to_end(&mut b).unwrap();
        b
    };
    let out = s.postqueue(&["-f"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(read_trigger(), b"F");
    // -i goes through the flush service (see flush_site_asks_the_flush_service).
    let out = s.postqueue(&["-i", "../../etc/passwd"]);
    assert_eq!(out.status.code(), Some(64));
}

/// `postqueue -s site` asks the flush service (as ETRN does): a site
/// outside fast_flush_domains is refused with Postfix's message; a listed
/// site's deferred mail is made due and qmgr is woken.
#[test]
fn flush_site_asks_the_flush_service() {
    let mut s = setup();
    testkit::need_bins(&["flush"]);
    std::fs::write(
        s.etc.join("master.cf"),
        "showq unix n n n - - showq\nflush unix n n n - 0 flush\n",
    )
    .unwrap();
    let mut main = std::fs::read_to_string(s.etc.join("main.cf")).unwrap();
    main.push_str("fast_flush_domains = example.org\n");
    std::fs::write(s.etc.join("main.cf"), main).unwrap();
    let qmgr = UnixListener::bind(s.qdir.join("public/qmgr")).unwrap();
    s.start("flush_site_asks_the_flush_service");
    let sock = s.qdir.join("public/flush");
    let end = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < end, "no public/flush");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = s.postqueue(&["-s", "example.net"]);
    assert_eq!(out.status.code(), Some(69), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "postqueue: fatal: Flush service is not configured for destination \"example.net\""
        ),
        "{out:?}"
    );
    // A deferred message for the site, due only in an hour.
    let d = s.enter("a@x", &["b@example.org"], "x\n", ARRIVAL);
    queue::rename(&s.qdir, &d, Queue::Incoming, Queue::Deferred).unwrap();
    let path = queue::queue_path(&s.qdir, Queue::Deferred, &d);
    let later = std::time::SystemTime::now() + Duration::from_secs(3600);
    std::fs::File::open(&path)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let out = s.postqueue(&["-s", "example.org"]);
    assert!(out.status.success(), "{out:?}");
    let (mut c, _) = qmgr.accept().unwrap();
    let mut b = Vec::new();
    c.read_to_end(&mut b).unwrap();
    assert_eq!(b, b"D");
    let due = std::fs::metadata(&path).unwrap().modified().unwrap();
    assert!(due <= std::time::SystemTime::now(), "still due later");

    // postqueue -i: the flush service makes the one message due and wakes
    // qmgr; postqueue moves no file itself.
    std::fs::File::open(&path)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let out = s.postqueue(&["-i", d.as_str()]);
    assert!(out.status.success(), "{out:?}");
    let (mut c, _) = qmgr.accept().unwrap();
    let mut b = Vec::new();
    c.read_to_end(&mut b).unwrap();
    assert_eq!(b, b"D");
    let due = std::fs::metadata(&path).unwrap().modified().unwrap();
    assert!(due <= std::time::SystemTime::now(), "-i: still due later");
    assert_eq!(queue::list(&s.qdir, Queue::Deferred).unwrap(), vec![d]);
}

#[test]
fn authorized_mailq_and_flush_users_refuse_others_but_not_the_owners() {
    let s = setup();
    let cf = s.etc.join("main.cf");
    let mut text = std::fs::read_to_string(&cf).unwrap();
    let me = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name;
    text.push_str(&format!(
        "authorized_mailq_users = !{me}\nauthorized_flush_users = !{me}\n"
    ));
    std::fs::write(&cf, text).unwrap();
    for (flag, action) in [
        ("-p", "view the mail queue"),
        ("-f", "flush the mail queue"),
    ] {
        let out = Command::new(bin_dir().join("postqueue"))
            .arg("-c")
            .arg(&s.etc)
            .arg(flag)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let refusal = format!("User {me} is not allowed to {action}");
        if nix::unistd::geteuid().is_root() {
            // root owns the queue: never refused (no master runs here, so
            // the request itself fails for another reason).
            assert!(!err.contains(&refusal), "{err}");
        } else {
            assert_eq!(out.status.code(), Some(77), "{err}");
            assert!(err.contains(&refusal), "{err}");
        }
    }
}

/// std::env::args panics (exit 101) on an argument that is not UTF-8.
#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error() {
    testkit::assert_non_utf8_argument_is_usage_error(env!("CARGO_BIN_EXE_postqueue"), "postqueue");
}
