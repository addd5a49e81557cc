//! smtpd under a real master in a temporary instance (cleanup,
//! trivial-rewrite, qmgr, virtual, bounce), spoken to over real sockets:
//! mail end to end into a Maildir, pipelining, BDAT, relay refusal,
//! STARTTLS and wrapper mode, 421 on stop, the idle timeout, a client lost
//! mid-DATA, SMTP AUTH through our auth service and through a real Dovecot
//! (Debian's dovecot-core: scripts/install-deps; skipped without it);
//! ETRN through flush for one domain only, smtpd_etrn_restrictions and
//! fast_flush_domains; the junk command limit; message and AUTH rate
//! limits; smtpd_sasl_security_options; smtpd_end_of_data_restrictions.
//!
//! Needs the workspace's binaries: `cargo build --workspace --bins` first.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use testkit::dovecot::{Dovecot, Ready};
use testkit::{free_port, wait_until};

fn bin_dir() -> PathBuf {
    let dir = testkit::bin_dir();
    for b in [
        "master",
        "anvil",
        "auth",
        "pickup",
        "postdrop",
        "sendmail",
        "postfix",
        "cleanup",
        "trivial-rewrite",
        "qmgr",
        "virtual",
        "bounce",
        "flush",
    ] {
        assert!(
            dir.join(b).is_file(),
            "{} missing: run `cargo build --workspace --bins` before these tests",
            dir.join(b).display()
        );
    }
    dir
}

/// Who owns the virtual mailboxes.
fn mail_ids() -> (u32, u32) {
    if nix::unistd::geteuid().is_root() {
        (65534, 65534)
    } else {
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    }
}

/// A running instance with smtpd on a free port.
struct Inst {
    /// Declared first: stopped before the directory goes.
    inst: testkit::Instance,
    _dir: tempfile::TempDir,
    base: PathBuf,
    config_dir: PathBuf,
    port: u16,
    /// A second smtpd service (wrapper mode) when asked for.
    port2: u16,
}

const SERVICES: &str = "\
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
virtual   unix  -       n       n       -       -       virtual
pickup    unix  n       -       n       60      1       pickup
anvil     unix  -       -       n       -       1       anvil
auth      unix  -       n       n       -       1       auth
flush     unix  n       -       y       -       0       flush
";

impl Inst {
    fn start(main_extra: &str, smtpd_args: &str) -> Inst {
        Inst::start_with(main_extra, smtpd_args, None)
    }

    fn start_with(main_extra: &str, smtpd_args: &str, second: Option<&str>) -> Inst {
        Inst::start_full(main_extra, smtpd_args, second, "n")
    }

    fn start_full(main_extra: &str, smtpd_args: &str, second: Option<&str>, chroot: &str) -> Inst {
        bin_dir();
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        testkit::open_dir(&base);
        let (uid, gid) = mail_ids();
        std::fs::create_dir_all(base.join("vmail")).unwrap();
        std::os::unix::fs::chown(base.join("vmail"), Some(uid), Some(gid)).unwrap();
        std::fs::write(
            base.join("vmailbox"),
            "v1@virt.test v1/\nv2@virt.test v2/\n",
        )
        .unwrap();
        let b = base.display();
        let main = format!(
            "inet_interfaces = loopback-only\n\
             service_throttle_time = 2s\nmyhostname = mx.test.example\n\
             mydestination = localhost, $myhostname\n\
             virtual_mailbox_domains = virt.test\nvirtual_mailbox_base = {b}/vmail\n\
             virtual_mailbox_maps = texthash:{b}/vmailbox\n\
             virtual_uid_maps = static:{uid}\nvirtual_gid_maps = static:{gid}\n\
             virtual_minimum_uid = 1\n{main_extra}",
        );
        let port = free_port();
        let port2 = free_port();
        let mut cf =
            format!("127.0.0.1:{port} inet n - {chroot} - - smtpd {smtpd_args}\n{SERVICES}");
        if let Some(args) = second {
            cf.push_str(&format!("127.0.0.1:{port2} inet n - n - - smtpd {args}\n"));
        }
        let mut inst = testkit::Instance::new_in(&base, &main, &cf);
        inst.start_postfix();
        let config_dir = inst.config_dir.clone();
        Inst {
            inst,
            _dir: dir,
            base,
            config_dir,
            port,
            port2,
        }
    }

    fn postfix(&self, args: &[&str]) -> Output {
        self.inst.postfix(args)
    }

    fn log(&self) -> String {
        self.inst.log()
    }

    fn connect(&self) -> Client {
        Client::connect(SocketAddr::from(([127, 0, 0, 1], self.port)))
    }

    /// The messages delivered to a virtual Maildir user.
    fn maildir(&self, user: &str) -> Vec<String> {
        let dir = self.base.join("vmail").join(user).join("new");
        let Ok(rd) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        rd.flatten()
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .collect()
    }

    fn wait_mail(&self, user: &str, n: usize) -> Vec<String> {
        assert!(
            wait_until(Duration::from_secs(20), || self.maildir(user).len() >= n),
            "no mail for {user}; log:\n{}",
            self.log()
        );
        self.maildir(user)
    }
}

/// A line-oriented SMTP client over any stream.
struct Client<S: Read + Write = TcpStream> {
    s: BufReader<S>,
}

impl Client<TcpStream> {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut c = Client {
            s: BufReader::new(s),
        };
        let g = c.reply();
        assert!(g.starts_with("220 "), "greeting: {g}");
        c
    }
}

impl<S: Read + Write> Client<S> {
    fn send(&mut self, text: &str) {
        self.s.get_mut().write_all(text.as_bytes()).unwrap();
        self.s.get_mut().flush().unwrap();
    }

    /// One whole reply (all lines of a multi-line one).
    fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = self.s.read_line(&mut line).unwrap_or(0);
            if n == 0 {
                return all;
            }
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }

    fn cmd(&mut self, line: &str) -> String {
        self.send(&format!("{line}\r\n"));
        self.reply()
    }

    fn expect(&mut self, line: &str, code: &str) -> String {
        let r = self.cmd(line);
        assert!(r.starts_with(code), "{line} -> {r}");
        r
    }

    /// Sends a message body with DATA; returns the final reply.
    fn data(&mut self, body: &str) -> String {
        self.expect("DATA", "354");
        self.send(body);
        self.send(".\r\n");
        self.reply()
    }

    fn queue_id(reply: &str) -> String {
        reply.trim_end().rsplit(' ').next().unwrap().to_string()
    }
}

#[test]
fn message_end_to_end_into_maildir() {
    testkit::need_mail_owner();
    let inst = Inst::start("", "");
    let mut c = inst.connect();
    let ehlo = c.expect("EHLO client.example", "250");
    for ext in [
        "PIPELINING",
        "SIZE 10240000",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "DSN",
        "CHUNKING",
    ] {
        assert!(ehlo.contains(ext), "{ext} missing: {ehlo}");
    }
    assert!(!ehlo.contains("STARTTLS"), "no certificate, no STARTTLS");
    c.expect("MAIL FROM:<alice@origin.example>", "250 2.1.0");
    c.expect("RCPT TO:<v1@virt.test>", "250 2.1.5");
    let r = c.data("Subject: hello\r\n\r\nline one\r\n..dot line\r\n");
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    let qid = Client::<TcpStream>::queue_id(&r);
    c.expect("QUIT", "221 2.0.0");
    let mail = inst.wait_mail("v1", 1);
    let m = &mail[0];
    let want = format!(
        "Received: from client.example (localhost [127.0.0.1])\n\tby mx.test.example (Postfix) with ESMTP id {qid}\n\tfor <v1@virt.test>; "
    );
    assert!(m.contains(&want), "{m}");
    assert!(
        m.contains("\nSubject: hello\n") && m.contains("\n.dot line\n"),
        "{m}"
    );
    let log = inst.log();
    assert!(
        log.contains("smtpd[") && log.contains("connect from localhost[127.0.0.1]"),
        "{log}"
    );
    assert!(
        log.contains(&format!("{qid}: client=localhost[127.0.0.1]")),
        "{log}"
    );
    assert!(
        wait_until(Duration::from_secs(5), || inst.log().contains(
            "disconnect from localhost[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"
        )),
        "{}",
        inst.log()
    );
}

#[test]
fn pipelining_bdat_and_rejects_keep_order() {
    testkit::need_mail_owner();
    // 127.0.0.1 is outside mynetworks here: remote recipients are refused.
    let inst = Inst::start(
        "mynetworks = 192.0.2.0/24\nsmtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n",
        "",
    );
    let mut c = inst.connect();
    c.expect("EHLO client.example", "250");
    c.send(
        "MAIL FROM:<a@origin.example>\r\nRCPT TO:<x@remote.example>\r\nRCPT TO:<v1@virt.test>\r\n\
         RCPT TO:<v2@virt.test>\r\nDATA\r\n",
    );
    assert!(c.reply().starts_with("250 2.1.0"));
    let denied = c.reply();
    assert_eq!(
        denied,
        "554 5.7.1 <x@remote.example>: Relay access denied\r\n"
    );
    assert!(c.reply().starts_with("250 2.1.5"));
    assert!(c.reply().starts_with("250 2.1.5"));
    assert!(c.reply().starts_with("354"));
    c.send("Subject: piped\r\n\r\nbody\r\n.\r\nMAIL FROM:<b@origin.example>\r\nRCPT TO:<v1@virt.test>\r\nBDAT 20\r\nSubject: chunk\r\n\r\nxyBDAT 3 LAST\r\nz\r\nQUIT\r\n");
    let r1 = c.reply();
    assert!(r1.starts_with("250 2.0.0 Ok: queued as "), "{r1}");
    assert!(c.reply().starts_with("250 2.1.0"));
    assert!(c.reply().starts_with("250 2.1.5"));
    assert_eq!(c.reply(), "250 2.0.0 Ok: 20 bytes\r\n");
    let r2 = c.reply();
    assert!(r2.starts_with("250 2.0.0 Ok: queued as "), "{r2}");
    assert!(c.reply().starts_with("221"));
    // VRFY runs the recipient restrictions.
    let mut c = inst.connect();
    c.expect("EHLO client.example", "250");
    c.expect(
        "VRFY <x@remote.example>",
        "554 5.7.1 <x@remote.example>: Relay access denied",
    );
    c.expect("VRFY v1@virt.test", "252 2.0.0 v1@virt.test");
    c.expect("VRFY <nobody@virt.test>", "550 5.1.1");
    let v1 = inst.wait_mail("v1", 2);
    assert!(
        // A loopback client gets local rewriting (Message-Id, Date, From
        // added after the headers it sent), as in Postfix.
        v1.iter()
            .any(|m| m.contains("Subject: chunk\n") && m.ends_with("\n\nxyz\n")),
        "{v1:?}"
    );
    assert_eq!(inst.wait_mail("v2", 1).len(), 1);
    let log = inst.log();
    assert!(
        log.contains(
            "NOQUEUE: reject: RCPT from localhost[127.0.0.1]: 554 5.7.1 <x@remote.example>: Relay access denied; from=<a@origin.example> to=<x@remote.example> proto=ESMTP helo=<client.example>"
        ),
        "{log}"
    );
}

#[test]
fn lost_client_mid_data_queues_nothing_and_stop_says_421() {
    testkit::need_mail_owner();
    let inst = Inst::start("", "");
    let mut c = inst.connect();
    c.expect("EHLO c.example", "250");
    c.expect("MAIL FROM:<a@origin.example>", "250");
    c.expect("RCPT TO:<v1@virt.test>", "250");
    c.expect("DATA", "354");
    c.send("Subject: never\r\n\r\nhalf a message\r\n");
    drop(c);
    assert!(
        wait_until(Duration::from_secs(5), || inst
            .log()
            .contains("lost connection after DATA from localhost[127.0.0.1]")),
        "{}",
        inst.log()
    );
    // A second client waits idle; postfix stop gives it 421.
    let mut c = inst.connect();
    c.expect("EHLO c.example", "250");
    let out = inst.postfix(&["stop"]);
    assert!(out.status.success());
    let r = c.reply();
    assert_eq!(
        r,
        "421 4.3.2 mx.test.example Service shutting down, closing transmission channel\r\n"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(inst.maildir("v1").is_empty());
    let qdir = inst.base.join("spool");
    for q in ["incoming", "active", "deferred"] {
        let n = std::fs::read_dir(qdir.join(q))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(n, 0, "{q} is not empty");
    }
}

#[test]
fn idle_client_times_out() {
    testkit::need_mail_owner();
    let inst = Inst::start("smtpd_timeout = 1s\n", "");
    let mut c = inst.connect();
    c.expect("HELO c.example", "250");
    let t = Instant::now();
    let r = c.reply();
    assert_eq!(r, "421 4.4.2 mx.test.example Error: timeout exceeded\r\n");
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(
        wait_until(Duration::from_secs(5), || inst
            .log()
            .contains("timeout after HELO from localhost[127.0.0.1]")),
        "{}",
        inst.log()
    );
}

/// A test CA and a certificate for mx.test.example in the instance.
struct Pki {
    ca: rustls::pki_types::CertificateDer<'static>,
    cert: PathBuf,
    key: PathBuf,
}

fn pki(dir: &Path) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["mx.test.example".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, leaf.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    Pki {
        ca: ca_cert.der().clone(),
        cert,
        key,
    }
}

fn tls_client(
    pki: &Pki,
    sock: TcpStream,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let conn = rustls::ClientConnection::new(Arc::new(cfg), "mx.test.example".try_into().unwrap())
        .unwrap();
    rustls::StreamOwned::new(conn, sock)
}

/// smtpd_tls_received_header = no (Postfix's default): the Received
/// header does not name the TLS protocol and cipher.
#[test]
fn tls_received_header_is_off_by_default() {
    testkit::need_mail_owner();
    let tmp = tempfile::tempdir().unwrap();
    let p = pki(tmp.path());
    let main = format!(
        "smtpd_tls_security_level = may\nsmtpd_tls_cert_file = {}\nsmtpd_tls_key_file = {}\n",
        p.cert.display(),
        p.key.display()
    );
    let inst = Inst::start_with(&main, "", None);
    let mut c = inst.connect();
    c.expect("EHLO client.example", "250");
    c.send("STARTTLS\r\n");
    assert_eq!(c.reply(), "220 2.0.0 Ready to start TLS\r\n");
    let sock = c.s.into_inner();
    let mut t = Client {
        s: BufReader::new(tls_client(&p, sock)),
    };
    t.expect("EHLO client.example", "250");
    t.expect("MAIL FROM:<a@origin.example>", "250 2.1.0");
    t.expect("RCPT TO:<v1@virt.test>", "250 2.1.5");
    let r = t.data("Subject: tls\r\n\r\nsecret\r\n");
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    t.expect("QUIT", "221");
    let m = inst.wait_mail("v1", 1).remove(0);
    assert!(m.contains("with ESMTPS id"), "{m}");
    assert!(!m.contains("(using TLS"), "{m}");
}

#[test]
fn starttls_then_mail_and_wrapper_mode() {
    testkit::need_mail_owner();
    let tmp = tempfile::tempdir().unwrap();
    let p = pki(tmp.path());
    let main = format!(
        "smtpd_tls_security_level = may\nsmtpd_tls_cert_file = {}\nsmtpd_tls_key_file = {}\n\
         smtpd_tls_received_header = yes\n",
        p.cert.display(),
        p.key.display()
    );
    let inst = Inst::start_with(&main, "", Some("-o smtpd_tls_wrappermode=yes"));
    let mut c = inst.connect();
    let ehlo = c.expect("EHLO client.example", "250");
    assert!(ehlo.contains("250-STARTTLS"), "{ehlo}\n{}", inst.log());
    // Pipelined plaintext after STARTTLS is thrown away (CVE-2011-0411).
    c.send("STARTTLS\r\nRSET\r\n");
    assert_eq!(c.reply(), "220 2.0.0 Ready to start TLS\r\n");
    let sock = c.s.into_inner();
    let mut t = Client {
        s: BufReader::new(tls_client(&p, sock)),
    };
    let ehlo = t.expect("EHLO client.example", "250");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    // The RSET pipelined before the handshake was not executed: the next
    // reply answers MAIL.
    t.expect("MAIL FROM:<a@origin.example>", "250 2.1.0");
    t.expect("RCPT TO:<v1@virt.test>", "250 2.1.5");
    let r = t.data("Subject: tls\r\n\r\nsecret\r\n");
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    t.expect("QUIT", "221");
    let m = inst.wait_mail("v1", 1).remove(0);
    assert!(m.contains("with ESMTPS id"), "{m}");
    assert!(m.contains("\t(using TLSv1.3 with cipher TLS_"), "{m}");

    // Implicit TLS (port 465 style).
    let sock = TcpStream::connect(("127.0.0.1", inst.port2)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut t = Client {
        s: BufReader::new(tls_client(&p, sock)),
    };
    let g = t.reply();
    assert!(
        g.starts_with("220 mx.test.example ESMTP"),
        "{g}\n{}",
        inst.log()
    );
    let ehlo = t.expect("EHLO client.example", "250");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    t.expect("MAIL FROM:<a@origin.example>", "250 2.1.0");
    t.expect("RCPT TO:<v2@virt.test>", "250 2.1.5");
    // 2 MB in one go, the end of data and QUIT right behind it.
    t.expect("DATA", "354");
    let body = format!("Subject: wrapped\r\n\r\n{}", "y".repeat(998) + "\r\n").repeat(2000);
    t.send(&format!("{body}.\r\nQUIT\r\n"));
    let r = t.reply();
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    assert!(t.reply().starts_with("221"));
    let m = inst.wait_mail("v2", 1).remove(0);
    assert!(m.contains("with ESMTPS id"), "{m}");
    assert!(m.len() > 1_990_000, "{}", m.len());
}

#[test]
fn bad_certificate_path_is_fatal_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("main.cf"),
        "smtpd_tls_security_level = may\nsmtpd_tls_cert_file = /nonexistent/smtpd.pem\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_smtpd"))
        .env("MAIL_CONFIG", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fatal:") && err.contains("/nonexistent/smtpd.pem"),
        "{err}"
    );
}

#[test]
fn submission_needs_starttls_then_auth() {
    testkit::need_mail_owner();
    use base64::Engine;
    let tmp = tempfile::tempdir().unwrap();
    let p = pki(tmp.path());
    std::fs::write(
        tmp.path().join("passwd"),
        "alice@virt.test:{PLAIN}secret:::::\n",
    )
    .unwrap();
    let main = format!(
        "smtpd_tls_cert_file = {}\nsmtpd_tls_key_file = {}\nmynetworks = 192.0.2.0/24\n\
         auth_passdb = passwd-file:{}\nauth_failure_delay = 0\n",
        p.cert.display(),
        p.key.display(),
        tmp.path().join("passwd").display()
    );
    let inst = Inst::start(
        &main,
        "-o syslog_name=postfix/submission -o smtpd_tls_security_level=encrypt \
         -o smtpd_sasl_auth_enable=yes -o smtpd_tls_auth_only=yes \
         -o smtpd_client_restrictions=permit_sasl_authenticated,reject",
    );
    let mut c = inst.connect();
    let ehlo = c.expect("EHLO client.example", "250");
    assert!(
        ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );
    c.expect(
        "MAIL FROM:<alice@virt.test>",
        "530 5.7.0 Must issue a STARTTLS command first",
    );
    c.expect("STARTTLS", "220");
    let mut t = Client {
        s: BufReader::new(tls_client(&p, c.s.into_inner())),
    };
    let ehlo = t.expect("EHLO client.example", "250");
    assert!(ehlo.contains("250-AUTH PLAIN LOGIN"), "{ehlo}");
    // Without AUTH the client restrictions refuse (at RCPT: smtpd_delay_reject).
    t.expect("MAIL FROM:<alice@virt.test>", "250");
    t.expect("RCPT TO:<v1@virt.test>", "554 5.7.1");
    t.expect("RSET", "250");
    let b64 = base64::engine::general_purpose::STANDARD;
    let bad = b64.encode(b"\0alice@virt.test\0wrong");
    t.expect(&format!("AUTH PLAIN {bad}"), "535 5.7.8");
    let good = b64.encode(b"\0alice@virt.test\0secret");
    t.expect(&format!("AUTH PLAIN {good}"), "235 2.7.0");
    t.expect("MAIL FROM:<alice@virt.test>", "250 2.1.0");
    t.expect("RCPT TO:<v1@virt.test>", "250 2.1.5");
    let r = t.data("Subject: submitted\r\n\r\nhi\r\n");
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    let qid = Client::<TcpStream>::queue_id(&r);
    t.expect("QUIT", "221");
    let m = inst.wait_mail("v1", 1).remove(0);
    assert!(m.contains("with ESMTPSA id"), "{m}");
    let log = inst.log();
    assert!(
        log.contains("postfix/submission/smtpd[")
            && log.contains(&format!(
            "{qid}: client=localhost[127.0.0.1], sasl_method=PLAIN, sasl_username=alice@virt.test"
        )),
        "{log}"
    );
    assert!(
        log.contains("warning: localhost[127.0.0.1]: SASL PLAIN authentication failed"),
        "{log}"
    );
}

#[test]
fn connection_count_limit_through_anvil() {
    testkit::need_mail_owner();
    let inst = Inst::start(
        "mynetworks = 192.0.2.0/24\nsmtpd_client_connection_count_limit = 2\n",
        "",
    );
    let _a = inst.connect();
    let _b = inst.connect();
    let s = TcpStream::connect(("127.0.0.1", inst.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut c = Client {
        s: BufReader::new(s),
    };
    assert_eq!(
        c.reply(),
        "421 4.7.0 mx.test.example: Too many connections from 127.0.0.1\r\n"
    );
    drop(_a);
    // The slot frees once anvil hears of the disconnect.
    assert!(wait_until(Duration::from_secs(10), || {
        let s = TcpStream::connect(("127.0.0.1", inst.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut c = Client {
            s: BufReader::new(s),
        };
        c.reply().starts_with("220")
    }));
}

#[test]
fn sendmail_bs_speaks_smtp_on_stdin() {
    testkit::need_mail_owner();
    let inst = Inst::start("", "");
    let mut child = Command::new(bin_dir().join("sendmail"))
        .arg("-bs")
        .env("MAIL_CONFIG", &inst.config_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"EHLO me\r\nMAIL FROM:<root>\r\nRCPT TO:<v2@virt.test>\r\nDATA\r\n\
              Subject: bs\r\n\r\nvia -bs\r\n.\r\nQUIT\r\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("220 mx.test.example ESMTP"), "{text}");
    assert!(
        text.contains("\r\n250 2.0.0 Ok: queued\r\n221 2.0.0 Bye\r\n"),
        "{text}"
    );
    let m = inst.wait_mail("v2", 1).remove(0);
    assert!(m.contains("Subject: bs\n") && m.contains("via -bs"), "{m}");
}

#[test]
fn whole_session_sent_at_once_then_half_closed() {
    testkit::need_mail_owner();
    // smtpd_forbid_unauth_pipelining would refuse this client; Postfix's
    // own smtp-source style clients wait, netcat-style ones do not.
    let inst = Inst::start("smtpd_forbid_unauth_pipelining = no\n", "");
    let s = TcpStream::connect(("127.0.0.1", inst.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut w = s.try_clone().unwrap();
    w.write_all(
        b"EHLO c.example\r\nMAIL FROM:<a@origin.example>\r\nRCPT TO:<v1@virt.test>\r\nDATA\r\n\
          Subject: all at once\r\n\r\nbody\r\n.\r\nQUIT\r\n",
    )
    .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut all = String::new();
    BufReader::new(s).read_to_string(&mut all).unwrap();
    assert!(all.contains("250 2.0.0 Ok: queued as "), "{all}");
    assert!(all.ends_with("221 2.0.0 Bye\r\n"), "{all}");
    assert_eq!(inst.wait_mail("v1", 1).len(), 1);
}

/// smtpd's peak memory (VmHWM, kB) among the processes serving `port`.
fn smtpd_hwm(port: u16) -> u64 {
    let needle = format!("127.0.0.1:{port}");
    let mut best = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd);
        if !cmd.contains("smtpd") || !cmd.contains(&needle) {
            continue;
        }
        let st = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
        for l in st.lines() {
            if let Some(v) = l.strip_prefix("VmHWM:") {
                let kb: u64 = v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
                best = best.max(kb);
            }
        }
    }
    best
}

#[test]
fn big_message_streams_with_bounded_memory() {
    testkit::need_mail_owner();
    let inst = Inst::start("message_size_limit = 0\n", "");
    let mut c = inst.connect();
    c.expect("EHLO c.example", "250");
    c.expect("MAIL FROM:<a@origin.example>", "250");
    c.expect("RCPT TO:<v1@virt.test>", "250");
    c.expect("DATA", "354");
    let before = smtpd_hwm(inst.port);
    let line = format!("{}\r\n", "x".repeat(998));
    let chunk = line.repeat(1000);
    c.send("Subject: big\r\n\r\n");
    // 10 MB of body.
    for _ in 0..10 {
        c.send(&chunk);
    }
    c.send(".\r\n");
    let r = c.reply();
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    let after = smtpd_hwm(inst.port);
    assert!(
        after < before + 4096,
        "smtpd grew from {before} kB to {after} kB for a 10 MB message"
    );
    let m = inst.wait_mail("v1", 1).remove(0);
    assert!(m.len() > 9_990_000, "{}", m.len());
}

#[test]
fn access_hold_and_discard() {
    testkit::need_mail_owner();
    let inst = Inst::start(
        "smtpd_sender_restrictions = check_sender_access \
         inline:{{hold@origin.example=HOLD}, {drop@origin.example=DISCARD}}\n",
        "",
    );
    let mut c = inst.connect();
    c.expect("EHLO c.example", "250");
    for who in ["hold", "drop"] {
        c.expect(&format!("MAIL FROM:<{who}@origin.example>"), "250");
        c.expect("RCPT TO:<v1@virt.test>", "250");
        let r = c.data(&format!("Subject: {who}\r\n\r\nx\r\n"));
        assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    }
    c.expect("QUIT", "221");
    let hold = inst.base.join("spool/hold");
    assert!(
        wait_until(Duration::from_secs(10), || std::fs::read_dir(&hold)
            .map(|d| d.count())
            .unwrap_or(0)
            == 1),
        "nothing in hold/: {}",
        inst.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        inst.maildir("v1").is_empty(),
        "held or discarded mail was delivered"
    );
    let log = inst.log();
    assert!(
        log.contains(": hold: RCPT from localhost[127.0.0.1]: <hold@origin.example>"),
        "{log}"
    );
    assert!(
        log.contains(": discard: RCPT from localhost[127.0.0.1]: <drop@origin.example>"),
        "{log}"
    );
}

#[test]
fn client_refused_at_connect_without_delay_reject() {
    testkit::need_mail_owner();
    let inst = Inst::start(
        "smtpd_delay_reject = no\nsmtpd_client_restrictions = reject\n",
        "",
    );
    let s = TcpStream::connect(("127.0.0.1", inst.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut c = Client {
        s: BufReader::new(s),
    };
    let g = c.reply();
    assert!(g.starts_with("554 5.7.1 "), "{g}");
    c.expect(
        "EHLO c.example",
        "503 5.7.0 Error: access denied for localhost[127.0.0.1]",
    );
    c.expect("QUIT", "221");
    let log = inst.log();
    assert!(
        log.contains("NOQUEUE: reject: CONNECT from localhost[127.0.0.1]: 554 5.7.1 "),
        "{log}"
    );
}

#[test]
fn chrooted_smtpd_serves_with_tls_and_auth() {
    testkit::need_mail_owner();
    if !nix::unistd::geteuid().is_root() {
        testkit::skip("needs root because it chroots");
        return;
    }
    use base64::Engine;
    let tmp = tempfile::tempdir().unwrap();
    let p = pki(tmp.path());
    std::fs::write(tmp.path().join("passwd"), "bob@virt.test:{PLAIN}pw:::::\n").unwrap();
    let main = format!(
        "smtpd_tls_security_level = may\nsmtpd_tls_cert_file = {}\nsmtpd_tls_key_file = {}\n\
         smtpd_sasl_auth_enable = yes\nauth_passdb = passwd-file:{}\n",
        p.cert.display(),
        p.key.display(),
        tmp.path().join("passwd").display()
    );
    let inst = Inst::start_full(&main, "", None, "y");
    let mut c = inst.connect();
    c.expect("EHLO c.example", "250");
    c.expect("STARTTLS", "220");
    let mut t = Client {
        s: BufReader::new(tls_client(&p, c.s.into_inner())),
    };
    t.expect("EHLO c.example", "250");
    let auth = base64::engine::general_purpose::STANDARD.encode(b"\0bob@virt.test\0pw");
    t.expect(&format!("AUTH PLAIN {auth}"), "235");
    t.expect("MAIL FROM:<bob@virt.test>", "250");
    t.expect("RCPT TO:<v1@virt.test>", "250");
    let r = t.data("Subject: jailed\r\n\r\nx\r\n");
    assert!(
        r.starts_with("250 2.0.0 Ok: queued as "),
        "{r}\n{}",
        inst.log()
    );
    let m = inst.wait_mail("v1", 1).remove(0);
    assert!(m.contains("with ESMTPSA id"), "{m}");
}

/// A private Dovecot with only its auth service, a passwd-file passdb
/// holding `users` (`name:{PLAIN}password` lines); its auth-client socket
/// (the one Postfix's smtpd_sasl_path names) is `{dir}/run/auth-client`.
fn start_dovecot_auth(users: &str) -> Dovecot {
    // No protocols: only the auth service runs. No TLS between client
    // and smtpd here, so cleartext mechanisms must be allowed. No auth
    // penalty (mode 0 for its anvil listener): after a failure Dovecot
    // would hold every later request from 127.0.0.1 for seconds, as it
    // would Postfix's. The passdb file is written before the first
    // lookup (Dovecot reads it on demand).
    Dovecot::start(
        "protocols =\nssl = no\n\
         disable_plaintext_auth = no\nauth_mechanisms = plain login\n\
         auth_failure_delay = 0\nauth_verbose = yes\n\
         passdb {\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {dir}/users\n}\n\
         userdb {\n  driver = static\n  args = uid=65534 gid=65534 home=/tmp\n}\n\
         service auth {\n  unix_listener auth-client {\n    mode = 0666\n  }\n}\n\
         service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n",
        |d| {
            std::fs::write(d.join("users"), users).unwrap();
            Ready::Socket(d.join("run/auth-client"))
        },
    )
}

#[test]
fn smtpd_authenticates_through_a_real_dovecot() {
    const TEST: &str = "smtpd_authenticates_through_a_real_dovecot";
    testkit::need_mail_owner();
    if !nix::unistd::geteuid().is_root() {
        testkit::skip("needs root because it starts a private Dovecot as root");
        return;
    }
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let dovecot = start_dovecot_auth("alice@virt.test:{PLAIN}secret\n");
    println!("{TEST}: Dovecot {}", dovecot.version());
    // Our own auth service is in master.cf but unused: smtpd_sasl_path
    // names Dovecot's socket by its absolute path.
    let main = format!(
        "mynetworks = 192.0.2.0/24\nsmtpd_sasl_auth_enable = yes\n\
         smtpd_sasl_type = dovecot\nsmtpd_sasl_path = {}\n\
         smtpd_client_restrictions = permit_sasl_authenticated, reject\n\
         smtpd_error_sleep_time = 0\n",
        dovecot.path().join("run/auth-client").display()
    );
    let inst = Inst::start(&main, "");
    let mut c = inst.connect();
    let ehlo = c.expect("EHLO client.example", "250");
    assert!(ehlo.contains("250-AUTH PLAIN LOGIN"), "{ehlo}");
    // Without AUTH the client restrictions refuse (at RCPT).
    c.expect("MAIL FROM:<alice@virt.test>", "250");
    c.expect("RCPT TO:<v1@virt.test>", "554 5.7.1");
    c.expect("RSET", "250");
    let bad = b64.encode(b"\0alice@virt.test\0wrong");
    c.expect(&format!("AUTH PLAIN {bad}"), "535 5.7.8");
    let good = b64.encode(b"\0alice@virt.test\0secret");
    c.expect(&format!("AUTH PLAIN {good}"), "235 2.7.0");
    c.expect("MAIL FROM:<alice@virt.test>", "250 2.1.0");
    c.expect("RCPT TO:<v1@virt.test>", "250 2.1.5");
    let r = c.data("Subject: through dovecot\r\n\r\nhi\r\n");
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    let qid = Client::<TcpStream>::queue_id(&r);
    c.expect("QUIT", "221");

    // AUTH LOGIN: Dovecot's challenges ("Username:", "Password:") pass
    // through base64-encoded as 334 replies.
    let mut c = inst.connect();
    c.expect("EHLO client.example", "250");
    let r = c.expect("AUTH LOGIN", "334 ");
    assert_eq!(r.trim_end(), format!("334 {}", b64.encode("Username:")));
    let r = c.expect(&b64.encode("alice@virt.test"), "334 ");
    assert_eq!(r.trim_end(), format!("334 {}", b64.encode("Password:")));
    c.expect(&b64.encode("wrong"), "535 5.7.8");
    c.expect(
        &format!("AUTH LOGIN {}", b64.encode("alice@virt.test")),
        "334 ",
    );
    c.expect(&b64.encode("secret"), "235 2.7.0");
    c.expect("MAIL FROM:<alice@virt.test>", "250 2.1.0");
    c.expect("RCPT TO:<v2@virt.test>", "250 2.1.5");
    let r = c.data("Subject: login\r\n\r\nhi\r\n");
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    c.expect("QUIT", "221");

    let m = inst.wait_mail("v1", 1).remove(0);
    assert!(m.contains("with ESMTPA id"), "{m}");
    inst.wait_mail("v2", 1);
    let log = inst.log();
    assert!(
        log.contains(&format!(
            "{qid}: client=localhost[127.0.0.1], sasl_method=PLAIN, sasl_username=alice@virt.test"
        )) && log.contains("sasl_method=LOGIN, sasl_username=alice@virt.test")
            && log.contains("warning: localhost[127.0.0.1]: SASL PLAIN authentication failed")
            && log.contains("warning: localhost[127.0.0.1]: SASL LOGIN authentication failed"),
        "{log}"
    );
    // The failures were Dovecot's verdicts (auth_verbose).
    let dlog = dovecot.log();
    assert!(
        dlog.contains("passwd-file(alice@virt.test,127.0.0.1)")
            && dlog.contains("Password mismatch")
            && !dlog.contains("Error:")
            && !dlog.contains("Fatal:"),
        "{dlog}"
    );
}

/// How many times qmgr took a message into the active queue.
fn activations(log: &str, qid: &str) -> usize {
    log.matches(&format!("{qid}: from=<")).count()
}

#[test]
fn etrn_flushes_only_that_domains_deferred_mail() {
    testkit::need_mail_owner();
    // Relay domains go to the `relay` transport, which this instance
    // lacks: their mail is deferred, and stays so for an hour.
    let inst = Inst::start_with(
        "relay_domains = a.example b.example\nmynetworks = 127.0.0.0/8\n\
         minimal_backoff_time = 3600s\nmaximal_backoff_time = 4000s\n\
         smtpd_etrn_restrictions = check_etrn_access inline:{ {b.example=REJECT} }, \
         permit_mynetworks, reject\n",
        "",
        Some("-o mynetworks=192.0.2.0/24"),
    );
    let mut c = inst.connect();
    c.expect("EHLO client.example", "250");
    let mut qids = Vec::new();
    for rcpt in ["u@a.example", "u@b.example"] {
        c.expect("MAIL FROM:<s@origin.example>", "250");
        c.expect(&format!("RCPT TO:<{rcpt}>"), "250");
        let r = c.data("Subject: later\r\n\r\nbody\r\n");
        assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
        qids.push(Client::<TcpStream>::queue_id(&r));
    }
    let (qa, qb) = (qids[0].clone(), qids[1].clone());
    for q in [&qa, &qb] {
        assert!(
            wait_until(Duration::from_secs(20), || inst.log().lines().any(|l| l
                .contains(&format!("{q}: to=<"))
                && l.contains("status=deferred"))),
            "{q} not deferred:\n{}",
            inst.log()
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let before = inst.log();
    assert_eq!(
        (activations(&before, &qa), activations(&before, &qb)),
        (1, 1)
    );
    // smtpd_etrn_restrictions: the table refuses b.example.
    c.expect(
        "ETRN b.example",
        "554 5.7.1 <b.example>: Etrn command rejected: Access denied",
    );
    // Allowed by permit_mynetworks, but not in fast_flush_domains.
    assert_eq!(
        c.cmd("ETRN c.example"),
        "459 <c.example>: service unavailable\r\n"
    );
    assert_eq!(c.cmd("ETRN a.example"), "250 Queuing started\r\n");
    assert!(
        wait_until(Duration::from_secs(20), || activations(&inst.log(), &qa)
            == 2),
        "a.example's message was not retried:\n{}",
        inst.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    let log = inst.log();
    assert_eq!(
        activations(&log, &qb),
        1,
        "b.example's mail must wait:\n{log}"
    );
    assert!(
        log.contains("a.example: flush requested: 1 deferred messages"),
        "{log}"
    );
    assert!(
        log.contains("reject: ETRN from localhost[127.0.0.1]: 554 5.7.1 <b.example>"),
        "{log}"
    );
    // The same site again at once: answered, coalesced.
    assert_eq!(c.cmd("ETRN a.example"), "250 Queuing started\r\n");
    assert!(
        wait_until(Duration::from_secs(5), || inst
            .log()
            .contains("a.example: flush requested again within 60s: coalesced")),
        "{}",
        inst.log()
    );
    assert_eq!(activations(&inst.log(), &qa), 2);
    c.expect("QUIT", "221");
    // A client outside mynetworks meets `reject`.
    let mut c = Client::connect(SocketAddr::from(([127, 0, 0, 1], inst.port2)));
    c.expect("EHLO client.example", "250");
    c.expect(
        "ETRN a.example",
        "554 5.7.1 <a.example>: Etrn command rejected: Access denied",
    );
}

#[test]
fn endless_noop_and_rset_end_with_421() {
    testkit::need_mail_owner();
    let inst = Inst::start(
        "smtpd_junk_command_limit = 3\nsmtpd_hard_error_limit = 3\nsmtpd_soft_error_limit = 10\n",
        "",
    );
    let mut c = inst.connect();
    // HELO, then three more junk commands are free; the next three are
    // errors, and the third error is the hard limit.
    c.expect("HELO client.example", "250");
    for cmd in ["NOOP", "RSET", "NOOP", "RSET", "NOOP", "RSET"] {
        c.expect(cmd, "250 2.0.0 Ok");
    }
    assert_eq!(
        c.reply(),
        "421 4.7.0 mx.test.example Error: too many errors\r\n"
    );
    assert_eq!(c.reply(), "", "the connection is closed");
}

#[test]
fn message_and_auth_rate_limits_through_anvil() {
    testkit::need_mail_owner();
    use base64::Engine;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("passwd"),
        "alice@virt.test:{PLAIN}secret:::::\n",
    )
    .unwrap();
    // 127.0.0.1 is in mynetworks, the default exceptions: none here.
    let main = format!(
        "smtpd_client_event_limit_exceptions =\nsmtpd_client_message_rate_limit = 2\n\
         smtpd_client_auth_rate_limit = 2\nsmtpd_sasl_auth_enable = yes\n\
         auth_passdb = passwd-file:{}\nauth_failure_delay = 0\n",
        tmp.path().join("passwd").display()
    );
    let inst = Inst::start_with(
        &main,
        "",
        Some("-o smtpd_sasl_security_options=noanonymous,noplaintext"),
    );
    let mut c = inst.connect();
    let ehlo = c.expect("EHLO client.example", "250");
    assert!(ehlo.contains("250-AUTH PLAIN LOGIN"), "{ehlo}");
    let b64 = base64::engine::general_purpose::STANDARD;
    let bad = b64.encode(b"\0alice@virt.test\0wrong");
    c.expect(&format!("AUTH PLAIN {bad}"), "535 5.7.8");
    c.expect(&format!("AUTH PLAIN {bad}"), "535 5.7.8");
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {bad}")),
        "450 4.7.1 Error: too many AUTH commands from 127.0.0.1\r\n"
    );
    c.expect("MAIL FROM:<a@origin.example>", "250 2.1.0");
    c.expect("RSET", "250");
    c.expect("MAIL FROM:<a@origin.example>", "250 2.1.0");
    c.expect("RSET", "250");
    assert_eq!(
        c.cmd("MAIL FROM:<a@origin.example>"),
        "450 4.7.1 Error: too much mail from 127.0.0.1\r\n"
    );
    // Counted per client across connections.
    let mut c = inst.connect();
    c.expect("EHLO client.example", "250");
    c.expect(
        "MAIL FROM:<a@origin.example>",
        "450 4.7.1 Error: too much mail",
    );
    let log = inst.log();
    assert!(
        log.contains("warning: Message delivery request rate limit exceeded: 3 from localhost[127.0.0.1] for service ")
            && log.contains("warning: AUTH command rate limit exceeded: 3 from localhost[127.0.0.1] for service "),
        "{log}"
    );
    // noplaintext: neither PLAIN nor LOGIN, so no AUTH at all.
    let mut c = Client::connect(SocketAddr::from(([127, 0, 0, 1], inst.port2)));
    let ehlo = c.expect("EHLO client.example", "250");
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    c.expect(
        &format!("AUTH PLAIN {bad}"),
        "503 5.5.1 Error: authentication not enabled",
    );
}

#[test]
fn end_of_data_restrictions_refuse_after_the_dot_and_queue_nothing() {
    testkit::need_mail_owner();
    let inst = Inst::start(
        "smtpd_end_of_data_restrictions = check_sender_access inline:{ {bad@origin.example=REJECT} }\n",
        "",
    );
    let mut c = inst.connect();
    c.expect("EHLO client.example", "250");
    c.expect("MAIL FROM:<bad@origin.example>", "250");
    c.expect("RCPT TO:<v1@virt.test>", "250");
    let r = c.data("Subject: refused\r\n\r\nnot wanted\r\n");
    assert_eq!(
        r,
        "554 5.7.1 <bad@origin.example>: Sender address rejected: Access denied\r\n"
    );
    c.expect("MAIL FROM:<good@origin.example>", "250");
    c.expect("RCPT TO:<v1@virt.test>", "250");
    let r = c.data("Subject: wanted\r\n\r\nyes\r\n");
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    c.expect("QUIT", "221");
    let mail = inst.wait_mail("v1", 1);
    std::thread::sleep(Duration::from_millis(500));
    let mail_now = inst.maildir("v1");
    assert_eq!(mail_now.len(), 1, "{mail:?}");
    assert!(mail_now[0].contains("Subject: wanted"));
    let log = inst.log();
    assert!(
        log.contains("reject: END-OF-MESSAGE from localhost[127.0.0.1]: 554 5.7.1"),
        "{log}"
    );
    let qdir = inst.base.join("spool");
    for q in ["incoming", "active", "deferred", "hold"] {
        let n = std::fs::read_dir(qdir.join(q))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(n, 0, "{q} is not empty");
    }
}
