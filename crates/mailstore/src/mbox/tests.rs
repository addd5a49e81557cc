//! Tests of `mbox`: real files in temporary directories.

use super::*;
use crate::maildir::tests::{Failing, Pattern};
use proptest::prelude::*;
use std::fs;
use std::os::unix::fs::symlink;
use std::sync::Arc;
use std::time::Duration;

fn quick() -> Options {
    Options {
        lock: LockOptions {
            attempts: 200,
            delay: Duration::from_millis(50),
            stale_after: Duration::from_secs(300),
        },
        time: Some(UNIX_EPOCH + Duration::from_secs(1_763_900_000)),
        utc_offset: Some(0),
        ..Options::default()
    }
}

/// Every message of the mbox at `path`, un-quoted.
fn read_all(path: &Path, quoting: Quoting) -> Vec<(MboxMessage, Vec<u8>)> {
    let file = open_for_reading(path).unwrap();
    let list: Vec<MboxMessage> = messages(&file, quoting).map(|m| m.unwrap()).collect();
    list.into_iter()
        .map(|m| {
            let mut body = Vec::new();
            open_message(&file, &m, quoting)
                .unwrap()
                .read_to_end(&mut body)
                .unwrap();
            assert_eq!(body.len() as u64, m.unquoted_length());
            (m, body)
        })
        .collect()
}

#[test]
fn asctime_matches_libc() {
    assert_eq!(asctime(0), "Thu Jan  1 00:00:00 1970");
    assert_eq!(asctime(1_763_900_000), "Sun Nov 23 12:13:20 2025");
    assert_eq!(asctime(951_782_400), "Tue Feb 29 00:00:00 2000");
    assert_eq!(asctime(4_102_444_800), "Fri Jan  1 00:00:00 2100");
    assert_eq!(asctime(-1), "Wed Dec 31 23:59:59 1969");
    let t = UNIX_EPOCH + Duration::from_secs(1_763_900_000);
    assert_eq!(
        from_line("", t, 0),
        "From MAILER-DAEMON  Sun Nov 23 12:13:20 2025\n"
    );
    assert_eq!(
        from_line("a b@x", t, 3600),
        "From a_b@x  Sun Nov 23 13:13:20 2025\n"
    );
}

#[test]
fn delivers_with_from_quoting_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bob");
    let first = b"Subject: one\n\nFrom the top\n>From already\nnot From here\nFrom";
    let d = deliver(
        &path,
        &quick(),
        "alice@example.org",
        &[
            "Return-Path: <alice@example.org>",
            "Delivered-To: bob@example.org",
        ],
        &mut &first[..],
    )
    .unwrap();
    assert_eq!(d.offset, 0);
    let second = b"Subject: two\n\nbody\n";
    let d2 = deliver(&path, &quick(), "", &[], &mut &second[..]).unwrap();
    let text = fs::read(&path).unwrap();
    assert_eq!(d2.offset, d.size);
    assert_eq!(text.len() as u64, d.size + d2.size);
    let expected = "From alice@example.org  Sun Nov 23 12:13:20 2025\n\
         Return-Path: <alice@example.org>\n\
         Delivered-To: bob@example.org\n\
         Subject: one\n\n>From the top\n>From already\nnot From here\nFrom\n\n\
         From MAILER-DAEMON  Sun Nov 23 12:13:20 2025\n\
         Subject: two\n\nbody\n\n";
    assert_eq!(String::from_utf8(text).unwrap(), expected);
    let all = read_all(&path, Quoting::Mboxo);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].0.sender(), b"alice@example.org");
    assert_eq!(all[0].0.from_offset, 0);
    assert_eq!(
        all[0].1,
        b"Return-Path: <alice@example.org>\nDelivered-To: bob@example.org\n\
          Subject: one\n\nFrom the top\nFrom already\nnot From here\nFrom\n"
    );
    assert_eq!(all[0].0.lines, 8);
    assert_eq!(all[0].0.quoted_lines, 2);
    assert_eq!(all[1].0.sender(), b"MAILER-DAEMON");
    assert_eq!(all[1].0.from_offset, d2.offset);
    assert_eq!(all[1].1, second);
    assert_eq!(all[1].0.lines, 3);
    // No lock file is left.
    assert!(!dir.path().join("bob.lock").exists());
    let mode = fs::metadata(&path).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
}

#[test]
fn reader_handles_long_lines_and_junk() {
    let mut text = b"junk before\n\n".to_vec();
    text.extend_from_slice(b"From ");
    text.extend(std::iter::repeat_n(b'x', 3 * LINE_PIECE_LIMIT));
    text.extend_from_slice(b"\nSubject: a\n\n");
    let long = vec![b'y'; 5 * LINE_PIECE_LIMIT + 3];
    text.extend_from_slice(&long);
    text.extend_from_slice(b"\nFrom inside a long line is no separator\n\nFrom b  date\nx\n\n");
    let all: Vec<MboxMessage> = messages(&text[..], Quoting::Mboxo)
        .map(|m| m.unwrap())
        .collect();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].from_line.len(), FROM_LINE_LIMIT);
    let mut first = Vec::new();
    open_message(io::Cursor::new(&text), &all[0], Quoting::Mboxo)
        .unwrap()
        .read_to_end(&mut first)
        .unwrap();
    let mut expected = b"Subject: a\n\n".to_vec();
    expected.extend_from_slice(&long);
    expected.extend_from_slice(b"\nFrom inside a long line is no separator\n");
    assert_eq!(first, expected);
    assert_eq!(all[1].sender(), b"b");
    assert_eq!(all[1].length, 2);
    assert!(messages(&b""[..], Quoting::Mboxo).next().is_none());
}

#[test]
fn mailbox_without_closing_blank_line_is_padded() {
    let dir = tempfile::tempdir().unwrap();
    for (old, pad) in [
        (&b"From x  d\nbody"[..], &b"\n\n"[..]),
        (b"From x  d\nbody\n", b"\n"),
        (b"From x  d\nbody\n\n", b""),
        (b"\n", b""),
        (b"x", b"\n\n"),
    ] {
        let path = dir.path().join("bob");
        fs::write(&path, old).unwrap();
        deliver(&path, &quick(), "a@b", &[], &mut &b"new\n"[..]).unwrap();
        let text = fs::read(&path).unwrap();
        let mut want = old.to_vec();
        want.extend_from_slice(pad);
        want.extend_from_slice(b"From a@b  Sun Nov 23 12:13:20 2025\nnew\n\n");
        assert_eq!(text, want);
        let all = read_all(&path, Quoting::Mboxo);
        assert_eq!(all.last().unwrap().1, b"new\n");
        fs::remove_file(&path).unwrap();
    }
}

#[test]
fn failing_source_leaves_mbox_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bob");
    deliver(
        &path,
        &quick(),
        "a@b",
        &[],
        &mut &b"Subject: kept\n\nok\n"[..],
    )
    .unwrap();
    let before = fs::read(&path).unwrap();
    let err = deliver(&path, &quick(), "a@b", &[], &mut Failing { good: 300_000 }).unwrap_err();
    assert!(matches!(err, Error::Source { .. }), "{err}");
    assert!(err.is_temporary());
    assert_eq!(fs::read(&path).unwrap(), before);
    assert!(!dir.path().join("bob.lock").exists());
    // A new mailbox that fails stays empty.
    let fresh = dir.path().join("carol");
    deliver(&fresh, &quick(), "a@b", &[], &mut Failing { good: 10 }).unwrap_err();
    assert_eq!(fs::read(&fresh).unwrap(), b"");
}

#[test]
fn size_limit_truncates_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bob");
    deliver(&path, &quick(), "a@b", &[], &mut &b"small\n"[..]).unwrap();
    let before = fs::read(&path).unwrap();
    let options = Options {
        size_limit: Some(50_000),
        ..quick()
    };
    let err = deliver(
        &path,
        &options,
        "a@b",
        &[],
        &mut Pattern {
            len: 60_000,
            pos: 0,
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::SizeLimit { limit: 50_000, .. }),
        "{err}"
    );
    assert!(!err.is_temporary());
    assert_eq!(fs::read(&path).unwrap(), before);
    deliver(
        &path,
        &options,
        "a@b",
        &[],
        &mut Pattern {
            len: 40_000,
            pos: 0,
        },
    )
    .unwrap();
}

#[test]
fn symlink_and_other_non_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    fs::write(&target, b"precious\n").unwrap();
    let link = dir.path().join("bob");
    symlink(&target, &link).unwrap();
    let err = deliver(&link, &quick(), "a@b", &[], &mut &b"x\n"[..]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotRegularFile {
                kind: FileKind::Symlink,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.status(), "5.2.0");
    assert_eq!(fs::read(&target).unwrap(), b"precious\n");
    // A dangling symlink is not followed to create a file either.
    let dangling = dir.path().join("carol");
    symlink(dir.path().join("elsewhere"), &dangling).unwrap();
    assert!(deliver(&dangling, &quick(), "a@b", &[], &mut &b"x\n"[..]).is_err());
    assert!(!dir.path().join("elsewhere").exists());
    // A directory.
    let sub = dir.path().join("dave");
    fs::create_dir(&sub).unwrap();
    let err = deliver(&sub, &quick(), "a@b", &[], &mut &b"x\n"[..]).unwrap_err();
    assert!(
        matches!(err, Error::NotRegularFile { .. } | Error::Io { .. }),
        "{err}"
    );
    // A FIFO.
    let fifo = dir.path().join("erin");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let err = deliver(&fifo, &quick(), "a@b", &[], &mut &b"x\n"[..]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotRegularFile {
                kind: FileKind::Fifo,
                ..
            }
        ),
        "{err}"
    );
    // A hard-linked mailbox.
    let hard = dir.path().join("frank");
    fs::hard_link(&target, &hard).unwrap();
    let err = deliver(&hard, &quick(), "a@b", &[], &mut &b"x\n"[..]).unwrap_err();
    assert!(matches!(err, Error::HardLinked { links: 2, .. }), "{err}");
    assert_eq!(fs::read(&target).unwrap(), b"precious\n");
    // Reading refuses a symlink too.
    assert!(matches!(
        lock(&link, &quick()),
        Err(Error::NotRegularFile {
            kind: FileKind::Symlink,
            ..
        })
    ));
    assert!(matches!(
        open_for_reading(&link),
        Err(Error::NotRegularFile {
            kind: FileKind::Symlink,
            ..
        })
    ));
}

#[test]
fn new_mailbox_gets_owner_as_root() {
    if !nix::unistd::geteuid().is_root() {
        testkit::skip("needs root because it gives a new mailbox to another uid");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nobody");
    let options = Options {
        owner: Some((65534, 65534)),
        expected_owner: Some(65534),
        ..quick()
    };
    deliver(&path, &options, "a@b", &[], &mut &b"x\n"[..]).unwrap();
    let meta = fs::metadata(&path).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
    // The second delivery finds it owned as expected.
    deliver(&path, &options, "a@b", &[], &mut &b"y\n"[..]).unwrap();
    assert_eq!(read_all(&path, Quoting::Mboxo).len(), 2);
}

#[test]
fn wrong_owner_is_deferred() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bob");
    fs::write(&path, b"").unwrap();
    let me = nix::unistd::geteuid().as_raw();
    let options = Options {
        expected_owner: Some(me.wrapping_add(1)),
        ..quick()
    };
    let err = deliver(&path, &options, "a@b", &[], &mut &b"x\n"[..]).unwrap_err();
    assert!(matches!(err, Error::WrongOwner { .. }));
    assert!(err.is_temporary());
    let options = Options {
        expected_owner: Some(me),
        ..quick()
    };
    deliver(&path, &options, "a@b", &[], &mut &b"x\n"[..]).unwrap();
}

#[test]
fn stale_dotlock_is_broken_fresh_one_waits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bob");
    let lock = dir.path().join("bob.lock");
    fs::write(&lock, b"").unwrap();
    let short = Options {
        lock: LockOptions {
            attempts: 3,
            delay: Duration::from_millis(20),
            stale_after: Duration::from_secs(300),
        },
        ..quick()
    };
    let err = deliver(&path, &short, "a@b", &[], &mut &b"x\n"[..]).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    assert_eq!(err.status(), "4.2.0");
    assert!(lock.exists());
    assert_eq!(fs::read(&path).ok().unwrap_or_default(), b"");
    File::options()
        .write(true)
        .open(&lock)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(600))
        .unwrap();
    deliver(&path, &short, "a@b", &[], &mut &b"x\n"[..]).unwrap();
    assert!(!lock.exists());
    assert_eq!(read_all(&path, Quoting::Mboxo).len(), 1);
}

#[test]
fn mailbox_replaced_while_waiting_gets_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bob");
    fs::write(&path, b"From a  d\nold\n\n").unwrap();
    let holder = File::options().read(true).write(true).open(&path).unwrap();
    crate::lock::fcntl_lock(&holder, &path, &LockOptions::default()).unwrap();
    let options = Options {
        dotlock: DotlockPolicy::Off,
        ..quick()
    };
    let writer = {
        let path = path.clone();
        std::thread::spawn(move || deliver(&path, &options, "a@b", &[], &mut &b"x\n"[..]))
    };
    std::thread::sleep(Duration::from_millis(150));
    // An MUA rewrites the mailbox by rename, then unlocks.
    let fresh = dir.path().join("bob.new");
    fs::write(&fresh, b"From a  d\nrewritten\n\n").unwrap();
    fs::rename(&fresh, &path).unwrap();
    drop(holder);
    writer.join().unwrap().unwrap();
    let all = read_all(&path, Quoting::Mboxo);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].1, b"rewritten\n");
    assert_eq!(all[1].1, b"x\n");
}

#[test]
fn foreign_fcntl_lock_is_respected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bob");
    let holder = File::create(&path).unwrap();
    crate::lock::fcntl_lock(&holder, &path, &LockOptions::default()).unwrap();
    let short = Options {
        lock: LockOptions {
            attempts: 2,
            delay: Duration::from_millis(20),
            stale_after: Duration::from_secs(300),
        },
        ..quick()
    };
    let err = deliver(&path, &short, "a@b", &[], &mut &b"x\n"[..]).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    // The dotlock taken before the fcntl lock was released.
    assert!(!dir.path().join("bob.lock").exists());
    drop(holder);
    deliver(&path, &short, "a@b", &[], &mut &b"x\n"[..]).unwrap();
}

/// A body that identifies its writer and message on every line and is
/// large enough to need many write() calls.
fn tagged_body(writer: &str, n: usize) -> Vec<u8> {
    let mut body = format!("Subject: {writer} {n}\n\n").into_bytes();
    let lines = if n.is_multiple_of(5) { 4000 } else { 20 };
    for i in 0..lines {
        body.extend_from_slice(format!("{writer} {n} line {i}\n").as_bytes());
        if i % 7 == 0 {
            body.extend_from_slice(format!("From {writer} {n} {i}\n").as_bytes());
        }
    }
    body
}

fn check_tagged(path: &Path, writers: &[String], per_writer: usize) {
    let all = read_all(path, Quoting::Mboxo);
    assert_eq!(all.len(), writers.len() * per_writer);
    let mut seen = std::collections::HashSet::new();
    for (_, body) in &all {
        let text = String::from_utf8(body.clone()).unwrap();
        let subject = text
            .lines()
            .next()
            .unwrap()
            .strip_prefix("Subject: ")
            .unwrap();
        let (w, n) = subject.split_once(' ').unwrap();
        let n: usize = n.parse().unwrap();
        assert_eq!(body, &tagged_body(w, n), "message {subject} damaged");
        assert!(seen.insert((w.to_string(), n)), "{subject} twice");
    }
}

#[test]
fn concurrent_threads_never_interleave() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let writers: Vec<String> = (0..4).map(|t| format!("t{t}")).collect();
    let handles: Vec<_> = writers
        .iter()
        .cloned()
        .map(|w| {
            let dir = Arc::clone(&dir);
            std::thread::spawn(move || {
                let path = dir.path().join("bob");
                for n in 0..15 {
                    let body = tagged_body(&w, n);
                    deliver(&path, &quick(), "a@b", &[], &mut &body[..]).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    check_tagged(&dir.path().join("bob"), &writers, 15);
}

#[test]
fn locked_reader_removes_messages_and_blocks_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bob");
    assert!(matches!(lock(&path, &quick()), Err(Error::NotFound { .. })));
    for n in 0..6 {
        let body = tagged_body("w", n);
        deliver(&path, &quick(), "a@b", &[], &mut &body[..]).unwrap();
    }
    let mut held = lock(&path, &quick()).unwrap();
    let list = held.messages().unwrap();
    assert_eq!(list.len(), 6);
    let mut third = Vec::new();
    held.open_message(&list[2])
        .unwrap()
        .read_to_end(&mut third)
        .unwrap();
    assert_eq!(third, tagged_body("w", 2));
    // A delivery meanwhile waits and then defers.
    let short = Options {
        lock: LockOptions {
            attempts: 2,
            delay: Duration::from_millis(20),
            stale_after: Duration::from_secs(300),
        },
        ..quick()
    };
    let err = deliver(&path, &short, "a@b", &[], &mut &b"x\n"[..]).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }));
    // Remove the first, two middle ones and the last.
    let doomed: Vec<u64> = [0, 2, 3, 5].iter().map(|&i| list[i].from_offset).collect();
    held.remove_messages(&doomed).unwrap();
    held.remove_messages(&[]).unwrap();
    drop(held);
    assert!(!dir.path().join("bob.lock").exists());
    let left = read_all(&path, Quoting::Mboxo);
    assert_eq!(left.len(), 2);
    assert_eq!(left[0].1, tagged_body("w", 1));
    assert_eq!(left[1].1, tagged_body("w", 4));
    deliver(&path, &short, "a@b", &[], &mut &b"x\n"[..]).unwrap();
    assert_eq!(read_all(&path, Quoting::Mboxo).len(), 3);
}

const CHILD_ENV: &str = "MAILSTORE_TEST_CHILD_MBOX";

/// Runs only as a child of concurrent_processes_never_interleave (with
/// `--ignored`); not a test of its own.
#[test]
#[ignore = "child process of concurrent_processes_never_interleave"]
fn child_writer() {
    let (Ok(path), Ok(name)) = (
        std::env::var(CHILD_ENV),
        std::env::var("MAILSTORE_TEST_WRITER"),
    ) else {
        return;
    };
    for n in 0..15 {
        let body = tagged_body(&name, n);
        deliver(Path::new(&path), &quick(), "a@b", &[], &mut &body[..]).unwrap();
    }
}

#[test]
fn concurrent_processes_never_interleave() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bob");
    let exe = std::env::current_exe().unwrap();
    let writers: Vec<String> = (0..3).map(|p| format!("p{p}")).collect();
    let children: Vec<_> = writers
        .iter()
        .map(|w| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "mbox::tests::child_writer",
                    "--ignored",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, &path)
                .env("MAILSTORE_TEST_WRITER", w)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    check_tagged(&path, &writers, 15);
}

/// Lines that exercise quoting: From_ look-alikes, `>` runs, blanks.
fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        Just(b"From x".to_vec()),
        Just(b"From ".to_vec()),
        Just(b">From y".to_vec()),
        Just(b">>From z".to_vec()),
        Just(b"From".to_vec()),
        Just(b">".to_vec()),
        Just(Vec::new()),
        Just(b"\r".to_vec()),
        proptest::collection::vec(any::<u8>().prop_filter("no LF", |b| *b != b'\n'), 0..40),
    ];
    (proptest::collection::vec(line, 0..30), any::<bool>()).prop_map(|(lines, end)| {
        let mut body = lines.join(&b'\n');
        if end && !body.is_empty() {
            body.push(b'\n');
        }
        body
    })
}

/// What a message reads back as: the last line ended.
fn normalized(body: &[u8]) -> Vec<u8> {
    let mut v = body.to_vec();
    if !v.is_empty() && v.last() != Some(&b'\n') {
        v.push(b'\n');
    }
    v
}

fn mboxo_safe(body: &[u8]) -> bool {
    !body.split(|&b| b == b'\n').any(|l| {
        let rest = l.iter().skip_while(|&&b| b == b'>');
        l.first() == Some(&b'>') && rest.copied().collect::<Vec<u8>>().starts_with(b"From ")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn reader_never_panics_and_stays_in_bounds(
        text in proptest::collection::vec(
            prop_oneof![
                Just(b"From a  d\n".to_vec()),
                Just(b"\n".to_vec()),
                Just(b">From b\n".to_vec()),
                Just(b"\r\n".to_vec()),
                proptest::collection::vec(any::<u8>(), 0..30),
            ],
            0..40,
        ).prop_map(|parts| parts.concat())
    ) {
        for quoting in [Quoting::Mboxo, Quoting::Mboxrd] {
            let mut previous_end = 0u64;
            for m in messages(&text[..], quoting) {
                let m = m.unwrap();
                prop_assert!(m.from_offset >= previous_end);
                prop_assert!(m.offset > m.from_offset);
                let end = m.offset + m.length;
                prop_assert!(end <= text.len() as u64);
                previous_end = end;
                let mut body = Vec::new();
                open_message(io::Cursor::new(&text), &m, quoting)
                    .unwrap()
                    .read_to_end(&mut body)
                    .unwrap();
                prop_assert_eq!(body.len() as u64, m.unquoted_length());
            }
        }
    }

    #[test]
    fn mboxrd_round_trips_any_body(bodies in proptest::collection::vec(body_strategy(), 1..4)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bob");
        let options = Options { quoting: Quoting::Mboxrd, ..quick() };
        for body in &bodies {
            deliver(&path, &options, "a@b", &["Delivered-To: bob@x"], &mut &body[..]).unwrap();
        }
        let all = read_all(&path, Quoting::Mboxrd);
        prop_assert_eq!(all.len(), bodies.len());
        for ((_, got), body) in all.iter().zip(&bodies) {
            let mut want = b"Delivered-To: bob@x\n".to_vec();
            want.extend_from_slice(&normalized(body));
            prop_assert_eq!(got, &want);
        }
    }

    #[test]
    fn mboxo_round_trips_bodies_without_quoted_lines(
        bodies in proptest::collection::vec(body_strategy().prop_filter("mboxo-safe", |b| mboxo_safe(b)), 1..4)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bob");
        for body in &bodies {
            deliver(&path, &quick(), "a@b", &[], &mut &body[..]).unwrap();
        }
        let all = read_all(&path, Quoting::Mboxo);
        prop_assert_eq!(all.len(), bodies.len());
        for ((_, got), body) in all.iter().zip(&bodies) {
            prop_assert_eq!(got, &normalized(body));
        }
    }
}

#[test]
fn find_delivery_needs_the_recipient_and_the_queue_id_in_one_header() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bob");
    assert!(!find_delivery(&path, "bob@example.org", "4ABCD").unwrap());
    let msg = |to: &str, id: &str| {
        format!(
            "Received: by host (Postfix, from userid 0)\n\tid {id}; Mon, 23 Nov 2026\nSubject: s\n\nbody id 4ABCD;\nDelivered-To: bob@example.org\n"
        )
        .replace("\nSubject", &format!("\nDelivered-To: {to}\nSubject"))
    };
    let deliver1 = |to: &str, id: &str| {
        let lines = [format!("Delivered-To: {to}")];
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        deliver(
            &path,
            &quick(),
            "alice@example.org",
            &lines,
            &mut msg(to, id).as_bytes(),
        )
        .unwrap();
    };
    deliver1("carol@example.org", "4ABCD");
    deliver1("bob@example.org", "4ABCDE");
    // The body of the first names both, but only headers count; ids differ.
    assert!(!find_delivery(&path, "bob@example.org", "4ABCD").unwrap());
    deliver1("Bob@Example.org", "4ABCD");
    assert!(find_delivery(&path, "bob@example.org", "4ABCD").unwrap());
    assert!(find_delivery(&path, "carol@example.org", "4ABCD").unwrap());
    assert!(!find_delivery(&path, "dave@example.org", "4ABCD").unwrap());
    // A huge header line is read past without being kept.
    let long = format!("X-Long: {}\n", "y".repeat(3_000_000));
    let lines = ["Delivered-To: erin@example.org"];
    let text = format!("{long}Received: by h\n\tid 4XYZ;\n\nb\n");
    deliver(&path, &quick(), "a@b", &lines, &mut text.as_bytes()).unwrap();
    assert!(find_delivery(&path, "erin@example.org", "4XYZ").unwrap());
}
