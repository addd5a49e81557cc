//! The relay suite (issue 4): an unauthenticated client outside
//! mynetworks tries every address trick that has made servers open relays.
//! Each is refused at RCPT, nothing is queued, nothing delivered; the same
//! addresses from inside mynetworks, or after AUTH, are accepted (their
//! delivery then waits in the queue: default_transport is `retry` here,
//! so that nothing leaves through the smtp client).
//!
//! mynetworks is 192.0.2.0/24 (TEST-NET-1) so that the test's loopback
//! client counts as outside. The local domains are mx.test.example
//! (mydestination) and virt.test (virtual).

use crate::util::{PASSWORD, SmtpSetup, need_smtp};
use std::time::Duration;

/// Addresses that must never be relayed for an outsider.
const TRICKS: &[&str] = &[
    "user@remote.example",
    "user%remote.example@mx.test.example",
    "remote.example!user@mx.test.example",
    "\"user@remote.example\"@mx.test.example",
    "\"user%remote.example\"@mx.test.example",
    "@mx.test.example:user@remote.example",
    "@mx.test.example,@remote.example:user@remote.example",
    "user@remote.example@mx.test.example",
    "user@remote.example@virt.test",
    "user%remote.example@virt.test",
    "remote.example!user@virt.test",
    "user@[192.0.2.1]",
    "user@[IPv6:2001:db8::1]",
    "user@REMOTE.EXAMPLE",
    "USER%REMOTE.EXAMPLE@MX.TEST.EXAMPLE",
    "user@remote.example.",
    "user%remote.example@mx.test.example.",
    "user@mx.test.example.remote.example",
    "user@virt.test.remote.example",
];

/// Runs the `rcpts` check: (address, code, reply text) per address.
fn try_rcpts(
    s: &crate::util::SmtpInstance,
    port: u16,
    addrs: &[&str],
    extra: &[&str],
) -> Vec<(String, u16, String)> {
    let mut args: Vec<String> = addrs.iter().map(|a| format!("--try={a}")).collect();
    args.push("--data".into());
    args.extend(extra.iter().map(|x| x.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = s.py_output("rcpts", port, &argv);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "rcpts failed:\n{stdout}{}\nmaillog:\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.inst.log()
    );
    stdout
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("RCPT <")?;
            let (addr, rest) = rest.split_once("> ")?;
            let (code, text) = rest.split_once(' ')?;
            Some((addr.to_string(), code.parse().ok()?, text.to_string()))
        })
        .collect()
}

#[test]
fn smtp_relay_refused_for_outsiders() {
    need_smtp();
    let s = SmtpSetup::new()
        .main("mynetworks = 192.0.2.0/24")
        .main("default_transport = retry:relayed mail waits in this test")
        .tls()
        .o("smtpd_sasl_auth_enable=yes")
        // Postfix's recommended explicit list: a hard reject.
        .service(&[
            "smtpd_relay_restrictions=permit_mynetworks,permit_sasl_authenticated,reject_unauth_destination",
        ])
        // The same client counted as inside mynetworks.
        .service(&["mynetworks=127.0.0.0/8"])
        .start();

    // Default settings: defer_unauth_destination, 454 4.7.1.
    let got = try_rcpts(&s, s.port, TRICKS, &[]);
    assert_eq!(got.len(), TRICKS.len(), "{got:?}");
    for (addr, code, text) in &got {
        assert_eq!(*code, 454, "{addr}: {code} {text}");
        assert!(
            text.starts_with("4.7.1 <") && text.ends_with(">: Relay access denied"),
            "{addr}: {text}"
        );
    }
    // reject_unauth_destination: 554 5.7.1.
    let got = try_rcpts(&s, s.extra_ports[0], TRICKS, &[]);
    assert_eq!(got.len(), TRICKS.len(), "{got:?}");
    for (addr, code, text) in &got {
        assert_eq!(*code, 554, "{addr}: {code} {text}");
        assert!(text.ends_with("Relay access denied"), "{addr}: {text}");
    }
    // Local recipients are still accepted from outside.
    let got = try_rcpts(
        &s,
        s.port,
        &["alice@virt.test"],
        &["--tag", "outside-local"],
    );
    assert_eq!(got[0].1, 250, "{got:?}");

    std::thread::sleep(Duration::from_millis(500));
    assert!(
        s.wait_mail("alice", 1).len() == 1,
        "only the local message arrives"
    );
    s.wait_queue_empty();
    let log = s.inst.log();
    assert_eq!(
        log.lines()
            .filter(
                |l| l.contains("NOQUEUE: reject: RCPT from") && l.contains("Relay access denied")
            )
            .count(),
        2 * TRICKS.len(),
        "one NOQUEUE reject line per attempt:\n{log}"
    );
    assert!(
        !log.lines()
            .any(|l| l.contains("to=<user") && l.contains("status=")),
        "a relay attempt reached delivery:\n{log}"
    );

    // From mynetworks: relaying is allowed (accepted; the delivery waits).
    let relay = ["user@remote.example", "user@[192.0.2.1]"];
    let got = try_rcpts(&s, s.extra_ports[1], &relay, &["--tag", "mynetworks"]);
    for (addr, code, text) in &got {
        assert_eq!(*code, 250, "from mynetworks {addr}: {code} {text}");
    }
    // Authenticated (STARTTLS + AUTH PLAIN): allowed too.
    let got = try_rcpts(
        &s,
        s.port,
        &["user@remote.example"],
        &[
            "--starttls",
            "--user",
            "alice@virt.test",
            "--password",
            PASSWORD,
            "--tag",
            "sasl",
        ],
    );
    assert_eq!(got[0].1, 250, "authenticated relay: {got:?}");
    assert!(
        crate::util::wait_until(Duration::from_secs(10), || s.queued() >= 3),
        "3 relayed messages queued: {}\n{}",
        s.queued(),
        s.inst.log()
    );
    assert_eq!(s.maildir("alice").len(), 1);
}
