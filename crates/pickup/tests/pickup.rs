//! The real pickup binary, started the way master starts it (ipc arguments,
//! status pipe on fd 3, the public/pickup fifo on fd 4), against a
//! temporary queue. A small socket server in the test stands in for
//! cleanup (public/cleanup, speaking proto::cleanup) while the real cleanup
//! is written elsewhere.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::cleanup::{Begin, Reply, Request};
use queue::{Envelope, Queue, QueueId};
use testkit::wait_until;

/// The directory holding the built binaries.
fn bin_dir() -> PathBuf {
    testkit::bin_dir()
}

/// Run as root with the accounts present: pickup becomes mail_owner (-u).
fn unpriv_accounts() -> Option<((u32, u32), u32)> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let owner = nix::unistd::User::from_name("postfix").ok()??;
    let group = nix::unistd::Group::from_name("postdrop").ok()??;
    Some(((owner.uid.as_raw(), owner.gid.as_raw()), group.gid.as_raw()))
}

struct Inst {
    _dir: tempfile::TempDir,
    config_dir: PathBuf,
    qdir: PathBuf,
    maillog: PathBuf,
    unpriv: bool,
}

impl Inst {
    fn new() -> Inst {
        let inst = Inst::without_fifo();
        nix::unistd::mkfifo(
            &inst.qdir.join("public/pickup"),
            nix::sys::stat::Mode::from_bits_truncate(0o622),
        )
        .unwrap();
        inst
    }

    /// The instance without public/pickup (master makes it).
    fn without_fifo() -> Inst {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config_dir = base.join("etc");
        let qdir = base.join("spool");
        let maillog = base.join("maillog");
        std::fs::create_dir_all(&config_dir).unwrap();
        let accounts = unpriv_accounts();
        queue::layout::create_or_repair(&qdir, accounts.map(|a| a.0), accounts.map(|a| a.1))
            .unwrap();
        std::fs::write(
            config_dir.join("main.cf"),
            format!(
                "queue_directory = {}\ncommand_directory = {}\ndaemon_directory = {}\n\
                 maillog_file = {}\n",
                qdir.display(),
                bin_dir().display(),
                bin_dir().display(),
                maillog.display()
            ),
        )
        .unwrap();
        Inst {
            _dir: dir,
            config_dir,
            qdir,
            maillog,
            unpriv: accounts.is_some(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.maillog).unwrap_or_default()
    }

    fn maildrop(&self) -> Vec<QueueId> {
        queue::list(&self.qdir, Queue::Maildrop).unwrap()
    }

    /// A maildrop file as postdrop writes it.
    fn drop_file(&self, sender: &str, content: &[u8]) -> QueueId {
        let mut w = queue::enter_queue(&self.qdir, Queue::Maildrop).unwrap();
        w.write_all(content).unwrap();
        let mut env = Envelope::new(sender, std::time::SystemTime::now());
        env.add_recipient("bob");
        env.set_attribute("login_name", "root");
        env.set_attribute("flags", "0");
        *w.finish(&env).unwrap().id()
    }

    /// Starts pickup as master would for `pickup fifo n - n 60 1 pickup`.
    fn start_pickup(&self) -> Pickup {
        self.start_pickup_with(&[])
    }

    /// The same with more ipc flags (`-c`: chroot).
    fn start_pickup_with(&self, flags: &[&str]) -> Pickup {
        let fifo = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.qdir.join("public/pickup"))
            .unwrap();
        self.spawn_pickup("fifo", fifo.as_raw_fd(), flags)
    }

    /// Starts pickup as master would for `pickup unix n - n 60 1 pickup`
    /// (Postfix's default line), listening on public/pickup.
    fn start_pickup_unix(&self) -> Pickup {
        let listener = UnixListener::bind(self.qdir.join("public/pickup")).unwrap();
        listener.set_nonblocking(true).unwrap();
        self.spawn_pickup("unix", listener.as_raw_fd(), &[])
    }

    /// pickup with service type `kind` on descriptor `fd` (passed as
    /// master passes a listener) and the status pipe.
    fn spawn_pickup(&self, kind: &str, fd: std::os::fd::RawFd, flags: &[&str]) -> Pickup {
        let (status_read, status_write) = nix::unistd::pipe().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pickup"));
        cmd.args(["-n", "pickup", "-t", kind, "-z"])
            .env("MAIL_CONFIG", &self.config_dir)
            .stdin(Stdio::null());
        if self.unpriv {
            cmd.arg("-u");
        }
        cmd.args(flags);
        ipc::inherit::pass_fds(&mut cmd, status_write.as_raw_fd(), &[fd]);
        let child = cmd.spawn().unwrap();
        drop(status_write);
        Pickup {
            child,
            _status: status_read,
        }
    }

    fn trigger(&self) {
        proto::trigger(&self.qdir, "public/pickup").unwrap();
    }

    /// Hands a message over as postdrop does and returns pickup's answer
    /// (None: it hung up without one).
    fn hand_over(&self, sender: &str, login_name: &str, content: &[u8]) -> Option<Reply> {
        let mut s =
            std::os::unix::net::UnixStream::connect(self.qdir.join("public/pickup")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(&[proto::pickup::HANDOVER]).unwrap();
        match proto::recv(&mut s).ok()? {
            Reply::Started { .. } => {}
            other => return Some(other),
        }
        let begin = Begin {
            flags: proto::cleanup::flags::EXTRACT_RECIPIENTS | proto::cleanup::flags::NO_CHECKS,
            sender: sender.into(),
            full_name: Some("Alice A".into()),
            attributes: vec![
                ("login_name".into(), login_name.into()),
                ("content_filter".into(), "smtp:evil".into()),
                ("dsn_ret".into(), "HDRS".into()),
            ],
        };
        let rcpt = proto::cleanup::RecipientSpec {
            address: "bob".into(),
            orcpt: None,
            notify: 0xff,
        };
        // pickup may answer (and hang up) before it has read everything,
        // as when cleanup is down: its answer is still there to read.
        let _ = [
            Request::Begin(begin),
            Request::Recipient(rcpt),
            Request::Content(content.to_vec()),
            Request::End,
        ]
        .iter()
        .try_for_each(|r| proto::send(&mut s, r));
        proto::recv(&mut s).ok()
    }
}

/// A running pickup; closing the status pipe (master gone) ends it.
struct Pickup {
    child: Child,
    _status: OwnedFd,
}

impl Drop for Pickup {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One message as the stand-in received it.
#[derive(Debug, Clone)]
struct Got {
    begin: Begin,
    recipients: Vec<String>,
    content: Vec<u8>,
}

/// The stand-in for cleanup: answers Started after Begin and Queued after
/// End, with queue ids CLEANUPn.
struct Cleanup {
    got: Arc<Mutex<Vec<Got>>>,
}

impl Cleanup {
    fn start(qdir: &Path) -> Cleanup {
        Cleanup::start_slow(qdir, Duration::ZERO)
    }

    /// One that takes `delay` before it answers Queued (an fsync), each
    /// client on a thread of its own as the real cleanup serves them.
    fn start_slow(qdir: &Path, delay: Duration) -> Cleanup {
        let path = qdir.join(proto::cleanup::SERVICE);
        let l = UnixListener::bind(&path).unwrap();
        // pickup may run as mail_owner.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let store = Arc::clone(&got);
        std::thread::spawn(move || {
            for (n, s) in l.incoming().enumerate() {
                let Ok(mut s) = s else { return };
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    if let Some(m) = serve(&mut s, n, delay) {
                        store.lock().unwrap().push(m);
                    }
                });
            }
        });
        Cleanup { got }
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
}

fn serve(s: &mut std::os::unix::net::UnixStream, n: usize, delay: Duration) -> Option<Got> {
    let qid = format!("CLEANUP{n}");
    let Ok(Request::Begin(begin)) = proto::recv(s) else {
        return None;
    };
    proto::send(
        s,
        &Reply::Started {
            queue_id: qid.clone(),
        },
    )
    .ok()?;
    let mut m = Got {
        begin,
        recipients: Vec::new(),
        content: Vec::new(),
    };
    loop {
        match proto::recv(s).ok()? {
            Request::Recipient(r) => m.recipients.push(r.address),
            Request::Content(c) => m.content.extend_from_slice(&c),
            Request::End => break,
            _ => return None,
        }
    }
    std::thread::sleep(delay);
    proto::send(s, &Reply::Queued { queue_id: qid }).ok()?;
    Some(m)
}

/// Every file reaches cleanup once. pickup takes them in arrival order but
/// has up to eight in conversation at once, so cleanup may finish them
/// in another order.
#[test]
fn picks_up_every_file_and_logs() {
    let inst = Inst::new();
    let ids: Vec<QueueId> = (0..3)
        .map(|i| {
            inst.drop_file(
                &format!("sender{i}"),
                format!("Subject: {i}\n\nbody {i}\n").as_bytes(),
            )
        })
        .collect();
    let cleanup = Cleanup::start(&inst.qdir);
    let pickup = inst.start_pickup();
    assert!(
        wait_until(Duration::from_secs(10), || inst.maildrop().is_empty()),
        "maildrop still holds {:?}; log:\n{}",
        inst.maildrop(),
        inst.log()
    );
    let got = cleanup.got();
    let mut senders: Vec<&str> = got.iter().map(|m| m.begin.sender.as_str()).collect();
    senders.sort_unstable();
    assert_eq!(senders, ["sender0", "sender1", "sender2"], "{ids:?}");
    let one = got
        .iter()
        .find(|m| m.begin.sender == "sender1")
        .expect("sender1's message");
    assert_eq!(one.content, b"Subject: 1\n\nbody 1\n");
    assert_eq!(one.recipients, ["bob"]);
    assert_eq!(one.begin.flags, proto::cleanup::flags::LOCAL_SUBMISSION);
    let pid = pickup.child.id();
    let uid = nix::unistd::getuid();
    if inst.unpriv {
        // It serves as mail_owner.
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let owner = nix::unistd::User::from_name("postfix").unwrap().unwrap();
        let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert!(
            line.split_whitespace()
                .skip(1)
                .all(|u| u == owner.uid.to_string()),
            "{line}"
        );
    }
    // The queue id is whatever cleanup gave (CLEANUP<n>, by connection).
    assert!(
        wait_until(Duration::from_secs(5), || inst.log().lines().any(|l| {
            l.contains(&format!("postfix/pickup[{pid}]: CLEANUP"))
                && l.ends_with(&format!(": uid={uid} from=<sender2>"))
        })),
        "{}",
        inst.log()
    );
}

#[test]
fn leaves_files_while_cleanup_is_down_and_delivers_when_it_returns() {
    let inst = Inst::new();
    let id = inst.drop_file("alice", b"hello\n");
    let _pickup = inst.start_pickup();
    assert!(
        wait_until(Duration::from_secs(10), || inst
            .log()
            .contains("public/cleanup")),
        "{}",
        inst.log()
    );
    inst.trigger();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(inst.maildrop(), vec![id]);
    let cleanup = Cleanup::start(&inst.qdir);
    inst.trigger();
    assert!(
        wait_until(Duration::from_secs(10), || inst.maildrop().is_empty()),
        "{}",
        inst.log()
    );
    let got = cleanup.got();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].content, b"hello\n");
}

#[test]
fn works_chrooted_as_mail_owner() {
    if testkit::skip_unless_root("pickup becomes mail_owner and chroots") {
        return;
    }
    testkit::need_mail_owner();
    let inst = Inst::new();
    assert!(
        inst.unpriv,
        "the postfix account or postdrop group is missing"
    );
    let cleanup = Cleanup::start(&inst.qdir);
    let pickup = inst.start_pickup_with(&["-c"]);
    inst.drop_file("frank", b"chrooted\n");
    inst.trigger();
    assert!(
        wait_until(Duration::from_secs(10), || inst.maildrop().is_empty()),
        "{}",
        inst.log()
    );
    assert_eq!(cleanup.got()[0].content, b"chrooted\n");
    let root = std::fs::read_link(format!("/proc/{}/root", pickup.child.id())).unwrap();
    assert_eq!(root, inst.qdir);
}

#[test]
fn corrupt_files_go_to_corrupt() {
    let inst = Inst::new();
    let bad = inst.drop_file("alice", b"hello\n");
    let path = queue::queue_path(&inst.qdir, Queue::Maildrop, &bad);
    std::fs::write(&path, b"this is no queue file").unwrap();
    let good = inst.drop_file("bob", b"fine\n");
    let cleanup = Cleanup::start(&inst.qdir);
    let _pickup = inst.start_pickup();
    assert!(
        wait_until(Duration::from_secs(10), || inst.maildrop().is_empty()),
        "{}",
        inst.log()
    );
    assert_eq!(queue::list(&inst.qdir, Queue::Corrupt).unwrap(), vec![bad]);
    assert!(
        inst.log().contains(&format!("warning: maildrop/{bad}: ")),
        "{}",
        inst.log()
    );
    assert_eq!(cleanup.got().len(), 1, "{good}");
}

#[test]
fn sendmail_to_cleanup_end_to_end() {
    let sendmail = bin_dir().join("sendmail");
    testkit::need_bins(&["sendmail", "postdrop"]);
    let inst = Inst::new();
    let cleanup = Cleanup::start(&inst.qdir);
    let _pickup = inst.start_pickup();
    let mut child = Command::new(&sendmail)
        .arg("-C")
        .arg(&inst.config_dir)
        .args(["-t", "-F", "Carol C", "-f", "carol@example.org"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"To: dave\nSubject: e2e\n\nhi\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    // postdrop's wake-up brings pickup at once (no 60 s wait).
    assert!(
        wait_until(Duration::from_secs(10), || cleanup.got().len() == 1),
        "{}",
        inst.log()
    );
    let m = &cleanup.got()[0];
    assert_eq!(m.begin.sender, "carol@example.org");
    assert_eq!(m.begin.full_name.as_deref(), Some("Carol C"));
    assert_eq!(
        m.begin.flags,
        proto::cleanup::flags::LOCAL_SUBMISSION | proto::cleanup::flags::EXTRACT_RECIPIENTS
    );
    assert!(m.recipients.is_empty());
    assert_eq!(m.content, b"To: dave\nSubject: e2e\n\nhi\n");
    assert!(
        wait_until(Duration::from_secs(5), || inst.maildrop().is_empty()),
        "{}",
        inst.log()
    );
}

#[test]
fn runs_under_master_with_the_standard_line() {
    let master = bin_dir().join("master");
    let sendmail = bin_dir().join("sendmail");
    testkit::need_bins(&["master", "sendmail", "postdrop"]);
    let inst = Inst::without_fifo();
    std::fs::write(
        inst.config_dir.join("master.cf"),
        "pickup    fifo  n       -       n       60      1       pickup\n",
    )
    .unwrap();
    let cleanup = Cleanup::start(&inst.qdir);
    let mut master_proc = Command::new(&master)
        .arg("-c")
        .arg(&inst.config_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stop = |m: &mut Child| {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(m.id()).unwrap());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = m.wait();
    };
    let fifo = inst.qdir.join("public/pickup");
    if !wait_until(Duration::from_secs(10), || fifo.exists()) {
        stop(&mut master_proc);
        panic!("master did not create public/pickup: {}", inst.log());
    }
    let mut child = Command::new(&sendmail)
        .arg("-C")
        .arg(&inst.config_dir)
        .arg("erin")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Subject: via master\n\nhi\n")
        .unwrap();
    let sent = child.wait().unwrap().success();
    let delivered = wait_until(Duration::from_secs(10), || cleanup.got().len() == 1);
    let drained = wait_until(Duration::from_secs(5), || inst.maildrop().is_empty());
    stop(&mut master_proc);
    assert!(sent && delivered && drained, "{}", inst.log());
    assert_eq!(cleanup.got()[0].recipients, ["erin"]);
    assert!(inst.log().contains("postfix/pickup["), "{}", inst.log());
}

/// postdrop's hand-over on a unix public/pickup: relayed to cleanup with
/// the envelope a maildrop file would give (the socket peer's uid, the
/// kept flag only, no attribute the submitter invents), answered with
/// cleanup's queue id, logged like a file, and no maildrop file. With
/// cleanup down the answer is 4.x.x (postdrop then writes the file), and
/// a plain wake-up on the same socket still scans maildrop/.
#[test]
fn takes_a_handover_on_its_unix_socket() {
    let inst = Inst::without_fifo();
    let pickup = inst.start_pickup_unix();
    match inst.hand_over("alice", "root", b"hello\n") {
        Some(Reply::Rejected { status, .. }) => assert!(status.starts_with("4."), "{status}"),
        other => panic!("cleanup is down, yet {other:?}\n{}", inst.log()),
    }
    let cleanup = Cleanup::start(&inst.qdir);
    let reply = inst.hand_over("alice", "root", b"Subject: x\n\nhello\n");
    assert!(
        matches!(&reply, Some(Reply::Queued { queue_id }) if queue_id.starts_with("CLEANUP")),
        "{reply:?}\n{}",
        inst.log()
    );
    assert!(inst.maildrop().is_empty());
    let got = cleanup.got();
    assert_eq!(got.len(), 1, "{got:?}");
    let m = &got[0];
    assert_eq!(m.begin.sender, "alice");
    assert_eq!(
        m.begin.flags,
        proto::cleanup::flags::LOCAL_SUBMISSION | proto::cleanup::flags::EXTRACT_RECIPIENTS
    );
    assert_eq!(m.begin.full_name.as_deref(), Some("Alice A"));
    let uid = nix::unistd::getuid().as_raw();
    let attr = |k: &str| {
        m.begin
            .attributes
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(attr("uid"), Some(uid.to_string().as_str()));
    assert_eq!(attr("rewrite_context"), Some("local"));
    assert_eq!(attr("dsn_ret"), Some("HDRS"));
    assert_eq!(attr("content_filter"), None);
    assert_eq!(attr("maildrop_id"), None);
    // root's claim is believed; anyone else's must be their own name.
    let expected_login = if uid == 0 {
        "root".to_owned()
    } else {
        nix::unistd::User::from_uid(nix::unistd::getuid())
            .unwrap()
            .map_or(uid.to_string(), |u| u.name)
    };
    assert_eq!(attr("login_name"), Some(expected_login.as_str()));
    assert_eq!(m.recipients, ["bob"]);
    assert_eq!(m.content, b"Subject: x\n\nhello\n");
    assert!(
        wait_until(Duration::from_secs(5), || inst
            .log()
            .contains(&format!(": uid={uid} from=<alice>"))),
        "{}",
        inst.log()
    );
    // A wake-up byte on the same socket is still a trigger.
    inst.drop_file("carol", b"hi\n");
    inst.trigger();
    assert!(
        wait_until(Duration::from_secs(10), || inst.maildrop().is_empty()),
        "{}",
        inst.log()
    );
    assert!(cleanup.got().iter().any(|m| m.begin.sender == "carol"));
    // The two hand-overs, one after the other, were served by a pooled
    // thread that stays for the next (a thread of their own would have
    // ended); a second starts only if the next came before the first
    // thread was back in the pool.
    let tasks = std::fs::read_dir(format!("/proc/{}/task", pickup.child.id())).unwrap();
    let handover_threads = tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "handover")
        })
        .count();
    assert!((1..=2).contains(&handover_threads), "{handover_threads}");
}

/// postfix stop (SIGTERM from master) lets a hand-over in flight finish:
/// postdrop hears that its message is queued, and only then does pickup
/// exit.
#[test]
fn sigterm_waits_for_a_handover_in_flight() {
    let inst = Arc::new(Inst::without_fifo());
    let mut pickup = inst.start_pickup_unix();
    let cleanup = Cleanup::start_slow(&inst.qdir, Duration::from_millis(1500));
    let sender = Arc::clone(&inst);
    let submit = std::thread::spawn(move || sender.hand_over("alice", "root", b"hi\n"));
    assert!(
        wait_until(Duration::from_secs(10), || inst
            .log()
            .contains("from=<alice>")),
        "{}",
        inst.log()
    );
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pickup.child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let reply = submit.join().unwrap();
    assert!(
        matches!(reply, Some(Reply::Queued { .. })),
        "{reply:?}\n{}",
        inst.log()
    );
    assert_eq!(cleanup.got().len(), 1);
    let status = pickup.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// The real postdrop, run by an ordinary user (nobody, with the postdrop
/// group as the set-gid install gives it) against pickup on a unix
/// public/pickup: the message is handed over (no maildrop file) and
/// reaches cleanup with that user's uid and login name, whatever the
/// message claims.
#[test]
fn postdrop_run_by_a_user_hands_over_as_that_user() {
    if testkit::skip_unless_root("it runs postdrop as another user") {
        return;
    }
    testkit::need_bins(&["postdrop"]);
    testkit::need_mail_owner();
    let postdrop = bin_dir().join("postdrop");
    testkit::need_others_can_run(&postdrop);
    let inst = Inst::without_fifo();
    let _pickup = inst.start_pickup_unix();
    let socket = inst.qdir.join("public/pickup");
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let cleanup = Cleanup::start(&inst.qdir);
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("the account nobody");
    let group = nix::unistd::Group::from_name("postdrop")
        .unwrap()
        .expect("the group postdrop (scripts/install-deps)");
    let mut input = Vec::new();
    let begin = Begin {
        flags: 0,
        sender: "nobody".into(),
        full_name: None,
        attributes: vec![("login_name".into(), "root".into())],
    };
    proto::send(&mut input, &Request::Begin(begin)).unwrap();
    let rcpt = proto::cleanup::RecipientSpec {
        address: "bob".into(),
        orcpt: None,
        notify: 0,
    };
    proto::send(&mut input, &Request::Recipient(rcpt)).unwrap();
    proto::send(
        &mut input,
        &Request::Content(b"Subject: u\n\nbody\n".to_vec()),
    )
    .unwrap();
    proto::send(&mut input, &Request::End).unwrap();
    let mut cmd = Command::new(&postdrop);
    std::os::unix::process::CommandExt::uid(&mut cmd, nobody.uid.as_raw());
    std::os::unix::process::CommandExt::gid(&mut cmd, group.gid.as_raw());
    cmd.arg("-c")
        .arg(&inst.config_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        inst.log()
    );
    assert!(inst.maildrop().is_empty(), "a maildrop file was written");
    let got = cleanup.got();
    assert_eq!(got.len(), 1, "{got:?}\n{}", inst.log());
    let attr = |k: &str| {
        got[0]
            .begin
            .attributes
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(attr("uid"), Some(nobody.uid.as_raw().to_string()));
    assert_eq!(attr("login_name").as_deref(), Some("nobody"));
    assert_eq!(got[0].content, b"Subject: u\n\nbody\n");
}

/// A long scan of maildrop/ (a backlog, a slow cleanup) runs beside the
/// hand-overs: one is answered while files are still waiting.
#[test]
fn a_handover_is_not_kept_waiting_by_a_scan() {
    let inst = Inst::without_fifo();
    // Eight at a time, half a second each: a scan of some four seconds.
    for i in 0..64 {
        inst.drop_file(&format!("backlog{i}"), b"old\n");
    }
    let cleanup = Cleanup::start_slow(&inst.qdir, Duration::from_millis(500));
    let _pickup = inst.start_pickup_unix();
    assert!(
        wait_until(Duration::from_secs(10), || inst
            .log()
            .contains("from=<backlog")),
        "{}",
        inst.log()
    );
    let reply = inst.hand_over("alice", "root", b"new\n");
    assert!(matches!(reply, Some(Reply::Queued { .. })), "{reply:?}");
    let left = inst.maildrop().len();
    assert!(left > 0, "the hand-over waited for the whole scan");
    assert!(
        wait_until(Duration::from_secs(30), || inst.maildrop().is_empty()),
        "{}",
        inst.log()
    );
    assert_eq!(cleanup.got().len(), 65);
}
