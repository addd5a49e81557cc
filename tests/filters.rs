//! Issue 15, mail filters: policy delegation against Debian's postgrey, a
//! policy server that is down, and a restriction that is not built (smtpd
//! keeps greeting, `postfix check` names it).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::{SmtpSetup, need_smtp};
use testkit::{free_port, wait_until};

/// A minimal SMTP client: one reply per command, multi-line replies joined.
pub struct Smtp {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Smtp {
    /// Connects and returns the client with the greeting.
    pub fn connect(port: u16) -> (Smtp, String) {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut c = Smtp {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        };
        let g = c.reply();
        (c, g)
    }

    /// Reads one (possibly multi-line) reply.
    pub fn reply(&mut self) -> String {
        let mut out = String::new();
        loop {
            let mut line = String::new();
            if self.r.read_line(&mut line).unwrap_or(0) == 0 {
                return out + "(connection closed)";
            }
            out.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return out;
            }
        }
    }

    /// Sends one command line and reads its reply.
    pub fn cmd(&mut self, line: &str) -> String {
        if self.w.write_all(format!("{line}\r\n").as_bytes()).is_err() {
            return "(connection closed)".into();
        }
        self.reply()
    }

    /// Sends DATA, the message and the dot; the final reply.
    pub fn data(&mut self, msg: &str) -> String {
        let r = self.cmd("DATA");
        assert!(r.starts_with("354"), "DATA: {r}");
        self.w.write_all(msg.as_bytes()).unwrap();
        self.w.write_all(b"\r\n.\r\n").unwrap();
        self.reply()
    }
}

/// postgrey from Debian on a free port, greylisting for `delay` seconds.
struct Postgrey {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Postgrey {
    fn start(delay: u32) -> Postgrey {
        testkit::need_program("postgrey", "postgrey");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cmd = Command::new("postgrey");
        cmd.arg(format!("--inet=127.0.0.1:{port}"))
            .arg(format!("--delay={delay}"))
            .arg(format!("--dbdir={}", dir.path().display()))
            .arg("--max-age=1")
            // An empty client whitelist: 127.0.0.1 is greylisted too.
            .arg(format!("--whitelist-clients={}/none", dir.path().display()))
            .arg(format!(
                "--whitelist-recipients={}/none",
                dir.path().display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::fs::write(dir.path().join("none"), "").unwrap();
        if nix::unistd::geteuid().is_root() {
            // postgrey drops to this user; it must own its database.
            let user = nix::unistd::User::from_name("postgrey").ok().flatten();
            let (uid, gid) = user
                .map(|u| (u.uid.as_raw(), u.gid.as_raw()))
                .unwrap_or((65534, 65534));
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
            cmd.arg(format!("--user={uid}"))
                .arg(format!("--group={gid}"));
        }
        let child = cmd.spawn().unwrap();
        assert!(
            wait_until(Duration::from_secs(20), || TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "postgrey did not start on port {port}"
        );
        Postgrey {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Postgrey {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn transaction(port: u16, rcpt: &str) -> (String, Option<String>) {
    let (mut c, g) = Smtp::connect(port);
    if !g.starts_with("220") {
        return (g, None);
    }
    c.cmd("EHLO client.test");
    let m = c.cmd("MAIL FROM:<sender@client.test>");
    if !m.starts_with("250") {
        return (m, None);
    }
    let r = c.cmd(&format!("RCPT TO:<{rcpt}>"));
    let done = r
        .starts_with("250")
        .then(|| c.data("From: sender@client.test\r\nSubject: policy\r\n\r\nHello."));
    c.cmd("QUIT");
    (r, done)
}

#[test]
fn filters_postgrey_greylists_then_accepts() {
    need_smtp();
    let pg = Postgrey::start(1);
    let s = SmtpSetup::new()
        .main(&format!(
            "smtpd_recipient_restrictions = reject_unauth_destination, \
             check_policy_service inet:127.0.0.1:{}",
            pg.port
        ))
        .start();
    let (r, _) = transaction(s.port, "alice@virt.test");
    assert!(
        r.starts_with("450 ") && r.contains("Greylisted"),
        "first attempt: {r}\nmaillog:\n{}",
        s.inst.log()
    );
    std::thread::sleep(Duration::from_millis(2500));
    let (r, done) = transaction(s.port, "alice@virt.test");
    assert!(
        r.starts_with("250"),
        "retry: {r}\nmaillog:\n{}",
        s.inst.log()
    );
    let done = done.unwrap();
    assert!(done.starts_with("250"), "{done}");
    s.wait_mail("alice", 1);
    let log = s.inst.log();
    assert!(
        log.contains("NOQUEUE: reject: RCPT from") && log.contains("Greylisted"),
        "{log}"
    );
}

#[test]
fn filters_policy_server_down_gives_the_default_action() {
    need_smtp();
    let dead = free_port();
    let policy = format!(
        "smtpd_recipient_restrictions=reject_unauth_destination,check_policy_service,inet:127.0.0.1:{dead}"
    );
    let s = SmtpSetup::new()
        .main("smtpd_policy_service_try_limit = 2\nsmtpd_policy_service_retry_delay = 1s")
        .o(&policy)
        .service(&[&policy, "smtpd_policy_service_default_action=DUNNO"])
        .start();
    let t = std::time::Instant::now();
    let (r, _) = transaction(s.port, "alice@virt.test");
    assert!(
        r.starts_with("451 4.3.5 ") && r.contains("Server configuration problem"),
        "{r}\nmaillog:\n{}",
        s.inst.log()
    );
    assert!(t.elapsed() < Duration::from_secs(20));
    let (r, done) = transaction(s.extra_ports[0], "alice@virt.test");
    assert!(r.starts_with("250"), "{r}\nmaillog:\n{}", s.inst.log());
    assert!(done.unwrap().starts_with("250"));
    s.wait_mail("alice", 1);
    assert!(
        s.inst
            .log()
            .contains("problem talking to server inet:127.0.0.1:"),
        "{}",
        s.inst.log()
    );
}

#[test]
fn filters_unbuilt_restriction_is_refused_by_check_and_smtpd_still_greets() {
    need_smtp();
    let s = SmtpSetup::new().start();
    // After start (postfix check would refuse it): a restriction no one built.
    let main = s.inst.config_dir.join("main.cf");
    let mut text = std::fs::read_to_string(&main).unwrap();
    text.push_str("smtpd_recipient_restrictions = reject_rhsbl_sender rhsbl.example, reject_unauth_destination\n");
    std::fs::write(&main, text).unwrap();
    let out = s.inst.postfix(&["check"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string() + &s.inst.log();
    assert!(!out.status.success(), "postfix check passed");
    assert!(
        err.contains("restriction \"reject_rhsbl_sender\" is not built"),
        "{err}"
    );
    let out = s.inst.postfix(&["reload"]);
    assert!(out.status.success());
    // New smtpd processes read the new main.cf: they still greet, and
    // refuse mail with 451 until the configuration is fixed.
    let ok = wait_until(Duration::from_secs(20), || {
        let (r, _) = transaction(s.port, "alice@virt.test");
        r.starts_with("451 4.3.5 Server configuration error")
    });
    assert!(ok, "maillog:\n{}", s.inst.log());
    for _ in 0..3 {
        let (mut c, g) = Smtp::connect(s.port);
        assert!(g.starts_with("220"), "greeting: {g}");
        c.cmd("QUIT");
    }
    assert!(
        s.inst
            .log()
            .contains("unknown smtpd restriction: \"reject_rhsbl_sender\""),
        "{}",
        s.inst.log()
    );
}

/// The Python content filter (tests/py/smtpfilter.py), killed on drop.
struct PyFilter {
    child: Child,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl PyFilter {
    fn start(port: u16, reinject: u16) -> PyFilter {
        testkit::need_program("python3", "python3");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("seen");
        std::fs::write(&log, "").unwrap();
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("py/smtpfilter.py");
        let child = Command::new("python3")
            .arg(script)
            .args([
                "--port",
                &port.to_string(),
                "--reinject",
                &reinject.to_string(),
            ])
            .arg("--log")
            .arg(&log)
            .spawn()
            .unwrap();
        assert!(
            wait_until(Duration::from_secs(20), || TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "the filter did not start"
        );
        PyFilter {
            child,
            log,
            _dir: dir,
        }
    }

    fn seen(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for PyFilter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn filters_content_filter_round_trip_delivers_once() {
    need_smtp();
    let filter_port = free_port();
    // The re-injection smtpd is the first extra service (port known after
    // start): the filter is started once the instance runs.
    let s = SmtpSetup::new()
        .main(&format!("content_filter = smtp:[127.0.0.1]:{filter_port}"))
        .service(&[
            "content_filter=",
            "receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters,no_address_mappings",
            "smtpd_client_restrictions=",
            "smtpd_recipient_restrictions=permit_mynetworks,reject",
        ])
        .start();
    let filter = PyFilter::start(filter_port, s.extra_ports[0]);
    let (r, done) = transaction(s.port, "alice@virt.test");
    assert!(r.starts_with("250"), "{r}");
    assert!(done.unwrap().starts_with("250"));
    let msgs = s.wait_mail("alice", 1);
    let head = crate::util::header_block(&msgs[0]);
    assert!(
        head.contains("X-Content-Filter: passed"),
        "{head}\nmaillog:\n{}",
        s.inst.log()
    );
    s.wait_queue_empty();
    // Once through the filter, once delivered: no loop.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(filter.seen(), ["sender@client.test alice@virt.test"]);
    assert_eq!(s.maildir("alice").len(), 1);
    let log = s.inst.log();
    assert!(
        log.contains(&format!("relay=127.0.0.1[127.0.0.1]:{filter_port}")),
        "{log}"
    );
    // Local mail (sendmail, pickup) goes through the filter too, as in
    // Postfix, once.
    let mut child = std::process::Command::new(crate::util::bin_dir().join("sendmail"))
        .args(["-C", &s.inst.config_dir.display().to_string()])
        .args(["-f", "carol@virt.test", "alice@virt.test"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        b"Subject: local through the filter\n\nlocal\n",
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    let msgs = s.wait_mail("alice", 2);
    assert!(
        msgs.iter()
            .all(|m| crate::util::header_block(m).contains("X-Content-Filter: passed")),
        "maillog:\n{}",
        s.inst.log()
    );
    s.wait_queue_empty();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        filter.seen(),
        [
            "sender@client.test alice@virt.test",
            "carol@virt.test alice@virt.test"
        ]
    );
}

fn send_from(port: u16, sender: &str, rcpt: &str, subject: &str) {
    let (mut c, g) = Smtp::connect(port);
    assert!(g.starts_with("220"), "{g}");
    c.cmd("EHLO client.test");
    assert!(c.cmd(&format!("MAIL FROM:<{sender}>")).starts_with("250"));
    let r = c.cmd(&format!("RCPT TO:<{rcpt}>"));
    assert!(r.starts_with("250"), "{r}");
    let r = c.data(&format!(
        "From: {sender}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\nHello."
    ));
    assert!(r.starts_with("250"), "{r}");
    c.cmd("QUIT");
}

#[test]
fn filters_access_actions_prepend_bcc_redirect_filter() {
    need_smtp();
    let filter_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let rcpt_table = dir.path().join("rcpt");
    let sender_table = dir.path().join("sender");
    std::fs::write(
        &rcpt_table,
        "alice@virt.test PREPEND X-Access: prepended by access\nbob@virt.test BCC load@virt.test\n",
    )
    .unwrap();
    std::fs::write(
        &sender_table,
        format!(
            "redirect@client.test REDIRECT load@virt.test\n\
             filtered@client.test FILTER smtp:[127.0.0.1]:{filter_port}\n"
        ),
    )
    .unwrap();
    let s = SmtpSetup::new()
        .main(&format!(
            "smtpd_recipient_restrictions = check_recipient_access texthash:{}, \
             check_sender_access texthash:{}, reject_unauth_destination",
            rcpt_table.display(),
            sender_table.display()
        ))
        .service(&[
            "content_filter=",
            "smtpd_recipient_restrictions=permit_mynetworks,reject",
        ])
        .start();
    // PREPEND.
    send_from(s.port, "sender@client.test", "alice@virt.test", "prepend");
    let m = s.wait_mail("alice", 1);
    let head = crate::util::header_block(&m[0]);
    assert!(head.contains("X-Access: prepended by access"), "{head}");
    // BCC: bob and load get it.
    send_from(s.port, "sender@client.test", "bob@virt.test", "bcc");
    s.wait_mail("bob", 1);
    let load = s.wait_mail("load", 1);
    assert!(crate::util::header_block(&load[0]).contains("Subject: bcc"));
    // REDIRECT: alice's copy goes to load instead.
    send_from(
        s.port,
        "redirect@client.test",
        "bob@virt.test",
        "redirected",
    );
    let load = s.wait_mail("load", 2);
    assert!(
        load.iter()
            .any(|m| crate::util::header_block(m).contains("Subject: redirected"))
    );
    // FILTER: through the Python filter, then delivered once.
    let filter = PyFilter::start(filter_port, s.extra_ports[0]);
    send_from(
        s.port,
        "filtered@client.test",
        "alice@virt.test",
        "filtered",
    );
    let m = s.wait_mail("alice", 2);
    assert!(
        m.iter().any(|m| {
            let h = crate::util::header_block(m);
            h.contains("Subject: filtered") && h.contains("X-Content-Filter: passed")
        }),
        "maillog:\n{}",
        s.inst.log()
    );
    s.wait_queue_empty();
    assert_eq!(s.maildir("bob").len(), 1, "the redirected copy reached bob");
    assert_eq!(filter.seen(), ["filtered@client.test alice@virt.test"]);
    let log = s.inst.log();
    assert!(log.contains("triggers FILTER smtp:[127.0.0.1]"), "{log}");
    assert!(log.contains("triggers REDIRECT load@virt.test"), "{log}");
}
