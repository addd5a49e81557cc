//! pipe under a real master: macros and flags, exit 75 defers, exit 1
//! bounces with the command's output, sysexits codes, size=, user=root
//! and user=mail_owner, time limits past the bounds, `argv=/bin/sh -c`,
//! a chroot=y service with an unsafe queue directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use delivery::testing::{Instance, bin_dir, need_instance, wait_until};
use proto::deliver::Action;

const MASTER_CF: &str = "\
pipeok unix - n n - - pipe flags=FRDO.>hu user=nobody argv=@BASE@/prog ok ${sender} ${recipient} ${user} ${extension} ${domain} ${mailbox} ${nexthop} ${original_recipient} ${queue_id} ${size} x${extension?+$extension}y
pipetemp unix - n n - - pipe user=nobody argv=@BASE@/prog tempfail
pipefail unix - n n - - pipe user=nobody argv=@BASE@/prog fail
pipe67 unix - n n - - pipe user=nobody argv=@BASE@/prog unknown
pipesmall unix - n n - - pipe user=nobody size=10 argv=@BASE@/prog ok
pipeslow unix - n n - - pipe user=nobody argv=@BASE@/prog slow
piperoot unix - n n - - pipe user=root argv=/bin/true
pipeowner unix - n n - - pipe user=postfix argv=/bin/true
pipehuge unix - n n - - pipe user=nobody argv=/bin/true
pipeweeks unix - n n - - pipe user=nobody argv=/bin/true
pipesh unix - n n - - pipe flags=R user=nobody argv=/bin/sh -c { id -u > @BASE@/out/sh.out; cat >> @BASE@/out/sh.out } -u
";

const PROG: &str = r#"#!/bin/sh
mode=$1; shift
out=@BASE@/out/$mode.$$
{ echo "uid=$(id -u)"; for a in "$@"; do echo "arg=$a"; done; echo "--"; cat; } > "$out"
case $mode in
  ok) exit 0;;
  tempfail) echo "mailbox busy, try later"; exit 75;;
  fail) echo "no such list" >&2; exit 1;;
  unknown) exit 67;;
  slow) sleep 30;;
esac
"#;

fn bin() -> std::path::PathBuf {
    bin_dir(env!("CARGO_BIN_EXE_pipe"))
}

fn instance() -> Instance {
    need_instance();
    let mut inst = Instance::new(
        &bin(),
        "recipient_delimiter = +\npipeslow_time_limit = 1s\n\
         pipehuge_time_limit = 99999999999d\npipeweeks_time_limit = 18446744073709551615w\n",
        MASTER_CF,
    );
    let prog = inst.base.join("prog");
    std::fs::write(
        &prog,
        PROG.replace("@BASE@", &inst.base.display().to_string()),
    )
    .unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = inst.base.join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    inst.start(&bin(), "pipeok");
    inst
}

fn outputs(dir: &Path, mode: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("out"))
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{mode}."))
        })
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn macros_and_flags() {
    let inst = instance();
    let msg = "Subject: pipe\n\nFrom me\n.dot\n";
    let id = inst.enqueue("Alice@Example.ORG", &["Bob+Box@Example.COM"], msg);
    let req = inst.request(
        &id,
        "Alice@Example.ORG",
        &[("Bob+Box@Example.COM", "bob@orig.example")],
    );
    let reply = inst.deliver("pipeok", &req);
    let st = &reply.statuses[0];
    assert_eq!(st.action, Action::Delivered, "{st:?}\n{}", inst.log());
    assert_eq!(st.text, "delivered via pipeok service");
    assert_eq!(st.relay, "pipeok");
    let out = outputs(&inst.base, "ok");
    assert_eq!(out.len(), 1);
    let uid = if nix::unistd::geteuid().is_root() {
        65534
    } else {
        nix::unistd::geteuid().as_raw()
    };
    let size = msg.len();
    let (head, body) = out[0].split_once("--\n").unwrap();
    assert_eq!(
        head,
        format!(
            "uid={uid}\narg=Alice@Example.ORG\narg=bob+box@example.com\narg=bob\narg=box\n\
             arg=example.com\narg=bob+box\narg=host.example.org\narg=bob@orig.example\narg={id}\n\
             arg={size}\narg=x+boxy\n"
        )
    );
    assert!(body.starts_with("From Alice@Example.ORG "), "{body}");
    let rest = body.split_once('\n').unwrap().1;
    assert_eq!(
        rest,
        "Return-Path: <Alice@Example.ORG>\nX-Original-To: bob@orig.example\n\
         Delivered-To: bob+box@example.com\nSubject: pipe\n\n>From me\n..dot\n"
    );
    let log = inst.log();
    assert!(
        log.contains(&format!(
            "{id}: to=<Bob+Box@Example.COM>, orig_to=<bob@orig.example>, relay=pipeok, delay="
        )) && log.contains("dsn=2.0.0, status=sent (delivered via pipeok service)"),
        "{log}"
    );
}

#[test]
fn each_recipient_gets_its_own_run() {
    let inst = instance();
    let reply = inst.send(
        "pipeok",
        "a@b",
        &["x@one.example", "y@two.example"],
        "S: x\n\ny\n",
    );
    assert!(reply.statuses.iter().all(|s| s.action == Action::Delivered));
    assert_eq!(outputs(&inst.base, "ok").len(), 2);
}

#[test]
fn exit_75_defers_and_exit_1_bounces_with_output() {
    let inst = instance();
    let r = inst.send("pipetemp", "a@b", &["x@y"], "S: x\n\nbody\n");
    let st = &r.statuses[0];
    assert_eq!((st.action, st.dsn.as_str()), (Action::Deferred, "4.3.0"));
    assert_eq!(
        st.text,
        "temporary failure. Command output: mailbox busy, try later"
    );

    let r = inst.send("pipefail", "a@b", &["x@y"], "S: x\n\nbody\n");
    let st = &r.statuses[0];
    assert_eq!((st.action, st.dsn.as_str()), (Action::Bounced, "5.3.0"));
    let prog = inst.base.join("prog");
    assert_eq!(
        st.text,
        format!(
            "Command died with status 1: \"{}\". Command output: no such list",
            prog.display()
        )
    );
    let r = inst.send("pipe67", "a@b", &["x@y"], "S: x\n\nbody\n");
    assert_eq!(
        (r.statuses[0].action, r.statuses[0].dsn.as_str()),
        (Action::Bounced, "5.1.1")
    );
    let log = inst.log();
    assert!(log.contains("relay=pipetemp, delay="));
    assert!(log.contains(
        "dsn=4.3.0, status=deferred (temporary failure. Command output: mailbox busy, try later)"
    ));
    assert!(log.contains("dsn=5.3.0, status=bounced (Command died with status 1: "));
}

#[test]
fn size_limit_and_time_limit() {
    let inst = instance();
    let r = inst.send(
        "pipesmall",
        "a@b",
        &["x@y"],
        "Subject: too long for ten\n\nbody\n",
    );
    assert_eq!(
        (
            r.statuses[0].action,
            r.statuses[0].dsn.as_str(),
            r.statuses[0].text.as_str()
        ),
        (Action::Bounced, "5.2.3", "message too large")
    );
    let started = std::time::Instant::now();
    let r = inst.send("pipeslow", "a@b", &["x@y"], "S: x\n\nbody\n");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(r.statuses[0].action, Action::Bounced);
    assert!(
        r.statuses[0]
            .text
            .starts_with("Command time limit exceeded")
    );
}

#[test]
fn user_root_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        testkit::skip("needs root (a non-root pipe runs as itself)");
        return;
    }
    let inst = instance();
    let _c = inst.connect("piperoot");
    assert!(
        wait_until(std::time::Duration::from_secs(5), || inst.log().contains(
            "fatal: user= command-line attribute specifies root privileges"
        )),
        "{}",
        inst.log()
    );
}

#[test]
fn user_mail_owner_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        testkit::skip("needs root (a non-root pipe runs as itself)");
        return;
    }
    let inst = instance();
    let _c = inst.connect("pipeowner");
    assert!(
        wait_until(std::time::Duration::from_secs(5), || inst.log().contains(
            "fatal: user= command-line attribute specifies mail system owner postfix"
        )),
        "{}",
        inst.log()
    );
}

/// A time limit past the bounds is a clear fatal error at start, never a
/// panic during a delivery.
#[test]
fn huge_time_limits_are_fatal_at_start() {
    let inst = instance();
    for (service, message) in [
        (
            "pipehuge",
            "fatal: invalid pipehuge_time_limit parameter value 99999999999d > 2147483647s",
        ),
        (
            "pipeweeks",
            "fatal: parameter pipeweeks_time_limit: bad time value or unit: 18446744073709551615w",
        ),
    ] {
        let _c = inst.connect(service);
        assert!(
            wait_until(std::time::Duration::from_secs(5), || inst
                .log()
                .contains(message)),
            "{message} missing:\n{}",
            inst.log()
        );
    }
    assert!(!inst.log().contains("panicked"), "{}", inst.log());
}

/// `argv=/bin/sh -c ... -u`: the command's -c and -u are its own, not
/// master's chroot and unprivileged options (which made pipe chroot to
/// the queue directory and fail with "cannot run /bin/sh").
#[test]
fn shell_command_with_dash_options() {
    let inst = instance();
    let r = inst.send("pipesh", "a@b", &["x@y"], "Subject: sh\n\nbody\n");
    let st = &r.statuses[0];
    assert_eq!(st.action, Action::Delivered, "{st:?}\n{}", inst.log());
    let uid = if nix::unistd::geteuid().is_root() {
        65534
    } else {
        nix::unistd::geteuid().as_raw()
    };
    assert_eq!(
        std::fs::read_to_string(inst.base.join("out/sh.out")).unwrap(),
        format!("{uid}\nReturn-Path: <a@b>\nSubject: sh\n\nbody\n")
    );
}

/// chroot=y, unpriv=n goes through privsep's jail checks: a queue
/// directory that group or others may write is refused.
#[test]
fn chroot_into_unsafe_queue_directory_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        testkit::skip("needs root to chroot");
        return;
    }
    need_instance();
    let mut inst = Instance::new(
        &bin(),
        "",
        "pipejail unix - n y - - pipe user=nobody argv=/bin/true\n",
    );
    inst.start(&bin(), "pipejail");
    let mode = std::fs::metadata(&inst.qdir).unwrap().permissions().mode();
    std::fs::set_permissions(&inst.qdir, std::fs::Permissions::from_mode(0o775)).unwrap();
    let _c = inst.connect("pipejail");
    let found = wait_until(std::time::Duration::from_secs(5), || {
        inst.log().contains("not writable by group or others")
    });
    std::fs::set_permissions(&inst.qdir, std::fs::Permissions::from_mode(mode)).unwrap();
    let log = inst.log();
    assert!(found, "{log}");
    assert!(
        log.contains(&format!(
            "fatal: chroot {}: refusing to chroot to {}: owned by uid 0 with mode 0775",
            inst.qdir.display(),
            inst.qdir.display()
        )),
        "{log}"
    );
}
