//! Outbound mail (issue 8): two of our instances on one machine, the
//! sender's smtp client delivering to the receiver's smtpd. Mail sent with
//! our sendmail to the sender arrives in the receiver's Maildir exactly
//! once, through relayhost = [127.0.0.1]:PORT or by MX lookup (relayhost =
//! DOMAIN:PORT) against a DNS server run by the test (the dns crate's test
//! server, named by the sender's smtp_dns_resolv_conf); a stopped receiver
//! makes the sender defer with the reason in mailq, and `postqueue -f`
//! delivers once it is back; a 550 for one of two recipients bounces that
//! one to the sender and delivers the other; a null MX and a domain that
//! does not exist bounce; a DNS server that does not answer defers.
//!
//! The receiver is [`SmtpSetup`]'s instance (virtual Maildir users alice,
//! bob at virt.test). The sender has its own virtual user
//! alice@sender.test (to receive bounces) and no virt.test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::util::{
    SmtpInstance, SmtpSetup, bin_dir, need_smtp, read_maildir, sender_instance, wait_until,
};
use dns::testserver::Rec;

/// Runs our sendmail against `inst` with `args`, `message` on stdin;
/// asserts it succeeded.
fn sendmail(inst: &SmtpInstance, args: &[&str], message: &str) -> Output {
    let out = inst.sendmail(args, message.as_bytes());
    assert!(
        out.status.success(),
        "sendmail failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn send(inst: &SmtpInstance, to: &[&str], tag: &str) {
    let mut args = vec!["-oi", "-f", "alice@sender.test"];
    args.extend_from_slice(to);
    sendmail(
        inst,
        &args,
        &format!("From: alice@sender.test\nSubject: {tag}\n\nbody of {tag}\n.\n..two dots\n"),
    );
}

/// `mailq -C CONFIG` (sendmail's option letter).
fn mailq(inst: &SmtpInstance) -> String {
    let out = Command::new(bin_dir().join("mailq"))
        .arg("-C")
        .arg(&inst.inst.config_dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn command(inst: &SmtpInstance, name: &str, args: &[&str]) -> String {
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

/// The messages in the receiver's Maildir of `user` that carry `tag`.
fn tagged(inst: &SmtpInstance, user: &str, tag: &str) -> usize {
    inst.maildir(user)
        .iter()
        .filter(|m| String::from_utf8_lossy(m).contains(&format!("Subject: {tag}")))
        .count()
}

#[test]
fn outbound_relayhost_delivers_exactly_once() {
    need_smtp();
    let receiver = SmtpSetup::new().main("myhostname = receiver.test").start();
    let sender = sender_instance(&format!("relayhost = [127.0.0.1]:{}", receiver.port));
    send(&sender, &["bob@virt.test"], "once");
    let got = receiver.wait_mail("bob", 1);
    sender.wait_queue_empty();
    let text = String::from_utf8_lossy(&got[0]).into_owned();
    assert!(text.contains("body of once\n.\n..two dots\n"), "{text}");
    let log = sender.inst.log();
    let line = log
        .lines()
        .find(|l| l.contains("postfix/smtp[") && l.contains("to=<bob@virt.test>"))
        .unwrap_or_else(|| panic!("no smtp line:\n{log}"));
    assert!(
        line.contains(&format!(
            "relay=127.0.0.1[127.0.0.1]:{}, delay=",
            receiver.port
        )) && line.contains("dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as "),
        "{line}"
    );
    // Exactly once, also a while later.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(tagged(&receiver, "bob", "once"), 1);
}

#[test]
fn outbound_defers_while_the_receiver_is_down_then_flushes() {
    need_smtp();
    let receiver = SmtpSetup::new().main("myhostname = receiver.test").start();
    let port = receiver.port;
    let sender = sender_instance(&format!("relayhost = [127.0.0.1]:{port}"));
    let out = receiver.inst.postfix(&["stop"]);
    assert!(out.status.success(), "{out:?}");
    assert!(wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    }));
    send(&sender, &["bob@virt.test"], "later");
    let reason = format!("connect to 127.0.0.1[127.0.0.1]:{port}: Connection refused");
    sender.wait_log(&format!("status=deferred ({reason})"));
    let ok = wait_until(Duration::from_secs(20), || mailq(&sender).contains(&reason));
    assert!(ok, "mailq:\n{}", mailq(&sender));
    receiver.inst.start();
    assert!(wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }));
    command(&sender, "postqueue", &["-f"]);
    receiver.wait_mail("bob", 1);
    sender.wait_queue_empty();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(tagged(&receiver, "bob", "later"), 1);
}

#[test]
fn outbound_one_recipient_refused_one_delivered() {
    need_smtp();
    let access = tempfile::tempdir().unwrap();
    testkit::open_dir(access.path());
    let table = access.path().join("access");
    std::fs::write(
        &table,
        "alice@virt.test 550 5.7.1 alice takes no mail from you\n",
    )
    .unwrap();
    std::fs::set_permissions(&table, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let receiver = SmtpSetup::new()
        .main("myhostname = receiver.test")
        .main(&format!(
            "smtpd_recipient_restrictions = check_recipient_access texthash:{}, permit_mynetworks, reject_unauth_destination",
            table.display()
        ))
        .start();
    let sender = sender_instance(&format!("relayhost = [127.0.0.1]:{}", receiver.port));
    send(&sender, &["alice@virt.test", "bob@virt.test"], "split");
    receiver.wait_mail("bob", 1);
    sender.wait_queue_empty();
    assert_eq!(tagged(&receiver, "alice", "split"), 0);
    let expected = "host 127.0.0.1[127.0.0.1] said: 550 5.7.1 <alice@virt.test>: Recipient address rejected: alice takes no mail from you (in reply to RCPT TO command)";
    sender.wait_log(&format!("dsn=5.7.1, status=bounced ({expected})"));
    assert!(
        wait_until(Duration::from_secs(20), || sender.bounces().iter().any(
            |b| b.contains("550 5.7.1")
                && b.contains("alice@virt.test")
                && b.contains("Remote-MTA: dns; 127.0.0.1")
        )),
        "no bounce for alice; sender's log:\n{}",
        sender.inst.log()
    );
    assert_eq!(tagged(&receiver, "bob", "split"), 1);
}

/// A DNS server for the MX tests and a resolv.conf naming it.
struct Dns {
    _server: dns::testserver::Server,
    _dir: tempfile::TempDir,
    resolv_conf: PathBuf,
}

fn dns_server() -> Dns {
    let r = |n: &str, rec: Rec| (n.to_string(), rec);
    let server = dns::testserver::start(vec![
        r("virt.test", Rec::Mx(10, "mx.virt.test.".into())),
        r("mx.virt.test", Rec::A("127.0.0.1".into())),
        // The first MX does not answer: the second takes the mail.
        r("two.test", Rec::Mx(10, "down.two.test.".into())),
        r("two.test", Rec::Mx(20, "up.two.test.".into())),
        r("down.two.test", Rec::A("127.0.0.3".into())),
        r("up.two.test", Rec::A("127.0.0.1".into())),
        r("null.test", Rec::Mx(0, ".".into())),
        r("slow.test", Rec::Silent),
    ]);
    let dir = tempfile::tempdir().unwrap();
    testkit::open_dir(dir.path());
    let resolv_conf = dir.path().join("resolv.conf");
    std::fs::write(&resolv_conf, server.resolv_conf()).unwrap();
    std::fs::set_permissions(
        &resolv_conf,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    Dns {
        _server: server,
        _dir: dir,
        resolv_conf,
    }
}

fn resolv_conf_param(d: &Dns) -> String {
    format!("smtp_dns_resolv_conf = {}", d.resolv_conf.display())
}

#[test]
fn outbound_by_mx_lookup_with_one_mx_down() {
    need_smtp();
    let d = dns_server();
    let receiver = SmtpSetup::new().main("myhostname = receiver.test").start();
    let sender = sender_instance(&format!(
        "{}\nrelayhost = virt.test:{}",
        resolv_conf_param(&d),
        receiver.port
    ));
    send(&sender, &["bob@virt.test"], "by-mx");
    receiver.wait_mail("bob", 1);
    sender.wait_log(&format!("relay=mx.virt.test[127.0.0.1]:{}", receiver.port));
    // Two MX hosts, the better one down.
    let sender2 = sender_instance(&format!(
        "{}\nrelayhost = two.test:{}",
        resolv_conf_param(&d),
        receiver.port
    ));
    send(&sender2, &["bob@virt.test"], "second-mx");
    let ok = wait_until(Duration::from_secs(30), || {
        tagged(&receiver, "bob", "second-mx") == 1
    });
    assert!(ok, "sender's log:\n{}", sender2.inst.log());
    sender2.wait_log(&format!("relay=up.two.test[127.0.0.1]:{}", receiver.port));
}

#[test]
fn outbound_null_mx_and_unknown_domain_bounce_silent_dns_defers() {
    need_smtp();
    let d = dns_server();
    let param = resolv_conf_param(&d);
    let null = sender_instance(&format!("{param}\nrelayhost = null.test"));
    send(&null, &["bob@virt.test"], "null");
    null.wait_log("dsn=5.1.0, status=bounced (Domain null.test does not accept mail (nullMX))");
    let none = sender_instance(&format!("{param}\nrelayhost = nowhere.test"));
    send(&none, &["bob@virt.test"], "nowhere");
    none.wait_log("dsn=5.4.4, status=bounced (Host or domain name not found. Name service error for name=nowhere.test type=A: Host not found)",
    );
    let slow = sender_instance(&format!("{param}\nrelayhost = slow.test"));
    send(&slow, &["bob@virt.test"], "slow");
    slow.wait_log("dsn=4.4.3, status=deferred (Host or domain name not found. Name service error for name=slow.test type=MX: Host not found, try again)",
    );
    // The bounces reach the sender.
    for inst in [&null, &none] {
        assert!(
            wait_until(Duration::from_secs(20), || !inst.bounces().is_empty()),
            "no bounce:\n{}",
            inst.inst.log()
        );
    }
}

/// Our smtp client delivers to Debian's Postfix smtp-sink.
#[test]
fn outbound_to_postfix_smtp_sink() {
    need_smtp();
    let sink = Path::new("/usr/sbin/smtp-sink");
    assert!(
        sink.is_file(),
        "needs Debian's postfix package (smtp-sink): scripts/install-deps installs it"
    );
    let port = testkit::free_port();
    let mut sink_cmd = Command::new(sink);
    if nix::unistd::geteuid().is_root() {
        // smtp-sink refuses to run as root without a user to become.
        sink_cmd.arg("-u").arg("nobody");
    }
    let mut child = sink_cmd
        .arg(format!("127.0.0.1:{port}"))
        .arg("10")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }));
    let sender = sender_instance(&format!("relayhost = [127.0.0.1]:{port}"));
    for i in 0..3 {
        send(&sender, &["bob@virt.test"], &format!("sink-{i}"));
    }
    sender.wait_queue_empty();
    let sent = sender
        .inst
        .log()
        .lines()
        .filter(|l| l.contains("postfix/smtp[") && l.contains("status=sent (250 "))
        .count();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGTERM,
    );
    let _ = child.wait();
    assert_eq!(sent, 3, "{}", sender.inst.log());
}

#[test]
fn outbound_starttls_verify_and_encrypt() {
    need_smtp();
    let receiver = SmtpSetup::new()
        .main("myhostname = receiver.test")
        .tls()
        .start();
    let ca = receiver.pki.as_ref().unwrap().ca.display().to_string();
    // verify: the certificate chains to the test CA and names 127.0.0.1.
    let verify = sender_instance(&format!(
        "relayhost = [127.0.0.1]:{}\nsmtp_tls_security_level = verify\nsmtp_tls_CAfile = {ca}",
        receiver.port
    ));
    send(&verify, &["bob@virt.test"], "tls-verify");
    let got = receiver.wait_mail("bob", 1);
    assert!(
        String::from_utf8_lossy(&got[0]).contains("with ESMTPS"),
        "{}",
        String::from_utf8_lossy(&got[0])
    );
    verify.wait_log(&format!(
        "Verified TLS connection established to 127.0.0.1[127.0.0.1]:{}: TLSv1.3 with cipher TLS_",
        receiver.port
    ));
    // verify against another CA: the handshake fails, the mail waits.
    let other = tempfile::tempdir().unwrap();
    testkit::open_dir(other.path());
    let other_pki = crate::util::make_pki(other.path());
    let wrong = sender_instance(&format!(
        "relayhost = [127.0.0.1]:{}\nsmtp_tls_security_level = verify\nsmtp_tls_CAfile = {}",
        receiver.port,
        other_pki.ca.display()
    ));
    send(&wrong, &["bob@virt.test"], "tls-wrong-ca");
    wrong
        .wait_log("status=deferred (Cannot start TLS: handshake failure with 127.0.0.1[127.0.0.1]");
    // encrypt to a server without STARTTLS: deferred; may: sent in clear.
    let plain = SmtpSetup::new().main("myhostname = plain.test").start();
    let encrypt = sender_instance(&format!(
        "relayhost = [127.0.0.1]:{}\nsmtp_tls_security_level = encrypt",
        plain.port
    ));
    send(&encrypt, &["bob@virt.test"], "tls-encrypt");
    encrypt.wait_log("dsn=4.7.4, status=deferred (TLS is required, but was not offered by host 127.0.0.1[127.0.0.1])",
    );
    let may = sender_instance(&format!(
        "relayhost = [127.0.0.1]:{}\nsmtp_tls_security_level = may",
        plain.port
    ));
    send(&may, &["bob@virt.test"], "tls-may");
    plain.wait_mail("bob", 1);
    assert_eq!(tagged(&plain, "bob", "tls-encrypt"), 0);
}

/// A private dnsmasq (Debian's dnsmasq-base) on a free port of 127.0.0.1,
/// answering only from its command line; killed on drop.
struct Dnsmasq {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    resolv_conf: PathBuf,
}

impl Dnsmasq {
    fn start(records: &[&str]) -> Dnsmasq {
        let dnsmasq = Path::new("/usr/sbin/dnsmasq");
        assert!(
            dnsmasq.is_file(),
            "needs Debian's dnsmasq-base: scripts/install-deps installs it"
        );
        let port = testkit::free_port();
        let mut cmd = Command::new(dnsmasq);
        cmd.args([
            "--keep-in-foreground",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--conf-file=/dev/null",
            "--pid-file=",
        ])
        .arg(format!("--port={port}"))
        .args(records)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if nix::unistd::geteuid().is_root() {
            cmd.arg("--user=nobody");
        }
        let child = cmd.spawn().unwrap();
        let dir = tempfile::tempdir().unwrap();
        testkit::open_dir(dir.path());
        let resolv_conf = dir.path().join("resolv.conf");
        std::fs::write(
            &resolv_conf,
            format!("nameserver 127.0.0.1#{port}\noptions timeout:2 attempts:2\n"),
        )
        .unwrap();
        std::fs::set_permissions(
            &resolv_conf,
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
        assert!(
            wait_until(Duration::from_secs(10), || std::net::TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "dnsmasq does not listen on port {port}"
        );
        Dnsmasq {
            child,
            _dir: dir,
            resolv_conf,
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn outbound_by_mx_through_dnsmasq() {
    need_smtp();
    let dns = Dnsmasq::start(&[
        "--mx-host=dnsmasq.test,down.dnsmasq.test,10",
        "--mx-host=dnsmasq.test,up.dnsmasq.test,20",
        "--host-record=down.dnsmasq.test,127.0.0.3",
        "--host-record=up.dnsmasq.test,127.0.0.1",
    ]);
    let receiver = SmtpSetup::new()
        .main("myhostname = receiver.test")
        .tls()
        .start();
    let ca = receiver.pki.as_ref().unwrap().ca.display().to_string();
    // By MX (the first one down), with STARTTLS verified against the test
    // CA: the certificate names the MX host up.dnsmasq.test.
    let sender = sender_instance(&format!(
        "smtp_dns_resolv_conf = {}\nrelayhost = dnsmasq.test:{}\n\
         smtp_tls_security_level = verify\nsmtp_tls_CAfile = {ca}",
        dns.resolv_conf.display(),
        receiver.port
    ));
    send(&sender, &["bob@virt.test"], "via-dnsmasq");
    receiver.wait_mail("bob", 1);
    sender.wait_queue_empty();
    sender.wait_log(&format!(
        "relay=up.dnsmasq.test[127.0.0.1]:{}, delay=",
        receiver.port
    ));
    sender.wait_log(&format!(
        "Verified TLS connection established to up.dnsmasq.test[127.0.0.1]:{}",
        receiver.port
    ));
    assert_eq!(tagged(&receiver, "bob", "via-dnsmasq"), 1);
}

/// Our smtp client delivers to Debian's Postfix (its smtpd with STARTTLS
/// from OpenSSL, its virtual agent into a Maildir), TLS required.
#[test]
fn outbound_to_debian_postfix_with_tls() {
    need_smtp();
    if !crate::util::debian_postfix_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    testkit::open_dir(dir.path());
    let pki = crate::util::make_pki(dir.path());
    let vmail = dir.path().join("vmail");
    std::fs::create_dir_all(&vmail).unwrap();
    std::os::unix::fs::chown(&vmail, Some(65534), Some(65534)).unwrap();
    let pf = crate::util::DebianPostfix::start(
        &format!(
            "virtual_mailbox_domains = pf.test\nvirtual_mailbox_base = {}\n\
             virtual_mailbox_maps = inline:{{ bob@pf.test=bob/ }}\n\
             virtual_uid_maps = static:65534\nvirtual_gid_maps = static:65534\n\
             smtpd_tls_cert_file = {}\nsmtpd_tls_key_file = {}\nsmtpd_tls_security_level = may\n",
            vmail.display(),
            pki.cert.display(),
            pki.key.display()
        ),
        "virtual unix - n n - - virtual\n",
    );
    let sender = sender_instance(&format!(
        "relayhost = [127.0.0.1]:{}\nsmtp_tls_security_level = verify\nsmtp_tls_CAfile = {}",
        pf.port,
        pki.ca.display()
    ));
    send(&sender, &["bob@pf.test"], "to-postfix");
    let ok = wait_until(Duration::from_secs(30), || {
        !read_maildir(&vmail.join("bob")).is_empty()
    });
    assert!(
        ok,
        "nothing in Postfix's Maildir\nour log:\n{}\nPostfix's log:\n{}",
        sender.inst.log(),
        pf.log()
    );
    let got = String::from_utf8_lossy(&read_maildir(&vmail.join("bob"))[0]).into_owned();
    assert!(got.contains("Subject: to-postfix"), "{got}");
    assert!(got.contains("with ESMTPS"), "{got}");
    sender.wait_queue_empty();
    sender.wait_log(&format!(
        "Verified TLS connection established to 127.0.0.1[127.0.0.1]:{}",
        pf.port
    ));
    sender.wait_log("status=sent (250 2.0.0 Ok: queued as ");
}

/// Through a smarthost: the receiver's submission service (STARTTLS
/// required, AUTH required to relay); the sender authenticates with
/// smtp_sasl_password_maps over TLS at level encrypt.
#[test]
fn outbound_smarthost_with_sasl_over_tls() {
    need_smtp();
    let receiver = SmtpSetup::new()
        .main("myhostname = receiver.test")
        .submission()
        .start();
    let port = receiver.submission_port;
    let dir = tempfile::tempdir().unwrap();
    testkit::open_dir(dir.path());
    let table = dir.path().join("sasl_passwd");
    std::fs::write(
        &table,
        format!(
            "[127.0.0.1]:{port} alice@virt.test:{}\n",
            crate::util::PASSWORD
        ),
    )
    .unwrap();
    let sender = sender_instance(&format!(
        "relayhost = [127.0.0.1]:{port}\nsmtp_tls_security_level = encrypt\n\
         smtp_sasl_auth_enable = yes\nsmtp_sasl_password_maps = texthash:{}",
        table.display()
    ));
    send(&sender, &["bob@virt.test"], "smarthost");
    let got = receiver.wait_mail("bob", 1);
    let text = String::from_utf8_lossy(&got[0]).into_owned();
    assert!(text.contains("with ESMTPSA"), "{text}");
    sender.wait_queue_empty();
    assert!(
        receiver
            .inst
            .log()
            .contains("sasl_username=alice@virt.test"),
        "{}",
        receiver.inst.log()
    );
    // A wrong password: deferred with the server's reply.
    std::fs::write(
        &table,
        format!("[127.0.0.1]:{port} alice@virt.test:wrong\n"),
    )
    .unwrap();
    let sender2 = sender_instance(&format!(
        "relayhost = [127.0.0.1]:{port}\nsmtp_tls_security_level = encrypt\n\
         smtp_sasl_auth_enable = yes\nsmtp_sasl_password_maps = texthash:{}",
        table.display()
    ));
    send(&sender2, &["bob@virt.test"], "smarthost-wrong");
    sender2.wait_log("dsn=4.7.0, status=deferred (SASL authentication failed; server 127.0.0.1[127.0.0.1] said: 535",
    );
}

/// A message that cannot be delivered past maximal_queue_lifetime bounces
/// with the last reason (here: 0, returned after the first failure).
#[test]
fn outbound_expired_message_bounces_with_the_last_reason() {
    need_smtp();
    let port = testkit::free_port();
    let sender = sender_instance(&format!(
        "relayhost = [127.0.0.1]:{port}\nmaximal_queue_lifetime = 0"
    ));
    send(&sender, &["bob@virt.test"], "expires");
    let reason = format!("connect to 127.0.0.1[127.0.0.1]:{port}: Connection refused");
    let ok = wait_until(Duration::from_secs(30), || {
        sender.bounces().iter().any(|b| b.contains(&reason))
    });
    assert!(ok, "no bounce with {reason:?}:\n{}", sender.inst.log());
    sender.wait_queue_empty();
    assert!(
        sender.inst.log().contains("status=expired"),
        "{}",
        sender.inst.log()
    );
}

/// Mail for relay_domains goes through the `relay` service (the smtp
/// program under master.cf's `-o syslog_name=postfix/$service_name`).
#[test]
fn outbound_relay_transport_logs_its_service_name() {
    need_smtp();
    let receiver = SmtpSetup::new().main("myhostname = receiver.test").start();
    let sender = sender_instance(&format!(
        "relay_domains = virt.test\nrelayhost = [127.0.0.1]:{}",
        receiver.port
    ));
    send(&sender, &["bob@virt.test"], "via-relay");
    receiver.wait_mail("bob", 1);
    sender.wait_log("postfix/relay/smtp[");
    let log = sender.inst.log();
    let line = log
        .lines()
        .find(|l| l.contains("to=<bob@virt.test>") && l.contains("status=sent"))
        .unwrap_or_else(|| panic!("no delivery line:\n{log}"));
    assert!(line.contains("postfix/relay/smtp["), "{line}");
}

/// transport_maps routes: smtp:[host]:port for one domain, discard: and
/// error: for others (the discard service is our discard program).
#[test]
fn outbound_transport_maps_smtp_discard_error() {
    need_smtp();
    let receiver = SmtpSetup::new().main("myhostname = receiver.test").start();
    let sender = sender_instance(&format!(
        "transport_maps = inline:{{ virt.test=smtp:[127.0.0.1]:{}, \
         {{ discard.test = discard:2.0.0 dropped by policy }}, \
         {{ error.test = error:5.1.1 this domain is gone }} }}",
        receiver.port
    ));
    send(&sender, &["bob@virt.test"], "routed");
    send(&sender, &["x@discard.test"], "dropped");
    send(&sender, &["y@error.test"], "refused");
    receiver.wait_mail("bob", 1);
    sender.wait_log("to=<x@discard.test>, relay=none, delay=");
    sender.wait_log("dsn=2.0.0, status=sent (dropped by policy)");
    sender.wait_log("dsn=5.1.1, status=bounced (this domain is gone)");
    let log = sender.inst.log();
    assert!(
        log.lines()
            .any(|l| l.contains("postfix/discard[") && l.contains("to=<x@discard.test>")),
        "{log}"
    );
    sender.wait_queue_empty();
}
