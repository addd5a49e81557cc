//! Local mail end to end (issue 3): the project's sendmail into a real
//! instance running the shipped master.cf (pickup, cleanup, qmgr,
//! trivial-rewrite, local, virtual, bounce, showq), and the mail read back
//! from the mailboxes.

use crate::util::{Instance, bin_dir, need_instance, read_maildir, wait_until};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The services of etc-postfix/master.cf, as shipped.
fn shipped_master_cf() -> String {
    // Without the smtp inet service: parallel instances cannot all have port 25.
    crate::util::shipped_services()
}

/// Who owns what the agents write: nobody when root (local's default_privs
/// and our virtual uid), else the invoking user, who delivers as itself.
fn mail_ids() -> (u32, u32) {
    if nix::unistd::geteuid().is_root() {
        (65534, 65534)
    } else {
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    }
}

/// A running instance with local users' mbox spool, aliases, a .forward,
/// recipient_delimiter and virtual Maildir and mbox users.
struct MailInstance {
    inst: Instance,
    base: PathBuf,
}

impl MailInstance {
    fn start(extra_main: &str, extra_master: &str) -> MailInstance {
        let (uid, gid) = mail_ids();
        let inst = Instance::new("", "");
        let base = inst.dir.path().canonicalize().unwrap();
        // Agents running as nobody must reach their mailboxes.
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        let b = base.display();
        let main = format!(
            "myhostname = mx.test.example\n\
             mydestination = localhost, $myhostname\n\
             mail_spool_directory = {b}/spool\n\
             alias_maps = texthash:{b}/aliases\n\
             alias_database = texthash:{b}/aliases\n\
             forward_path = {b}/forward/$user\n\
             recipient_delimiter = +\n\
             virtual_mailbox_domains = virt.test\n\
             virtual_mailbox_base = {b}/vmail\n\
             virtual_mailbox_maps = texthash:{b}/vmailbox\n\
             virtual_uid_maps = static:{uid}\n\
             virtual_gid_maps = static:{gid}\n\
             virtual_minimum_uid = 1\n{extra_main}"
        );
        let mut cf = std::fs::read_to_string(inst.config_dir.join("main.cf")).unwrap();
        cf.push_str(&main);
        std::fs::write(inst.config_dir.join("main.cf"), cf).unwrap();
        inst.write_master_cf(&format!("{}{extra_master}", shipped_master_cf()));

        let spool = base.join("spool");
        std::fs::create_dir_all(&spool).unwrap();
        std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o1777)).unwrap();
        for d in ["vmail", "mdir"] {
            std::fs::create_dir_all(base.join(d)).unwrap();
            std::os::unix::fs::chown(base.join(d), Some(uid), Some(gid)).unwrap();
        }
        std::fs::write(
            base.join("vmailbox"),
            "v1@virt.test v1/\nv2@virt.test v2\nv3@virt.test v3/\nv4@virt.test v4/\n",
        )
        .unwrap();
        std::fs::write(
            base.join("aliases"),
            format!(
                "postmaster: nobody\nmdir: {b}/mdir/\ninc: :include:{b}/inc.list\n\
                 team: v1@virt.test,\n  v2@virt.test\n"
            ),
        )
        .unwrap();
        std::fs::write(base.join("inc.list"), "v3@virt.test\n").unwrap();
        std::fs::create_dir_all(base.join("forward")).unwrap();
        std::fs::write(base.join("forward/bin"), "v4@virt.test\n").unwrap();
        inst.start();
        MailInstance { inst, base }
    }

    fn config(&self) -> &Path {
        &self.inst.config_dir
    }

    /// Runs the project's sendmail with `args`, `message` on stdin.
    fn sendmail(&self, args: &[&str], message: &[u8]) -> Output {
        crate::util::run_sendmail(self.config(), args, message)
    }

    fn command(&self, name: &str, args: &[&str]) -> Output {
        Command::new(bin_dir().join(name))
            .arg("-c")
            .arg(self.config())
            .args(args)
            .output()
            .unwrap()
    }

    fn mailq(&self) -> String {
        let out = Command::new(bin_dir().join("mailq"))
            .arg("-C")
            .arg(self.config())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every message in every mailbox, by mailbox name.
    fn mailboxes(&self) -> BTreeMap<String, Vec<Vec<u8>>> {
        let mut out = BTreeMap::new();
        for (name, path) in [
            ("nobody", self.base.join("spool/nobody")),
            ("daemon", self.base.join("spool/daemon")),
            ("v2", self.base.join("vmail/v2")),
        ] {
            out.insert(name.to_string(), read_mbox(&path));
        }
        for (name, path) in [
            ("v1", self.base.join("vmail/v1")),
            ("v3", self.base.join("vmail/v3")),
            ("v4", self.base.join("vmail/v4")),
            ("mdir", self.base.join("mdir")),
        ] {
            out.insert(name.to_string(), read_maildir(&path));
        }
        out
    }

    fn queue_is_empty(&self) -> bool {
        self.mailq().contains("Mail queue is empty")
    }
}

/// The messages of an mbox file (From_ lines removed).
fn read_mbox(path: &Path) -> Vec<Vec<u8>> {
    let Ok(data) = std::fs::read(path) else {
        return Vec::new();
    };
    let mut out: Vec<Vec<u8>> = Vec::new();
    for line in data.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(b"From ") {
            out.push(Vec::new());
        } else if let Some(m) = out.last_mut() {
            m.extend_from_slice(line);
        }
    }
    out
}

/// The header section of a message, unfolded enough for `contains` checks.
fn headers(msg: &[u8]) -> String {
    let text = String::from_utf8_lossy(msg);
    text.split("\n\n").next().unwrap_or("").to_string()
}

/// The value after `Subject: ` in a message's headers.
fn subject(msg: &[u8]) -> Option<String> {
    headers(msg)
        .lines()
        .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
}

/// Which recipient and mailbox message `n` of the 1,000 goes to.
fn route(n: usize, root: bool) -> (&'static str, &'static str) {
    match n % 8 {
        0 => ("nobody@localhost", "nobody"),
        1 => ("daemon+box@localhost", "daemon"),
        2 => ("v1@virt.test", "v1"),
        3 => ("v2@virt.test", "v2"),
        4 => ("mdir@localhost", "mdir"),
        5 => ("inc", "v3"),
        // .forward must be owned by its user or root: only root can make one here.
        6 if root => ("bin@localhost", "v4"),
        6 => ("v4@virt.test", "v4"),
        _ => ("v1+tag@virt.test", "v1"),
    }
}

#[test]
fn thousand_messages_delivered_exactly_once() {
    need_instance();
    let root = nix::unistd::geteuid().is_root();
    let m = MailInstance::start("", "");
    const TOTAL: usize = 1000;
    const PARALLEL: usize = 20;
    let config = m.config().to_path_buf();
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..PARALLEL)
            .map(|t| {
                let config = config.clone();
                s.spawn(move || {
                    let mut failed = Vec::new();
                    for n in (t..TOTAL).step_by(PARALLEL) {
                        let (rcpt, _) = route(n, root);
                        let msg = format!(
                            "Subject: msg-{n}\nTo: {rcpt}\n\nThis is message {n}.\nFrom here on, a body line.\n"
                        );
                        let out = crate::util::run_sendmail(&config, &["-f", "sender@localhost", rcpt], msg.as_bytes());
                        if !out.status.success() {
                            failed.push(format!("msg-{n}: {}", String::from_utf8_lossy(&out.stderr)));
                        }
                    }
                    failed
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(failures.is_empty(), "sendmail failed: {failures:?}");

    let expected =
        |boxes: &BTreeMap<String, Vec<Vec<u8>>>| -> usize { boxes.values().map(Vec::len).sum() };
    let done = wait_until(Duration::from_secs(120), || {
        expected(&m.mailboxes()) >= TOTAL && m.queue_is_empty()
    });
    let boxes = m.mailboxes();
    assert!(
        done,
        "only {} of {TOTAL} delivered; mailq:\n{}\nlog warnings:\n{}",
        expected(&boxes),
        m.mailq(),
        warnings(&m.inst.log())
    );

    // Every message exactly once, in the mailbox its route says.
    let mut seen: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (name, msgs) in &boxes {
        for msg in msgs {
            let s = subject(msg).unwrap_or_default();
            let n: usize = s
                .strip_prefix("msg-")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| {
                    panic!("message without our subject in {name}: {}", headers(msg))
                });
            seen.entry(n).or_default().push(name.clone());
            let h = headers(msg);
            for want in [
                "Return-Path: <sender@localhost>",
                "Delivered-To: ",
                "Received: ",
                "Message-Id: ",
                "Date: ",
                "From: ",
            ] {
                assert!(
                    h.to_ascii_lowercase().contains(&want.to_ascii_lowercase()),
                    "{name}: msg-{n} lacks {want:?}:\n{h}"
                );
            }
            // >From quoting of body lines is mbox's business, not Maildir's.
            let body = String::from_utf8_lossy(msg);
            assert!(
                body.contains(&format!("This is message {n}.")),
                "{name}: msg-{n} body:\n{body}"
            );
        }
    }
    let lost: Vec<usize> = (0..TOTAL).filter(|n| !seen.contains_key(n)).collect();
    let dup: Vec<(&usize, &Vec<String>)> = seen.iter().filter(|(_, v)| v.len() != 1).collect();
    assert!(
        lost.is_empty() && dup.is_empty(),
        "lost {lost:?}, duplicated {dup:?}"
    );
    for (n, where_) in &seen {
        assert_eq!(
            where_[0],
            route(*n, root).1,
            "msg-{n} went to the wrong mailbox"
        );
    }

    // The log has Postfix's line shapes, and pflogsumm reads it.
    let log = m.inst.log();
    let shape = |l: &str| {
        let mut w = l.splitn(5, ' ');
        let (mon, day, time, _host, rest) = (w.next(), w.next(), w.next(), w.next(), w.next());
        mon.is_some_and(|m| m.len() == 3)
            && day.is_some_and(|d| d.parse::<u8>().is_ok())
            && time.is_some_and(|t| t.len() == 8)
            && rest.is_some_and(|r| r.starts_with("postfix/") && r.contains("]: "))
    };
    for l in log.lines() {
        assert!(shape(l), "log line not in Postfix's shape: {l}");
    }
    for want in [
        "(queue active)",
        ": removed",
        "status=sent (delivered to maildir)",
        "status=sent (delivered to mailbox)",
        "forwarded as ",
        ": message-id=<",
        ": uid=",
    ] {
        assert!(log.contains(want), "log lacks {want:?}");
    }
    pflogsumm_counts(&m.inst.maillog, TOTAL);
}

/// Runs pflogsumm on the log and checks its "delivered" count.
fn pflogsumm_counts(maillog: &Path, delivered: usize) {
    testkit::need_program("pflogsumm", "pflogsumm");
    let out = Command::new("pflogsumm").arg(maillog).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let count = text
        .lines()
        .find(|l| l.trim_end().ends_with(" delivered"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok());
    assert_eq!(
        count,
        Some(delivered),
        "pflogsumm says:\n{}",
        tail(&text, 60)
    );
}

fn warnings(log: &str) -> String {
    let w: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("warning: ") || l.contains("fatal: "))
        .collect();
    tail(&w.join("\n"), 40)
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[test]
fn unknown_user_bounces_back_as_rfc3464_report() {
    need_instance();
    let m = MailInstance::start("", "");
    let out = m.sendmail(
        &["-f", "nobody@localhost", "no-such-user@localhost"],
        b"Subject: for nobody\n\nhello\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mbox = m.base.join("spool/nobody");
    assert!(
        wait_until(Duration::from_secs(30), || !read_mbox(&mbox).is_empty()),
        "no bounce arrived; log:\n{}",
        tail(&m.inst.log(), 30)
    );
    let bounce = read_mbox(&mbox).remove(0);
    assert!(
        m.inst.log().contains("dsn=5.1.1, status=bounced"),
        "{}",
        m.inst.log()
    );
    let script = r#"
import email, sys
msg = email.message_from_bytes(sys.stdin.buffer.read())
assert msg.get_content_type() == "multipart/report", msg.get_content_type()
assert msg.get_param("report-type") == "delivery-status", msg.get_param("report-type")
parts = [p for p in msg.walk() if p.get_content_type() == "message/delivery-status"]
assert parts, "no message/delivery-status part"
groups = parts[0].get_payload()
rcpt = [g for g in groups if g.get("Final-Recipient")]
assert rcpt, "no per-recipient group"
assert "no-such-user@localhost" in rcpt[0]["Final-Recipient"], rcpt[0]["Final-Recipient"]
assert rcpt[0]["Status"] == "5.1.1", rcpt[0]["Status"]
assert rcpt[0]["Action"] == "failed", rcpt[0]["Action"]
assert msg["From"].startswith("MAILER-DAEMON@"), msg["From"]
print("ok")
"#;
    let mut py = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/install-deps installs it)");
    py.stdin.take().unwrap().write_all(&bounce).unwrap();
    let res = py.wait_with_output().unwrap();
    assert!(
        res.status.success(),
        "python's email package rejects the bounce: {}\n{}",
        String::from_utf8_lossy(&res.stderr),
        String::from_utf8_lossy(&bounce)
    );
}

#[test]
fn deferred_pipe_shows_in_mailq_and_queue_tools_manage_it() {
    need_instance();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = dir.path().join("tempfail");
    std::fs::write(
        &script,
        "#!/bin/sh\ncat >/dev/null\necho 'try again later' >&2\nexit 75\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let m = MailInstance::start(
        "transport_maps = inline:{ pipe.test=tempfail: }\n",
        &format!(
            "tempfail unix - n n - - pipe user=nobody argv={}\n",
            script.display()
        ),
    );
    let out = m.sendmail(
        &["-f", "nobody@localhost", "someone@pipe.test"],
        b"Subject: pipe\n\nbody\n",
    );
    assert!(out.status.success());
    assert!(
        wait_until(Duration::from_secs(30), || m
            .mailq()
            .contains("someone@pipe.test")
            && m.inst.log().contains("status=deferred")
            // The agent logs before qmgr records the reason mailq shows.
            && m.mailq().contains("try again later")),
        "not deferred; mailq:\n{}\nlog:\n{}",
        m.mailq(),
        tail(&m.inst.log(), 30)
    );
    let q = m.mailq();
    let id = q
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .trim_end_matches(['*', '!'])
        .to_string();
    assert!(
        q.contains("try again later"),
        "mailq lacks the reason (the command's output):\n{q}"
    );
    let attempts = |log: &str| {
        log.matches(&format!("{id}: to=<someone@pipe.test>"))
            .count()
    };
    assert!(wait_until(Duration::from_secs(10), || !m
        .mailq()
        .contains(&format!("{id}*"))));
    let before = attempts(&m.inst.log());

    // postqueue -f retries now, whatever the back-off says.
    assert!(m.command("postqueue", &["-f"]).status.success());
    assert!(
        wait_until(Duration::from_secs(20), || attempts(&m.inst.log()) > before),
        "postqueue -f did not retry; log:\n{}",
        tail(&m.inst.log(), 20)
    );

    // postsuper -h holds it: mailq marks it with `!`.
    assert!(wait_until(Duration::from_secs(10), || !m
        .mailq()
        .contains(&format!("{id}*"))));
    let out = m.command("postsuper", &["-h", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(m.mailq().contains(&format!("{id}!")), "{}", m.mailq());

    // postsuper -d removes it.
    let out = m.command("postsuper", &["-d", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(m.queue_is_empty(), "{}", m.mailq());
}

#[test]
fn bad_input_is_repaired_or_refused_and_nothing_queued_is_lost() {
    need_instance();
    let m = MailInstance::start("message_size_limit = 2000000\n", "");
    // Mail already in the system before the bad input.
    for n in 0..5 {
        let out = m.sendmail(
            &["v1@virt.test"],
            format!("Subject: before-{n}\n\nok\n").as_bytes(),
        );
        assert!(out.status.success());
    }
    let mut nul = b"Subject: nul\n\nbefore".to_vec();
    nul.extend_from_slice(b"\0\0after\n");
    let mut long_header = b"Subject: long\nX-Long: ".to_vec();
    long_header.extend(std::iter::repeat_n(b'a', 1 << 20));
    long_header.extend_from_slice(b"\n\nbody of long\n");
    let eight_bit = "Gr\u{fc}\u{df}e aus K\u{f6}ln, no header at all\n"
        .as_bytes()
        .to_vec();
    let mut too_big = b"Subject: too big\n\n".to_vec();
    too_big.extend(std::iter::repeat_n(b"0123456789abcdef\n".as_slice(), 200_000).flatten());

    let mut accepted = 5;
    for (what, msg) in [
        ("nul", &nul),
        ("long header", &long_header),
        ("8-bit body", &eight_bit),
    ] {
        let out = m.sendmail(&["v1@virt.test"], msg);
        if out.status.success() {
            accepted += 1;
        } else {
            assert!(!out.stderr.is_empty(), "{what}: a refusal must say why");
        }
    }
    let out = m.sendmail(&["v1@virt.test"], &too_big);
    assert!(
        !out.status.success(),
        "a message over message_size_limit was accepted"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("too big") || err.contains("size"),
        "unclear refusal: {err}"
    );

    let v1 = m.base.join("vmail/v1");
    assert!(
        wait_until(Duration::from_secs(60), || read_maildir(&v1).len()
            >= accepted
            && m.queue_is_empty()),
        "delivered {} of {accepted}; mailq:\n{}\nlog:\n{}",
        read_maildir(&v1).len(),
        m.mailq(),
        tail(&m.inst.log(), 30)
    );
    let msgs = read_maildir(&v1);
    for n in 0..5 {
        let want = format!("before-{n}");
        assert_eq!(
            msgs.iter()
                .filter(|m| subject(m).as_deref() == Some(want.as_str()))
                .count(),
            1,
            "{want} lost or duplicated"
        );
    }
    // The header-less 8-bit message got headers and kept its body.
    let eight = msgs
        .iter()
        .find(|m| String::from_utf8_lossy(m).contains("no header at all"))
        .expect("8-bit message delivered");
    let h = headers(eight).to_ascii_lowercase();
    assert!(
        h.contains("message-id: ") && h.contains("date: ") && h.contains("from: "),
        "{h}"
    );
    // The long header line was cut to header_size_limit, not passed whole.
    let long = msgs
        .iter()
        .find(|m| subject(m).as_deref() == Some("long"))
        .expect("long delivered");
    assert!(long.len() < 200_000, "a 1 MB header line was stored whole");
    let nul = msgs
        .iter()
        .find(|m| subject(m).as_deref() == Some("nul"))
        .expect("nul delivered");
    assert!(
        String::from_utf8_lossy(nul).contains("after"),
        "text after the NUL bytes was lost"
    );
    assert_eq!(msgs.len(), accepted);
    // This system repairs rather than refuses all three.
    assert_eq!(accepted, 8, "nul, long header or 8-bit message refused");
}

/// sendmail against a running instance with the shipped master.cf
/// (`pickup unix`): a small message is handed to pickup and needs no
/// maildrop file (postdrop -v says so); one over 256 KiB goes through
/// maildrop/ as before; with the mail system stopped a small one goes to
/// maildrop/ too and is delivered once the system starts again.
#[test]
fn sendmail_hands_small_mail_to_pickup_and_keeps_the_rest_in_maildrop() {
    need_instance();
    let m = MailInstance::start("", "");
    let small = m.sendmail(&["-v", "v1@virt.test"], b"Subject: small\n\nhi\n");
    let said = String::from_utf8_lossy(&small.stderr).into_owned();
    assert!(small.status.success(), "{said}");
    assert!(said.contains("handed to pickup: Queued"), "{said}");
    let mut big = b"Subject: big\n\n".to_vec();
    for _ in 0..5000 {
        big.extend_from_slice(&[b'x'; 99]);
        big.push(b'\n');
    }
    let large = m.sendmail(&["-v", "v1@virt.test"], &big);
    let said = String::from_utf8_lossy(&large.stderr).into_owned();
    assert!(large.status.success(), "{said}");
    assert!(said.contains("queued as maildrop/"), "{said}");
    let subjects = |m: &MailInstance| -> Vec<String> {
        let mut s: Vec<String> = m.mailboxes()["v1"]
            .iter()
            .filter_map(|x| subject(x))
            .collect();
        s.sort();
        s
    };
    assert!(
        wait_until(Duration::from_secs(30), || subjects(&m) == ["big", "small"]),
        "{:?}\n{}",
        subjects(&m),
        tail(&m.inst.log(), 30)
    );
    let out = m.inst.postfix(&["stop"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stopped = m.sendmail(&["-v", "v1@virt.test"], b"Subject: while stopped\n\nhi\n");
    let said = String::from_utf8_lossy(&stopped.stderr).into_owned();
    assert!(stopped.status.success(), "{said}");
    assert!(said.contains("queued as maildrop/"), "{said}");
    let maildrop: Vec<_> = std::fs::read_dir(m.inst.qdir.join("maildrop"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(maildrop.len(), 1, "{maildrop:?}");
    m.inst.start();
    assert!(
        wait_until(Duration::from_secs(30), || subjects(&m)
            == ["big", "small", "while stopped"]),
        "{:?}\n{}",
        subjects(&m),
        tail(&m.inst.log(), 30)
    );
}
