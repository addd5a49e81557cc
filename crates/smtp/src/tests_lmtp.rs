//! Our LMTP client against a real Dovecot LMTP server (Debian's
//! dovecot-core and dovecot-lmtpd, installed by scripts/install-deps): a
//! private Dovecot with only the lmtp protocol, listening on a Unix socket
//! in a temporary directory, delivering into Maildirs there. The request
//! goes as qmgr sends it for the transport `lmtp:unix:PATH`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proto::deliver::Action;

use crate::tests::deliver_lmtp;

/// A private Dovecot; stopped when dropped.
struct Dovecot {
    dir: tempfile::TempDir,
    child: Child,
}

impl Dovecot {
    fn start() -> Dovecot {
        testkit::need_program("/usr/sbin/dovecot", "dovecot-core");
        testkit::need_file(Path::new("/usr/lib/dovecot/lmtp"), "dovecot-lmtpd");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().canonicalize().unwrap();
        // The mail user (nobody) must reach and write its Maildir.
        std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::create_dir(d.join("mail")).unwrap();
        std::fs::set_permissions(
            d.join("mail"),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let b = d.display();
        // Root without Dovecot's own accounts: default_internal_user and
        // default_login_user; every recipient is the user nobody with a
        // home under our directory.
        let conf = format!(
            "base_dir = {b}/run\nstate_dir = {b}/state\nlog_path = {b}/dovecot.log\n\
             protocols = lmtp\nssl = no\n\
             default_internal_user = root\ndefault_internal_group = root\n\
             default_login_user = root\n\
             mail_location = maildir:~/Maildir\n\
             lmtp_rcpt_check_quota = no\n\
             passdb {{\n  driver = static\n  args = nopassword=y\n}}\n\
             userdb {{\n  driver = static\n  args = uid=65534 gid=65534 home={b}/mail/%n\n}}\n\
             service lmtp {{\n  unix_listener lmtp {{\n    mode = 0666\n  }}\n}}\n"
        );
        std::fs::write(d.join("dovecot.conf"), conf).unwrap();
        let child = Command::new("/usr/sbin/dovecot")
            .arg("-F")
            .arg("-c")
            .arg(d.join("dovecot.conf"))
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(d.join("stderr")).unwrap())
            .spawn()
            .unwrap();
        let mut dovecot = Dovecot { dir, child };
        let sock = dovecot.socket();
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let exited = dovecot.child.try_wait().unwrap();
            if exited.is_none() && std::os::unix::net::UnixStream::connect(&sock).is_ok() {
                break;
            }
            assert!(
                exited.is_none() && Instant::now() < end,
                "Dovecot's {} never answered ({exited:?}); stderr:\n{}\nlog:\n{}",
                sock.display(),
                std::fs::read_to_string(d.join("stderr")).unwrap_or_default(),
                dovecot.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        dovecot
    }

    fn path(&self) -> PathBuf {
        self.dir.path().canonicalize().unwrap()
    }

    fn socket(&self) -> PathBuf {
        self.path().join("run/lmtp")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("dovecot.log")).unwrap_or_default()
    }

    /// The messages in `user`'s Maildir/new.
    fn maildir(&self, user: &str) -> Vec<String> {
        let new = self.path().join(format!("mail/{user}/Maildir/new"));
        let mut out: Vec<String> = std::fs::read_dir(new)
            .map(|d| {
                d.flatten()
                    .map(|e| std::fs::read_to_string(e.path()).unwrap())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn lmtp_delivers_into_a_real_dovecots_maildir() {
    if testkit::skip_unless_root("Dovecot's LMTP server changes to the mail user") {
        return;
    }
    let dovecot = Dovecot::start();
    let hop = format!("unix:{}", dovecot.socket().display());
    let body = "Subject: over LMTP\n\nhello d\u{e9}j\u{e0} vu\n.leading dot\n";
    let st = deliver_lmtp(&hop, body, &["alice@lmtp.test", "bob@lmtp.test"]);
    assert!(
        st.iter().all(|s| s.action == Action::Delivered),
        "{st:?}\n{}",
        dovecot.log()
    );
    // One reply per recipient, each from Dovecot.
    assert!(st[0].text.contains("Saved"), "{st:?}");
    for user in ["alice", "bob"] {
        let mail = dovecot.maildir(user);
        assert_eq!(mail.len(), 1, "{user}: {mail:?}\n{}", dovecot.log());
        assert!(mail[0].contains("Subject: over LMTP\n"), "{}", mail[0]);
        assert!(
            mail[0].ends_with("\nhello d\u{e9}j\u{e0} vu\n.leading dot\n"),
            "{}",
            mail[0]
        );
    }
}
