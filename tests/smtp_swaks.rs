//! swaks against smtpd (issue 4): plain, PIPELINING, STARTTLS, AUTH PLAIN
//! and LOGIN after STARTTLS, and implicit TLS on the submissions port. The
//! server certificate is verified against the test CA.

use crate::smtp::{find, received};
use crate::util::{PASSWORD, SmtpInstance, SmtpSetup, need_smtp};
use std::process::Command;

fn swaks(s: &SmtpInstance, port: u16, subject: &str, args: &[&str]) {
    let out = Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port", &port.to_string()])
        .args(["--from", "swaks@client.test", "--to", "alice@virt.test"])
        .args(["--ehlo", "client.test", "--h-Subject", subject])
        .args(["--timeout", "30"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "swaks {args:?} failed ({}):\n{}{}\nmaillog:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.inst.log()
    );
}

#[test]
fn smtp_swaks_flows() {
    need_smtp();
    testkit::need_program("swaks", "swaks");
    let s = SmtpSetup::new()
        .submission()
        .o("smtpd_sasl_auth_enable=yes")
        .o("smtpd_tls_auth_only=yes")
        .start();
    let ca = s.pki.as_ref().unwrap().ca.display().to_string();
    let tls = [
        "--tls-verify",
        "--tls-ca-path",
        &ca,
        "--tls-sni",
        "localhost",
    ];
    swaks(&s, s.port, "swaks plain", &[]);
    swaks(&s, s.port, "swaks pipeline", &["--pipeline"]);
    let mut a = vec!["--tls"];
    a.extend(tls);
    swaks(&s, s.port, "swaks tls", &a);
    for mech in ["PLAIN", "LOGIN"] {
        let mut a = vec!["--tls", "--auth", mech, "--auth-user", "alice@virt.test"];
        a.extend(["--auth-password", PASSWORD]);
        a.extend(tls);
        swaks(&s, s.port, &format!("swaks auth {mech}"), &a);
    }
    let mut a = vec!["--tls", "--auth", "PLAIN", "--auth-user", "bob@virt.test"];
    a.extend(["--auth-password", PASSWORD]);
    a.extend(tls);
    swaks(&s, s.submission_port, "swaks submission", &a);
    let mut a = vec!["--tlsc", "--auth", "LOGIN", "--auth-user", "bob@virt.test"];
    a.extend(["--auth-password", PASSWORD]);
    a.extend(tls);
    swaks(&s, s.submissions_port, "swaks submissions", &a);

    let msgs = s.wait_mail("alice", 7);
    s.wait_queue_empty();
    assert_eq!(s.maildir("alice").len(), 7);
    for (subject, proto) in [
        ("swaks plain", "with ESMTP id"),
        ("swaks pipeline", "with ESMTP id"),
        ("swaks tls", "with ESMTPS id"),
        ("swaks auth PLAIN", "with ESMTPSA id"),
        ("swaks auth LOGIN", "with ESMTPSA id"),
        ("swaks submission", "with ESMTPSA id"),
        ("swaks submissions", "with ESMTPSA id"),
    ] {
        let r = received(find(&msgs, subject));
        assert!(r.contains(proto), "{subject}: {r}");
    }
}
