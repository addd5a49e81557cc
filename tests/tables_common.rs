//! What the pgsql:, mysql: and ldap: tests share: an instance whose
//! tables (virtual_mailbox_domains, virtual_mailbox_maps,
//! virtual_alias_maps, transport_maps, check_recipient_access, alias_maps)
//! are given as `type:name` specifications, the same fixture data in each
//! database, a small SMTP client that returns the RCPT replies, and the
//! mail-flow checks every type must pass.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::util::{SmtpInstance, SmtpSetup, wait_until};

/// The tables of an instance, one `type:name` each.
pub struct Maps {
    pub domains: String,
    pub mailbox: String,
    pub alias: String,
    pub transport: String,
    pub access: String,
    pub aliases: String,
}

/// The fixture rows every database holds, as (table, key, value).
pub const FIXTURES: &[(&str, &str, &str)] = &[
    ("domain", "virt.test", "virt.test"),
    ("mailbox", "alice@virt.test", "alice/"),
    ("mailbox", "bob@virt.test", "bob/"),
    ("alias", "sales@virt.test", "bob@virt.test"),
    ("transport", "tr.test", "discard:routed by table"),
    ("access", "blocked@virt.test", "REJECT blocked by table"),
    ("aliases", "info", "alice@virt.test"),
];

/// The binaries these tests run besides util's.
pub fn need_bins() {
    crate::util::need_instance();
    testkit::need_bins(&[
        "proxymap",
        "smtpd",
        "cleanup",
        "qmgr",
        "trivial-rewrite",
        "local",
        "virtual",
        "discard",
        "postmap",
    ]);
}

/// Starts an instance using `maps`, plus `extra` main.cf lines.
pub fn start(maps: &Maps, extra: &str) -> SmtpInstance {
    start_with(maps, extra, "")
}

/// As [`start`], with `master` appended to master.cf.
pub fn start_with(maps: &Maps, extra: &str, master: &str) -> SmtpInstance {
    let mut setup = SmtpSetup::new()
        .main(&format!("virtual_mailbox_domains = {}", maps.domains))
        .main(&format!("virtual_mailbox_maps = {}", maps.mailbox))
        .main(&format!("virtual_alias_maps = {}", maps.alias))
        .main(&format!("transport_maps = {}", maps.transport))
        .main(&format!("alias_maps = {}", maps.aliases))
        .main(&format!(
            "smtpd_recipient_restrictions = check_recipient_access {}, permit_mynetworks, reject_unauth_destination",
            maps.access
        ))
        // Deferred mail is retried soon (the outage tests).
        .main("minimal_backoff_time = 2s\nmaximal_backoff_time = 4s\nqueue_run_delay = 1s");
    for line in extra.lines() {
        setup = setup.main(line);
    }
    setup.master(master).start()
}

fn reply(r: &mut impl BufRead) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return all;
        }
        all.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return all;
        }
    }
}

/// One SMTP session to 127.0.0.1:`port`: every RCPT's reply (first line
/// without CRLF); a message with `subject` is sent when one was accepted,
/// and must be accepted.
pub fn send(port: u16, rcpts: &[&str], subject: &str) -> Vec<String> {
    let (replies, data) = send_full(port, rcpts, subject);
    if let Some(d) = data {
        assert!(d.starts_with("250"), "end of DATA: {d}");
    }
    replies
}

/// As [`send`], also returning the reply to the end of DATA (when DATA
/// was sent), whatever it is.
pub fn send_full(port: u16, rcpts: &[&str], subject: &str) -> (Vec<String>, Option<String>) {
    let conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    reply(&mut r);
    for cmd in ["EHLO client.test", "MAIL FROM:<sender@client.test>"] {
        w.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
        let got = reply(&mut r);
        assert!(got.starts_with('2'), "{cmd}: {got}");
    }
    let mut out = Vec::new();
    for rcpt in rcpts {
        w.write_all(format!("RCPT TO:<{rcpt}>\r\n").as_bytes())
            .unwrap();
        out.push(reply(&mut r).lines().next().unwrap_or("").to_string());
    }
    let mut data = None;
    if out.iter().any(|r| r.starts_with("250")) {
        w.write_all(b"DATA\r\n").unwrap();
        let got = reply(&mut r);
        assert!(got.starts_with("354"), "DATA: {got}");
        w.write_all(
            format!("From: sender@client.test\r\nSubject: {subject}\r\n\r\nHello.\r\n.\r\n")
                .as_bytes(),
        )
        .unwrap();
        data = Some(reply(&mut r).lines().next().unwrap_or("").to_string());
    }
    let _ = w.write_all(b"QUIT\r\n");
    (out, data)
}

/// Waits until `user`'s Maildir holds a message with `subject`.
pub fn wait_subject(m: &SmtpInstance, user: &str, subject: &str) {
    let needle = format!("Subject: {subject}");
    let ok = wait_until(Duration::from_secs(60), || {
        m.maildir(user)
            .iter()
            .any(|msg| String::from_utf8_lossy(msg).contains(&needle))
    });
    assert!(
        ok,
        "{user} did not get \"{subject}\"\nmaillog:\n{}",
        m.inst.log()
    );
}

/// Mail flows through each table class: mailbox and alias lookups, the
/// domain list, transport_maps, the access check, alias_maps, and an
/// unknown user and an SQL-injection attempt answered as unknown.
pub fn check_mail_flow(m: &SmtpInstance, tag: &str) {
    let s = |x: &str| format!("{tag} {x}");
    let r = send(m.port, &["alice@virt.test"], &s("mailbox"));
    assert!(r[0].starts_with("250"), "{r:?}\n{}", m.inst.log());
    wait_subject(m, "alice", &s("mailbox"));

    let r = send(m.port, &["sales@virt.test"], &s("alias"));
    assert!(r[0].starts_with("250"), "{r:?}\n{}", m.inst.log());
    wait_subject(m, "bob", &s("alias"));

    let r = send(m.port, &["info@mx.test.example"], &s("aliases"));
    assert!(r[0].starts_with("250"), "{r:?}\n{}", m.inst.log());
    wait_subject(m, "alice", &s("aliases"));

    let r = send(m.port, &["someone@tr.test"], &s("transport"));
    assert!(r[0].starts_with("250"), "{r:?}\n{}", m.inst.log());
    assert!(
        wait_until(Duration::from_secs(30), || m
            .inst
            .log()
            .contains("to=<someone@tr.test>, relay=none")
            && m.inst.log().contains("routed by table")),
        "transport_maps: {}",
        m.inst.log()
    );

    let r = send(
        m.port,
        &[
            "blocked@virt.test",
            "nobody@virt.test",
            // The recipient, quoted as RFC 5321 wants a local part
            // with spaces (unquoted, smtpd refuses its syntax first).
            "\"x'; DROP TABLE mailbox; --\"@virt.test",
            "o'brien@virt.test",
            "x\\'@virt.test",
            "*@virt.test",
        ],
        "rejected",
    );
    assert!(
        r[0].starts_with("554 5.7.1") && r[0].contains("blocked by table"),
        "{r:?}"
    );
    for (i, got) in r.iter().enumerate().skip(1) {
        assert!(
            got.starts_with("550 5.1.1") && got.contains("User unknown"),
            "recipient {i}: {got}\n{}",
            m.inst.log()
        );
    }
    m.wait_queue_empty();
    assert!(!m.inst.log().contains("status=bounced"), "{}", m.inst.log());
}
