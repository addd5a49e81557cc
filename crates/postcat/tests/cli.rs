//! postcat's real binary against a temporary queue.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output};

use queue::{Queue, QueueId};

struct Setup {
    _dir: tempfile::TempDir,
    etc: PathBuf,
    qdir: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let (etc, qdir) = (base.join("etc"), base.join("spool"));
    std::fs::create_dir_all(&etc).unwrap();
    queue::layout::create_or_repair(&qdir, None, None).unwrap();
    std::fs::write(
        etc.join("main.cf"),
        format!("queue_directory = {}\n", qdir.display()),
    )
    .unwrap();
    Setup {
        _dir: dir,
        etc,
        qdir,
    }
}

impl Setup {
    fn postcat(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_postcat"))
            .arg("-c")
            .arg(&self.etc)
            .args(args)
            .env("TZ", "UTC")
            .output()
            .unwrap()
    }

    fn enter(&self, to: Queue, body: &str) -> QueueId {
        let mut w = queue::enter(&self.qdir).unwrap();
        w.write_all(body.as_bytes()).unwrap();
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_435_913);
        let mut env = queue::Envelope::new("alice@example.org", t);
        env.add_recipient("bob@example.org");
        let id = *w.finish(&env).unwrap().id();
        if to != Queue::Incoming {
            queue::rename(&self.qdir, &id, Queue::Incoming, to).unwrap();
        }
        id
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn queue_id_in_any_queue_all_sections() {
    let s = setup();
    let id = s.enter(Queue::Deferred, "Subject: hi\n\nbody\n");
    let out = s.postcat(&["-q", id.as_str()]);
    assert!(out.status.success(), "{out:?}");
    let l = format!("deferred/{id}");
    let expect = format!(
        "*** ENVELOPE RECORDS {l} ***\n\
         message_size: {:>15} {:>15} {:>15} {:>15} {:>15}\n\
         message_arrival_time: Mon Nov 23 12:11:53 2026\n\
         sender: alice@example.org\n\
         original_recipient: bob@example.org\n\
         recipient: bob@example.org\n\
         *** MESSAGE CONTENTS {l} ***\n\
         Subject: hi\n\nbody\n\
         *** HEADER EXTRACTED {l} ***\n\
         *** MESSAGE FILE END {l} ***\n",
        18, 64, 1, 0, 18
    );
    assert_eq!(stdout(&out), expect);
    let out = s.postcat(&["-hq", id.as_str()]);
    assert_eq!(stdout(&out), "Subject: hi\n");
    let out = s.postcat(&["-bq", id.as_str()]);
    assert_eq!(stdout(&out), "\nbody\n");
    let out = s.postcat(&["-eq", id.as_str()]);
    assert!(stdout(&out).starts_with(&format!("*** ENVELOPE RECORDS {l} ***\n")));
    assert!(!stdout(&out).contains("body"));
}

#[test]
fn named_files_and_bad_input() {
    let s = setup();
    let id = s.enter(Queue::Active, "Subject: x\n\ny\n");
    let path = queue::queue_path(&s.qdir, Queue::Active, &id);
    let out = s.postcat(&["-h", path.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "Subject: x\n");
    // A copy outside the queue.
    let copy = s.qdir.join("copy");
    std::fs::copy(&path, &copy).unwrap();
    let out = s.postcat(&["-b", copy.to_str().unwrap()]);
    assert_eq!(stdout(&out), "\ny\n");
    // Garbage, a truncated file, a missing id: errors, no panics.
    std::fs::write(&copy, b"\x00garbage\xff").unwrap();
    let out = s.postcat(&[copy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("postcat: fatal: "));
    let good = std::fs::read(&path).unwrap();
    std::fs::write(&copy, &good[..good.len() - 5]).unwrap();
    let out = s.postcat(&[copy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = s.postcat(&["-q", "0000000000B"]);
    assert_eq!(out.status.code(), Some(1));
    let out = s.postcat(&["-q", "../etc/passwd"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad mail queue ID"));
    let out = s.postcat(&[]);
    assert_eq!(out.status.code(), Some(64));
}

/// std::env::args panics (exit 101) on an argument that is not UTF-8.
#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error() {
    testkit::assert_non_utf8_argument_is_usage_error(env!("CARGO_BIN_EXE_postcat"), "postcat");
}
