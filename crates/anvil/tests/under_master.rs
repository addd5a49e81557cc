//! The real anvil under a real master, asked over private/anvil.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use proto::anvil::{Request, call_at};

struct Instance {
    _dir: tempfile::TempDir,
    base: PathBuf,
    qdir: PathBuf,
    master: Child,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.master.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM);
        let _ = self.master.wait();
    }
}

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_anvil"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn skip_reason() -> Option<String> {
    if !bin_dir().join("master").is_file() {
        return Some("master is not built (cargo build -p master)".into());
    }
    if nix::unistd::geteuid().is_root()
        && nix::unistd::User::from_name("postfix")
            .ok()
            .flatten()
            .is_none()
    {
        return Some("needs the mail_owner account `postfix` when running as root".into());
    }
    None
}

fn start(main_extra: &str) -> Instance {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let base = dir.path().canonicalize().unwrap();
    let etc = base.join("etc");
    let qdir = base.join("spool");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&qdir).unwrap();
    let owner = nix::unistd::geteuid()
        .is_root()
        .then(|| nix::unistd::User::from_name("postfix").unwrap().unwrap())
        .map(|u| (u.uid.as_raw(), u.gid.as_raw()));
    queue::layout::create_or_repair(&qdir, owner, None).unwrap();
    std::fs::write(
        etc.join("main.cf"),
        format!(
            "queue_directory = {}\ndaemon_directory = {}\nmaillog_file = {}\n{main_extra}",
            qdir.display(),
            bin_dir().display(),
            base.join("maillog").display()
        ),
    )
    .unwrap();
    // The line etc-postfix/master.cf ships, with max_use/max_idle small
    // to show that anvil ignores them.
    std::fs::write(
        etc.join("master.cf"),
        "anvil unix - - y - 1 anvil -o max_use=2 -o max_idle=1s\n",
    )
    .unwrap();
    let master = Command::new(bin_dir().join("master"))
        .arg("-c")
        .arg(&etc)
        .env("MAIL_CONFIG", &etc)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let inst = Instance {
        _dir: dir,
        base,
        qdir,
        master,
    };
    let sock = inst.qdir.join(proto::anvil::SERVICE);
    let end = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < end, "master did not create private/anvil");
        std::thread::sleep(Duration::from_millis(20));
    }
    inst
}

fn req(kind: &str, service: &str, client: &str) -> Request {
    let (service, client) = (service.to_string(), client.to_string());
    match kind {
        "connect" => Request::Connect { service, client },
        "disconnect" => Request::Disconnect { service, client },
        _ => Request::Lookup { service, client },
    }
}

#[test]
fn counts_connections_and_rates_under_master() {
    if let Some(r) = skip_reason() {
        println!("skipped: counts_connections_and_rates_under_master: {r}");
        return;
    }
    let inst = start("anvil_status_update_time = 1s\nanvil_rate_time_unit = 60s\n");
    let q = &inst.qdir;
    let call = |k: &str, s: &str, c: &str| call_at(q, &req(k, s, c)).unwrap();
    assert_eq!(call("connect", "smtp", "192.0.2.1"), (1, 1));
    assert_eq!(call("connect", "smtp", "192.0.2.1"), (2, 2));
    assert_eq!(call("connect", "smtp", "192.0.2.1"), (3, 3));
    assert_eq!(call("disconnect", "smtp", "192.0.2.1"), (2, 3));
    assert_eq!(call("lookup", "smtp", "192.0.2.1"), (2, 3));
    assert_eq!(call("connect", "submission", "192.0.2.1"), (1, 1));
    assert_eq!(call("connect", "smtp", "192.0.2.2"), (1, 1));
    // Past max_use=2 connections and max_idle=1s, anvil still remembers.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(call("lookup", "smtp", "192.0.2.1"), (2, 3));
    // Many requests on one connection, as a long-lived client would send.
    let mut s = proto::connect(q, proto::anvil::SERVICE).unwrap();
    for i in 1..=5u32 {
        proto::send(&mut s, &req("connect", "smtp", "198.51.100.1")).unwrap();
        let r: proto::anvil::Reply = proto::recv(&mut s).unwrap();
        assert_eq!(r, proto::anvil::Reply::Counts { count: i, rate: i });
    }
    // Garbage ends only that connection.
    use std::io::Write;
    let mut bad = proto::connect(q, proto::anvil::SERVICE).unwrap();
    bad.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).unwrap();
    assert_eq!(call("lookup", "smtp", "198.51.100.1"), (5, 5));
    // The statistics, as Postfix logs them.
    let log = inst.base.join("maillog");
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("statistics: max connection rate 5/60s for (smtp:198.51.100.1) at ")
            && text.contains("statistics: max connection count 5 for (smtp:198.51.100.1) at ")
            && text.contains("statistics: max cache size ")
        {
            assert!(text.contains("postfix/anvil["), "{text}");
            break;
        }
        assert!(Instant::now() < end, "no statistics in the log:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn client_functions_report_a_missing_anvil() {
    let d = tempfile::tempdir().unwrap();
    assert!(call_at(d.path(), &req("connect", "smtp", "192.0.2.1")).is_err());
}
