//! Issue 15, milters: Debian's OpenDKIM signs mail submitted through
//! submission (a second OpenDKIM in test mode verifies the signature),
//! rspamd rejects GTUBE and passes a clean message, a milter that is down
//! leaves the decision to milter_default_action, and non_smtpd_milters
//! sign mail from sendmail.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::filters::Smtp;
use crate::util::{PASSWORD, SmtpInstance, SmtpSetup, need_smtp};
use testkit::{free_port, wait_until};

/// A private OpenDKIM signing for virt.test with a fresh test key.
struct OpenDkim {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl OpenDkim {
    fn start() -> OpenDkim {
        testkit::need_program("opendkim", "opendkim");
        testkit::need_program("opendkim-genkey", "opendkim-tools");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let out = Command::new("opendkim-genkey")
            .args([
                "-D",
                &d.display().to_string(),
                "-d",
                "virt.test",
                "-s",
                "test",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "opendkim-genkey: {out:?}");
        // The TXT record as TestPublicKeys wants it: "name value".
        let txt = std::fs::read_to_string(d.join("test.txt")).unwrap();
        let mut record = String::new();
        for (i, part) in txt.split('"').enumerate() {
            if i % 2 == 1 {
                record.push_str(part);
            }
        }
        std::fs::write(
            d.join("keys"),
            format!("test._domainkey.virt.test {record}\n"),
        )
        .unwrap();
        let port = free_port();
        std::fs::write(
            d.join("sign.conf"),
            format!(
                "Mode sv\nSyslog no\nSocket inet:{port}@127.0.0.1\nDomain virt.test\n\
                 Selector test\nKeyFile {}/test.private\nCanonicalization relaxed/relaxed\n\
                 RequireSafeKeys no\nBackground no\nPidFile {}/pid\nTestPublicKeys {}/keys\n",
                d.display(),
                d.display(),
                d.display()
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("verify.conf"),
            format!(
                "Mode v\nSyslog no\nTestPublicKeys {}/keys\nRequireSafeKeys no\n",
                d.display()
            ),
        )
        .unwrap();
        let child = Command::new("opendkim")
            .arg("-f")
            .arg("-x")
            .arg(d.join("sign.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(
            wait_until(Duration::from_secs(20), || TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "opendkim did not start on port {port}"
        );
        OpenDkim { child, port, dir }
    }

    /// opendkim's own verifier on one message: its report line.
    fn verify(&self, msg: &[u8]) -> String {
        let f = self.dir.path().join("check.eml");
        std::fs::write(&f, msg).unwrap();
        let out = Command::new("opendkim")
            .arg("-x")
            .arg(self.dir.path().join("verify.conf"))
            .arg("-t")
            .arg(&f)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    }
}

impl Drop for OpenDkim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn swaks_submission(s: &SmtpInstance, subject: &str) {
    testkit::need_program("swaks", "swaks");
    let ca = s.pki.as_ref().unwrap().ca.display().to_string();
    let out = Command::new("swaks")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &s.submission_port.to_string(),
        ])
        .args(["--from", "alice@virt.test", "--to", "bob@virt.test"])
        .args([
            "--h-From",
            "Alice <alice@virt.test>",
            "--h-Subject",
            subject,
        ])
        .args(["--ehlo", "client.test", "--timeout", "30"])
        .args(["--tls", "--tls-verify", "--tls-ca-path", &ca])
        .args(["--auth", "PLAIN", "--auth-user", "alice@virt.test"])
        .args(["--auth-password", PASSWORD])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "swaks failed:\n{}{}\nmaillog:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.inst.log()
    );
}

#[test]
fn filters_opendkim_signs_submitted_mail() {
    need_smtp();
    let dkim = OpenDkim::start();
    let s = SmtpSetup::new()
        .submission()
        .main(&format!("smtpd_milters = inet:127.0.0.1:{}", dkim.port))
        .start();
    swaks_submission(&s, "signed by opendkim");
    let msgs = s.wait_mail("bob", 1);
    let msg = &msgs[0];
    let text = String::from_utf8_lossy(msg);
    let head = crate::util::header_block(msg);
    assert!(
        head.contains("DKIM-Signature: v=1;") && head.contains("d=virt.test"),
        "no signature:\n{text}\nmaillog:\n{}",
        s.inst.log()
    );
    // The signature sits above our Received header, as with Postfix.
    assert!(
        text.find("DKIM-Signature:").unwrap() < text.find("Received:").unwrap(),
        "{text}"
    );
    let report = dkim.verify(msg);
    assert!(
        report.contains("verification") && report.contains("succeeded"),
        "opendkim -t: {report}\n{text}"
    );
    // The verifier can fail: a changed body does not verify.
    let tampered = text.replace("This is a test mailing", "This is a forged mailing");
    assert_ne!(tampered, text);
    let report = dkim.verify(tampered.as_bytes());
    assert!(!report.contains("succeeded"), "{report}");
}

#[test]
fn filters_non_smtpd_milters_sign_sendmail_mail() {
    need_smtp();
    let dkim = OpenDkim::start();
    let s = SmtpSetup::new()
        .main(&format!("non_smtpd_milters = inet:127.0.0.1:{}", dkim.port))
        .start();
    let mut child = Command::new(crate::util::bin_dir().join("sendmail"))
        .args(["-C", &s.inst.config_dir.display().to_string()])
        .args(["-f", "alice@virt.test", "bob@virt.test"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"From: alice@virt.test\nTo: bob@virt.test\nSubject: local\n\nlocal mail\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let msgs = s.wait_mail("bob", 1);
    let report = dkim.verify(&msgs[0]);
    assert!(
        report.contains("succeeded"),
        "{report}\n{}\nmaillog:\n{}",
        String::from_utf8_lossy(&msgs[0]),
        s.inst.log()
    );
}

fn send_one(port: u16, subject: &str, body: &str) -> String {
    let (mut c, g) = Smtp::connect(port);
    assert!(g.starts_with("220"), "{g}");
    c.cmd("EHLO client.test");
    assert!(c.cmd("MAIL FROM:<sender@client.test>").starts_with("250"));
    let r = c.cmd("RCPT TO:<alice@virt.test>");
    if !r.starts_with("250") {
        // A milter refused at RCPT (smtpd asks them then, as Postfix).
        c.cmd("QUIT");
        return r;
    }
    let r = c.data(&format!(
        "From: sender@client.test\r\nTo: alice@virt.test\r\nSubject: {subject}\r\n\r\n{body}"
    ));
    c.cmd("QUIT");
    r
}

#[test]
fn filters_milter_down_default_action_decides() {
    need_smtp();
    let dead = free_port();
    let m = format!("smtpd_milters=inet:127.0.0.1:{dead}");
    let s = SmtpSetup::new()
        .o(&m)
        .service(&[&m, "milter_default_action=accept"])
        .service(&[&m, "milter_default_action=reject"])
        .service(&[&m, "milter_default_action=quarantine"])
        .start();
    // tempfail (the default): refused at RCPT already, nothing queued.
    let r = send_one(s.port, "tempfail", "x");
    assert!(
        r.starts_with("451 4.7.1"),
        "{r}\nmaillog:\n{}",
        s.inst.log()
    );
    let r = send_one(s.extra_ports[1], "reject", "x");
    assert!(r.starts_with("550 5.7.1"), "{r}");
    let r = send_one(s.extra_ports[0], "accept", "x");
    assert!(r.starts_with("250"), "{r}");
    s.wait_mail("alice", 1);
    let r = send_one(s.extra_ports[2], "quarantine", "x");
    assert!(r.starts_with("250"), "{r}");
    let held = s.inst.qdir.join("hold");
    assert!(
        wait_until(Duration::from_secs(10), || std::fs::read_dir(&held)
            .map(|d| d.count() == 1)
            .unwrap_or(false)),
        "nothing in hold/\nmaillog:\n{}",
        s.inst.log()
    );
    assert_eq!(s.maildir("alice").len(), 1);
    assert!(s.inst.log().contains("milter-hold"), "{}", s.inst.log());
}

/// A private rspamd whose proxy worker speaks the milter protocol.
struct Rspamd {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Rspamd {
    fn start() -> Rspamd {
        testkit::need_program("rspamd", "rspamd");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let port = free_port();
        let (normal, controller) = (free_port(), free_port());
        for sub in ["local.d", "override.d", "db", "run"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::write(
            d.join("override.d/worker-proxy.inc"),
            format!(
                "bind_socket = \"127.0.0.1:{port}\";\nmilter = yes;\ntimeout = 120s;\n\
                 upstream \"local\" {{\n  default = yes;\n  self_scan = yes;\n}}\n"
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("override.d/worker-normal.inc"),
            format!("bind_socket = \"127.0.0.1:{normal}\";\n"),
        )
        .unwrap();
        std::fs::write(
            d.join("override.d/worker-controller.inc"),
            format!("bind_socket = \"127.0.0.1:{controller}\";\n"),
        )
        .unwrap();
        std::fs::write(
            d.join("local.d/options.inc"),
            "dns { nameserver = [\"127.0.0.1:1\"]; }\nfilters = \"\";\n",
        )
        .unwrap();
        std::fs::write(d.join("local.d/redis.conf"), "").unwrap();
        std::fs::write(
            d.join("local.d/logging.inc"),
            "type = \"console\";\nlevel = \"error\";\n",
        )
        .unwrap();
        if nix::unistd::geteuid().is_root()
            && let Ok(Some(u)) = nix::unistd::User::from_name("_rspamd")
        {
            let _ = Command::new("chown")
                .args(["-R", &format!("{}:{}", u.uid, u.gid)])
                .arg(d)
                .status();
        }
        let mut cmd = Command::new("rspamd");
        cmd.arg("-f")
            .arg("-c")
            .arg("/etc/rspamd/rspamd.conf")
            .arg(format!("--var=LOCAL_CONFDIR={}", d.display()))
            .arg(format!("--var=DBDIR={}/db", d.display()))
            .arg(format!("--var=RUNDIR={}/run", d.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if nix::unistd::geteuid().is_root() {
            cmd.args(["-u", "_rspamd", "-g", "_rspamd"]);
        }
        let child = cmd.spawn().unwrap();
        // rspamd loads its rules first: slow on a busy machine.
        assert!(
            wait_until(Duration::from_secs(180), || TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "rspamd did not start on port {port}"
        );
        Rspamd {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Rspamd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

#[test]
fn filters_rspamd_rejects_gtube_and_passes_clean_mail() {
    need_smtp();
    let rs = Rspamd::start();
    let s = SmtpSetup::new()
        .main(&format!(
            "smtpd_milters = inet:127.0.0.1:{}\nmilter_default_action = tempfail",
            rs.port
        ))
        .start();
    let r = send_one(s.port, "spam", &format!("{GTUBE}\r\n"));
    // rspamd's own reply, code included, as Postfix passes it on.
    assert!(
        r.starts_with("554 5.7.1 ") && r.to_ascii_lowercase().contains("gtube"),
        "GTUBE: {r}\nmaillog:\n{}",
        s.inst.log()
    );
    let r = send_one(s.port, "clean", "Hello, this is an ordinary message.\r\n");
    assert!(
        r.starts_with("250"),
        "clean: {r}\nmaillog:\n{}",
        s.inst.log()
    );
    let msgs = s.wait_mail("alice", 1);
    let head = crate::util::header_block(&msgs[0]);
    assert!(head.contains("Subject: clean"), "{head}");
    assert!(s.inst.log().contains("milter-reject"), "{}", s.inst.log());
    assert!(Path::new(&s.inst.qdir).is_dir());
}

/// A scripted milter: refuses bob@virt.test at RCPT, adds X-Milter at end
/// of message. Returns its port; runs until the test process ends.
fn scripted_milter() -> u16 {
    use std::io::{Read, Write};
    fn packet(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).ok()?;
        let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).ok()?;
        let data = buf.split_off(1);
        Some((buf[0], data))
    }
    fn send(s: &mut TcpStream, cmd: u8, data: &[u8]) {
        let mut b = ((data.len() + 1) as u32).to_be_bytes().to_vec();
        b.push(cmd);
        b.extend_from_slice(data);
        let _ = s.write_all(&b);
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                while let Some((c, d)) = packet(&mut s) {
                    match c {
                        b'O' => {
                            let mut o = 6u32.to_be_bytes().to_vec();
                            o.extend_from_slice(&0x1ffu32.to_be_bytes());
                            o.extend_from_slice(&0u32.to_be_bytes());
                            send(&mut s, b'O', &o);
                        }
                        b'D' | b'A' => {}
                        b'Q' => return,
                        b'R' if d.starts_with(b"<bob@virt.test>") => {
                            send(&mut s, b'y', b"550 5.7.1 bob refused by milter\0")
                        }
                        b'E' => {
                            send(&mut s, b'h', b"X-Milter\0seen at end of message\0");
                            send(&mut s, b'c', &[]);
                        }
                        _ => send(&mut s, b'c', &[]),
                    }
                }
            });
        }
    });
    port
}

#[test]
fn filters_scripted_milter_refuses_at_rcpt_and_changes_at_end() {
    need_smtp();
    let port = scripted_milter();
    let s = SmtpSetup::new()
        .main(&format!("smtpd_milters = inet:127.0.0.1:{port}"))
        .start();
    let (mut c, g) = Smtp::connect(s.port);
    assert!(g.starts_with("220"), "{g}");
    c.cmd("EHLO client.test");
    assert!(c.cmd("MAIL FROM:<sender@client.test>").starts_with("250"));
    let r = c.cmd("RCPT TO:<bob@virt.test>");
    assert!(
        r.starts_with("550 5.7.1 bob refused by milter"),
        "{r}\nmaillog:\n{}",
        s.inst.log()
    );
    let r = c.cmd("RCPT TO:<alice@virt.test>");
    assert!(r.starts_with("250"), "{r}");
    let r = c.data("From: sender@client.test\r\nSubject: scripted\r\n\r\nHello.");
    assert!(r.starts_with("250"), "{r}");
    c.cmd("QUIT");
    let m = s.wait_mail("alice", 1);
    let head = crate::util::header_block(&m[0]);
    assert!(head.contains("X-Milter: seen at end of message"), "{head}");
    assert!(s.maildir("bob").is_empty());
}
