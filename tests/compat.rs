//! Issue 14, Postfix compatibility: whole-system checks that an existing
//! Postfix site's main.cf and master.cf habits work unchanged.

use crate::util::{Instance, need_instance, wait_until};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// `-o syslog_name=postfix/$service_name` names the service (and
/// `$process_name` the program), and maillog_file lines carry myhostname's
/// first label (not the system host name), as Postfix's postlogd writes.
#[test]
fn issue14_service_name_in_o_and_myhostname_label_in_maillog() {
    need_instance();
    let inst = Instance::new(
        "myhostname = mx1.compat.example\n",
        "compat unix - n n - 1 echo -o syslog_name=postfix/$service_name-$process_name \
         fail-startup\n",
    );
    inst.start();
    let _c = UnixStream::connect(inst.socket(true, "compat"));
    let want = " mx1 postfix/compat-echo/echo[";
    assert!(
        wait_until(Duration::from_secs(10), || inst.log().contains(want)),
        "no line with {want:?}:\n{}",
        inst.log()
    );
    assert!(
        inst.log().contains(" mx1 postfix/master["),
        "{}",
        inst.log()
    );
}

/// Sends one message without Date, Message-Id or From over SMTP to
/// 127.0.0.1:`port`; panics unless every reply is positive.
fn send_bare(port: u16, rcpt: &str) {
    use std::io::{BufRead, BufReader, Write};
    let s = std::net::TcpStream::connect(crate::util::local(port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let mut reply = || {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
        assert!(all.starts_with('2') || all.starts_with('3'), "{all}");
    };
    reply();
    for cmd in [
        "EHLO client.test".to_string(),
        "MAIL FROM:<sender@client.test>".to_string(),
        format!("RCPT TO:<{rcpt}>"),
        "DATA".to_string(),
        "Subject: bare\r\n\r\nno date, id or from\r\n.".to_string(),
        "QUIT".to_string(),
    ] {
        w.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
        reply();
    }
}

/// Which of Date, Message-Id and From the header text has.
fn added(headers: &str) -> [bool; 3] {
    let has = |name: &str| {
        headers
            .lines()
            .any(|l| l.len() > name.len() && l[..name.len()].eq_ignore_ascii_case(name))
    };
    [has("Date:"), has("Message-Id:"), has("From:")]
}

/// A loopback SMTP client gets the local rewrite context (cleanup adds
/// Date, Message-Id and From), a client outside local_header_rewrite_clients
/// the remote one (none added): as Debian's Postfix does for the same
/// message and settings.
#[test]
fn issue14_loopback_client_gets_local_header_rewriting_as_postfix() {
    use crate::util::{DebianPostfix, SmtpSetup, debian_postfix_ready, need_smtp};
    need_smtp();
    let ours = SmtpSetup::new()
        .service(&["local_header_rewrite_clients="])
        .start();
    send_bare(ours.port, "alice@virt.test");
    send_bare(ours.extra_ports[0], "bob@virt.test");
    let local = crate::util::header_block(&ours.wait_mail("alice", 1)[0]);
    let remote = crate::util::header_block(&ours.wait_mail("bob", 1)[0]);
    assert_eq!(added(&local), [true; 3], "{local}");
    assert_eq!(added(&remote), [false; 3], "{remote}");
    assert!(local.contains("From: sender@client.test"), "{local}");

    if !debian_postfix_ready() {
        return;
    }
    let port2 = crate::util::free_port();
    let pf = DebianPostfix::start(
        "local_recipient_maps =\nsmtpd_recipient_restrictions = \
         check_recipient_access inline:{ hold@postfix.test=HOLD }, \
         permit_mynetworks, reject\n",
        &format!("127.0.0.1:{port2} inet n - n - - smtpd -o local_header_rewrite_clients=\n"),
    );
    send_bare(pf.port, "hold@postfix.test");
    send_bare(port2, "hold@postfix.test");
    let hold = pf.config_dir.parent().unwrap().join("queue/hold");
    assert!(
        wait_until(Duration::from_secs(20), || std::fs::read_dir(&hold)
            .map(|d| d.count() == 2)
            .unwrap_or(false)),
        "{}",
        pf.log()
    );
    let mut seen: Vec<[bool; 3]> = std::fs::read_dir(&hold)
        .unwrap()
        .flatten()
        .map(|e| {
            let bytes = std::fs::read(e.path()).unwrap();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            // Header records hold the text after a type and length byte:
            // look for the names anywhere.
            let find = |n: &str| text.contains(n);
            [
                find("Date: "),
                find("Message-Id: "),
                find("From: sender@client.test"),
            ]
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [[false; 3], [true; 3]],
        "Postfix's local/remote contexts"
    );
}

/// Connects three clients to a maxproc-2 smtpd on `port`: returns which
/// got their 220 banner within a second, then (after the first two quit)
/// whether the third got it.
fn three_clients(port: u16) -> (Vec<bool>, bool) {
    use std::io::{BufRead, BufReader, Write};
    let banner = |r: &mut BufReader<std::net::TcpStream>, wait: Duration| {
        r.get_ref().set_read_timeout(Some(wait)).unwrap();
        let mut line = String::new();
        r.read_line(&mut line).is_ok() && line.starts_with("220")
    };
    let mut clients: Vec<BufReader<std::net::TcpStream>> = (0..3)
        .map(|_| {
            let c = BufReader::new(std::net::TcpStream::connect(crate::util::local(port)).unwrap());
            // In order: the third connects after the first two are served.
            std::thread::sleep(Duration::from_millis(300));
            c
        })
        .collect();
    let first: Vec<bool> = clients
        .iter_mut()
        .map(|c| banner(c, Duration::from_millis(1500)))
        .collect();
    for c in clients.iter_mut().take(2) {
        let _ = c.get_mut().write_all(b"QUIT\r\n");
    }
    let third = clients
        .get_mut(2)
        .is_some_and(|c| banner(c, Duration::from_secs(10)));
    (first, third)
}

/// `smtp inet ... 2 smtpd` admits two sessions and holds the third until
/// one ends, as Debian's Postfix does with the same master.cf line.
#[test]
fn issue14_maxproc_caps_concurrent_smtp_sessions_as_postfix() {
    use crate::util::{DebianPostfix, SmtpSetup, debian_postfix_ready, need_smtp};
    need_smtp();
    let port = crate::util::free_port();
    let ours = SmtpSetup::new()
        .master(&format!("127.0.0.1:{port} inet n - n - 2 smtpd\n"))
        .start();
    assert!(
        wait_until(Duration::from_secs(10), || crate::util::answers(
            crate::util::local(port)
        )),
        "{}",
        ours.inst.log()
    );
    // answers() used a session: let it end.
    std::thread::sleep(Duration::from_millis(500));
    let got = three_clients(port);
    assert_eq!(
        got,
        (vec![true, true, false], true),
        "ours\n{}",
        ours.inst.log()
    );

    if !debian_postfix_ready() {
        return;
    }
    let port2 = crate::util::free_port();
    let pf = DebianPostfix::start("", &format!("127.0.0.1:{port2} inet n - n - 2 smtpd\n"));
    assert!(wait_until(
        Duration::from_secs(10),
        || crate::util::answers(crate::util::local(port2))
    ));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(three_clients(port2), got, "Postfix\n{}", pf.log());
}
