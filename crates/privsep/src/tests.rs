//! Tests. Dropping privilege cannot be undone, so those tests re-run this
//! test binary as a child (selected by `CHILD_ENV`) that drops privilege
//! and reports on its stdout; the parent also inspects the child through
//! /proc while the child waits for its stdin to close.

use super::*;
use std::io::{BufRead, BufReader, Read, Seek};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

const CHILD_ENV: &str = "PRIVSEP_TEST_CHILD";
const DIR_ENV: &str = "PRIVSEP_TEST_DIR";

/// The account to drop to: `postfix` when it exists, else `nobody`.
fn target_account() -> Option<Account> {
    for name in ["postfix", "nobody"] {
        if let Ok(Some(a)) = lookup_user(name)
            && a.uid != 0
            && a.gid != 0
        {
            return Some(a);
        }
    }
    None
}

fn skip_unless_root(why: &str) -> bool {
    testkit::skip_unless_root(why)
}

/// The lines of /proc/.../status whose key is in `keys`, as `key value`.
fn status_fields(status: &str, keys: &[&str]) -> Vec<String> {
    status
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            keys.contains(&k)
                .then(|| format!("{k} {}", v.split_whitespace().collect::<Vec<_>>().join(" ")))
        })
        .collect()
}

/// The body of child processes, run by [`run_child`] with `--ignored`;
/// not a test of its own.
#[test]
#[ignore = "child process of the privilege-drop tests, run by them"]
fn child_entry() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = std::env::var_os(DIR_ENV).map(PathBuf::from);
    let account = target_account().unwrap();
    match mode.as_str() {
        "drop" => child_drop(&account, dir.as_deref()),
        "nonroot" => child_nonroot(&account, dir.as_deref()),
        other => panic!("unknown child mode {other}"),
    }
}

fn child_drop(account: &Account, dir: Option<&Path>) {
    // Opened before the jail: /proc is not inside it. Reads later show
    // this thread's credentials at read time.
    let mut status = std::fs::File::open("/proc/thread-self/status").unwrap();
    let dropped = drop_privileges(account, dir);
    println!(
        "REPORT result {:?}",
        dropped.as_ref().map(|_| ()).map_err(|e| e.to_string())
    );
    let mut text = String::new();
    status.rewind().unwrap();
    status.read_to_string(&mut text).unwrap();
    for field in status_fields(
        &text,
        &[
            "Uid",
            "Gid",
            "Groups",
            "CapInh",
            "CapPrm",
            "CapEff",
            "CapAmb",
            "NoNewPrivs",
        ],
    ) {
        println!("REPORT {field}");
    }
    println!("REPORT marker {}", Path::new("/marker").exists());
    println!(
        "REPORT setuid0 {:?}",
        nix::unistd::setuid(Uid::from_raw(0)).map_err(|e| e as i32)
    );
    println!("REPORT done");
    // Wait for the parent to look at /proc/PID/root.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

fn child_nonroot(account: &Account, dir: Option<&Path>) {
    // Become `account` first (no jail), then ask for things only root can do.
    drop_privileges(account, None).unwrap();
    let other = Account {
        name: "other".into(),
        uid: account.uid.wrapping_add(1),
        gid: account.gid,
    };
    match drop_privileges(&other, None) {
        Err(Error::NotRoot { op: "setuid", .. }) => println!("REPORT setuid refused"),
        r => println!("REPORT setuid unexpected {r:?}"),
    }
    match drop_privileges(account, dir) {
        Err(Error::NotRoot { op: "chroot", .. }) => println!("REPORT chroot refused"),
        r => println!("REPORT chroot unexpected {r:?}"),
    }
    match drop_privileges(account, None) {
        Ok(_) => println!("REPORT same uid ok"),
        Err(e) => println!("REPORT same uid failed {e}"),
    }
    match dir.map(enter_chroot) {
        Some(Err(Error::NotRoot { op: "chroot", .. })) => println!("REPORT enter_chroot refused"),
        r => println!("REPORT enter_chroot unexpected {r:?}"),
    }
    println!("REPORT done");
}

/// Runs a child in `mode`; returns its REPORT lines and what `inspect`
/// found about the child (by pid) while it waited.
fn run_child<T>(mode: &str, dir: &Path, inspect: impl FnOnce(u32) -> T) -> (Vec<String>, T) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tests::child_entry",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, mode)
        .env(DIR_ENV, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut reports = Vec::new();
    for line in lines.by_ref() {
        // libtest prints "test tests::child_entry ... " without a newline
        // before the test runs, so a report may start mid-line.
        let line = line.unwrap();
        if let Some((_, r)) = line.split_once("REPORT ") {
            if r == "done" {
                break;
            }
            reports.push(r.to_owned());
        }
    }
    let found = inspect(child.id());
    drop(child.stdin.take());
    // Drain the rest (libtest's summary) so the child never sees EPIPE.
    lines.for_each(drop);
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "child {mode} failed: {status:?}, reports {reports:?}"
    );
    (reports, found)
}

fn jail() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.path().join("marker"), "x").unwrap();
    dir
}

#[test]
fn drop_privileges_chroots_and_drops_everything() {
    if skip_unless_root("it chroots and changes uid") {
        return;
    }
    let account = target_account().expect("no postfix or nobody account");
    let dir = jail();
    let (reports, (root_link, parent_view)) = run_child("drop", dir.path(), |pid| {
        let root = std::fs::read_link(format!("/proc/{pid}/root")).unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        (
            root,
            status_fields(&status, &["Uid", "Gid", "CapEff", "CapPrm"]),
        )
    });
    let (u, g) = (account.uid, account.gid);
    let expect = [
        "result Ok(())".to_owned(),
        format!("Uid {u} {u} {u} {u}"),
        format!("Gid {g} {g} {g} {g}"),
        format!("Groups {g}"),
        "NoNewPrivs 1".to_owned(),
        "CapInh 0000000000000000".to_owned(),
        "CapPrm 0000000000000000".to_owned(),
        "CapEff 0000000000000000".to_owned(),
        "CapAmb 0000000000000000".to_owned(),
        "marker true".to_owned(),
        format!("setuid0 Err({})", Errno::EPERM as i32),
    ];
    for e in &expect {
        assert!(reports.contains(e), "missing {e:?} in {reports:?}");
    }
    assert_eq!(root_link, dir.path().canonicalize().unwrap());
    // The whole process, as seen from outside, not just one thread.
    assert!(
        parent_view.contains(&format!("Uid {u} {u} {u} {u}")),
        "{parent_view:?}"
    );
    assert!(
        parent_view.contains(&"CapEff 0000000000000000".to_owned()),
        "{parent_view:?}"
    );
}

#[test]
fn not_root_cannot_change_uid_or_chroot() {
    if skip_unless_root("the child first drops from root to an unprivileged account") {
        return;
    }
    let dir = jail();
    let (reports, ()) = run_child("nonroot", dir.path(), |_| ());
    assert_eq!(
        reports,
        [
            "setuid refused",
            "chroot refused",
            "same uid ok",
            "enter_chroot refused"
        ]
    );
}

#[test]
fn dropping_to_root_is_refused() {
    // Refused before anything changes, so this runs in-process.
    let root = Account {
        name: "root".into(),
        uid: 0,
        gid: 0,
    };
    assert!(matches!(
        drop_privileges(&root, None),
        Err(Error::TargetIsPrivileged { .. })
    ));
    let gid0 = Account {
        name: "x".into(),
        uid: 1234,
        gid: 0,
    };
    assert!(matches!(
        drop_privileges(&gid0, None),
        Err(Error::TargetIsPrivileged { .. })
    ));
}

#[test]
fn mail_owner_root_is_refused() {
    let err = check_mail_owner("root").unwrap_err();
    assert!(matches!(err, Error::PrivilegedMailOwner { .. }), "{err:?}");
    assert!(err.to_string().contains("privileged"));
}

#[test]
fn missing_mail_owner_says_how_to_create_it() {
    let err = check_mail_owner("no-such-user-zz9").unwrap_err();
    assert!(matches!(err, Error::MissingMailOwner { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("useradd -r -d /nonexistent -s /usr/sbin/nologin -U no-such-user-zz9"),
        "{err}"
    );
}

#[test]
fn mail_owner_postfix_is_accepted() {
    testkit::need_mail_owner();
    match lookup_user("postfix").unwrap() {
        None => testkit::skip("needs the postfix account, which only root can create"),
        Some(expected) => assert_eq!(check_mail_owner("postfix").unwrap(), expected),
    }
}

#[test]
fn setgid_group_checks() {
    let owner = Account {
        name: "owner".into(),
        uid: 4321,
        gid: 4321,
    };
    let err = check_setgid_group("no-such-group-zz9", &owner).unwrap_err();
    assert!(
        err.to_string().contains("groupadd -r no-such-group-zz9"),
        "{err}"
    );
    let err = check_setgid_group("root", &owner).unwrap_err();
    assert!(
        matches!(err, Error::PrivilegedSetgidGroup { .. }),
        "{err:?}"
    );
    // Same group as mail_owner.
    testkit::need_mail_owner();
    let Some(postdrop) = lookup_group("postdrop").unwrap() else {
        testkit::skip("needs the postdrop group, which only root can create");
        return;
    };
    assert_eq!(check_setgid_group("postdrop", &owner).unwrap(), postdrop);
    let clash = Account {
        gid: postdrop,
        ..owner
    };
    let err = check_setgid_group("postdrop", &clash).unwrap_err();
    assert!(
        matches!(err, Error::SetgidGroupIsMailOwnerGroup { .. }),
        "{err:?}"
    );
}

#[test]
fn invoking_user_matches_ids() {
    let me = invoking_user().unwrap();
    assert_eq!(me.uid, nix::unistd::geteuid().as_raw());
    assert_eq!(me.gid, nix::unistd::getegid().as_raw());
    assert!(!me.name.is_empty());
}

#[test]
fn enter_chroot_needs_root() {
    if is_root() {
        // In-process it would jail this test process: ask a child that
        // dropped root first.
        let dir = jail();
        let (reports, ()) = run_child("nonroot", dir.path(), |_| ());
        assert!(
            reports.contains(&"enter_chroot refused".to_owned()),
            "{reports:?}"
        );
        return;
    }
    assert!(matches!(
        enter_chroot(Path::new("/tmp")),
        Err(Error::NotRoot { op: "chroot", .. })
    ));
}

/// A jail someone else can write is refused, before anything changes
/// (so this runs in-process even as root); root's 0755 one is accepted.
#[test]
fn unsafe_chroot_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    for mode in [0o775, 0o757, 0o777] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = check_chroot_dir(path).unwrap_err();
        assert!(
            matches!(err, Error::UnsafeChroot { .. }),
            "{mode:o}: {err:?}"
        );
        assert!(
            err.to_string().contains("not writable by group or others"),
            "{err}"
        );
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let owner_ok = nix::unistd::geteuid().is_root();
    assert_eq!(check_chroot_dir(path).is_ok(), owner_ok);
    if !owner_ok {
        // Not root: the directory is ours, not root's.
        assert!(matches!(
            check_chroot_dir(path),
            Err(Error::UnsafeChroot { .. })
        ));
    }
}
