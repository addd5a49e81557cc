//! Issue 14: `postqueue -p` as root while the mail system is down lists the
//! queue directly, as Debian's Postfix postqueue does.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::Path;
use std::process::{Command, Output};

fn run(exe: &Path, config_dir: &Path) -> Output {
    Command::new(exe)
        .arg("-c")
        .arg(config_dir)
        .arg("-p")
        .env("MAIL_CONFIG", config_dir)
        .output()
        .unwrap()
}

/// A config dir `base/NAME` whose queue `base/NAME/q` has the queue
/// directories but nobody serving public/showq.
fn instance(base: &Path, name: &str, daemon_dir: &Path) -> std::path::PathBuf {
    let dir = base.join(name);
    for q in [
        "maildrop", "incoming", "active", "deferred", "hold", "public", "defer",
    ] {
        std::fs::create_dir_all(dir.join("q").join(q)).unwrap();
    }
    std::fs::write(
        dir.join("main.cf"),
        format!(
            "queue_directory = {}\ndaemon_directory = {}\n",
            dir.join("q").display(),
            daemon_dir.display()
        ),
    )
    .unwrap();
    dir
}

#[test]
fn issue14_root_lists_queue_directly_when_down() {
    if testkit::skip_unless_root("only root may read the queue directly") {
        return;
    }
    testkit::need_bins(&["showq", "postqueue"]);
    testkit::need_file(Path::new("/usr/sbin/postqueue"), "postfix");
    let base = tempfile::tempdir().unwrap();
    let ours = instance(base.path(), "ours", &testkit::bin_dir());
    let theirs = instance(base.path(), "theirs", Path::new("/usr/lib/postfix/sbin"));
    let o = run(&testkit::bin_dir().join("postqueue"), &ours);
    let r = run(Path::new("/usr/sbin/postqueue"), &theirs);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(o.status.code(), r.status.code(), "{}", text(&r.stderr));
    assert_eq!(text(&o.stdout), "Mail queue is empty\n");
    assert_eq!(text(&o.stdout), text(&r.stdout));
    assert_eq!(text(&o.stderr), text(&r.stderr));
}
