//! The real qmgr under a real master, with the real trivial-rewrite, and
//! small stand-ins written here for the delivery agents (a socket server
//! at private/<name> speaking proto::deliver that records each request and
//! answers as the test scripts it) and for the bounce daemon
//! (private/bounce and private/defer: records Append, Flush and Warn,
//! keeps bounce/<id> like the real one, answers Ok when allowed).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use proto::deliver::{Action, Reply, Request, Status};
use queue::{Envelope, Queue};
use testkit::wait_until;

/// What an instance test here needs: the binaries built and, as root,
/// the mail_owner account ([`testkit::need_instance`]); missing, it fails.
fn need_instance() {
    testkit::need_instance(&["master", "trivial-rewrite"]);
}

macro_rules! skip_unless_ready {
    ($name:expr) => {
        need_instance();
    };
}

/// What a stand-in agent does with a request.
#[derive(Clone)]
enum Script {
    /// Answer every recipient with this action, dsn and text.
    Answer(Action, &'static str, &'static str),
    /// Close the connection without answering.
    Crash,
    /// Wait until released, then deliver.
    Hold,
}

#[derive(Default)]
struct AgentState {
    requests: Vec<Request>,
    in_flight: usize,
    max_in_flight: usize,
    released: bool,
    /// Scripts for the first requests, then `default`.
    scripts: Vec<Script>,
}

/// A stand-in delivery agent.
#[derive(Clone)]
struct Agent {
    state: Arc<(Mutex<AgentState>, Condvar)>,
}

impl Agent {
    fn start(qdir: &Path, name: &str, scripts: Vec<Script>, default: Script) -> Agent {
        let path = qdir.join("private").join(name);
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).unwrap();
        let agent = Agent {
            state: Arc::new((
                Mutex::new(AgentState {
                    scripts,
                    ..AgentState::default()
                }),
                Condvar::new(),
            )),
        };
        let a = agent.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let a = a.clone();
                let default = default.clone();
                std::thread::spawn(move || {
                    let Ok(req) = proto::recv::<_, Request>(&mut s) else {
                        return;
                    };
                    let script = {
                        let mut st = a.state.0.lock().unwrap();
                        let script = if st.scripts.is_empty() {
                            default
                        } else {
                            st.scripts.remove(0)
                        };
                        st.requests.push(req.clone());
                        st.in_flight += 1;
                        st.max_in_flight = st.max_in_flight.max(st.in_flight);
                        script
                    };
                    let answer = |action, dsn: &str, text: &str| Reply {
                        statuses: req
                            .recipients
                            .iter()
                            .map(|r| Status {
                                index: r.index,
                                action,
                                dsn: dsn.into(),
                                relay: "standin".into(),
                                text: text.into(),
                                expanded: 0,
                                findable: false,
                            })
                            .collect(),
                        more: false,
                    };
                    let reply = match script {
                        Script::Answer(action, dsn, text) => Some(answer(action, dsn, text)),
                        Script::Crash => None,
                        Script::Hold => {
                            let (m, cv) = &*a.state;
                            let mut st = m.lock().unwrap();
                            while !st.released {
                                st = cv.wait(st).unwrap();
                            }
                            drop(st);
                            Some(answer(Action::Delivered, "2.0.0", "delivered"))
                        }
                    };
                    a.state.0.lock().unwrap().in_flight -= 1;
                    if let Some(r) = reply {
                        let _ = proto::send(&mut s, &r);
                    }
                });
            }
        });
        agent
    }

    fn requests(&self) -> Vec<Request> {
        self.state.0.lock().unwrap().requests.clone()
    }

    fn in_flight(&self) -> usize {
        self.state.0.lock().unwrap().in_flight
    }

    fn max_in_flight(&self) -> usize {
        self.state.0.lock().unwrap().max_in_flight
    }

    fn release(&self) {
        let (m, cv) = &*self.state;
        m.lock().unwrap().released = true;
        cv.notify_all();
    }

    /// Indices delivered (requested) per queue id.
    fn indices(&self, id: &str) -> Vec<u32> {
        self.requests()
            .iter()
            .filter(|r| r.queue_id == id)
            .flat_map(|r| r.recipients.iter().map(|x| x.index))
            .collect()
    }
}

#[derive(Default)]
struct BounceState {
    requests: Vec<proto::bounce::Request>,
    hold_flush: bool,
}

/// The stand-in bounce daemon on private/bounce and private/defer.
#[derive(Clone)]
struct Bounce {
    state: Arc<(Mutex<BounceState>, Condvar)>,
}

impl Bounce {
    fn start(qdir: &Path, hold_flush: bool) -> Bounce {
        let b = Bounce {
            state: Arc::new((
                Mutex::new(BounceState {
                    hold_flush,
                    ..BounceState::default()
                }),
                Condvar::new(),
            )),
        };
        for name in ["bounce", "defer"] {
            let path = qdir.join("private").join(name);
            let l = UnixListener::bind(&path).unwrap();
            let b2 = b.clone();
            let qdir = qdir.to_path_buf();
            std::thread::spawn(move || {
                for s in l.incoming() {
                    let Ok(mut s) = s else { return };
                    let b3 = b2.clone();
                    let qdir = qdir.clone();
                    std::thread::spawn(move || {
                        let Ok(req) = proto::recv::<_, proto::bounce::Request>(&mut s) else {
                            return;
                        };
                        b3.state.0.lock().unwrap().requests.push(req.clone());
                        match &req {
                            proto::bounce::Request::Append {
                                log,
                                queue_id,
                                entry,
                            } => {
                                let q = match log {
                                    proto::bounce::Log::Bounce => Queue::Bounce,
                                    proto::bounce::Log::Defer => Queue::Defer,
                                    proto::bounce::Log::Trace => Queue::Trace,
                                };
                                let id = queue::QueueId::parse(queue_id).unwrap();
                                std::fs::create_dir_all(queue::queue_file_dir(&qdir, q, &id))
                                    .unwrap();
                                let mut f = std::fs::OpenOptions::new()
                                    .create(true)
                                    .append(true)
                                    .open(queue::queue_path(&qdir, q, &id))
                                    .unwrap();
                                writeln!(f, "{} {} {}", entry.recipient, entry.dsn, entry.text)
                                    .unwrap();
                            }
                            proto::bounce::Request::Flush { .. } => {
                                let (m, cv) = &*b3.state;
                                let mut st = m.lock().unwrap();
                                while st.hold_flush {
                                    st = cv.wait(st).unwrap();
                                }
                            }
                            proto::bounce::Request::Warn { .. } => {}
                        }
                        let _ =
                            proto::send(&mut s, &proto::bounce::Reply::Ok { notification: None });
                    });
                }
            });
        }
        b
    }

    fn requests(&self) -> Vec<proto::bounce::Request> {
        self.state.0.lock().unwrap().requests.clone()
    }

    fn release_flush(&self) {
        let (m, cv) = &*self.state;
        m.lock().unwrap().hold_flush = false;
        cv.notify_all();
    }

    fn flushes(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| matches!(r, proto::bounce::Request::Flush { .. }))
            .count()
    }
}

/// A master with qmgr and trivial-rewrite in a temporary instance.
struct Instance(testkit::Instance);

impl std::ops::Deref for Instance {
    type Target = testkit::Instance;
    fn deref(&self) -> &testkit::Instance {
        &self.0
    }
}

impl Instance {
    /// `agents` are the transport names; mail to `user@<name>.test` goes
    /// to private/<name>.
    fn new(agents: &[&str], main_extra: &str) -> Instance {
        Instance::with_type(agents, main_extra, "unix")
    }

    /// With qmgr's master.cf type `unix` (the project's master.cf) or `fifo`
    /// (Postfix's).
    fn with_type(agents: &[&str], main_extra: &str, qmgr_type: &str) -> Instance {
        Instance::with_master(agents, main_extra, qmgr_type, "")
    }

    /// With more master.cf lines (`master_extra`).
    fn with_master(
        agents: &[&str],
        main_extra: &str,
        qmgr_type: &str,
        master_extra: &str,
    ) -> Instance {
        let map: Vec<String> = agents
            .iter()
            .map(|a| format!("{{{a}.test={a}:}}"))
            .collect();
        // qmgr runs with unpriv=n here: the test writes queue files as
        // itself and its stand-in sockets are the test's.
        let mut inst = testkit::Instance::new(
            &format!(
                "inet_interfaces = loopback-only\nmyhostname = host.example.com\n\
                 mydomain = example.com\ntransport_maps = inline:{{ {} }}\n{main_extra}",
                map.join(", ")
            ),
            &format!(
                "qmgr {qmgr_type} n n n 300 1 qmgr\nrewrite unix - - n - - trivial-rewrite\n\
                 {master_extra}"
            ),
        );
        inst.start_master("public/qmgr");
        inst.wait_socket("private/rewrite");
        Instance(inst)
    }

    /// Queues a message (as cleanup does) and wakes qmgr.
    fn submit(&self, sender: &str, rcpts: &[&str]) -> String {
        self.submit_at(sender, rcpts, std::time::SystemTime::now())
    }

    /// Queues a message that arrived at `arrival`.
    fn submit_at(&self, sender: &str, rcpts: &[&str], arrival: std::time::SystemTime) -> String {
        let mut w = queue::enter(&self.qdir).unwrap();
        w.write_all(b"Subject: test\n\nhello\n").unwrap();
        let mut env = Envelope::new(sender, arrival);
        for r in rcpts {
            env.add_recipient(r);
        }
        let id = w.finish(&env).unwrap().id().to_string();
        self.wake(b"I");
        id
    }

    fn wake(&self, what: &[u8]) {
        use std::os::unix::fs::FileTypeExt;
        let path = self.qdir.join("public/qmgr");
        if std::fs::metadata(&path).unwrap().file_type().is_fifo() {
            let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.write_all(what).unwrap();
        } else {
            let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
            s.write_all(what).unwrap();
        }
    }

    fn in_queue(&self, q: Queue, id: &str) -> bool {
        let id = queue::QueueId::parse(id).unwrap();
        queue::queue_path(&self.qdir, q, &id).exists()
    }

    /// In none of the queues qmgr moves files between. Two passes in
    /// opposite orders: a file that qmgr renames while one pass looks
    /// (deferred -> active, say) is seen by the other.
    fn gone(&self, id: &str) -> bool {
        let queues = [Queue::Incoming, Queue::Active, Queue::Deferred];
        queues.iter().all(|q| !self.in_queue(*q, id))
            && queues.iter().rev().all(|q| !self.in_queue(*q, id))
    }

    /// The pid of the latest qmgr from the log.
    fn qmgr_pid(&self) -> Option<i32> {
        let log = self.log();
        let i = log.rfind("postfix/qmgr[")?;
        let rest = log.get(i + 13..)?;
        rest.get(..rest.find(']')?)?.parse().ok()
    }
}

#[test]
fn message_is_delivered_and_removed() {
    skip_unless_ready!("message_is_delivered_and_removed");
    let inst = Instance::new(
        &["local", "multi"],
        "multi_destination_recipient_limit = 2\n",
    );
    let bounce = Bounce::start(&inst.qdir, false);
    let local = Agent::start(
        &inst.qdir,
        "local",
        vec![],
        Script::Answer(Action::Delivered, "2.0.0", "ok"),
    );
    let multi = Agent::start(
        &inst.qdir,
        "multi",
        vec![],
        Script::Answer(Action::Delivered, "2.0.0", "ok"),
    );
    let id = inst.submit(
        "alice@example.org",
        &[
            "bob@localhost",
            "x@multi.test",
            "y@multi.test",
            "z@multi.test",
        ],
    );
    assert!(
        wait_until(Duration::from_secs(10), || inst.gone(&id)),
        "log:\n{}",
        inst.log()
    );
    let log = inst.log();
    assert!(
        log.contains(&format!(
            "{id}: from=<alice@example.org>, size=21, nrcpt=4 (queue active)"
        )),
        "{log}"
    );
    assert!(log.contains(&format!("{id}: removed")), "{log}");
    let reqs = local.requests();
    assert_eq!(reqs.len(), 1);
    let r = reqs.first().unwrap();
    assert_eq!(
        (
            r.queue_name.as_str(),
            r.queue_id.as_str(),
            r.sender.as_str()
        ),
        ("active", id.as_str(), "alice@example.org")
    );
    assert_eq!(r.nexthop, "host.example.com");
    assert_eq!(r.recipients.len(), 1);
    assert_eq!(r.recipients.first().unwrap().address, "bob@localhost");
    // multi: 3 recipients, at most 2 per request.
    let sizes: Vec<usize> = multi
        .requests()
        .iter()
        .map(|r| r.recipients.len())
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), 3);
    assert!(sizes.iter().all(|n| *n <= 2), "{sizes:?}");
    assert!(bounce.requests().is_empty(), "nothing to log");
}

#[test]
fn destination_concurrency_limit_is_respected() {
    skip_unless_ready!("destination_concurrency_limit_is_respected");
    let inst = Instance::new(&["slow"], "slow_destination_concurrency_limit = 2\n");
    let _bounce = Bounce::start(&inst.qdir, false);
    let slow = Agent::start(&inst.qdir, "slow", vec![], Script::Hold);
    let ids: Vec<String> = (0..6)
        .map(|i| inst.submit("a@example.org", &[&format!("u{i}@slow.test")]))
        .collect();
    assert!(
        wait_until(Duration::from_secs(10), || slow.in_flight() == 2),
        "log:\n{}",
        inst.log()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(slow.in_flight(), 2, "no more than the limit in flight");
    slow.release();
    assert!(
        wait_until(Duration::from_secs(10), || ids
            .iter()
            .all(|id| inst.gone(id))),
        "log:\n{}",
        inst.log()
    );
    assert_eq!(slow.max_in_flight(), 2);
    assert_eq!(slow.requests().len(), 6);
}

/// The transport's master.cf maxproc bounds its deliveries in flight
/// across destinations (the service's socket is the test's: master's
/// listener for it is replaced and never used).
#[test]
fn master_cf_maxproc_limits_a_transport() {
    skip_unless_ready!("master_cf_maxproc_limits_a_transport");
    let inst = Instance::with_master(
        &["slow"],
        "transport_maps = inline:{ {a.test=slow:a}, {b.test=slow:b}, {c.test=slow:c} }\n\
         slow_destination_concurrency_limit = 5\ninitial_destination_concurrency = 5\n",
        "unix",
        "slow unix - - n - 2 echo\n",
    );
    let _bounce = Bounce::start(&inst.qdir, false);
    let slow = Agent::start(&inst.qdir, "slow", vec![], Script::Hold);
    let ids: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|d| inst.submit("a@example.org", &[&format!("u@{d}.test")]))
        .collect();
    assert!(
        wait_until(Duration::from_secs(10), || slow.in_flight() == 2),
        "log:\n{}",
        inst.log()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(slow.in_flight(), 2, "no more than maxproc in flight");
    slow.release();
    assert!(
        wait_until(Duration::from_secs(10), || ids
            .iter()
            .all(|id| inst.gone(id))),
        "log:\n{}",
        inst.log()
    );
    assert_eq!(slow.max_in_flight(), 2);
}

#[test]
fn crashing_agent_defers_and_the_message_is_retried() {
    skip_unless_ready!("crashing_agent_defers_and_the_message_is_retried");
    let inst = Instance::new(
        &["crash"],
        "minimal_backoff_time = 1s\nmaximal_backoff_time = 2s\nqueue_run_delay = 1s\n",
    );
    let bounce = Bounce::start(&inst.qdir, false);
    let agent = Agent::start(
        &inst.qdir,
        "crash",
        vec![Script::Crash],
        Script::Answer(Action::Delivered, "2.0.0", "ok"),
    );
    let id = inst.submit("a@example.org", &["u@crash.test"]);
    assert!(
        wait_until(Duration::from_secs(10), || inst.log().contains(
            "status=deferred (delivery temporarily suspended: unknown mail transport error)"
        )),
        "log:\n{}",
        inst.log()
    );
    let log = inst.log();
    assert!(
        log.contains(&format!("{id}: to=<u@crash.test>, relay=none, delay=")),
        "{log}"
    );
    assert!(log.contains("dsn=4.3.0"), "{log}");
    // The defer record reaches the (scripted) bounce service a moment
    // after the log line.
    assert!(wait_until(Duration::from_secs(10), || {
        bounce
        .requests()
        .iter()
        .any(|r| matches!(r,
        proto::bounce::Request::Append { log: proto::bounce::Log::Defer, queue_id, .. } if *queue_id == id))
    }));
    // Retried after the back-off, delivered, removed.
    assert!(
        wait_until(Duration::from_secs(15), || inst.gone(&id)),
        "log:\n{}",
        inst.log()
    );
    assert_eq!(agent.requests().len(), 2);
    // The agent had the request when it died: the retry says it may have
    // delivered (the flag is a mode bit, so it survives deferred/).
    let maybe = |r: &Request| {
        r.attributes
            .contains(&("maybe_delivered".to_string(), "1".to_string()))
    };
    assert!(!maybe(&agent.requests()[0]));
    assert!(maybe(&agent.requests()[1]));
    assert!(inst.log().contains(&format!("{id}: removed")));
    assert!(
        !inst.in_queue(Queue::Defer, &id),
        "defer log removed with the message"
    );
}

#[test]
fn bounced_recipients_are_flushed_before_removal() {
    skip_unless_ready!("bounced_recipients_are_flushed_before_removal");
    let inst = Instance::new(&["bnc"], "");
    let bounce = Bounce::start(&inst.qdir, true);
    let _agent = Agent::start(
        &inst.qdir,
        "bnc",
        vec![],
        Script::Answer(Action::Bounced, "5.1.1", "User unknown"),
    );
    let id = inst.submit("a@example.org", &["u@bnc.test"]);
    assert!(
        wait_until(Duration::from_secs(10), || bounce.flushes() == 1),
        "log:\n{}",
        inst.log()
    );
    let reqs = bounce.requests();
    assert!(reqs.iter().any(|r| matches!(r,
        proto::bounce::Request::Append { log: proto::bounce::Log::Bounce, entry, .. }
            if entry.dsn == "5.1.1" && entry.recipient == "u@bnc.test" && entry.action == "failed")), "{reqs:?}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        inst.in_queue(Queue::Active, &id),
        "removed before the flush was answered"
    );
    bounce.release_flush();
    assert!(
        wait_until(Duration::from_secs(10), || inst.gone(&id)),
        "log:\n{}",
        inst.log()
    );
    assert!(!inst.in_queue(Queue::Bounce, &id));
    // The recipient was marked done: the flush request named the sender.
    assert!(reqs.iter().chain(bounce.requests().iter()).any(|r| matches!(r,
        proto::bounce::Request::Flush { sender, queue_id, .. } if sender == "a@example.org" && *queue_id == id)));
}

#[test]
fn error_transport_bounces_in_qmgr() {
    skip_unless_ready!("error_transport_bounces_in_qmgr");
    let inst = Instance::new(&[], "virtual_alias_domains = alias.test\n");
    let bounce = Bounce::start(&inst.qdir, false);
    let id = inst.submit("a@example.org", &["nobody@alias.test"]);
    assert!(
        wait_until(Duration::from_secs(10), || inst.gone(&id)),
        "log:\n{}",
        inst.log()
    );
    let log = inst.log();
    assert!(
        log.contains("dsn=5.1.1, status=bounced (User unknown in virtual alias table)"),
        "{log}"
    );
    assert_eq!(bounce.flushes(), 1);
}

#[test]
fn killed_qmgr_loses_nothing_and_never_redelivers_done_recipients() {
    skip_unless_ready!("killed_qmgr_loses_nothing_and_never_redelivers_done_recipients");
    let inst = Instance::new(
        &["rs"],
        "rs_destination_recipient_limit = 1\nrs_destination_concurrency_limit = 1\n",
    );
    let _bounce = Bounce::start(&inst.qdir, false);
    let ok = Script::Answer(Action::Delivered, "2.0.0", "ok");
    let agent = Agent::start(&inst.qdir, "rs", vec![ok.clone(), Script::Hold], ok);
    let id = inst.submit("a@example.org", &["r0@rs.test", "r1@rs.test", "r2@rs.test"]);
    // First recipient delivered, the second held in the agent.
    assert!(
        wait_until(Duration::from_secs(10), || agent.requests().len() == 2
            && agent.in_flight() == 1),
        "log:\n{}",
        inst.log()
    );
    let first = agent
        .requests()
        .first()
        .unwrap()
        .recipients
        .first()
        .unwrap()
        .index;
    let pid = inst.qmgr_pid().expect("qmgr pid in the log");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        inst.in_queue(Queue::Active, &id),
        "the message stays in active/"
    );
    // A new qmgr takes the message back from active/ (a trigger
    // connection that sends nothing does not hold it up).
    let _silent = std::os::unix::net::UnixStream::connect(inst.qdir.join("public/qmgr")).unwrap();
    inst.wake(b"I");
    assert!(
        wait_until(Duration::from_secs(15), || inst
            .qmgr_pid()
            .is_some_and(|p| p != pid)
            && agent.requests().len() >= 3),
        "log:\n{}",
        inst.log()
    );
    agent.release();
    assert!(
        wait_until(Duration::from_secs(15), || inst.gone(&id)),
        "log:\n{}",
        inst.log()
    );
    let indices = agent.indices(&id);
    let mut counts: HashMap<u32, usize> = HashMap::new();
    for i in &indices {
        *counts.entry(*i).or_default() += 1;
    }
    assert_eq!(
        counts.get(&first),
        Some(&1),
        "a done recipient was delivered again: {indices:?}"
    );
    for i in 0..3 {
        assert!(
            counts.contains_key(&i),
            "recipient {i} never delivered: {indices:?}"
        );
    }
    // Requests of the first qmgr say nothing; those of the restarted one
    // say the recipients may already have been delivered (the agent held
    // one when qmgr died).
    let maybe = |r: &Request| {
        r.attributes
            .contains(&("maybe_delivered".to_string(), "1".to_string()))
    };
    let requests = agent.requests();
    assert!(!maybe(&requests[0]) && !maybe(&requests[1]));
    assert!(requests[2..].iter().all(maybe), "{requests:?}");
}

#[test]
fn delay_warning_is_sent_once_and_old_mail_expires() {
    skip_unless_ready!("delay_warning_is_sent_once_and_old_mail_expires");
    use std::os::unix::fs::PermissionsExt;
    let inst = Instance::new(
        &["later"],
        "minimal_backoff_time = 1s\nmaximal_backoff_time = 1s\nqueue_run_delay = 1s\n\
         delay_warning_time = 1h\nmaximal_queue_lifetime = 1d\n",
    );
    let bounce = Bounce::start(&inst.qdir, false);
    let agent = Agent::start(
        &inst.qdir,
        "later",
        vec![],
        Script::Answer(Action::Deferred, "4.2.0", "try later"),
    );
    let now = std::time::SystemTime::now();
    let two_hours = now - Duration::from_secs(7200);
    let id = inst.submit_at("a@example.org", &["u@later.test"], two_hours);
    // Two attempts (the second after the 1s back-off), one warning.
    assert!(
        wait_until(Duration::from_secs(15), || agent.requests().len() >= 2),
        "log:\n{}",
        inst.log()
    );
    let warns = || {
        bounce
            .requests()
            .iter()
            .filter(|r| matches!(r, proto::bounce::Request::Warn { .. }))
            .count()
    };
    assert!(wait_until(Duration::from_secs(5), || inst
        .in_queue(Queue::Deferred, &id)));
    assert_eq!(warns(), 1, "{:?}", bounce.requests());
    let qid = queue::QueueId::parse(&id).unwrap();
    let mode = std::fs::metadata(queue::queue_path(&inst.qdir, Queue::Deferred, &qid))
        .unwrap()
        .permissions()
        .mode();
    assert_ne!(mode & 0o010, 0, "warning recorded in the file mode");
    // The next retry time is the file's mtime, in the future.
    let mtime = std::fs::metadata(queue::queue_path(&inst.qdir, Queue::Deferred, &qid))
        .unwrap()
        .modified()
        .unwrap();
    assert!(mtime > now - Duration::from_secs(1));

    // A message older than maximal_queue_lifetime is returned after its attempt.
    let old = inst.submit_at(
        "a@example.org",
        &["v@later.test"],
        now - Duration::from_secs(2 * 86400),
    );
    assert!(
        wait_until(Duration::from_secs(10), || inst.gone(&old)),
        "log:\n{}",
        inst.log()
    );
    let log = inst.log();
    assert!(
        log.contains(&format!(
            "{old}: from=<a@example.org>, status=expired, returned to sender"
        )),
        "{log}"
    );
    assert!(bounce.requests().iter().any(|r| matches!(r,
        proto::bounce::Request::Append { log: proto::bounce::Log::Bounce, queue_id, entry }
            if *queue_id == old && entry.dsn == "4.4.7" && entry.text.contains("message expired: try later"))));
    assert!(bounce.requests().iter().any(|r| matches!(r,
        proto::bounce::Request::Flush { queue_id, .. } if *queue_id == old)));
}

#[test]
fn corrupt_queue_file_is_quarantined() {
    skip_unless_ready!("corrupt_queue_file_is_quarantined");
    use std::os::unix::fs::FileExt;
    let inst = Instance::new(&["local"], "");
    let _bounce = Bounce::start(&inst.qdir, false);
    let local = Agent::start(
        &inst.qdir,
        "local",
        vec![],
        Script::Answer(Action::Delivered, "2.0.0", "ok"),
    );
    // Written complete where qmgr does not look, damaged, then moved
    // into incoming/ (qmgr could take a file from incoming/ before the
    // damage).
    let mut w = queue::enter_queue(&inst.qdir, Queue::Maildrop).unwrap();
    w.write_all(b"Subject: x\n\nbody\n").unwrap();
    let mut env = Envelope::new("a@example.org", std::time::SystemTime::now());
    env.add_recipient("bob@localhost");
    let bad = *w.finish(&env).unwrap().id();
    let path = queue::queue_path(&inst.qdir, Queue::Maildrop, &bad);
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    for off in [8, len / 2, len - 3] {
        f.write_all_at(b"\xff\x00\xff", off).unwrap();
    }
    drop(f);
    queue::rename(&inst.qdir, &bad, Queue::Maildrop, Queue::Incoming).unwrap();
    let good = inst.submit("a@example.org", &["bob@localhost"]);
    assert!(
        wait_until(Duration::from_secs(10), || inst.gone(&good)),
        "log:\n{}",
        inst.log()
    );
    assert!(
        inst.in_queue(Queue::Corrupt, &bad.to_string()),
        "log:\n{}",
        inst.log()
    );
    assert!(
        inst.log().contains(&format!("warning: {bad}")),
        "{}",
        inst.log()
    );
    assert_eq!(local.requests().len(), 1);
}

#[test]
fn defer_transports_wait_for_a_flush() {
    skip_unless_ready!("defer_transports_wait_for_a_flush");
    let inst = Instance::new(
        &["held"],
        "defer_transports = held\nminimal_backoff_time = 1h\nmaximal_backoff_time = 2h\n",
    );
    let _bounce = Bounce::start(&inst.qdir, false);
    let agent = Agent::start(
        &inst.qdir,
        "held",
        vec![],
        Script::Answer(Action::Delivered, "2.0.0", "ok"),
    );
    let id = inst.submit("a@example.org", &["u@held.test"]);
    assert!(
        wait_until(Duration::from_secs(10), || inst
            .in_queue(Queue::Deferred, &id)),
        "log:\n{}",
        inst.log()
    );
    assert!(
        inst.log().contains("status=deferred (deferred transport)"),
        "{}",
        inst.log()
    );
    assert!(agent.requests().is_empty());
    // A scan that respects retry times leaves it; a flush delivers it.
    inst.wake(b"D");
    std::thread::sleep(Duration::from_millis(300));
    assert!(inst.in_queue(Queue::Deferred, &id));
    inst.wake(b"F");
    assert!(
        wait_until(Duration::from_secs(10), || inst.gone(&id)),
        "log:\n{}",
        inst.log()
    );
    assert_eq!(agent.requests().len(), 1);
}

#[test]
fn agent_that_does_not_answer_times_out_and_defers() {
    skip_unless_ready!("agent_that_does_not_answer_times_out_and_defers");
    let inst = Instance::new(
        &["mute"],
        "ipc_timeout = 1s\nminimal_backoff_time = 1h\nmaximal_backoff_time = 2h\n",
    );
    let _bounce = Bounce::start(&inst.qdir, false);
    let _agent = Agent::start(&inst.qdir, "mute", vec![], Script::Hold);
    let id = inst.submit("a@example.org", &["u@mute.test"]);
    assert!(
        wait_until(Duration::from_secs(10), || inst
            .in_queue(Queue::Deferred, &id)),
        "log:\n{}",
        inst.log()
    );
    assert!(
        inst.log().contains("status=deferred (delivery temporarily suspended: lost connection with private/mute: timeout)"),
        "{}",
        inst.log()
    );
}

#[test]
fn incoming_file_waits_while_its_maildrop_source_exists() {
    skip_unless_ready!("incoming_file_waits_while_its_maildrop_source_exists");
    let inst = Instance::new(&["hb"], "");
    let _bounce = Bounce::start(&inst.qdir, false);
    let agent = Agent::start(
        &inst.qdir,
        "hb",
        vec![],
        Script::Answer(Action::Delivered, "2.0.0", "ok"),
    );
    // pickup's maildrop file, not yet removed.
    let mut m = queue::enter_queue(&inst.qdir, Queue::Maildrop).unwrap();
    m.write_all(b"Subject: test\n\nhello\n").unwrap();
    let source = *m
        .finish(&Envelope::new(
            "a@example.org",
            std::time::SystemTime::now(),
        ))
        .unwrap()
        .id();
    // cleanup's queue file from it.
    let mut w = queue::enter(&inst.qdir).unwrap();
    w.write_all(b"Subject: test\n\nhello\n").unwrap();
    let mut env = Envelope::new("a@example.org", std::time::SystemTime::now());
    env.add_recipient("u@hb.test");
    env.set_attribute("maildrop_id", &source.to_string());
    let id = w.finish(&env).unwrap().id().to_string();
    inst.wake(b"I");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(inst.in_queue(Queue::Incoming, &id), "log:\n{}", inst.log());
    assert!(agent.requests().is_empty());
    // pickup removes the maildrop file (and wakes qmgr): delivered.
    queue::remove(&inst.qdir, Queue::Maildrop, &source).unwrap();
    inst.wake(b"I");
    assert!(
        wait_until(Duration::from_secs(10), || inst.gone(&id)),
        "log:\n{}",
        inst.log()
    );
    assert_eq!(agent.indices(&id), vec![0]);
}

#[test]
fn abandoned_incomplete_incoming_file_is_removed_after_a_day() {
    skip_unless_ready!("abandoned_incomplete_incoming_file_is_removed_after_a_day");
    let inst = Instance::new(&["ab"], "");
    // What a cleanup killed mid-message leaves: no complete mark.
    let fresh = {
        let mut w = queue::enter(&inst.qdir).unwrap();
        w.write_all(b"Subject: partial\n").unwrap();
        let id = w.id().to_string();
        std::mem::forget(w);
        id
    };
    let old = {
        let mut w = queue::enter(&inst.qdir).unwrap();
        w.write_all(b"Subject: partial\n").unwrap();
        let id = w.id().to_string();
        let path = w.path().to_path_buf();
        std::mem::forget(w);
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(std::time::SystemTime::now() - Duration::from_secs(2 * 86400))
            .unwrap();
        id
    };
    inst.wake(b"I");
    assert!(
        wait_until(Duration::from_secs(10), || !inst
            .in_queue(Queue::Incoming, &old)),
        "log:\n{}",
        inst.log()
    );
    assert!(
        inst.in_queue(Queue::Incoming, &fresh),
        "a live writer's file stays"
    );
    assert!(
        inst.log()
            .contains(&format!("{old}: removed incomplete queue file"))
    );
}
