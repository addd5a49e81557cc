//! postdrop as a real process: what it writes, what it refuses, and that a
//! refused or cut-off submission leaves no file.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use proto::cleanup::{Begin, RecipientSpec, Request};
use queue::{Queue, QueueFile};

struct Inst {
    _dir: tempfile::TempDir,
    config_dir: PathBuf,
    qdir: PathBuf,
}

impl Inst {
    fn new(extra: &str, owner: Option<(u32, u32)>, setgid: Option<u32>) -> Inst {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config_dir = base.join("etc");
        let qdir = base.join("spool");
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::set_permissions(&config_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        queue::layout::create_or_repair(&qdir, owner, setgid).unwrap();
        let main_cf = config_dir.join("main.cf");
        std::fs::write(
            &main_cf,
            format!("queue_directory = {}\n{extra}", qdir.display()),
        )
        .unwrap();
        std::fs::set_permissions(&main_cf, std::fs::Permissions::from_mode(0o644)).unwrap();
        Inst {
            _dir: dir,
            config_dir,
            qdir,
        }
    }

    fn postdrop(&self, args: &[&str], input: &[u8]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_postdrop"));
        c.arg("-c").arg(&self.config_dir).args(args);
        run(c, input)
    }

    fn assert_no_file(&self) {
        let s = queue::scan(&self.qdir, Queue::Maildrop).unwrap();
        assert!(s.ids.is_empty() && s.others.is_empty(), "maildrop: {s:?}");
    }
}

fn run(mut c: Command, input: &[u8]) -> Output {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let w = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    w.join().unwrap();
    out
}

fn frames(reqs: &[Request]) -> Vec<u8> {
    let mut v = Vec::new();
    for r in reqs {
        proto::send(&mut v, r).unwrap();
    }
    v
}

fn message(content: &[u8]) -> Vec<u8> {
    frames(&[
        Request::Begin(Begin {
            flags: 0,
            sender: "alice".into(),
            full_name: None,
            attributes: vec![("login_name".into(), "somebody-else".into())],
        }),
        Request::Recipient(RecipientSpec {
            address: "bob".into(),
            orcpt: Some("rfc822;bob@example.org".into()),
            notify: 0,
        }),
        Request::Content(content.to_vec()),
        Request::End,
    ])
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn writes_a_complete_file_and_wakes_pickup() {
    let inst = Inst::new("", None, None);
    let fifo = inst.qdir.join("public/pickup");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622)).unwrap();
    // Open the reading end first, non-blocking, as master holds it.
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    let out = inst.postdrop(&["-r"], &message(b"Subject: x\n\n\0\xff\n"));
    assert!(out.status.success(), "{}", err(&out));
    let ids = queue::list(&inst.qdir, Queue::Maildrop).unwrap();
    assert_eq!(ids.len(), 1);
    let qf = QueueFile::open_read_only(&inst.qdir, Queue::Maildrop, &ids[0]).unwrap();
    assert_eq!(qf.metadata().mode() & 0o777, 0o744);
    let env = qf.envelope();
    let me = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap();
    assert_eq!(env.attribute("login_name"), Some(me.name.as_str()));
    assert_eq!(
        env.recipients[0].dsn_orcpt.as_deref(),
        Some("rfc822;bob@example.org")
    );
    let mut body = Vec::new();
    qf.content().read_to_end(&mut body).unwrap();
    assert_eq!(body, b"Subject: x\n\n\0\xff\n");
    let mut byte = [0u8; 1];
    reader.read_exact(&mut byte).unwrap();
    assert_eq!(&byte, b"W");
}

#[test]
fn bad_input_leaves_nothing() {
    let inst = Inst::new("message_size_limit = 10\n", None, None);
    let whole = message(b"short\n");
    let cases: Vec<(Vec<u8>, i32)> = vec![
        (b"not frames at all".to_vec(), 70),
        (Vec::new(), 70),
        // Cut off before End: sendmail died.
        (whole[..whole.len() - 5].to_vec(), 70),
        (message(b"far more than ten bytes\n"), 65),
    ];
    for (input, code) in cases {
        let out = inst.postdrop(&[], &input);
        assert_eq!(out.status.code(), Some(code), "{}", err(&out));
        assert!(err(&out).contains("postdrop: fatal: uid="), "{}", err(&out));
        inst.assert_no_file();
    }
    let out = inst.postdrop(&["-x"], &whole);
    assert_eq!(out.status.code(), Some(64));
    let out = inst.postdrop(&[], &whole);
    assert!(out.status.success(), "{}", err(&out));
}

#[test]
fn a_user_in_the_postdrop_group_writes_the_maildrop() {
    if !nix::unistd::geteuid().is_root() {
        testkit::skip("needs root to switch users");
        return;
    }
    testkit::need_mail_owner();
    testkit::need_others_can_run(std::path::Path::new(env!("CARGO_BIN_EXE_postdrop")));
    // scripts/install-deps creates these; without them this is a failure.
    let account = |name: &str| {
        nix::unistd::User::from_name(name)
            .unwrap()
            .unwrap_or_else(|| panic!("needs the account {name} (scripts/install-deps)"))
    };
    let (owner, nobody) = (account("postfix"), account("nobody"));
    let group = nix::unistd::Group::from_name("postdrop")
        .unwrap()
        .expect("needs the group postdrop (scripts/install-deps)");
    let inst = Inst::new(
        "",
        Some((owner.uid.as_raw(), owner.gid.as_raw())),
        Some(group.gid.as_raw()),
    );
    // As installed, postdrop runs with the postdrop group; nobody may
    // write maildrop/ (1730) that way but not read it.
    let mut c = Command::new(env!("CARGO_BIN_EXE_postdrop"));
    std::os::unix::process::CommandExt::uid(&mut c, nobody.uid.as_raw());
    std::os::unix::process::CommandExt::gid(&mut c, group.gid.as_raw());
    c.arg("-c").arg(&inst.config_dir);
    let out = run(c, &message(b"hi\n"));
    assert!(out.status.success(), "{}", err(&out));
    let ids = queue::list(&inst.qdir, Queue::Maildrop).unwrap();
    assert_eq!(ids.len(), 1);
    let qf = QueueFile::open_read_only(&inst.qdir, Queue::Maildrop, &ids[0]).unwrap();
    assert_eq!(qf.metadata().uid(), nobody.uid.as_raw());
    assert_eq!(qf.envelope().attribute("login_name"), Some("nobody"));
    // Set-gid and not root: a private configuration directory is refused
    // unless the default main.cf lists it. The default main.cf here is
    // one of the test's own, mounted on /etc/postfix for the child only.
    let copy = setgid_copy(group.gid.as_raw());
    let default = inst.config_dir.parent().unwrap().join("default");
    std::fs::create_dir(&default).unwrap();
    std::fs::set_permissions(&default, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        default.join("main.cf"),
        format!(
            "queue_directory = {}
",
            inst.qdir.display()
        ),
    )
    .unwrap();
    let config = inst.config_dir.display().to_string();
    let nobody_ids = (nobody.uid.as_raw(), nobody.gid.as_raw());
    let out = with_default(
        &default,
        nobody_ids,
        &copy.1,
        &["-c", &config],
        &[],
        &message(b"hi\n"),
    );
    assert_eq!(out.status.code(), Some(77), "{}", err(&out));
    assert!(
        err(&out).contains(&format!(
            "postdrop: error: unauthorized configuration directory name: {config}\n"
        )),
        "{}",
        err(&out)
    );
    let env = [("MAIL_CONFIG", config.as_str())];
    let out = with_default(&default, nobody_ids, &copy.1, &[], &env, &message(b"hi\n"));
    assert_eq!(out.status.code(), Some(77), "{}", err(&out));
    assert_eq!(queue::list(&inst.qdir, Queue::Maildrop).unwrap().len(), 1);
    // Listed: accepted.
    std::fs::write(
        default.join("main.cf"),
        format!(
            "queue_directory = {}\nalternate_config_directories = {config}\n",
            inst.qdir.display()
        ),
    )
    .unwrap();
    let out = with_default(
        &default,
        nobody_ids,
        &copy.1,
        &["-c", &config],
        &[],
        &message(b"hi\n"),
    );
    assert!(out.status.success(), "{}", err(&out));
    assert_eq!(queue::list(&inst.qdir, Queue::Maildrop).unwrap().len(), 2);
}

/// A set-gid `gid` copy of postdrop in a fresh directory under /tmp whose
/// components are all 0755 (nobody cannot run a binary in a 0700 checkout).
fn setgid_copy(gid: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("postdrop-setgid")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let flags = nix::sys::statvfs::statvfs(dir.path()).unwrap().flags();
    assert!(
        !flags.contains(nix::sys::statvfs::FsFlags::ST_NOSUID),
        "/tmp is mounted nosuid: set-gid cannot be tested there"
    );
    let copy = dir.path().join("postdrop");
    std::fs::copy(env!("CARGO_BIN_EXE_postdrop"), &copy).unwrap();
    std::os::unix::fs::chown(&copy, Some(0), Some(gid)).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o2755)).unwrap();
    (dir, copy)
}

/// Runs `bin` as `ids` with only `env`, with `default` mounted on
/// /etc/postfix in a private mount namespace for this child only, and
/// descriptors 1 and 2 closed when `close` says so (then `sh` reports
/// nothing on them either).
fn run_in_namespace(
    default: &Path,
    ids: (u32, u32),
    bin: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    input: &[u8],
    close: bool,
) -> Output {
    assert!(
        Path::new("/etc/postfix").is_dir(),
        "needs /etc/postfix as a mount point (scripts/install-deps installs postfix)"
    );
    let redirect = if close { " >&- 2>&-" } else { "" };
    let script =
        format!("mount --bind \"$1\" /etc/postfix || exit 99; shift; exec \"$@\"{redirect}");
    let mut c = Command::new("unshare");
    c.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
        "sh",
    ]);
    c.arg(default).arg("setpriv");
    c.arg(format!("--reuid={}", ids.0))
        .arg(format!("--regid={}", ids.1))
        .args(["--clear-groups", "--"]);
    c.arg(bin).args(args);
    c.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    c.envs(env.iter().copied());
    let out = run(c, input);
    assert_ne!(out.status.code(), Some(99), "bind mount: {}", err(&out));
    out
}

fn with_default(
    default: &Path,
    ids: (u32, u32),
    bin: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    input: &[u8],
) -> Output {
    run_in_namespace(default, ids, bin, args, env, input, false)
}

#[test]
fn setgid_postdrop_with_closed_descriptors_and_a_hostile_environment() {
    if !nix::unistd::geteuid().is_root() {
        testkit::skip("needs root");
        return;
    }
    let owner = nix::unistd::User::from_name("postfix").unwrap().unwrap();
    let group = nix::unistd::Group::from_name("postdrop").unwrap().unwrap();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let log_dir = tempfile::Builder::new()
        .prefix("postdrop-log")
        .tempdir_in("/tmp")
        .unwrap();
    // Writable by anyone: only postdrop's own rule keeps it from creating
    // the log there.
    std::fs::set_permissions(log_dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let maillog = log_dir.path().join("maillog");
    let inst = Inst::new(
        &format!(
            "maillog_file = {}\nmaillog_file_prefixes = /var, {}\n",
            maillog.display(),
            log_dir.path().display()
        ),
        Some((owner.uid.as_raw(), owner.gid.as_raw())),
        Some(group.gid.as_raw()),
    );
    let copy = setgid_copy(group.gid.as_raw());
    let ids = (nobody.uid.as_raw(), nobody.gid.as_raw());
    let hostile = [
        ("LD_PRELOAD", "/nonexistent/evil.so"),
        ("TZ", "/etc/shadow"),
        ("MAIL_DEBUG", "1"),
    ];
    let body = b"Subject: intact\n\nbody\n".to_vec();
    // The instance's etc/ is the default here.
    let out = run_in_namespace(
        &inst.config_dir,
        ids,
        &copy.1,
        &["-v"],
        &hostile,
        &message(&body),
        true,
    );
    assert!(out.status.success(), "{out:?}");
    let queued = queue::list(&inst.qdir, Queue::Maildrop).unwrap();
    assert_eq!(queued.len(), 1);
    let qf = QueueFile::open_read_only(&inst.qdir, Queue::Maildrop, &queued[0]).unwrap();
    let mut content = Vec::new();
    qf.content().read_to_end(&mut content).unwrap();
    // Nothing meant for stdout or stderr landed in the queue file.
    assert_eq!(content, body);
    assert_eq!(qf.envelope().attribute("login_name"), Some("nobody"));
    // A set-gid postdrop never creates maillog_file; it appends to one
    // that exists.
    assert!(!maillog.exists());
    std::fs::write(&maillog, "").unwrap();
    std::os::unix::fs::chown(&maillog, Some(ids.0), None).unwrap();
    let out = run_in_namespace(
        &inst.config_dir,
        ids,
        &copy.1,
        &["-v"],
        &[],
        &message(&body),
        false,
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        std::fs::read_to_string(&maillog)
            .unwrap()
            .contains("postfix/postdrop[")
    );
}

#[test]
fn maillog_file_outside_the_prefixes_is_refused_and_a_new_one_is_private() {
    let log_dir = tempfile::tempdir().unwrap();
    let maillog = log_dir.path().join("maillog");
    let inst = Inst::new(
        &format!("maillog_file = {}\n", maillog.display()),
        None,
        None,
    );
    let out = inst.postdrop(&[], &message(b"hi\n"));
    assert!(out.status.success(), "{}", err(&out));
    assert!(
        err(&out).contains(&format!(
            "postdrop: error: maillog_file value '{}' does not match any prefix in maillog_file_prefixes; logging to syslog",
            maillog.display()
        )),
        "{}",
        err(&out)
    );
    assert!(!maillog.exists());
    let prefixes = format!("maillog_file_prefixes = {}\n", log_dir.path().display());
    for (perms, mode) in [("", 0o600), ("maillog_file_permissions = 0644\n", 0o644)] {
        let _ = std::fs::remove_file(&maillog);
        let main_cf = inst.config_dir.join("main.cf");
        let text = std::fs::read_to_string(&main_cf).unwrap();
        std::fs::write(&main_cf, format!("{text}{prefixes}{perms}")).unwrap();
        let out = inst.postdrop(&["-v"], &message(b"hi\n"));
        assert!(out.status.success(), "{}", err(&out));
        let meta = std::fs::metadata(&maillog).unwrap();
        assert_eq!(meta.mode() & 0o777, mode, "{perms}");
    }
}

/// With non_smtpd_milters set, cleanup answers only after the milters,
/// so postdrop does not hand over to pickup (which would make sendmail
/// wait for them) but writes the maildrop file and wakes pickup, even
/// on a unix public/pickup.
#[test]
fn with_non_smtpd_milters_a_maildrop_file_not_a_handover() {
    let inst = Inst::new("non_smtpd_milters = inet:127.0.0.1:9\n", None, None);
    let socket = inst.qdir.join(proto::pickup::SERVICE);
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let out = inst.postdrop(&["-r"], &message(b"Subject: m\n\nbody\n"));
    assert!(out.status.success(), "{}", err(&out));
    assert_eq!(queue::list(&inst.qdir, Queue::Maildrop).unwrap().len(), 1);
    // The one client was the wake-up, not a hand-over.
    let (mut s, _) = listener.accept().unwrap();
    let mut sent = Vec::new();
    s.read_to_end(&mut sent).unwrap();
    assert_eq!(sent, b"W");
}
