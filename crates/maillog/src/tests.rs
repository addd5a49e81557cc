//! Tests of record shapes and destinations. Tests that need the process-
//! wide logger (init, fatal!, bug!, set_program, concurrent processes)
//! re-run this test binary as a child selected by `CHILD_ENV`, so the
//! parent's global state is never touched and tests stay parallel-safe.

use super::*;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};
use std::time::Duration;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const CHILD_ENV: &str = "MAILLOG_TEST_CHILD";
const FILE_ENV: &str = "MAILLOG_TEST_FILE";

/// A parsed record: stamp fields are checked, the rest is returned.
#[derive(Debug, PartialEq)]
struct Record {
    host: String,
    tag: String,
    pid: u32,
    text: String,
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// Checks `Mmm dd HH:MM:SS` (day zero-padded when `zero_day`, else
/// space-padded) and returns what follows it.
fn strip_stamp(line: &str, zero_day: bool) -> Option<&str> {
    let stamp = line.get(..15)?;
    let rest = line.get(15..)?;
    let month = stamp.get(0..3)?;
    let day = stamp.get(4..6)?;
    let time = stamp.get(7..15)?;
    let day_ok = if zero_day {
        digits(day, 2)
    } else {
        digits(day.trim_start(), day.trim_start().len()) && !day.trim_start().is_empty()
    };
    let time_ok = time.split(':').count() == 3 && time.split(':').all(|p| digits(p, 2));
    (MONTHS.contains(&month) && &stamp[3..4] == " " && &stamp[6..7] == " " && day_ok && time_ok)
        .then_some(rest)
}

/// `tag[pid]: text`
fn parse_tail(rest: &str) -> Option<(String, u32, String)> {
    let (tag, rest) = rest.split_once('[')?;
    let (pid, text) = rest.split_once("]: ")?;
    if tag.is_empty() || tag.contains(' ') || !digits(pid, pid.len()) {
        return None;
    }
    Some((tag.to_owned(), pid.parse().ok()?, text.to_owned()))
}

/// Parses `Mmm dd HH:MM:SS host tag[pid]: text`, the maillog_file shape.
fn parse_file_line(line: &str) -> Option<Record> {
    let rest = strip_stamp(line, true)?.strip_prefix(' ')?;
    let (host, rest) = rest.split_once(' ')?;
    let (tag, pid, text) = parse_tail(rest)?;
    Some(Record {
        host: host.to_owned(),
        tag,
        pid,
        text,
    })
}

/// Parses `<PRI>Mmm  d HH:MM:SS tag[pid]: text`, the RFC 3164 shape.
fn parse_syslog(packet: &[u8]) -> Option<(u8, Record)> {
    let s = std::str::from_utf8(packet).ok()?;
    let s = s.strip_prefix('<')?;
    let (pri, rest) = s.split_once('>')?;
    let rest = strip_stamp(rest, false)?.strip_prefix(' ')?;
    let (tag, pid, text) = parse_tail(rest)?;
    Some((
        pri.parse().ok()?,
        Record {
            host: String::new(),
            tag,
            pid,
            text,
        },
    ))
}

fn file_setup(path: &Path) -> Setup {
    Setup::new(Options::new("smtpd", "postfix"))
        .maillog_file(path)
        .hostname("mail.example.org")
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn parsers_accept_and_reject() {
    let r = parse_file_line("Nov 03 12:11:53 mail postfix/smtpd[4242]: 3F2A1C0B7: client=x");
    assert_eq!(
        r,
        Some(Record {
            host: "mail".into(),
            tag: "postfix/smtpd".into(),
            pid: 4242,
            text: "3F2A1C0B7: client=x".into()
        })
    );
    assert!(parse_file_line("Nov  3 12:11:53 mail postfix/smtpd[4242]: x").is_none());
    assert!(parse_file_line("1700000000 localhost postfix/smtpd[1]: x").is_none());
    assert!(parse_syslog(b"<22>Nov  3 12:11:53 postfix/smtpd[4242]: x").is_some());
    assert!(parse_syslog(b"<22>Nov 23 12:11:53 postfix/smtpd[4242]: x").is_some());
}

#[test]
fn file_records_have_postfix_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maillog");
    let mut logger = Logger::open(&file_setup(&path)).unwrap();
    logger.log(Severity::Info, "3F2A1C0B7: client=host[192.0.2.1]");
    logger.log(Severity::Warning, "hostname x does not resolve");
    logger.log(Severity::Error, "bad thing");
    logger.log(Severity::Fatal, "no way");
    logger.log(Severity::Panic, "bug");
    let lines = read_lines(&path);
    let texts = [
        "3F2A1C0B7: client=host[192.0.2.1]",
        "warning: hostname x does not resolve",
        "error: bad thing",
        "fatal: no way",
        "panic: bug",
    ];
    assert_eq!(lines.len(), texts.len());
    for (line, text) in lines.iter().zip(texts) {
        let r = parse_file_line(line).unwrap_or_else(|| panic!("bad shape: {line:?}"));
        assert_eq!(r.host, "mail");
        assert_eq!(r.tag, "postfix/smtpd");
        assert_eq!(r.pid, std::process::id());
        assert_eq!(r.text, text);
    }
}

#[test]
fn file_is_appended_not_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maillog");
    std::fs::write(&path, "earlier line\n").unwrap();
    let mut logger = Logger::open(&file_setup(&path)).unwrap();
    logger.log(Severity::Info, "later");
    let lines = read_lines(&path);
    assert_eq!(lines[0], "earlier line");
    let tail = format!("postfix/smtpd[{}]: later", std::process::id());
    assert!(lines[1].ends_with(&tail), "{lines:?}");
}

#[test]
fn one_call_is_one_bounded_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maillog");
    let mut logger = Logger::open(&file_setup(&path)).unwrap();
    let huge = "y".repeat(100_000);
    let text = CleanText::format(format_args!("a\nb\r\nc {huge}"), TEXT_LIMIT);
    logger.log(Severity::Warning, &text);
    let lines = read_lines(&path);
    assert_eq!(lines.len(), 1);
    let r = parse_file_line(&lines[0]).unwrap();
    assert!(r.text.starts_with("warning: a?b??c yyy"));
    assert_eq!(r.text.len(), "warning: ".len() + TEXT_LIMIT);
    assert!(lines[0].len() < 2200);
}

#[test]
fn names_are_sanitized() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maillog");
    let setup = Setup::new(Options::new("sm td[1]:\n", "post fix"))
        .maillog_file(&path)
        .hostname("bad host.example");
    let mut logger = Logger::open(&setup).unwrap();
    logger.log(Severity::Info, "x");
    let lines = read_lines(&path);
    assert_eq!(lines.len(), 1);
    let r = parse_file_line(&lines[0]).unwrap();
    assert_eq!(r.host, "bad?host");
    assert_eq!(r.tag, "post?fix/sm?td?1???");
}

#[test]
fn unopenable_maillog_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/maillog");
    let err = Logger::open(&file_setup(&path)).unwrap_err();
    assert!(matches!(err, Error::OpenMaillog { .. }));
    assert!(err.to_string().contains("no/such/dir/maillog"));
}

#[test]
fn unsafe_maillog_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::write(&real, "").unwrap();
    let symlink = dir.path().join("symlink");
    std::os::unix::fs::symlink(&real, &symlink).unwrap();
    let hardlink = dir.path().join("hardlink");
    std::fs::hard_link(&real, &hardlink).unwrap();
    for path in [symlink, hardlink, dir.path().to_path_buf()] {
        let err = Logger::open(&file_setup(&path)).unwrap_err();
        assert!(matches!(err, Error::OpenMaillog { .. }), "{path:?}");
    }
}

#[test]
fn dev_stdout_is_the_own_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_child("stdout", &dir.path().join("unused"));
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("to stdout"))
        .unwrap_or_else(|| panic!("{stdout}"));
    // libtest may print its "test ... " prefix on the same line.
    let start = line.find(|c: char| c.is_ascii_uppercase()).unwrap();
    let r = parse_file_line(&line[start..]).unwrap();
    assert_eq!(r.text, "warning: to stdout");
}

/// Checks that `lines` hold exactly `writers` x `count` intact records
/// written by `write_burst`.
fn check_bursts(lines: &[String], writers: usize, count: usize) {
    assert_eq!(lines.len(), writers * count, "line count");
    let mut seen = vec![0usize; writers];
    for line in lines {
        let r = parse_file_line(line).unwrap_or_else(|| panic!("bad shape: {line:.80}"));
        let (head, fill) = r.text.split_once(' ').unwrap();
        let w: usize = head.strip_prefix('w').unwrap().parse().unwrap();
        let expect_char = char::from(b'a' + u8::try_from(w % 26).unwrap());
        assert_eq!(fill.len(), 1500, "record cut or merged: {line:.80}");
        assert!(
            fill.chars().all(|c| c == expect_char),
            "interleaved: {line:.80}"
        );
        seen[w] += 1;
    }
    assert!(seen.iter().all(|&n| n == count), "{seen:?}");
}

fn burst_text(writer: usize) -> String {
    let c = char::from(b'a' + u8::try_from(writer % 26).unwrap());
    format!("w{writer} {}", c.to_string().repeat(1500))
}

#[test]
fn concurrent_threads_never_interleave() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maillog");
    let (writers, count) = (6, 300);
    std::thread::scope(|s| {
        for w in 0..writers {
            let path = &path;
            s.spawn(move || {
                // Each thread has its own descriptor, as separate
                // processes would.
                let mut logger = Logger::open(&file_setup(path)).unwrap();
                let text = burst_text(w);
                for _ in 0..count {
                    logger.log(Severity::Info, &text);
                }
            });
        }
    });
    check_bursts(&read_lines(&path), writers, count);
}

fn run_child(mode: &str, file: &Path) -> Output {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tests::child_entry",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, mode)
        .env(FILE_ENV, file)
        .output()
        .unwrap()
}

/// The body of child processes, run by the tests with `--ignored`; not a
/// test of its own.
#[test]
#[ignore = "child process of the multi-process tests, run by them"]
fn child_entry() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let path = PathBuf::from(std::env::var_os(FILE_ENV).unwrap());
    let setup = file_setup(&path);
    if let Some(w) = mode.strip_prefix("burst") {
        init(setup);
        let text = burst_text(w.parse().unwrap());
        for _ in 0..300 {
            info!("{text}");
        }
        return;
    }
    match mode.as_str() {
        "fatal" => {
            init(setup.stderr(true));
            warning!("before {}", 1);
            fatal!("cannot continue: {}", "reason");
        }
        "bug" => {
            init(setup);
            bug!("invariant broken: {}", 42);
        }
        "rename" => {
            init(setup);
            info!("as smtpd");
            set_program("child", None);
            info!("as child");
            set_program("qmgr", Some("postfix-out"));
            error!("as qmgr");
            verbose!("not shown");
            set_verbose(1);
            verbose!("shown");
        }
        "reinit" => {
            init(setup);
            info!("first");
            init(
                Setup::new(Options::new("pickup", "postfix"))
                    .maillog_file(&path)
                    .hostname("h2"),
            );
            info!("second");
        }
        "badfile" => {
            init(Setup::new(Options::new("postconf", "postfix")).maillog_file(path.join("x/y")));
            warning!("still visible");
        }
        "jail" => {
            // As a daemon does: init before the jail, then chroot to an
            // empty directory and become nobody.
            init(setup);
            let jail = path.parent().unwrap().join("jail");
            let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
            nix::unistd::chroot(&jail).unwrap();
            nix::unistd::chdir("/").unwrap();
            nix::unistd::setresgid(nobody.gid, nobody.gid, nobody.gid).unwrap();
            nix::unistd::setresuid(nobody.uid, nobody.uid, nobody.uid).unwrap();
            assert!(!Path::new("/etc/localtime").exists());
            info!("inside the jail");
        }
        "stdout" => {
            init(Setup::new(Options::new("smtpd", "postfix")).maillog_file("/dev/stdout"));
            warning!("to stdout");
        }
        "uninit" => {
            error!("early {}", "problem");
        }
        other => panic!("unknown child mode {other}"),
    }
}

#[test]
fn concurrent_processes_never_interleave() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maillog");
    let writers = 4;
    let children: Vec<_> = (0..writers)
        .map(|w| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "tests::child_entry",
                    "--ignored",
                    "--test-threads=1",
                    "-q",
                ])
                .env(CHILD_ENV, format!("burst{w}"))
                .env(FILE_ENV, &path)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    check_bursts(&read_lines(&path), writers, 300);
    // Each process logged under its own pid.
    let pids: std::collections::HashSet<u32> = read_lines(&path)
        .iter()
        .map(|l| parse_file_line(l).unwrap().pid)
        .collect();
    assert_eq!(pids.len(), writers);
}

#[test]
fn fatal_logs_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maillog");
    let out = run_child("fatal", &path);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines = read_lines(&path);
    let texts: Vec<_> = lines
        .iter()
        .map(|l| parse_file_line(l).unwrap().text)
        .collect();
    assert_eq!(
        texts,
        ["warning: before 1", "fatal: cannot continue: reason"]
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("smtpd: warning: before 1\n"), "{stderr}");
    assert!(
        stderr.contains("smtpd: fatal: cannot continue: reason\n"),
        "{stderr}"
    );
}

#[test]
fn bug_logs_panic_and_aborts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maillog");
    let out = run_child("bug", &path);
    assert_eq!(out.status.signal(), Some(nix::libc::SIGABRT), "{out:?}");
    let lines = read_lines(&path);
    assert_eq!(lines.len(), 1);
    assert_eq!(
        parse_file_line(&lines[0]).unwrap().text,
        "panic: invariant broken: 42"
    );
}

#[test]
fn set_program_keeps_destination() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maillog");
    let out = run_child("rename", &path);
    assert!(out.status.success(), "{out:?}");
    let got: Vec<_> = read_lines(&path)
        .iter()
        .map(|l| {
            let r = parse_file_line(l).unwrap();
            format!("{} {}", r.tag, r.text)
        })
        .collect();
    assert_eq!(
        got,
        [
            "postfix/smtpd as smtpd",
            "postfix/child as child",
            "postfix-out/qmgr error: as qmgr",
            "postfix-out/qmgr shown",
        ]
    );
}

#[test]
fn init_may_be_called_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maillog");
    let out = run_child("reinit", &path);
    assert!(out.status.success(), "{out:?}");
    let got: Vec<_> = read_lines(&path)
        .iter()
        .map(|l| {
            let r = parse_file_line(l).unwrap();
            format!("{} {} {}", r.host, r.tag, r.text)
        })
        .collect();
    assert_eq!(
        got,
        ["mail postfix/smtpd first", "h2 postfix/pickup second"]
    );
}

#[test]
fn bad_maillog_file_falls_back_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maillog");
    let out = run_child("badfile", &path);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("postconf: warning: open maillog_file "),
        "{stderr}"
    );
    assert!(
        stderr.contains("postconf: warning: still visible\n"),
        "{stderr}"
    );
}

#[test]
fn before_init_logs_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_child("uninit", &dir.path().join("unused"));
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(": error: early problem\n"), "{stderr}");
}

#[test]
fn file_logging_survives_chroot_and_setuid() {
    if !nix::unistd::geteuid().is_root() {
        testkit::skip("needs root because the child chroots and changes uid");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maillog");
    std::fs::create_dir(dir.path().join("jail")).unwrap();
    let tz = TimeZone::posix("EST5").unwrap();
    let before = tz.to_datetime(Timestamp::now()).hour();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tests::child_entry",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "jail")
        .env(FILE_ENV, &path)
        .env("TZ", "EST5")
        .output()
        .unwrap();
    let after = tz.to_datetime(Timestamp::now()).hour();
    assert!(out.status.success(), "{out:?}");
    let lines = read_lines(&path);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let r = parse_file_line(&lines[0]).unwrap();
    assert_eq!(r.text, "inside the jail");
    // The time zone was loaded before the jail, where /etc/localtime and
    // the zoneinfo files are missing.
    let hour: i8 = lines[0][7..9].parse().unwrap();
    assert!(hour == before || hour == after, "{} not EST5", lines[0]);
}

fn receiver(dir: &Path) -> (PathBuf, UnixDatagram) {
    let path = dir.join("log");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (path, sock)
}

fn recv(sock: &UnixDatagram) -> Vec<u8> {
    let mut buf = vec![0u8; 8192];
    let n = sock.recv(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn syslog_gets_rfc3164_datagrams() {
    let dir = tempfile::tempdir().unwrap();
    let (path, sock) = receiver(dir.path());
    let setup = Setup::new(Options::new("smtpd", "postfix")).syslog_socket(&path);
    let mut logger = Logger::open(&setup).unwrap();
    logger.log(Severity::Info, "3F2A1C0B7: client=host[192.0.2.1]");
    logger.log(Severity::Warning, "w");
    logger.log(Severity::Error, "e");
    logger.log(Severity::Fatal, "f");
    logger.log(Severity::Panic, "p");
    let expect = [
        (22, "3F2A1C0B7: client=host[192.0.2.1]"),
        (20, "warning: w"),
        (19, "error: e"),
        (18, "fatal: f"),
        (18, "panic: p"),
    ];
    for (pri, text) in expect {
        let packet = recv(&sock);
        let (got_pri, r) = parse_syslog(&packet)
            .unwrap_or_else(|| panic!("bad packet {:?}", String::from_utf8_lossy(&packet)));
        assert_eq!(got_pri, pri);
        assert_eq!(r.tag, "postfix/smtpd");
        assert_eq!(r.pid, std::process::id());
        assert_eq!(r.text, text);
        assert!(!packet.ends_with(b"\n"));
    }
}

#[test]
fn syslog_facility_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let (path, sock) = receiver(dir.path());
    let setup = Setup::new(Options::new("qmgr", "postfix-out"))
        .syslog_socket(&path)
        .facility(Facility::from_name("local3").unwrap());
    let mut logger = Logger::open(&setup).unwrap();
    logger.log(Severity::Warning, "x");
    let (pri, r) = parse_syslog(&recv(&sock)).unwrap();
    assert_eq!(pri, 19 * 8 + 4);
    assert_eq!(r.tag, "postfix-out/qmgr");
}

#[test]
fn syslog_reconnects_after_syslogd_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (path, sock) = receiver(dir.path());
    let mut logger =
        Logger::open(&Setup::new(Options::new("smtpd", "postfix")).syslog_socket(&path)).unwrap();
    logger.log(Severity::Info, "one");
    assert_eq!(parse_syslog(&recv(&sock)).unwrap().1.text, "one");
    // syslogd goes away: the record is lost, nothing panics.
    drop(sock);
    std::fs::remove_file(&path).unwrap();
    logger.log(Severity::Info, "lost");
    // syslogd comes back on the same path.
    let (_, sock) = receiver(dir.path());
    logger.log(Severity::Info, "two");
    assert_eq!(parse_syslog(&recv(&sock)).unwrap().1.text, "two");
}

#[test]
fn missing_syslogd_is_silent() {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(Options::new("smtpd", "postfix")).syslog_socket(dir.path().join("none"));
    let mut logger = Logger::open(&setup).unwrap();
    logger.log(Severity::Info, "nobody listens");
    match &logger.sink {
        Sink::Syslog(s) => assert!(!s.is_connected()),
        other => panic!("unexpected sink {other:?}"),
    }
}

#[test]
fn severity_prefixes_and_levels() {
    assert_eq!(Severity::Info.prefix(), "");
    assert_eq!(Severity::Warning.prefix(), "warning: ");
    assert_eq!(Severity::Error.prefix(), "error: ");
    assert_eq!(Severity::Fatal.prefix(), "fatal: ");
    assert_eq!(Severity::Panic.prefix(), "panic: ");
    let levels: Vec<u8> = [
        Severity::Info,
        Severity::Warning,
        Severity::Error,
        Severity::Fatal,
        Severity::Panic,
    ]
    .iter()
    .map(|s| s.syslog_level())
    .collect();
    assert_eq!(levels, [6, 4, 3, 2, 2]);
}

#[test]
fn a_new_maillog_file_gets_maillog_file_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let default = dir.path().join("default");
    Logger::open(&file_setup(&default)).unwrap();
    assert_eq!(mode(&default), 0o600);
    let wide = dir.path().join("wide");
    Logger::open(&file_setup(&wide).file_permissions(0o644)).unwrap();
    assert_eq!(mode(&wide), 0o644);
    // An existing file keeps its mode.
    Logger::open(&file_setup(&wide)).unwrap();
    assert_eq!(mode(&wide), 0o644);
    assert_eq!(parse_file_permissions("0600"), Some(0o600));
    assert_eq!(parse_file_permissions(" 0644 "), Some(0o644));
    for bad in ["0666", "600", "0777", "", "rw"] {
        assert_eq!(parse_file_permissions(bad), None, "{bad}");
    }
}

#[test]
fn maillog_file_must_match_a_prefix_when_prefixes_are_given() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maillog");
    let err = Logger::open(&file_setup(&path).file_prefixes("/var, /dev/stdout")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "maillog_file value '{}' does not match any prefix in maillog_file_prefixes",
            path.display()
        )
    );
    assert!(!path.exists());
    let prefixes = format!("/var,{}", dir.path().display());
    Logger::open(&file_setup(&path).file_prefixes(&prefixes)).unwrap();
    assert!(path.exists());
}

#[test]
fn a_setgid_program_appends_but_never_creates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maillog");
    let logger = Logger::open(&file_setup(&path).create_file(false)).unwrap();
    assert!(!path.exists());
    assert!(matches!(logger.sink, Sink::Syslog(_)));
    std::fs::write(&path, "").unwrap();
    let logger = Logger::open(&file_setup(&path).create_file(false)).unwrap();
    assert!(matches!(logger.sink, Sink::File(_)));
}

/// The pid in log lines is cached, and a child of fork() asks again.
#[test]
fn cached_pid_is_the_childs_after_fork() {
    assert_eq!(crate::pid(), std::process::id());
    assert_eq!(crate::pid(), std::process::id());
    // SAFETY: the child only compares two numbers and _exits (no locks,
    // no allocation), which is all a child of a threaded process may do.
    #[allow(unsafe_code)]
    let forked = unsafe { nix::unistd::fork() };
    match forked.unwrap_or_else(|e| panic!("fork: {e}")) {
        nix::unistd::ForkResult::Child => {
            let same = crate::pid() == nix::unistd::getpid().as_raw() as u32;
            // SAFETY: as above.
            #[allow(unsafe_code)]
            unsafe {
                nix::libc::_exit(if same { 0 } else { 1 })
            }
        }
        nix::unistd::ForkResult::Parent { child } => {
            let status =
                nix::sys::wait::waitpid(child, None).unwrap_or_else(|e| panic!("waitpid: {e}"));
            assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
        }
    }
}
