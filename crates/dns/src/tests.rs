//! Lookups against the in-test server.

use super::testserver::{Rec, start};
use super::*;

fn records() -> Vec<(String, Rec)> {
    let r = |n: &str, rec: Rec| (n.to_string(), rec);
    let mut v = vec![
        r("example.test", Rec::Mx(20, "mx2.example.test.".into())),
        r("example.test", Rec::Mx(10, "mx1.example.test.".into())),
        r("mx1.example.test", Rec::A("192.0.2.1".into())),
        r("mx1.example.test", Rec::Aaaa("2001:db8::1".into())),
        r("nomx.test", Rec::A("192.0.2.7".into())),
        r("null.test", Rec::Mx(0, ".".into())),
        r("txt.test", Rec::Txt("v=spf1 -all".into())),
        r(
            "1.2.0.192.in-addr.arpa",
            Rec::Ptr("host.example.test.".into()),
        ),
        r("broken.test", Rec::ServFail),
        r("silent.test", Rec::Silent),
        r("empty.test", Rec::Exists),
        r("host.lab.test", Rec::A("192.0.2.9".into())),
    ];
    // Enough A records to pass 512 bytes: truncated over UDP.
    for i in 1..=40 {
        v.push(r("big.test", Rec::A(format!("198.51.100.{i}"))));
    }
    v
}

fn resolver(server: &testserver::Server) -> Resolver {
    Resolver::new(ResolvConf::parse(&server.resolv_conf()))
        .with_timeout(Duration::from_millis(300), 1)
}

#[test]
fn mx_in_preference_order_and_null_mx() {
    let s = start(records());
    let r = resolver(&s);
    let mx = r.mx("Example.Test.").unwrap();
    assert_eq!(
        mx,
        vec![
            Mx {
                preference: 10,
                exchange: "mx1.example.test".into()
            },
            Mx {
                preference: 20,
                exchange: "mx2.example.test".into()
            },
        ]
    );
    assert_eq!(
        r.mx("null.test").unwrap(),
        vec![Mx {
            preference: 0,
            exchange: String::new()
        }]
    );
}

#[test]
fn not_found_no_data_and_temporary_stay_apart() {
    let s = start(records());
    let r = resolver(&s);
    assert_eq!(
        r.mx("nope.test"),
        Err(Error::NotFound {
            name: "nope.test".into()
        })
    );
    assert_eq!(
        r.mx("nomx.test"),
        Err(Error::NoData {
            name: "nomx.test".into(),
            rtype: RecordType::MX
        })
    );
    assert!(matches!(r.mx("broken.test"), Err(Error::Temporary { .. })));
    assert!(matches!(r.a("silent.test"), Err(Error::Temporary { .. })));
    assert!(matches!(r.a("empty.test"), Err(Error::NoData { .. })));
    assert!(matches!(r.a("bad..name"), Err(Error::BadName { .. })));
    assert!(r.mx("broken.test").unwrap_err().is_temporary());
    assert!(!r.mx("nope.test").unwrap_err().is_temporary());
}

#[test]
fn addresses_txt_ptr() {
    let s = start(records());
    let r = resolver(&s);
    assert_eq!(
        r.addresses("mx1.example.test", true, true).unwrap(),
        vec![
            "192.0.2.1".parse::<IpAddr>().unwrap(),
            "2001:db8::1".parse().unwrap()
        ]
    );
    assert_eq!(
        r.addresses("mx1.example.test", false, true).unwrap(),
        vec!["2001:db8::1".parse::<IpAddr>().unwrap()]
    );
    assert!(matches!(
        r.addresses("nomx.test", false, true),
        Err(Error::NoData { .. })
    ));
    assert_eq!(r.txt("txt.test").unwrap(), vec!["v=spf1 -all".to_string()]);
    assert_eq!(
        r.ptr("192.0.2.1".parse().unwrap()).unwrap(),
        vec!["host.example.test".to_string()]
    );
}

#[test]
fn truncated_answers_are_asked_again_over_tcp() {
    let s = start(records());
    let r = resolver(&s);
    let a = r.a("big.test").unwrap();
    assert_eq!(a.len(), 40);
    assert_eq!(s.tcp_queries(), 1);
}

#[test]
fn answers_are_cached_for_their_ttl_but_failures_are_not() {
    let s = start(records());
    let r = resolver(&s);
    r.mx("example.test").unwrap();
    r.mx("example.test").unwrap();
    r.mx("nope.test").unwrap_err();
    r.mx("nope.test").unwrap_err();
    assert_eq!(s.udp_queries(), 2);
    r.mx("broken.test").unwrap_err();
    r.mx("broken.test").unwrap_err();
    assert_eq!(s.udp_queries(), 4);
}

#[test]
fn the_next_server_is_asked_when_one_is_silent() {
    let s = start(records());
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let conf = ResolvConf::parse(&format!(
        "nameserver {}\nnameserver 127.0.0.1#{}\noptions timeout:1 attempts:1\n",
        silent.local_addr().unwrap(),
        s.addr.port()
    ));
    let r = Resolver::new(conf).with_timeout(Duration::from_millis(200), 1);
    assert_eq!(r.a("nomx.test").unwrap(), vec![Ipv4Addr::new(192, 0, 2, 7)]);
}

#[test]
fn search_domains() {
    let s = start(records());
    let conf = ResolvConf::parse(&format!("{}search lab.test\n", s.resolv_conf()));
    let r = Resolver::new(conf);
    assert!(matches!(
        r.lookup("host", RecordType::A),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(r.lookup_search("host", RecordType::A).unwrap().len(), 1);
    assert!(r.lookup_search("nope", RecordType::A).is_err());
}

#[test]
fn resolv_conf_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("resolv.conf");
    std::fs::write(&p, "nameserver 127.0.0.1#5300\noptions attempts:4\n").unwrap();
    let r = Resolver::from_resolv_conf(&p).unwrap();
    assert_eq!(r.conf().servers, vec!["127.0.0.1:5300".parse().unwrap()]);
    assert_eq!(r.conf().attempts, 4);
    assert!(Resolver::from_resolv_conf(&dir.path().join("none")).is_err());
}

#[test]
fn reverse_names() {
    assert_eq!(
        reverse_name("192.0.2.1".parse().unwrap()),
        "1.2.0.192.in-addr.arpa"
    );
    let v6 = reverse_name("2001:db8::1".parse().unwrap());
    assert!(v6.starts_with("1.0.0.0."));
    assert!(v6.ends_with("8.b.d.0.1.0.0.2.ip6.arpa"));
}

#[test]
fn tlsa_with_the_ad_bit() {
    let s = start(vec![
        (
            "_25._tcp.mx1.example.test".into(),
            Rec::Tlsa(3, 1, 1, vec![0xab; 32]),
        ),
        (
            "_25._tcp.plain.test".into(),
            Rec::Tlsa(3, 1, 1, vec![0xcd; 32]),
        ),
        ("_25._tcp.plain.test".into(), Rec::Unsigned),
        ("_25._tcp.none.test".into(), Rec::Exists),
    ]);
    let r = resolver(&s);
    let (t, ad) = r.tlsa_secure("_25._tcp.mx1.example.test").unwrap();
    assert!(ad);
    assert_eq!(
        t,
        vec![Tlsa {
            usage: 3,
            selector: 1,
            matching: 1,
            data: vec![0xab; 32]
        }]
    );
    let (t, ad) = r.tlsa_secure("_25._tcp.plain.test").unwrap();
    assert!(!ad && t.len() == 1);
    // Validated absence, NXDOMAIN or no data.
    assert_eq!(r.tlsa_secure("_25._tcp.none.test").unwrap(), (vec![], true));
    assert_eq!(r.tlsa_secure("_25._tcp.nx.test").unwrap(), (vec![], true));
}
