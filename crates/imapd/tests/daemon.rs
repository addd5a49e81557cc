//! imapd end to end: the real binary under master with the auth service
//! (testkit::Instance), a virtual user on a Maildir, talked to over TCP.
//! Login, SELECT, FETCH from the index and cache, STORE and EXPUNGE seen
//! by a second session, IDLE seeing a delivery, APPEND/COPY/MOVE with
//! UIDPLUS, folders and subscriptions, and a Maildir in Dovecot's files
//! keeping its UIDs, flags, keywords and subscriptions.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PASSWORD: &str = "s3cret pass";

struct Server {
    inst: testkit::Instance,
    port: u16,
    /// IMAPS (only with [`start_tls`]).
    ssl_port: u16,
    maildir: PathBuf,
    owner: (u32, u32),
    _dir: tempfile::TempDir,
}

fn start() -> Server {
    start_with(false, "")
}

/// With a certificate: STARTTLS on the imap port, and an imaps port.
fn start_tls() -> Server {
    start_with(true, "")
}

fn start_with(tls: bool, extra_main: &str) -> Server {
    testkit::need_instance(&["master", "imapd", "auth", "anvil"]);
    let port = testkit::free_port();
    let owner = if nix::unistd::geteuid().is_root() {
        (65534, 65534)
    } else {
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    testkit::open_dir(dir.path());
    let base = dir.path().canonicalize().unwrap();
    let b = base.display();
    std::fs::create_dir_all(base.join("vmail")).unwrap();
    std::os::unix::fs::chown(base.join("vmail"), Some(owner.0), Some(owner.1)).unwrap();
    std::fs::write(
        base.join("vmailbox"),
        "alice@virt.test alice/\ncarol@virt.test carol\n",
    )
    .unwrap();
    std::fs::write(
        base.join("passwd"),
        format!(
            "alice@virt.test:{{PLAIN}}{PASSWORD}::::::\ncarol@virt.test:{{PLAIN}}{PASSWORD}::::::\n"
        ),
    )
    .unwrap();
    let ssl_port = testkit::free_port();
    let mut tls_main = String::new();
    let mut tls_master = String::new();
    if tls {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(base.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(base.join("key.pem"), key.serialize_pem()).unwrap();
        tls_main =
            format!("imapd_tls_cert_file = {b}/cert.pem\nimapd_tls_key_file = {b}/key.pem\n");
        tls_master =
            format!("127.0.0.1:{ssl_port} inet n n n - - imapd\n  -o imapd_tls_wrappermode=yes\n");
    }
    let main = format!(
        "virtual_mailbox_base = {b}/vmail\n\
         virtual_mailbox_maps = texthash:{b}/vmailbox\n\
         virtual_uid_maps = static:{}\n\
         virtual_gid_maps = static:{}\n\
         auth_passdb = passwd-file:{b}/passwd\n\
         imapd_login_failure_delay = 0\n{tls_main}{extra_main}",
        owner.0, owner.1
    );
    let master = format!(
        "auth unix - n n - 1 auth\n\
         anvil unix - - n - 1 anvil\n\
         127.0.0.1:{port} inet n n n - - imapd\n{tls_master}"
    );
    let mut inst = testkit::Instance::new_in(&base, &main, &master);
    inst.start_master("private/auth");
    assert!(
        testkit::wait_until(Duration::from_secs(10), || TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()),
        "imapd not listening\n{}",
        inst.log()
    );
    Server {
        inst,
        port,
        ssl_port,
        maildir: base.join("vmail/alice"),
        owner,
        _dir: dir,
    }
}

impl Server {
    /// A message delivered into a Maildir as local and virtual do (owned by the user).
    fn deliver(&self, folder: &str, text: &str) {
        let dir = if folder.is_empty() {
            self.maildir.clone()
        } else {
            self.maildir.join(format!(".{folder}"))
        };
        let d = mailstore::maildir::deliver(
            &dir,
            &mailstore::maildir::Options::default(),
            &[],
            &mut text.as_bytes(),
        )
        .unwrap();
        chown_tree(&self.maildir, self.owner);
        assert!(d.path.exists());
    }
}

impl Server {
    /// A message put into new/ under a name that sorts as `n` (Maildir
    /// names of one second do not sort in delivery order).
    fn deliver_nth(&self, n: u32, text: &str) {
        for d in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(self.maildir.join(d)).unwrap();
        }
        let name = format!("{}.M{n}P1.test", 1_700_000_000 + n);
        std::fs::write(self.maildir.join("tmp").join(&name), text).unwrap();
        std::fs::rename(
            self.maildir.join("tmp").join(&name),
            self.maildir.join("new").join(&name),
        )
        .unwrap();
        chown_tree(&self.maildir, self.owner);
    }
}

fn chown_tree(p: &Path, owner: (u32, u32)) {
    let _ = std::os::unix::fs::chown(p, Some(owner.0), Some(owner.1));
    if p.is_dir() {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            chown_tree(&e.path(), owner);
        }
    }
}

struct Client {
    r: BufReader<TcpStream>,
    n: u32,
}

impl Client {
    fn connect(port: u16) -> Client {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut c = Client {
            r: BufReader::new(s),
            n: 0,
        };
        let greeting = c.line();
        assert!(
            greeting.starts_with("* OK [CAPABILITY IMAP4rev1"),
            "{greeting}"
        );
        c
    }

    fn login(port: u16) -> Client {
        Client::login_as(port, "alice@virt.test")
    }

    fn login_as(port: u16, user: &str) -> Client {
        let mut c = Client::connect(port);
        let r = c.ok(&format!("LOGIN {user} \"{PASSWORD}\""));
        assert!(r.last().unwrap().contains("[CAPABILITY IMAP4rev1"), "{r:?}");
        c
    }

    /// One response line, with any literals it announces appended.
    fn line(&mut self) -> String {
        let mut out = String::new();
        loop {
            let mut l = Vec::new();
            self.r.read_until(b'\n', &mut l).unwrap();
            assert!(!l.is_empty(), "connection closed after {out:?}");
            let l = String::from_utf8_lossy(&l)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            out.push_str(&l);
            let lit = l
                .strip_suffix('}')
                .and_then(|x| x.rsplit_once('{'))
                .and_then(|(_, n)| n.parse::<usize>().ok());
            match lit {
                Some(n) => {
                    let mut buf = vec![0u8; n];
                    self.r.read_exact(&mut buf).unwrap();
                    out.push_str(&String::from_utf8_lossy(&buf));
                }
                None => return out,
            }
        }
    }

    fn send(&mut self, raw: &str) {
        self.r.get_mut().write_all(raw.as_bytes()).unwrap();
    }

    /// Runs a command; every line up to and including the tagged one.
    fn cmd(&mut self, c: &str) -> Vec<String> {
        self.n += 1;
        let tag = format!("a{}", self.n);
        self.send(&format!("{tag} {c}\r\n"));
        let mut lines = Vec::new();
        loop {
            let l = self.line();
            let done = l.starts_with(&format!("{tag} "));
            lines.push(l);
            if done {
                return lines;
            }
        }
    }

    fn ok(&mut self, c: &str) -> Vec<String> {
        let r = self.cmd(c);
        assert!(
            r.last().unwrap().starts_with(&format!("a{} OK", self.n)),
            "{c}: {r:?}"
        );
        r
    }
}

/// The imapd processes: pid, real uid, root directory.
fn imapd_processes() -> Vec<(u32, u32, PathBuf)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.trim() != "imapd" {
            continue;
        }
        let status = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|u| u.parse().ok())
            .unwrap_or(u32::MAX);
        let root = std::fs::read_link(e.path().join("root")).unwrap_or_default();
        out.push((pid, uid, root));
    }
    out
}

fn has(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

#[test]
fn login_select_fetch_store_expunge_seen_by_a_second_session() {
    let s = start();
    for i in 1..=3 {
        s.deliver_nth(i, &format!("From: Bob <bob@example.org>\nTo: alice@virt.test\nSubject: msg {i}\nMessage-ID: <{i}@x>\n\nbody {i}\n"));
    }
    // Wrong password, then the right one.
    let mut bad = Client::connect(s.port);
    let r = bad.cmd("LOGIN alice@virt.test wrong");
    assert!(r[0].starts_with("a1 NO [AUTHENTICATIONFAILED]"), "{r:?}");
    bad.ok("LOGOUT");

    let mut a = Client::login(s.port);
    let caps = a.ok("CAPABILITY");
    for c in [
        "IDLE",
        "UIDPLUS",
        "MOVE",
        "CONDSTORE",
        "QRESYNC",
        "SPECIAL-USE",
        "LIST-STATUS",
    ] {
        assert!(caps[0].contains(c), "{caps:?}");
    }
    let r = a.ok("SELECT INBOX");
    assert!(
        has(&r, "* 3 EXISTS")
            && has(&r, "* 3 RECENT")
            && has(&r, "[UIDVALIDITY ")
            && has(&r, "[READ-WRITE]"),
        "{r:?}"
    );
    let r = a.ok("FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE RFC822.SIZE)");
    assert!(
        r[0].starts_with("* 1 FETCH (UID 1 FLAGS (\\Recent) ENVELOPE (NIL \"msg 1\" ((\"Bob\" NIL \"bob\" \"example.org\"))"),
        "{r:?}"
    );
    assert!(
        has(&r, "BODYSTRUCTURE (\"text\" \"plain\"") && has(&r, "RFC822.SIZE 95"),
        "{r:?}"
    );
    let r = a.ok("UID FETCH 2 (BODY[TEXT])");
    assert!(
        r[0].contains("BODY[TEXT] {8}body 2") && r[0].contains("FLAGS (\\Seen \\Recent)"),
        "{r:?}"
    );
    // The cache has the structures: the same answer again.
    let again = a.ok("FETCH 1 (ENVELOPE BODYSTRUCTURE)");
    assert!(again[0].contains("\"msg 1\""), "{again:?}");
    assert!(s.maildir.join("imapd.cache").exists() && s.maildir.join("imapd.index").exists());

    let mut b = Client::login(s.port);
    let r = b.ok("SELECT INBOX");
    assert!(has(&r, "* 3 EXISTS") && has(&r, "* 0 RECENT"), "{r:?}");
    if nix::unistd::geteuid().is_root() {
        // Per cleartext session, once logged in: the mail process as the
        // mailbox owner on the client's own socket; the login process (as
        // mail_owner, chrooted in the queue) has handed over and exited,
        // and no process as root waits for the session.
        let owner = testkit::mail_owner().unwrap();
        let procs = imapd_processes();
        // (Other tests' sessions may run at once: counted, not matched;
        // this instance's login processes are those chrooted in its queue.)
        let login = procs
            .iter()
            .filter(|p| p.1 == owner.0 && p.2 == s.inst.qdir);
        let mail: Vec<_> = procs.iter().filter(|p| p.1 == s.owner.0).collect();
        assert!(login.count() == 0 && mail.len() >= 2, "{procs:?}");
        assert!(
            procs
                .iter()
                .all(|p| p.1 != owner.0 || p.2 != Path::new("/")),
            "a login process is not chrooted: {procs:?}"
        );
    }
    let r = a.ok("STORE 1 +FLAGS (\\Deleted $Work)");
    assert!(
        r[0].starts_with("* 1 FETCH (FLAGS (\\Deleted $Work \\Recent))"),
        "{r:?}"
    );
    let r = b.ok("NOOP");
    assert!(has(&r, "* 1 FETCH (FLAGS (\\Deleted $Work))"), "{r:?}");
    // SELECT again: an unchanged mailbox keeps its view, a changed one
    // is read again.
    let r = b.ok("SELECT INBOX");
    assert!(has(&r, "* 3 EXISTS") && has(&r, "[READ-WRITE]"), "{r:?}");
    a.ok("STORE 2 +FLAGS (\\Flagged)");
    let r = b.ok("SELECT INBOX");
    assert!(has(&r, "* 3 EXISTS"), "{r:?}");
    let r = b.ok("FETCH 2 (FLAGS)");
    assert!(r[0].contains("\\Flagged"), "{r:?}");
    a.ok("STORE 2 -FLAGS (\\Flagged)");
    b.ok("NOOP");
    let r = a.ok("EXPUNGE");
    assert!(r[0] == "* 1 EXPUNGE", "{r:?}");
    let r = b.ok("NOOP");
    assert!(has(&r, "* 1 EXPUNGE"), "{r:?}");
    let r = b.ok("UID SEARCH ALL");
    assert_eq!(r[0], "* SEARCH 2 3");
    let r = b.ok("SEARCH SUBJECT \"msg 3\"");
    assert_eq!(r[0], "* SEARCH 2");
    // CONDSTORE: MODSEQs grow with each change.
    let r = b.ok("FETCH 1:* (MODSEQ)");
    assert!(r[0].starts_with("* 1 FETCH (MODSEQ ("), "{r:?}");
    let r = b.ok("STORE 2 (UNCHANGEDSINCE 1) +FLAGS (\\Flagged)");
    assert!(r.last().unwrap().contains("[MODIFIED 2]"), "{r:?}");
    // A STORE recorded without a rescan: the other session sees it, with
    // the same MODSEQ, and a delivery meanwhile is not lost.
    let r = b.ok("STORE 1 +FLAGS (\\Answered)");
    let modseq = r[0]
        .split("MODSEQ (")
        .nth(1)
        .unwrap()
        .trim_end_matches("))")
        .to_string();
    s.deliver("", "Subject: late\n\nx\n");
    let r = b.ok("STORE 2 +FLAGS (\\Answered)");
    assert!(has(&r, "* 3 EXISTS"), "{r:?}");
    let r = a.ok("NOOP");
    assert!(
        has(&r, "* 1 FETCH (FLAGS (\\Answered \\Seen \\Recent))") && has(&r, "* 3 EXISTS"),
        "{r:?}"
    );
    let r = a.ok("FETCH 1 (MODSEQ)");
    assert_eq!(r[0], format!("* 1 FETCH (MODSEQ ({modseq}))"));
    let r = b.ok("FETCH 1:2 (FLAGS)");
    assert!(
        r[0].contains("\\Answered") && r[1].contains("(\\Answered)"),
        "{r:?}"
    );
    a.ok("LOGOUT");
    b.ok("LOGOUT");
    assert!(
        s.inst
            .wait_log("login: user=<alice@virt.test>, method=LOGIN"),
        "{}",
        s.inst.log()
    );
}

/// An idle session parks its view (UIDs and flags only) and takes it up
/// again at its next command: what another session changed meanwhile
/// (flags, an expunge, a delivery) is reported as without parking, and
/// the messages are still read by sequence number and UID.
#[test]
fn a_parked_session_sees_what_changed_while_it_was_idle() {
    let s = start();
    for i in 1..=4 {
        s.deliver_nth(
            i,
            &format!("Subject: m{i}\nMessage-ID: <{i}@x>\n\nbody {i}\n"),
        );
    }
    let mut a = Client::login(s.port);
    let r = a.ok("SELECT INBOX");
    assert!(has(&r, "* 4 EXISTS") && has(&r, "* 4 RECENT"), "{r:?}");
    a.ok("STORE 4 +FLAGS (\\Seen)");
    let mut b = Client::login(s.port);
    b.ok("SELECT INBOX");
    // a parks (no input for longer than PARK_AFTER); b changes the mailbox.
    std::thread::sleep(std::time::Duration::from_millis(900));
    b.ok("STORE 1 +FLAGS (\\Flagged)");
    b.ok("STORE 2 +FLAGS (\\Deleted)");
    b.ok("EXPUNGE");
    s.deliver("", "Subject: m5\n\nbody 5\n");
    let r = a.ok("NOOP");
    assert!(
        has(&r, "* 2 EXPUNGE")
            && has(&r, "* 1 FETCH (FLAGS (\\Flagged \\Recent))")
            && has(&r, "* 4 EXISTS"),
        "{r:?}"
    );
    // Parked again, then read: sequence numbers, UIDs, flags as reported.
    std::thread::sleep(std::time::Duration::from_millis(900));
    let r = a.ok("FETCH 1:* (UID FLAGS)");
    assert_eq!(
        r[..4],
        [
            "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))",
            "* 2 FETCH (UID 3 FLAGS (\\Recent))",
            "* 3 FETCH (UID 4 FLAGS (\\Seen \\Recent))",
            "* 4 FETCH (UID 5 FLAGS (\\Recent))",
        ],
        "{r:?}"
    );
    std::thread::sleep(std::time::Duration::from_millis(900));
    let r = a.ok("UID FETCH 3 (BODY.PEEK[TEXT])");
    assert!(r[0].contains("body 3"), "{r:?}");
    // An expunge this session has not been told of keeps its place while
    // parked: a FETCH by sequence number (expunges wait) still works.
    b.ok("STORE 2 +FLAGS (\\Deleted)");
    b.ok("EXPUNGE");
    std::thread::sleep(std::time::Duration::from_millis(900));
    let r = a.ok("FETCH 2 (UID)");
    assert!(has(&r, "* 2 FETCH (UID 3)"), "{r:?}");
    let r = a.ok("NOOP");
    assert!(has(&r, "* 2 EXPUNGE"), "{r:?}");
    a.ok("LOGOUT");
    b.ok("LOGOUT");
}

#[test]
fn idle_sees_a_delivery_within_a_second() {
    let s = start();
    s.deliver("", "Subject: one\n\nx\n");
    let mut a = Client::login(s.port);
    a.ok("SELECT INBOX");
    a.send("i1 IDLE\r\n");
    assert_eq!(a.line(), "+ idling");
    let t = Instant::now();
    s.deliver("", "Subject: two\n\ny\n");
    let l = a.line();
    assert_eq!(l, "* 2 EXISTS");
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    // Another session's flag change and expunge reach the IDLE too.
    let mut b = Client::login(s.port);
    b.ok("SELECT INBOX");
    b.ok("STORE 2 +FLAGS (\\Flagged)");
    let mut l = a.line();
    while l.ends_with("RECENT") {
        l = a.line();
    }
    assert!(l.starts_with("* 2 FETCH (FLAGS (\\Flagged"), "{l}");
    b.ok("STORE 1 +FLAGS (\\Deleted)");
    b.ok("EXPUNGE");
    let mut l = a.line();
    while l.starts_with("* 1 FETCH") {
        l = a.line();
    }
    assert_eq!(l, "* 1 EXPUNGE");
    a.send("DONE\r\n");
    loop {
        let l = a.line();
        if l.starts_with("i1 ") {
            assert!(l.starts_with("i1 OK"), "{l}");
            break;
        }
    }
}

#[test]
fn append_copy_move_with_uidplus_and_folders() {
    let s = start();
    let mut a = Client::login(s.port);
    // The special-use folders were made at the first login.
    let r = a.ok("LIST \"\" \"*\"");
    for l in [
        "\\Drafts) \".\" Drafts",
        "\\Sent) \".\" Sent",
        "\\Trash) \".\" Trash",
        "\\Junk) \".\" Junk",
        "\".\" INBOX",
    ] {
        assert!(has(&r, l), "{l}: {r:?}");
    }
    let r = a.ok("LSUB \"\" \"*\"");
    assert!(has(&r, "* LSUB () \".\" Sent"), "{r:?}");
    assert!(s.maildir.join(".Sent/maildirfolder").exists());
    a.ok("CREATE Work");
    a.ok("CREATE Work.Old");
    a.send("n1 APPEND Nowhere {3}\r\n");
    assert_eq!(a.line(), "+ OK");
    a.send("x\r\n\r\n");
    let l = a.line();
    assert!(l.starts_with("n1 NO [TRYCREATE]"), "{l}");
    let msg = "Subject: appended\r\n\r\nhello\r\n";
    a.n += 1;
    a.send(&format!(
        "a{} APPEND Work (\\Seen $Label1) \"05-Jan-2024 10:00:00 +0000\" {{{}+}}\r\n{msg}\r\n",
        a.n,
        msg.len()
    ));
    let l = a.line();
    assert!(
        l.contains("OK [APPENDUID ") && l.ends_with(" 1] Append completed."),
        "{l}"
    );
    let r = a.ok("SELECT Work");
    assert!(has(&r, "* 1 EXISTS") && has(&r, "$Label1"), "{r:?}");
    let r = a.ok("FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE)");
    assert!(
        r[0].contains("FLAGS (\\Seen $Label1")
            && r[0].contains("05-Jan-2024")
            && r[0].contains(&format!("RFC822.SIZE {}", msg.len())),
        "{r:?}"
    );
    let r = a.ok("UID COPY 1 Trash");
    assert!(
        r.last().unwrap().contains("[COPYUID ") && r.last().unwrap().contains(" 1 1]"),
        "{r:?}"
    );
    let r = a.ok("UID MOVE 1 Drafts");
    assert!(has(&r, "[COPYUID ") && has(&r, "* 1 EXPUNGE"), "{r:?}");
    let r = a.ok("STATUS Drafts (MESSAGES UIDNEXT UNSEEN SIZE HIGHESTMODSEQ)");
    assert!(
        r[0].starts_with(&format!(
            "* STATUS Drafts (MESSAGES 1 UIDNEXT 2 UNSEEN 0 SIZE {} HIGHESTMODSEQ ",
            msg.len()
        )),
        "{r:?}"
    );
    let r = a.ok("LIST (SUBSCRIBED) \"\" \"*\" RETURN (CHILDREN STATUS (MESSAGES))");
    assert!(has(&r, "* STATUS Trash (MESSAGES 1)"), "{r:?}");
    a.ok("SUBSCRIBE Work");
    a.ok("RENAME Work Projects");
    let r = a.ok("LIST \"\" \"Projects*\"");
    assert!(
        has(&r, "(\\HasChildren) \".\" Projects") && has(&r, "\".\" Projects.Old"),
        "{r:?}"
    );
    let subs = std::fs::read_to_string(s.maildir.join("subscriptions")).unwrap();
    assert!(
        subs.contains("Projects\n") && !subs.contains("Work\n"),
        "{subs}"
    );
    a.ok("DELETE Projects.Old");
    // INBOX in any case, also as a pattern's first level; non-ASCII patterns.
    a.ok("CREATE INBOX.x");
    let r = a.ok("LIST \"\" \"inbox*\"");
    assert!(
        has(&r, "(\\HasChildren) \".\" INBOX") && has(&r, "\".\" INBOX.x"),
        "{r:?}"
    );
    let r = a.ok("LIST \"\" \"Inbox.%\"");
    assert!(r.len() == 2 && has(&r, "INBOX.x"), "{r:?}");
    let r = a.ok("LIST \"\" \"INBO&AOk-*\"");
    assert_eq!(r.len(), 1, "{r:?}");
    let r = a.cmd("DELETE INBOX");
    assert!(r[0].contains("NO"), "{r:?}");
    a.ok("LOGOUT");
}

#[test]
fn a_dovecot_maildir_keeps_uids_flags_keywords_and_subscriptions() {
    let s = start();
    // What Dovecot leaves in a Maildir: dovecot-uidlist (version 3),
    // dovecot-keywords, flags and keyword letters in the names,
    // subscriptions (version 2), a Maildir++ folder.
    let md = &s.maildir;
    for d in [
        "cur",
        "new",
        "tmp",
        ".Archive/cur",
        ".Archive/new",
        ".Archive/tmp",
    ] {
        std::fs::create_dir_all(md.join(d)).unwrap();
    }
    std::fs::write(md.join(".Archive/maildirfolder"), "").unwrap();
    std::fs::write(
        md.join("cur/1700000000.M1P1.host,S=20,W=22:2,RSb"),
        "Subject: a\n\nbody a\n",
    )
    .unwrap();
    std::fs::write(
        md.join("cur/1700000001.M2P1.host,S=20,W=22:2,"),
        "Subject: b\n\nbody b\n",
    )
    .unwrap();
    std::fs::write(
        md.join("dovecot-uidlist"),
        "3 V1600000000 N108 G0123456789abcdef0123456789abcdef\n\
         105 W22 :1700000000.M1P1.host,S=20,W=22\n\
         107 :1700000001.M2P1.host,S=20,W=22\n",
    )
    .unwrap();
    std::fs::write(md.join("dovecot-keywords"), "0 Junk\n1 $Forwarded\n").unwrap();
    std::fs::write(md.join("subscriptions"), "V\t2\n\nArchive\n").unwrap();
    chown_tree(md, s.owner);
    let mut a = Client::login(s.port);
    let r = a.ok("SELECT INBOX");
    assert!(
        has(&r, "[UIDVALIDITY 1600000000]") && has(&r, "[UIDNEXT 108]"),
        "{r:?}"
    );
    let r = a.ok("FETCH 1:* (UID FLAGS)");
    assert_eq!(
        r[0],
        "* 1 FETCH (UID 105 FLAGS (\\Answered \\Seen $Forwarded))"
    );
    assert_eq!(r[1], "* 2 FETCH (UID 107 FLAGS ())");
    let r = a.ok("LSUB \"\" \"*\"");
    assert!(has(&r, "\".\" Archive"), "{r:?}");
    // Keyword changes land where Dovecot looks for them.
    a.ok("UID STORE 107 +FLAGS (Junk)");
    let names: Vec<String> = std::fs::read_dir(md.join("cur"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("1700000001.M2P1.host,S=20,W=22:2,a")),
        "{names:?}"
    );
    let list = std::fs::read_to_string(md.join("dovecot-uidlist")).unwrap();
    assert!(list.starts_with("3 V1600000000 N108 "), "{list}");
}

#[test]
fn an_mbox_inbox_with_flags_in_the_index() {
    let s = start();
    let mbox = s.maildir.with_file_name("carol");
    std::fs::write(
        &mbox,
        "From bob@example.org Mon Dec  4 10:00:00 2023\nSubject: one\n\nfirst\n\n\
         From bob@example.org Mon Dec  4 11:00:00 2023\nSubject: two\n\nsecond\n\n\
         From bob@example.org Mon Dec  4 12:00:00 2023\nSubject: three\n\nthird\n\n",
    )
    .unwrap();
    chown_tree(&mbox, s.owner);
    let mut c = Client::login_as(s.port, "carol@virt.test");
    let r = c.ok("LIST \"\" \"*\"");
    assert_eq!(r.len(), 2, "{r:?}");
    let r = c.ok("SELECT INBOX");
    assert!(has(&r, "* 3 EXISTS"), "{r:?}");
    let r = c.ok("FETCH 1:* (UID INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert!(
        r[0].contains("UID 1 INTERNALDATE \"04-Dec-2023") && r[0].contains("Subject: one"),
        "{r:?}"
    );
    c.ok("STORE 1,3 +FLAGS (\\Deleted)");
    let r = c.ok("STORE 2 +FLAGS (\\Flagged)");
    assert!(r[0].contains("FLAGS (\\Flagged"), "{r:?}");
    let r = c.ok("EXPUNGE");
    assert_eq!(r[..2], ["* 3 EXPUNGE", "* 1 EXPUNGE"]);
    let text = std::fs::read_to_string(&mbox).unwrap();
    assert!(
        !text.contains("first") && text.contains("second") && !text.contains("third"),
        "{text}"
    );
    c.ok("LOGOUT");
    let mut c = Client::login_as(s.port, "carol@virt.test");
    let r = c.ok("SELECT INBOX");
    assert!(has(&r, "* 1 EXISTS"), "{r:?}");
    let r = c.ok("FETCH 1 (UID FLAGS)");
    assert_eq!(r[0], "* 1 FETCH (UID 2 FLAGS (\\Flagged))");
}

#[test]
fn authenticate_plain_with_sasl_ir_and_compress_deflate() {
    use base64::Engine;
    let s = start();
    let mut c = Client::connect(s.port);
    let ir =
        base64::engine::general_purpose::STANDARD.encode(format!("\0alice@virt.test\0{PASSWORD}"));
    // AUTHENTICATE LOGIN: two challenges; PLAIN without SASL-IR: one empty.
    let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
    let mut l = Client::connect(s.port);
    l.send("l1 AUTHENTICATE LOGIN\r\n");
    assert!(l.line().starts_with("+ "));
    l.send(&format!("{}\r\n", b64("alice@virt.test")));
    assert!(l.line().starts_with("+ "));
    l.send(&format!("{}\r\n", b64(PASSWORD)));
    let ok = l.line();
    assert!(ok.starts_with("l1 OK [CAPABILITY "), "{ok}");
    let mut p = Client::connect(s.port);
    p.send("p1 AUTHENTICATE PLAIN\r\n");
    assert_eq!(p.line(), "+ ");
    p.send("*\r\n");
    let aborted = p.line();
    assert!(aborted.starts_with("p1 BAD"), "{aborted}");
    p.send("p2 AUTHENTICATE PLAIN\r\n");
    assert_eq!(p.line(), "+ ");
    p.send(&format!("{ir}\r\n"));
    let ok = p.line();
    assert!(ok.starts_with("p2 OK [CAPABILITY "), "{ok}");
    let r = c.ok(&format!("AUTHENTICATE PLAIN {ir}"));
    assert!(
        r[0].contains("OK [CAPABILITY IMAP4rev1") && r[0].contains("COMPRESS=DEFLATE"),
        "{r:?}"
    );
    c.ok("COMPRESS DEFLATE");
    // From here on both directions are raw deflate.
    let mut z = flate2::Compress::new(flate2::Compression::default(), false);
    let mut inflate = flate2::Decompress::new(false);
    // A 2 MB APPEND compresses to a few kB: one read inflates to all of it.
    let big = "x".repeat(2_000_000);
    let plain = format!(
        "z0 APPEND INBOX {{{}+}}\r\n{big}\r\nz1 SELECT INBOX\r\nz2 LOGOUT\r\n",
        big.len()
    );
    let mut packed = Vec::with_capacity(plain.len() / 100 + 1024);
    z.compress_vec(plain.as_bytes(), &mut packed, flate2::FlushCompress::Sync)
        .unwrap();
    assert!(packed.len() < 65_536, "{}", packed.len());
    c.r.get_mut().write_all(&packed).unwrap();
    let mut got = Vec::new();
    let mut raw = c.r.buffer().to_vec();
    let t = Instant::now();
    while !String::from_utf8_lossy(&got).contains("z2 OK") && t.elapsed() < Duration::from_secs(10)
    {
        let mut chunk = [0u8; 4096];
        let n = c.r.get_mut().read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
        let mut out = Vec::with_capacity(65536);
        let before = inflate.total_in();
        inflate
            .decompress_vec(&raw, &mut out, flate2::FlushDecompress::Sync)
            .unwrap();
        let used = usize::try_from(inflate.total_in() - before).unwrap();
        raw.drain(..used);
        got.extend_from_slice(&out);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.contains("z0 OK [APPENDUID ")
            && text.contains("z1 OK [READ-WRITE]")
            && text.contains("* BYE"),
        "{text}"
    );
}

#[test]
fn starttls_and_imaps_with_pythons_imaplib() {
    testkit::need_program("python3", "python3");
    let s = start_tls();
    let script = format!(
        r#"
import imaplib, ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
i = imaplib.IMAP4("127.0.0.1", {port})
assert "STARTTLS" in i.capabilities, i.capabilities
i.starttls(ssl_context=ctx)
assert "STARTTLS" not in i.capabilities, i.capabilities
i.authenticate("PLAIN", lambda _: b"\0alice@virt.test\0{pw}")
typ, data = i.select("INBOX")
assert typ == "OK", (typ, data)
i.append("INBOX", r"(\Flagged)", None, b"Subject: tls\r\n\r\nhi\r\n")
typ, data = i.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
assert b"Subject: tls" in data[0][1], data
i.logout()
j = imaplib.IMAP4_SSL("127.0.0.1", {ssl_port}, ssl_context=ctx)
j.login("alice@virt.test", "{pw}")
typ, data = j.status("INBOX", "(MESSAGES UIDNEXT)")
assert data[0] == b"INBOX (MESSAGES 1 UIDNEXT 2)", data
j.logout()
print("ok")
"#,
        port = s.port,
        ssl_port = s.ssl_port,
        pw = PASSWORD
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.inst.log()
    );
    assert!(
        s.inst
            .log()
            .contains("method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, TLS"),
        "{}",
        s.inst.log()
    );
}

/// Runs one Dovecot IMAP session (Debian's /usr/lib/dovecot/imap, preauth,
/// as the mailbox owner) over the Maildir; its output.
fn dovecot_session(s: &Server, commands: &str) -> String {
    let dovecot = Path::new("/usr/lib/dovecot/imap");
    testkit::need_file(dovecot, "dovecot-imapd");
    let conf = s.maildir.with_file_name("dovecot.conf");
    std::fs::write(
        &conf,
        format!(
            "mail_location = maildir:{}\nlog_path = /dev/stderr\nssl = no\nprotocols = imap\n",
            s.maildir.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(&s.maildir).unwrap();
    chown_tree(&s.maildir, s.owner);
    let mut cmd = if nix::unistd::geteuid().is_root() {
        let mut c = std::process::Command::new("setpriv");
        c.arg(format!("--reuid={}", s.owner.0))
            .arg(format!("--regid={}", s.owner.1))
            .arg("--clear-groups")
            .arg(dovecot);
        c
    } else {
        std::process::Command::new(dovecot)
    };
    let mut child = cmd
        .arg("-c")
        .arg(&conf)
        .env("USER", "alice")
        .env("HOME", s.maildir.parent().unwrap())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(commands.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("* PREAUTH") && text.contains("zz OK"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn a_maildir_dovecot_served_keeps_uids_flags_keywords_and_subscriptions() {
    let s = start();
    // Dovecot makes the mailboxes, messages, flags, keywords, subscriptions.
    let m1 = "Subject: one\r\n\r\nfirst\r\n";
    let m2 = "Subject: two\r\n\r\nsecond\r\n";
    let out = dovecot_session(
        &s,
        &format!(
            "a CREATE Lists.rust\r\nb SUBSCRIBE Lists.rust\r\n\
             c APPEND INBOX (\\Seen $Forwarded) {{{}+}}\r\n{m1}\r\n\
             d APPEND INBOX (Work) {{{}+}}\r\n{m2}\r\n\
             e SELECT INBOX\r\nf UID STORE 1:* +FLAGS (\\Answered)\r\n\
             g UID FETCH 1:* (FLAGS)\r\nzz LOGOUT\r\n",
            m1.len(),
            m2.len()
        ),
    );
    let validity = out
        .split("[UIDVALIDITY ")
        .nth(1)
        .and_then(|r| r.split(']').next())
        .unwrap()
        .to_string();
    // imapd sees what Dovecot made.
    let mut a = Client::login(s.port);
    let r = a.ok("SELECT INBOX");
    assert!(
        has(&r, &format!("[UIDVALIDITY {validity}]")),
        "{r:?}\n{out}"
    );
    let r = a.ok("UID FETCH 1:* (FLAGS)");
    assert_eq!(
        r[0], "* 1 FETCH (UID 1 FLAGS (\\Answered \\Seen $Forwarded))",
        "{out}"
    );
    assert_eq!(r[1], "* 2 FETCH (UID 2 FLAGS (\\Answered Work))");
    let r = a.ok("LSUB \"\" \"*\"");
    assert!(has(&r, "\".\" Lists.rust"), "{r:?}");
    // imapd's changes: a keyword, a new message, a subscription.
    a.ok("UID STORE 2 +FLAGS (Urgent)");
    a.ok("UID STORE 1 -FLAGS ($Forwarded)");
    let m3 = "Subject: three\r\n\r\nthird\r\n";
    a.n += 1;
    a.send(&format!(
        "a{} APPEND INBOX (\\Flagged) {{{}+}}\r\n{m3}\r\n",
        a.n,
        m3.len()
    ));
    assert_eq!(a.line(), "* 3 EXISTS");
    let mut l = a.line();
    while l.starts_with('*') {
        l = a.line();
    }
    assert!(l.contains(&format!("[APPENDUID {validity} 3]")), "{l}");
    a.ok("CREATE Archive");
    a.ok("SUBSCRIBE Archive");
    a.ok("LOGOUT");
    // Dovecot sees imapd's.
    let out = dovecot_session(
        &s,
        "e SELECT INBOX\r\ng UID FETCH 1:* (FLAGS)\r\nh LSUB \"\" *\r\nzz LOGOUT\r\n",
    );
    assert!(out.contains(&format!("[UIDVALIDITY {validity}]")), "{out}");
    assert!(
        out.contains("* 1 FETCH (UID 1 FLAGS (\\Answered \\Seen))"),
        "{out}"
    );
    assert!(
        out.contains("* 2 FETCH (UID 2 FLAGS (\\Answered Work Urgent))"),
        "{out}"
    );
    assert!(out.contains("* 3 FETCH (UID 3 FLAGS (\\Flagged"), "{out}");
    assert!(
        out.contains("\".\" Archive") && out.contains("\".\" Lists.rust"),
        "{out}"
    );
}

#[test]
fn quota_when_configured() {
    let s = start_with(false, "imapd_quota_storage_limit = 4096\n");
    s.deliver("", &format!("Subject: big\n\n{}\n", "x".repeat(2000)));
    let mut a = Client::login(s.port);
    let r = a.ok("CAPABILITY");
    assert!(r[0].contains(" QUOTA QUOTA=RES-STORAGE"), "{r:?}");
    let r = a.ok("GETQUOTAROOT INBOX");
    assert_eq!(
        r[..2],
        ["* QUOTAROOT INBOX \"\"", "* QUOTA \"\" (STORAGE 2 4)"]
    );
    let r = a.ok("GETQUOTA \"\"");
    assert_eq!(r[0], "* QUOTA \"\" (STORAGE 2 4)");
    a.ok("SELECT INBOX");
    a.ok("COPY 1 Trash");
    let r = a.cmd("COPY 1 Junk");
    assert!(r[0].contains(" NO [OVERQUOTA]"), "{r:?}");
    let r = a.cmd("SETQUOTA \"\" (STORAGE 99999)");
    assert!(r[0].contains("NO"), "{r:?}");
    a.ok("LOGOUT");
    // Without the setting there is no QUOTA.
    let s = start();
    let mut a = Client::login(s.port);
    let r = a.ok("CAPABILITY");
    assert!(!r[0].contains("QUOTA"), "{r:?}");
}
