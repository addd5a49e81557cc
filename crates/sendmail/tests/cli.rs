//! sendmail, mailq and newaliases as real processes against a temporary
//! configuration and queue; postdrop is the real binary from the same
//! target directory (`cargo test -p sendmail -p postdrop` builds both).

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use queue::{Queue, QueueFile};

/// The directory holding the built binaries.
fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_sendmail"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Fails when postdrop has not been built.
fn need_postdrop() {
    assert!(
        bin_dir().join("postdrop").is_file(),
        "postdrop is not built: run scripts/test or cargo build --workspace --bins"
    );
}

struct Inst {
    _dir: tempfile::TempDir,
    base: PathBuf,
    config_dir: PathBuf,
    qdir: PathBuf,
}

impl Inst {
    /// An instance whose command_directory is the target dir (real postdrop).
    fn new(extra: &str) -> Inst {
        Inst::with_commands(&bin_dir(), extra)
    }

    fn with_commands(commands: &Path, extra: &str) -> Inst {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let config_dir = base.join("etc");
        let qdir = base.join("spool");
        std::fs::create_dir_all(&config_dir).unwrap();
        queue::layout::create_or_repair(&qdir, None, None).unwrap();
        std::fs::write(
            config_dir.join("main.cf"),
            format!(
                "queue_directory = {}\ncommand_directory = {}\ndaemon_directory = {}\n\
                 maillog_file = {}\nmaillog_file_prefixes = {}\n{extra}",
                qdir.display(),
                commands.display(),
                base.join("no-daemons").display(),
                base.join("maillog").display(),
                base.display()
            ),
        )
        .unwrap();
        Inst {
            _dir: dir,
            base,
            config_dir,
            qdir,
        }
    }

    fn cmd(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new(bin_dir().join(program));
        c.arg("-C").arg(&self.config_dir).args(args);
        c.env_remove("MAIL_CONFIG");
        c
    }

    /// Runs `program -C dir args` with `input` on stdin.
    fn run(&self, program: &str, args: &[&str], input: &[u8]) -> Output {
        feed(self.cmd(program, args), input)
    }

    fn sendmail(&self, args: &[&str], input: &[u8]) -> Output {
        self.run("sendmail", args, input)
    }

    /// The one maildrop file, opened.
    fn only_file(&self) -> QueueFile {
        let ids = queue::list(&self.qdir, Queue::Maildrop).unwrap();
        assert_eq!(ids.len(), 1, "maildrop: {ids:?}");
        QueueFile::open_read_only(&self.qdir, Queue::Maildrop, &ids[0]).unwrap()
    }

    fn assert_no_file(&self) {
        let s = queue::scan(&self.qdir, Queue::Maildrop).unwrap();
        assert!(s.ids.is_empty() && s.others.is_empty(), "maildrop: {s:?}");
    }
}

fn feed(c: Command, input: &[u8]) -> Output {
    feed_child(c, input).1
}

/// Runs `c` with `input` on stdin; its process id and its output.
fn feed_child(mut c: Command, input: &[u8]) -> (u32, Output) {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (pid, out)
}

fn content(qf: &QueueFile) -> Vec<u8> {
    let mut v = Vec::new();
    qf.content().read_to_end(&mut v).unwrap();
    v
}

fn login() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn queues_envelope_and_content_byte_for_byte() {
    need_postdrop();
    let inst = Inst::new("");
    let msg = b"Subject: hi\n\nbody \0 \xff\n..dots stay\n.\nafter the dot\n";
    let out = inst.sendmail(
        &[
            "-f",
            "Alice <alice@example.org>",
            "-F",
            "Alice A",
            "-N",
            "success,delay",
            "bob",
            "Carol <carol@example.net>, dave",
        ],
        msg,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let qf = inst.only_file();
    let env = qf.envelope();
    assert_eq!(env.sender, "alice@example.org");
    let rcpts: Vec<&str> = env.recipients.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(rcpts, ["bob", "carol@example.net", "dave"]);
    assert_eq!(env.recipients[0].dsn_notify, 2 | 8);
    assert_eq!(env.attribute("full_name"), Some("Alice A"));
    assert_eq!(env.attribute("login_name"), Some(login().as_str()));
    assert_eq!(env.attribute("rewrite_context"), Some("local"));
    assert_eq!(env.attribute("flags"), Some("0"));
    // The lone dot ended the message; nothing was unstuffed.
    assert_eq!(content(&qf), b"Subject: hi\n\nbody \0 \xff\n..dots stay\n");
}

#[test]
fn dash_i_and_oi_keep_lone_dots_and_crlf_is_kept() {
    need_postdrop();
    let msg = b"Subject: x\r\n\r\nline\r\n.\r\nafter\r\n";
    for flag in ["-i", "-oi"] {
        let inst = Inst::new("");
        let out = inst.sendmail(&[flag, "bob"], msg);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(content(&inst.only_file()), msg);
    }
    let inst = Inst::new("");
    let out = inst.sendmail(&["bob"], msg);
    assert!(out.status.success());
    assert_eq!(content(&inst.only_file()), b"Subject: x\r\n\r\nline\r\n");
}

#[test]
fn dash_t_leaves_extraction_to_cleanup() {
    need_postdrop();
    let inst = Inst::new("");
    let msg = b"From alice Mon Nov 23 12:00:00 2026\nTo: bob\nBcc: carol\n\nhi\n";
    let out = inst.sendmail(&["-t", "-r", "<>"], msg);
    assert!(out.status.success(), "{}", stderr(&out));
    let qf = inst.only_file();
    assert_eq!(qf.envelope().sender, "");
    assert!(qf.envelope().recipients.is_empty());
    assert_eq!(qf.envelope().attribute("flags"), Some("1"));
    // The From_ line is dropped; To and Bcc stay for cleanup.
    assert_eq!(content(&qf), b"To: bob\nBcc: carol\n\nhi\n");
}

#[test]
fn dash_t_without_any_recipient_is_refused() {
    need_postdrop();
    let inst = Inst::new("");
    let out = inst.sendmail(
        &["-t"],
        b"Subject: x\nTo: undisclosed-recipients:;\n\nTo: bob\n",
    );
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("No recipient addresses found in message header"),
        "{}",
        stderr(&out)
    );
    inst.assert_no_file();
    // A command-line recipient is enough.
    let out = inst.sendmail(&["-t", "carol"], b"Subject: x\n\nhi\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(inst.only_file().envelope().recipients[0].address, "carol");
}

#[test]
fn mail_config_environment_selects_the_instance() {
    need_postdrop();
    let inst = Inst::new("");
    let mut c = Command::new(bin_dir().join("sendmail"));
    c.env("MAIL_CONFIG", &inst.config_dir).arg("bob");
    let out = feed(c, b"hi\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(content(&inst.only_file()), b"hi\n");
    // -C with the main.cf file name means its directory.
    let inst = Inst::new("");
    let mut c = Command::new(bin_dir().join("sendmail"));
    c.arg("-C").arg(inst.config_dir.join("main.cf")).arg("bob");
    let out = feed(c, b"hi\n");
    assert!(out.status.success(), "{}", stderr(&out));
    inst.only_file();
}

#[test]
fn usage_errors_exit_64_and_queue_nothing() {
    let inst = Inst::new("");
    for args in [
        &["-z", "bob"][..],
        &["-f"][..],
        &["-bd"][..],
        &["-N", "sometimes", "bob"][..],
        &[][..],
    ] {
        let out = inst.sendmail(args, b"hi\n");
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("fatal: "), "{}", stderr(&out));
        inst.assert_no_file();
    }
    let out = inst.sendmail(&[], b"hi\n");
    assert!(
        stderr(&out).contains("Recipient addresses must be specified"),
        "{}",
        stderr(&out)
    );
}

/// sendmail starts without Rust's runtime set-up (privsep::entry): closed
/// standard descriptors are still opened on /dev/null before anything
/// else, so neither its own diagnostics nor postdrop's land in a file it
/// opened; and a write to a postdrop that is gone is an error, not a
/// SIGPIPE death.
#[test]
fn closed_stdout_and_stderr_take_nothing_into_the_message() {
    need_postdrop();
    let inst = Inst::new("");
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("exec \"$@\" >&- 2>&-")
        .arg("sh")
        .arg(bin_dir().join("sendmail"))
        .arg("-C")
        .arg(&inst.config_dir)
        .args(["-v", "-v", "-i", "bob"]);
    c.env_remove("MAIL_CONFIG");
    let body = b"Subject: closed\n\nbody\n";
    let out = feed(c, body);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(content(&inst.only_file()), body);
    // A postdrop that reads nothing: sendmail reports the broken pipe.
    let fake = tempfile::tempdir().unwrap();
    let script = fake.path().join("postdrop");
    std::fs::write(&script, "#!/bin/sh\nexec 0<&-\nsleep 1\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let inst = Inst::with_commands(fake.path(), "");
    let out = inst.sendmail(&["-i", "bob"], &vec![b'x'; 1 << 20]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("lost connection to postdrop"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn message_over_size_limit_is_refused_without_a_file() {
    need_postdrop();
    let inst = Inst::new("message_size_limit = 100000\n");
    let big = vec![b'x'; 400_000];
    let out = inst.sendmail(&["-i", "bob"], &big);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("postdrop: fatal: uid="), "{err}");
    assert!(err.contains("message size exceeds limit"), "{err}");
    assert!(err.contains("sendmail: fatal: "), "{err}");
    assert!(err.contains("message file too big"), "{err}");
    inst.assert_no_file();
    // Just under the limit is fine.
    let out = inst.sendmail(&["-i", "bob"], &big[..100_000]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = std::fs::read_to_string(inst.base.join("maillog")).unwrap();
    assert!(log.contains("postfix/postdrop["), "{log}");
}

#[test]
fn twenty_megabytes_stream_in_bounded_memory() {
    need_postdrop();
    let inst = Inst::new("message_size_limit = 0\n");
    let mut msg = b"Subject: big\n\n".to_vec();
    let line: Vec<u8> = (0..999u32).map(|i| b'a' + (i % 26) as u8).collect();
    while msg.len() < 20 * 1024 * 1024 {
        msg.extend_from_slice(&line);
        msg.push(b'\n');
    }
    // One 3 MB line too: line length does not matter either.
    msg.extend(std::iter::repeat_n(b'z', 3 * 1024 * 1024));
    msg.push(b'\n');
    // Neither sendmail nor postdrop may hold the message: both run with
    // their data segment limited to 16 MB, below the message size.
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg("ulimit -d 16384 && exec \"$0\" -C \"$1\" -oi bob")
        .arg(bin_dir().join("sendmail"))
        .arg(&inst.config_dir);
    let out = feed(c, &msg);
    assert!(out.status.success(), "{}", stderr(&out));
    let qf = inst.only_file();
    assert_eq!(qf.content_len(), msg.len() as u64);
    assert!(content(&qf) == msg, "content differs");
    // The same limit does stop a program that holds it all.
    let mut c = Command::new("/bin/sh");
    c.arg("-c").arg("ulimit -d 16384 && x=$(cat) && echo ${#x}");
    let out = feed(c, &msg);
    assert!(
        !out.status.success(),
        "a shell holding the message fits in 16 MB?"
    );
}

/// A command_directory with stand-ins for postqueue and postalias that
/// record how they were run.
fn fake_commands(dir: &Path) -> PathBuf {
    let cmds = dir.join("fake-bin");
    std::fs::create_dir_all(&cmds).unwrap();
    for name in ["postqueue", "postalias"] {
        let p = cmds.join(name);
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\necho \"$0 $* MAIL_CONFIG=$MAIL_CONFIG\" >> {}/ran\nexit 3\n",
                dir.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    cmds
}

#[test]
fn other_modes_exec_the_postfix_commands() {
    let outer = tempfile::tempdir().unwrap();
    let base = outer.path().canonicalize().unwrap();
    let cmds = fake_commands(&base);
    let inst = Inst::with_commands(&cmds, "alias_database = hash:/a/aliases, hash:/b/more\n");
    let ran = base.join("ran");
    let cases: &[(&str, &[&str], &str)] = &[
        ("sendmail", &["-bp"], "postqueue -c CONF -p"),
        ("mailq", &[], "postqueue -c CONF -p"),
        ("sendmail", &["-q"], "postqueue -c CONF -f"),
        (
            "sendmail",
            &["-qRexample.org"],
            "postqueue -c CONF -s example.org",
        ),
        (
            "sendmail",
            &["-bi"],
            "postalias -c CONF hash:/a/aliases hash:/b/more",
        ),
        (
            "sendmail",
            &["-I"],
            "postalias -c CONF hash:/a/aliases hash:/b/more",
        ),
        (
            "newaliases",
            &[],
            "postalias -c CONF hash:/a/aliases hash:/b/more",
        ),
    ];
    let conf = inst.config_dir.display().to_string();
    for (program, args, want) in cases {
        let _ = std::fs::remove_file(&ran);
        let out = inst.run(program, args, b"");
        // The exec'd command's status is the command's status.
        assert_eq!(
            out.status.code(),
            Some(3),
            "{program} {args:?}: {}",
            stderr(&out)
        );
        let got = std::fs::read_to_string(&ran).unwrap();
        let want = format!(
            "{}/{} MAIL_CONFIG={conf}\n",
            cmds.display(),
            want.replace("CONF", &conf)
        );
        assert_eq!(got, want, "{program} {args:?}");
    }
    // -qinterval: accepted, nothing to do.
    let _ = std::fs::remove_file(&ran);
    let out = inst.run("sendmail", &["-q30m"], b"");
    assert!(out.status.success());
    assert!(!ran.exists());
    // -bs without smtpd.
    let out = inst.run("sendmail", &["-bs"], b"");
    assert_eq!(out.status.code(), Some(69));
    assert!(
        stderr(&out).contains("sendmail: fatal: -bs is not available: smtpd is not installed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn missing_postdrop_is_reported() {
    let outer = tempfile::tempdir().unwrap();
    let inst = Inst::with_commands(outer.path(), "");
    let out = inst.sendmail(&["bob"], b"hi\n");
    assert_eq!(out.status.code(), Some(69), "{}", stderr(&out));
    assert!(stderr(&out).contains("postdrop"), "{}", stderr(&out));
}

#[test]
fn dash_bs_runs_smtpd_in_stand_alone_mode() {
    let outer = tempfile::tempdir().unwrap();
    let base = outer.path().canonicalize().unwrap();
    let inst = Inst::with_commands(&base, "");
    let daemons = inst.base.join("no-daemons");
    std::fs::create_dir_all(&daemons).unwrap();
    let smtpd = daemons.join("smtpd");
    std::fs::write(
        &smtpd,
        "#!/bin/sh\necho \"220 stand-in $* $MAIL_CONFIG\"\nread line\necho \"got $line\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&smtpd, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = inst.sendmail(&["-bs"], b"QUIT\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("220 stand-in -S {}\ngot QUIT\n", inst.config_dir.display())
    );
}

#[test]
fn postdrop_failures_pass_their_status_on() {
    need_postdrop();
    let inst = Inst::new("");
    // The maildrop directory is gone: postdrop cannot create its file.
    std::fs::remove_dir_all(inst.qdir.join("maildrop")).unwrap();
    // A small message: sendmail became postdrop; its status and its words
    // are the command's.
    let out = inst.sendmail(&["bob"], b"hi\n");
    assert_eq!(out.status.code(), Some(73), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("postdrop: fatal: uid="), "{err}");
    assert!(!err.contains("sendmail: fatal: "), "{err}");
    // A large one went to a postdrop child: sendmail reports its status.
    let out = inst.sendmail(&["-i", "bob"], &vec![b'x'; 300_000]);
    assert_eq!(out.status.code(), Some(73), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("postdrop: fatal: uid="), "{err}");
    assert!(
        err.contains("sendmail: fatal: ") && err.contains("message not queued"),
        "{err}"
    );
}

/// Up to 256 KiB of frames, sendmail executes postdrop in its own place
/// with them in a memory file on stdin (one process a submission); above
/// that, postdrop is a child reading a pipe while the rest streams in.
/// -bv always has a child (sendmail speaks after it).
#[test]
fn small_messages_exec_postdrop_in_place_and_large_ones_stream_to_a_child() {
    let fake = tempfile::tempdir().unwrap();
    let report = fake.path().join("report");
    let script = fake.path().join("postdrop");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$$ $(readlink /proc/$$/fd/0) $(wc -c)\" > {}\n",
            report.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let inst = Inst::with_commands(fake.path(), "");
    let run = |args: &[&str], input: &[u8]| -> (u32, Vec<String>) {
        let (pid, out) = feed_child(inst.cmd("sendmail", args), input);
        assert!(out.status.success(), "{}", stderr(&out));
        let words = std::fs::read_to_string(&report).unwrap();
        (pid, words.split_whitespace().map(str::to_owned).collect())
    };
    let (pid, words) = run(&["-i", "bob"], &vec![b'x'; 200_000]);
    assert_eq!(words[0], pid.to_string(), "{words:?}");
    assert!(words[1].starts_with("/memfd:sendmail"), "{words:?}");
    let frames: usize = words.last().unwrap().parse().unwrap();
    assert!(frames > 200_000 && frames <= 256 * 1024, "{words:?}");
    let (pid, words) = run(&["-i", "bob"], &vec![b'x'; 300_000]);
    assert_ne!(words[0], pid.to_string(), "{words:?}");
    assert!(words[1].starts_with("pipe:"), "{words:?}");
    assert!(
        words.last().unwrap().parse::<usize>().unwrap() > 300_000,
        "{words:?}"
    );
    let (pid, words) = run(&["-bv", "bob"], b"");
    assert_ne!(words[0], pid.to_string(), "{words:?}");
    assert!(words[1].starts_with("pipe:"), "{words:?}");
}

#[test]
fn authorized_submit_users_refuses_with_exit_77_in_sendmail_and_postdrop() {
    need_postdrop();
    let me = login();
    let inst = Inst::new(&format!("authorized_submit_users = !{me}, static:anyone\n"));
    let out = inst.sendmail(&["-i", "bob"], b"Subject: x\n\nbody\n");
    assert_eq!(out.status.code(), Some(77), "{}", stderr(&out));
    let want = format!("fatal: User {me} is not allowed to submit mail");
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
    // postdrop run directly says the same.
    let mut postdrop = Command::new(bin_dir().join("postdrop"));
    postdrop.arg("-c").arg(&inst.config_dir);
    let out = feed(postdrop, b"");
    assert_eq!(out.status.code(), Some(77), "{}", stderr(&out));
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
    inst.assert_no_file();
    // Listed by name: admitted.
    let inst = Inst::new(&format!("authorized_submit_users = {me}\n"));
    let out = inst.sendmail(&["-i", "bob"], b"Subject: x\n\nbody\n");
    assert!(out.status.success(), "{}", stderr(&out));
    inst.only_file();
}
