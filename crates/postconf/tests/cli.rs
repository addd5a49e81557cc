//! Integration tests: the real postconf binary against temporary
//! configuration directories.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure should abort the test"
)]
use std::path::Path;
use std::process::{Command, Output};

const MAIN_CF: &str = "\
# Global Postfix configuration file.
#
# See postconf(5).

myhostname = mail.example.com
mydomain = example.com

# Where mail is delivered locally.
mydestination = $myhostname,
    localhost.$mydomain,
    localhost
message_size_limit = 20480000
";

const MASTER_CF: &str = "\
# service type  private unpriv  chroot  wakeup  maxproc command + args
smtp      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
submission inet n       -       n       -       -       smtpd
  -o syslog_name=postfix/submission
  -o { smtpd_client_restrictions = permit_sasl_authenticated, reject }
smtp      unix  -       -       n       -       -       smtp
";

fn setup(main_cf: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.cf"), main_cf).unwrap();
    std::fs::write(dir.path().join("master.cf"), MASTER_CF).unwrap();
    dir
}

fn postconf(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_postconf"))
        .arg("-c")
        .arg(dir)
        .args(args)
        .env_remove("MAIL_CONFIG")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn defaults_list_at_least_100_postfix_parameters() {
    let dir = tempfile::tempdir().unwrap(); // no main.cf needed for -d
    let o = postconf(dir.path(), &["-d"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 100, "{}", lines.len());
    for want in [
        "queue_directory = /var/spool/postfix",
        "command_directory = /usr/sbin",
        "daemon_directory = /usr/libexec/postfix",
        "data_directory = /var/lib/postfix",
        "mail_owner = postfix",
        "setgid_group = postdrop",
        "message_size_limit = 10240000",
        "inet_interfaces = all",
        "myorigin = $myhostname",
        "mydestination = $myhostname, localhost.$mydomain, localhost",
        "maillog_file =",
        "smtpd_banner = $myhostname ESMTP $mail_name",
        "maximal_queue_lifetime = 5d",
    ] {
        assert!(lines.contains(&want), "missing {want:?}");
    }
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l.split(" =").next().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let host = lines
        .iter()
        .find_map(|l| l.strip_prefix("myhostname = "))
        .unwrap();
    assert!(host.contains('.'));
}

#[test]
fn default_of_named_parameters_and_expansion() {
    let dir = setup(MAIN_CF);
    let o = postconf(dir.path(), &["-d", "mydomain", "syslog_name"]);
    let out = stdout(&o);
    assert!(
        out.contains("syslog_name = ${multi_instance_name?{$multi_instance_name}:{postfix}}\n")
    );
    let o = postconf(dir.path(), &["-dxh", "syslog_name", "smtpd_timeout"]);
    assert_eq!(stdout(&o), "postfix\n300s\n");
}

#[test]
fn no_arguments_prints_all_with_main_cf_values_unexpanded() {
    let dir = setup(MAIN_CF);
    let o = postconf(dir.path(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.lines().count() >= 100);
    assert!(out.contains("\nmessage_size_limit = 20480000\n"));
    assert!(out.contains("\nmyorigin = $myhostname\n"));
    assert!(out.contains("\nqueue_directory = /var/spool/postfix\n"));
}

#[test]
fn n_prints_only_main_cf_settings() {
    let dir = setup(MAIN_CF);
    let o = postconf(dir.path(), &["-n"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "message_size_limit = 20480000\n\
         mydestination = $myhostname, localhost.$mydomain, localhost\n\
         mydomain = example.com\n\
         myhostname = mail.example.com\n"
    );
}

#[test]
fn h_and_x() {
    let dir = setup(MAIN_CF);
    let o = postconf(dir.path(), &["-h", "myhostname", "myorigin"]);
    assert_eq!(stdout(&o), "mail.example.com\n$myhostname\n");
    let o = postconf(dir.path(), &["-x", "myorigin", "mydestination"]);
    assert_eq!(
        stdout(&o),
        "myorigin = mail.example.com\n\
         mydestination = mail.example.com, localhost.example.com, localhost\n"
    );
}

#[test]
fn edit_then_n_round_trips_and_keeps_comments() {
    let dir = setup(MAIN_CF);
    let o = postconf(
        dir.path(),
        &[
            "-e",
            "mydestination = $myhostname, localhost",
            "relayhost=[smtp.example.net]:587",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = postconf(dir.path(), &["-n"]);
    assert_eq!(
        stdout(&o),
        "message_size_limit = 20480000\n\
         mydestination = $myhostname, localhost\n\
         mydomain = example.com\n\
         myhostname = mail.example.com\n\
         relayhost = [smtp.example.net]:587\n"
    );
    let text = std::fs::read_to_string(dir.path().join("main.cf")).unwrap();
    assert_eq!(
        text,
        "# Global Postfix configuration file.\n#\n# See postconf(5).\n\n\
         myhostname = mail.example.com\nmydomain = example.com\n\n\
         # Where mail is delivered locally.\n\
         mydestination = $myhostname, localhost\n\
         message_size_limit = 20480000\n\
         relayhost = [smtp.example.net]:587\n"
    );
    assert!(!dir.path().join("main.cf.tmp").exists());
    // Without -e, name=value edits too.
    let o = postconf(dir.path(), &["message_size_limit=1000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = postconf(dir.path(), &["-h", "message_size_limit"]);
    assert_eq!(stdout(&o), "1000\n");
}

#[test]
fn edit_refuses_a_bad_value_and_leaves_the_file() {
    let dir = setup(MAIN_CF);
    let o = postconf(dir.path(), &["-e", "message_size_limit=lots"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o)
            .contains("postconf: fatal: bad numerical configuration: message_size_limit = lots")
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("main.cf")).unwrap(),
        MAIN_CF
    );
    let o = postconf(dir.path(), &["-e", "novalue"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn x_removes_and_hash_comments_out() {
    let dir = setup(MAIN_CF);
    let o = postconf(dir.path(), &["-X", "mydestination", "mydomain"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = postconf(dir.path(), &["-n"]);
    assert_eq!(
        stdout(&o),
        "message_size_limit = 20480000\nmyhostname = mail.example.com\n"
    );
    let text = std::fs::read_to_string(dir.path().join("main.cf")).unwrap();
    assert!(text.contains("# Where mail is delivered locally.\nmessage_size_limit"));
    let o = postconf(dir.path(), &["-#", "message_size_limit"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(dir.path().join("main.cf")).unwrap();
    assert!(text.contains("#message_size_limit = 20480000\n"));
    let o = postconf(dir.path(), &["-n"]);
    assert_eq!(stdout(&o), "myhostname = mail.example.com\n");
}

#[test]
fn m_prints_master_cf_entries() {
    let dir = setup(MAIN_CF);
    let o = postconf(dir.path(), &["-M"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(
        lines[0],
        "smtp       inet  n       -       n       -       -       smtpd"
    );
    assert_eq!(
        lines[3],
        "submission inet  n       -       n       -       -       smtpd -o syslog_name=postfix/submission -o { smtpd_client_restrictions = permit_sasl_authenticated, reject }"
    );
    let o = postconf(dir.path(), &["-M", "smtp/inet"]);
    assert_eq!(
        stdout(&o),
        "smtp       inet  n       -       n       -       -       smtpd\n"
    );
    let o = postconf(dir.path(), &["-M", "smtp"]);
    assert_eq!(stdout(&o).lines().count(), 2);
    let o = postconf(dir.path(), &["-M", "nosuch/unix"]);
    assert!(o.status.success());
    assert!(stderr(&o).contains("postconf: warning: nosuch/unix: no such master.cf entry"));
}

#[test]
fn m_reports_master_cf_errors_with_line() {
    let dir = setup(MAIN_CF);
    std::fs::write(
        dir.path().join("master.cf"),
        "# c\nsmtp inet n - n - - smtpd\nbad unix maybe - n - - x\n",
    )
    .unwrap();
    let o = postconf(dir.path(), &["-M"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.starts_with("postconf: fatal: "), "{err}");
    assert!(
        err.contains("master.cf, line 3: bad boolean value"),
        "{err}"
    );
}

#[test]
fn c_and_mail_config_choose_the_directory() {
    let a = setup("myhostname = a.example\n");
    let b = setup("myhostname = b.example\n");
    let o = postconf(a.path(), &["-h", "myhostname"]);
    assert_eq!(stdout(&o), "a.example\n");
    let o = Command::new(env!("CARGO_BIN_EXE_postconf"))
        .args(["-h", "myhostname", "config_directory"])
        .env("MAIL_CONFIG", b.path())
        .output()
        .unwrap();
    assert_eq!(stdout(&o), format!("b.example\n{}\n", b.path().display()));
}

#[test]
fn bad_value_is_fatal_with_file_and_line() {
    let dir = setup("myhostname = a.example\n\n# comment\nmessage_size_limit = 10x\n");
    let o = postconf(dir.path(), &["-n"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "postconf: fatal: {}, line 4: bad numerical configuration: message_size_limit = 10x\n",
            dir.path().join("main.cf").display()
        )
    );
    assert!(o.stdout.is_empty());
    let dir = setup("a = $b\nb = $a\n");
    let o = postconf(dir.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("line 1: parameter a: parameter expansion loop: a -> b -> a"));
}

#[test]
fn unknown_parameters_warn() {
    let dir = setup("myhostname = a.example\nfoo = bar\n");
    let o = postconf(dir.path(), &["nosuch_parameter", "myhostname"]);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "myhostname = a.example\n");
    let err = stderr(&o);
    assert!(
        err.contains("postconf: warning: nosuch_parameter: unknown parameter\n"),
        "{err}"
    );
    assert!(err.contains("line 2: unused parameter: foo=bar"), "{err}");
}

#[test]
fn usage_errors_exit_1() {
    let dir = setup(MAIN_CF);
    let o = postconf(dir.path(), &["-q"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("postconf: fatal: usage: postconf"));
    let o = postconf(dir.path(), &["-X"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn missing_main_cf_is_fatal_but_edit_creates_it() {
    let dir = tempfile::tempdir().unwrap();
    let o = postconf(dir.path(), &["-n"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("postconf: fatal: open "));
    let o = postconf(dir.path(), &["-e", "myhostname=x.example"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = postconf(dir.path(), &["-n"]);
    assert_eq!(stdout(&o), "myhostname = x.example\n");
}

/// std::env::args panics (exit 101) on an argument that is not UTF-8.
#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error() {
    testkit::assert_non_utf8_argument_is_usage_error(env!("CARGO_BIN_EXE_postconf"), "postconf");
}
