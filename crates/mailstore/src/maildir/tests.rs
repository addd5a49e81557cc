//! Tests of `maildir`: real files in temporary directories.

use super::*;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

/// A deterministic source of `len` bytes in lines, produced on the fly.
pub(crate) struct Pattern {
    pub(crate) len: u64,
    pub(crate) pos: u64,
}

impl Pattern {
    pub(crate) fn byte(i: u64) -> u8 {
        if i % 73 == 72 {
            b'\n'
        } else {
            b'a' + (i.wrapping_mul(31) % 26) as u8
        }
    }
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.len - self.pos).min(buf.len() as u64) as usize;
        for (k, b) in buf[..n].iter_mut().enumerate() {
            *b = Pattern::byte(self.pos + k as u64);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// A source that fails after `good` bytes.
pub(crate) struct Failing {
    pub(crate) good: usize,
}

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.good == 0 {
            return Err(io::Error::other("queue file read error"));
        }
        let n = self.good.min(buf.len()).min(1000);
        buf[..n].fill(b'x');
        self.good -= n;
        Ok(n)
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn delivers_into_new_with_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("home/bob/Maildir");
    let content = b"Subject: hi\n\nFrom the start\nbody\n";
    let d = deliver(
        &md,
        &Options::default(),
        &[
            "Return-Path: <a@example.org>",
            "Delivered-To: bob@example.org",
        ],
        &mut &content[..],
    )
    .unwrap();
    let mut expected = b"Return-Path: <a@example.org>\nDelivered-To: bob@example.org\n".to_vec();
    expected.extend_from_slice(content);
    assert_eq!(fs::read(&d.path).unwrap(), expected);
    assert_eq!(d.size, expected.len() as u64);
    assert_eq!(d.path.parent().unwrap(), md.join("new"));
    let name = d.path.file_name().unwrap().to_str().unwrap();
    let lines = expected.iter().filter(|&&b| b == b'\n').count();
    let want = format!(",S={},W={}", expected.len(), expected.len() + lines);
    assert!(name.ends_with(&want), "{name}");
    assert!(!name.contains(':') && !name.contains('/'));
    assert!(names(&md.join("tmp")).is_empty());
    for sub in ["tmp", "new", "cur"] {
        let mode = fs::metadata(md.join(sub)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{sub}");
    }
    let mode = fs::metadata(&d.path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn missing_final_newline_is_added() {
    let dir = tempfile::tempdir().unwrap();
    let d = deliver(dir.path(), &Options::default(), &[], &mut &b"a\nb"[..]).unwrap();
    assert_eq!(fs::read(&d.path).unwrap(), b"a\nb\n");
    let e = deliver(dir.path(), &Options::default(), &[], &mut &b""[..]).unwrap();
    assert_eq!(fs::read(&e.path).unwrap(), b"");
}

#[test]
fn delivers_20_mb_streamed() {
    let dir = tempfile::tempdir().unwrap();
    // About 20 MB, whole lines (every 73rd byte is a newline).
    let len = 73 * 287_281;
    let d = deliver(
        dir.path(),
        &Options::default(),
        &[],
        &mut Pattern { len, pos: 0 },
    )
    .unwrap();
    assert_eq!(d.size, len);
    assert_eq!(
        Entry::parse(
            d.path.parent().unwrap(),
            Location::New,
            d.path.file_name().unwrap().to_str().unwrap()
        )
        .unwrap()
        .size,
        Some(len)
    );
    let mut file = io::BufReader::new(File::open(&d.path).unwrap());
    let mut buf = vec![0u8; 1 << 16];
    let mut pos = 0u64;
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        for (k, &b) in buf[..n].iter().enumerate() {
            assert_eq!(b, Pattern::byte(pos + k as u64), "byte {}", pos + k as u64);
        }
        pos += n as u64;
    }
    assert_eq!(pos, len);
}

#[test]
fn unique_names_across_threads() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let dir = Arc::clone(&dir);
            std::thread::spawn(move || {
                for i in 0..50 {
                    let body = format!("thread {t} message {i}\n");
                    deliver(dir.path(), &Options::default(), &[], &mut body.as_bytes()).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let new = names(&dir.path().join("new"));
    assert_eq!(new.len(), 400);
    let mut bodies: Vec<String> = new
        .iter()
        .map(|n| fs::read_to_string(dir.path().join("new").join(n)).unwrap())
        .collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 400);
    assert!(names(&dir.path().join("tmp")).is_empty());
}

#[test]
fn failing_source_leaves_no_tmp_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = deliver(
        dir.path(),
        &Options::default(),
        &["Delivered-To: x@y"],
        &mut Failing { good: 200_000 },
    )
    .unwrap_err();
    assert!(matches!(err, Error::Source { .. }), "{err}");
    assert!(err.is_temporary());
    assert!(names(&dir.path().join("tmp")).is_empty());
    assert!(names(&dir.path().join("new")).is_empty());
}

#[test]
fn size_limit_is_checked_while_streaming() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        size_limit: Some(100_000),
        ..Options::default()
    };
    let err = deliver(
        dir.path(),
        &options,
        &[],
        &mut Pattern {
            len: 100_010,
            pos: 0,
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::SizeLimit { limit: 100_000, .. }),
        "{err}"
    );
    assert_eq!(err.status(), "5.2.2");
    assert!(names(&dir.path().join("tmp")).is_empty());
    assert!(names(&dir.path().join("new")).is_empty());
    let ok = deliver(
        dir.path(),
        &options,
        &[],
        &mut Pattern {
            len: 99_937,
            pos: 0,
        },
    );
    assert_eq!(ok.unwrap().size, 99_937);
    // Postfix's mailbox_size_limit = 0 means no limit.
    let unlimited = Options {
        size_limit: Some(0),
        ..Options::default()
    };
    let big = deliver(
        dir.path(),
        &unlimited,
        &[],
        &mut Pattern {
            len: 146_000,
            pos: 0,
        },
    );
    assert_eq!(big.unwrap().size, 146_000);
}

#[test]
fn prepend_line_with_newline_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = deliver(
        dir.path(),
        &Options::default(),
        &["X: a\nY: b"],
        &mut &b"x\n"[..],
    )
    .unwrap_err();
    assert!(matches!(err, Error::BadPrependLine { .. }));
    assert!(names(&dir.path().join("tmp")).is_empty());
}

#[test]
fn no_create_when_told_not_to() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        create: false,
        ..Options::default()
    };
    let err = deliver(&dir.path().join("none"), &options, &[], &mut &b"x\n"[..]).unwrap_err();
    assert!(matches!(err, Error::Io { .. }));
    assert!(!dir.path().join("none").exists());
}

#[test]
fn a_missing_maildir_or_part_of_one_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("Maildir");
    deliver(&md, &Options::default(), &[], &mut &b"a\n"[..]).unwrap();
    for sub in ["tmp", "new", "cur"] {
        assert!(md.join(sub).is_dir(), "{sub}");
    }
    // new/ and cur/ gone (a user's cleanup): both come back, as with
    // Postfix, and the message is in new/.
    fs::remove_dir_all(md.join("new")).unwrap();
    fs::remove_dir_all(md.join("cur")).unwrap();
    deliver(&md, &Options::default(), &[], &mut &b"b\n"[..]).unwrap();
    assert!(md.join("cur").is_dir());
    assert_eq!(names(&md.join("new")).len(), 1);
}

#[test]
fn list_move_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let md = Maildir::open(dir.path());
    for i in 0..3 {
        md.deliver(&Options::default(), &[], &mut format!("m{i}\n").as_bytes())
            .unwrap();
    }
    // Foreign names: no size, odd flags, dot files skipped.
    fs::write(dir.path().join("cur/123.abc.host:2,SRa"), b"12345").unwrap();
    fs::write(dir.path().join("new/.hidden"), b"").unwrap();
    let list = md.list().unwrap();
    assert_eq!(list.len(), 4);
    assert_eq!(
        list.iter().filter(|e| e.location == Location::New).count(),
        3
    );
    let foreign = list.iter().find(|e| e.location == Location::Cur).unwrap();
    assert_eq!(foreign.flags.as_str(), "RSa");
    assert_eq!(foreign.unique, "123.abc.host");
    assert_eq!(foreign.size, None);
    assert_eq!(foreign.size().unwrap(), 5);

    let first = &list[0];
    assert_eq!(first.size, Some(3));
    assert_eq!(first.crlf_size, Some(4));
    let seen = md.move_to_cur(first, &Flags::new("S")).unwrap();
    assert_eq!(seen.location, Location::Cur);
    assert!(seen.path.to_str().unwrap().ends_with(":2,S"));
    let replied = md
        .set_flags(&seen, &seen.flags.with('R').with('F'))
        .unwrap();
    assert!(replied.path.to_str().unwrap().ends_with(":2,FRS"));
    let mut text = String::new();
    replied.open().unwrap().read_to_string(&mut text).unwrap();
    assert_eq!(text, "m0\n");
    // The stale entry is gone: a second session sees NotFound.
    assert!(matches!(
        md.set_flags(&seen, &Flags::new("T")),
        Err(Error::NotFound { .. })
    ));
    let again = md.list().unwrap();
    let same = again.iter().find(|e| e.unique == first.unique).unwrap();
    assert_eq!(same.flags, Flags::new("SRF"));
    assert_eq!(same.size, Some(3));
    md.remove(same).unwrap();
    assert_eq!(md.list().unwrap().len(), 3);
    assert_eq!(Flags::new("SS RF").without('R').as_str(), "FS");
}

#[test]
fn maildirplusplus_folders() {
    let dir = tempfile::tempdir().unwrap();
    let md = Maildir::open(dir.path());
    create(dir.path()).unwrap();
    let sent = md.create_folder("Sent").unwrap();
    assert!(dir.path().join(".Sent/maildirfolder").is_file());
    for sub in ["tmp", "new", "cur"] {
        assert!(dir.path().join(".Sent").join(sub).is_dir());
    }
    md.create_folder("Lists.rust").unwrap();
    assert!(matches!(
        md.create_folder("Sent"),
        Err(Error::FolderExists { .. })
    ));
    for bad in ["", ".x", "a/b", "a..b", "x.", "a\nb"] {
        assert!(
            matches!(md.create_folder(bad), Err(Error::BadFolderName { .. })),
            "{bad:?}"
        );
    }
    assert_eq!(md.folders().unwrap(), vec!["Lists.rust", "Sent"]);
    sent.deliver(&Options::default(), &[], &mut &b"copy\n"[..])
        .unwrap();
    assert_eq!(sent.list().unwrap().len(), 1);
    md.rename_folder("Sent", "Sent Items").unwrap();
    assert_eq!(md.folders().unwrap(), vec!["Lists.rust", "Sent Items"]);
    assert_eq!(md.folder("Sent Items").unwrap().list().unwrap().len(), 1);
    md.delete_folder("Sent Items").unwrap();
    assert_eq!(md.folders().unwrap(), vec!["Lists.rust"]);
    assert!(matches!(
        md.delete_folder("Nope"),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn hostname_is_escaped() {
    assert_eq!(escape_hostname("a/b:c,d"), "a\\057b\\072c\\054d");
    assert_eq!(escape_hostname(""), "localhost");
    let h = hostname_for_names();
    assert!(!h.contains('/') && !h.contains(':') && !h.is_empty());
}

#[test]
fn tagged_deliveries_are_found_in_new_and_cur() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("Maildir");
    assert_eq!(find_tagged(&dir, "ABC_0").unwrap(), None);
    let options = Options {
        tag: Some("ABC_0".into()),
        ..Options::default()
    };
    let d = deliver(&dir, &options, &[], &mut &b"Subject: x\n\nhi\n"[..]).unwrap();
    assert!(d.path.to_str().unwrap().contains("XABC_0."));
    assert_eq!(find_tagged(&dir, "ABC_0").unwrap(), Some(d.path.clone()));
    // Another recipient index, or a prefix of the id, is not it.
    assert_eq!(find_tagged(&dir, "ABC_1").unwrap(), None);
    assert_eq!(find_tagged(&dir, "AB").unwrap(), None);
    assert_eq!(find_tagged(&dir, "BC_0").unwrap(), None);
    // A reader moved it to cur/ with flags: still found.
    let md = Maildir::open(&dir);
    let entry = md.list().unwrap().pop().unwrap();
    let moved = md.move_to_cur(&entry, &Flags::new("S")).unwrap();
    assert_eq!(find_tagged(&dir, "ABC_0").unwrap(), Some(moved.path));
    // A tag with other characters stays out of the name.
    let options = Options {
        tag: Some("../x".into()),
        ..Options::default()
    };
    let d = deliver(&dir, &options, &[], &mut &b"x\n"[..]).unwrap();
    assert!(
        !d.path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .contains("X../x")
    );
    assert_eq!(find_tagged(&dir, "../x").unwrap(), None);
}
