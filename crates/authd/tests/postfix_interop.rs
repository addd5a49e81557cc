//! Interoperation with the real Postfix (issue 4's must-show): Debian's
//! Postfix smtpd, with `smtpd_sasl_type = dovecot`, authenticates users
//! through our auth service's socket.
//!
//! Our master and auth run from one temporary directory, a throw-away
//! Postfix instance (its own config_directory, queue_directory and
//! data_directory, smtpd on a free port of 127.0.0.1, nothing chrooted)
//! from another; an SMTP client then logs in to Postfix's port with right
//! and wrong passwords. Needs root (Postfix's master runs as root) and
//! Debian's postfix package; skipped with a message otherwise. Both
//! instances are stopped at the end, also when an assertion fails. The
//! system's own Postfix (/etc/postfix) is never touched.

// A test binary: helpers panic on setup failure as #[test] bodies do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;

const POSTFIX: &str = "/usr/sbin/postfix";
const POSTFIX_SMTPD: &str = "/usr/lib/postfix/sbin/smtpd";

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Why this test cannot run here: only when not root. A missing Debian
/// postfix package, binary or account fails the test instead.
fn skip_reason() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root because Postfix's master runs as root".into());
    }
    for f in [POSTFIX, POSTFIX_SMTPD] {
        testkit::need_file(Path::new(f), "Debian's postfix package");
    }
    let debian = Command::new("dpkg-query")
        .args(["-S", POSTFIX])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        debian,
        "{POSTFIX} is not from Debian's postfix package: run scripts/install-deps"
    );
    common::need_instance();
    None
}

/// A Debian Postfix instance in a directory of its own; stopped on drop.
struct Postfix {
    dir: PathBuf,
    port: u16,
    started: bool,
}

impl Postfix {
    fn new(dir: &Path, auth_socket: &Path) -> Postfix {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        for d in ["etc", "queue", "data"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        common::open_dir(dir);
        // master.lock and the other daemons' files.
        let pf = nix::unistd::User::from_name("postfix").unwrap().unwrap();
        nix::unistd::chown(&dir.join("data"), Some(pf.uid), Some(pf.gid)).unwrap();
        let d = dir.display();
        let main_cf = format!(
            "# Throw-away Postfix instance of authd's postfix_interop test.\n\
             compatibility_level = 3.6\n\
             queue_directory = {d}/queue\n\
             data_directory = {d}/data\n\
             maillog_file = {d}/maillog\n\
             maillog_file_prefixes = {d}\n\
             inet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\n\
             myhostname = interop.test\n\
             mydestination =\n\
             alias_maps =\n\
             alias_database =\n\
             smtpd_tls_security_level = none\n\
             smtpd_sasl_auth_enable = yes\n\
             smtpd_sasl_type = dovecot\n\
             smtpd_sasl_path = {sock}\n\
             smtpd_sasl_security_options = noanonymous\n",
            sock = auth_socket.display()
        );
        std::fs::write(dir.join("etc/main.cf"), main_cf).unwrap();
        // smtpd unchrooted, so that the absolute smtpd_sasl_path reaches our
        // socket; proxymap for local_recipient_maps, rewrite for addresses,
        // anvil for smtpd's connection counts, postlog for the log file.
        let master_cf = format!(
            "127.0.0.1:{port} inet n - n - - smtpd\n\
             proxymap  unix  - - n -    - proxymap\n\
             rewrite   unix  - - n -    - trivial-rewrite\n\
             anvil     unix  - - n -    1 anvil\n\
             postlog   unix-dgram n - n - 1 postlogd\n"
        );
        std::fs::write(dir.join("etc/master.cf"), master_cf).unwrap();
        Postfix {
            dir: dir.to_path_buf(),
            port,
            started: false,
        }
    }

    fn postfix(&self, arg: &str) -> std::process::Output {
        Command::new(POSTFIX)
            .arg("-c")
            .arg(self.dir.join("etc"))
            .arg(arg)
            .output()
            .unwrap()
    }

    fn start(&mut self) {
        let out = self.postfix("start");
        self.started = true;
        assert!(
            out.status.success(),
            "Debian's postfix start failed: {}{}\nmaillog:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        let port = self.port;
        assert!(
            common::wait_until(Duration::from_secs(15), || TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "Postfix's smtpd does not listen on {port}; maillog:\n{}",
            self.log()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }

    fn master_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("queue/pid/master.pid"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        if !self.started {
            return;
        }
        let pid = self.master_pid();
        let _ = self.postfix("stop");
        if let Some(pid) = pid {
            let p = nix::unistd::Pid::from_raw(pid);
            if !common::wait_until(Duration::from_secs(10), || {
                nix::sys::signal::kill(p, None).is_err()
            }) {
                let _ = self.postfix("abort");
                let _ = nix::sys::signal::kill(p, nix::sys::signal::SIGKILL);
            }
        }
    }
}

/// A line-at-a-time SMTP client.
struct Smtp {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Smtp {
    /// Connects and reads the greeting, which is returned beside.
    fn connect(port: u16) -> (Smtp, String) {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut c = Smtp {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        };
        let greeting = c.reply();
        (c, greeting)
    }

    /// One whole reply (all its lines); a read error or EOF is returned as
    /// text, so that the caller's assertion shows both logs.
    fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut l = String::new();
            match self.r.read_line(&mut l) {
                Ok(0) => return format!("{all}<EOF>"),
                Err(e) => return format!("{all}<read error: {e}>"),
                Ok(_) => {}
            }
            all.push_str(&l);
            if l.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    fn cmd(&mut self, line: &str) -> String {
        self.w.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        self.reply()
    }
}

#[test]
fn postfix_smtpd_authenticates_through_our_auth_socket() {
    if let Some(r) = skip_reason() {
        testkit::skip(r);
        return;
    }
    let top = tempfile::tempdir().unwrap();
    let base = top.path().canonicalize().unwrap();
    // Postfix's smtpd runs as `postfix` and must reach our socket.
    common::open_dir(&base);
    let ours_dir = base.join("ours");
    std::fs::create_dir(&ours_dir).unwrap();
    common::open_dir(&ours_dir);
    let mut ours = common::Ours::new(&ours_dir, "auth_failure_delay = 1s\n");
    ours.write_passwd(
        "alice@example.com:{SHA512-CRYPT}$6$saltsalt$8RWsOfwR6M6PpnoeQiEiWzNTPo1f0HjVYjDnLZhGx16aBFRkeqiHAzfXP/LgrOWMBMXqiU2pLrXsSOHNUyUm91:::::\n\
         bob:{PLAIN}hunter2\n",
    );
    ours.start();
    let mut postfix = Postfix::new(&base.join("postfix"), &ours.socket());
    postfix.start();
    let context = |what: &str| {
        format!(
            "{what}\n--- Postfix maillog:\n{}\n--- our maillog:\n{}",
            postfix.log(),
            ours.log()
        )
    };

    // EHLO shows the mechanisms from our MECH lines.
    let (mut c, greeting) = Smtp::connect(postfix.port);
    assert!(greeting.starts_with("220 "), "{}", context(&greeting));
    let ehlo = c.cmd("EHLO client.test");
    assert!(
        ehlo.lines()
            .any(|l| l.starts_with("250-AUTH ") || l.starts_with("250 AUTH "))
            && ehlo.contains("PLAIN")
            && ehlo.contains("LOGIN"),
        "{}",
        context(&ehlo)
    );
    // Right password, PLAIN with an initial response: 235.
    let r = c.cmd(&format!("AUTH PLAIN {}", b64(b"\0alice@example.com\0x")));
    assert!(r.starts_with("235 "), "{}", context(&r));
    c.cmd("QUIT");

    // Wrong password: 535.
    let (mut c, greeting) = Smtp::connect(postfix.port);
    assert!(greeting.starts_with("220 "), "{}", context(&greeting));
    c.cmd("EHLO client.test");
    let r = c.cmd(&format!(
        "AUTH PLAIN {}",
        b64(b"\0alice@example.com\0wrong")
    ));
    assert!(r.starts_with("535 "), "{}", context(&r));
    // Unknown user: 535 too.
    let r = c.cmd(&format!("AUTH PLAIN {}", b64(b"\0mallory\0x")));
    assert!(r.starts_with("535 "), "{}", context(&r));
    c.cmd("QUIT");

    // LOGIN, through CONT challenges; and PLAIN without an initial
    // response, through an empty CONT ("334 ").
    let (mut c, greeting) = Smtp::connect(postfix.port);
    assert!(greeting.starts_with("220 "), "{}", context(&greeting));
    c.cmd("EHLO client.test");
    let r = c.cmd("AUTH LOGIN");
    assert_eq!(r, "334 VXNlcm5hbWU6\r\n", "{}", context(&r));
    let r = c.cmd(&b64(b"bob"));
    assert_eq!(r, "334 UGFzc3dvcmQ6\r\n", "{}", context(&r));
    let r = c.cmd(&b64(b"hunter2"));
    assert!(r.starts_with("235 "), "{}", context(&r));
    c.cmd("QUIT");
    let (mut c, greeting) = Smtp::connect(postfix.port);
    assert!(greeting.starts_with("220 "), "{}", context(&greeting));
    c.cmd("EHLO client.test");
    let r = c.cmd("AUTH PLAIN");
    assert!(r.starts_with("334"), "{}", context(&r));
    let r = c.cmd(&b64(b"\0bob\0hunter2"));
    assert!(r.starts_with("235 "), "{}", context(&r));
    c.cmd("QUIT");

    // Both logs tell the story.
    assert!(
        ours.wait_log(
            "smtp: PLAIN authentication succeeded for user=<alice@example.com> rip=127.0.0.1"
        ),
        "{}",
        context("no success line in our log")
    );
    assert!(
        ours.wait_log(
            "warning: smtp: PLAIN authentication failed for user=<alice@example.com> rip=127.0.0.1"
        ),
        "{}",
        context("no failure line in our log")
    );
    assert!(
        common::wait_until(Duration::from_secs(10), || postfix
            .log()
            .contains("SASL PLAIN authentication failed")),
        "{}",
        context("no failure line in Postfix's log")
    );
    println!("{}", context("postfix_interop: logs"));
}
