//! Import tests on a scratch queue directory holding real Postfix files.

use super::*;
use std::os::unix::fs::PermissionsExt;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A queue directory with our layout and Postfix files in it.
fn queue_with_postfix_files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    queue::layout::create_or_repair(dir.path(), None, None).unwrap();
    let put = |rel: &str, bytes: &[u8], mode: u32| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    put("deferred/8/87D899A2504", &fixture("deferred-dsn"), 0o700);
    put(
        "defer/8/87D899A2504",
        b"recipient=c@remote.example\n",
        0o600,
    );
    put("hold/9962C9A2503", &fixture("hold"), 0o700);
    put("maildrop/5A1B2C3D4E", &fixture("maildrop"), 0o744);
    put("maildrop/5A1B2C3D4F", &fixture("maildrop-t"), 0o744);
    // Not a message: garbage, and an unfinished file (no execute bit).
    put("deferred/1/1234ABCD", b"\x00\x01garbage", 0o700);
    put("incoming/ABCDEF0123", b"C\x01", 0o600);
    dir
}

fn journal(dir: &Path) -> Journal {
    Journal::open(&dir.join("pid/import.journal")).unwrap()
}

fn ours(dir: &Path, q: Queue) -> Vec<QueueFile> {
    queue::list(dir, q)
        .unwrap()
        .iter()
        .map(|id| QueueFile::open_read_only(dir, q, id).unwrap())
        .collect()
}

#[test]
fn every_message_moves_once_with_its_envelope() {
    let tmp = queue_with_postfix_files();
    let dir = tmp.path();
    let report = run(dir, &mut journal(dir), false);
    assert_eq!(report.imported.len(), 4, "{report:?}");
    assert_eq!(report.left.len(), 1, "{report:?}");
    assert_eq!(report.left[0].0, "deferred/1/1234ABCD");
    assert!(report.left[0].1.contains("first record"), "{report:?}");

    // The deferred message: arrival, sender, the one recipient left, DSN.
    let incoming = ours(dir, Queue::Incoming);
    assert_eq!(incoming.len(), 1);
    let env = incoming[0].envelope();
    assert_eq!(env.sender, "a@example.org");
    assert_eq!(
        (env.arrival_secs, env.arrival_micros),
        (1_796_625_417, 548_217)
    );
    assert_eq!(env.recipients.len(), 1);
    assert_eq!(env.recipients[0].address, "c@remote.example");
    assert_eq!(env.recipients[0].original, "c@remote.example");
    assert_eq!(
        env.recipients[0].dsn_orcpt.as_deref(),
        Some("rfc822;c@remote.example")
    );
    assert_eq!(env.recipients[0].dsn_notify, 10);
    assert_eq!(env.dsn_envid.as_deref(), Some("env-42"));
    assert_eq!(env.dsn_ret, Some(DsnRet::Headers));
    assert_eq!(env.attribute("postfix_queue_id"), Some("87D899A2504"));
    let mut body = String::new();
    incoming[0].content().read_to_string(&mut body).unwrap();
    assert!(body.ends_with("\nline one\n"), "{body}");

    // Held stays held; maildrop files go to our maildrop for pickup.
    let hold = ours(dir, Queue::Hold);
    assert_eq!(hold.len(), 1);
    assert_eq!(hold[0].envelope().sender, "h@example.org");
    let maildrop = ours(dir, Queue::Maildrop);
    assert_eq!(maildrop.len(), 2);
    let drop = maildrop
        .iter()
        .find(|f| f.envelope().sender == "m@example.org")
        .unwrap();
    assert_eq!(drop.envelope().attribute("full_name"), Some("Mail Drop"));
    assert!(drop.envelope().attribute("login_name").is_some());

    // The Postfix files and their defer/ logs are gone; the garbage and
    // the unfinished file are where they were.
    for gone in [
        "deferred/8/87D899A2504",
        "defer/8/87D899A2504",
        "hold/9962C9A2503",
        "maildrop/5A1B2C3D4E",
    ] {
        assert!(!dir.join(gone).exists(), "{gone}");
    }
    assert!(dir.join("deferred/1/1234ABCD").exists());
    assert!(dir.join("incoming/ABCDEF0123").exists());

    // A second run finds only our files and the two it leaves.
    let again = run(dir, &mut journal(dir), false);
    assert!(again.imported.is_empty(), "{again:?}");
    assert_eq!(ours(dir, Queue::Incoming).len(), 1);
    assert_eq!(ours(dir, Queue::Maildrop).len(), 2);
}

#[test]
fn a_crash_after_the_copy_does_not_duplicate() {
    let tmp = queue_with_postfix_files();
    let dir = tmp.path();
    // The copy of the held message made and journaled, then a "crash"
    // before the Postfix file was removed.
    let rel = "hold/9962C9A2503";
    let bytes = fixture("hold");
    let msg = message::parse(&bytes, Shape::Queue).unwrap();
    let env = envelope(&msg, Shape::Queue, 0, "9962C9A2503");
    let ino = std::fs::metadata(dir.join(rel)).unwrap().ino();
    let mut j = journal(dir);
    let id = copy(dir, rel, ino, Queue::Hold, &env, &msg.content, &mut j).unwrap();
    drop(j);
    assert!(dir.join(rel).exists());
    let report = run(dir, &mut journal(dir), false);
    assert!(!dir.join(rel).exists());
    let hold = queue::list(dir, Queue::Hold).unwrap();
    assert_eq!(hold, vec![id], "{report:?}");
    // The journal is emptied once no Postfix file it names is left... but
    // the garbage file was never journaled, so it is empty now.
    assert_eq!(
        std::fs::metadata(dir.join("pid/import.journal"))
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn a_crash_before_the_copy_was_complete_copies_again() {
    let tmp = queue_with_postfix_files();
    let dir = tmp.path();
    let rel = "hold/9962C9A2503";
    let ino = std::fs::metadata(dir.join(rel)).unwrap().ino();
    // Journaled, our file begun but never finished (the writer "died").
    let w = queue::enter_queue(dir, Queue::Hold).unwrap();
    let id = *w.id();
    let mut j = journal(dir);
    j.begin(
        rel,
        Begun {
            inode: ino,
            id,
            queue: Queue::Hold,
        },
    )
    .unwrap();
    std::mem::forget(w);
    drop(j);
    run(dir, &mut journal(dir), false);
    let hold = ours(dir, Queue::Hold);
    assert_eq!(hold.len(), 1);
    assert_ne!(queue::list(dir, Queue::Hold).unwrap(), vec![id]);
    assert!(!dir.join(rel).exists());
}

#[test]
fn pending_bounce_notices_and_dry_runs_change_nothing() {
    let tmp = queue_with_postfix_files();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("bounce/9")).unwrap();
    std::fs::write(dir.join("bounce/9/9962C9A2503"), b"x").unwrap();
    let dry = run(dir, &mut journal(dir), true);
    assert_eq!(dry.imported.len(), 3, "{dry:?}");
    assert!(dry.imported.iter().all(|i| i.id.is_none()));
    assert!(queue::list(dir, Queue::Incoming).unwrap().is_empty());
    assert!(dir.join("deferred/8/87D899A2504").exists());
    let report = run(dir, &mut journal(dir), false);
    assert!(
        report
            .left
            .iter()
            .any(|(f, why)| f == "hold/9962C9A2503" && why.contains("bounce")),
        "{report:?}"
    );
    assert!(dir.join("hold/9962C9A2503").exists());
    assert!(queue::list(dir, Queue::Hold).unwrap().is_empty());
}
