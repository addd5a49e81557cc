//! Outbound mail (issue 8) to a real Dovecot: our sendmail, cleanup and
//! qmgr route mail for lmtp.test through transport_maps to
//! `lmtp:unix:private/dovecot-lmtp`, and our (chrooted) lmtp client hands
//! it to a private Dovecot LMTP server (Debian's dovecot-core and
//! dovecot-lmtpd, installed by scripts/install-deps; only the lmtp
//! protocol), whose socket lies in the queue directory as in Postfix's
//! Dovecot setup; Dovecot stores the mail in a Maildir of its temporary
//! directory.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use testkit::dovecot::{Dovecot, Ready};

use crate::util::{SmtpSetup, bin_dir, need_smtp, wait_until};

/// A private Dovecot with only LMTP, its socket at `listener` (open to
/// the mail_owner our lmtp runs as); every recipient is the user nobody
/// with a home under `{dir}/mail`.
fn start_dovecot_lmtp(listener: &Path) -> Dovecot {
    testkit::need_file(Path::new("/usr/lib/dovecot/lmtp"), "dovecot-lmtpd");
    let conf = format!(
        "protocols = lmtp\nssl = no\n\
         mail_location = maildir:~/Maildir\n\
         passdb {{\n  driver = static\n  args = nopassword=y\n}}\n\
         userdb {{\n  driver = static\n  args = uid=65534 gid=65534 home={{dir}}/mail/%n\n}}\n\
         service lmtp {{\n  unix_listener {} {{\n    mode = 0666\n  }}\n}}\n",
        listener.display()
    );
    let dovecot = Dovecot::start(&conf, |_| Ready::Socket(listener.to_path_buf()));
    let mail = dovecot.path().join("mail");
    std::fs::create_dir(&mail).unwrap();
    std::fs::set_permissions(&mail, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    dovecot
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
    let dovecot = start_dovecot_lmtp(&sender.inst.qdir.join("private/dovecot-lmtp"));
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
        wait_until(Duration::from_secs(30), || !Dovecot::maildir_new(
            &dovecot.path().join("mail/carol")
        )
        .is_empty()),
        "nothing in carol's Maildir\nour log:\n{}\nDovecot's log:\n{}",
        sender.inst.log(),
        dovecot.log()
    );
    let mail = Dovecot::maildir_new(&dovecot.path().join("mail/carol"));
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
