//! Issue 14: postmap against Debian's Postfix postmap (/usr/sbin/postmap,
//! run with a private configuration directory).

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const REAL: &str = "/usr/sbin/postmap";

fn run(exe: &str, dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(exe)
        .args(["-c", dir.to_str().unwrap()])
        .args(args)
        .env("MAIL_CONFIG", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn ours(dir: &Path, args: &[&str], stdin: &str) -> Output {
    run(env!("CARGO_BIN_EXE_postmap"), dir, args, stdin)
}

fn real(dir: &Path, args: &[&str], stdin: &str) -> Output {
    testkit::need_program(REAL, "postfix");
    run(REAL, dir, args, stdin)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.cf"), "").unwrap();
    dir
}

/// A Berkeley DB file that Debian's postmap built is refused with a message
/// naming the source and the command that rebuilds it; after that command,
/// btree: and lmdb: name the same table.
#[test]
fn issue14_berkeley_db_file_named_and_btree_lmdb_accepted() {
    let dir = setup();
    let src = dir.path().join("virtual");
    std::fs::write(&src, "a@example.com b@example.net\n").unwrap();
    let spec = format!("hash:{}", src.display());
    let o = real(dir.path(), &[&spec], "");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = ours(dir.path(), &["-q", "a@example.com", &spec], "");
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("Berkeley DB"), "{err}");
    assert!(
        err.contains(&format!("\"postmap hash:{}\"", src.display())),
        "{err}"
    );
    assert!(ours(dir.path(), &[&spec], "").status.success());
    for ty in ["hash", "btree", "lmdb"] {
        let o = ours(
            dir.path(),
            &["-q", "a@example.com", &format!("{ty}:{}", src.display())],
            "",
        );
        assert_eq!(
            text(&o.stdout),
            "b@example.net\n",
            "{ty}: {}",
            text(&o.stderr)
        );
    }
}

/// `postmap -h`, `-b` and `-hb` with `-q -` answer as Debian's postmap
/// does for the same message and regexp: table (folded header as one key
/// with its newline; the body from the first non-header line).
#[test]
fn issue14_header_and_body_query_modes_match_postfix() {
    let dir = setup();
    let table = dir.path().join("header_checks");
    std::fs::write(
        &table,
        "/^Subject:.*free/ REJECT spam\n/^X-Long:.*b/ WARN long\n\
         /^body line (.*)/ DISCARD $1\n/^Content-Type: text/ INFO ct\n",
    )
    .unwrap();
    let msg = "From: a@b\nSubject: get free stuff\nX-Long: a\n b\n\
               Content-Type: text/plain\n\nbody line one\nSubject: free in body\n";
    let spec = format!("regexp:{}", table.display());
    for mode in ["-h", "-b", "-hb"] {
        let o = ours(dir.path(), &[mode, "-q", "-", &spec], msg);
        let r = real(dir.path(), &[mode, "-q", "-", &spec], msg);
        assert_eq!(
            text(&o.stdout),
            text(&r.stdout),
            "{mode}: {}",
            text(&o.stderr)
        );
        assert_eq!(o.status.code(), r.status.code(), "{mode}");
    }
    let o = ours(dir.path(), &["-h", "-q", "-", &spec], msg);
    assert_eq!(
        text(&o.stdout),
        "Subject: get free stuff\tREJECT spam\nX-Long: a\n b\tWARN long\n\
         Content-Type: text/plain\tINFO ct\n"
    );
    // -h needs "-q -", in both.
    let o = ours(dir.path(), &["-h", "-q", "x", &spec], "");
    let r = real(dir.path(), &["-h", "-q", "x", &spec], "");
    assert!(!o.status.success() && !r.status.success());
    assert!(text(&o.stderr).contains("specify -b -h or -m only with \"-q -\""));
}

/// A new index takes its source's permission bits unless -p, as Postfix's.
#[test]
fn issue14_index_mode_follows_source_unless_p() {
    use std::os::unix::fs::PermissionsExt;
    let dir = setup();
    let src = dir.path().join("t");
    std::fs::write(&src, "a b\n").unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o640)).unwrap();
    let spec = format!("hash:{}", src.display());
    let mode = || {
        std::fs::metadata(dir.path().join("t.db"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert!(ours(dir.path(), &[&spec], "").status.success());
    assert_eq!(mode(), 0o640);
    assert!(ours(dir.path(), &["-p", &spec], "").status.success());
    assert_eq!(mode(), 0o644);
    let o = ours(dir.path(), &["-F", "-q", "a", &spec], "");
    assert!(
        text(&o.stderr).contains("option -F is not supported"),
        "{}",
        text(&o.stderr)
    );
}

/// regexp: with a backreference, `${2}`/`$1` results and `{,n}`, pcre:
/// with lookahead, lookbehind and a backreference, and a bad line skipped
/// with a warning: the same answers as Debian's postmap (pcre: from
/// postfix-pcre) for every key.
#[test]
fn issue14_regexp_and_pcre_answer_as_postfix() {
    testkit::need_file(
        Path::new("/usr/lib/postfix/postfix-pcre.so"),
        "postfix-pcre",
    );
    let dir = setup();
    let re = dir.path().join("re");
    let pc = dir.path().join("pc");
    std::fs::write(
        &re,
        "/^(.+)@(.+)\\.\\2$/ twice ${2} $1\n/^x{,2}$/ short\n/bad(/ never\n/^y/ after-bad\n",
    )
    .unwrap();
    std::fs::write(
        &pc,
        "/^Subject:(?!.*\\[ext\\])/ PREPEND X-Tag: internal\n/(?<=@)spam\\.test$/ REJECT\n\
         /^(a+)b\\1$/ backref\n",
    )
    .unwrap();
    let cases: [(&Path, &str, &[&str]); 2] = [
        (
            &re,
            "regexp",
            &["joe@ex.ex", "joe@ex.org", "xx", "xxx", "x", "yes"],
        ),
        (
            &pc,
            "pcre",
            &[
                "Subject: hello",
                "Subject: [ext] hi",
                "a@spam.test",
                "aabaa",
                "aaba",
            ],
        ),
    ];
    for (file, ty, keys) in cases {
        let spec = format!("{ty}:{}", file.display());
        for key in keys {
            let o = ours(dir.path(), &["-q", key, &spec], "");
            let r = real(dir.path(), &["-q", key, &spec], "");
            assert_eq!(
                (text(&o.stdout), o.status.code()),
                (text(&r.stdout), r.status.code()),
                "{spec} {key}: {}",
                text(&o.stderr)
            );
        }
    }
    let o = ours(
        dir.path(),
        &["-q", "yes", &format!("regexp:{}", re.display())],
        "",
    );
    assert_eq!(text(&o.stdout), "after-bad\n");
    assert!(text(&o.stderr).contains("line 3"), "{}", text(&o.stderr));
}
