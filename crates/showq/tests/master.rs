//! showq under a real master: the listing over public/showq.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use proto::showq::{Reply, Request};
use queue::{Queue, QueueId};

struct Master(Child);

impl Drop for Master {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM);
        let _ = self.0.wait();
    }
}

fn bin_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_BIN_EXE_showq"))
        .parent()?
        .to_path_buf();
    dir.join("master").is_file().then_some(dir)
}

fn enter(qdir: &Path, sender: &str, rcpts: &[&str], body: &str) -> QueueId {
    let mut w = queue::enter(qdir).unwrap();
    w.write_all(body.as_bytes()).unwrap();
    let mut env = queue::Envelope::new(sender, std::time::SystemTime::now());
    for r in rcpts {
        env.add_recipient(r);
    }
    *w.finish(&env).unwrap().id()
}

#[test]
fn lists_every_queue_with_defer_reasons() {
    testkit::need_instance(&["master"]);
    let Some(bin) = bin_dir() else {
        panic!("master is not built: run scripts/test or cargo build --workspace --bins");
    };
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
            bin.display(),
            base.join("maillog").display()
        ),
    )
    .unwrap();
    std::fs::write(etc.join("master.cf"), "showq unix n n n - - showq\n").unwrap();

    let a = enter(&qdir, "alice@x", &["b@y"], "one\n");
    let d = enter(&qdir, "", &["c@y", "d@y"], "two lines\nhere\n");
    queue::rename(&qdir, &d, Queue::Incoming, Queue::Deferred).unwrap();
    let rec = queue::status_log::Record {
        recipient: "d@y".into(),
        reason: "host y said: 452 try later".into(),
        ..Default::default()
    };
    queue::status_log::append(&qdir, Queue::Defer, &d, &rec).unwrap();
    let h = enter(&qdir, "carol@x", &["e@y"], "3\n");
    queue::rename(&qdir, &h, Queue::Incoming, Queue::Hold).unwrap();
    std::fs::write(qdir.join("active/0000000000B"), b"not a queue file").unwrap();

    let _m = Master(
        Command::new(bin.join("master"))
            .arg("-c")
            .arg(&etc)
            .env("MAIL_CONFIG", &etc)
            .spawn()
            .unwrap(),
    );
    let sock = qdir.join("public/showq");
    let end = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < end, "no public/showq");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut s = proto::connect(&qdir, proto::showq::SERVICE).unwrap();
    proto::send(&mut s, &Request::List).unwrap();
    let mut got = Vec::new();
    while let Reply::Entry(m) = proto::recv::<_, Reply>(&mut s).unwrap() {
        got.push(m);
    }
    let summary: Vec<_> = got
        .iter()
        .map(|m| {
            (
                m.queue_name.as_str(),
                m.queue_id.clone(),
                m.size,
                m.recipients.len(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("incoming", a.to_string(), 4, 1),
            ("deferred", d.to_string(), 15, 2),
            ("hold", h.to_string(), 2, 1),
        ]
    );
    assert_eq!(got[1].recipients[0].reason, "");
    assert_eq!(got[1].recipients[1].reason, "host y said: 452 try later");
    // The bad file is left where it is: showq never quarantines.
    assert!(qdir.join("active/0000000000B").exists());
}
