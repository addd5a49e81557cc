//! master and the `postfix` command: start, status, children, reload,
//! refusal of a second master, stop and abort, maxproc, max_use,
//! max_idle, wakeup and throttling.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::util::*;

#[test]
fn start_serves_echo_and_stop_leaves_nothing() {
    need_instance();
    let inst = Instance::echo();
    let st = inst.postfix(&["status"]);
    assert_eq!(st.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&st.stderr).contains("the Postfix mail system is not running"));

    inst.start();
    let st = inst.postfix(&["status"]);
    assert!(st.status.success());
    let master = inst.master_pid().unwrap();
    assert!(String::from_utf8_lossy(&st.stderr).contains(&format!("is running: PID: {master}")));
    assert!(inst.log().contains("daemon started -- version"));

    let mut pids = vec![
        ask_pid(local(inst.port)),
        ask_pid_unix(&inst.socket(true, "echo")),
    ];
    if inst.v6 {
        pids.push(ask_pid(SocketAddr::from((
            std::net::Ipv6Addr::LOCALHOST,
            inst.port,
        ))));
    }
    // A client that stays connected keeps one child busy during stop.
    let busy = TcpStream::connect(local(inst.port)).unwrap();
    busy.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    std::io::Write::write_all(&mut &busy, b"hello\n").unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&busy), &mut line).unwrap();
    assert_eq!(line, "hello\n");
    assert!(wait_until(Duration::from_secs(5), || inst.children().len()
        >= pids.len()));
    let children = inst.children();
    for p in &pids {
        assert!(
            children.contains(p),
            "{p} not a child of master: {children:?}"
        );
    }

    let out = inst.postfix(&["stop"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopping the Postfix mail system"));
    assert!(!alive(master));
    for c in children {
        assert!(!alive(c), "child {c} survived postfix stop");
    }
    assert_eq!(inst.leftovers(), Vec::<i32>::new());
    assert!(inst.log().contains("terminating on signal 15"));
    assert_eq!(inst.postfix(&["status"]).status.code(), Some(1));
    assert!(!answers(local(inst.port)));
}

#[test]
fn killed_child_is_replaced() {
    need_instance();
    let inst = Instance::echo();
    inst.start();
    let first = ask_pid(local(inst.port));
    kill9(first);
    assert!(wait_until(Duration::from_secs(5), || !alive(first)));
    let second = ask_pid(local(inst.port));
    assert_ne!(first, second);
    assert!(inst.children().contains(&second));
    assert!(wait_until(Duration::from_secs(2), || inst
        .log()
        .contains(&format!("pid {first} killed by signal 9"))));
}

#[test]
fn reload_adds_and_removes_listeners() {
    need_instance();
    let (a, b) = (free_port(), free_port());
    let keep = "echo unix - n n - 4 echo\n";
    let inst = Instance::new("", &format!("127.0.0.1:{a} inet n - n - 4 echo\n{keep}"));
    inst.start();
    let sock = inst.socket(true, "echo");
    let kept_child = ask_pid_unix(&sock);
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&sock).unwrap());
    assert!(answers(local(a)));
    assert!(!answers(local(b)));

    inst.write_master_cf(&format!("{keep}127.0.0.1:{b} inet n - n - 4 echo\n"));
    let out = inst.postfix(&["reload"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refreshing the Postfix mail system"));
    assert!(
        wait_until(Duration::from_secs(5), || answers(local(b))),
        "new listener"
    );
    assert!(
        wait_until(Duration::from_secs(5), || !answers(local(a))),
        "removed listener"
    );
    ask_pid(local(b));
    // The unchanged service kept its socket and its child.
    let inode2 = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&sock).unwrap());
    assert_eq!(inode, inode2);
    assert_eq!(ask_pid_unix(&sock), kept_child);
    assert!(inst.log().contains("reload -- version"));
}

#[test]
fn second_master_is_refused() {
    need_instance();
    let inst = Instance::echo();
    inst.start();
    let first = inst.master_pid().unwrap();
    let out = inst.postfix(&["start"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the Postfix mail system is already running")
    );
    let out = std::process::Command::new(bin_dir().join("master"))
        .arg("-c")
        .arg(&inst.config_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("fatal: the Postfix mail system is already running"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(inst.master_pid(), Some(first));
    ask_pid(local(inst.port));
}

#[test]
fn abort_kills_master_and_children() {
    need_instance();
    let inst = Instance::echo();
    inst.start();
    let master = inst.master_pid().unwrap();
    let _busy = TcpStream::connect(local(inst.port)).unwrap();
    ask_pid(local(inst.port));
    let children = inst.children();
    assert!(!children.is_empty());
    assert!(inst.postfix(&["abort"]).status.success());
    assert!(wait_until(Duration::from_secs(5), || !alive(master)
        && children.iter().all(|c| !alive(*c))));
    assert_eq!(inst.postfix(&["status"]).status.code(), Some(1));
    assert!(wait_until(Duration::from_secs(5), || inst
        .leftovers()
        .is_empty()));
}

#[test]
fn maxproc_limits_concurrent_children() {
    need_instance();
    let port = free_port();
    let inst = Instance::new("", &format!("127.0.0.1:{port} inet n - n - 3 echo\n"));
    inst.start();
    let mut served = Vec::new();
    let mut conns = Vec::new();
    for _ in 0..3 {
        let s = TcpStream::connect(local(port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut w = s.try_clone().unwrap();
        std::io::Write::write_all(&mut w, b"pid\n").unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(s.try_clone().unwrap()),
            &mut line,
        )
        .unwrap();
        served.push(line.trim().to_string());
        conns.push(s);
    }
    served.sort();
    served.dedup();
    assert_eq!(served.len(), 3, "three busy clients, three children");
    // Two more clients wait in the backlog: maxproc stops at 3.
    let _extra = (
        TcpStream::connect(local(port)).unwrap(),
        TcpStream::connect(local(port)).unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(inst.children().len(), 3);
    drop(conns);
    // The waiting clients are served once children are free.
    ask_pid(local(port));
}

#[test]
fn max_use_replaces_child() {
    need_instance();
    let port = free_port();
    let inst = Instance::new(
        "",
        &format!("127.0.0.1:{port} inet n - n - 4 echo -o max_use=2\n"),
    );
    inst.start();
    let pids: Vec<i32> = (0..6).map(|_| ask_pid(local(port))).collect();
    let mut counts = std::collections::HashMap::new();
    for p in &pids {
        *counts.entry(*p).or_insert(0) += 1;
    }
    assert!(
        counts.values().all(|n| *n <= 2),
        "max_use=2 exceeded: {pids:?}"
    );
    let used_up: Vec<i32> = counts
        .iter()
        .filter(|(_, n)| **n == 2)
        .map(|(p, _)| *p)
        .collect();
    assert!(!used_up.is_empty(), "no child served twice: {pids:?}");
    assert!(wait_until(Duration::from_secs(5), || used_up
        .iter()
        .all(|p| !alive(*p))));
}

#[test]
fn max_idle_ends_idle_child() {
    need_instance();
    let port = free_port();
    let inst = Instance::new(
        "",
        &format!("127.0.0.1:{port} inet n - n - 4 echo -o max_idle=1s\n"),
    );
    inst.start();
    let p = ask_pid(local(port));
    assert!(wait_until(Duration::from_secs(5), || !alive(p)));
    assert!(!inst.log().contains("warning: process"), "{}", inst.log());
}

/// master wakes the service of `master_cf` (wakeup time 1 s) at least
/// twice, and one long-lived process serves every wake-up (-z: no
/// max_idle or max_use).
fn assert_woken_twice(master_cf: &str) {
    need_instance();
    let inst = Instance::new("", master_cf);
    inst.start();
    assert!(
        wait_until(Duration::from_secs(6), || inst
            .log()
            .matches("trigger 1 bytes")
            .count()
            >= 2),
        "{}",
        inst.log()
    );
    assert_eq!(inst.children().len(), 1);
}

#[test]
fn wakeup_triggers_fifo_service() {
    assert_woken_twice("tick fifo n - n 1 1 echo\n");
}

#[test]
fn bad_startup_is_throttled() {
    need_instance();
    let port = free_port();
    let inst = Instance::new(
        "",
        &format!("127.0.0.1:{port} inet n - n - 4 echo fail-startup\n"),
    );
    inst.start();
    // A client waits in the backlog, so master keeps wanting a child.
    let _client = TcpStream::connect(local(port)).unwrap();
    let bin = bin_dir().join("echo");
    let throttled = format!(
        "warning: {}: bad command startup -- throttling",
        bin.display()
    );
    assert!(
        wait_until(Duration::from_secs(5), || inst.log().contains(&throttled)),
        "{}",
        inst.log()
    );
    let exit = format!("warning: process {} pid", bin.display());
    assert!(inst.log().contains(&exit) && inst.log().contains("exit status 1"));
    // Throttled (service_throttle_time = 2s): no new attempt for a while...
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        inst.log().matches("exit status 1").count(),
        1,
        "{}",
        inst.log()
    );
    // ...then master tries again.
    assert!(wait_until(Duration::from_secs(5), || inst
        .log()
        .matches("exit status 1")
        .count()
        >= 2));
}

#[test]
fn reload_after_main_cf_change_retires_children_gracefully() {
    need_instance();
    let inst = Instance::echo();
    inst.start();
    // Child A is busy with a client across the reload.
    let busy = TcpStream::connect(local(inst.port)).unwrap();
    busy.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = std::io::BufReader::new(busy.try_clone().unwrap());
    let mut ask_busy = || {
        std::io::Write::write_all(&mut &busy, b"pid\n").unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
        line.trim()
            .strip_prefix("pid ")
            .unwrap()
            .parse::<i32>()
            .unwrap()
    };
    let a = ask_busy();
    let main_cf = inst.config_dir.join("main.cf");
    let mut text = std::fs::read_to_string(&main_cf).unwrap();
    text.push_str("# changed\n");
    std::fs::write(&main_cf, text).unwrap();
    assert!(inst.postfix(&["reload"]).status.success());
    assert!(wait_until(Duration::from_secs(5), || inst
        .log()
        .contains("reload -- version")));
    // New clients get a new child; A finishes its client first, then exits.
    let b = ask_pid(local(inst.port));
    assert_ne!(a, b);
    assert_eq!(ask_busy(), a);
    assert!(alive(a));
    // The closure borrows `reader`; closing both handles ends the client.
    let _ = ask_busy;
    drop(reader);
    drop(busy);
    assert!(wait_until(Duration::from_secs(5), || !alive(a)));
    assert!(
        !inst.log().contains(&format!("pid {a} ")),
        "retired child exits quietly"
    );
}

#[test]
fn wakeup_triggers_unix_service() {
    assert_woken_twice("tock unix n - n 1 1 echo trigger\n");
}

#[test]
fn port_only_inet_service_listens_on_every_interface() {
    need_instance();
    let port = free_port();
    // inet_interfaces = loopback-only (util's main.cf): 127.0.0.1 and ::1.
    let inst = Instance::new("", &format!("{port} inet n - n - 2 echo\n"));
    inst.start();
    ask_pid(local(port));
    if ipv6_available() {
        ask_pid(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)));
    }
}

/// The listen queue is the kernel's largest (net.core.somaxconn), not
/// Postfix's 100: a burst of clients waits for a multi-session smtpd to
/// accept them. `ss` shows a listener's backlog as its Send-Q.
#[test]
fn inet_listener_has_the_largest_backlog() {
    need_instance();
    let port = free_port();
    let inst = Instance::new("", &format!("127.0.0.1:{port} inet n - n - 2 echo\n"));
    inst.start();
    ask_pid(local(port));
    let somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap();
    let out = std::process::Command::new("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
        .unwrap_or_else(|e| panic!("ss (iproute2, scripts/install-deps): {e}"));
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    let send_q = line.split_whitespace().nth(2).unwrap_or_default();
    assert_eq!(send_q, somaxconn.trim(), "ss: {line}");
}

#[test]
fn start_reports_why_master_failed() {
    need_instance();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let inst = Instance::new("", &format!("127.0.0.1:{port} inet n - n - 2 echo\n"));
    let out = inst.postfix(&["start"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("fatal: bind 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(err.contains("Address already in use"), "{err}");
    assert_eq!(inst.postfix(&["status"]).status.code(), Some(1));
}

#[test]
fn multi_server_child_serves_clients_at_once() {
    need_instance();
    let port = free_port();
    let inst = Instance::new("", &format!("127.0.0.1:{port} inet n - n - 1 echo multi\n"));
    inst.start();
    let conns: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(local(port)).unwrap())
        .collect();
    let mut pids = Vec::new();
    for c in &conns {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        std::io::Write::write_all(&mut &*c, b"pid\n").unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(c), &mut line).unwrap();
        pids.push(line);
    }
    assert!(
        pids.iter().all(|p| p == &pids[0] && p.starts_with("pid ")),
        "{pids:?}"
    );
    assert_eq!(inst.children().len(), 1);
}

#[test]
fn check_creates_queue_and_finds_missing_commands() {
    need_instance();
    let port = free_port();
    let inst = Instance::new("", &format!("127.0.0.1:{port} inet n - n - 2 echo\n"));
    let out = inst.postfix(&["check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for d in ["incoming", "active", "deferred", "public", "private", "pid"] {
        assert!(inst.qdir.join(d).is_dir(), "{d} created");
    }
    inst.write_master_cf("nothere unix - n n - 2 no-such-daemon\n");
    let out = inst.postfix(&["check"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no-such-daemon"), "{err}");
    assert_eq!(inst.postfix(&["start"]).status.code(), Some(1));
    assert_eq!(inst.postfix(&["status"]).status.code(), Some(1));
}
