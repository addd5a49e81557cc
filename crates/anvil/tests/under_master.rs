//! The real anvil under a real master, asked over private/anvil.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::time::{Duration, Instant};

use proto::anvil::{Request, call_at};
use testkit::Instance;

/// What an instance test here needs: the binaries built and, as root,
/// the mail_owner account ([`testkit::need_instance`]); missing, it fails.
fn need_instance() {
    testkit::need_instance(&["master"]);
}

fn start(main_extra: &str) -> Instance {
    // The line etc-postfix/master.cf ships, with max_use/max_idle small
    // to show that anvil ignores them.
    let mut inst = Instance::new(
        main_extra,
        "anvil unix - - y - 1 anvil -o max_use=2 -o max_idle=1s\n",
    );
    inst.start_master(proto::anvil::SERVICE);
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
    need_instance();
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
