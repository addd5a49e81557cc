//! postmap through the real binary: build, query, list, edit, exit codes.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn postmap(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_postmap"))
        .args(["-c", dir.to_str().unwrap()])
        .args(args)
        .current_dir(dir)
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

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.cf"), "default_database_type = hash\n").unwrap();
    std::fs::write(
        dir.path().join("virtual"),
        "# virtual(5)\nInfo@Example.COM  alice@example.net,\n    bob@example.net\n@example.org  catchall@example.net\nnovalue\n",
    )
    .unwrap();
    dir
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn build_then_query() {
    let dir = setup();
    let src = dir.path().join("virtual");
    let spec = format!("hash:{}", src.display());
    let o = postmap(dir.path(), &[&spec], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("line 5: expected format: key whitespace value"),
        "{}",
        stderr(&o)
    );
    assert!(dir.path().join("virtual.db").exists());

    let o = postmap(dir.path(), &["-q", "info@example.com", &spec], "");
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "alice@example.net,    bob@example.net\n");
    let o = postmap(dir.path(), &["-q", "nobody@example.com", &spec], "");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
}

#[test]
fn plain_file_uses_default_type_and_stdin_queries() {
    let dir = setup();
    let o = postmap(dir.path(), &["virtual"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = postmap(
        dir.path(),
        &["-q", "-", "virtual"],
        "INFO@example.com\nmissing\n@example.org\n",
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        "INFO@example.com\talice@example.net,    bob@example.net\n@example.org\tcatchall@example.net\n"
    );
    let o = postmap(dir.path(), &["-q", "-", "virtual"], "missing\n");
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn show_delete_and_incremental() {
    let dir = setup();
    assert!(postmap(dir.path(), &["virtual"], "").status.success());
    let o = postmap(dir.path(), &["-s", "virtual"], "");
    assert_eq!(
        stdout(&o),
        "info@example.com\talice@example.net,    bob@example.net\n@example.org\tcatchall@example.net\n"
    );
    let o = postmap(dir.path(), &["-d", "@EXAMPLE.org", "virtual"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = postmap(dir.path(), &["-d", "@example.org", "virtual"], "");
    assert_eq!(o.status.code(), Some(1));
    let o = postmap(
        dir.path(),
        &["-i", "virtual"],
        "New@X  n@y\ninfo@example.com dup\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("duplicate entry"), "{}", stderr(&o));
    let o = postmap(dir.path(), &["-s", "virtual"], "");
    assert_eq!(
        stdout(&o),
        "info@example.com\talice@example.net,    bob@example.net\nnew@x\tn@y\n"
    );
    let o = postmap(
        dir.path(),
        &["-r", "-i", "virtual"],
        "info@example.com replaced\n",
    );
    assert!(o.status.success());
    let o = postmap(dir.path(), &["-q", "info@example.com", "virtual"], "");
    assert_eq!(stdout(&o), "replaced\n");
}

#[test]
fn fold_case_off() {
    let dir = setup();
    assert!(postmap(dir.path(), &["-f", "virtual"], "").status.success());
    let o = postmap(dir.path(), &["-f", "-q", "Info@Example.COM", "virtual"], "");
    assert_eq!(o.status.code(), Some(0));
    let o = postmap(dir.path(), &["-f", "-q", "info@example.com", "virtual"], "");
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn query_other_types() {
    let dir = setup();
    let re = dir.path().join("hc");
    std::fs::write(&re, "/^(.*)@example\\.com$/ user $1\n").unwrap();
    let spec = format!("regexp:{}", re.display());
    let o = postmap(dir.path(), &["-q", "joe@example.com", &spec], "");
    assert_eq!(stdout(&o), "user joe\n");
    let o = postmap(dir.path(), &["-q", "b", "inline:{a=1, b=2}"], "");
    assert_eq!(stdout(&o), "2\n");
}

#[test]
fn errors_are_fatal_with_status_1() {
    let dir = setup();
    let o = postmap(dir.path(), &["nonexistent"], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("postmap: fatal: "), "{}", stderr(&o));
    let o = postmap(dir.path(), &["-q", "k", "nosuch:x"], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("unsupported dictionary type"),
        "{}",
        stderr(&o)
    );
    let o = postmap(dir.path(), &[], "");
    assert!(stderr(&o).contains("usage:"), "{}", stderr(&o));
    let re = dir.path().join("bad");
    std::fs::write(&re, "/unclosed x\n").unwrap();
    let o = postmap(
        dir.path(),
        &["-q", "k", &format!("pcre:{}", re.display())],
        "",
    );
    assert!(
        stderr(&o).contains("line 1: no closing regexp delimiter"),
        "{}",
        stderr(&o)
    );
    let o = postmap(dir.path(), &[&format!("regexp:{}", re.display())], "");
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn root_build_gives_index_to_source_owner() {
    if !nix::unistd::geteuid().is_root() {
        testkit::skip("needs root because only root can chown the index");
        return;
    }
    let dir = setup();
    let src = dir.path().join("virtual");
    std::os::unix::fs::chown(&src, Some(65534), Some(65534)).unwrap();
    assert!(postmap(dir.path(), &["virtual"], "").status.success());
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir.path().join("virtual.db")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
}

#[test]
fn daemon_reader_survives_postmap_rebuilds() {
    let dir = setup();
    let src = dir.path().join("virtual");
    std::fs::write(&src, "key v0\n").unwrap();
    assert!(postmap(dir.path(), &["virtual"], "").status.success());
    let spec = format!("hash:{}", src.display());
    let table = tables::open(&spec, tables::Flags::default()).unwrap();
    let mut seen = vec![];
    for i in 1..=10 {
        let mut text = format!("key v{i}\n");
        for j in 0..500 {
            text.push_str(&format!("filler{j} value{j}\n"));
        }
        std::fs::write(&src, text).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_postmap"))
            .args(["-c", dir.path().to_str().unwrap(), "virtual"])
            .current_dir(dir.path())
            .spawn()
            .unwrap();
        // Read while the other process replaces the index.
        loop {
            table.refresh_if_changed().unwrap();
            let v = table.lookup("key").unwrap().unwrap();
            seen.push(v.trim_start_matches('v').parse::<u32>().unwrap());
            if child.try_wait().unwrap().is_some() {
                break;
            }
        }
        table.refresh_if_changed().unwrap();
        assert_eq!(table.lookup("key").unwrap(), Some(format!("v{i}")));
    }
    // Values only ever move forward: old, then new, never a mix or a gap.
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
}

/// std::env::args panics (exit 101) on an argument that is not UTF-8.
#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error() {
    testkit::assert_non_utf8_argument_is_usage_error(env!("CARGO_BIN_EXE_postmap"), "postmap");
}
