//! postdrop as a real process: what it writes, what it refuses, and that a
//! refused or cut-off submission leaves no file.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
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
    let (Ok(Some(owner)), Ok(Some(group)), Ok(Some(nobody))) = (
        nix::unistd::User::from_name("postfix"),
        nix::unistd::Group::from_name("postdrop"),
        nix::unistd::User::from_name("nobody"),
    ) else {
        panic!("needs accounts postfix, nobody and group postdrop");
    };
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
    // unless /etc/postfix/main.cf lists it.
    let dir = inst.config_dir.parent().unwrap().join("sbin");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.join("postdrop");
    std::fs::copy(env!("CARGO_BIN_EXE_postdrop"), &copy).unwrap();
    std::os::unix::fs::chown(&copy, Some(0), Some(group.gid.as_raw())).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o2755)).unwrap();
    let mut c = Command::new(&copy);
    std::os::unix::process::CommandExt::uid(&mut c, nobody.uid.as_raw());
    std::os::unix::process::CommandExt::gid(&mut c, nobody.gid.as_raw());
    c.arg("-c").arg(&inst.config_dir);
    let out = run(c, &message(b"hi\n"));
    if out.status.code() == Some(0) {
        // /etc/postfix/main.cf allows it, or the file system ignores set-gid (nosuid).
        println!("note: set-gid check not exercised here: {}", err(&out));
        return;
    }
    assert_eq!(out.status.code(), Some(77), "{}", err(&out));
    assert!(
        err(&out).contains("unauthorized configuration directory"),
        "{}",
        err(&out)
    );
    assert_eq!(queue::list(&inst.qdir, Queue::Maildrop).unwrap().len(), 1);
}
