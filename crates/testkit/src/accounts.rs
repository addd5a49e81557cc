//! The accounts an instance needs when the tests run as root: the
//! mail_owner `postfix` (user and group) and the setgid_group `postdrop`.
//! scripts/install-deps creates them; so does [`ensure`], the same way
//! (`groupadd -r`, `useradd -r -d /nonexistent -s /usr/sbin/nologin`),
//! idempotently and under a lock so that test processes running at once
//! create each only once. If it cannot, the test fails saying to run
//! scripts/install-deps.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::Command;

fn user_exists(name: &str) -> bool {
    nix::unistd::User::from_name(name).ok().flatten().is_some()
}

fn group_exists(name: &str) -> bool {
    nix::unistd::Group::from_name(name).ok().flatten().is_some()
}

fn all_present() -> bool {
    user_exists("postfix") && group_exists("postdrop")
}

/// The lock file: /run/lock when present (root's), else the temp dir.
fn lock_path() -> PathBuf {
    let run = PathBuf::from("/run/lock");
    let dir = if run.is_dir() {
        run
    } else {
        std::env::temp_dir()
    };
    dir.join("testkit-accounts.lock")
}

/// Creates `postdrop`, then `postfix` (with its own group, or the existing
/// group `postfix`) when missing. Panics, naming scripts/install-deps, when
/// that fails. Needs root.
pub(crate) fn ensure() {
    if all_present() {
        return;
    }
    let path = lock_path();
    let lock = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", path.display()));
    if !group_exists("postdrop") {
        run(Command::new("groupadd").args(["-r", "postdrop"]));
    }
    if !user_exists("postfix") {
        let mut useradd = Command::new("useradd");
        useradd.args(["-r", "-d", "/nonexistent", "-s", "/usr/sbin/nologin"]);
        if group_exists("postfix") {
            useradd.args(["-g", "postfix"]);
        } else {
            useradd.arg("-U");
        }
        run(useradd.arg("postfix"));
    }
    assert!(
        all_present(),
        "the postfix account or postdrop group is still missing after useradd/groupadd: \
         run scripts/install-deps as root"
    );
}

fn run(cmd: &mut Command) {
    let what = format!("{cmd:?}");
    match cmd.output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "{what} failed ({}): {}; the tests need the postfix account and postdrop group \
             as root: run scripts/install-deps as root",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!(
            "{what}: {e}; the tests need the postfix account and postdrop group as root: \
             run scripts/install-deps as root"
        ),
    }
}
