//! Privilege: as root, a chroot=y unpriv=y child is jailed in
//! queue_directory, runs as mail_owner and has no capabilities; master
//! refuses to start as root when mail_owner is root or missing; a
//! daemon's open descriptors are what ARCHITECTURE.md allows (tests/fds.rs),
//! with no terminal inherited from the shell that started master.

use std::time::Duration;

use crate::util::*;

#[path = "fds.rs"]
mod fds;

/// As root: [`need_instance`] and true. Otherwise skips, saying `why`
/// the test needs root, and returns false.
fn root_with_account(why: &str) -> bool {
    if testkit::skip_unless_root(why) {
        return false;
    }
    need_instance();
    true
}

#[test]
fn chrooted_child_runs_as_mail_owner_without_caps() {
    if !root_with_account("it checks chroot, setuid and capabilities") {
        return;
    }
    let port = free_port();
    let inst = Instance::new("", &format!("127.0.0.1:{port} inet n y y - 2 echo\n"));
    inst.start();
    let pid = ask_pid(local(port));
    let root = std::fs::read_link(format!("/proc/{pid}/root")).unwrap();
    assert_eq!(root, inst.qdir);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = nix::unistd::User::from_name("postfix")
        .unwrap()
        .unwrap()
        .uid
        .as_raw();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|u| u == uid.to_string()),
        "{uid_line}"
    );
    let cap = status.lines().find(|l| l.starts_with("CapEff:")).unwrap();
    assert_eq!(cap.split_whitespace().nth(1), Some("0000000000000000"));
}

fn refused(main_extra: &str, expect: &str) {
    let port = free_port();
    let inst = Instance::new(
        main_extra,
        &format!("127.0.0.1:{port} inet n - n - 2 echo\n"),
    );
    let out = std::process::Command::new(bin_dir().join("master"))
        .arg("-c")
        .arg(&inst.config_dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(expect), "{err}");
    assert!(
        err.contains("useradd"),
        "says how to create the account: {err}"
    );
    let out = inst.postfix(&["start"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(wait_until(Duration::from_secs(1), || inst
        .master_pid()
        .is_none()
        || inst.postfix(&["status"]).status.code() == Some(1)));
    assert!(!answers(local(port)));
}

#[test]
fn root_master_refuses_root_mail_owner() {
    if testkit::skip_unless_root("the check applies to root only") {
        return;
    }
    refused("mail_owner = root\n", "has privileged user ID");
}

#[test]
fn root_master_refuses_missing_mail_owner() {
    if testkit::skip_unless_root("the check applies to root only") {
        return;
    }
    refused(
        "mail_owner = no-such-user-xq\n",
        "unknown user name value: no-such-user-xq",
    );
}

#[test]
fn master_started_by_another_user_keeps_its_uid() {
    if !root_with_account("it starts the instance as the postfix account") {
        return;
    }
    let user = nix::unistd::User::from_name("postfix").unwrap().unwrap();
    let (uid, gid) = (user.uid.as_raw(), user.gid.as_raw());
    let port = free_port();
    // unpriv and chroot columns say y: without root they change nothing.
    let inst = Instance::new("", &format!("127.0.0.1:{port} inet n y y - 2 echo\n"));
    inst.chown_all(uid, gid);
    let out = inst.postfix_as(uid, gid, &["start"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = ask_pid(local(port));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|u| u == uid.to_string()),
        "{uid_line}"
    );
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/root")).unwrap(),
        std::path::PathBuf::from("/")
    );
    let log = inst.log();
    assert_eq!(
        log.matches("privilege separation is off: running as user postfix")
            .count(),
        1,
        "{log}"
    );
    assert!(inst.postfix_as(uid, gid, &["stop"]).status.success());
    assert!(wait_until(Duration::from_secs(5), || inst
        .leftovers()
        .is_empty()));
}

#[test]
fn chroot_without_unpriv_stays_root_in_the_jail() {
    if !root_with_account("it checks chroot of a root child") {
        return;
    }
    let port = free_port();
    let inst = Instance::new("", &format!("127.0.0.1:{port} inet n n y - 2 echo\n"));
    inst.start();
    let pid = ask_pid(local(port));
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/root")).unwrap(),
        inst.qdir
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == "0"),
        "{uid_line}"
    );
}

/// master started in the foreground from a terminal (`postfix start-fg`
/// typed at a shell): the chrooted child holds no terminal, nothing
/// writable but its log, no directory outside its jail.
#[test]
fn daemon_descriptors_are_only_what_it_needs() {
    if !root_with_account("it checks a chrooted child's descriptors") {
        return;
    }
    let port = free_port();
    let inst = Instance::new("", &format!("127.0.0.1:{port} inet n y y - 2 echo\n"));
    assert!(inst.postfix(&["check"]).status.success(), "{}", inst.log());
    let pty = nix::pty::openpty(None, None).unwrap();
    let tty = || std::process::Stdio::from(std::fs::File::from(pty.slave.try_clone().unwrap()));
    let mut master = std::process::Command::new(bin_dir().join("master"))
        .arg("-c")
        .arg(&inst.config_dir)
        .env("MAIL_CONFIG", &inst.config_dir)
        .stdin(tty())
        .stdout(tty())
        .stderr(tty())
        .spawn()
        .unwrap();
    let up = wait_until(Duration::from_secs(10), || answers(local(port)));
    assert!(up, "master did not start: {}", inst.log());
    let pid = ask_pid(local(port));
    let sys = fds::System {
        root: std::path::Path::new("/"),
        queue_dir: &inst.qdir,
        maillog_file: Some(&inst.maillog),
    };
    let bad = fds::problems(&sys, u32::try_from(pid).unwrap(), "echo", true);
    let all = fds::describe(u32::try_from(pid).unwrap());
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(master.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = master.wait();
    assert!(
        bad.is_empty(),
        "{}\nall descriptors:\n{all}",
        bad.join("\n")
    );
}
