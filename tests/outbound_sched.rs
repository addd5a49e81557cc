//! Outbound scheduling and routing (issue 8, points 5 and 6): qmgr's
//! per-destination concurrency (slow start from
//! initial_destination_concurrency up to the destination concurrency
//! limit, counted at a receiver scripted in the test), a dead destination
//! (connection refused) whose other messages are deferred without a
//! connection attempt each and that a flush brings back, transport_maps
//! forms (user@domain with `smtp:[host]:port`, `.domain`, `retry:`,
//! `virtual:`, `*` with `error:`),
//! relocated_maps bounces, sender_dependent_relayhost_maps, and a cidr:
//! table in check_client_access.
//!
//! Messages are first held with `defer_transports = smtp` and then
//! released together by `postqueue -f` (a flush delivers deferred
//! transports), so that qmgr has them all at once.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::{SmtpInstance, SmtpSetup, bin_dir, need_smtp, sender_instance, wait_until};

fn send(inst: &SmtpInstance, to: &str, tag: &str) {
    let message = format!("From: alice@sender.test\nSubject: {tag}\n\nbody of {tag}\n");
    let out = inst.sendmail(&["-oi", "-f", "alice@sender.test", to], message.as_bytes());
    assert!(
        out.status.success(),
        "sendmail: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run(inst: &SmtpInstance, name: &str, args: &[&str]) -> String {
    let out = Command::new(bin_dir().join(name))
        .arg("-c")
        .arg(&inst.inst.config_dir)
        .args(args)
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn mailq(inst: &SmtpInstance) -> String {
    let out = Command::new(bin_dir().join("mailq"))
        .arg("-C")
        .arg(&inst.inst.config_dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn deferred_files(inst: &SmtpInstance) -> usize {
    fn count(p: &std::path::Path) -> usize {
        std::fs::read_dir(p).map_or(0, |rd| {
            rd.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        count(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
    }
    count(&inst.inst.qdir.join("deferred"))
}

/// Sends `n` messages while smtp is a deferred transport, waits until they
/// are all in deferred/, then flushes.
fn hold_then_flush(inst: &SmtpInstance, to: &str, n: usize) {
    for i in 0..n {
        send(inst, to, &format!("held-{i}"));
    }
    assert!(
        wait_until(Duration::from_secs(30), || deferred_files(inst) >= n),
        "not all deferred ({} files)\n{}",
        deferred_files(inst),
        inst.inst.log()
    );
    run(inst, "postqueue", &["-f"]);
}

/// What the scripted receiver saw: sessions open now, the most at once,
/// and when each session started.
#[derive(Default)]
struct Seen {
    open: AtomicUsize,
    max: AtomicUsize,
    starts: Mutex<Vec<Instant>>,
    /// When each message was accepted (before its delivery can end).
    ends: Mutex<Vec<Instant>>,
    messages: AtomicUsize,
}

/// An SMTP server that waits `hold` before its greeting, then accepts
/// every message.
fn scripted_receiver(hold: Duration, port: u16) -> (u16, Arc<Seen>) {
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let s = Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let s = Arc::clone(&s);
            s.starts.lock().unwrap().push(Instant::now());
            let now = s.open.fetch_add(1, Ordering::SeqCst) + 1;
            s.max.fetch_max(now, Ordering::SeqCst);
            std::thread::spawn(move || {
                std::thread::sleep(hold);
                let _ = session(conn, &s);
                s.open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (port, seen)
}

fn session(conn: TcpStream, seen: &Seen) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    out.write_all(b"220 sink.test ESMTP\r\n")?;
    let mut line = String::new();
    let mut data = false;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if data {
            if line == ".\r\n" {
                data = false;
                seen.ends.lock().unwrap().push(Instant::now());
                seen.messages.fetch_add(1, Ordering::SeqCst);
                out.write_all(b"250 2.0.0 queued\r\n")?;
            }
            continue;
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => out.write_all(b"250-sink.test\r\n250 8BITMIME\r\n")?,
            "DATA" => {
                data = true;
                out.write_all(b"354 go ahead\r\n")?;
            }
            "QUIT" => {
                out.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => out.write_all(b"250 2.0.0 ok\r\n")?,
        }
    }
}

/// Concurrency to one destination starts at initial_destination_concurrency
/// and never passes smtp_destination_concurrency_limit; it grows to the
/// limit as deliveries succeed (slow start).
#[test]
fn sched_concurrency_slow_start_within_the_limit() {
    need_smtp();
    let hold = Duration::from_millis(1500);
    let (port, seen) = scripted_receiver(hold, 0);
    let n = 14;
    let sender = sender_instance(&format!(
        "relayhost = [127.0.0.1]:{port}\n\
         defer_transports = smtp\n\
         initial_destination_concurrency = 2\n\
         smtp_destination_concurrency_limit = 4\n\
         destination_concurrency_feedback_debug = yes\n\
         smtp_connection_cache_on_demand = no"
    ));
    hold_then_flush(&sender, "bob@virt.test", n);
    assert!(
        wait_until(Duration::from_secs(60), || seen
            .messages
            .load(Ordering::SeqCst)
            >= n),
        "{} of {n} messages arrived\n{}",
        seen.messages.load(Ordering::SeqCst),
        sender.inst.log()
    );
    let starts = seen.starts.lock().unwrap().clone();
    let first_end = *seen.ends.lock().unwrap().iter().min().unwrap();
    // The sessions opened before any ended are the initial window.
    let initial = starts.iter().filter(|t| **t < first_end).count();
    assert_eq!(initial, 2, "sessions in the first window: {starts:?}");
    let max = seen.max.load(Ordering::SeqCst);
    // qmgr counts deliveries in flight; the receiver sees TCP sessions,
    // and a finished delivery's connection may close a moment after the
    // next one opened: at most one more than the limit, never two.
    assert!((4..=5).contains(&max), "most sessions at once: {max}");
    assert_eq!(starts.len(), n, "one session per message");
    sender.wait_queue_empty();
    assert!(
        sender
            .inst
            .log()
            .contains(&format!("queue smtp:[127.0.0.1]:{port}: limit 4 window 4")),
        "{}",
        sender.inst.log()
    );
}

/// A destination that refuses connections is marked dead after its
/// failed cohort: the messages not yet tried are deferred with `delivery
/// temporarily suspended: REASON`, without a connection attempt each.
#[test]
fn sched_dead_destination_defers_without_connecting() {
    need_smtp();
    let port = testkit::free_port();
    let n = 10;
    let sender = sender_instance(&format!(
        "relayhost = [127.0.0.1]:{port}\n\
         defer_transports = smtp\n\
         initial_destination_concurrency = 2"
    ));
    hold_then_flush(&sender, "bob@virt.test", n);
    let reason = format!("connect to 127.0.0.1[127.0.0.1]:{port}: Connection refused");
    let suspended = format!("delivery temporarily suspended: {reason}");
    let counts = |log: &str| {
        let tried = log
            .lines()
            .filter(|l| l.contains("/smtp[") && l.contains(&format!("({reason})")))
            .count();
        let skipped = log
            .lines()
            .filter(|l| l.contains("/qmgr[") && l.contains(&suspended))
            .count();
        (tried, skipped)
    };
    let ok = wait_until(Duration::from_secs(30), || {
        let (tried, skipped) = counts(&sender.inst.log());
        tried + skipped >= n
    });
    let log = sender.inst.log();
    assert!(ok, "not all deferred:\n{log}");
    // Two in flight (the initial window): the first failure narrows the
    // window to 1, the second fills the cohort; the other eight are not
    // tried.
    assert_eq!(counts(&log), (2, n - 2), "{log}");
    let q = mailq(&sender);
    assert!(q.contains(&suspended), "{q}");
    assert!(q.contains(&format!("({reason})")), "{q}");
    // A flush brings the dead destination back (long before
    // minimal_backoff_time): everything is delivered once it answers.
    let (_, seen) = scripted_receiver(Duration::ZERO, port);
    run(&sender, "postqueue", &["-f"]);
    assert!(
        wait_until(Duration::from_secs(30), || seen
            .messages
            .load(Ordering::SeqCst)
            >= n),
        "{} of {n} delivered after the flush\n{}",
        seen.messages.load(Ordering::SeqCst),
        sender.inst.log()
    );
    sender.wait_queue_empty();
}

/// transport_maps forms: a user@domain key with smtp:[host]:port, a
/// `.domain` parent match with error:, retry: with its text, virtual: with
/// an empty nexthop, and `*` with error: for everything else.
#[test]
fn sched_transport_maps_forms_route_as_postfix() {
    need_smtp();
    let receiver = SmtpSetup::new().main("myhostname = receiver.test").start();
    let sender = sender_instance(&format!(
        "transport_maps = inline:{{ {{bob@virt.test = smtp:[127.0.0.1]:{}}}, \
         {{.sub.test = error:5.7.1 subdomain refused}}, \
         {{retry.test = retry:4.4.9 try again later}}, \
         {{sender.test = virtual:}}, \
         {{* = error:5.1.2 no route here}} }}",
        receiver.port
    ));
    send(&sender, "bob@virt.test", "routed");
    send(&sender, "alice@virt.test", "wildcard");
    send(&sender, "x@a.sub.test", "subdomain");
    send(&sender, "y@retry.test", "retried");
    receiver.wait_mail("bob", 1);
    sender.wait_log("dsn=5.7.1, status=bounced (subdomain refused)");
    sender.wait_log("dsn=5.1.2, status=bounced (no route here)");
    sender.wait_log("dsn=4.4.9, status=deferred (try again later)");
    assert!(receiver.maildir("alice").is_empty());
    // The bounces come back through virtual: (not `*`).
    assert!(
        wait_until(Duration::from_secs(30), || sender.bounces().len() >= 2),
        "{}",
        sender.inst.log()
    );
    let all = sender.bounces().join("\n");
    assert!(all.contains("subdomain refused"), "{all}");
    assert!(all.contains("no route here"), "{all}");
    // mailq shows the reason while the message waits in deferred/ (not
    // while a retry has it in active/).
    assert!(
        wait_until(Duration::from_secs(30), || mailq(&sender)
            .contains("try again later")),
        "{}",
        mailq(&sender)
    );
    // A [host]:port nexthop was used for bob (relay= names it).
    let log = sender.inst.log();
    assert!(
        log.lines().any(|l| l.contains("to=<bob@virt.test>")
            && l.contains(&format!("127.0.0.1[127.0.0.1]:{}", receiver.port))
            && l.contains("status=sent")),
        "{log}"
    );
}

/// relocated_maps: the recipient bounces with `5.1.6 User has moved to NEW`.
#[test]
fn sched_relocated_maps_bounce_with_the_new_address() {
    need_smtp();
    let sender =
        sender_instance("relocated_maps = inline:{ {gone@virt.test = new@elsewhere.example} }");
    send(&sender, "gone@virt.test", "moved");
    sender.wait_log("dsn=5.1.6, status=bounced (User has moved to new@elsewhere.example)");
    assert!(
        wait_until(Duration::from_secs(30), || !sender.bounces().is_empty()),
        "{}",
        sender.inst.log()
    );
    let b = sender.bounces().join("\n");
    assert!(b.contains("User has moved to new@elsewhere.example"), "{b}");
    assert!(b.contains("5.1.6"), "{b}");
    sender.wait_queue_empty();
}

/// Reads one SMTP reply (all its lines).
fn reply(r: &mut BufReader<TcpStream>) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 {
            return all;
        }
        all.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return all;
        }
    }
}

fn rcpt_reply(port: u16) -> String {
    let conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    reply(&mut r);
    for cmd in ["EHLO client.test", "MAIL FROM:<a@client.test>"] {
        w.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
        reply(&mut r);
    }
    w.write_all(b"RCPT TO:<bob@virt.test>\r\n").unwrap();
    let out = reply(&mut r);
    let _ = w.write_all(b"QUIT\r\n");
    out
}

/// A cidr: table in check_client_access: the client's address matches a
/// network (first match wins, `!` and if/endif work), and postmap -q
/// queries the same table.
#[test]
fn sched_cidr_table_in_check_client_access() {
    need_smtp();
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // smtpd runs as the mail owner: the table must be readable.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let table = dir.path().join("clients.cidr");
    std::fs::write(
        &table,
        "# first match wins\n\
         10.0.0.0/8          OK\n\
         if 127.0.0.0/8\n\
         !127.0.0.1          OK\n\
         endif\n\
         127.0.0.0/24        REJECT cidr says no\n\
         127.0.0.0/8         OK\n\
         ::1                 REJECT ipv6 loopback\n",
    )
    .unwrap();
    let spec = format!("cidr:{}", table.display());
    let receiver = SmtpSetup::new()
        .main(&format!(
            "smtpd_client_restrictions = check_client_access {spec}"
        ))
        .start();
    let got = rcpt_reply(receiver.port);
    assert!(
        got.starts_with("554 5.7.1") && got.contains("Client host rejected: cidr says no"),
        "{got}\n{}",
        receiver.inst.log()
    );
    let q = |key: &str| run(&receiver, "postmap", &["-q", key, &spec]);
    assert_eq!(q("127.0.0.1").trim(), "REJECT cidr says no");
    assert_eq!(q("127.0.0.2").trim(), "OK");
    assert_eq!(q("10.9.8.7").trim(), "OK");
    assert_eq!(q("::1").trim(), "REJECT ipv6 loopback");
    // A client the table lets through gets to its recipient.
    std::fs::write(&table, "127.0.0.1 OK\n0.0.0.0/0 REJECT\n").unwrap();
    let receiver2 = SmtpSetup::new()
        .main(&format!(
            "smtpd_client_restrictions = check_client_access {spec}"
        ))
        .start();
    let got = rcpt_reply(receiver2.port);
    assert!(got.starts_with("250"), "{got}\n{}", receiver2.inst.log());
}

/// sender_dependent_relayhost_maps: mail from alice@sender.test goes to
/// the receiver named for @sender.test, although relayhost points
/// elsewhere.
#[test]
fn sched_sender_dependent_relayhost() {
    need_smtp();
    let receiver = SmtpSetup::new().main("myhostname = receiver.test").start();
    let sender = sender_instance(&format!(
        "relayhost = [127.0.0.1]:{}\n\
         sender_dependent_relayhost_maps = inline:{{ {{@sender.test=[127.0.0.1]:{}}} }}",
        testkit::free_port(),
        receiver.port
    ));
    send(&sender, "bob@virt.test", "by-sender");
    receiver.wait_mail("bob", 1);
    sender.wait_queue_empty();
}
