//! Writer tests, including the crash test that kills real writer processes.

use super::*;
use crate::format::tests::sample_envelope;
use crate::reader::QueueFile;
use std::collections::HashSet;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, UNIX_EPOCH};

fn queue_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    crate::layout::create_or_repair(dir.path(), None, None).unwrap();
    dir
}

#[test]
fn finished_file_is_marked_complete() {
    let q = queue_dir();
    let mut w = enter(q.path()).unwrap();
    w.write_all(b"hello\n").unwrap();
    let path = w.path().to_path_buf();
    let proof = w.finish(&sample_envelope(2)).unwrap();
    assert_eq!(path, queue_path(q.path(), Queue::Incoming, proof.id()));
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o700);
    // No temporary names are left behind.
    let s = crate::scan(q.path(), Queue::Incoming).unwrap();
    assert_eq!(s.ids, vec![*proof.id()]);
    assert!(s.others.is_empty(), "{:?}", s.others);
}

/// Where the file system has O_TMPFILE the file has no name until it is
/// linked under its id; the id carries the file's inode either way.
#[test]
fn new_file_gets_one_name_its_id() {
    let q = queue_dir();
    let dir = Queue::Incoming.dir(q.path());
    let unnamed = open_unnamed(&dir).unwrap();
    if unnamed.is_some() {
        assert!(
            std::fs::read_dir(&dir).unwrap().next().is_none(),
            "an unnamed file shows in incoming/"
        );
    }
    drop(unnamed);
    let w = enter(q.path()).unwrap();
    // While it is written it has its id as its only name in incoming/.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from(w.id().to_string())]);
    // The id ends in the file's inode.
    let inode = std::fs::metadata(w.path()).unwrap().ino();
    let tail = QueueId::new(Duration::ZERO, inode).to_string();
    assert!(
        w.id()
            .to_string()
            .ends_with(&tail[crate::id::TIME_DIGITS..])
    );
}

/// The way for a chroot without /proc: a dot file linked under the id,
/// then removed.
#[test]
fn named_entry_leaves_no_temporary_name() {
    let q = queue_dir();
    let dir = Queue::Incoming.dir(q.path());
    let (file, id, path) = enter_named(q.path(), Queue::Incoming, &dir).unwrap();
    assert_eq!(path, queue_path(q.path(), Queue::Incoming, &id));
    assert_eq!(
        file.metadata().unwrap().ino(),
        std::fs::metadata(&path).unwrap().ino()
    );
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from(id.to_string())]);
}

#[test]
fn maildrop_files_are_readable_by_pickup() {
    // postdrop writes as the user, pickup reads as mail_owner: 0744.
    let q = queue_dir();
    let mut w = enter_queue(q.path(), Queue::Maildrop).unwrap();
    w.write_all(b"hello\n").unwrap();
    let path = w.path().to_path_buf();
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    let _proof = w.finish(&sample_envelope(1)).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o744);
}

/// Set in the maildrop child: the queue directory.
const MAILDROP_CHILD_ENV: &str = "QUEUE_MAILDROP_TEST_DIR";
/// The maildrop child test, run by name.
const MAILDROP_CHILD_TEST: &str = "writer::tests::maildrop_writer_child";

#[test]
fn postdrop_writes_maildrop_without_reading_the_directory() {
    let q = queue_dir();
    let mut w = enter_queue(q.path(), Queue::Maildrop).unwrap();
    w.write_all(b"dropped\n").unwrap();
    let id = *w.finish(&sample_envelope(1)).unwrap().id();
    let qf = QueueFile::open(q.path(), Queue::Maildrop, &id).unwrap();
    assert_eq!(qf.content_len(), 8);
    if !nix::unistd::geteuid().is_root() {
        testkit::skip("needs root to write maildrop/ as a user of its group only");
        return;
    }
    // As postdrop does: a uid with only the directory's group (wx, no r).
    let (uid, gid) = (54_401u32, 54_400u32);
    std::os::unix::fs::chown(q.path().join("maildrop"), Some(0), Some(gid)).unwrap();
    // A copy of this test binary that the other uid can execute.
    let exe = q.path().join("test-binary");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = match Command::new("setpriv")
        .args([format!("--reuid={uid}"), format!("--regid={gid}")])
        .arg("--clear-groups")
        .arg(&exe)
        .args([
            "--exact",
            MAILDROP_CHILD_TEST,
            "--ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(MAILDROP_CHILD_ENV, q.path())
        .current_dir(q.path())
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!("setpriv(1) (util-linux) runs the child as another user: {e}"),
    };
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ids = crate::list(q.path(), Queue::Maildrop).unwrap();
    assert_eq!(ids.len(), 2, "{ids:?}");
    for id in ids {
        QueueFile::open(q.path(), Queue::Maildrop, &id).unwrap();
    }
}

/// Not a test of its own: the postdrop-like writer the test above runs
/// (with `--ignored`).
#[test]
#[ignore = "child process of postdrop_writes_maildrop_without_reading_the_directory"]
fn maildrop_writer_child() {
    let Ok(dir) = std::env::var(MAILDROP_CHILD_ENV) else {
        return;
    };
    // maildrop/ cannot be read: fsync_dir fails and finish() goes on.
    assert!(std::fs::read_dir(Path::new(&dir).join("maildrop")).is_err());
    let mut w = enter_queue(Path::new(&dir), Queue::Maildrop).unwrap();
    w.write_all(b"from a user\n").unwrap();
    let _proof = w.finish(&sample_envelope(1)).unwrap();
}

#[test]
fn unfinished_writer_is_incomplete_then_removed() {
    let q = queue_dir();
    let mut w = enter(q.path()).unwrap();
    w.write_all(b"partial").unwrap();
    w.flush().unwrap();
    let id = *w.id();
    let e = QueueFile::open(q.path(), Queue::Incoming, &id).unwrap_err();
    assert!(matches!(e, Error::Incomplete { .. }), "{e}");
    drop(w);
    assert!(crate::list(q.path(), Queue::Incoming).unwrap().is_empty());

    let w = enter(q.path()).unwrap();
    w.abort().unwrap();
    assert!(crate::list(q.path(), Queue::Incoming).unwrap().is_empty());
}

#[test]
fn oversized_envelope_is_refused_and_file_removed() {
    let q = queue_dir();
    let w = enter(q.path()).unwrap();
    let mut env = sample_envelope(1);
    env.sender = "x".repeat(format::MAX_FIELD_LEN + 1);
    assert!(matches!(w.finish(&env), Err(Error::TooLarge { .. })));
    assert!(crate::list(q.path(), Queue::Incoming).unwrap().is_empty());
}

#[test]
fn ids_unique_and_ordered_across_threads() {
    let q = queue_dir();
    let per_thread: Vec<Vec<QueueId>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    // Writers stay open so every inode stays in use, as
                    // live queue files do.
                    let writers: Vec<QueueWriter> =
                        (0..150).map(|_| enter(q.path()).unwrap()).collect();
                    let ids: Vec<QueueId> = writers.iter().map(|w| *w.id()).collect();
                    // The same name must be on disk until the writers go.
                    for id in &ids {
                        assert!(queue_path(q.path(), Queue::Incoming, id).exists());
                    }
                    ids
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all = HashSet::new();
    for ids in &per_thread {
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "not increasing");
        assert!(ids.windows(2).all(|w| w[0].time() < w[1].time()));
        for id in ids {
            assert!(all.insert(*id), "duplicate {id}");
        }
    }
    let mut sorted: Vec<QueueId> = all.into_iter().collect();
    sorted.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert!(sorted.windows(2).all(|w| w[0].time() <= w[1].time()));
    assert_eq!(sorted.len(), 600);
}

// ---- crash test ----------------------------------------------------------

/// Set in the child: the queue directory to write into.
const CHILD_ENV: &str = "QUEUE_CRASH_TEST_DIR";
/// The child test, run by name.
const CHILD_TEST: &str = "writer::tests::crash_writer_child";

fn crash_envelope(n: u64) -> Envelope {
    let mut e = Envelope::new(
        &format!("seed{n}@crash.test"),
        UNIX_EPOCH + Duration::from_secs(n % 4_000_000_000),
    );
    for i in 0..(n % 4 + 1) {
        e.add_recipient(&format!("r{i}.{n}@example.net"));
    }
    e
}

fn crash_content(n: u64) -> Vec<u8> {
    let size = [10usize, 3_000, 70_000, 600_000][(n % 4) as usize] + (n % 97) as usize;
    (0..size).map(|i| (i as u64 * 31 + n) as u8).collect()
}

/// Not a test of its own: the writer process the crash test starts (with
/// `--ignored`) and kills. Without the environment variable it does
/// nothing.
#[test]
#[ignore = "child process of writer_killed_at_random_points_never_leaves_an_accepted_bad_file"]
fn crash_writer_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let q = Path::new(&dir);
    let base = u64::from(std::process::id()) * 1_000_000;
    let start = Instant::now();
    // A safety limit in case the parent never kills us.
    for k in 0.. {
        if start.elapsed() > Duration::from_secs(5) {
            break;
        }
        let n = base + k;
        let mut w = enter(q).unwrap();
        for chunk in crash_content(n).chunks(8192) {
            w.write_all(chunk).unwrap();
        }
        let _proof = w.finish(&crash_envelope(n)).unwrap();
    }
}

/// Checks one file the reader accepted: byte for byte what was written.
fn verify_intact(qf: &QueueFile) {
    let sender = &qf.envelope().sender;
    let n: u64 = sender
        .strip_prefix("seed")
        .and_then(|s| s.strip_suffix("@crash.test"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("unexpected sender {sender}"));
    assert_eq!(qf.envelope(), &crash_envelope(n));
    let mut content = Vec::new();
    qf.content().read_to_end(&mut content).unwrap();
    assert!(
        content == crash_content(n),
        "content of {} differs",
        qf.id()
    );
}

#[derive(Default, Debug)]
struct CrashCounts {
    accepted: usize,
    incomplete: usize,
    incomplete_but_whole: usize,
    temporary: usize,
}

fn verify_queue(q: &Path, counts: &mut CrashCounts) {
    let s = crate::scan(q, Queue::Incoming).unwrap();
    for other in &s.others {
        let name = other.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".tmp."), "stray {name}");
        counts.temporary += 1;
        std::fs::remove_file(other).unwrap();
    }
    for id in &s.ids {
        match QueueFile::open(q, Queue::Incoming, id) {
            Ok(qf) => {
                verify_intact(&qf);
                counts.accepted += 1;
            }
            Err(Error::Incomplete { .. }) => {
                counts.incomplete += 1;
                // Even ignoring the complete mark, the structure checks
                // accept only a whole file.
                let path = queue_path(q, Queue::Incoming, id);
                let file = std::fs::File::open(&path).unwrap();
                let size = file.metadata().unwrap().len();
                if let Ok(p) = format::parse(&file, size) {
                    let mut content = Vec::new();
                    format::ContentReader::new(&file, &p.layout)
                        .read_to_end(&mut content)
                        .unwrap();
                    let n: u64 = p.envelope.sender[4..p.envelope.sender.len() - 11]
                        .parse()
                        .unwrap();
                    assert_eq!(p.envelope, crash_envelope(n));
                    assert!(content == crash_content(n));
                    counts.incomplete_but_whole += 1;
                }
            }
            Err(e) => panic!("{id}: {e}"),
        }
        crate::remove(q, Queue::Incoming, id).unwrap();
    }
}

#[test]
fn writer_killed_at_random_points_never_leaves_an_accepted_bad_file() {
    let q = queue_dir();
    let exe = std::env::current_exe().unwrap();
    let mut rng = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    let mut counts = CrashCounts::default();
    let start = Instant::now();
    let mut kills = 0;
    // At least 80 rounds, and more (within a time limit) until both a
    // finished file and a kill mid-write were seen: on a loaded machine a
    // child may need longer to start writing.
    let enough = |kills: usize, c: &CrashCounts| {
        kills >= 80 && c.accepted > 0 && c.incomplete + c.temporary > 0
    };
    while !enough(kills, &counts) && start.elapsed() < Duration::from_secs(15) {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                CHILD_TEST,
                "--ignored",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(CHILD_ENV, q.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // xorshift: a different kill point each round.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Kill points spread over the child's start and many files; the
        // range widens each round in case starting is slow here.
        let spread = 60_000 + 500 * kills as u64;
        let delay = Duration::from_micros(2_000 + rng % spread);
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        verify_queue(q.path(), &mut counts);
    }
    println!("crash test: {kills} kills, {counts:?}");
    assert!(kills >= 20, "too few rounds: {kills}");
    assert!(counts.accepted > 0, "no writer finished a file: {counts:?}");
    assert!(
        counts.incomplete + counts.temporary > 0,
        "no kill landed mid-write: {counts:?}"
    );
}
