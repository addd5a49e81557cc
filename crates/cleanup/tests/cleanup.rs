//! cleanup under a real master: a temporary instance with the standard
//! master.cf line (`cleanup unix n - n - 0 cleanup`), clients speaking
//! proto::cleanup over public/cleanup, and the queue files read back with
//! queue::QueueFile.
//!
//! trivial-rewrite is written by another helper at the same time; these
//! tests stand in for it with a small proto::rewrite server on
//! private/rewrite that appends `@origin.example` to bare users (its
//! local-context rule with myorigin = origin.example).

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use proto::cleanup::{Begin, RecipientSpec, Reply, Request, flags};
use queue::{Queue, QueueFile, QueueId};
use testkit::wait_until;

/// The directory with the built binaries (master must have been built,
/// as `cargo build --workspace` or `cargo test --workspace` does).
fn bin_dir() -> PathBuf {
    testkit::bin_dir()
}

/// What an instance test here needs: the binaries built and, as root,
/// the mail_owner account ([`testkit::need_instance`]); missing, it fails.
fn need_instance() {
    testkit::need_instance(&["master"]);
}

fn mail_owner() -> Option<(u32, u32)> {
    nix::unistd::User::from_name("postfix")
        .ok()
        .flatten()
        .map(|u| (u.uid.as_raw(), u.gid.as_raw()))
}

macro_rules! instance_or_skip {
    ($name:expr, $main:expr) => {{
        need_instance();
        Instance::start($main, true)
    }};
}

/// A master running cleanup in a temporary directory.
struct Instance {
    _dir: tempfile::TempDir,
    qdir: PathBuf,
    maillog: PathBuf,
    master: Child,
}

impl Instance {
    fn start(main_extra: &str, rewrite_stand_in: bool) -> Instance {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        // mail_owner must be able to reach the queue directory.
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        let etc = base.join("etc");
        let qdir = base.join("spool");
        let maillog = base.join("maillog");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::create_dir_all(&qdir).unwrap();
        let owner = if nix::unistd::geteuid().is_root() {
            mail_owner()
        } else {
            None
        };
        queue::layout::create_or_repair(&qdir, owner, None).unwrap();
        std::fs::write(
            etc.join("main.cf"),
            format!(
                "queue_directory = {}\ndaemon_directory = {}\nmaillog_file = {}\n\
                 myhostname = mail.example.org\nmydomain = example.org\n\
                 myorigin = origin.example\ninet_interfaces = loopback-only\n{main_extra}",
                qdir.display(),
                bin_dir().display(),
                maillog.display()
            ),
        )
        .unwrap();
        std::fs::write(etc.join("master.cf"), "cleanup unix n - n - 0 cleanup\n").unwrap();
        std::fs::write(&maillog, "").unwrap();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&maillog, Some(uid), Some(gid)).unwrap();
        }
        if rewrite_stand_in {
            stand_in_rewrite(&qdir.join("private/rewrite"));
        }
        let master = Command::new(bin_dir().join("master"))
            .arg("-c")
            .arg(&etc)
            .spawn()
            .unwrap();
        let inst = Instance {
            _dir: dir,
            qdir,
            maillog,
            master,
        };
        let sock = inst.qdir.join(proto::cleanup::SERVICE);
        assert!(
            wait_until(Duration::from_secs(10), || sock.exists()),
            "master did not create public/cleanup:\n{}",
            inst.log()
        );
        inst
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.maillog).unwrap_or_default()
    }

    fn ids(&self, q: Queue) -> Vec<QueueId> {
        queue::list(&self.qdir, q).unwrap()
    }

    /// Opens a queued message and returns it with its content.
    fn read(&self, q: Queue, id: &str) -> (QueueFile, String) {
        let id = QueueId::parse(id).unwrap();
        let qf = QueueFile::open_read_only(&self.qdir, q, &id).unwrap();
        let mut content = Vec::new();
        qf.content().read_to_end(&mut content).unwrap();
        (qf, String::from_utf8_lossy(&content).into_owned())
    }

    fn submit(&self, begin: Begin, rcpts: &[&str], content: &[u8]) -> Reply {
        submit(&self.qdir, begin, rcpts, content)
    }
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

/// The stand-in for trivial-rewrite (see the file's header).
fn stand_in_rewrite(path: &Path) {
    use proto::rewrite::{AddressClass, Reply, Request};
    let l = UnixListener::bind(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { return };
            std::thread::spawn(move || {
                while let Ok(req) = proto::recv::<_, Request>(&mut c) {
                    let reply = match req {
                        Request::Rewrite { address, .. } => Reply::Rewritten {
                            address: if address.contains('@') || address.is_empty() {
                                address
                            } else {
                                format!("{address}@origin.example")
                            },
                        },
                        Request::Resolve { address, .. }
                        | Request::ResolveVerify { address, .. } => Reply::Resolved {
                            transport: "local".into(),
                            nexthop: "mail.example.org".into(),
                            recipient: address,
                            class: AddressClass::Local,
                            flags: 0,
                            reason: String::new(),
                        },
                    };
                    if proto::send(&mut c, &reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
}

fn begin(flags: u32, sender: &str, attrs: &[(&str, &str)]) -> Begin {
    Begin {
        flags,
        sender: sender.into(),
        full_name: None,
        attributes: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn local(sender: &str) -> Begin {
    begin(
        flags::LOCAL_SUBMISSION,
        sender,
        &[("uid", "1000"), ("rewrite_context", "local")],
    )
}

/// One conversation; the final reply.
fn submit(qdir: &Path, begin: Begin, rcpts: &[&str], content: &[u8]) -> Reply {
    let mut s = proto::connect(qdir, proto::cleanup::SERVICE).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    proto::send(&mut s, &Request::Begin(begin)).unwrap();
    let started: Reply = proto::recv(&mut s).unwrap();
    let Reply::Started { queue_id } = started else {
        return started;
    };
    assert!(QueueId::parse(&queue_id).is_ok());
    let mut sent = rcpts.iter().all(|r| {
        proto::send(
            &mut s,
            &Request::Recipient(RecipientSpec {
                address: r.to_string(),
                orcpt: None,
                notify: 0,
            }),
        )
        .is_ok()
    });
    for chunk in content.chunks(proto::CONTENT_CHUNK) {
        sent = sent && proto::send(&mut s, &Request::Content(chunk.to_vec())).is_ok();
    }
    // A refused message may be answered early and the socket closed.
    let _ = sent && proto::send(&mut s, &Request::End).is_ok();
    proto::recv(&mut s).unwrap()
}

fn queued_id(reply: &Reply) -> String {
    match reply {
        Reply::Queued { queue_id } => queue_id.clone(),
        other => panic!("not queued: {other:?}"),
    }
}

fn rcpts(qf: &QueueFile) -> Vec<(String, String)> {
    qf.envelope()
        .recipients
        .iter()
        .map(|r| (r.address.clone(), r.original.clone()))
        .collect()
}

#[test]
fn local_submission_is_rewritten_completed_and_queued() {
    let inst = instance_or_skip!(
        "local_submission_is_rewritten_completed_and_queued",
        "canonical_maps = inline:{ bob@origin.example=robert@example.net }\n\
         virtual_alias_maps = inline:{ { robert@example.net = r1@example.net, r2@example.net, r1@example.net } }\n"
    );
    let reply = inst.submit(
        local("alice"),
        &["bob"],
        b"Return-Path: <forged@x>\nSubject: hello\nTo: bob\n\nbody\n",
    );
    let id = queued_id(&reply);
    assert_eq!(inst.ids(Queue::Incoming).len(), 1);
    let (qf, content) = inst.read(Queue::Incoming, &id);
    assert_eq!(qf.envelope().sender, "alice@origin.example");
    assert_eq!(
        rcpts(&qf),
        [
            ("r1@example.net".to_string(), "bob".to_string()),
            ("r2@example.net".to_string(), "bob".to_string())
        ]
    );
    assert_eq!(qf.envelope().attribute("rewrite_context"), Some("local"));
    // As root, cleanup ran as mail_owner (unpriv column `-`).
    if nix::unistd::geteuid().is_root() {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(Some(qf.metadata().uid()), mail_owner().map(|(u, _)| u));
    }
    assert!(
        content.starts_with(&format!(
            "Received: by mail.example.org (Postfix, from userid 1000)\n\tid {id}; "
        )),
        "{content}"
    );
    assert!(!content.contains("Return-Path"));
    assert!(content.contains("\nTo: robert@example.net\n"), "{content}");
    assert!(content.contains("\nMessage-Id: <"));
    assert!(content.contains(&format!(".{id}@mail.example.org>\n")));
    assert!(content.contains("\nDate: "));
    assert!(content.contains("\nFrom: alice@origin.example\n\nbody\n"));
    let log = inst.log();
    assert!(
        log.contains("postfix/cleanup[") && log.contains(&format!("]: {id}: message-id=<")),
        "{log}"
    );
}

#[test]
fn network_mail_gets_smtpd_received_and_no_added_headers() {
    let inst = instance_or_skip!("network_mail_gets_smtpd_received_and_no_added_headers", "");
    let b = begin(
        0,
        "sender@remote.example",
        &[
            ("client_name", "mx.remote.example"),
            ("client_address", "192.0.2.7"),
            ("helo_name", "mx.remote.example"),
            ("protocol", "ESMTPS"),
            ("rewrite_context", "remote"),
        ],
    );
    let id = queued_id(&inst.submit(b, &["user@origin.example"], b"Subject: s\n\nb\n"));
    let (qf, content) = inst.read(Queue::Incoming, &id);
    assert!(
        content.starts_with(&format!(
            "Received: from mx.remote.example (mx.remote.example [192.0.2.7])\n\
         \tby mail.example.org (Postfix) with ESMTPS id {id}\n\tfor <user@origin.example>; "
        )),
        "{content}"
    );
    assert!(!content.contains("Message-Id"));
    assert!(!content.contains("\nFrom:"));
    assert_eq!(qf.envelope().attribute("protocol_name"), Some("ESMTPS"));
    assert!(inst.log().contains(&format!("{id}: message-id=<>")));
}

#[test]
fn header_and_body_checks() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let hc = dir.path().join("header_checks");
    std::fs::write(
        &hc,
        "/^Subject: spam/ REJECT go away\n/^Subject: trash/ DISCARD\n\
         /^Subject: review/ HOLD\n/^Subject: odd/ WARN strange subject\n/^X-Secret:/ IGNORE\n",
    )
    .unwrap();
    let bc = dir.path().join("body_checks");
    std::fs::write(&bc, "/^forbidden words$/ REJECT\n").unwrap();
    for f in [&hc, &bc] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let inst = instance_or_skip!(
        "header_and_body_checks",
        &format!(
            "header_checks = regexp:{}\nbody_checks = pcre:{}\n",
            hc.display(),
            bc.display()
        )
    );
    let r = inst.submit(local("alice"), &["bob"], b"Subject: spam offer\n\nb\n");
    assert_eq!(
        r,
        Reply::Rejected {
            status: "5.7.1".into(),
            text: "go away".into(),
            code: 0,
        }
    );
    let r = inst.submit(local("alice"), &["bob"], b"Subject: trash\n\nb\n");
    assert!(matches!(r, Reply::Discarded { .. }), "{r:?}");
    let r = inst.submit(
        local("alice"),
        &["bob"],
        b"Subject: x\n\nok\nforbidden words\n",
    );
    assert!(
        matches!(r, Reply::Rejected { ref status, .. } if status == "5.7.1"),
        "{r:?}"
    );
    assert!(
        inst.ids(Queue::Incoming).is_empty(),
        "refused mail left a file"
    );
    let held = queued_id(&inst.submit(local("alice"), &["bob"], b"Subject: review me\n\nb\n"));
    assert_eq!(inst.ids(Queue::Hold).len(), 1);
    assert_eq!(inst.ids(Queue::Hold)[0].as_str(), held);
    let warned = queued_id(&inst.submit(
        local("alice"),
        &["bob"],
        b"X-Secret: 42\nSubject: odd one\n\nb\n",
    ));
    let (_, content) = inst.read(Queue::Incoming, &warned);
    assert!(!content.contains("X-Secret"));
    assert!(content.contains("Subject: odd one"));
    let log = inst.log();
    println!("{log}");
    assert!(
        log.contains(&format!(
            "{warned}: warning: header Subject: odd one from local; from=<alice@origin.example> to=<bob>: strange subject"
        )),
        "{log}"
    );
    assert!(log.contains(": reject: header Subject: spam offer from local; from=<alice@origin.example> to=<bob>: 5.7.1 go away"));
    assert!(log.contains(": hold: header Subject: review me from local;"));
    // The client's HOLD flag holds too.
    let mut b = local("alice");
    b.flags |= flags::HOLD;
    queued_id(&inst.submit(b, &["bob"], b"Subject: x\n\nb\n"));
    assert_eq!(inst.ids(Queue::Hold).len(), 2);
}

#[test]
fn message_size_limit_refuses_and_leaves_nothing() {
    let inst = instance_or_skip!(
        "message_size_limit_refuses_and_leaves_nothing",
        "message_size_limit = 20000\n"
    );
    let mut big = b"Subject: big\n\n".to_vec();
    big.extend(
        std::iter::repeat_n(b"0123456789abcdef0123456789abcdef\n".as_slice(), 10_000).flatten(),
    );
    let r = inst.submit(local("alice"), &["bob"], &big);
    assert_eq!(
        r,
        Reply::Rejected {
            status: "5.3.4".into(),
            text: "message file too big".into(),
            code: 0,
        }
    );
    assert!(inst.ids(Queue::Incoming).is_empty());
    // A small one still goes through.
    queued_id(&inst.submit(local("alice"), &["bob"], b"Subject: small\n\nb\n"));
}

#[test]
fn bad_input_is_repaired_or_refused() {
    let inst = instance_or_skip!("bad_input_is_repaired_or_refused", "");
    // A 1 MB header line: kept up to header_size_limit.
    let mut long = b"Subject: ".to_vec();
    long.extend(std::iter::repeat_n(b'x', 1 << 20));
    long.extend_from_slice(b"\nTo: bob\n\nbody after long header\n");
    let id = queued_id(&inst.submit(local("alice"), &["bob"], &long));
    let (_, content) = inst.read(Queue::Incoming, &id);
    let subject = content.lines().find(|l| l.starts_with("Subject:")).unwrap();
    assert_eq!(subject.len(), 102_400);
    assert!(content.ends_with("\n\nbody after long header\n"));
    // NUL bytes.
    let id = queued_id(&inst.submit(
        local("alice"),
        &["bob"],
        b"Subject: nul\x00inside\n\nbody\x00with nul\n",
    ));
    let (_, content) = inst.read(Queue::Incoming, &id);
    assert!(content.contains("Subject: nul\0inside\n"));
    assert!(content.ends_with("body\0with nul\n"));
    // An 8-bit body without headers.
    let id = queued_id(&inst.submit(
        local("alice"),
        &["bob"],
        b"\xc3\xa4\xff 8-bit only\nno newline at end",
    ));
    let id = QueueId::parse(&id).unwrap();
    let qf = QueueFile::open_read_only(&inst.qdir, Queue::Incoming, &id).unwrap();
    let mut raw = Vec::new();
    qf.content().read_to_end(&mut raw).unwrap();
    assert!(raw.ends_with(
        b"\nFrom: alice@origin.example\n\n\xc3\xa4\xff 8-bit only\nno newline at end\n"
    ));
    // No recipients at all.
    let r = inst.submit(local("alice"), &[], b"Subject: nobody\n\nb\n");
    assert_eq!(
        r,
        Reply::Rejected {
            status: "5.1.0".into(),
            text: "no recipients specified".into(),
            code: 0,
        }
    );
    assert_eq!(inst.ids(Queue::Incoming).len(), 3);
}

#[test]
fn sendmail_t_extracts_recipients_and_removes_bcc() {
    let inst = instance_or_skip!("sendmail_t_extracts_recipients_and_removes_bcc", "");
    let mut b = local("alice");
    b.flags |= flags::EXTRACT_RECIPIENTS;
    b.full_name = Some("Alice Liddell".into());
    let id = queued_id(&inst.submit(
        b,
        &[],
        b"To: Bob <bob>, carol@example.net\nCc: dave\nBcc: secret@example.net\nSubject: t\n\nbody\n",
    ));
    let (qf, content) = inst.read(Queue::Incoming, &id);
    let got: Vec<String> = rcpts(&qf).into_iter().map(|(a, _)| a).collect();
    assert_eq!(
        got,
        [
            "bob@origin.example",
            "carol@example.net",
            "dave@origin.example",
            "secret@example.net"
        ]
    );
    assert!(!content.contains("Bcc"));
    assert!(!content.contains("secret"));
    assert!(content.contains("\nTo: Bob <bob@origin.example>, carol@example.net\n"));
    assert!(content.contains("\nFrom: Alice Liddell <alice@origin.example>\n"));
}

#[test]
fn unreachable_trivial_rewrite_is_a_temporary_refusal() {
    need_instance();
    let inst = Instance::start("", false);
    let r = inst.submit(local("alice"), &["bob"], b"Subject: s\n\nb\n");
    assert!(
        matches!(r, Reply::Rejected { ref status, .. } if status.starts_with('4')),
        "{r:?}"
    );
    assert!(inst.ids(Queue::Incoming).is_empty());
}

#[test]
fn many_concurrent_clients_in_one_process() {
    let inst = instance_or_skip!("many_concurrent_clients_in_one_process", "");
    // Hold many conversations open at once, then finish them all.
    let n = 40;
    let mut open = Vec::new();
    for i in 0..n {
        let mut s = proto::connect(&inst.qdir, proto::cleanup::SERVICE).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        proto::send(&mut s, &Request::Begin(local("alice"))).unwrap();
        let Reply::Started { queue_id } = proto::recv(&mut s).unwrap() else {
            panic!("no Started");
        };
        proto::send(
            &mut s,
            &Request::Recipient(RecipientSpec {
                address: format!("user{i}"),
                orcpt: None,
                notify: 0,
            }),
        )
        .unwrap();
        proto::send(
            &mut s,
            &Request::Content(format!("Subject: {i}\n\n").into_bytes()),
        )
        .unwrap();
        open.push((s, queue_id));
    }
    let handles: Vec<_> = open
        .into_iter()
        .map(|(mut s, started)| {
            std::thread::spawn(move || {
                proto::send(&mut s, &Request::Content(b"body\n".to_vec())).unwrap();
                proto::send(&mut s, &Request::End).unwrap();
                let r: Reply = proto::recv(&mut s).unwrap();
                assert_eq!(
                    r,
                    Reply::Queued {
                        queue_id: started.clone()
                    }
                );
                started
            })
        })
        .collect();
    let mut ids: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n);
    assert_eq!(inst.ids(Queue::Incoming).len(), n);
    // One process served them all at once.
    let log = inst.log();
    let pids: std::collections::HashSet<&str> = log
        .lines()
        .filter(|l| l.contains("message-id="))
        .filter_map(|l| l.split("postfix/cleanup[").nth(1)?.split(']').next())
        .collect();
    assert_eq!(pids.len(), 1, "{log}");
}

/// Not part of the suite (`cargo test -p cleanup -- --ignored`): prints
/// how many messages per second one cleanup process queues for 20
/// concurrent clients.
#[test]
#[ignore]
fn throughput() {
    let inst = instance_or_skip!("throughput", "");
    let total = 1000;
    let clients = 20;
    let body = "Subject: bench\nTo: bob\n\n".to_string() + &"line of text\n".repeat(200);
    let start = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let qdir = inst.qdir.clone();
            let body = body.clone();
            std::thread::spawn(move || {
                for _ in 0..total / clients {
                    queued_id(&submit(&qdir, local("alice"), &["bob"], body.as_bytes()));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{total} messages in {secs:.2}s: {:.0} messages/s",
        total as f64 / secs
    );
    assert_eq!(inst.ids(Queue::Incoming).len(), total);
}
