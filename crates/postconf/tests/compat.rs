//! Issue 14: postconf's output compared with Debian's Postfix postconf
//! (/usr/sbin/postconf, run against the same private directory).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure should abort the test"
)]
use std::path::Path;
use std::process::Command;

const REAL: &str = "/usr/sbin/postconf";

fn run(exe: &str, dir: &Path, args: &[&str]) -> String {
    let o = Command::new(exe)
        .arg("-c")
        .arg(dir)
        .args(args)
        .env_remove("MAIL_CONFIG")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{exe} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Ours and Postfix's output for the same arguments.
fn both(dir: &Path, args: &[&str]) -> (String, String) {
    testkit::need_program(REAL, "postfix");
    (
        run(env!("CARGO_BIN_EXE_postconf"), dir, args),
        run(REAL, dir, args),
    )
}

fn setup(main_cf: &str, master_cf: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.cf"), main_cf).unwrap();
    std::fs::write(dir.path().join("master.cf"), master_cf).unwrap();
    dir
}

#[test]
fn issue14_continuation_lines_print_with_one_space() {
    let dir = setup(
        "smtpd_banner = $myhostname ESMTP,   \n    hello\n\n# c\n\t  there   you\n",
        "",
    );
    let (ours, real) = both(dir.path(), &["-h", "smtpd_banner"]);
    assert_eq!(ours, "$myhostname ESMTP, hello there you\n");
    assert_eq!(ours, real);
    let (ours, real) = both(dir.path(), &["smtpd_banner"]);
    assert_eq!(ours, real);
}

#[test]
fn issue14_mx_expands_service_and_process_name_in_o_values_only() {
    let dir = setup(
        "myhostname = h.example\n",
        "smtp      inet  n       -       y       -       -       smtpd\n  \
         -o syslog_name=postfix/$service_name\n  -o smtpd_banner=$myhostname\n\
         relay     unix  -       -       n       -       -       smtp -o x=$process_name\n\
         maildrop  unix  -       n       n       -       -       pipe\n  \
         flags=DRXhu user=vmail argv=/usr/bin/maildrop -d ${recipient} $myhostname ${nexthop}\n",
    );
    let (ours, real) = both(dir.path(), &["-Mx"]);
    assert!(
        ours.contains("-o syslog_name=postfix/smtp -o smtpd_banner=h.example"),
        "{ours}"
    );
    assert!(ours.contains("smtp -o x=smtp\n"), "{ours}");
    assert!(
        ours.contains("-d ${recipient} $myhostname ${nexthop}"),
        "{ours}"
    );
    assert_eq!(ours, real);
    let (ours, real) = both(dir.path(), &["-M"]);
    assert_eq!(ours, real);
}

/// Enumerated parameters are refused as Postfix refuses them: Debian's
/// postqueue (any Postfix program) and our postconf name the same word.
#[test]
fn issue14_enumerated_parameter_refused_like_postfix() {
    testkit::need_program("/usr/sbin/postqueue", "postfix");
    let dir = setup("inet_protocols = ipv4, ipv5\n", "");
    let want = "unknown inet_protocols value \"ipv5\" in \"ipv4, ipv5\"";
    let real = Command::new("/usr/sbin/postqueue")
        .arg("-c")
        .arg(dir.path())
        .arg("-p")
        .env("MAIL_CONFIG", dir.path())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&real.stderr).contains(want),
        "{real:?}"
    );
    let ours = Command::new(env!("CARGO_BIN_EXE_postconf"))
        .arg("-c")
        .arg(dir.path())
        .arg("inet_protocols")
        .output()
        .unwrap();
    assert!(!ours.status.success());
    assert!(
        String::from_utf8_lossy(&ours.stderr).contains(want),
        "{ours:?}"
    );
}

/// `-F`, `-P` (with and without `-x` and operands), `-l` and `-A` print
/// what Postfix's postconf prints; `-a`, `-m` and `-T` name what this
/// suite offers in the same shapes.
#[test]
fn issue14_master_fields_params_and_lists_as_postfix() {
    let dir = setup(
        "myhostname = h.example\n",
        "smtp      inet  n       -       y       -       -       smtpd\n\
         submission inet n       -       y       -       -       smtpd\n  \
         -o syslog_name=postfix/$service_name\n  -o smtpd_tls_security_level=encrypt\n\
         pickup    unix  n       -       y       60      1       pickup\n",
    );
    for args in [
        &["-F"][..],
        &["-P"],
        &["-Px"],
        &["-F", "submission/inet/command", "pickup"],
        &["-P", "submission/inet/syslog_name"],
        &["-l"],
        &["-A"],
    ] {
        let (ours, real) = both(dir.path(), args);
        assert_eq!(ours, real, "{args:?}");
    }
    let (ours, _) = both(dir.path(), &["-Px"]);
    assert!(
        ours.contains("submission/inet/syslog_name = postfix/submission\n"),
        "{ours}"
    );
    assert_eq!(
        run(env!("CARGO_BIN_EXE_postconf"), dir.path(), &["-a"]),
        "dovecot\n"
    );
    let m = run(env!("CARGO_BIN_EXE_postconf"), dir.path(), &["-m"]);
    for t in [
        "hash", "btree", "lmdb", "regexp", "pcre", "cidr", "texthash",
    ] {
        assert!(m.lines().any(|l| l == t), "{t}: {m}");
    }
    let t = run(
        env!("CARGO_BIN_EXE_postconf"),
        dir.path(),
        &["-T", "public-key-algorithms"],
    );
    assert!(t.lines().any(|l| l == "rsa"), "{t}");
}
