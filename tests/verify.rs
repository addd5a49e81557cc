//! Issue 14, point 1: address verification (verify(8),
//! reject_unverified_recipient) in whole instances: local users, the
//! pending deferral, the cache across a restart, probes that deliver and
//! bounce nothing, and a probe over SMTP to a server that refuses the
//! recipient, compared with Debian's Postfix probing the same server.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::util::{
    DebianPostfix, SmtpInstance, SmtpSetup, debian_postfix_ready, need_smtp, wait_until,
};

/// One SMTP session up to RCPT TO for each of `rcpts`; the RCPT replies
/// (the whole last line, without CRLF).
fn rcpt_replies(port: u16, sender: &str, rcpts: &[&str]) -> Vec<String> {
    let s = TcpStream::connect(crate::util::local(port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let mut reply = || {
        let mut line = String::new();
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
        line.trim_end().to_string()
    };
    assert!(reply().starts_with("220"));
    let mut out = Vec::new();
    for cmd in [
        "EHLO client.test".to_string(),
        format!("MAIL FROM:<{sender}>"),
    ] {
        w.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
        let got = reply();
        assert!(got.starts_with('2'), "{cmd}: {got}");
    }
    for rcpt in rcpts {
        w.write_all(format!("RCPT TO:<{rcpt}>\r\n").as_bytes())
            .unwrap();
        out.push(reply());
    }
    let _ = w.write_all(b"QUIT\r\n");
    out
}

fn verify_instance(extra_service: &[&str]) -> SmtpInstance {
    SmtpSetup::new()
        .main("smtpd_recipient_restrictions = reject_unverified_recipient")
        .main("smtpd_reject_unlisted_recipient = no")
        .main("unverified_recipient_reject_code = 550")
        .main("address_verify_poll_delay = 1s")
        .main("address_verify_poll_count = 10")
        .service(extra_service)
        .start()
}

fn count(log: &str, needle: &str) -> usize {
    log.matches(needle).count()
}

/// reject_unverified_recipient: a local user is accepted, an unknown one
/// refused with 550 after its probe; the probes deliver nothing and
/// bounce nothing and are removed; the cache survives a restart (the
/// answer then comes from it, without a new probe).
#[test]
fn issue14_reject_unverified_recipient_local_users_and_cache() {
    need_smtp();
    let inst = verify_instance(&["address_verify_poll_count=1"]);
    let got = rcpt_replies(
        inst.port,
        "sender@client.test",
        &["nobody@localhost", "nosuchuser@localhost"],
    );
    assert_eq!(got[0], "250 2.1.5 Ok", "{}", inst.inst.log());
    assert_eq!(
        got[1],
        "550 5.1.1 <nosuchuser@localhost>: Recipient address rejected: undeliverable address: \
         unknown user: \"nosuchuser\"",
        "{}",
        inst.inst.log()
    );
    inst.wait_queue_empty();
    let log = inst.inst.log();
    assert_eq!(
        count(&log, "status=deliverable (delivers to mailbox)"),
        1,
        "{log}"
    );
    assert_eq!(
        count(&log, "status=undeliverable (unknown user: \"nosuchuser\")"),
        1,
        "{log}"
    );
    assert!(
        log.contains("from=<double-bounce@mx.test.example>"),
        "{log}"
    );
    // Nothing delivered, nothing bounced.
    assert!(!inst.base.join("spool/nobody").exists(), "{log}");
    assert!(!log.contains("status=sent"), "{log}");
    assert!(!log.contains("sender non-delivery notification"), "{log}");
    assert!(!log.contains("postfix/bounce["), "{log}");
    // The cache is the indexed table in data_directory.
    let db = inst.base.join("data/verify_cache.db");
    assert!(wait_until(Duration::from_secs(5), || db.exists()), "{log}");

    // Restarted: the answers come from the cache, with no new probe.
    let stop = inst.inst.postfix(&["stop"]);
    assert!(stop.status.success());
    assert!(
        wait_until(Duration::from_secs(10), || inst.inst.master_pid().is_none()
            || !crate::util::alive(inst.inst.master_pid().unwrap_or(0))),
        "master did not stop"
    );
    inst.inst.start();
    assert!(
        wait_until(Duration::from_secs(10), || crate::util::answers(
            crate::util::local(inst.extra_ports[0])
        )),
        "{}",
        inst.inst.log()
    );
    let got = rcpt_replies(
        inst.extra_ports[0],
        "sender@client.test",
        &["nobody@localhost", "nosuchuser@localhost"],
    );
    assert_eq!(got[0], "250 2.1.5 Ok", "{}", inst.inst.log());
    assert!(
        got[1].starts_with("550 5.1.1 <nosuchuser@localhost>"),
        "{got:?}"
    );
    let log = inst.inst.log();
    assert_eq!(count(&log, "status=deliverable"), 1, "{log}");
    assert_eq!(count(&log, "status=undeliverable"), 1, "{log}");
}

/// The pid of the instance's verify process.
fn verify_pid(inst: &SmtpInstance) -> Option<i32> {
    inst.inst.children().into_iter().find(|p| {
        std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "verify")
    })
}

/// While a probe is pending and address_verify_poll_count is used up,
/// the recipient is deferred with 450 "Address verification in
/// progress" (Postfix's wording); the next query has the result. verify
/// runs chrooted here, as Debian's master.cf has it (its cache directory
/// is opened before the jail).
#[test]
fn issue14_unverified_recipient_deferred_while_the_probe_is_pending() {
    need_smtp();
    let inst = verify_instance(&["address_verify_poll_count=1"]);
    let root = nix::unistd::geteuid().is_root();
    if root {
        let cf_path = inst.inst.config_dir.join("master.cf");
        let cf = std::fs::read_to_string(&cf_path).unwrap();
        let line = cf
            .lines()
            .find(|l| l.starts_with("verify "))
            .unwrap()
            .to_string();
        let chrooted = line.replacen(" n ", " y ", 1);
        assert_ne!(line, chrooted);
        inst.inst.write_master_cf(&cf.replace(&line, &chrooted));
        assert!(inst.inst.postfix(&["reload"]).status.success());
        inst.wait_log("reload -- version");
    }
    let got = rcpt_replies(
        inst.extra_ports[0],
        "sender@client.test",
        &["nosuch2@localhost"],
    );
    assert_eq!(
        got[0],
        "450 4.1.1 <nosuch2@localhost>: Recipient address rejected: unverified address: \
         Address verification in progress",
        "{}",
        inst.inst.log()
    );
    if root {
        let qdir = inst.inst.qdir.canonicalize().unwrap();
        let p = verify_pid(&inst).expect("no verify process");
        assert_eq!(std::fs::read_link(format!("/proc/{p}/root")).unwrap(), qdir);
    }
    inst.wait_log("status=undeliverable (unknown user: \"nosuch2\")");
    let got = rcpt_replies(
        inst.extra_ports[0],
        "sender@client.test",
        &["nosuch2@localhost"],
    );
    assert!(got[0].starts_with("550 5.1.1 "), "{got:?}");
}

/// A test SMTP server: records every command line; refuses RCPT TO for
/// local parts starting with "nosuch" (550 5.1.1), accepts the rest.
struct Recorder {
    port: u16,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn start() -> Recorder {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let rec = lines.clone();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let rec = rec.clone();
                std::thread::spawn(move || Recorder::session(s, &rec));
            }
        });
        Recorder { port, lines }
    }

    fn session(s: TcpStream, rec: &Mutex<Vec<String>>) {
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        let _ = w.write_all(b"220 sink.test ESMTP\r\n");
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            let cmd = line.trim_end().to_string();
            line.clear();
            rec.lock().unwrap().push(cmd.clone());
            let upper = cmd.to_ascii_uppercase();
            let answer = if upper.starts_with("EHLO") {
                "250-sink.test\r\n250 PIPELINING\r\n"
            } else if upper.starts_with("RCPT TO:<NOSUCH") {
                "550 5.1.1 <nosuch@remote.test>: no such user here\r\n"
            } else if upper.starts_with("DATA") {
                "554 5.5.1 no DATA expected from a probe\r\n"
            } else if upper.starts_with("QUIT") {
                let _ = w.write_all(b"221 2.0.0 Bye\r\n");
                return;
            } else {
                "250 2.0.0 Ok\r\n"
            };
            if w.write_all(answer.as_bytes()).is_err() {
                return;
            }
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

/// What matters of the probe sessions: the RCPT TO and DATA commands.
fn probe_commands(lines: &[String]) -> Vec<String> {
    let mut v: Vec<String> = lines
        .iter()
        .filter(|l| {
            let u = l.to_ascii_uppercase();
            u.starts_with("RCPT") || u.starts_with("DATA")
        })
        .cloned()
        .collect();
    v.sort();
    v
}

/// A probe through smtp to a server that refuses the recipient: the
/// client gets 550 with the server's words; the probe stops after RCPT
/// TO (no DATA). Debian's Postfix, probing the same server, answers the
/// same and sends the same commands.
#[test]
fn issue14_unverified_remote_recipient_over_smtp_as_postfix() {
    need_smtp();
    let sink = Recorder::start();
    let relay = format!("relayhost = [127.0.0.1]:{}", sink.port);
    let inst = SmtpSetup::new()
        .main("smtpd_recipient_restrictions = reject_unverified_recipient")
        .main("smtpd_relay_restrictions = permit_mynetworks, reject")
        .main("unverified_recipient_reject_code = 550")
        .main("address_verify_poll_delay = 1s")
        .main("address_verify_poll_count = 10")
        .main("smtp_host_lookup = native")
        .main("smtp_dns_support_level = disabled")
        .main(&relay)
        .start();
    let ours = rcpt_replies(
        inst.port,
        "sender@client.test",
        &["ok@remote.test", "nosuch@remote.test"],
    );
    assert_eq!(ours[0], "250 2.1.5 Ok", "{}", inst.inst.log());
    let want = "550 5.1.1 <nosuch@remote.test>: Recipient address rejected: undeliverable address: \
         host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <nosuch@remote.test>: no such user here \
         (in reply to RCPT TO command)";
    assert_eq!(ours[1], want, "{}", inst.inst.log());
    inst.wait_queue_empty();
    let our_cmds = probe_commands(&sink.lines());
    assert!(
        !our_cmds.iter().any(|c| c.eq_ignore_ascii_case("DATA")),
        "{our_cmds:?}"
    );
    assert!(
        our_cmds.contains(&"RCPT TO:<nosuch@remote.test>".to_string()),
        "{our_cmds:?}"
    );
    let log = inst.inst.log();
    assert!(log.contains("status=deliverable (250 2.0.0 Ok)"), "{log}");
    assert!(!log.contains("postfix/bounce["), "{log}");

    if !debian_postfix_ready() {
        return;
    }
    let before = sink.lines().len();
    let pf = DebianPostfix::start(
        &format!(
            "smtpd_recipient_restrictions = reject_unverified_recipient\n\
             smtpd_relay_restrictions = permit_mynetworks, reject\n\
             unverified_recipient_reject_code = 550\n\
             address_verify_poll_delay = 1s\naddress_verify_poll_count = 10\n{relay}\n"
        ),
        "",
    );
    let theirs = rcpt_replies(
        pf.port,
        "sender@client.test",
        &["ok@remote.test", "nosuch@remote.test"],
    );
    assert_eq!(theirs, ours, "{}", pf.log());
    let their_cmds = probe_commands(sink.lines().get(before..).unwrap_or_default());
    assert_eq!(their_cmds, our_cmds, "{}", pf.log());
}

/// address_verify_relayhost sends probes another way than mail: here
/// mail would go to a closed port, probes reach the test server.
#[test]
fn issue14_probes_follow_address_verify_relayhost() {
    need_smtp();
    let sink = Recorder::start();
    let closed = testkit::free_port();
    let inst = SmtpSetup::new()
        .main("smtpd_recipient_restrictions = reject_unverified_recipient")
        .main("smtpd_relay_restrictions = permit_mynetworks, reject")
        .main("address_verify_poll_delay = 1s")
        .main("address_verify_poll_count = 10")
        .main(&format!("relayhost = [127.0.0.1]:{closed}"))
        .main(&format!(
            "address_verify_relayhost = [127.0.0.1]:{}",
            sink.port
        ))
        .start();
    let got = rcpt_replies(inst.port, "sender@client.test", &["ok@remote.test"]);
    assert_eq!(got[0], "250 2.1.5 Ok", "{}", inst.inst.log());
    assert_eq!(probe_commands(&sink.lines()), ["RCPT TO:<ok@remote.test>"]);
}

/// `sendmail -bv`: nothing is delivered; the sender gets Postfix's "Mail
/// Delivery Status Report" with each recipient's result (deliverable,
/// undeliverable with the local agent's reason), and the verify cache is
/// not touched.
#[test]
fn issue14_sendmail_bv_mails_a_report_and_delivers_nothing() {
    need_smtp();
    let inst = SmtpSetup::new().start();
    let out = std::process::Command::new(crate::util::bin_dir().join("sendmail"))
        .arg("-C")
        .arg(&inst.inst.config_dir)
        .args([
            "-bv",
            "-f",
            "alice@virt.test",
            "nobody@localhost",
            "nosuch@localhost",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Mail Delivery Status Report will be mailed to <alice@virt.test>.\n"
    );
    assert!(
        wait_until(Duration::from_secs(30), || !inst.bounces().is_empty()),
        "no report:\n{}",
        inst.inst.log()
    );
    let report = inst.bounces().remove(0);
    for want in [
        "Subject: Mail Delivery Status Report\n",
        "Enclosed is the mail delivery report that you requested.\n",
        "<nobody@localhost>: delivers to mailbox\n",
        "<nosuch@localhost>: unknown user: \"nosuch\"\n",
        "Action: deliverable\n",
        "Action: undeliverable\n",
        "Content-Type: text/rfc822-headers\n",
        "Subject: probe\n",
    ] {
        assert!(report.contains(want), "{want:?} not in\n{report}");
    }
    inst.wait_queue_empty();
    assert!(!inst.base.join("spool/nobody").exists());
    assert!(!inst.base.join("data/verify_cache.db").exists());
    let log = inst.inst.log();
    assert!(
        log.contains("status=deliverable (delivers to mailbox)"),
        "{log}"
    );
    // Only the report is delivered (to alice).
    let sent: Vec<&str> = log.lines().filter(|l| l.contains("status=sent")).collect();
    assert!(
        sent.iter().all(|l| l.contains("to=<alice@virt.test>")),
        "{log}"
    );
    assert_eq!(sent.len(), 1, "{log}");
}

/// verify writes its table at most once a second; a result that came in
/// since the last write is saved when verify gets SIGTERM (postfix stop).
#[test]
fn issue14_verify_saves_its_cache_on_sigterm() {
    need_smtp();
    let inst = verify_instance(&["address_verify_poll_count=1"]);
    let got = rcpt_replies(
        inst.extra_ports[0],
        "sender@client.test",
        &["nosuch3@localhost"],
    );
    assert!(got[0].starts_with("450 4.1.1"), "{got:?}");
    let verify = verify_pid(&inst).expect("no verify process");
    // The probe's result reached verify: qmgr removes the probe after.
    inst.wait_log("removed");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(verify),
        nix::sys::signal::SIGTERM,
    )
    .unwrap();
    assert!(wait_until(Duration::from_secs(10), || !crate::util::alive(
        verify
    )));
    let out = std::process::Command::new(crate::util::bin_dir().join("postmap"))
        .arg("-c")
        .arg(&inst.inst.config_dir)
        .arg("-s")
        .arg(format!("btree:{}/data/verify_cache", inst.base.display()))
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("nosuch3@localhost\t2:0:"),
        "{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// address_verify_pending_request_limit: with a limit of 1 and one probe
/// stuck on a server that never greets, qmgr defers a second probe
/// without a delivery attempt ("4.3.2 Too many address verification
/// requests", Postfix's words), and the client gets 450 with that reason.
#[test]
fn issue14_probes_beyond_the_pending_limit_are_deferred() {
    need_smtp();
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    // Accepted connections are kept open and never answered.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().flatten() {
            held.push(s);
        }
    });
    let inst = SmtpSetup::new()
        .main("smtpd_recipient_restrictions = reject_unverified_recipient")
        .main("smtpd_relay_restrictions = permit_mynetworks, reject")
        .main("address_verify_poll_delay = 1s")
        .main("address_verify_poll_count = 10")
        .main("address_verify_pending_request_limit = 1")
        .main(&format!("address_verify_relayhost = [127.0.0.1]:{port}"))
        .start();
    let first = rcpt_replies(inst.port, "sender@client.test", &["stuck@remote.test"]);
    assert_eq!(
        first[0],
        "450 4.1.1 <stuck@remote.test>: Recipient address rejected: unverified address: \
         Address verification in progress",
        "{}",
        inst.inst.log()
    );
    let second = rcpt_replies(inst.port, "sender@client.test", &["second@remote.test"]);
    assert_eq!(
        second[0],
        "450 4.1.1 <second@remote.test>: Recipient address rejected: unverified address: \
         Too many address verification requests",
        "{}",
        inst.inst.log()
    );
    let log = inst.inst.log();
    assert!(
        log.contains("to=<second@remote.test>, relay=none")
            && log.contains("status=undeliverable (Too many address verification requests)"),
        "{log}"
    );
}
