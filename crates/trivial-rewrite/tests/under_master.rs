//! The real trivial-rewrite under a real master, asked over private/rewrite.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::time::{Duration, Instant};

use proto::rewrite::{AddressClass, Context, Reply, Request, flags};
use testkit::Instance;

/// What an instance test here needs: the binaries built and, as root,
/// the mail_owner account ([`testkit::need_instance`]); missing, it fails.
fn need_instance() {
    testkit::need_instance(&["master"]);
}

/// A master running in a temporary instance; stopped on drop.
fn start(main_extra: &str, master_cf: &str) -> Instance {
    let mut inst = Instance::new(
        &format!(
            "inet_interfaces = loopback-only\nmyhostname = host.example.com\n\
             mydomain = example.com\n{main_extra}"
        ),
        master_cf,
    );
    inst.start_master("private/rewrite");
    inst
}

fn resolve(s: &mut std::os::unix::net::UnixStream, addr: &str) -> Reply {
    proto::send(
        s,
        &Request::Resolve {
            sender: "a@example.org".into(),
            address: addr.into(),
        },
    )
    .unwrap();
    proto::recv(s).unwrap()
}

#[test]
fn serves_many_requests_per_connection_under_master() {
    need_instance();
    let inst = start(
        "virtual_mailbox_domains = vmail.example\nrelay_domains = relay.example\n\
         transport_maps = inline:{ {special.example=slow:[mx.special]} }\n",
        "rewrite unix - - n - - trivial-rewrite\n",
    );
    let mut s = proto::connect(&inst.qdir, proto::rewrite::SERVICE).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    proto::send(
        &mut s,
        &Request::Rewrite {
            context: Context::Local,
            address: "bob".into(),
        },
    )
    .unwrap();
    let r: Reply = proto::recv(&mut s).unwrap();
    assert_eq!(
        r,
        Reply::Rewritten {
            address: "bob@host.example.com".into()
        }
    );
    let cases = [
        (
            "bob@localhost",
            "local",
            "host.example.com",
            AddressClass::Local,
        ),
        (
            "u@vmail.example",
            "virtual",
            "vmail.example",
            AddressClass::Virtual,
        ),
        (
            "u@relay.example",
            "relay",
            "relay.example",
            AddressClass::Relay,
        ),
        (
            "u@elsewhere.example",
            "smtp",
            "elsewhere.example",
            AddressClass::Default,
        ),
        (
            "u@special.example",
            "slow",
            "[mx.special]",
            AddressClass::Default,
        ),
        (
            "u%elsewhere.example@localhost",
            "smtp",
            "elsewhere.example",
            AddressClass::Default,
        ),
    ];
    for (addr, t, hop, class) in cases {
        match resolve(&mut s, addr) {
            Reply::Resolved {
                transport,
                nexthop,
                class: c,
                ..
            } => assert_eq!(
                (transport.as_str(), nexthop.as_str(), c),
                (t, hop, class),
                "{addr}"
            ),
            other => panic!("{addr}: {other:?}"),
        }
    }
    // A second client at the same time is served by the same process.
    let mut s2 = proto::connect(&inst.qdir, proto::rewrite::SERVICE).unwrap();
    s2.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    match resolve(&mut s2, "x@vmail.example") {
        Reply::Resolved { flags: f, .. } => assert_ne!(f & flags::FINAL, 0),
        other => panic!("{other:?}"),
    }
    match resolve(&mut s, "y@localhost") {
        Reply::Resolved { recipient, .. } => assert_eq!(recipient, "y@localhost"),
        other => panic!("{other:?}"),
    }
    // Garbage ends only that connection.
    std::io::Write::write_all(&mut s2, &[0, 0, 0, 2, 0xff, 0xff]).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(std::io::Read::read(&mut s2, &mut buf).unwrap_or(0), 0);
    match resolve(&mut s, "z@localhost") {
        Reply::Resolved { class, .. } => assert_eq!(class, AddressClass::Local),
        other => panic!("{other:?}"),
    }
}

#[test]
fn changed_table_retires_the_process_and_clients_reconnect() {
    need_instance();
    use std::os::unix::fs::PermissionsExt;
    let tdir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tdir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let table = tdir.path().join("transport");
    std::fs::write(&table, "t.example one:\n").unwrap();
    let inst = start(
        &format!("transport_maps = texthash:{}\n", table.display()),
        "rewrite unix - - n - - trivial-rewrite\n",
    );
    let mut s = proto::connect(&inst.qdir, proto::rewrite::SERVICE).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    match resolve(&mut s, "u@t.example") {
        Reply::Resolved { transport, .. } => assert_eq!(transport, "one"),
        other => panic!("{other:?}"),
    }
    // Replace the table: the server hangs up on the idle client.
    let new = tdir.path().join("transport.new");
    std::fs::write(&new, "t.example two:\n").unwrap();
    std::fs::rename(&new, &table).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(
        std::io::Read::read(&mut s, &mut buf).unwrap_or(0),
        0,
        "connection closed"
    );
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = proto::connect(&inst.qdir, proto::rewrite::SERVICE).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        match resolve(&mut s, "u@t.example") {
            Reply::Resolved { transport, .. } if transport == "two" => break,
            Reply::Resolved { .. } => {}
            other => panic!("{other:?}"),
        }
        assert!(Instant::now() < end, "the new table was never used");
        std::thread::sleep(Duration::from_millis(100));
    }
}
