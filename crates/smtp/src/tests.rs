//! The client against scripted in-test SMTP servers (and the in-test DNS
//! server of the dns crate): a request is handled as qmgr would send it,
//! through delivery::agent::handle_all, against a temporary queue.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use proto::deliver::{Action, Recipient, Reply, Request, Status};
use queue::Queue;

use crate::settings::{PreJail, Settings};

/// What a scripted server saw.
#[derive(Default, Debug)]
struct Seen {
    commands: Vec<String>,
    data: Vec<u8>,
    connections: usize,
}

/// A server at `addr` that greets with `greeting` and answers each
/// command with `answer(command)` (`None` hangs up); the DATA content
/// is collected up to the dot, then `answer(".")` is sent.
fn server(
    listener: TcpListener,
    greeting: &'static str,
    answer: impl Fn(&str) -> Option<String> + Send + 'static,
) -> Arc<Mutex<Seen>> {
    serve_each(
        move || {
            let (c, _) = listener.accept().ok()?;
            Some((Box::new(c.try_clone().ok()?), Box::new(c)))
        },
        greeting,
        answer,
    )
}

/// The same on a Unix-domain socket.
fn server_unix(
    listener: std::os::unix::net::UnixListener,
    greeting: &'static str,
    answer: impl Fn(&str) -> Option<String> + Send + 'static,
) -> Arc<Mutex<Seen>> {
    serve_each(
        move || {
            let (c, _) = listener.accept().ok()?;
            Some((Box::new(c.try_clone().ok()?), Box::new(c)))
        },
        greeting,
        answer,
    )
}

/// A reading and a writing half of one accepted connection.
type Halves = (Box<dyn std::io::Read>, Box<dyn Write>);

/// Runs [`talk`] on each connection `accept` gives, in a thread, until
/// it gives none.
fn serve_each(
    mut accept: impl FnMut() -> Option<Halves> + Send + 'static,
    greeting: &'static str,
    answer: impl Fn(&str) -> Option<String> + Send + 'static,
) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        while let Some((rd, wr)) = accept() {
            talk(rd, wr, greeting, &answer, &s2);
        }
    });
    seen
}

/// One scripted session.
fn talk<R: std::io::Read, W: Write>(
    rd: R,
    mut conn: W,
    greeting: &str,
    answer: &dyn Fn(&str) -> Option<String>,
    seen: &Mutex<Seen>,
) {
    seen.lock().unwrap().connections += 1;
    let mut rd = BufReader::new(rd);
    if !greeting.is_empty() {
        conn.write_all(greeting.as_bytes()).unwrap();
    }
    let mut in_data = false;
    loop {
        let mut line = Vec::new();
        if rd.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
            break;
        }
        if in_data {
            if line == b".\r\n" {
                in_data = false;
                match answer(".") {
                    Some(a) => conn.write_all(a.as_bytes()).unwrap(),
                    None => break,
                }
            } else {
                seen.lock().unwrap().data.extend_from_slice(&line);
            }
            continue;
        }
        let cmd = String::from_utf8_lossy(&line).trim_end().to_string();
        seen.lock().unwrap().commands.push(cmd.clone());
        if cmd == "QUIT" {
            let _ = conn.write_all(b"221 bye\r\n");
            break;
        }
        match answer(&cmd) {
            Some(a) => {
                if a.starts_with("354") {
                    in_data = true;
                }
                conn.write_all(a.as_bytes()).unwrap();
            }
            None => break,
        }
    }
}

/// Answers as a plain ESMTP server with `extensions`; RCPT TO for an
/// address containing "bad" gets 550, "later" 450.
fn standard(extensions: &'static str) -> impl Fn(&str) -> Option<String> + Send + 'static {
    move |cmd: &str| {
        let upper = cmd.to_ascii_uppercase();
        Some(if upper.starts_with("EHLO") {
            format!("250-sink.test\r\n{extensions}250 ENHANCEDSTATUSCODES\r\n")
        } else if upper.starts_with("MAIL") {
            "250 2.1.0 Ok\r\n".into()
        } else if upper.starts_with("RCPT") && cmd.contains("bad") {
            format!(
                "550 5.1.1 {}: Recipient address rejected: User unknown\r\n",
                &cmd[8..]
            )
        } else if upper.starts_with("RCPT") && cmd.contains("later") {
            "450 4.2.0 try later\r\n".into()
        } else if upper.starts_with("RCPT") {
            "250 2.1.5 Ok\r\n".into()
        } else if upper == "DATA" {
            "354 End data with <CR><LF>.<CR><LF>\r\n".into()
        } else if upper == "RSET" {
            "250 2.0.0 Ok\r\n".into()
        } else if cmd == "." {
            "250 2.0.0 Ok: queued as ABC123\r\n".into()
        } else {
            "502 5.5.2 Error: command not recognized\r\n".into()
        })
    }
}

pub(crate) fn settings(extra: &str) -> Settings {
    settings_for(extra, false)
}

fn settings_for(extra: &str, lmtp: bool) -> Settings {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "myhostname = client.test\nsmtp_connect_timeout = 2s\nsmtp_helo_timeout = 2s\n\
         inet_interfaces = 192.0.2.200\n{extra}"
    );
    let config = config::Config::from_text(dir.path(), &text).unwrap();
    let pre = PreJail::load(&config);
    Settings::load(&config, pre, lmtp).0
}

/// Delivers through LMTP (as the lmtp program, default settings).
pub(crate) fn deliver_lmtp(nexthop: &str, content: &str, rcpts: &[&str]) -> Vec<Status> {
    deliver(&settings_for("", true), nexthop, content, rcpts)
}

fn enqueue(dir: &Path, content: &str, rcpts: &[&str]) -> String {
    queue::layout::create_or_repair(dir, None, None).unwrap();
    let mut w = queue::enter(dir).unwrap();
    w.write_all(content.as_bytes()).unwrap();
    let mut env = queue::Envelope::new("alice@example.org", SystemTime::now());
    for r in rcpts {
        env.add_recipient(r);
    }
    let id = *w.finish(&env).unwrap().id();
    queue::rename(dir, &id, Queue::Incoming, Queue::Active).unwrap();
    id.to_string()
}

/// Delivers a message to `rcpts` via `nexthop`; the statuses in
/// recipient order.
pub(crate) fn deliver(s: &Settings, nexthop: &str, content: &str, rcpts: &[&str]) -> Vec<Status> {
    deliver_with(s, nexthop, content, rcpts, vec![])
}

fn deliver_with(
    s: &Settings,
    nexthop: &str,
    content: &str,
    rcpts: &[&str],
    attributes: Vec<(String, String)>,
) -> Vec<Status> {
    let dir = tempfile::tempdir().unwrap();
    let id = enqueue(dir.path(), content, rcpts);
    let req = Request {
        queue_name: "active".into(),
        queue_id: id,
        sender: "alice@example.org".into(),
        nexthop: nexthop.into(),
        arrival_secs: 0,
        arrival_micros: 0,
        recipients: rcpts
            .iter()
            .enumerate()
            .map(|(i, a)| Recipient {
                index: i as u32,
                address: a.to_string(),
                original: a.to_string(),
                dsn_orcpt: None,
                dsn_notify: 0,
            })
            .collect(),
        attributes,
        batched: 0,
    };
    let Reply { mut statuses, .. } =
        delivery::agent::handle_all(dir.path(), &req, "smtp", &mut |msg, rcpts, report| {
            crate::deliver::deliver(s, msg, rcpts, report)
        });
    statuses.sort_by_key(|s| s.index);
    statuses
}

fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

const GREETING: &str = "220 sink.test ESMTP\r\n";

#[test]
fn pipelined_delivery_with_one_recipient_refused() {
    let (l, addr) = listener();
    let seen = server(
        l,
        GREETING,
        standard("250-PIPELINING\r\n250-SIZE 1000000\r\n"),
    );
    let s = settings("");
    let st = deliver(
        &s,
        &format!("[127.0.0.1]:{}", addr.port()),
        "Subject: hi\n\n.leading dot\nbody\n",
        &["good@remote.test", "bad@remote.test"],
    );
    assert_eq!(st[0].action, Action::Delivered, "{st:?}");
    assert_eq!(st[0].dsn, "2.0.0");
    assert_eq!(st[0].text, "250 2.0.0 Ok: queued as ABC123");
    assert_eq!(st[1].action, Action::Bounced);
    assert_eq!(st[1].dsn, "5.1.1");
    assert_eq!(st[1].relay, format!("127.0.0.1[127.0.0.1]:{}", addr.port()));
    assert_eq!(
        st[1].text,
        "host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <bad@remote.test>: Recipient address \
         rejected: User unknown (in reply to RCPT TO command)"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.commands[0], "EHLO client.test");
    assert!(
        seen.commands[1].starts_with("MAIL FROM:<alice@example.org> SIZE="),
        "{:?}",
        seen.commands
    );
    assert_eq!(seen.data, b"Subject: hi\r\n\r\n..leading dot\r\nbody\r\n");
}

#[test]
fn helo_when_ehlo_is_refused_and_no_pipelining() {
    let (l, addr) = listener();
    let seen = server(l, GREETING, |cmd: &str| {
        if cmd.starts_with("EHLO") {
            Some("502 5.5.2 what\r\n".into())
        } else if cmd.starts_with("HELO") {
            Some("250 sink.test\r\n".into())
        } else {
            standard("")(cmd)
        }
    });
    let s = settings("smtp_connection_cache_on_demand = no\n");
    let st = deliver(
        &s,
        &format!("[127.0.0.1]:{}", addr.port()),
        "x\n",
        &["a@r.test", "b@r.test"],
    );
    assert!(st.iter().all(|s| s.action == Action::Delivered), "{st:?}");
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.commands,
        vec![
            "EHLO client.test",
            "HELO client.test",
            "MAIL FROM:<alice@example.org>",
            "RCPT TO:<a@r.test>",
            "RCPT TO:<b@r.test>",
            "DATA",
            "QUIT"
        ]
    );
}

#[test]
fn eight_bit_mime_only_when_offered_and_received_so() {
    let (l, addr) = listener();
    let seen = server(l, GREETING, standard("250-8BITMIME\r\n"));
    let s = settings("");
    let hop = format!("[127.0.0.1]:{}", addr.port());
    let body = vec![("body".to_string(), "8BITMIME".to_string())];
    deliver_with(&s, &hop, "x\n", &["a@r.test"], body);
    deliver(&s, &hop, "x\n", &["a@r.test"]);
    let seen = seen.lock().unwrap();
    let mails: Vec<&String> = seen
        .commands
        .iter()
        .filter(|c| c.starts_with("MAIL"))
        .collect();
    assert_eq!(
        mails,
        [
            "MAIL FROM:<alice@example.org> BODY=8BITMIME",
            "MAIL FROM:<alice@example.org>"
        ]
    );
}

#[test]
fn eight_bit_content_is_downgraded_for_a_server_without_8bitmime() {
    let (l, addr) = listener();
    let seen = server(l, GREETING, standard("250-PIPELINING\r\n"));
    let hop = format!("[127.0.0.1]:{}", addr.port());
    let text = "gr\u{fc}\u{df}e aus K\u{f6}ln = sch\u{f6}n \n.dot line\n";
    let msg = format!(
        "Subject: t\nContent-Type: multipart/mixed; boundary=zz\n\n--zz\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n{text}--zz\nContent-Type: text/plain\n\nplain\n--zz--\n"
    );
    let body = vec![("body".to_string(), "8BITMIME".to_string())];
    let st = deliver_with(&settings(""), &hop, &msg, &["a@r.test"], body);
    assert_eq!(st[0].action, Action::Delivered, "{st:?}");
    // Without BODY=8BITMIME: the 8-bit bytes are found by reading.
    deliver(
        &settings(""),
        &hop,
        "Subject: u\n\n\u{e9}t\u{e9}\n",
        &["a@r.test"],
    );
    // disable_mime_output_conversion = yes: sent as it is.
    deliver(
        &settings("disable_mime_output_conversion = yes\n"),
        &hop,
        "Subject: v\n\n\u{e9}\n",
        &["a@r.test"],
    );
    let seen = seen.lock().unwrap();
    assert!(seen.commands.iter().all(|c| !c.contains("BODY=")));
    let data = String::from_utf8_lossy(&seen.data).replace("\r\n", "\n");
    let mut messages = data.split("Subject: ").skip(1);
    let first = messages.next().unwrap();
    assert!(first.is_ascii(), "{first}");
    assert!(first.contains("MIME-Version: 1.0\n"), "{first}");
    let part = first
        .split_once("Content-Transfer-Encoding: quoted-printable\n\n")
        .unwrap()
        .1;
    let encoded = part.split_once("--zz\n").unwrap().0;
    // Dot-stuffed on the wire; undo that, then decode.
    let unstuffed = encoded.replace("\n..", "\n.");
    assert_eq!(crate::mime::tests::qp_decode(&unstuffed), text.as_bytes());
    assert!(first.contains("--zz\nContent-Type: text/plain\n\nplain\n--zz--\n"));
    let second = messages.next().unwrap();
    assert_eq!(
        second,
        "u\nMIME-Version: 1.0\nContent-Transfer-Encoding: quoted-printable\n\n=C3=A9t=C3=A9\n"
    );
    let third = messages.next().unwrap();
    assert_eq!(third, "v\n\n\u{e9}\n");
}

#[test]
fn connection_cache_reuses_one_session_for_many_messages() {
    let (l, addr) = listener();
    let seen = server(l, GREETING, standard("250-PIPELINING\r\n"));
    let hop = format!("[127.0.0.1]:{}", addr.port());
    let s = settings("smtp_connection_reuse_count_limit = 8\n");
    for n in 0..20 {
        let st = deliver(&s, &hop, &format!("Subject: {n}\n\nx\n"), &["a@r.test"]);
        assert_eq!(st[0].action, Action::Delivered, "{st:?}");
    }
    {
        let seen = seen.lock().unwrap();
        let accepted = seen.data.windows(9).filter(|w| w == b"Subject: ").count();
        assert_eq!(accepted, 20);
        // 8 uses per connection: 3 connections; RSET between messages.
        assert_eq!(seen.connections, 3, "{:?}", seen.commands);
        let rsets = seen.commands.iter().filter(|c| *c == "RSET").count();
        assert_eq!(rsets, 17);
        assert_eq!(
            seen.commands
                .iter()
                .filter(|c| c.starts_with("EHLO"))
                .count(),
            3
        );
    }
    // Idle longer than smtp_connection_cache_time_limit: closed with QUIT.
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(seen.lock().unwrap().commands.last().unwrap(), "QUIT");
    deliver(&s, &hop, "Subject: late\n\nx\n", &["a@r.test"]);
    assert_eq!(seen.lock().unwrap().connections, 4);
    // No caching: one connection per message.
    let (l, addr) = listener();
    let seen = server(l, GREETING, standard(""));
    let hop = format!("[127.0.0.1]:{}", addr.port());
    let s = settings("smtp_connection_cache_on_demand = no\n");
    for _ in 0..3 {
        deliver(&s, &hop, "x\n", &["a@r.test"]);
    }
    assert_eq!(seen.lock().unwrap().connections, 3);
    // smtp_connection_cache_destinations names the nexthop.
    let (l, addr) = listener();
    let seen = server(l, GREETING, standard(""));
    let hop = format!("[127.0.0.1]:{}", addr.port());
    let s = settings(&format!(
        "smtp_connection_cache_on_demand = no\nsmtp_connection_cache_destinations = other.test, {hop}\n"
    ));
    for _ in 0..3 {
        deliver(&s, &hop, "x\n", &["a@r.test"]);
    }
    assert_eq!(seen.lock().unwrap().connections, 1);
}

#[test]
fn too_large_for_the_server_bounces_without_sending() {
    let (l, addr) = listener();
    let seen = server(l, GREETING, standard("250-SIZE 10\r\n"));
    let s = settings("");
    let st = deliver(
        &s,
        &format!("[127.0.0.1]:{}", addr.port()),
        "Subject: big\n\nxxxxxxxx\n",
        &["a@r.test"],
    );
    assert_eq!(st[0].action, Action::Bounced);
    assert_eq!(st[0].dsn, "5.3.4");
    assert!(st[0].text.starts_with("message size "), "{}", st[0].text);
    assert!(
        st[0]
            .text
            .ends_with(" exceeds size limit 10 of server 127.0.0.1[127.0.0.1]"),
        "{}",
        st[0].text
    );
    assert!(
        !seen
            .lock()
            .unwrap()
            .commands
            .iter()
            .any(|c| c.starts_with("MAIL"))
    );
}

#[test]
fn refused_connection_and_silent_server_defer() {
    let (l, addr) = listener();
    drop(l);
    let s = settings("");
    let st = deliver(
        &s,
        &format!("[127.0.0.1]:{}", addr.port()),
        "x\n",
        &["a@r.test"],
    );
    assert_eq!(st[0].action, Action::Deferred);
    assert_eq!(st[0].dsn, "4.4.1");
    assert_eq!(
        st[0].text,
        format!(
            "connect to 127.0.0.1[127.0.0.1]:{}: Connection refused",
            addr.port()
        )
    );
    let (l, addr) = listener();
    let _seen = server(l, "", standard(""));
    let s = settings("smtp_helo_timeout = 1s\n");
    let st = deliver(
        &s,
        &format!("[127.0.0.1]:{}", addr.port()),
        "x\n",
        &["a@r.test"],
    );
    assert_eq!(st[0].action, Action::Deferred);
    assert_eq!(
        st[0].text,
        "conversation with 127.0.0.1[127.0.0.1] timed out while receiving the initial server greeting"
    );
}

#[test]
fn lost_connection_during_data_defers() {
    let (l, addr) = listener();
    let _seen = server(l, GREETING, |cmd: &str| {
        if cmd == "." { None } else { standard("")(cmd) }
    });
    let s = settings("");
    let st = deliver(
        &s,
        &format!("[127.0.0.1]:{}", addr.port()),
        "x\n",
        &["a@r.test"],
    );
    assert_eq!(st[0].action, Action::Deferred);
    assert_eq!(st[0].dsn, "4.4.2");
    assert_eq!(
        st[0].text,
        "lost connection with 127.0.0.1[127.0.0.1] while sending end of data -- message may be sent more than once"
    );
}

#[test]
fn our_own_hostname_in_the_ehlo_reply_is_a_loop() {
    let (l, addr) = listener();
    let _seen = server(l, GREETING, |cmd: &str| {
        if cmd.starts_with("EHLO") {
            Some("250-CLIENT.test\r\n250 PIPELINING\r\n".into())
        } else {
            standard("")(cmd)
        }
    });
    let mut s = settings("");
    s.loop_port = addr.port();
    let st = deliver(
        &s,
        &format!("[127.0.0.1]:{}", addr.port()),
        "x\n",
        &["a@r.test"],
    );
    assert_eq!(st[0].action, Action::Bounced);
    assert_eq!(st[0].dsn, "5.4.6");
    assert_eq!(
        st[0].text,
        format!("mail for [127.0.0.1]:{} loops back to myself", addr.port())
    );
}

/// A DNS server with `domain` MX 10 a.domain (127.0.0.1), MX 20
/// b.domain (127.0.0.2), and a resolv.conf file naming it.
fn two_mx() -> (dns::testserver::Server, tempfile::TempDir, String) {
    use dns::testserver::Rec;
    let r = |n: &str, rec: Rec| (n.to_string(), rec);
    let d = dns::testserver::start(vec![
        r("two.test", Rec::Mx(10, "a.two.test.".into())),
        r("two.test", Rec::Mx(20, "b.two.test.".into())),
        r("a.two.test", Rec::A("127.0.0.1".into())),
        r("b.two.test", Rec::A("127.0.0.2".into())),
        r("null.test", Rec::Mx(0, ".".into())),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resolv.conf");
    std::fs::write(&path, d.resolv_conf()).unwrap();
    let param = format!("smtp_dns_resolv_conf = {}\n", path.display());
    (d, dir, param)
}

/// Listeners on 127.0.0.1 and 127.0.0.2 with the same port.
fn pair() -> (TcpListener, TcpListener, u16) {
    loop {
        let (a, addr) = listener();
        if let Ok(b) = TcpListener::bind(("127.0.0.2", addr.port())) {
            return (a, b, addr.port());
        }
    }
}

#[test]
fn next_mx_after_a_4xx_but_not_after_a_5xx() {
    let (_d, _dir, param) = two_mx();
    let s = settings(&param);
    // First MX: 450 for RCPT; second MX takes it.
    let (a, b, port) = pair();
    let seen_a = server(a, GREETING, |cmd: &str| {
        if cmd.starts_with("RCPT") {
            Some("451 4.3.0 busy\r\n".into())
        } else {
            standard("")(cmd)
        }
    });
    let seen_b = server(b, GREETING, standard("250-PIPELINING\r\n"));
    let st = deliver(&s, &format!("two.test:{port}"), "x\n", &["a@two.test"]);
    assert_eq!(st[0].action, Action::Delivered, "{st:?}");
    assert_eq!(seen_a.lock().unwrap().connections, 1);
    assert_eq!(seen_b.lock().unwrap().connections, 1);
    // First MX: 550 for MAIL; the second is not asked.
    let (a, b, port) = pair();
    let _ = server(a, GREETING, |cmd: &str| {
        if cmd.starts_with("MAIL") {
            Some("550 5.7.1 go away\r\n".into())
        } else {
            standard("")(cmd)
        }
    });
    let seen_b = server(b, GREETING, standard(""));
    let st = deliver(&s, &format!("two.test:{port}"), "x\n", &["a@two.test"]);
    assert_eq!(st[0].action, Action::Bounced, "{st:?}");
    assert_eq!(
        st[0].text,
        "host a.two.test[127.0.0.1] said: 550 5.7.1 go away (in reply to MAIL FROM command)"
    );
    assert_eq!(seen_b.lock().unwrap().connections, 0);
}

#[test]
fn first_mx_down_second_delivers_and_all_down_defers() {
    let (_d, _dir, param) = two_mx();
    let s = settings(&param);
    let (a, b, port) = pair();
    drop(a);
    let _seen = server(b, GREETING, standard(""));
    let st = deliver(&s, &format!("two.test:{port}"), "x\n", &["a@two.test"]);
    assert_eq!(st[0].action, Action::Delivered, "{st:?}");
    let (a, b, port) = pair();
    drop((a, b));
    let st = deliver(&s, &format!("two.test:{port}"), "x\n", &["a@two.test"]);
    assert_eq!(st[0].action, Action::Deferred);
    assert_eq!(
        st[0].text,
        format!("connect to b.two.test[127.0.0.2]:{port}: Connection refused")
    );
    let st = deliver(&s, "null.test", "x\n", &["a@null.test"]);
    assert_eq!(st[0].action, Action::Bounced);
    assert_eq!(st[0].text, "Domain null.test does not accept mail (nullMX)");
    let st = deliver(&s, "nowhere.test", "x\n", &["a@nowhere.test"]);
    assert_eq!(st[0].action, Action::Bounced);
    assert_eq!(st[0].dsn, "5.4.4");
}

#[test]
fn tls_required_but_not_offered_defers() {
    let (l, addr) = listener();
    let _seen = server(l, GREETING, standard(""));
    let s = settings("smtp_tls_security_level = encrypt\n");
    let st = deliver(
        &s,
        &format!("[127.0.0.1]:{}", addr.port()),
        "x\n",
        &["a@r.test"],
    );
    assert_eq!(st[0].action, Action::Deferred);
    assert_eq!(
        st[0].text,
        "TLS is required, but was not offered by host 127.0.0.1[127.0.0.1]"
    );
}

#[test]
fn a_stream_that_is_not_smtp_defers() {
    let (l, addr) = listener();
    std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        c.write_all(b"SSH-2.0-OpenSSH\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(500));
    });
    let s = settings("");
    let st = deliver(
        &s,
        &format!("[127.0.0.1]:{}", addr.port()),
        "x\n",
        &["a@r.test"],
    );
    assert_eq!(st[0].action, Action::Deferred);
    assert!(st[0].text.contains("malformed reply"), "{}", st[0].text);
    let _ = TcpStream::connect(addr);
}

#[test]
fn lmtp_over_a_unix_socket_one_reply_per_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lmtp");
    let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let seen = server_unix(l, "220 store.test LMTP\r\n", |cmd: &str| {
        Some(if cmd.starts_with("LHLO") {
            "250-store.test\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n".into()
        } else if cmd == "." {
            "250 2.0.0 <a@r.test> Saved\r\n452 4.2.2 <c@r.test> Quota exceeded\r\n".into()
        } else {
            return standard("")(cmd);
        })
    });
    let s = settings_for("", true);
    let st = deliver(
        &s,
        &format!("unix:{}", path.display()),
        "x\n",
        &["a@r.test", "bad@r.test", "c@r.test"],
    );
    assert_eq!(st[0].action, Action::Delivered, "{st:?}");
    assert_eq!(st[0].text, "250 2.0.0 <a@r.test> Saved");
    assert_eq!(st[1].action, Action::Bounced);
    assert_eq!(st[2].action, Action::Deferred);
    assert_eq!(
        st[2].text,
        format!(
            "host client.test[{}] said: 452 4.2.2 <c@r.test> Quota exceeded (in reply to end of DATA command)",
            path.display()
        )
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.commands[0], "LHLO client.test");
    assert!(
        !seen
            .commands
            .iter()
            .any(|c| c.starts_with("HELO") || c.starts_with("EHLO"))
    );
}

#[test]
fn fallback_relay_after_the_nexthop_fails() {
    let (down, down_addr) = listener();
    drop(down);
    let (l, addr) = listener();
    let seen = server(l, GREETING, standard(""));
    let s = settings(&format!(
        "smtp_fallback_relay = [127.0.0.1]:{}\n",
        addr.port()
    ));
    let st = deliver(
        &s,
        &format!("[127.0.0.1]:{}", down_addr.port()),
        "x\n",
        &["a@r.test"],
    );
    assert_eq!(st[0].action, Action::Delivered, "{st:?}");
    assert_eq!(seen.lock().unwrap().connections, 1);
}

#[test]
fn dsn_parameters_only_when_offered() {
    let (l, addr) = listener();
    let seen = server(l, GREETING, standard("250-DSN\r\n"));
    let s = settings("");
    let attrs = vec![
        ("dsn_ret".to_string(), "HDRS".to_string()),
        ("dsn_envid".to_string(), "id 1".to_string()),
    ];
    deliver_with(
        &s,
        &format!("[127.0.0.1]:{}", addr.port()),
        "x\n",
        &["a@r.test"],
        attrs,
    );
    let seen = seen.lock().unwrap();
    assert!(
        seen.commands
            .iter()
            .any(|c| c == "MAIL FROM:<alice@example.org> RET=HDRS ENVID=id+201"),
        "{:?}",
        seen.commands
    );
}

#[test]
fn sasl_login_without_tls_only_when_plaintext_is_allowed() {
    let auth_server = || {
        let (l, addr) = listener();
        let seen = server(l, GREETING, |cmd: &str| {
            Some(match cmd {
                "AUTH LOGIN" => "334 VXNlcm5hbWU6\r\n".into(),
                "dQ==" => "334 UGFzc3dvcmQ6\r\n".into(),
                "cCB3" => "235 2.7.0 Authentication successful\r\n".into(),
                c if c.starts_with("EHLO") => "250-sink.test\r\n250 AUTH LOGIN CRAM-MD5\r\n".into(),
                c => return standard("")(c),
            })
        });
        (seen, addr)
    };
    let table = |addr: SocketAddr| {
        format!(
            "smtp_sasl_auth_enable = yes\n\
             smtp_sasl_password_maps = inline:{{ {{ [127.0.0.1]:{} = u:p w }} }}\n",
            addr.port()
        )
    };
    let (seen, addr) = auth_server();
    let s = settings(&format!(
        "{}smtp_sasl_security_options = noanonymous\n",
        table(addr)
    ));
    let st = deliver(
        &s,
        &format!("[127.0.0.1]:{}", addr.port()),
        "x\n",
        &["a@r.test"],
    );
    assert_eq!(st[0].action, Action::Delivered, "{st:?}");
    assert_eq!(
        seen.lock().unwrap().commands[1..4],
        ["AUTH LOGIN", "dQ==", "cCB3"]
    );
    // The default (noplaintext) keeps the password off a clear channel.
    let (seen, addr) = auth_server();
    let s = settings(&table(addr));
    let st = deliver(
        &s,
        &format!("[127.0.0.1]:{}", addr.port()),
        "x\n",
        &["a@r.test"],
    );
    assert_eq!(st[0].action, Action::Deferred);
    assert_eq!(
        st[0].text,
        "SASL authentication failed; cannot authenticate to server 127.0.0.1[127.0.0.1]: no mechanism available"
    );
    assert!(
        !seen
            .lock()
            .unwrap()
            .commands
            .iter()
            .any(|c| c.starts_with("AUTH"))
    );
}

#[test]
fn tls_policy_maps_by_nexthop_and_parent_domain() {
    let s = settings(
        "smtp_tls_security_level = may\n\
         smtp_tls_policy_maps = inline:{ [relay.test]:587=encrypt, .corp.test=verify, plain.test=none, odd.test=bogus }\n",
    );
    use crate::tls::Level;
    assert_eq!(s.tls_level_for("[relay.test]:587"), Level::Encrypt);
    assert_eq!(s.tls_level_for("mx.corp.test"), Level::Verify);
    assert_eq!(s.tls_level_for("a.b.corp.test:25"), Level::Verify);
    assert_eq!(s.tls_level_for("plain.test"), Level::None);
    assert_eq!(s.tls_level_for("odd.test"), Level::Encrypt);
    assert_eq!(s.tls_level_for("other.test"), Level::May);
    // The level is applied: encrypt for this nexthop defers a server
    // without STARTTLS though the default is may.
    let (l, addr) = listener();
    let _seen = server(l, GREETING, standard(""));
    let hop = format!("[127.0.0.1]:{}", addr.port());
    let s = settings(&format!(
        "smtp_tls_security_level = may\nsmtp_tls_policy_maps = inline:{{ {hop}=encrypt }}\n"
    ));
    let st = deliver(&s, &hop, "x\n", &["a@r.test"]);
    assert_eq!(st[0].action, Action::Deferred, "{st:?}");
    assert_eq!(st[0].dsn, "4.7.4");
}

#[test]
fn long_lines_are_broken_at_smtp_line_length_limit() {
    let (l, addr) = listener();
    let seen = server(l, GREETING, standard(""));
    let s = settings("");
    let body = format!("Subject: long\n\n{}\nend\n", "y".repeat(2100));
    let st = deliver(
        &s,
        &format!("[127.0.0.1]:{}", addr.port()),
        &body,
        &["a@r.test"],
    );
    assert_eq!(st[0].action, Action::Delivered);
    let seen = seen.lock().unwrap();
    let lines: Vec<&[u8]> = seen.data.split(|b| *b == b'\n').collect();
    assert!(
        lines.iter().all(|l| l.len() <= 999),
        "a line over 998 octets + CR"
    );
    assert_eq!(seen.data.iter().filter(|b| **b == b'y').count(), 2100);
    assert!(seen.data.ends_with(b"\r\nend\r\n"));
}

#[test]
fn smtp_bind_address_is_the_source_address() {
    let (l, addr) = listener();
    let peer = std::thread::spawn(move || {
        let (c, peer) = l.accept().unwrap();
        drop(c);
        peer.ip()
    });
    let s = settings("smtp_bind_address = 127.0.0.2\n");
    let st = deliver(
        &s,
        &format!("[127.0.0.1]:{}", addr.port()),
        "x\n",
        &["a@r.test"],
    );
    assert_eq!(st[0].action, Action::Deferred);
    assert_eq!(
        peer.join().unwrap(),
        "127.0.0.2".parse::<std::net::IpAddr>().unwrap()
    );
    // A refused connection from a bound address is reported as such.
    let (l, addr) = listener();
    drop(l);
    let st = deliver(
        &s,
        &format!("[127.0.0.1]:{}", addr.port()),
        "x\n",
        &["a@r.test"],
    );
    assert_eq!(
        st[0].text,
        format!(
            "connect to 127.0.0.1[127.0.0.1]:{}: Connection refused",
            addr.port()
        )
    );
}

#[test]
fn an_endless_reply_ends_the_session() {
    let (l, addr) = listener();
    std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let _ = c.write_all(b"220-hello\r\n".repeat(5000).as_slice());
        std::thread::sleep(Duration::from_millis(500));
    });
    let s = settings("");
    let st = deliver(
        &s,
        &format!("[127.0.0.1]:{}", addr.port()),
        "x\n",
        &["a@r.test"],
    );
    assert_eq!(st[0].action, Action::Deferred);
    assert!(
        st[0].text.contains("reply with too many lines"),
        "{}",
        st[0].text
    );
}

/// SMTPUTF8 requested by the client (smtpd's `smtputf8` attribute) with a
/// UTF-8 header: sent with SMTPUTF8 where offered, bounced 5.6.7 where
/// not; without the request the same message goes as it is.
#[test]
fn smtputf8_request_with_utf8_headers() {
    let utf8 = "Subject: gr\u{fc}\u{df}e\n\nbody\n";
    let asked = || vec![("smtputf8".to_string(), "yes".to_string())];
    let s = settings("");
    let (l, addr) = listener();
    let seen = server(l, GREETING, standard("250-SMTPUTF8\r\n"));
    let hop = format!("[127.0.0.1]:{}", addr.port());
    let st = deliver_with(&s, &hop, "Subject: plain\n\nx\n", &["a@r.test"], asked());
    assert_eq!(st[0].action, Action::Delivered, "{st:?}");
    let commands = seen.lock().unwrap().commands.clone();
    assert!(
        commands
            .iter()
            .any(|c| c == "MAIL FROM:<alice@example.org> SMTPUTF8"),
        "{commands:?}"
    );
    let (l, addr) = listener();
    let seen = server(l, GREETING, standard(""));
    let hop = format!("[127.0.0.1]:{}", addr.port());
    let st = deliver_with(&s, &hop, utf8, &["a@r.test"], asked());
    assert_eq!(
        (st[0].action, st[0].dsn.as_str()),
        (Action::Bounced, "5.6.7"),
        "{st:?}"
    );
    assert!(
        !seen
            .lock()
            .unwrap()
            .commands
            .iter()
            .any(|c| c.starts_with("MAIL"))
    );
    // ASCII headers (UTF-8 only in the body) need nothing of the server.
    let (l, addr) = listener();
    let _seen = server(l, GREETING, standard(""));
    let hop = format!("[127.0.0.1]:{}", addr.port());
    let st = deliver_with(
        &s,
        &hop,
        "Subject: x\n\ngr\u{fc}\u{df}e\n",
        &["a@r.test"],
        asked(),
    );
    assert_eq!(st[0].action, Action::Delivered, "{st:?}");
    // Not requested: UTF-8 headers go as they are.
    let (l, addr) = listener();
    let seen = server(l, GREETING, standard(""));
    let hop = format!("[127.0.0.1]:{}", addr.port());
    let st = deliver(&s, &hop, utf8, &["a@r.test"]);
    assert_eq!(st[0].action, Action::Delivered, "{st:?}");
    assert!(
        seen.lock()
            .unwrap()
            .commands
            .iter()
            .any(|c| c == "MAIL FROM:<alice@example.org>")
    );
}

#[test]
fn smtputf8_addresses_need_a_server_that_offers_it() {
    let (l, addr) = listener();
    let seen = server(l, GREETING, standard("250-SMTPUTF8\r\n"));
    let s = settings("");
    let hop = format!("[127.0.0.1]:{}", addr.port());
    let st = deliver(&s, &hop, "x\n", &["j\u{f6}rg@r.test"]);
    assert_eq!(st[0].action, Action::Delivered, "{st:?}");
    assert!(
        seen.lock()
            .unwrap()
            .commands
            .iter()
            .any(|c| c == "MAIL FROM:<alice@example.org> SMTPUTF8")
    );
    let (l, addr) = listener();
    let seen = server(l, GREETING, standard(""));
    let hop = format!("[127.0.0.1]:{}", addr.port());
    let st = deliver(&s, &hop, "x\n", &["j\u{f6}rg@r.test", "a@r.test"]);
    assert!(
        st.iter()
            .all(|s| s.action == Action::Bounced && s.dsn == "5.6.7"),
        "{st:?}"
    );
    assert_eq!(
        st[0].text,
        "message requires SMTPUTF8, but no server was found that supports SMTPUTF8. \
         The last attempted server was 127.0.0.1[127.0.0.1]"
    );
    assert!(
        !seen
            .lock()
            .unwrap()
            .commands
            .iter()
            .any(|c| c.starts_with("MAIL"))
    );
}
