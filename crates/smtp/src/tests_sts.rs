//! MTA-STS against a local HTTPS policy server (rustls, a test CA made by
//! rcgen), the in-test DNS server and a scripted STARTTLS server; the
//! policy fetch is sent to the local server with our parameter
//! smtp_tls_mta_sts_connect.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use dns::testserver::Rec;
use proto::deliver::Action;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::tests::{deliver, settings};
use crate::tests_tls::{Pki, pki, tls_server};

/// What the policy server answers: (status line, body); the requests it saw.
type Script = Arc<Mutex<(String, String, Vec<String>)>>;

/// An HTTPS server with `p`'s certificate answering every request with
/// the script's status and body.
fn https_server(p: &Pki, script: Script) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let chain = vec![
        CertificateDer::from(p.leaf_der.clone()),
        CertificateDer::from(p.ca_der.clone()),
    ];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(p.key_der.clone()));
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap(),
    );
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { return };
            let tls = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut s = rustls::StreamOwned::new(tls, conn);
            let mut req = Vec::new();
            let mut b = [0u8; 1];
            while !req.ends_with(b"\r\n\r\n") {
                match s.read(&mut b) {
                    Ok(1) => req.push(b[0]),
                    _ => break,
                }
            }
            let (status, body) = {
                let mut g = script.lock().unwrap();
                g.2.push(String::from_utf8_lossy(&req).to_string());
                (g.0.clone(), g.1.clone())
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nLocation: https://elsewhere.test/\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes());
            s.conn.send_close_notify();
            let _ = s.flush();
        }
    });
    port
}

struct Setup {
    _dns: dns::testserver::Server,
    _dir: tempfile::TempDir,
    param: String,
    smtp_port: u16,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    script: Script,
}

fn setup(id: &str) -> Setup {
    setup_with(id, true)
}

/// `good_mx`: the SMTP server's certificate names mx.sts.test (else
/// only another name, from the same CA).
fn setup_with(id: &str, good_mx: bool) -> Setup {
    let p = pki(&["mx.sts.test", "mta-sts.sts.test"]);
    let (smtp_port, accepted) = if good_mx {
        tls_server(&p)
    } else {
        tls_server(&p.sibling(&["wrong.test"]))
    };
    let script: Script = Arc::new(Mutex::new((String::new(), String::new(), Vec::new())));
    let https_port = https_server(&p, script.clone());
    let r = |n: &str, rec: Rec| (n.to_string(), rec);
    let d = dns::testserver::start(vec![
        r("sts.test", Rec::Mx(10, "mx.sts.test.".into())),
        r("mx.sts.test", Rec::A("127.0.0.1".into())),
        r("_mta-sts.sts.test", Rec::Txt(format!("v=STSv1; id={id}"))),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("resolv.conf");
    std::fs::write(&conf, d.resolv_conf()).unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &p.ca_pem).unwrap();
    let param = format!(
        "smtp_dns_resolv_conf = {}\nsmtp_tls_CAfile = {}\nsmtp_tls_mta_sts = yes\n\
         smtp_tls_mta_sts_connect = 127.0.0.1:{https_port}\nsmtp_connection_cache_on_demand = no\n\
         smtp_tls_security_level = may\n",
        conf.display(),
        ca.display()
    );
    Setup {
        _dns: d,
        _dir: dir,
        param,
        smtp_port,
        accepted,
        script,
    }
}

fn policy(t: &Setup, status: &str, body: &str) {
    let mut g = t.script.lock().unwrap();
    g.0 = status.to_string();
    g.1 = body.to_string();
}

fn send(t: &Setup, extra: &str) -> proto::deliver::Status {
    let s = settings(&format!("{}{extra}", t.param));
    deliver(
        &s,
        &format!("sts.test:{}", t.smtp_port),
        "Subject: s\n\nx\n",
        &["a@sts.test"],
    )
    .remove(0)
}

#[test]
fn enforce_uses_only_listed_mx_hosts_with_verified_tls() {
    let t = setup("1");
    policy(
        &t,
        "200 OK",
        "version: STSv1\r\nmode: enforce\r\nmx: mx.sts.test\r\nmax_age: 86400\r\n",
    );
    let st = send(&t, "");
    assert_eq!(st.action, Action::Delivered, "{st:?}");
    {
        let g = t.script.lock().unwrap();
        assert_eq!(g.2.len(), 1);
        assert!(
            g.2[0].starts_with("GET /.well-known/mta-sts.txt HTTP/1.1\r\n"),
            "{}",
            g.2[0]
        );
        assert!(
            g.2[0]
                .to_ascii_lowercase()
                .contains("host: mta-sts.sts.test"),
            "{}",
            g.2[0]
        );
    }
    // Listed MX, but its certificate does not name it: deferred (with
    // no policy, opportunistic TLS would have delivered).
    let t = setup_with("5", false);
    policy(
        &t,
        "200 OK",
        "version: STSv1\nmode: enforce\nmx: mx.sts.test\nmax_age: 86400\n",
    );
    let st = send(&t, "");
    assert_eq!(st.action, Action::Deferred, "{st:?}");
    assert_eq!(
        send(&t, "smtp_tls_mta_sts = no\n").action,
        Action::Delivered
    );
    // A policy that lists another MX: deferred, never bounced.
    let t = setup("2");
    policy(
        &t,
        "200 OK",
        "version: STSv1\nmode: enforce\nmx: *.other.test\nmax_age: 86400\n",
    );
    let st = send(&t, "");
    assert_eq!(st.action, Action::Deferred, "{st:?}");
    assert_eq!(st.dsn, "4.7.5");
    assert!(st.text.contains("MTA-STS"), "{st:?}");
    assert_eq!(t.accepted.load(Ordering::SeqCst), 0);
    // smtp_tls_mta_sts = no (the default): no policy fetched, delivered.
    let st = send(&t, "smtp_tls_mta_sts = no\n");
    assert_eq!(st.action, Action::Delivered, "{st:?}");
    assert_eq!(t.script.lock().unwrap().2.len(), 1);
}

#[test]
fn testing_mode_and_redirects_only_log() {
    let t = setup("3");
    policy(
        &t,
        "200 OK",
        "version: STSv1\nmode: testing\nmx: other.test\nmax_age: 86400\n",
    );
    assert_eq!(send(&t, "").action, Action::Delivered);
    // A redirect is not followed: no policy, delivered as without one.
    let t = setup("4");
    policy(&t, "302 Found", "");
    assert_eq!(send(&t, "").action, Action::Delivered);
    assert_eq!(t.script.lock().unwrap().2.len(), 1);
    assert_eq!(t.accepted.load(Ordering::SeqCst), 1);
}
