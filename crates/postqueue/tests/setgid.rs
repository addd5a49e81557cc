//! postqueue installed set-gid and run by an ordinary user (nobody): which
//! configuration directories it reads, and what is left of the caller's
//! environment. Needs root (to make the set-gid copy and become nobody);
//! the default configuration directory is replaced for one child by a bind
//! mount in a private mount namespace (unshare), so /etc/postfix itself is
//! never touched.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Mon Nov 23 12:11:53 2026 UTC; Tue Nov 24 02:11:53 at UTC+14.
const ARRIVAL: u64 = 1_795_435_913;
const KIRITIMATI_TIME: &str = "Tue Nov 24 02:11:53";

struct Setgid {
    _dir: tempfile::TempDir,
    base: PathBuf,
    /// The set-gid copy of postqueue.
    bin: PathBuf,
    nobody: (u32, u32),
}

fn mode(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// A world-readable configuration directory whose main.cf has `text`.
fn config_dir(base: &Path, name: &str, text: &str) -> PathBuf {
    let d = base.join(name);
    std::fs::create_dir(&d).unwrap();
    mode(&d, 0o755);
    std::fs::write(d.join("main.cf"), text).unwrap();
    mode(&d.join("main.cf"), 0o644);
    d
}

/// None (and a line saying so) when not root.
fn setup(_test: &str) -> Option<Setgid> {
    if !nix::unistd::geteuid().is_root() {
        testkit::skip("needs root to install a set-gid copy and become nobody");
        return None;
    }
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let group = nix::unistd::Group::from_name("postdrop")
        .unwrap()
        .map_or(1, |g| g.gid.as_raw());
    assert_ne!(group, nobody.gid.as_raw());
    // Under /tmp with 0755 components, whatever the checkout's modes are.
    let dir = tempfile::Builder::new()
        .prefix("postqueue-setgid")
        .tempdir_in("/tmp")
        .unwrap();
    let base = dir.path().canonicalize().unwrap();
    mode(&base, 0o755);
    let flags = nix::sys::statvfs::statvfs(&base).unwrap().flags();
    assert!(
        !flags.contains(nix::sys::statvfs::FsFlags::ST_NOSUID),
        "/tmp is mounted nosuid: set-gid cannot be tested there"
    );
    let bin = base.join("postqueue");
    std::fs::copy(env!("CARGO_BIN_EXE_postqueue"), &bin).unwrap();
    std::os::unix::fs::chown(&bin, Some(0), Some(group)).unwrap();
    mode(&bin, 0o2755);
    let spool = base.join("spool");
    std::fs::create_dir_all(spool.join("public")).unwrap();
    mode(&spool, 0o755);
    mode(&spool.join("public"), 0o755);
    serve_showq(&spool.join("public/showq"));
    let q = format!("queue_directory = {}\n", spool.display());
    config_dir(&base, "etc", &q);
    config_dir(&base, "alt", &q);
    let alt = base.join("alt");
    config_dir(
        &base,
        "default",
        &format!(
            "{q}alternate_config_directories = /nowhere,\n  {}\n",
            alt.display()
        ),
    );
    Some(Setgid {
        _dir: dir,
        base,
        bin,
        nobody: (nobody.uid.as_raw(), nobody.gid.as_raw()),
    })
}

/// A stand-in for showq that lists one message to every client.
fn serve_showq(path: &Path) {
    let l = UnixListener::bind(path).unwrap();
    mode(path, 0o666);
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let _: Result<proto::showq::Request, _> = proto::recv(&mut s);
            let m = proto::showq::Message {
                queue_name: "deferred".into(),
                queue_id: "4Xb2Yk3pRtz7Qw".into(),
                arrival_secs: ARRIVAL,
                size: 300,
                sender: "alice@example.org".into(),
                recipients: vec![proto::showq::PendingRecipient {
                    address: "bob@example.net".into(),
                    reason: String::new(),
                }],
                notes: Vec::new(),
            };
            let _ = proto::send(&mut s, &proto::showq::Reply::Entry(m));
            let _ = proto::send(&mut s, &proto::showq::Reply::End);
        }
    });
}

impl Setgid {
    /// The set-gid copy run as nobody with only `env`.
    fn as_nobody(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(&self.bin);
        c.uid(self.nobody.0).gid(self.nobody.1);
        c.env_clear().envs(env.iter().copied()).args(args);
        c.output().unwrap()
    }

    /// The set-gid copy run as `nobody` (or as root), with `default/`
    /// mounted on /etc/postfix for this child only.
    fn with_default(&self, nobody: bool, args: &[&str], env: &[(&str, &str)]) -> Output {
        assert!(
            Path::new("/etc/postfix").is_dir(),
            "needs /etc/postfix as a mount point (scripts/install-deps installs postfix)"
        );
        let script = "mount --bind \"$1\" /etc/postfix || exit 99; shift; exec \"$@\"";
        let mut c = Command::new("unshare");
        c.args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ]);
        c.arg(self.base.join("default"));
        if nobody {
            c.arg("setpriv")
                .arg(format!("--reuid={}", self.nobody.0))
                .arg(format!("--regid={}", self.nobody.1))
                .args(["--clear-groups", "--"]);
        }
        c.arg(&self.bin).args(args);
        c.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        c.envs(env.iter().copied());
        let out = c.output().unwrap();
        assert_ne!(
            out.status.code(),
            Some(99),
            "bind mount: {}",
            text(&out.stderr)
        );
        out
    }

    fn dir(&self, name: &str) -> String {
        self.base.join(name).display().to_string()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_refused(out: &Output, dir: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{err}");
    assert!(
        err.contains(&format!(
            "postqueue: error: unauthorized configuration directory name: {dir}\n"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "postqueue: fatal: specify \"alternate_config_directories = {dir}\" or \
             \"multi_instance_directories = {dir}\" in /etc/postfix/main.cf"
        )),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn an_unlisted_config_directory_is_refused() {
    let Some(s) = setup("an_unlisted_config_directory_is_refused") else {
        return;
    };
    let etc = s.dir("etc");
    assert_refused(&s.with_default(true, &["-c", &etc, "-p"], &[]), &etc);
    let env = [("MAIL_CONFIG", etc.as_str())];
    assert_refused(&s.with_default(true, &["-p"], &env), &etc);
    assert_refused(&s.with_default(true, &["-c/tmp/x", "-p"], &[]), "/tmp/x");
    // With the real /etc/postfix: refused as well, whether its main.cf
    // exists (not listed) or not (nothing can be authorized).
    let out = s.as_nobody(&["-c", &etc, "-p"], &[]);
    assert_eq!(out.status.code(), Some(77), "{out:?}");
    assert!(out.stdout.is_empty());
    // The default directory needs no listing (whatever it holds here).
    for out in [
        s.as_nobody(&["-c", "/etc/postfix", "-p"], &[]),
        s.as_nobody(&["-p"], &[("MAIL_CONFIG", "/etc/postfix")]),
    ] {
        assert_ne!(out.status.code(), Some(77), "{out:?}");
    }
    // Root is trusted with any directory.
    let out = Command::new(&s.bin)
        .args(["-c", &etc, "-p"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("4Xb2Yk3pRtz7Qw"));
}

#[test]
fn listed_and_default_directories_are_read_with_a_clean_environment() {
    let Some(s) = setup("listed_and_default_directories_are_read_with_a_clean_environment") else {
        return;
    };
    let hostile = [("TZ", "Pacific/Kiritimati"), ("LANG", "C.UTF-8")];
    let alt = s.dir("alt");
    for args in [vec!["-c", alt.as_str(), "-p"], vec!["-p"]] {
        let out = s.with_default(true, &args, &hostile);
        let listing = text(&out.stdout);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(listing.contains("4Xb2Yk3pRtz7Qw"), "{listing}");
        // An unsafe process drops the caller's TZ (Postfix's clean_env
        // with safe_getenv) and shows local time, never the caller's zone.
        assert!(!listing.contains(KIRITIMATI_TIME), "{listing}");
    }
    let etc = s.dir("etc");
    assert_refused(&s.with_default(true, &["-c", &etc, "-p"], &hostile), &etc);
    // Root keeps import_environment's names: the same listing in TZ.
    let out = s.with_default(false, &["-c", &etc, "-p"], &hostile);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(KIRITIMATI_TIME), "{out:?}");
}
