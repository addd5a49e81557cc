//! Our LMTP client against a real Dovecot LMTP server (Debian's
//! dovecot-core and dovecot-lmtpd, installed by scripts/install-deps): a
//! private Dovecot with only the lmtp protocol, listening on a Unix socket
//! in a temporary directory, delivering into Maildirs there. The request
//! goes as qmgr sends it for the transport `lmtp:unix:PATH`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use proto::deliver::Action;
use testkit::dovecot::{Dovecot, Ready};

use crate::tests::deliver_lmtp;

/// A private Dovecot with only LMTP on `{dir}/run/lmtp`; every recipient
/// is the user nobody with a home under `{dir}/mail`.
fn start_dovecot() -> Dovecot {
    testkit::need_file(Path::new("/usr/lib/dovecot/lmtp"), "dovecot-lmtpd");
    let dovecot = Dovecot::start(
        "protocols = lmtp\nssl = no\n\
         mail_location = maildir:~/Maildir\n\
         lmtp_rcpt_check_quota = no\n\
         passdb {\n  driver = static\n  args = nopassword=y\n}\n\
         userdb {\n  driver = static\n  args = uid=65534 gid=65534 home={dir}/mail/%n\n}\n\
         service lmtp {\n  unix_listener lmtp {\n    mode = 0666\n  }\n}\n",
        |d| Ready::Socket(d.join("run/lmtp")),
    );
    // The mail user (nobody) creates its home there.
    let mail = dovecot.path().join("mail");
    std::fs::create_dir(&mail).unwrap();
    std::fs::set_permissions(&mail, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    dovecot
}

#[test]
fn lmtp_delivers_into_a_real_dovecots_maildir() {
    if testkit::skip_unless_root("Dovecot's LMTP server changes to the mail user") {
        return;
    }
    let dovecot = start_dovecot();
    let hop = format!("unix:{}", dovecot.path().join("run/lmtp").display());
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
        let mail = Dovecot::maildir_new(&dovecot.path().join("mail").join(user));
        assert_eq!(mail.len(), 1, "{user}: {mail:?}\n{}", dovecot.log());
        assert!(mail[0].contains("Subject: over LMTP\n"), "{}", mail[0]);
        assert!(
            mail[0].ends_with("\nhello d\u{e9}j\u{e0} vu\n.leading dot\n"),
            "{}",
            mail[0]
        );
    }
}
