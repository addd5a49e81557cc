//! Issue 14: postmap against Debian's Postfix postmap (/usr/sbin/postmap,
//! run with a private configuration directory).

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const REAL: &str = "/usr/sbin/postmap";

fn run(exe: &str, dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(exe)
        .args(["-c", dir.to_str().unwrap()])
        .args(args)
        .env("MAIL_CONFIG", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn ours(dir: &Path, args: &[&str], stdin: &str) -> Output {
    run(env!("CARGO_BIN_EXE_postmap"), dir, args, stdin)
}

fn real(dir: &Path, args: &[&str], stdin: &str) -> Output {
    testkit::need_program(REAL, "postfix");
    run(REAL, dir, args, stdin)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.cf"), "").unwrap();
    dir
}

/// A Berkeley DB file that Debian's postmap built is refused with a message
/// naming the source and the command that rebuilds it; after that command,
/// btree: and lmdb: name the same table.
#[test]
fn issue14_berkeley_db_file_named_and_btree_lmdb_accepted() {
    let dir = setup();
    let src = dir.path().join("virtual");
    std::fs::write(&src, "a@example.com b@example.net\n").unwrap();
    let spec = format!("hash:{}", src.display());
    let o = real(dir.path(), &[&spec], "");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = ours(dir.path(), &["-q", "a@example.com", &spec], "");
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("Berkeley DB"), "{err}");
    assert!(
        err.contains(&format!("\"postmap hash:{}\"", src.display())),
        "{err}"
    );
    assert!(ours(dir.path(), &[&spec], "").status.success());
    for ty in ["hash", "btree", "lmdb"] {
        let o = ours(
            dir.path(),
            &["-q", "a@example.com", &format!("{ty}:{}", src.display())],
            "",
        );
        assert_eq!(text(&o.stdout), "b@example.net\n", "{ty}: {}", text(&o.stderr));
    }
}
