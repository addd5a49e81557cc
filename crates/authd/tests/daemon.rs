//! auth under a real master: the socket master makes, the protocol over it,
//! the passwd-file re-read on change, the log lines.

// A test binary: helpers panic on setup failure as #[test] bodies do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use auth::dovecot::{Client, ClientInfo, Step};
use base64::Engine as _;

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn info(rip: &str) -> ClientInfo {
    ClientInfo {
        service: "smtp".into(),
        remote_ip: rip.into(),
        local_ip: "127.0.0.1".into(),
        secured: false,
    }
}

#[test]
fn auth_under_master() {
    common::need_instance();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let mut ours = common::Ours::new(
        &base,
        "auth_failure_delay = 1s\nauth_failure_limit = 3\nmax_use = 2\nauth_client_limit = 5\n",
    );
    ours.write_passwd(
        "# test users\nalice@example.com:{PLAIN}secret:::::\n\
         bob:{SHA512-CRYPT}$6$saltsalt$8RWsOfwR6M6PpnoeQiEiWzNTPo1f0HjVYjDnLZhGx16aBFRkeqiHAzfXP/LgrOWMBMXqiU2pLrXsSOHNUyUm91\n\
         yves:{CRYPT}$y$j9T$0Yltfa7l4TXXdvJixZzU7.$ghfBbeKOw3tgLs0ZP6KbyAHu5AKjNgho4udvXIie1/7\n\
         mia:$1$saltsalt$9xy1btjgzLYfb7hivXtC//\n",
    );
    ours.start();
    let sock = ours.socket();

    // A raw transcript first, as Postfix's smtpd writes it.
    let mut s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"VERSION\t1\t0\nCPID\t4242\n").unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut hs = Vec::new();
    loop {
        let mut l = String::new();
        assert!(r.read_line(&mut l).unwrap() > 0, "EOF in handshake: {hs:?}");
        let done = l == "DONE\n";
        hs.push(l);
        if done {
            break;
        }
    }
    assert_eq!(hs.first().map(String::as_str), Some("VERSION\t1\t2\n"));
    assert!(
        hs.contains(&"MECH\tPLAIN\tplaintext\n".to_string()),
        "{hs:?}"
    );
    assert!(
        hs.contains(&"MECH\tLOGIN\tplaintext\n".to_string()),
        "{hs:?}"
    );
    assert!(hs.iter().any(|l| l.starts_with("SPID\t")));
    s.write_all(
        format!(
            "AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=192.0.2.1\tresp={}\n",
            b64(b"\0alice@example.com\0secret")
        )
        .as_bytes(),
    )
    .unwrap();
    let mut l = String::new();
    r.read_line(&mut l).unwrap();
    assert_eq!(l, "OK\t1\tuser=alice@example.com\n");
    drop((s, r));

    // The client smtpd uses.
    let mut c = Client::connect(&sock).unwrap();
    assert_eq!(c.mechanisms(), ["PLAIN", "LOGIN"]);
    assert_eq!(
        c.begin("LOGIN", None, &info("192.0.2.2")).unwrap(),
        Step::Continue("VXNlcm5hbWU6".into())
    );
    c.respond(&b64(b"bob")).unwrap();
    assert_eq!(c.respond(&b64(b"x")).unwrap(), Step::Ok("bob".into()));

    // yescrypt (`mkpasswd -m yescrypt secret`), and a scheme we cannot
    // check: a temporary failure, with the reason in the log.
    let step = c
        .begin("PLAIN", Some(&b64(b"\0yves\0secret")), &info("192.0.2.6"))
        .unwrap();
    assert_eq!(step, Step::Ok("yves".into()));
    let step = c
        .begin("PLAIN", Some(&b64(b"\0mia\0secret")), &info("192.0.2.7"))
        .unwrap();
    assert_eq!(step, Step::Fail("Temporary authentication failure".into()));
    assert!(
        ours.wait_log(
            "warning: smtp: PLAIN authentication failed for user=<mia> rip=192.0.2.7: \
             unsupported password scheme $1$ (MD5-CRYPT) for user mia ("
        ),
        "{}",
        ours.log()
    );

    // A failure is answered after auth_failure_delay.
    let t0 = Instant::now();
    let step = c
        .begin(
            "PLAIN",
            Some(&b64(b"\0alice@example.com\0wrong")),
            &info("192.0.2.3"),
        )
        .unwrap();
    assert_eq!(step, Step::Fail("Authentication failed".into()));
    assert!(
        t0.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t0.elapsed()
    );

    // An edit of the passwd-file counts at once.
    ours.write_passwd("alice@example.com:{PLAIN}changed\n");
    let step = c
        .begin(
            "PLAIN",
            Some(&b64(b"\0alice@example.com\0changed")),
            &info("192.0.2.4"),
        )
        .unwrap();
    assert_eq!(step, Step::Ok("alice@example.com".into()));

    // More connections than max_use, all held at once: still served (smtpd
    // processes keep theirs for long), by the same process.
    let mut more: Vec<Client> = (0..3).map(|_| Client::connect(&sock).unwrap()).collect();
    for m in &mut more {
        let step = m
            .begin(
                "PLAIN",
                Some(&b64(b"\0alice@example.com\0changed")),
                &info("192.0.2.5"),
            )
            .unwrap();
        assert_eq!(step, Step::Ok("alice@example.com".into()));
    }
    // auth_client_limit = 5: with c and these three held, one more fits
    // (once the first connection's end has been counted), the next is
    // closed at once.
    let mut fifth = None;
    assert!(common::wait_until(Duration::from_secs(5), || {
        fifth = Client::connect(&sock).ok();
        fifth.is_some()
    }));
    // Closed before or during the handshake: EOF, reset or broken pipe.
    assert!(
        Client::connect(&sock).is_err(),
        "a sixth connection was served"
    );
    assert!(
        ours.wait_log("warning: too many connections (5 already)"),
        "{}",
        ours.log()
    );
    drop((more, fifth));

    assert!(ours.wait_log("smtp: PLAIN authentication succeeded for user=<alice@example.com> rip=192.0.2.1 passdb=passwd-file"), "{}", ours.log());
    assert!(
        ours.wait_log(
            "warning: smtp: PLAIN authentication failed for user=<alice@example.com> rip=192.0.2.3"
        ),
        "{}",
        ours.log()
    );
    let log = ours.log();
    assert!(
        !log.contains("wrong") && !log.contains("secret") && !log.contains("changed"),
        "a password in the log:\n{log}"
    );
    assert!(!log.contains("fatal:"), "{log}");
    println!("{log}");
}

/// A finished login outlives max_use: the login process closes its
/// connection, and the process, at max_use with no client, must stay
/// until the service process's REQUEST for it has come (a new auth
/// process would not know the login, which imapd then refused: one
/// cycle in a thousand in `scripts/bench imap`'s parallel clients).
#[test]
fn a_finished_login_keeps_the_process_until_its_request() {
    common::need_instance();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let mut ours = common::Ours::new(&base, "max_use = 1\nmax_idle = 1s\n");
    ours.write_passwd("alice@example.com:{PLAIN}secret:::::\n");
    ours.start();
    let sock = ours.socket();
    let mut c = Client::connect(&sock).unwrap();
    c.set_login(true);
    let step = c
        .begin(
            "PLAIN",
            Some(&b64(b"\0alice@example.com\0secret")),
            &info("192.0.2.9"),
        )
        .unwrap();
    assert_eq!(step, Step::Ok("alice@example.com".into()));
    let cookie = c.cookie().unwrap().to_string();
    let id = c.last_request_id().unwrap();
    drop(c);
    // No client now, max_use reached and max_idle past: the process
    // would have exited here.
    std::thread::sleep(Duration::from_millis(1500));
    let answer = auth::dovecot::master_request(&sock, std::process::id(), id, &cookie).unwrap();
    assert_eq!(
        answer,
        auth::dovecot::MasterAnswer::User("alice@example.com".into()),
        "{}",
        ours.log()
    );
}
