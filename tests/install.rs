//! Install tests, as root, in a throw-away Debian root with Debian's
//! postfix installed (pkg/test-root: mmdebstrap once, then a cached
//! tarball) that runs in its own mount, network, pid and uts namespaces
//! (loopback only, so its port 25 is not the host's):
//! - package_replaces_debian_postfix: scripts/package's .deb installed with
//!   apt over Debian's postfix; mail(1), a cron-style `sendmail -t`, swaks
//!   on port 25 and Debian's hash: tables (aliases, virtual) deliver; the
//!   privilege table is checked process by process from /proc; the man
//!   pages are the project's; removal stops everything and Debian's
//!   postfix, reinstalled, delivers again.
//! - postfix_queue_is_imported: deferred mail (a destination that cannot
//!   be reached, one recipient already delivered), held mail and a
//!   maildrop file in Postfix's queue: the install imports them
//!   (postfix-import-queue); once the destination is reachable and the
//!   hold released, each is delivered exactly once with its envelope.
//! - unreadable_postfix_queue_file_is_left: a Postfix queue file that is
//!   not a message stays as it was, listed with the drain steps; the mail
//!   system is not started.
//! - from_source_install_and_uninstall: scripts/install and --uninstall.
//! - systemd_unit_starts_reloads_stops: the root booted under
//!   systemd-nspawn: postinst enables and starts postfix.service; reload,
//!   stop, start; the log in the journal under facility mail.
//!
//! Debian's stock main.cf and master.cf are used unchanged: the services
//! naming Postfix programs we do not need (tlsmgr, scache, postlogd) are
//! skipped with a warning; verify, flush and proxymap are ours.
//!
//! POSTFIX_RS_DEB=path uses a prebuilt package instead of building one
//! from the debug build (scripts/package with BIN_DIR, uncompressed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fds;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Programs the package must hold for Debian's master.cf to start.
const BINS: &[&str] = &[
    "master",
    "pickup",
    "cleanup",
    "qmgr",
    "trivial-rewrite",
    "bounce",
    "smtpd",
    "showq",
    "local",
    "virtual",
    "pipe",
    "smtp",
    "error",
    "discard",
    "flush",
    "verify",
    "proxymap",
    "lmtp",
    "anvil",
    "postfix",
    "postconf",
    "postdrop",
    "postfix-import-queue",
    "postqueue",
    "postsuper",
    "postmap",
    "postalias",
    "sendmail",
    "mailq",
    "newaliases",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The .deb under test: POSTFIX_RS_DEB, or built once for all tests here.
fn package() -> PathBuf {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(|| {
        if let Some(p) = std::env::var_os("POSTFIX_RS_DEB") {
            return PathBuf::from(p);
        }
        testkit::need_bins(BINS);
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("postfix-rs-deb");
        let built = Command::new(workspace().join("scripts/package"))
            .env("BIN_DIR", testkit::bin_dir())
            .env("OUT_DIR", &out)
            .env("COMPRESS", "none")
            .output()
            .expect("run scripts/package");
        assert!(built.status.success(), "scripts/package: {}", text(&built));
        let path = String::from_utf8_lossy(&built.stdout).trim().to_string();
        PathBuf::from(path)
    })
    .clone()
}

/// Puts the package into a root: a hard link where it can (the uncompressed
/// package is large and four roots hold it at once), else a copy.
fn place(deb: &Path, to: &Path) {
    if std::fs::hard_link(deb, to).is_err() {
        std::fs::copy(deb, to).unwrap();
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A Debian root in its own namespaces, held open by a `sleep` in them.
struct Root {
    dir: tempfile::TempDir,
    holder: Child,
    /// The holder's pid (host view): nsenter's target.
    pid: u32,
}

impl Root {
    fn new() -> Root {
        for (prog, pkg) in [
            ("mmdebstrap", "mmdebstrap"),
            ("unshare", "util-linux"),
            ("nsenter", "util-linux"),
            ("ip", "iproute2"),
            ("dpkg-deb", "dpkg"),
        ] {
            testkit::need_program(prog, pkg);
        }
        let dir = tempfile::Builder::new()
            .prefix("postfix-rs-root")
            .tempdir()
            .unwrap();
        let root = dir.path().join("root");
        let made = Command::new(workspace().join("pkg/test-root"))
            .arg(&root)
            .output()
            .unwrap();
        assert!(made.status.success(), "pkg/test-root: {}", text(&made));
        let r = root.display();
        let setup = format!(
            "set -e; ip link set lo up; hostname mx.example.test; \
             mount -t proc proc {r}/proc; mount --rbind /dev {r}/dev; \
             mount -t tmpfs tmpfs {r}/run; echo ready; exec sleep 100000"
        );
        let mut holder = Command::new("unshare")
            .args([
                "--mount",
                "--net",
                "--pid",
                "--uts",
                "--fork",
                "--kill-child",
                "sh",
                "-c",
            ])
            .arg(&setup)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "namespace setup failed");
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", holder.id())).unwrap();
        let pid = children.split_whitespace().next().unwrap().parse().unwrap();
        let r = Root { dir, holder, pid };
        // Nothing in the root may ask questions or be refused a start.
        r.ok("printf '#!/bin/sh\\nexit 0\\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d");
        r
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join("root").join(p.trim_start_matches('/'))
    }

    /// Runs a shell command inside the root.
    fn sh(&self, cmd: &str) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.pid.to_string(), "-m", "-n", "-p", "-u", "--"])
            .arg("chroot")
            .arg(self.dir.path().join("root"))
            .args(["/bin/sh", "-c", cmd])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("LANG", "C")
            .output()
            .unwrap()
    }

    fn ok(&self, cmd: &str) -> String {
        let o = self.sh(cmd);
        assert!(o.status.success(), "in the root: {cmd}: {}", text(&o));
        text(&o)
    }

    /// Mounts host directory `from` read-only at `to` inside the root.
    fn bind(&self, from: &Path, to: &str) {
        let target = self.path(to);
        std::fs::create_dir_all(&target).unwrap();
        let o = Command::new("nsenter")
            .args([
                "-t",
                &self.pid.to_string(),
                "-m",
                "--",
                "mount",
                "--bind",
                "-o",
                "ro",
            ])
            .arg(from)
            .arg(&target)
            .output()
            .unwrap();
        assert!(o.status.success(), "bind {}: {}", from.display(), text(&o));
    }

    fn install(&self) -> Output {
        let deb = package();
        place(&deb, &self.path("/tmp/postfix-rs.deb"));
        self.sh("apt-get install -y /tmp/postfix-rs.deb")
    }

    /// Pids (host view) of the processes in the root's pid namespace.
    fn processes(&self) -> Vec<u32> {
        let ns = std::fs::read_link(format!("/proc/{}/ns/pid", self.pid)).unwrap();
        let mut pids = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if pid != self.pid
                && std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok() == Some(ns.clone())
            {
                pids.push(pid);
            }
        }
        pids
    }

    fn wait_file_has(&self, p: &str, needle: &str) -> bool {
        let path = self.path(p);
        testkit::wait_until(Duration::from_secs(30), || {
            std::fs::read_to_string(&path).is_ok_and(|t| t.contains(needle))
        })
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        // The pid namespace's init dies: every process in it goes too.
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// One `/proc/PID/status` field's first value.
fn status_field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or_default()
        .to_string()
}

/// master.cf's command -> chroot column (y for any service of it).
fn chroot_by_command(master_cf: &str) -> HashMap<String, bool> {
    let mut map = HashMap::new();
    for line in master_cf.lines() {
        if line.starts_with('#') || line.starts_with(char::is_whitespace) {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 8 {
            let chrooted = map.entry(f[7].to_string()).or_insert(false);
            *chrooted |= f[4] == "y";
        }
    }
    map
}

/// The privilege table of ARCHITECTURE.md, process by process.
fn check_privileges(root: &Root) {
    let passwd = std::fs::read_to_string(root.path("/etc/passwd")).unwrap();
    let postfix_uid = passwd
        .lines()
        .find_map(|l| l.strip_prefix("postfix:"))
        .and_then(|l| l.split(':').nth(1))
        .expect("postfix account in the root")
        .to_string();
    let chroots =
        chroot_by_command(&std::fs::read_to_string(root.path("/etc/postfix/master.cf")).unwrap());
    let jail = root.path("/var/spool/postfix");
    let may_be_root = ["master", "local", "virtual", "pipe", "auth"];
    let root_dir = root.path("/");
    let queue_dir = PathBuf::from("/var/spool/postfix");
    let sys = fds::System {
        root: &root_dir,
        queue_dir: &queue_dir,
        maillog_file: None,
    };
    // One process's problems, or None when it is gone or not ours.
    let problems = |pid: u32| -> Option<(String, Vec<String>)> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        if status_field(&status, "State:").starts_with('Z') {
            return None;
        }
        let comm = status_field(&status, "Name:");
        if !BINS.contains(&comm.as_str()) {
            return None;
        }
        let mut bad = Vec::new();
        let uid = status_field(&status, "Uid:");
        let euid = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .unwrap_or_default()
            .to_string();
        let dir = std::fs::read_link(format!("/proc/{pid}/root")).unwrap_or_default();
        // Open descriptors: no terminal, nothing writable in the queue or
        // the configuration, no directory outside a chroot.
        let chrooted = chroots.get(&comm).copied().unwrap_or(false) && dir == jail;
        let fds = fds::problems(&sys, pid, &comm, chrooted);
        if !fds.is_empty() {
            bad.push(format!("{}\n{}", fds.join("\n"), fds::describe(pid)));
        }
        if may_be_root.contains(&comm.as_str()) {
            if comm == "pipe" {
                bad.push("pipe runs only per delivery".to_owned());
            }
            if dir != root.path("/") {
                bad.push(format!("not chrooted, but in {}", dir.display()));
            }
            return Some((comm, bad));
        }
        if !euid.split_whitespace().skip(1).all(|u| u == postfix_uid) {
            bad.push(format!("must run as postfix ({postfix_uid}): {euid}"));
        }
        if status_field(&status, "CapEff:") != "0000000000000000" {
            bad.push("has capabilities".to_owned());
        }
        if chroots.get(&comm).copied().unwrap_or(false) && dir != jail {
            bad.push(format!(
                "must be chrooted in the queue, is in {}",
                dir.display()
            ));
        }
        if uid == "0" {
            bad.push("real uid 0".to_owned());
        }
        Some((comm, bad))
    };
    let mut seen = Vec::new();
    let mut suspects = Vec::new();
    for pid in root.processes() {
        if let Some((comm, bad)) = problems(pid) {
            if !bad.is_empty() {
                suspects.push(pid);
            }
            seen.push(comm);
        }
    }
    // A daemon that master has just started runs as root, unchrooted,
    // until it has read its configuration and dropped privileges: a
    // problem counts only when the process still has it a while later.
    let mut held = Vec::new();
    for pid in suspects {
        testkit::wait_until(Duration::from_secs(5), || {
            problems(pid).is_none_or(|(_, bad)| bad.is_empty())
        });
        if let Some((comm, bad)) = problems(pid).filter(|(_, bad)| !bad.is_empty()) {
            held.push(format!("{comm} ({pid}): {}", bad.join("; ")));
        }
    }
    assert!(held.is_empty(), "{}", held.join("\n"));
    for daemon in ["master", "qmgr", "pickup", "smtpd"] {
        assert!(
            seen.iter().any(|s| s == daemon),
            "{daemon} is not running: {seen:?}"
        );
    }
    // A chrooted daemon sees the queue as /: no shadow file there.
    assert!(
        !jail.join("etc/shadow").exists(),
        "shadow copied into the chroot"
    );
    // set-gid: postdrop and postqueue only, group postdrop; no set-uid.
    let special = root.ok(
        "dpkg -L postfix-rs | while read -r f; do [ -f \"$f\" ] && [ -u \"$f\" -o -g \"$f\" ] && \
         stat -c '%n %A %G' \"$f\"; done; true",
    );
    let mut lines: Vec<&str> = special.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "/usr/sbin/postdrop -rwxr-sr-x postdrop",
            "/usr/sbin/postqueue -rwxr-sr-x postdrop"
        ],
        "set-gid/set-uid programs"
    );
    // Nothing in the queue tree is world writable (a socket counts only
    // where its directory lets others reach it).
    let writable = root.ok(
        "find /var/spool/postfix -xdev -perm -0002 ! -type l ! -type s; \
         find /var/spool/postfix -xdev -type s -perm -0002 | while read -r f; do \
         [ -n \"$(find \"$(dirname \"$f\")\" -maxdepth 0 -perm -0001)\" ] && echo \"$f\"; done; true",
    );
    assert_eq!(writable.trim(), "", "world-writable in the queue tree");
}

#[test]
fn package_replaces_debian_postfix() {
    if testkit::skip_unless_root("it installs a package into a chroot in new namespaces") {
        return;
    }
    let started = Instant::now();
    let root = Root::new();
    // Tables made by Debian's Postfix (Berkeley DB): an alias and a
    // virtual alias, which must keep working after the install.
    root.ok(
        "printf 'helpdesk: root\\n' >>/etc/aliases && newaliases && \
         printf 'vtest@localhost root\\n' >/etc/postfix/virtual && \
         postmap hash:/etc/postfix/virtual && \
         postconf -e virtual_alias_maps=hash:/etc/postfix/virtual",
    );
    let main_cf = std::fs::read(root.path("/etc/postfix/main.cf")).unwrap();
    let master_cf = std::fs::read(root.path("/etc/postfix/master.cf")).unwrap();

    let installed = root.install();
    let out = text(&installed);
    assert!(installed.status.success(), "apt install: {out}");
    assert!(
        out.contains("Removing postfix"),
        "Debian's postfix not removed: {out}"
    );
    assert!(
        root.sh("dpkg -s postfix | grep -q '^Status: install ok installed'")
            .status
            .code()
            == Some(1)
    );
    assert_eq!(
        std::fs::read(root.path("/etc/postfix/main.cf")).unwrap(),
        main_cf,
        "main.cf changed"
    );
    assert_eq!(
        std::fs::read(root.path("/etc/postfix/master.cf")).unwrap(),
        master_cf,
        "master.cf changed"
    );
    // Links and the alias database (rebuilt from /etc/aliases in our format).
    root.ok("test -x /usr/sbin/sendmail && test -x /usr/bin/mailq && test -x /usr/bin/newaliases");
    root.ok("postalias -q postmaster hash:/etc/aliases | grep -qx root");

    // mail(1) (bsd-mailx calls /usr/sbin/sendmail), cron-style sendmail -t, swaks on 25.
    root.ok("echo hi | mail -s viamail root");
    assert!(
        root.wait_file_has("/var/mail/root", "Subject: viamail"),
        "mail(1) not delivered: {}",
        root.ok("mailq; true")
    );
    root.ok("printf 'To: root\\nSubject: viacron\\n\\nbody\\n' | /usr/sbin/sendmail -t");
    assert!(
        root.wait_file_has("/var/mail/root", "Subject: viacron"),
        "sendmail -t not delivered"
    );
    root.ok("swaks --silent 2 --server 127.0.0.1:25 --to postmaster@localhost --header 'Subject: viaswaks'");
    assert!(
        root.wait_file_has("/var/mail/root", "Subject: viaswaks"),
        "swaks mail not delivered"
    );

    for (rcpt, subject) in [
        ("helpdesk@localhost", "viaalias"),
        ("vtest@localhost", "viavirtual"),
    ] {
        root.ok(&format!(
            "swaks --silent 2 --server 127.0.0.1:25 --to {rcpt} --header 'Subject: {subject}'"
        ));
        assert!(
            root.wait_file_has("/var/mail/root", &format!("Subject: {subject}")),
            "{rcpt}: not delivered"
        );
    }

    check_privileges(&root);

    // The project's man pages are what man finds.
    for (sec, page) in [("5", "postconf"), ("5", "master"), ("8", "smtpd")] {
        let found = root.ok(&format!("man -w {sec} {page}"));
        assert_eq!(
            found.trim(),
            format!("/usr/share/man/man{sec}/{page}.{sec}.gz")
        );
        let ours = std::fs::read_to_string(workspace().join(format!("man/man{sec}/{page}.{sec}")))
            .unwrap();
        let shown = root.ok(&format!("zcat /usr/share/man/man{sec}/{page}.{sec}.gz"));
        assert_eq!(shown, ours, "{page}({sec}) is not the project's page");
    }
    let unit =
        std::fs::read_to_string(root.path("/usr/lib/systemd/system/postfix.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/sbin/postfix start-fg"));
    assert!(unit.contains("ExecReload=/usr/sbin/postfix reload"));

    // Removal stops the mail system and keeps config, queue and mail.
    let removed = root.sh("apt-get remove -y postfix-rs");
    assert!(removed.status.success(), "apt remove: {}", text(&removed));
    let ours = |r: &Root| -> Vec<String> {
        r.processes()
            .into_iter()
            .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
            .filter(|s| !status_field(s, "State:").starts_with('Z'))
            .map(|s| status_field(&s, "Name:"))
            .filter(|n| BINS.contains(&n.as_str()))
            .collect()
    };
    testkit::wait_until(Duration::from_secs(30), || ours(&root).is_empty());
    let left = ours(&root);
    assert!(left.is_empty(), "processes left after remove: {left:?}");
    assert!(!root.path("/usr/sbin/sendmail").exists());
    assert_eq!(
        std::fs::read(root.path("/etc/postfix/main.cf")).unwrap(),
        main_cf
    );
    assert!(
        root.path("/var/mail/root")
            .metadata()
            .is_ok_and(|m| m.len() > 0)
    );

    // Debian's postfix comes back (from apt's cache: no network here) and
    // works with the configuration and tables as they were.
    let back = root.sh("apt-get install -y --no-download --no-install-recommends postfix && (postfix status || postfix start)");
    assert!(
        back.status.success(),
        "reinstalling Debian's postfix: {}",
        text(&back)
    );
    root.ok("printf 'Subject: postfixagain\\n\\nx\\n' | sendmail vtest@localhost");
    assert!(
        root.wait_file_has("/var/mail/root", "Subject: postfixagain"),
        "Debian's postfix does not deliver after the removal: {}",
        root.ok("mailq; postconf -n; true")
    );
    println!("install test took {:?}", started.elapsed());
}

/// Postfix's files in its queues (maildrop, incoming, active, deferred,
/// hold), relative to the root.
fn postfix_queue_files(root: &Root) -> Vec<String> {
    let out = root.ok(
        "cd /var/spool/postfix && find maildrop incoming active deferred hold -type f 2>/dev/null | sort; true",
    );
    out.lines().map(str::to_owned).collect()
}

#[test]
fn postfix_queue_is_imported() {
    if testkit::skip_unless_root("it installs a package into a chroot in new namespaces") {
        return;
    }
    let root = Root::new();
    // Debian's postfix: later.example is unreachable (nothing listens on
    // the port its transport names), done.example is discarded at once.
    root.ok(
        "postconf -e 'transport_maps = inline:{ later.example=smtp:[127.0.0.1]:2525, done.example=discard: }' \
         'minimal_backoff_time = 1h' 'maximal_backoff_time = 2h' && postfix start",
    );
    let wait_deferred = |n: usize| {
        assert!(
            testkit::wait_until(Duration::from_secs(30), || {
                root.ok("find /var/spool/postfix/deferred -type f | wc -l")
                    .trim()
                    == n.to_string()
            }),
            "deferred mail: {}",
            root.ok("mailq; true")
        );
    };
    // Held mail.
    root.ok("printf 'Subject: import-held\\n\\nh\\n' | sendmail -f holder@example.org root@later.example");
    wait_deferred(1);
    root.ok("postsuper -h ALL deferred");
    // Deferred mail with a recipient already delivered (x@done.example):
    // only root@later.example may be delivered after the import.
    root.ok("printf 'Subject: import-deferred\\n\\nd\\n' | sendmail -f alice@example.org x@done.example root@later.example");
    wait_deferred(1);
    root.ok("postfix stop");
    // Mail dropped while Postfix is down: a maildrop file.
    root.ok("printf 'Subject: import-maildrop\\n\\nm\\n' | sendmail -f bob@example.org root@later.example");
    let before = postfix_queue_files(&root);
    assert_eq!(before.len(), 3, "Postfix's queue: {before:?}");

    let installed = root.install();
    let out = text(&installed);
    assert!(installed.status.success(), "apt install: {out}");
    assert!(out.contains("imported from Postfix"), "no import: {out}");
    for f in &before {
        assert!(
            !root.path(&format!("/var/spool/postfix/{f}")).exists(),
            "{f} still there: {out}"
        );
    }
    // Our queue holds the three (the held one held), nothing delivered yet:
    // later.example is still unreachable.
    let q = root.ok("mailq");
    for sender in ["holder@example.org", "alice@example.org", "bob@example.org"] {
        assert!(
            testkit::wait_until(Duration::from_secs(20), || root
                .ok("mailq")
                .contains(sender)),
            "{sender} not in our queue: {q}"
        );
    }
    assert!(
        root.ok("postqueue -p").contains("!"),
        "held mail not held: {}",
        root.ok("postqueue -p")
    );
    // The destination becomes reachable; root releases the hold (postsuper
    // drops to mail_owner after its repairs, so the hashed deferred/
    // subdirectory it makes is mail_owner's and qmgr reads it).
    root.ok(
        "postconf -e 'transport_maps = inline:{ later.example=local:, done.example=discard: }' \
         maillog_file=/var/log/mail.log && postfix reload && sleep 1 && \
         postsuper -H ALL && postqueue -f",
    );
    for subject in ["import-held", "import-deferred", "import-maildrop"] {
        assert!(
            root.wait_file_has("/var/mail/root", &format!("Subject: {subject}")),
            "{subject} not delivered: {}",
            root.ok("mailq; ls -la /var/mail; tail -40 /var/log/mail.log 2>/dev/null; true")
        );
    }
    assert!(
        testkit::wait_until(Duration::from_secs(20), || root
            .ok("postqueue -p")
            .contains("Mail queue is empty")),
        "queue not empty: {}",
        root.ok("postqueue -p")
    );
    // Exactly once each, with its envelope sender and original recipient.
    let mbox = std::fs::read_to_string(root.path("/var/mail/root")).unwrap();
    for (subject, sender) in [
        ("import-held", "holder@example.org"),
        ("import-deferred", "alice@example.org"),
        ("import-maildrop", "bob@example.org"),
    ] {
        assert_eq!(
            mbox.matches(&format!("Subject: {subject}")).count(),
            1,
            "{subject}: {mbox}"
        );
        let msg = mbox
            .split("\nFrom ")
            .find(|m| m.contains(&format!("Subject: {subject}")))
            .unwrap();
        assert!(
            msg.contains(&format!("Return-Path: <{sender}>")),
            "{subject}: envelope sender lost: {msg}"
        );
        assert!(
            msg.contains("X-Original-To: root@later.example"),
            "{subject}: original recipient lost: {msg}"
        );
    }
    assert!(
        !mbox.contains("x@done.example"),
        "done recipient delivered again"
    );
}

/// A Postfix queue file that is not a message: left in place, listed with
/// the drain steps, and the mail system not started over it.
#[test]
fn unreadable_postfix_queue_file_is_left() {
    if testkit::skip_unless_root("it installs a package into a chroot in new namespaces") {
        return;
    }
    let root = Root::new();
    root.ok("mkdir -p /var/spool/postfix/deferred/A && printf 'C\\001x' >/var/spool/postfix/deferred/A/A1B2C3 && chown -R postfix /var/spool/postfix/deferred/A && chmod 700 /var/spool/postfix/deferred/A/A1B2C3");
    let installed = root.install();
    let out = text(&installed);
    assert!(installed.status.success(), "apt install: {out}");
    assert!(
        out.contains("deferred/A/A1B2C3")
            && out.contains("postqueue -f")
            && out.contains("not started"),
        "no list and drain steps: {out}"
    );
    assert_eq!(
        std::fs::read(root.path("/var/spool/postfix/deferred/A/A1B2C3")).unwrap(),
        b"C\x01x"
    );
    assert!(
        root.sh("postfix status").status.code() != Some(0),
        "started over it"
    );
}

#[test]
fn from_source_install_and_uninstall() {
    if testkit::skip_unless_root("it installs into a chroot in new namespaces") {
        return;
    }
    testkit::need_bins(BINS);
    let root = Root::new();
    root.bind(&workspace(), "/src");
    root.bind(&testkit::bin_dir(), "/bins");
    let refused = root.sh("BIN_DIR=/bins /src/scripts/install");
    assert!(
        !refused.status.success(),
        "installed over Debian's postfix package"
    );
    assert!(
        text(&refused).contains("Debian's postfix package is installed"),
        "{}",
        text(&refused)
    );

    root.ok("apt-get remove -y postfix");
    let main_cf = std::fs::read(root.path("/etc/postfix/main.cf")).unwrap();
    root.ok("BIN_DIR=/bins /src/scripts/install");
    assert_eq!(
        std::fs::read(root.path("/etc/postfix/main.cf")).unwrap(),
        main_cf,
        "main.cf changed"
    );
    root.ok("printf 'To: root\\nSubject: fromsource\\n\\nbody\\n' | /usr/sbin/sendmail -t");
    assert!(
        root.wait_file_has("/var/mail/root", "Subject: fromsource"),
        "not delivered: {}",
        root.ok("mailq; true")
    );
    assert_eq!(
        root.ok("stat -c '%A %G' /usr/sbin/postdrop /usr/sbin/postqueue"),
        "-rwxr-sr-x postdrop\n-rwxr-sr-x postdrop\n"
    );
    root.ok("man -w 5 postconf | grep -qx /usr/share/man/man5/postconf.5.gz");

    root.ok("/src/scripts/install --uninstall");
    for gone in [
        "/usr/sbin/sendmail",
        "/usr/bin/mailq",
        "/usr/libexec/postfix/master",
        "/usr/share/man/man5/postconf.5.gz",
    ] {
        assert!(
            root.path(gone).symlink_metadata().is_err(),
            "{gone} left after --uninstall"
        );
    }
    assert!(
        testkit::wait_until(Duration::from_secs(10), || {
            root.processes().iter().all(|p| {
                std::fs::read_to_string(format!("/proc/{p}/status")).map_or(true, |s| {
                    status_field(&s, "State:").starts_with('Z')
                        || !BINS.contains(&status_field(&s, "Name:").as_str())
                })
            })
        }),
        "the mail system still runs after --uninstall"
    );
    assert_eq!(
        std::fs::read(root.path("/etc/postfix/main.cf")).unwrap(),
        main_cf,
        "main.cf not kept"
    );
    assert!(
        root.path("/var/mail/root")
            .metadata()
            .is_ok_and(|m| m.len() > 0),
        "mail not kept"
    );
    assert!(
        root.path("/var/spool/postfix/deferred").is_dir(),
        "queue not kept"
    );
}

/// The same root booted under systemd-nspawn (systemd as its init, a
/// private network): the package's postinst enables and starts
/// postfix.service, systemctl reload and stop reach `postfix`, the log goes
/// to the journal under the mail facility.
struct Booted {
    /// Removed after the container is down (fields drop after `drop`).
    _dir: tempfile::TempDir,
    nspawn: Child,
    leader: u32,
}

impl Booted {
    fn new() -> Booted {
        testkit::need_program("systemd-nspawn", "systemd-container");
        testkit::need_program("mmdebstrap", "mmdebstrap");
        let dir = tempfile::Builder::new()
            .prefix("postfix-rs-boot")
            .tempdir()
            .unwrap();
        let root = dir.path().join("root");
        let made = Command::new(workspace().join("pkg/test-root"))
            .arg(&root)
            .output()
            .unwrap();
        assert!(made.status.success(), "pkg/test-root: {}", text(&made));
        // /tmp is a fresh tmpfs once booted: the package waits in /root.
        place(&package(), &root.join("root/postfix-rs.deb"));
        let nspawn = Command::new("systemd-nspawn")
            .arg("-D")
            .arg(&root)
            .args([
                "--boot",
                "--private-network",
                "--register=no",
                "--keep-unit",
                "--console=passive",
            ])
            .arg(format!("--machine=pfrs{}", std::process::id()))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("console")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("nspawn.log")).unwrap())
            .spawn()
            .unwrap();
        let id = nspawn.id();
        // The container's init: nspawn's child once it has become systemd.
        let mut leader = 0;
        testkit::wait_until(Duration::from_secs(30), || {
            leader = std::fs::read_to_string(format!("/proc/{id}/task/{id}/children"))
                .ok()
                .and_then(|c| c.split_whitespace().next().and_then(|p| p.parse().ok()))
                .unwrap_or(0);
            std::fs::read_to_string(format!("/proc/{leader}/comm"))
                .is_ok_and(|c| c.trim() == "systemd")
        });
        assert_ne!(leader, 0, "systemd-nspawn started no container");
        let b = Booted {
            _dir: dir,
            nspawn,
            leader,
        };
        // Until its manager answers, systemctl prints nothing.
        let mut state = String::new();
        testkit::wait_until(Duration::from_secs(60), || {
            let o = b.sh("timeout 60 systemctl is-system-running --wait");
            state = String::from_utf8_lossy(&o.stdout).trim().to_string();
            state == "running" || state == "degraded"
        });
        assert!(
            state == "running" || state == "degraded",
            "container not booted: {state} (leader {}): {}",
            b.leader,
            std::fs::read_to_string(b._dir.path().join("nspawn.log")).unwrap_or_default()
        );
        b
    }

    fn sh(&self, cmd: &str) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.leader.to_string(), "-a", "--"])
            .args([
                "/usr/bin/env",
                "-i",
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                "DEBIAN_FRONTEND=noninteractive",
            ])
            .args(["/bin/sh", "-c", cmd])
            .output()
            .unwrap()
    }

    fn ok(&self, cmd: &str) -> String {
        let o = self.sh(cmd);
        assert!(o.status.success(), "in the container: {cmd}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }
}

impl Drop for Booted {
    fn drop(&mut self) {
        // SIGTERM: nspawn asks the container's systemd to power off.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.nspawn.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
    }
}

#[test]
fn systemd_unit_starts_reloads_stops() {
    if testkit::skip_unless_root("it boots a container with systemd-nspawn") {
        return;
    }
    let b = Booted::new();
    // Debian's postfix runs under systemd before the swap.
    assert_eq!(b.ok("systemctl is-active postfix"), "active");
    b.ok("apt-get install -y /root/postfix-rs.deb");
    assert_eq!(b.ok("systemctl is-enabled postfix"), "enabled");
    assert_eq!(b.ok("systemctl is-active postfix"), "active");
    let main = b.ok("systemctl show -p MainPID --value postfix");
    assert_eq!(
        b.ok(&format!("cat /proc/{main}/comm")),
        "master",
        "MainPID is not master"
    );

    // Each line reaches the journal once (syslog), not a second time as a
    // copy on stderr: master's, and the postfix command's under start-fg.
    let count = |pattern: &str| -> String {
        b.ok(&format!(
            "journalctl -u postfix --no-pager -o cat | grep -c '{pattern}' || true"
        ))
    };
    assert!(
        testkit::wait_until(Duration::from_secs(60), || count(
            "daemon started -- version"
        ) != "0"),
        "master's start not in the journal"
    );
    for line in [
        "daemon started -- version",
        "starting the Postfix mail system",
    ] {
        assert_eq!(
            count(line),
            "1",
            "{line}: {}",
            b.ok("journalctl -u postfix --no-pager -o verbose | tail -80")
        );
    }
    b.ok(
        "swaks --silent 2 --server 127.0.0.1:25 --to root@localhost --header 'Subject: viasystemd'",
    );
    b.ok("for i in $(seq 30); do grep -q 'Subject: viasystemd' /var/mail/root && exit 0; sleep 1; done; exit 1");
    // Logged to the journal under the mail facility (2).
    b.ok("journalctl SYSLOG_FACILITY=2 --no-pager | grep -q 'postfix/local.*status=sent'");

    b.ok("systemctl reload postfix");
    // ExecReload's postfix command: its stderr is the journal too. The
    // two lines come from two processes: wait for both (the journal can
    // take more than ten seconds to show them under a full test run).
    testkit::wait_until(Duration::from_secs(60), || {
        count("reload -- version") != "0" && count("refreshing the Postfix mail system") != "0"
    });
    assert_eq!(count("refreshing the Postfix mail system"), "1");
    assert_eq!(count("reload -- version"), "1");
    assert_eq!(
        b.ok("systemctl show -p MainPID --value postfix"),
        main,
        "reload restarted master"
    );
    b.ok("systemctl stop postfix");
    assert_eq!(b.ok("systemctl is-active postfix || true"), "inactive");
    b.ok("! pgrep -x master && ! pgrep -x qmgr");
    b.ok("systemctl start postfix");
    assert_eq!(b.ok("systemctl is-active postfix"), "active");
}
