//! pop3d end to end (issue 9): Python's poplib (tests/py/pop3check.py)
//! against a real instance with the smtp tests' virtual users: alice on a
//! Maildir, carol on an mbox, mail delivered by the suite through smtpd
//! and virtual. Every command and capability, plain, STLS and POP3S, USER/PASS,
//! AUTH PLAIN and AUTH LOGIN; deletions only at QUIT; UIDLs stable across
//! sessions and restarts and Dovecot's for a dovecot-uidlist; [IN-USE];
//! the pre-login command cap; as root, the processes' users and jail.

use crate::util::{
    SmtpInstance, SmtpSetup, answers, free_port, local, need_smtp, read_maildir, wait_until,
};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

struct Pop {
    s: SmtpInstance,
    port: u16,
    ssl_port: u16,
}

fn start(main: &[&str]) -> Pop {
    start_with_users(main, &[])
}

/// As [`start`], with more virt.test users (address, mailbox).
fn start_with_users(main: &[&str], users: &[(&str, &str)]) -> Pop {
    need_smtp();
    testkit::need_bins(&["pop3d"]);
    let port = free_port();
    let ssl_port = free_port();
    let mut setup = SmtpSetup::new()
        .tls()
        .user("carol@virt.test", "carol")
        .master(&format!(
            "127.0.0.1:{port} inet n n n - - pop3d\n\
             127.0.0.1:{ssl_port} inet n n n - - pop3d\n  -o pop3d_tls_wrappermode=yes\n"
        ))
        .main("pop3d_login_failure_delay = 0");
    for m in main {
        setup = setup.main(m);
    }
    for (address, mailbox) in users {
        setup = setup.user(address, mailbox);
    }
    let s = setup.start();
    for p in [port, ssl_port] {
        assert!(
            wait_until(Duration::from_secs(10), || answers(local(p))),
            "pop3d not on {p}\n{}",
            s.inst.log()
        );
    }
    Pop { s, port, ssl_port }
}

impl Pop {
    fn run(&self, check: &str, port: u16, args: &[&str]) -> Output {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/pop3check.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script)
            .arg(check)
            .arg("--port")
            .arg(port.to_string());
        cmd.arg("--smtp-port").arg(self.s.port.to_string());
        if let Some(p) = &self.s.pki {
            cmd.arg("--ca").arg(&p.ca);
        }
        cmd.args(args).output().unwrap()
    }

    fn py(&self, check: &str, args: &[&str]) -> String {
        let port = if args.contains(&"ssl") {
            self.ssl_port
        } else {
            self.port
        };
        let out = self.run(check, port, args);
        assert!(
            out.status.success(),
            "pop3check.py {check} {args:?} failed:\n{}{}\nmaillog:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The maillog (lossy: it may hold bytes that are not UTF-8).
    fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.s.base.join("maillog")).unwrap_or_default())
            .into_owned()
    }

    fn mbox(&self) -> Vec<u8> {
        std::fs::read(self.s.base.join("vmail/carol")).unwrap_or_default()
    }

    fn send(&self, user: &str, n: usize, tag: &str) {
        self.py(
            "send",
            &["--user", user, "--count", &n.to_string(), "--tag", tag],
        );
    }

    fn wait_mbox(&self, n: usize) {
        let count = || {
            self.mbox()
                .split(|&b| b == b'\n')
                .filter(|l| l.starts_with(b"From "))
                .count()
        };
        assert!(
            wait_until(Duration::from_secs(30), || count() >= n),
            "carol has {} messages\n{}",
            count(),
            self.s.inst.log()
        );
    }
}

/// A session's JSON summary: (count, uidls, messages).
struct Summary {
    count: usize,
    sizes: Vec<u64>,
    uidl: Vec<String>,
    messages: Vec<Vec<u8>>,
}

fn parse(out: &str) -> Summary {
    // A small hand parser for the fixed JSON shape pop3check.py prints.
    let line = out.lines().last().unwrap();
    let field = |name: &str| -> &str {
        let start = line.find(&format!("\"{name}\": ")).unwrap() + name.len() + 4;
        &line[start..]
    };
    let count: usize = field("count")
        .split([',', '}'])
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let pairs = |name: &str| -> Vec<String> {
        let text = field(name);
        let end = text.find("]]").map_or(2, |e| e + 2);
        text[..end]
            .split("], [")
            .filter_map(|p| {
                let p = p.trim_matches(|c| c == '[' || c == ']');
                p.split(", ")
                    .nth(1)
                    .map(|v| v.trim_matches('"').to_string())
            })
            .collect()
    };
    let sizes = pairs("list").iter().map(|s| s.parse().unwrap()).collect();
    let uidl = pairs("uidl");
    let text = field("messages");
    let end = text.find(']').unwrap();
    let messages = text[1..end]
        .split(", ")
        .filter(|s| !s.is_empty())
        .map(|s| b64(s.trim_matches('"')))
        .collect();
    Summary {
        count,
        sizes,
        uidl,
        messages,
    }
}

fn b64(s: &str) -> Vec<u8> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import base64,sys; sys.stdout.buffer.write(base64.b64decode(sys.argv[1]))",
            s,
        ])
        .output()
        .unwrap();
    out.stdout
}

fn crlf(m: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, &b) in m.iter().enumerate() {
        if b == b'\n' && (i == 0 || m[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

fn maildir_files(p: &Pop, user: &str) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = read_maildir(&p.s.base.join("vmail").join(user))
        .iter()
        .map(|m| crlf(m))
        .collect();
    v.sort();
    v
}

#[test]
fn pop3_every_command_on_maildir_and_mbox_plain_stls_pop3s() {
    let p = start(&[]);
    p.send("alice@virt.test", 3, "a");
    p.send("carol@virt.test", 3, "c");
    p.s.wait_mail("alice", 3);
    p.wait_mbox(3);
    let mut first_uidls: Vec<Vec<String>> = Vec::new();
    for user in ["alice@virt.test", "carol@virt.test"] {
        let mut uidls = Vec::new();
        for (mode, auth) in [
            ("plain", "user"),
            ("stls", "plain"),
            ("ssl", "login"),
            ("plain", "login"),
        ] {
            let args = ["--user", user, "--mode", mode, "--auth", auth];
            p.py("capa", &args);
            let sum = parse(&p.py("session", &args));
            assert_eq!(sum.count, 3, "{user} {mode}");
            assert_eq!(sum.messages.len(), 3);
            for (m, size) in sum.messages.iter().zip(&sum.sizes) {
                assert_eq!(
                    m.len() as u64,
                    *size,
                    "{user} {mode}: LIST size and RETR octets"
                );
                let text = String::from_utf8_lossy(m);
                assert!(
                    text.contains("\r\n.starts with a dot\r\n..two dots\r\n"),
                    "{text}"
                );
            }
            if user.starts_with("alice") {
                let mut got = sum.messages.clone();
                got.sort();
                assert_eq!(
                    got,
                    maildir_files(&p, "alice"),
                    "RETR is the Maildir file with CRLF"
                );
                for u in &sum.uidl {
                    assert_eq!(u.len(), 16, "Dovecot's %08Xu%08Xv: {u}");
                }
            }
            uidls.push(sum.uidl);
        }
        assert!(
            uidls.windows(2).all(|w| w[0] == w[1]),
            "UIDLs differ between sessions: {uidls:?}"
        );
        first_uidls.push(uidls[0].clone());
    }
    // Stable across a restart.
    p.s.inst.postfix(&["stop"]);
    p.s.inst.start();
    assert!(wait_until(Duration::from_secs(10), || answers(local(
        p.port
    ))));
    for (user, before) in ["alice@virt.test", "carol@virt.test"]
        .iter()
        .zip(&first_uidls)
    {
        let sum = parse(&p.py("session", &["--user", user]));
        assert_eq!(&sum.uidl, before, "{user}: UIDLs changed across a restart");
    }
    let log = p.log();
    assert!(
        log.contains("login: user=<alice@virt.test>, method=PLAIN"),
        "{log}"
    );
    assert!(log.contains(", TLS"), "{log}");
}

#[test]
fn pop3_deletes_only_at_quit() {
    let p = start(&[]);
    p.send("alice@virt.test", 3, "d");
    p.send("carol@virt.test", 3, "d");
    p.s.wait_mail("alice", 3);
    p.wait_mbox(3);
    for user in ["alice@virt.test", "carol@virt.test"] {
        // Dropped connection: nothing removed.
        let before = parse(&p.py("session", &["--user", user, "--dele", "1", "--end", "drop"]));
        assert_eq!(before.count, 3);
        let after = parse(&p.py("session", &["--user", user, "--dele", "2", "--dele", "3"]));
        assert_eq!(after.count, 3, "{user}: a dropped session deleted");
        assert_eq!(after.uidl, before.uidl);
        // QUIT applied the two deletions: one left, the first.
        let last = parse(&p.py("session", &["--user", user]));
        assert_eq!(last.count, 1, "{user}: QUIT did not delete");
        assert_eq!(last.uidl, vec![before.uidl[0].clone()]);
    }
    assert_eq!(read_maildir(&p.s.base.join("vmail/alice")).len(), 1);
    let mbox = String::from_utf8_lossy(&p.mbox()).into_owned();
    assert_eq!(mbox.matches("\nSubject: pop d ").count(), 1, "{mbox}");
    assert!(mbox.contains("Subject: pop d 0"), "{mbox}");
}

/// The mail processes (pop3d with POP3D_ROLE=mail) and login processes.
fn role_pids(role: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ"))
            && env
                .split(|&b| b == 0)
                .any(|v| v == format!("POP3D_ROLE={role}").as_bytes())
        {
            out.push(pid);
        }
    }
    out
}

/// This instance's processes of a role (cwd or root is its queue directory).
fn instance_pids(p: &Pop, role: &str) -> Vec<i32> {
    let qdir = std::fs::canonicalize(&p.s.inst.qdir).unwrap();
    role_pids(role)
        .into_iter()
        .filter(|&pid| {
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"));
            let root = std::fs::read_link(format!("/proc/{pid}/root"));
            cwd.is_ok_and(|c| c == qdir) || root.is_ok_and(|r| r == qdir)
        })
        .collect()
}

fn status_field(pid: i32, name: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Runs a session that stays logged in; returns the child and its summary line.
fn hold(p: &Pop, user: &str, extra: &[&str]) -> (std::process::Child, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/pop3check.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args([
            "session",
            "--port",
            &p.port.to_string(),
            "--user",
            user,
            "--end",
            "hold",
        ])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.starts_with('{'), "hold: {line}\n{}", p.log());
    (child, line)
}

#[test]
fn pop3_sigkill_of_the_mail_process_deletes_nothing_and_in_use() {
    let p = start(&[]);
    p.send("alice@virt.test", 2, "k");
    p.s.wait_mail("alice", 2);
    let (mut child, _) = hold(&p, "alice@virt.test", &["--dele", "1", "--dele", "2"]);
    // A second session meanwhile: [IN-USE].
    assert!(
        p.py("inuse", &["--user", "alice@virt.test", "--held"])
            .contains("in-use")
    );
    let mine: Vec<i32> = role_pids("mail")
        .into_iter()
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|e| e.windows(21).any(|w| w == b"POP3D_USER=alice@virt"))
                && std::fs::read_link(format!("/proc/{pid}/cwd"))
                    .is_ok_and(|c| c.starts_with(&p.s.inst.qdir))
        })
        .collect();
    assert_eq!(mine.len(), 1, "mail processes: {mine:?}");
    crate::util::kill9(mine[0]);
    drop(child.stdin.take());
    let _ = child.wait();
    let sum = parse(&p.py("session", &["--user", "alice@virt.test"]));
    assert_eq!(sum.count, 2, "a killed mail process deleted");
}

#[test]
fn pop3_bad_login_and_command_cap() {
    let p = start(&["pop3d_login_command_limit = 5"]);
    p.send("bob@virt.test", 1, "b");
    p.s.wait_mail("bob", 1);
    assert!(
        p.py("inuse", &["--user", "bob@virt.test"])
            .contains("in-use")
    );
    let out = p.py("badlogin", &["--password", "wrong"]);
    assert!(out.contains("refused"));
    let out = p.py(
        "badlogin",
        &["--password", "wrong", "--auth", "plain", "--mode", "stls"],
    );
    assert!(out.contains("refused"));
    let out = p.py("limit", &["--count", "8"]);
    assert!(out.contains("Too many commands before login"), "{out}");
    assert!(!p.log().contains("POP3D_ROLE"));
}

#[test]
fn pop3_capabilities_as_configured() {
    let p = start(&[
        "pop3d_expire = NEVER",
        "pop3d_login_delay = 60",
        "mail_name = TestMail",
    ]);
    p.py(
        "capa",
        &[
            "--expect",
            "EXPIRE=NEVER",
            "--expect",
            "LOGIN-DELAY=60",
            "--expect",
            "IMPLEMENTATION=TestMail",
        ],
    );
    let out = p.py("capa", &["--mode", "ssl", "--expect", "EXPIRE=NEVER"]);
    // pop3d_apop = no (the default): no APOP timestamp, APOP refused.
    assert!(out.contains("\"apop_timestamp\": false"), "{out}");
}

/// APOP with pop3d_apop = yes: the greeting carries `<pid.time@host>`,
/// poplib's apop() logs in (the auth service checks the digest against
/// the {PLAIN} passwd-file entry), plain and after STLS; a wrong secret
/// gets [AUTH]. The same session pipelines STAT, LIST, UIDL and NOOP in
/// one write. Each login went through the auth service's REQUEST.
#[test]
fn pop3_apop_and_pipelining() {
    let p = start(&["pop3d_apop = yes", "myhostname = pop.virt.test"]);
    p.send("alice@virt.test", 2, "ap");
    p.s.wait_mail("alice", 2);
    for mode in ["plain", "stls"] {
        let out = p.py("apop", &["--mode", mode]);
        assert!(out.contains("\"count\": 2"), "{mode}: {out}");
    }
    let out = p.py("capa", &[]);
    assert!(out.contains("\"apop_timestamp\": true"), "{out}");
    // Logins in a row on one mailbox: the session lock is gone before
    // QUIT's +OK, so none gets [IN-USE].
    p.py("timing", &["--count", "40"]);
    let sum = parse(&p.py("session", &["--auth", "apop"]));
    assert_eq!(sum.count, 2);
    let log = p.log();
    assert!(
        log.contains("login: user=<alice@virt.test>, method=APOP"),
        "{log}"
    );
    assert!(log.contains("authentication failed: method=APOP"), "{log}");
    assert!(!log.contains("did not authenticate for it"), "{log}");
}

#[test]
fn pop3_keeps_a_dovecot_uidlist() {
    let p = start(&[]);
    p.send("alice@virt.test", 2, "u");
    p.s.wait_mail("alice", 2);
    let dir = p.s.base.join("vmail/alice");
    let mut names: Vec<String> = std::fs::read_dir(dir.join("new"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // As Dovecot 2.3 writes it: version 3, the file names after ':'.
    let list = format!(
        "3 V1733000000 N18 G5f2b1c0a9e8d7c6b5a4938271605f4e3\n16 :{}\n17 W999 :{}\n",
        names[0], names[1]
    );
    std::fs::write(dir.join("dovecot-uidlist"), list).unwrap();
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(dir.join("dovecot-uidlist"), Some(65534), Some(65534)).unwrap();
    }
    let sum = parse(&p.py("session", &["--user", "alice@virt.test"]));
    assert_eq!(
        sum.uidl,
        vec![
            "00000010674b7b40".to_string(),
            "00000011674b7b40".to_string()
        ]
    );
}

#[test]
fn pop3_processes_as_root() {
    if !nix::unistd::geteuid().is_root() {
        return testkit::skip("not root");
    }
    let p = start(&[]);
    p.send("alice@virt.test", 1, "r");
    p.s.wait_mail("alice", 1);
    let out = p.py("badlogin", &["--password", "wrong"]);
    assert!(out.contains("refused"));
    let log = p.log();
    assert!(log.contains("authentication failed: method=PASS"), "{log}");
    // A mail process logs "Disconnected" when it ends: none ran.
    assert!(
        !log.contains("Disconnected") && instance_pids(&p, "mail").is_empty(),
        "a failed login started a mail process:\n{log}"
    );
    // Under STLS, where the login process stays to terminate TLS (a
    // cleartext session's login process exits at the hand-off).
    let ca = p.s.pki.as_ref().unwrap().ca.display().to_string();
    let (mut child, _) = hold(&p, "alice@virt.test", &["--mode", "stls", "--ca", &ca]);
    let qdir = std::fs::canonicalize(&p.s.inst.qdir).unwrap();
    let postfix = nix::unistd::User::from_name("postfix")
        .unwrap()
        .unwrap()
        .uid
        .as_raw();
    let logins: Vec<i32> = role_pids("login")
        .into_iter()
        .filter(|&pid| std::fs::read_link(format!("/proc/{pid}/root")).is_ok_and(|r| r == qdir))
        .collect();
    assert_eq!(
        logins.len(),
        1,
        "login processes chrooted to {}: {logins:?}",
        qdir.display()
    );
    let uid = status_field(logins[0], "Uid");
    assert!(
        uid.split_whitespace().all(|u| u == postfix.to_string()),
        "login Uid: {uid}"
    );
    let mails = instance_pids(&p, "mail");
    assert_eq!(mails.len(), 1, "mail processes: {mails:?}");
    let uid = status_field(mails[0], "Uid");
    assert!(
        uid.split_whitespace().all(|u| u == "65534"),
        "mail process Uid: {uid}"
    );
    let gid = status_field(mails[0], "Gid");
    assert!(
        gid.split_whitespace().all(|g| g == "65534"),
        "mail process Gid: {gid}"
    );
    drop(child.stdin.take());
    let _ = child.wait();
}

/// A private Dovecot POP3 server (Debian's dovecot-core and dovecot-pop3d)
/// on a free port over one Maildir, running as root with the mail process
/// as `uid`.
struct Dovecot {
    dir: tempfile::TempDir,
    child: std::process::Child,
    port: u16,
}

impl Dovecot {
    fn start(maildir: &Path, uid: u32) -> Dovecot {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().canonicalize().unwrap();
        // pop3-login runs as dovenull and must reach its socket under base_dir.
        std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let port = free_port();
        let b = d.display();
        let m = maildir.display();
        let conf = format!(
            "base_dir = {b}/run\nstate_dir = {b}/state\nlog_path = {b}/dovecot.log\n\
             protocols = pop3\nlisten = 127.0.0.1\nssl = no\n\
             default_internal_user = root\ndefault_internal_group = root\n\
             default_login_user = dovenull\n\
             disable_plaintext_auth = no\nauth_mechanisms = plain\n\
             pop3_uidl_format = %08Xu%08Xv\nfirst_valid_uid = 1\n\
             mail_location = maildir:{m}\n\
             passdb {{\n  driver = static\n  args = password=pw\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={uid} home={m}\n}}\n\
             service pop3-login {{\n  inet_listener pop3 {{\n    port = {port}\n  }}\n  inet_listener pop3s {{\n    port = 0\n  }}\n}}\n\
             service anvil {{\n  unix_listener anvil-auth-penalty {{\n    mode = 0\n  }}\n}}\n"
        );
        std::fs::write(d.join("dovecot.conf"), conf).unwrap();
        let child = Command::new("/usr/sbin/dovecot")
            .arg("-F")
            .arg("-c")
            .arg(d.join("dovecot.conf"))
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(d.join("stderr")).unwrap())
            .spawn()
            .unwrap();
        let mut dc = Dovecot { dir, child, port };
        let up = wait_until(Duration::from_secs(10), || answers(local(port)));
        assert!(
            up && dc.child.try_wait().unwrap().is_none(),
            "Dovecot did not start:\n{}\n{}",
            std::fs::read_to_string(d.join("stderr")).unwrap_or_default(),
            dc.log()
        );
        dc
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        if !wait_until(Duration::from_secs(5), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        }) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Dovecot serves a Maildir first (writing its dovecot-uidlist); pop3d
/// then gives the same UIDLs; after new mail, Dovecot reads the list pop3d
/// wrote and both still agree.
#[test]
fn pop3_gives_the_uidls_a_real_dovecot_gave() {
    if !nix::unistd::geteuid().is_root() {
        return testkit::skip("not root (the private Dovecot runs as root)");
    }
    testkit::need_program("/usr/lib/dovecot/pop3", "dovecot-pop3d");
    let p = start(&[]);
    p.send("alice@virt.test", 3, "dv");
    p.s.wait_mail("alice", 3);
    let md = p.s.base.join("vmail/alice");
    // One second, microseconds of different widths: Dovecot gives UIDs by
    // their value, and so must pop3d when it reads Dovecot's list.
    for e in std::fs::read_dir(md.join("new")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        let body = std::fs::read_to_string(e.path()).unwrap();
        let n = (0..3)
            .find(|n| body.contains(&format!("pop dv {n}")))
            .unwrap();
        let rest = name.split_once('P').unwrap().1;
        let to = format!("1700000000.M{}P{rest}", [99_000, 150_000, 200_000][n]);
        std::fs::rename(e.path(), md.join("new").join(to)).unwrap();
    }
    let dovecot_session = |p: &Pop| -> Summary {
        let dc = Dovecot::start(&md, 65534);
        let out = p.run("session", dc.port, &["--user", "alice", "--password", "pw"]);
        assert!(
            out.status.success(),
            "Dovecot session: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            dc.log()
        );
        parse(&String::from_utf8_lossy(&out.stdout))
    };
    let theirs = dovecot_session(&p);
    assert_eq!(theirs.count, 3);
    for (n, m) in theirs.messages.iter().enumerate() {
        let subject = format!("Subject: pop dv {n}\r\n");
        assert!(
            m.windows(subject.len()).any(|w| w == subject.as_bytes()),
            "Dovecot's message {n}: {}",
            String::from_utf8_lossy(m)
        );
    }
    let list = std::fs::read_to_string(md.join("dovecot-uidlist")).unwrap();
    assert!(list.starts_with("3 V"), "Dovecot's list: {list}");
    let ours = parse(&p.py("session", &["--user", "alice@virt.test"]));
    assert_eq!(ours.uidl, theirs.uidl, "Dovecot's list:\n{list}");
    assert_eq!(ours.sizes, theirs.sizes, "LIST sizes differ from Dovecot's");
    assert_eq!(
        ours.messages, theirs.messages,
        "RETR differs from Dovecot's"
    );
    // New mail: pop3d gives it the next UID and writes the list; Dovecot
    // keeps what pop3d wrote.
    p.send("alice@virt.test", 1, "dv2");
    p.s.wait_mail("alice", 4);
    let ours = parse(&p.py("session", &["--user", "alice@virt.test"]));
    assert_eq!(ours.count, 4);
    let theirs = dovecot_session(&p);
    assert_eq!(
        ours.uidl,
        theirs.uidl,
        "after pop3d wrote the list:\n{}",
        std::fs::read_to_string(md.join("dovecot-uidlist")).unwrap()
    );
}

/// RETR of a 50 MB message: the mail and login processes' peak memory
/// (VmHWM) stays far below the message size.
#[test]
fn pop3_retr_of_50_mb_streams() {
    let p = start(&[]);
    p.send("alice@virt.test", 1, "m");
    p.s.wait_mail("alice", 1);
    let md = p.s.base.join("vmail/alice");
    let big = md.join("new/9999999999.M1P1.big");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        f.write_all(b"Subject: big\n\n").unwrap();
        let line = format!(".{}\n", "x".repeat(99));
        for _ in 0..500_000 {
            f.write_all(line.as_bytes()).unwrap();
        }
    }
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(&big, Some(65534), Some(65534)).unwrap();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/pop3check.py");
    let mut child = Command::new("python3")
        .arg(script)
        // Under STLS, so that the login process relays it too (a
        // cleartext session goes to the mail process alone).
        .args(["bigretr", "--port", &p.port.to_string(), "--count", "2"])
        .args(["--mode", "stls", "--ca"])
        .arg(&p.s.pki.as_ref().unwrap().ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    // The header and 500,000 lines of 100 bytes, LF turned into CRLF.
    let expect = 16 + 500_000 * 102;
    assert!(
        line.contains(&format!("\"octets\": {expect}"))
            && line.contains(&format!("\"size\": {expect}")),
        "{line}\n{}",
        p.log()
    );
    for role in ["mail", "login"] {
        let pids = instance_pids(&p, role);
        assert_eq!(pids.len(), 1, "{role} processes: {pids:?}");
        let hwm = status_field(pids[0], "VmHWM");
        let kb: u64 = hwm.split_whitespace().next().unwrap().parse().unwrap();
        println!("pop3_retr_of_50_mb_streams: {role} process VmHWM {kb} kB");
        assert!(
            kb < 16 * 1024,
            "{role} process peaked at {kb} kB for a 50 MB RETR"
        );
    }
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
}

/// The kernel function a process sleeps in (`do_wait`: in wait()).
fn wchan(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default()
}

/// The service process of a held session's mail process.
fn service_of_mail(p: &Pop) -> i32 {
    let mails = instance_pids(p, "mail");
    assert_eq!(mails.len(), 1, "mail processes: {mails:?}\n{}", p.log());
    status_field(mails[0], "PPid").parse().unwrap()
}

/// Without a per-client count to hold (limit 0), the service process
/// does not wait for the session: a logged-in session is its mail process
/// alone, and the service process is back to taking connections.
#[test]
fn pop3_a_session_without_a_count_is_one_process() {
    let p = start(&["pop3d_client_connection_count_limit = 0"]);
    p.send("alice@virt.test", 1, "w");
    p.s.wait_mail("alice", 1);
    let (mut child, _) = hold(&p, "alice@virt.test", &[]);
    let service = service_of_mail(&p);
    let back = wait_until(Duration::from_secs(10), || {
        let w = wchan(service);
        !w.is_empty() && w != "do_wait"
    });
    assert!(back, "the service process waits: {}", wchan(service));
    // Another user's session meanwhile; then both have ended normally.
    let sum = parse(&p.py("session", &["--user", "carol@virt.test"]));
    assert_eq!(sum.count, 0);
    drop(child.stdin.take());
    let _ = child.wait();
    let sum = parse(&p.py("session", &["--user", "alice@virt.test"]));
    assert_eq!(sum.count, 1);
}

/// pop3d_client_connection_count_limit through anvil, and
/// pop3d_idle_timeout after login.
#[test]
fn pop3_connection_limit_and_idle_timeout() {
    let p = start(&[
        "pop3d_client_connection_count_limit = 1",
        "pop3d_idle_timeout = 2s",
    ]);
    p.send("alice@virt.test", 1, "l");
    p.s.wait_mail("alice", 1);
    let (mut child, _) = hold(&p, "alice@virt.test", &[]);
    // The count lasts the session: its service process waits to count it out.
    let service = service_of_mail(&p);
    assert_eq!(wchan(service), "do_wait");
    assert!(p.py("toomany", &[]).contains("too-many"));
    drop(child.stdin.take());
    let _ = child.wait();
    let log = p.log();
    assert!(
        log.contains("Connection concurrency limit exceeded: 2 from [127.0.0.1] for service"),
        "{log}"
    );
    // The slot is free again once the session ended.
    let ok = wait_until(Duration::from_secs(10), || {
        p.run("session", p.port, &["--user", "alice@virt.test"])
            .status
            .success()
    });
    assert!(ok, "no session after the first ended\n{}", p.log());
    let out = p.py("idle", &["--user", "alice@virt.test", "--count", "4"]);
    assert!(out.contains("closed"), "{out}");
}

/// A session does not keep local delivery out: mail delivered to an mbox
/// during a session is kept when the session's deletions are applied at
/// QUIT (under the same dotlock and fcntl locks as the delivery).
#[test]
fn pop3_mbox_delivery_during_a_session_survives_quit() {
    let p = start(&[]);
    p.send("carol@virt.test", 2, "s");
    p.wait_mbox(2);
    let (mut child, line) = hold(
        &p,
        "carol@virt.test",
        &["--dele", "1", "--dele", "2", "--end", "holdquit"],
    );
    assert!(line.contains("\"count\": 2"), "{line}");
    p.send("carol@virt.test", 1, "during");
    p.wait_mbox(3);
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    let mbox = String::from_utf8_lossy(&p.mbox()).into_owned();
    assert_eq!(mbox.matches("\nSubject: pop ").count(), 1, "{mbox}");
    assert!(mbox.contains("Subject: pop during 0"), "{mbox}");
    let sum = parse(&p.py("session", &["--user", "carol@virt.test"]));
    assert_eq!(sum.count, 1);
}

/// Runs getmail; None when it is still running after two minutes
/// (then killed).
fn getmail_run(cmd: &mut Command) -> Option<Output> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let done = wait_until(Duration::from_secs(120), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !done {
        let _ = child.kill();
        let _ = child.wait();
        eprintln!("getmail hung (its child-reaping race); run again");
        return None;
    }
    Some(child.wait_with_output().unwrap())
}

/// Real POP3 clients from Debian, getmail6 and fetchmail, download a
/// mailbox of 500 messages delivered by the suite: what they store is
/// what was delivered, byte for byte (getmail with its own headers turned
/// off; fetchmail apart from the one Received header it adds).
#[test]
fn pop3_getmail_and_fetchmail_download_500_messages() {
    testkit::need_program("getmail", "getmail6");
    testkit::need_program("fetchmail", "fetchmail");
    let n: usize = std::env::var("SYSTEM_TESTS_POP3_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let p = start_with_users(&[], &[("dave@virt.test", "dave/")]);
    p.send("dave@virt.test", n, "many");
    p.s.wait_mail("dave", n);
    let mut delivered: Vec<Vec<u8>> = read_maildir(&p.s.base.join("vmail/dave"));
    delivered.sort();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();

    // getmail6 into a Maildir of its own.
    for d in ["gm/new", "gm/cur", "gm/tmp"] {
        std::fs::create_dir_all(w.join(d)).unwrap();
    }
    std::fs::write(
        w.join("getmailrc"),
        format!(
            "[retriever]\ntype = SimplePOP3Retriever\nserver = 127.0.0.1\nport = {}\n\
             username = dave@virt.test\npassword = {}\n\n\
             [destination]\ntype = Maildir\npath = {}/gm/\n\n\
             [options]\nread_all = true\ndelete = false\ndelivered_to = false\nreceived = false\nverbose = 0\n",
            p.port,
            crate::util::PASSWORD,
            w.display()
        ),
    )
    .unwrap();
    // getmail refuses to deliver as root: as root, run it as nobody.
    let mut getmail = Command::new("getmail");
    if nix::unistd::geteuid().is_root() {
        use std::os::unix::process::CommandExt;
        for d in ["", "gm", "gm/new", "gm/cur", "gm/tmp", "getmailrc"] {
            std::os::unix::fs::chown(w.join(d), Some(65534), Some(65534)).unwrap();
        }
        getmail.uid(65534).gid(65534).env("HOME", w);
    }
    getmail
        .arg("--getmaildir")
        .arg(w)
        .arg("--rcfile")
        .arg(w.join("getmailrc"));
    // getmail6 6.18 waits for each delivery child with a timeout and on a
    // loaded machine sometimes reports "waiting child pid N timed out" for
    // a child that has exited, or hangs for good with the child a zombie
    // (its own child-reaping race, getmail6 issues #52 and #226, not a
    // POP3 error: the server waits for the next command): then the run is
    // repeated into an emptied Maildir, at most three times.
    let mut out = getmail_run(&mut getmail);
    for _ in 0..2 {
        let raced = out.as_ref().is_none_or(|o| {
            !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("timed out")
        });
        if !raced {
            break;
        }
        for d in ["gm/new", "gm/cur"] {
            for e in std::fs::read_dir(w.join(d)).unwrap().flatten() {
                std::fs::remove_file(e.path()).unwrap();
            }
        }
        out = getmail_run(&mut getmail);
    }
    let out = out.expect("getmail hung three times");
    assert!(
        out.status.success(),
        "getmail: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        p.log()
    );
    let mut got = read_maildir(&w.join("gm"));
    got.sort();
    assert_eq!(got.len(), n, "getmail stored {} messages", got.len());
    assert!(
        got == delivered,
        "getmail's copies differ from what was delivered"
    );

    // fetchmail through an MDA that writes each message to a file.
    std::fs::create_dir_all(w.join("fm")).unwrap();
    let rc = w.join("fetchmailrc");
    std::fs::write(
        &rc,
        format!(
            "set no bouncemail\n\
             poll 127.0.0.1 port {} proto pop3 auth password\n  \
             user \"dave@virt.test\" password \"{}\" is root here\n  \
             keep fetchall no rewrite sslproto ''\n  \
             mda \"/bin/sh -c 'cat > {}/fm/$$'\"\n",
            p.port,
            crate::util::PASSWORD,
            w.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = Command::new("fetchmail")
        .arg("-f")
        .arg(&rc)
        .arg("--nosyslog")
        .arg("--pidfile")
        .arg(w.join("fetchmail.pid"))
        .env("HOME", w)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fetchmail: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        p.log()
    );
    let mut fetched: Vec<Vec<u8>> = std::fs::read_dir(w.join("fm"))
        .unwrap()
        .flatten()
        .map(|e| {
            let m = std::fs::read(e.path()).unwrap();
            // fetchmail's own Received header (it puts it above the first
            // Received header): the field whose text names fetchmail.
            let lines: Vec<&[u8]> = m.split_inclusive(|&b| b == b'\n').collect();
            let mut out = Vec::new();
            let mut i = 0;
            let mut dropped = false;
            while i < lines.len() {
                let mut j = i + 1;
                if lines[i].starts_with(b"Received: ") {
                    while j < lines.len()
                        && (lines[j].starts_with(b" ") || lines[j].starts_with(b"\t"))
                    {
                        j += 1;
                    }
                    let field: Vec<u8> = lines[i..j].concat();
                    if !dropped && field.windows(11).any(|w| w == b"(fetchmail-") {
                        dropped = true;
                        i = j;
                        continue;
                    }
                }
                lines[i..j].iter().for_each(|l| out.extend_from_slice(l));
                i = j;
            }
            out
        })
        .collect();
    fetched.sort();
    assert_eq!(
        fetched.len(),
        n,
        "fetchmail stored {} messages",
        fetched.len()
    );
    assert!(
        fetched == delivered,
        "fetchmail's copies differ from what was delivered; first:\n{}\n----\n{}",
        String::from_utf8_lossy(&fetched[0]),
        String::from_utf8_lossy(&delivered[0])
    );
}
