//! Outbound mail (issue 8) to a real Dovecot: our sendmail, cleanup and
//! qmgr route mail for lmtp.test through transport_maps to
//! `lmtp:unix:private/dovecot-lmtp`, and our (chrooted) lmtp client hands
//! it to a private Dovecot LMTP server (Debian's dovecot-core and
//! dovecot-lmtpd, installed by scripts/install-deps; only the lmtp
//! protocol), whose socket lies in the queue directory as in Postfix's
//! Dovecot setup; Dovecot stores the mail in a Maildir of its temporary
//! directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{SmtpSetup, bin_dir, need_smtp, wait_until};

/// A private Dovecot with only LMTP; stopped when dropped.
struct DovecotLmtp {
    dir: tempfile::TempDir,
    child: Child,
}

impl DovecotLmtp {
    /// Starts Dovecot with its LMTP socket at `listener`.
    fn start(listener: &Path) -> DovecotLmtp {
        testkit::need_program("/usr/sbin/dovecot", "dovecot-core");
        testkit::need_file(Path::new("/usr/lib/dovecot/lmtp"), "dovecot-lmtpd");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().canonicalize().unwrap();
        std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::create_dir(d.join("mail")).unwrap();
        std::fs::set_permissions(
            d.join("mail"),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let b = d.display();
        // Root without Dovecot's own accounts; every recipient is the user
        // nobody with a home under our directory; the socket is open to
        // the mail_owner our lmtp runs as.
        let conf = format!(
            "base_dir = {b}/run\nstate_dir = {b}/state\nlog_path = {b}/dovecot.log\n\
             protocols = lmtp\nssl = no\n\
             default_internal_user = root\ndefault_internal_group = root\n\
             default_login_user = root\n\
             mail_location = maildir:~/Maildir\n\
             passdb {{\n  driver = static\n  args = nopassword=y\n}}\n\
             userdb {{\n  driver = static\n  args = uid=65534 gid=65534 home={b}/mail/%n\n}}\n\
             service lmtp {{\n  unix_listener {} {{\n    mode = 0666\n  }}\n}}\n",
            listener.display()
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
        let mut dovecot = DovecotLmtp { dir, child };
        let sock = listener.to_path_buf();
        let mut exited = None;
        let up = wait_until(Duration::from_secs(10), || {
            exited = dovecot.child.try_wait().unwrap();
            exited.is_some() || std::os::unix::net::UnixStream::connect(&sock).is_ok()
        });
        assert!(
            up && exited.is_none(),
            "Dovecot's {} never answered ({exited:?}); stderr:\n{}\nlog:\n{}",
            sock.display(),
            std::fs::read_to_string(d.join("stderr")).unwrap_or_default(),
            dovecot.log()
        );
        dovecot
    }

    fn path(&self) -> PathBuf {
        self.dir.path().canonicalize().unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("dovecot.log")).unwrap_or_default()
    }

    fn maildir(&self, user: &str) -> Vec<String> {
        let new = self.path().join(format!("mail/{user}/Maildir/new"));
        std::fs::read_dir(new)
            .map(|d| {
                d.flatten()
                    .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for DovecotLmtp {
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
fn outbound_lmtp_transport_to_a_real_dovecot() {
    if testkit::skip_unless_root("Dovecot's LMTP server changes to the mail user") {
        return;
    }
    need_smtp();
    let sender = SmtpSetup::new()
        .main("myhostname = sender.test")
        .main("mydestination = localhost")
        .main("transport_maps = inline:{ lmtp.test=lmtp:unix:private/dovecot-lmtp }")
        .start();
    let dovecot = DovecotLmtp::start(&sender.inst.qdir.join("private/dovecot-lmtp"));
    let mut child = Command::new(bin_dir().join("sendmail"))
        .arg("-C")
        .arg(&sender.inst.config_dir)
        .args(["-oi", "-f", "alice@sender.test", "carol@lmtp.test"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"From: alice@sender.test\nSubject: to dovecot\n\nover LMTP\n.\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert!(
        wait_until(Duration::from_secs(30), || !dovecot
            .maildir("carol")
            .is_empty()),
        "nothing in carol's Maildir\nour log:\n{}\nDovecot's log:\n{}",
        sender.inst.log(),
        dovecot.log()
    );
    let mail = dovecot.maildir("carol");
    assert_eq!(mail.len(), 1);
    assert!(mail[0].contains("Subject: to dovecot\n"), "{}", mail[0]);
    assert!(mail[0].ends_with("\nover LMTP\n.\n"), "{}", mail[0]);
    // lmtp logs after Dovecot has the message: the line may come a
    // moment after the Maildir file.
    let logged = || {
        sender.inst.log().lines().any(|l| {
            l.contains("postfix/lmtp[")
                && l.contains("to=<carol@lmtp.test>")
                && l.contains("status=sent (250 2.0.0 <carol@lmtp.test>")
        })
    };
    assert!(
        wait_until(Duration::from_secs(30), logged),
        "{}",
        sender.inst.log()
    );
}
