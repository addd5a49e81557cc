//! bounce under a real master: status logs, non-delivery notifications,
//! double bounces, delay warnings. A small in-test server on
//! public/cleanup stands in for cleanup (written by another helper) and
//! captures each notification.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use proto::bounce::{Entry, Log, Reply, Request};
use proto::cleanup;
use queue::{Queue, QueueId};

/// What the stand-in cleanup received.
#[derive(Debug)]
struct Captured {
    flags: u32,
    sender: String,
    recipients: Vec<String>,
    content: String,
}

struct Instance {
    _dir: tempfile::TempDir,
    qdir: PathBuf,
    maillog: PathBuf,
    master: Child,
    captured: mpsc::Receiver<Captured>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.master.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM);
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.master.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.master.kill();
        let _ = self.master.wait();
    }
}

/// The directory with every built binary, if master was built too.
fn bin_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_BIN_EXE_bounce"))
        .parent()?
        .to_path_buf();
    dir.join("master").is_file().then_some(dir)
}

fn start(test: &str) -> Instance {
    start_with(test, None, "")
}

fn start_as(test: &str, owner: Option<(u32, u32)>) -> Instance {
    start_with(test, owner, "")
}

/// Starts master; with `owner` (mail_owner's uid and gid, when root) the
/// queue belongs to mail_owner and bounce runs as Postfix's standard line
/// says (unpriv=y). `main_extra` ends main.cf.
fn start_with(test: &str, owner: Option<(u32, u32)>, main_extra: &str) -> Instance {
    testkit::need_instance(&["master"]);
    let Some(bin) = bin_dir() else {
        panic!("{test}: master is not built: run scripts/test or cargo build --workspace --bins");
    };
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let etc = base.join("etc");
    let qdir = base.join("spool");
    let maillog = base.join("maillog");
    std::fs::create_dir_all(&etc).unwrap();
    queue::layout::create_or_repair(&qdir, owner, owner.map(|o| o.1)).unwrap();
    if owner.is_some() {
        // mail_owner must reach queue_directory through the test's tree.
        use std::os::unix::fs::PermissionsExt;
        let open = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(&base, open).unwrap();
    }
    std::fs::write(
        etc.join("main.cf"),
        format!(
            "queue_directory = {}\ndaemon_directory = {}\nmaillog_file = {}\n\
             myhostname = mx.example.org\nmyorigin = example.org\n\
             delay_warning_time = 4h\nbounce_size_limit = 200\n{main_extra}",
            qdir.display(),
            bin.display(),
            maillog.display()
        ),
    )
    .unwrap();
    // unpriv=n unless mail_owner owns the queue: otherwise the test's
    // queue belongs to whoever runs it.
    let unpriv = if owner.is_some() { "-" } else { "n" };
    std::fs::write(
        etc.join("master.cf"),
        format!("bounce unix - {unpriv} n - 0 bounce\ndefer unix - {unpriv} n - 0 bounce\n"),
    )
    .unwrap();
    let captured = stand_in_cleanup(&qdir);
    let master = Command::new(bin.join("master"))
        .arg("-c")
        .arg(&etc)
        .env("MAIL_CONFIG", &etc)
        .spawn()
        .unwrap();
    let sock = qdir.join("private/bounce");
    let end = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < end, "master did not create private/bounce");
        std::thread::sleep(Duration::from_millis(20));
    }
    Instance {
        _dir: dir,
        qdir,
        maillog,
        master,
        captured,
    }
}

/// Serves public/cleanup: answers Started and Queued with NEWQIDn.
fn stand_in_cleanup(qdir: &Path) -> mpsc::Receiver<Captured> {
    let path = qdir.join("public/cleanup");
    let listener = UnixListener::bind(&path).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(mut s) = conn else { return };
            let qid = format!("NEWQID{n}");
            let mut c = Captured {
                flags: 0,
                sender: String::new(),
                recipients: vec![],
                content: String::new(),
            };
            while let Ok(req) = proto::recv::<_, cleanup::Request>(&mut s) {
                match req {
                    cleanup::Request::Begin(b) => {
                        c.flags = b.flags;
                        c.sender = b.sender;
                        let _ = proto::send(
                            &mut s,
                            &cleanup::Reply::Started {
                                queue_id: qid.clone(),
                            },
                        );
                    }
                    cleanup::Request::Recipient(r) => c.recipients.push(r.address),
                    cleanup::Request::Content(b) => {
                        c.content.push_str(&String::from_utf8_lossy(&b))
                    }
                    cleanup::Request::End => {
                        let _ = proto::send(
                            &mut s,
                            &cleanup::Reply::Queued {
                                queue_id: qid.clone(),
                            },
                        );
                        let _ = tx.send(c);
                        break;
                    }
                    cleanup::Request::Abort => break,
                    cleanup::Request::Attribute(..) => {}
                }
            }
        }
    });
    rx
}

impl Instance {
    /// Asks `service` (bounce or defer) to send the notice for `id`.
    fn flush(&self, service: &str, id: &QueueId, sender: &str) -> Reply {
        let request = Request::Flush {
            queue_name: "active".into(),
            queue_id: id.to_string(),
            sender: sender.into(),
        };
        self.call(&format!("private/{service}"), &request)
    }

    /// Asks `service` for the delay warning of `id`.
    fn warn(&self, service: &str, id: &QueueId, sender: &str) -> Reply {
        let request = Request::Warn {
            queue_name: "active".into(),
            queue_id: id.to_string(),
            sender: sender.into(),
        };
        self.call(&format!("private/{service}"), &request)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.maillog).unwrap_or_default()
    }

    fn call(&self, service: &str, r: &Request) -> Reply {
        proto::call(&self.qdir, service, r).unwrap()
    }

    fn enter(&self, sender: &str, rcpt: &str, body: &str) -> QueueId {
        let mut w = queue::enter(&self.qdir).unwrap();
        w.write_all(body.as_bytes()).unwrap();
        let mut env = queue::Envelope::new(sender, std::time::SystemTime::now());
        env.add_recipient(rcpt).original = rcpt.split('@').next().unwrap().to_string();
        let id = *w.finish(&env).unwrap().id();
        queue::rename(&self.qdir, &id, Queue::Incoming, Queue::Active).unwrap();
        id
    }

    fn append(&self, log: Log, id: &QueueId, rcpt: &str, dsn: &str, text: &str) {
        let r = self.call(
            if log == Log::Defer {
                "private/defer"
            } else {
                "private/bounce"
            },
            &Request::Append {
                log,
                queue_id: id.to_string(),
                entry: Entry {
                    recipient: rcpt.into(),
                    original: rcpt.split('@').next().unwrap().into(),
                    dsn_orcpt: None,
                    dsn: dsn.into(),
                    action: if log == Log::Defer {
                        "deferred"
                    } else {
                        "failed"
                    }
                    .into(),
                    relay: "local".into(),
                    text: text.into(),
                },
            },
        );
        assert_eq!(r, Reply::Ok { notification: None });
    }

    fn wait_log(&self, needle: &str) -> String {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(Instant::now() < end, "no {needle:?} in log:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Asserts the service sent a notification (`context` shown if not).
fn assert_notified(r: &Reply, context: &str) {
    assert!(
        matches!(
            r,
            Reply::Ok {
                notification: Some(_)
            }
        ),
        "{r:?}\n{context}"
    );
}

/// Parses a message with Python's email package; returns its summary
/// lines.
fn python_summary(message: &str) -> String {
    let script = r#"
import email, sys
m = email.message_from_string(sys.stdin.read())
print("type", m.get_content_type(), m.get_param("report-type"))
for part in m.walk():
    print("part", part.get_content_type())
    if part.get_content_type() == "message/delivery-status":
        for block in part.get_payload():
            for k in ("Reporting-MTA", "Final-Recipient", "Action", "Status"):
                if block.get(k):
                    print(k, block.get(k))
"#;
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 (scripts/install-deps installs it): {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(message.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python3 could not parse the report");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn bounce_sends_an_rfc3464_notification_then_drops_the_log() {
    let inst = start("bounce_sends_an_rfc3464_notification_then_drops_the_log");
    let id = inst.enter(
        "alice@example.org",
        "nosuch@mx.example.org",
        "Subject: hello\nFrom: alice@example.org\n\nthe body\n",
    );
    inst.append(
        Log::Bounce,
        &id,
        "nosuch@mx.example.org",
        "5.1.1",
        "unknown user: \"nosuch\"",
    );
    let log_path = queue::queue_path(&inst.qdir, Queue::Bounce, &id);
    assert!(log_path.exists());
    let r = inst.flush("bounce", &id, "alice@example.org");
    assert_eq!(
        r,
        Reply::Ok {
            notification: Some("NEWQID0".into())
        }
    );
    let c = inst.captured.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(c.sender, "");
    assert_eq!(c.recipients, vec!["alice@example.org".to_string()]);
    assert_eq!(
        c.flags,
        cleanup::flags::NOTIFICATION | cleanup::flags::NO_CHECKS
    );
    assert!(
        c.content
            .starts_with("From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\n")
    );
    assert!(
        c.content
            .contains("This is the mail system at host mx.example.org.")
    );
    assert!(c.content.contains(&format!("X-Postfix-Queue-ID: {id}\n")));
    assert!(c.content.contains("Content-Type: message/rfc822\n"));
    assert!(c.content.contains("the body\n"));
    let log = inst.wait_log("sender non-delivery notification: NEWQID0");
    let line = log
        .lines()
        .find(|l| l.contains("sender non-delivery notification"))
        .unwrap();
    assert!(
        line.contains(" postfix/bounce[")
            && line.ends_with(&format!(
                "]: {id}: sender non-delivery notification: NEWQID0"
            )),
        "{line}"
    );
    assert!(!log_path.exists(), "bounce log not removed");
    // Python's email package reads it as the MIME report it claims to be
    // (python3 is installed by scripts/install-deps).
    let s = python_summary(&c.content);
    assert!(s.contains("type multipart/report delivery-status"), "{s}");
    assert!(s.contains("part message/delivery-status"), "{s}");
    assert!(s.contains("part message/rfc822"), "{s}");
    assert!(
        s.contains("Final-Recipient rfc822; nosuch@mx.example.org"),
        "{s}"
    );
    assert!(s.contains("Action failed"), "{s}");
    assert!(s.contains("Status 5.1.1"), "{s}");
}

#[test]
fn double_bounce_goes_to_postmaster_once_and_never_loops() {
    let inst = start_with(
        "double_bounce_goes_to_postmaster_once_and_never_loops",
        None,
        "notify_classes = 2bounce\n",
    );
    // A bounce that bounced: sender <>. The message is over
    // bounce_size_limit (200), so only its headers come back.
    let big = format!("Subject: bounce\n\n{}\n", "x".repeat(500));
    let id = inst.enter("", "gone@example.net", &big);
    inst.append(
        Log::Bounce,
        &id,
        "gone@example.net",
        "5.1.1",
        "no such user",
    );
    let r = inst.flush("bounce", &id, "");
    assert_notified(&r, "");
    let c = inst.captured.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(c.recipients, vec!["postmaster".to_string()]);
    assert_eq!(c.sender, "double-bounce@example.org");
    assert!(
        c.content
            .contains("Subject: Postmaster Copy: Undelivered Mail\n")
    );
    assert!(c.content.contains("Content-Type: text/rfc822-headers\n"));
    assert!(!c.content.contains("xxxxxxxxxx"));
    inst.wait_log(&format!("{id}: postmaster non-delivery notification: "));

    // The double bounce bounced too: logged and dropped.
    let id2 = inst.enter("double-bounce@example.org", "postmaster@example.org", "x\n");
    inst.append(
        Log::Bounce,
        &id2,
        "postmaster@example.org",
        "5.0.0",
        "mailbox full",
    );
    let r = inst.flush("bounce", &id2, "double-bounce@example.org");
    assert_eq!(r, Reply::Ok { notification: None });
    inst.wait_log(&format!(
        "warning: {id2}: undeliverable postmaster notification discarded"
    ));
    assert!(
        inst.captured
            .recv_timeout(Duration::from_millis(300))
            .is_err()
    );
    assert!(!queue::queue_path(&inst.qdir, Queue::Bounce, &id2).exists());
}

#[test]
fn double_bounce_is_discarded_without_notify_class_2bounce() {
    // The default notify_classes (resource, software), as in Postfix.
    let inst = start("double_bounce_is_discarded_without_notify_class_2bounce");
    let id = inst.enter("", "gone@example.net", "Subject: b\n\nx\n");
    inst.append(
        Log::Bounce,
        &id,
        "gone@example.net",
        "5.1.1",
        "no such user",
    );
    let r = inst.flush("bounce", &id, "");
    assert_eq!(r, Reply::Ok { notification: None });
    inst.wait_log(&format!(
        "{id}: undeliverable bounce discarded (notify_classes has no 2bounce)"
    ));
    assert!(
        inst.captured
            .recv_timeout(Duration::from_millis(300))
            .is_err()
    );
    assert!(!queue::queue_path(&inst.qdir, Queue::Bounce, &id).exists());
}

#[test]
fn notify_class_bounce_sends_the_postmaster_the_headers() {
    let inst = start_with(
        "notify_class_bounce_sends_the_postmaster_the_headers",
        None,
        "notify_classes = bounce\nbounce_notice_recipient = pm-bounces\n",
    );
    let id = inst.enter(
        "alice@example.org",
        "nosuch@mx.example.org",
        "Subject: hello\n\nsecret body\n",
    );
    inst.append(
        Log::Bounce,
        &id,
        "nosuch@mx.example.org",
        "5.1.1",
        "unknown user",
    );
    let r = inst.flush("bounce", &id, "alice@example.org");
    assert_eq!(
        r,
        Reply::Ok {
            notification: Some("NEWQID0".into())
        }
    );
    let to_sender = inst.captured.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(to_sender.recipients, vec!["alice@example.org".to_string()]);
    assert!(to_sender.content.contains("secret body"));
    let to_pm = inst.captured.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(to_pm.recipients, vec!["pm-bounces".to_string()]);
    assert_eq!(to_pm.sender, "double-bounce@example.org");
    assert!(
        to_pm
            .content
            .contains("Subject: Postmaster Copy: Undelivered Mail\n")
    );
    assert!(
        to_pm
            .content
            .contains("Content-Type: text/rfc822-headers\n")
    );
    assert!(to_pm.content.contains("Subject: hello\n"));
    assert!(!to_pm.content.contains("secret body"));
    assert!(
        to_pm
            .content
            .contains("Final-Recipient: rfc822; nosuch@mx.example.org\n")
    );
    inst.wait_log(&format!(
        "{id}: postmaster non-delivery notification: NEWQID1"
    ));
    // Exactly one notice to the postmaster.
    assert!(
        inst.captured
            .recv_timeout(Duration::from_millis(300))
            .is_err()
    );
}

#[test]
fn notify_class_delay_copies_delay_warnings_to_the_postmaster() {
    let inst = start_with(
        "notify_class_delay_copies_delay_warnings_to_the_postmaster",
        None,
        "notify_classes = delay\ndelay_notice_recipient = pm-delays\n",
    );
    let id = inst.enter("alice@example.org", "slow@example.net", "Subject: s\n\nb\n");
    inst.append(
        Log::Defer,
        &id,
        "slow@example.net",
        "4.4.1",
        "connect refused",
    );
    let r = inst.warn("defer", &id, "alice@example.org");
    assert_notified(&r, "");
    let to_sender = inst.captured.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(to_sender.recipients, vec!["alice@example.org".to_string()]);
    let to_pm = inst.captured.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(to_pm.recipients, vec!["pm-delays".to_string()]);
    assert_eq!(to_pm.sender, "double-bounce@example.org");
    assert!(
        to_pm
            .content
            .contains("Subject: Postmaster Warning: Delayed Mail\n")
    );
    inst.wait_log(&format!("{id}: postmaster delay notification: "));
    // A delayed bounce: the postmaster only.
    let id2 = inst.enter("", "slow@example.net", "Subject: b\n\nb\n");
    inst.append(
        Log::Defer,
        &id2,
        "slow@example.net",
        "4.4.1",
        "connect refused",
    );
    let r = inst.warn("defer", &id2, "");
    assert_notified(&r, "");
    let c = inst.captured.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(c.recipients, vec!["pm-delays".to_string()]);
}

#[test]
fn delay_warning_names_the_latest_reason() {
    let inst = start("delay_warning_names_the_latest_reason");
    let id = inst.enter("alice@example.org", "slow@example.net", "Subject: s\n\nb\n");
    inst.append(
        Log::Defer,
        &id,
        "slow@example.net",
        "4.4.1",
        "connect refused",
    );
    inst.append(
        Log::Defer,
        &id,
        "slow@example.net",
        "4.4.2",
        "lost connection",
    );
    let r = inst.warn("defer", &id, "alice@example.org");
    assert_notified(&r, "");
    let c = inst.captured.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        c.content
            .contains("Subject: Delayed Mail (still being retried)\n")
    );
    assert!(c.content.contains("Action: delayed\nStatus: 4.4.2\n"));
    assert!(
        c.content
            .contains("Diagnostic-Code: X-Postfix; lost connection\n")
    );
    assert!(!c.content.contains("connect refused"));
    inst.wait_log(&format!("{id}: sender delay notification: "));
    // The defer log stays for mailq.
    assert!(queue::queue_path(&inst.qdir, Queue::Defer, &id).exists());
}

#[test]
fn runs_as_mail_owner_with_the_standard_line() {
    if !nix::unistd::geteuid().is_root() {
        testkit::skip("needs root to become mail_owner");
        return;
    }
    testkit::need_mail_owner();
    let Some(user) = nix::unistd::User::from_name("postfix").ok().flatten() else {
        panic!("no account postfix");
    };
    let owner = (user.uid.as_raw(), user.gid.as_raw());
    let inst = start_as("runs_as_mail_owner_with_the_standard_line", Some(owner));
    let id = inst.enter(
        "alice@example.org",
        "nosuch@mx.example.org",
        "Subject: x\n\ny\n",
    );
    // The queue file as qmgr leaves it: mail_owner's.
    let path = queue::queue_path(&inst.qdir, Queue::Active, &id);
    std::os::unix::fs::chown(&path, Some(owner.0), Some(owner.1)).unwrap();
    inst.append(
        Log::Bounce,
        &id,
        "nosuch@mx.example.org",
        "5.1.1",
        "unknown user",
    );
    let log = queue::queue_path(&inst.qdir, Queue::Bounce, &id);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&log).unwrap().uid(), owner.0);
    let r = inst.flush("bounce", &id, "alice@example.org");
    assert_notified(&r, &inst.log());
    let c = inst.captured.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(c.content.contains("Subject: x\n\ny\n"));
    assert!(!log.exists());
}
