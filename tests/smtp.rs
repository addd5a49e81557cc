//! smtpd end to end (issue 4): Python's smtplib (tests/py/smtpcheck.py)
//! against a real instance, every ESMTP extension, STARTTLS then AUTH,
//! submission and submissions, the size limit, VRFY, ETRN, and the two
//! abuse cases the issue names: SMTP smuggling and STARTTLS command
//! injection. What arrives is read back from the virtual users' Maildirs.

use crate::util::{PASSWORD, SmtpSetup, header_block, need_smtp};
use std::time::Duration;

fn text(m: &[u8]) -> String {
    String::from_utf8_lossy(m).into_owned()
}

/// The one message whose Subject is `subject`.
pub fn find<'a>(msgs: &'a [Vec<u8>], subject: &str) -> &'a [u8] {
    let hits: Vec<&Vec<u8>> = msgs
        .iter()
        .filter(|m| {
            header_block(m)
                .lines()
                .any(|l| l.strip_prefix("Subject:").map(str::trim) == Some(subject))
        })
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "messages with Subject {subject:?}: {}; all:\n{}",
        hits.len(),
        msgs.iter()
            .map(|m| header_block(m))
            .collect::<Vec<_>>()
            .join("\n----\n")
    );
    hits[0]
}

/// The Received header smtpd added (the first one).
pub fn received(m: &[u8]) -> String {
    header_block(m)
        .lines()
        .find(|l| l.starts_with("Received:"))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn smtp_extensions_and_commands() {
    need_smtp();
    let s = SmtpSetup::new().start();
    s.py("ehlo", &["--expect-size", "10240000"]);
    let out = s.py("send", &["--tag", "p1"]);
    assert!(out.contains("queued as"), "{out}");
    s.py("helo", &["--tag", "h1"]);
    s.py("8bitmime", &["--tag", "e1"]);
    s.py("smtputf8", &["--tag", "u1"]);
    // The success notice goes to bob.
    s.py("dsn", &["--tag", "d1", "--sender", "bob@virt.test"]);
    s.py("bdat", &["--tag", "b1"]);
    s.py("pipeline", &["--tag", "pl1"]);
    s.py("etrn", &[]);
    s.py("vrfy", &["--expect", "on"]);
    s.py("rset-noop", &["--tag", "r1"]);

    // plain, helo, 8bit, utf8, dsn, bdat x2, pipelined, after-rset.
    let msgs = s.wait_mail("alice", 9);
    s.wait_queue_empty();
    assert_eq!(s.maildir("alice").len(), 9);

    let plain = find(&msgs, "plain p1");
    let r = received(plain);
    assert!(r.contains("from client.test"), "{r}");
    assert!(r.contains("[127.0.0.1]"), "{r}");
    assert!(r.contains("by mx.test.example"), "{r}");
    assert!(r.contains("with ESMTP id "), "{r}");
    assert!(r.contains("for <alice@virt.test>"), "{r}");
    let r = received(find(&msgs, "helo h1"));
    assert!(r.contains("with SMTP id "), "{r}");

    let eight = text(find(&msgs, "8bit e1"));
    assert!(eight.contains("Grüße aus Köln: ½ € ✓"), "{eight}");

    let utf8 = text(find(&msgs, "ünïcode u1"));
    assert!(utf8.contains("Return-Path: <dëlia@exämple.test>"), "{utf8}");
    let r = received(utf8.as_bytes());
    assert!(
        r.contains("with UTF8SMTP") || r.contains("with ESMTP"),
        "{r}"
    );

    let bdat = text(find(&msgs, "bdat b1"));
    assert!(
        bdat.contains("first chunk line\n.\nline after a dot\nlast line\n"),
        "BDAT content (CRLF across chunks, no dot-unstuffing):\n{bdat}"
    );
    let _ = find(&msgs, "bdat-two b1");
    let _ = find(&msgs, "dsn d1");
    let _ = find(&msgs, "pipelined pl1");
    let _ = find(&msgs, "after-rset r1");
    // bob: the pipelined message's second recipient, and the success
    // notice (NOTIFY=SUCCESS) for the DSN message, with its ENVID.
    let bobs = s.wait_mail("bob", 2);
    let _ = find(&bobs, "pipelined pl1");
    let dsn = text(find(&bobs, "Successful Mail Delivery Report"));
    for needle in [
        "Original-Envelope-Id: env-d1",
        "Original-Recipient: rfc822;alice@virt.test",
        "Action: delivered",
        // RET=HDRS: the headers only.
        "Content-Type: text/rfc822-headers",
        "Subject: dsn d1",
    ] {
        assert!(dsn.contains(needle), "{needle:?} not in the DSN:\n{dsn}");
    }

    // The log: Postfix's shapes.
    let log = s.inst.log();
    for needle in ["connect from ", ": client=", "disconnect from "] {
        assert!(
            log.lines()
                .any(|l| l.contains(needle) && l.contains("[127.0.0.1]")),
            "no `{needle}...[127.0.0.1]` line:\n{log}"
        );
    }
}

#[test]
fn smtp_size_limit_and_vrfy_off() {
    need_smtp();
    let s = SmtpSetup::new()
        .o("message_size_limit=20000")
        .o("disable_vrfy_command=yes")
        .start();
    s.py("too-big", &["--limit", "20000", "--tag", "big"]);
    s.py("vrfy", &["--expect", "off"]);
    s.py("send", &["--tag", "small"]);
    let msgs = s.wait_mail("alice", 1);
    s.wait_queue_empty();
    assert_eq!(msgs.len(), 1, "only the small message arrives");
    let _ = find(&msgs, "plain small");
}

#[test]
fn smtp_starttls_auth() {
    need_smtp();
    let s = SmtpSetup::new()
        .tls()
        .o("smtpd_sasl_auth_enable=yes")
        .o("smtpd_tls_auth_only=yes")
        .start();
    s.py("ehlo", &["--tls", "--auth-only", "--expect-auth"]);
    s.py(
        "tls-auth-send",
        &[
            "--auth-only",
            "--bad-password",
            "--mech",
            "PLAIN",
            "--user",
            "alice@virt.test",
            "--password",
            PASSWORD,
            "--tag",
            "tp",
        ],
    );
    s.py(
        "tls-auth-send",
        &[
            "--mech",
            "LOGIN",
            "--user",
            "bob@virt.test",
            "--password",
            PASSWORD,
            "--tag",
            "tl",
        ],
    );
    let msgs = s.wait_mail("alice", 2);
    for (tag, user) in [("auth-PLAIN tp", "alice"), ("auth-LOGIN tl", "bob")] {
        let r = received(find(&msgs, tag));
        assert!(r.contains("with ESMTPSA id "), "{r}");
        assert!(r.contains("(using TLSv1.3 with cipher TLS_"), "{r}");
        assert!(r.contains("bits)"), "{r}");
        let _ = user;
    }
    let log = s.inst.log();
    assert!(
        log.contains("sasl_method=PLAIN, sasl_username=alice@virt.test"),
        "{log}"
    );
    assert!(
        log.contains("sasl_method=LOGIN, sasl_username=bob@virt.test"),
        "{log}"
    );
    assert!(
        log.contains("SASL PLAIN authentication failed"),
        "the wrong password is logged:\n{log}"
    );
}

#[test]
fn smtp_submission_and_submissions() {
    need_smtp();
    let s = SmtpSetup::new().submission().start();
    let sub = s.submission_port.to_string();
    // 587: STARTTLS required, then AUTH required.
    let out = s.py_output(
        "submission-noauth",
        s.submission_port,
        &["--rcpt", "alice@virt.test"],
    );
    assert!(
        out.status.success(),
        "{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.inst.log()
    );
    let out = s.py_output(
        "tls-auth-send",
        s.submission_port,
        &[
            "--submission-port",
            &sub,
            "--auth-only",
            "--user",
            "alice@virt.test",
            "--password",
            PASSWORD,
            "--rcpt",
            "bob@virt.test",
            "--tag",
            "sub",
        ],
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // 465: implicit TLS.
    let out = s.py_output(
        "implicit-tls",
        s.submissions_port,
        &[
            "--user",
            "bob@virt.test",
            "--password",
            PASSWORD,
            "--mech",
            "LOGIN",
            "--rcpt",
            "bob@virt.test",
            "--tag",
            "subs",
        ],
    );
    assert!(
        out.status.success(),
        "{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.inst.log()
    );
    // Relaying for authenticated users: accepted (delivery defers: no smtp client yet).
    let msgs = s.wait_mail("bob", 2);
    assert!(received(find(&msgs, "auth-PLAIN sub")).contains("with ESMTPSA"));
    assert!(received(find(&msgs, "implicit-tls subs")).contains("with ESMTPSA"));
    assert!(
        s.maildir("alice").is_empty(),
        "nothing arrives without AUTH"
    );
    let log = s.inst.log();
    assert!(
        log.contains("postfix/submission/smtpd"),
        "syslog_name: {log}"
    );
    assert!(
        log.contains("postfix/submissions/smtpd"),
        "syslog_name: {log}"
    );
}

#[test]
fn smtp_starttls_injection() {
    need_smtp();
    let s = SmtpSetup::new().tls().start();
    let out = s.py("starttls-inject", &[]);
    assert!(out.contains("no RSET executed inside TLS"), "{out}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(s.queued(), 0);
}

const SMUGGLE_VARIANTS: [&str; 6] = ["lf", "cr", "lf-crlf", "crlf-lf", "cr-cr", "crlf-cr"];

/// Postfix 3.9's default, smtpd_forbid_bare_newline = normalize: the
/// fake ends are content; exactly one message per attempt arrives, with
/// the hidden commands as its text, and the hidden recipient gets nothing.
/// The client is in mynetworks (which smtpd_forbid_bare_newline_exclusions
/// names by default): the exclusion must not reopen the hole.
#[test]
fn smtp_smuggling_normalize() {
    need_smtp();
    let s = SmtpSetup::new().start();
    for v in SMUGGLE_VARIANTS {
        s.py("smuggle", &["--variant", v, "--tag", v]);
    }
    let msgs = s.wait_mail("alice", SMUGGLE_VARIANTS.len());
    s.wait_queue_empty();
    assert_eq!(s.maildir("alice").len(), SMUGGLE_VARIANTS.len());
    for v in SMUGGLE_VARIANTS {
        let m = text(find(&msgs, &format!("carrier {v}")));
        assert!(m.contains("MAIL FROM:<smuggler@evil.test>"), "{v}: {m}");
        assert!(m.contains(&format!("SMUGGLED {v}")), "{v}: {m}");
        assert!(m.contains("hidden body"), "{v}: {m}");
    }
    assert!(
        s.maildir("bob").is_empty(),
        "the hidden message was delivered"
    );
    assert!(!s.inst.log().contains("from=<smuggler@evil.test>"));
}

/// smtpd_forbid_bare_newline = reject, for a client outside mynetworks:
/// a bare LF gets 550 5.5.2 and nothing is queued; a bare CR is content.
#[test]
fn smtp_smuggling_reject() {
    need_smtp();
    let s = SmtpSetup::new()
        .main("mynetworks = 192.0.2.0/24")
        .o("smtpd_forbid_bare_newline=reject")
        .start();
    let mut accepted = 0;
    for v in SMUGGLE_VARIANTS {
        // Only these contain a bare LF.
        let bare_lf = matches!(v, "lf" | "cr" | "lf-crlf" | "crlf-lf");
        let expect = if bare_lf { "reject" } else { "normalize" };
        s.py("smuggle", &["--variant", v, "--tag", v, "--expect", expect]);
        if !bare_lf {
            accepted += 1;
        }
    }
    let msgs = s.wait_mail("alice", accepted);
    s.wait_queue_empty();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.maildir("alice").len(), accepted);
    for m in &msgs {
        assert!(text(m).contains("hidden body"));
    }
    assert!(s.maildir("bob").is_empty());
}

/// `sendmail -bs`: an SMTP conversation on stdin/stdout queues a message.
#[test]
fn smtp_sendmail_bs() {
    need_smtp();
    let s = SmtpSetup::new().start();
    let out = s.sendmail(
        &["-bs"],
        b"EHLO client.test\r\nMAIL FROM:<bs@client.test>\r\nRCPT TO:<alice@virt.test>\r\n\
          DATA\r\nSubject: via -bs\r\n\r\nsent with sendmail -bs\r\n.\r\nQUIT\r\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sendmail -bs: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("220 mx.test.example ESMTP"), "{stdout}");
    assert!(stdout.contains("250-PIPELINING\r\n"), "{stdout}");
    assert!(
        stdout.contains("\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 "),
        "{stdout}"
    );
    // Postfix's `sendmail -bs` says "queued as ID"; the id may be the
    // maildrop file's here, so only the reply is checked.
    assert!(stdout.contains("\r\n250 2.0.0 Ok: queued"), "{stdout}");
    assert!(stdout.ends_with("221 2.0.0 Bye\r\n"), "{stdout}");
    let msgs = s.wait_mail("alice", 1);
    let m = text(find(&msgs, "via -bs"));
    assert!(m.contains("Return-Path: <bs@client.test>"), "{m}");
    assert!(m.contains("sent with sendmail -bs"), "{m}");
}

/// Many idle clients after the smtpd processes have passed max_use: each
/// process keeps its clients and master starts new ones, so every new
/// connection still gets its greeting (the bench holds 5000 this way).
#[test]
fn smtp_idle_clients_after_max_use() {
    need_smtp();
    // maxproc ("-": default_process_limit) caps concurrent sessions, as in
    // Postfix: room for the 500 clients.
    let s = SmtpSetup::new()
        .main("default_process_limit = 1000")
        .o("max_use=10")
        .start();
    // 500 descriptors in the client: under a default limit of 1024.
    let out = s.py("idle", &["--count", "200", "--idle", "500"]);
    assert!(out.contains("greeted 500 of 500"), "{out}");
}
