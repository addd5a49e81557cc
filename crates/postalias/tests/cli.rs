//! postalias's real binary on temporary aliases files.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn postalias(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_postalias"))
        .arg("-c")
        .arg(dir)
        .args(args)
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

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn build_query_show_delete() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.cf"), "").unwrap();
    let src = dir.path().join("aliases");
    std::fs::write(
        &src,
        "# system aliases\n\
         MAILER-DAEMON: postmaster\n\
         postmaster: root\n\
         root: alice,\n  bob\n\
         \"john doe\": |/usr/bin/vacation\n\
         nocolon here\n",
    )
    .unwrap();
    let spec = format!("hash:{}", src.display());
    let o = postalias(dir.path(), &[&spec], "");
    assert!(o.status.success(), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("postalias: warning: {}, line 7: ", src.display())),
        "{err}"
    );
    assert!(dir.path().join("aliases.db").exists());

    let o = postalias(dir.path(), &["-q", "ROOT", &spec], "");
    assert!(o.status.success());
    assert_eq!(out(&o), "alice, bob\n");
    let o = postalias(
        dir.path(),
        &["-q", "mailer-daemon", src.to_str().unwrap()],
        "",
    );
    assert_eq!(out(&o), "postmaster\n");
    let o = postalias(dir.path(), &["-q", "john doe", &spec], "");
    assert_eq!(out(&o), "|/usr/bin/vacation\n");
    // Postfix's completeness sentinel.
    let o = postalias(dir.path(), &["-q", "@", &spec], "");
    assert_eq!(out(&o), "@\n");
    let o = postalias(dir.path(), &["-q", "nobody", &spec], "");
    assert_eq!(o.status.code(), Some(1));

    let o = postalias(dir.path(), &["-s", &spec], "");
    let shown = out(&o);
    assert!(shown.contains("root:\talice, bob\n"), "{shown}");
    assert!(shown.contains("@:\t@\n"), "{shown}");

    let o = postalias(
        dir.path(),
        &["-q", "-", &spec],
        "root\nnobody\npostmaster\n",
    );
    assert_eq!(out(&o), "root:\talice, bob\npostmaster:\troot\n");

    let o = postalias(dir.path(), &["-d", "root", &spec], "");
    assert!(o.status.success());
    let o = postalias(dir.path(), &["-q", "root", &spec], "");
    assert_eq!(o.status.code(), Some(1));

    let o = postalias(dir.path(), &["-i", &spec], "new: carol\n");
    assert!(o.status.success(), "{o:?}");
    let o = postalias(dir.path(), &["-q", "new", &spec], "");
    assert_eq!(out(&o), "carol\n");
    let o = postalias(dir.path(), &["-q", "postmaster", &spec], "");
    assert_eq!(out(&o), "root\n");
}

#[test]
fn errors_are_fatal_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.cf"), "").unwrap();
    let missing = dir.path().join("nope");
    let o = postalias(dir.path(), &[missing.to_str().unwrap()], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("postalias: fatal: "));
    let bin = dir.path().join("bin");
    std::fs::write(&bin, b"\x00\xff\xfe:\n\"\n:\n a\n").unwrap();
    let o = postalias(dir.path(), &[bin.to_str().unwrap()], "");
    assert!(o.status.success(), "{o:?}");
    let o = postalias(dir.path(), &[], "");
    assert_eq!(o.status.code(), Some(1));
}

/// std::env::args panics (exit 101) on an argument that is not UTF-8.
#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error() {
    testkit::assert_non_utf8_argument_is_usage_error(env!("CARGO_BIN_EXE_postalias"), "postalias");
}

/// Issue 14: `-s` and `-q -` print `key:<TAB>value`, as Debian's Postfix
/// postalias does for the same source (its YP_* bookkeeping entries aside).
#[test]
fn issue14_show_and_query_stdin_match_postfix_tab_separator() {
    const REAL: &str = "/usr/sbin/postalias";
    testkit::need_program(REAL, "postfix");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.cf"), "").unwrap();
    let ours = dir.path().join("ours");
    let theirs = dir.path().join("theirs");
    let text = "root: admin\npostmaster: root, bob\n";
    std::fs::write(&ours, text).unwrap();
    std::fs::write(&theirs, text).unwrap();
    let run = |exe: &str, args: &[&str]| {
        let o = Command::new(exe)
            .arg("-c")
            .arg(dir.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{exe}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        out(&o)
    };
    let ours = format!("hash:{}", ours.display());
    let theirs = format!("hash:{}", theirs.display());
    run(env!("CARGO_BIN_EXE_postalias"), &[&ours]);
    run(REAL, &[&theirs]);
    let mine = run(env!("CARGO_BIN_EXE_postalias"), &["-s", &ours]);
    let real: String = run(REAL, &["-s", &theirs])
        .lines()
        .filter(|l| !l.starts_with("YP_"))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut mine_sorted: Vec<&str> = mine.lines().collect();
    let mut real_sorted: Vec<&str> = real.lines().collect();
    mine_sorted.sort();
    real_sorted.sort();
    assert_eq!(mine_sorted, real_sorted);
    assert!(mine.contains("postmaster:\troot, bob\n"), "{mine}");
}
