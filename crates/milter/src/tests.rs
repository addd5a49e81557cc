//! A scripted milter on a local socket exercising every event and every
//! modification action, a refusing milter and a milter that is down.

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::packet::{self, put_str};
use crate::*;

/// What the scripted milter does at one event: the packets it answers
/// (after which it reads on).
type Script = Arc<ScriptFn>;
type ScriptFn = dyn Fn(u8, &[u8]) -> Vec<(u8, Vec<u8>)> + Send + Sync;
type Log = Arc<Mutex<Vec<(u8, Vec<u8>)>>>;

/// Starts a milter answering by `script`; returns its port and the log
/// of (command, data) it received.
fn milter(script: Script) -> (u16, Log) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let script = script.clone();
            let log = log2.clone();
            std::thread::spawn(move || serve(&mut s, &*script, &log));
        }
    });
    (port, log)
}

fn serve(s: &mut TcpStream, script: &ScriptFn, log: &Mutex<Vec<(u8, Vec<u8>)>>) {
    while let Ok((c, data)) = packet::read(s) {
        log.lock().unwrap().push((c, data.clone()));
        if c == b'Q' {
            return;
        }
        for (rc, rd) in script(c, &data) {
            if packet::write(s, rc, &rd).is_err() {
                return;
            }
        }
    }
}

fn optneg(extra: u32) -> Vec<(u8, Vec<u8>)> {
    let mut d = Vec::new();
    d.extend_from_slice(&6u32.to_be_bytes());
    d.extend_from_slice(&0x1ffu32.to_be_bytes());
    d.extend_from_slice(&extra.to_be_bytes());
    vec![(b'O', d)]
}

fn settings() -> Settings {
    Settings {
        protocol: 6,
        default_action: DefaultAction::Tempfail,
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(5),
        content_timeout: Duration::from_secs(5),
        macros: MacroLists {
            connect: vec!["j".into(), "{daemon_name}".into(), "{client_addr}".into()],
            mail: vec!["i".into(), "{auth_authen}".into(), "{mail_addr}".into()],
            rcpt: vec!["{rcpt_addr}".into()],
            eod: vec!["i".into()],
            ..MacroLists::default()
        },
    }
}

fn facts() -> Facts {
    let mut macros = HashMap::new();
    macros.insert("j".to_string(), "mx.example".to_string());
    macros.insert("{daemon_name}".to_string(), "mx.example".to_string());
    macros.insert("{client_addr}".to_string(), "192.0.2.1".to_string());
    macros.insert("i".to_string(), "QID123".to_string());
    macros.insert("{auth_authen}".to_string(), "alice".to_string());
    Facts {
        client_name: "client.example".into(),
        client_addr: "192.0.2.1".into(),
        client_port: 4242,
        helo: "client.example".into(),
        macros,
        queue_dir: "/".into(),
    }
}

const MSG: &[u8] =
    b"Received: from client.example\n\tby mx.example\nSubject: hello\nX-Old: 1\n\nline 1\nline 2\n";

fn mail() -> Mail {
    Mail::parse(
        "alice@example.org",
        vec!["bob@example.net".into(), "carol@example.net".into()],
        MSG,
        true,
    )
}

fn spec(port: u16) -> Vec<Spec> {
    parse_list(&format!("inet:127.0.0.1:{port}"), &settings()).unwrap()
}

/// The commands received, once the milter has seen QUIT.
fn commands(log: &Mutex<Vec<(u8, Vec<u8>)>>) -> String {
    testkit::wait_until(Duration::from_secs(2), || {
        log.lock().unwrap().last().is_some_and(|(c, _)| *c == b'Q')
    });
    log.lock()
        .unwrap()
        .iter()
        .map(|(c, _)| char::from(*c))
        .collect()
}

fn strs(d: &[u8]) -> Vec<String> {
    d.split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

#[test]
fn every_event_and_every_modification() {
    let (port, log) = milter(Arc::new(|c, _d| match c {
        b'O' => optneg(0),
        b'D' => vec![],
        b'E' => {
            let mut out = Vec::new();
            let mut h = Vec::new();
            put_str(&mut h, "X-Added");
            put_str(&mut h, "added");
            out.push((b'h', h));
            let mut i = 0u32.to_be_bytes().to_vec();
            put_str(&mut i, "X-Top");
            put_str(&mut i, "first");
            out.push((b'i', i));
            let mut m = 1u32.to_be_bytes().to_vec();
            put_str(&mut m, "Subject");
            put_str(&mut m, "changed");
            out.push((b'm', m));
            let mut d = 1u32.to_be_bytes().to_vec();
            put_str(&mut d, "X-Old");
            put_str(&mut d, "");
            out.push((b'm', d));
            out.push((b'b', b"new body\r\n".to_vec()));
            let mut a = Vec::new();
            put_str(&mut a, "<dave@example.net>");
            out.push((b'+', a));
            let mut r = Vec::new();
            put_str(&mut r, "<carol@example.net>");
            out.push((b'-', r));
            let mut f = Vec::new();
            put_str(&mut f, "<bounces@example.org>");
            out.push((b'e', f));
            out.push((b'p', vec![]));
            let mut q = Vec::new();
            put_str(&mut q, "suspicious");
            out.push((b'q', q));
            out.push((b'c', vec![]));
            out
        }
        _ => vec![(b'c', vec![])],
    }));
    let mut m = mail();
    let o = run(&spec(port), &facts(), &mut m);
    assert_eq!(o.verdict, Verdict::Accept);
    assert_eq!(m.sender, "bounces@example.org");
    assert_eq!(m.recipients, ["bob@example.net", "dave@example.net"]);
    assert_eq!(m.quarantine.as_deref(), Some("suspicious"));
    assert_eq!(
        String::from_utf8(m.content()).unwrap(),
        "X-Top: first\nReceived: from client.example\n\tby mx.example\nSubject: changed\nX-Added: added\n\nnew body\n"
    );
    assert_eq!(commands(&log), "ODCHDMDRDRTLLNBDEQ");
    let log = log.lock().unwrap().clone();
    // Connect: name, family, port, address.
    let conn = &log[2].1;
    assert_eq!(&conn[..15], b"client.example\0");
    assert_eq!(conn[15], b'4');
    assert_eq!(&conn[16..18], &4242u16.to_be_bytes());
    // Macros with Postfix's names; the Received header is hidden; one
    // space after the colon eaten; the body in CRLF.
    assert_eq!(
        strs(&log[1].1),
        [
            "Cj",
            "mx.example",
            "{daemon_name}",
            "mx.example",
            "{client_addr}",
            "192.0.2.1",
            ""
        ]
    );
    assert!(strs(&log[4].1).contains(&"{auth_authen}".to_string()));
    assert_eq!(strs(&log[5].1), ["<alice@example.org>", ""]);
    assert_eq!(strs(&log[11].1), ["Subject", "hello", ""]);
    assert_eq!(log[14].1, b"line 1\r\nline 2\r\n");
}

#[test]
fn refusals_and_custom_replies() {
    // Refuses carol at RCPT, then a custom 5xx at end of message.
    let (port, _) = milter(Arc::new(|c, d| match c {
        b'O' => optneg(0),
        b'D' => vec![],
        b'R' if strs(d)[0] == "<carol@example.net>" => vec![(b'r', vec![])],
        b'E' => {
            let mut y = Vec::new();
            put_str(&mut y, "554 5.7.1 Gtube pattern");
            vec![(b'y', y)]
        }
        _ => vec![(b'c', vec![])],
    }));
    let mut m = mail();
    let o = run(&spec(port), &facts(), &mut m);
    assert_eq!(o.rejected.len(), 1);
    assert_eq!(o.rejected[0].0, "carol@example.net");
    assert_eq!(o.verdict, Verdict::Reject("554 5.7.1 Gtube pattern".into()));
    // Tempfail at MAIL; discard at end of data.
    let (port, _) = milter(Arc::new(|c, _| match c {
        b'O' => optneg(0),
        b'D' => vec![],
        b'M' => vec![(b't', vec![])],
        _ => vec![(b'c', vec![])],
    }));
    let o = run(&spec(port), &facts(), &mut mail());
    assert!(matches!(o.verdict, Verdict::Tempfail(ref t) if t.starts_with("451 4.7.1")));
    let (port, _) = milter(Arc::new(|c, _| match c {
        b'O' => optneg(0),
        b'D' => vec![],
        b'E' => vec![(b'd', vec![])],
        _ => vec![(b'c', vec![])],
    }));
    let o = run(&spec(port), &facts(), &mut mail());
    assert!(matches!(o.verdict, Verdict::Discard(_)));
}

#[test]
fn milter_that_turns_events_off_gets_none() {
    // No connect, no helo, no body; no replies for headers.
    let flags = 1 | 2 | (1 << 4) | (1 << 7);
    let (port, log) = milter(Arc::new(move |c, _| match c {
        b'O' => optneg(flags),
        b'D' | b'L' => vec![],
        _ => vec![(b'c', vec![])],
    }));
    let o = run(&spec(port), &facts(), &mut mail());
    assert_eq!(o.verdict, Verdict::Accept);
    assert_eq!(commands(&log), "ODMDRDRTLLNDEQ");
}

#[test]
fn milter_down_uses_the_default_action() {
    let port = testkit::free_port();
    let mut s = settings();
    for (action, want) in [
        ("tempfail", "tempfail"),
        ("reject", "reject"),
        ("accept", "accept"),
        ("quarantine", "quarantine"),
    ] {
        s.default_action = DefaultAction::parse(action).unwrap();
        let l = parse_list(&format!("inet:127.0.0.1:{port}"), &s).unwrap();
        let mut m = mail();
        let o = run(&l, &facts(), &mut m);
        let got = match (&o.verdict, &m.quarantine) {
            (Verdict::Tempfail(t), _) if t.starts_with("451 4.7.1") => "tempfail",
            (Verdict::Reject(t), _) if t.starts_with("550 5.7.1") => "reject",
            (Verdict::Accept, Some(_)) => "quarantine",
            (Verdict::Accept, None) => "accept",
            _ => "other",
        };
        assert_eq!(got, want);
    }
    // A milter that accepts and never answers: the command timeout.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut s = settings();
    s.command_timeout = Duration::from_millis(300);
    let spec = parse_list(
        &format!("inet:127.0.0.1:{}", l.local_addr().unwrap().port()),
        &s,
    )
    .unwrap();
    let t = std::time::Instant::now();
    let o = run(&spec, &facts(), &mut mail());
    assert!(matches!(o.verdict, Verdict::Tempfail(_)));
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[test]
fn smtp_time_recipient_check() {
    let (port, log) = milter(Arc::new(|c, d| match c {
        b'O' => optneg(0),
        b'D' => vec![],
        b'R' if strs(d)[0] == "<carol@example.net>" => {
            let mut y = Vec::new();
            put_str(&mut y, "550 5.1.1 no such user here");
            vec![(b'y', y)]
        }
        _ => vec![(b'c', vec![])],
    }));
    let l = spec(port);
    assert_eq!(
        check_recipient(&l, &facts(), "alice@example.org", "carol@example.net").as_deref(),
        Some("550 5.1.1 no such user here")
    );
    assert_eq!(commands(&log), "ODCHDMDRQ");
    assert_eq!(
        check_recipient(&l, &facts(), "alice@example.org", "bob@example.net"),
        None
    );
    let down = parse_list(
        &format!("inet:127.0.0.1:{}", testkit::free_port()),
        &settings(),
    )
    .unwrap();
    assert!(
        check_recipient(&down, &facts(), "a@b", "c@d").is_some_and(|r| r.starts_with("451 4.7.1"))
    );
}
