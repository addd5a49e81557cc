//! DANE and TLS policy attributes against a scripted STARTTLS server
//! (rustls, certificates made by rcgen) and the dns crate's in-test DNS
//! server, which sets the AD bit as a validating resolver would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use dns::testserver::Rec;
use proto::deliver::Action;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::tests::{deliver, settings};

/// A test CA and a server certificate it signed for `names`.
pub(crate) struct Pki {
    /// The CA, to sign more certificates.
    issuer: Arc<rcgen::Issuer<'static, rcgen::KeyPair>>,
    pub(crate) ca_der: Vec<u8>,
    pub(crate) ca_pem: String,
    pub(crate) leaf_der: Vec<u8>,
    leaf_spki: Vec<u8>,
    pub(crate) key_der: Vec<u8>,
}

pub(crate) fn pki(names: &[&str]) -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Arc::new(rcgen::Issuer::new(ca_params, ca_key));
    leaf(issuer, ca.der().to_vec(), ca.pem(), names)
}

/// A certificate for `names` from the CA of `issuer`.
fn leaf(
    issuer: Arc<rcgen::Issuer<'static, rcgen::KeyPair>>,
    ca_der: Vec<u8>,
    ca_pem: String,
    names: &[&str],
) -> Pki {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    let leaf = params.signed_by(&key, &*issuer).unwrap();
    Pki {
        issuer,
        ca_der,
        ca_pem,
        leaf_der: leaf.der().to_vec(),
        leaf_spki: rcgen::PublicKeyData::subject_public_key_info(&key),
        key_der: key.serialize_der(),
    }
}

impl Pki {
    /// Another server certificate from the same CA.
    pub(crate) fn sibling(&self, names: &[&str]) -> Pki {
        leaf(
            self.issuer.clone(),
            self.ca_der.clone(),
            self.ca_pem.clone(),
            names,
        )
    }
}

/// A STARTTLS server sending leaf + CA as its chain; counts the
/// messages accepted after TLS.
pub(crate) fn tls_server(p: &Pki) -> (u16, Arc<AtomicUsize>) {
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
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { return };
            let config = config.clone();
            let count = count.clone();
            std::thread::spawn(move || {
                let _ = conn.write_all(b"220 mx ESMTP\r\n");
                let mut rd = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                loop {
                    line.clear();
                    if rd.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let cmd = line.trim_end().to_ascii_uppercase();
                    if cmd.starts_with("EHLO") {
                        let _ = conn.write_all(b"250-mx\r\n250 STARTTLS\r\n");
                    } else if cmd == "STARTTLS" {
                        let _ = conn.write_all(b"220 go ahead\r\n");
                        break;
                    } else {
                        let _ = conn.write_all(b"221 bye\r\n");
                        return;
                    }
                }
                let tls = rustls::ServerConnection::new(config).unwrap();
                let stream = rustls::StreamOwned::new(tls, conn);
                let stream = Arc::new(Mutex::new(stream));
                let mut buf = Vec::new();
                let mut in_data = false;
                loop {
                    // Read a line through the TLS stream.
                    let mut byte = [0u8; 1];
                    let n = {
                        let mut s = stream.lock().unwrap();
                        std::io::Read::read(&mut *s, &mut byte).unwrap_or(0)
                    };
                    if n == 0 {
                        return;
                    }
                    buf.push(byte[0]);
                    if byte[0] != b'\n' {
                        continue;
                    }
                    let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                    buf.clear();
                    let mut s = stream.lock().unwrap();
                    if in_data {
                        if line == "." {
                            in_data = false;
                            count.fetch_add(1, Ordering::SeqCst);
                            let _ = s.write_all(b"250 2.0.0 Ok: queued\r\n");
                        }
                        continue;
                    }
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") {
                        b"250-mx\r\n250 PIPELINING\r\n"
                    } else if upper == "DATA" {
                        in_data = true;
                        b"354 go\r\n"
                    } else if upper == "QUIT" {
                        let _ = s.write_all(b"221 bye\r\n");
                        return;
                    } else {
                        b"250 Ok\r\n"
                    };
                    let _ = s.write_all(reply);
                }
            });
        }
    });
    (port, accepted)
}

fn sha256(d: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, d)
        .as_ref()
        .to_vec()
}

/// DNS for dane.test (MX mx.dane.test at 127.0.0.1) with `tlsa`; the
/// resolv.conf parameter and the server.
fn dns_with(
    port: u16,
    tlsa: Vec<Rec>,
    unsigned: bool,
) -> (dns::testserver::Server, tempfile::TempDir, String) {
    let r = |n: &str, rec: Rec| (n.to_string(), rec);
    let mut recs = vec![
        r("dane.test", Rec::Mx(10, "mx.dane.test.".into())),
        r("mx.dane.test", Rec::A("127.0.0.1".into())),
    ];
    let name = format!("_{port}._tcp.mx.dane.test");
    for t in tlsa {
        recs.push(r(&name, t));
    }
    if unsigned {
        recs.push(r(&name, Rec::Unsigned));
    }
    let d = dns::testserver::start(recs);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resolv.conf");
    std::fs::write(&path, d.resolv_conf()).unwrap();
    let param = format!(
        "smtp_dns_resolv_conf = {}\nsmtp_connection_cache_on_demand = no\n",
        path.display()
    );
    (d, dir, param)
}

fn send(param: &str, level: &str, port: u16) -> proto::deliver::Status {
    let s = settings(&format!("{param}smtp_tls_security_level = {level}\n"));
    deliver(
        &s,
        &format!("dane.test:{port}"),
        "Subject: d\n\nx\n",
        &["a@dane.test"],
    )
    .remove(0)
}

#[test]
fn dane_ee_and_ta_records_authenticate_the_server() {
    let p = pki(&["mx.dane.test"]);
    let other = pki(&["mx.dane.test"]);
    let (port, accepted) = tls_server(&p);
    // DANE-EE 3 1 1 (SPKI SHA-256) and 3 0 2: delivered.
    for rec in [
        Rec::Tlsa(3, 1, 1, sha256(&p.leaf_spki)),
        Rec::Tlsa(3, 0, 0, p.leaf_der.clone()),
        Rec::Tlsa(
            3,
            0,
            2,
            ring::digest::digest(&ring::digest::SHA512, &p.leaf_der)
                .as_ref()
                .to_vec(),
        ),
        // DANE-TA 2 0 1: the CA in the chain, the name matches.
        Rec::Tlsa(2, 0, 1, sha256(&p.ca_der)),
    ] {
        let (_d, _dir, param) = dns_with(port, vec![rec.clone()], false);
        let st = send(&param, "dane-only", port);
        assert_eq!(st.action, Action::Delivered, "{rec:?}: {st:?}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 4);
    // Records for another key: the handshake fails, deferred, nothing sent.
    for level in ["dane", "dane-only"] {
        let (_d, _dir, param) = dns_with(
            port,
            vec![Rec::Tlsa(3, 1, 1, sha256(&other.leaf_spki))],
            false,
        );
        let st = send(&param, level, port);
        assert_eq!(st.action, Action::Deferred, "{st:?}");
        assert_eq!(st.dsn, "4.7.5");
        // DANE-TA of another CA fails as well.
        let (_d, _dir, param) =
            dns_with(port, vec![Rec::Tlsa(2, 0, 1, sha256(&other.ca_der))], false);
        assert_eq!(send(&param, level, port).action, Action::Deferred);
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 4);
}

#[test]
fn dane_without_validated_tlsa_is_may_and_dane_only_defers() {
    let p = pki(&["mx.dane.test"]);
    let other = pki(&["mx.dane.test"]);
    let (port, accepted) = tls_server(&p);
    // No TLSA at all.
    let (_d, _dir, param) = dns_with(port, vec![], false);
    assert_eq!(send(&param, "dane", port).action, Action::Delivered);
    let st = send(&param, "dane-only", port);
    assert_eq!(st.action, Action::Deferred);
    assert!(st.text.contains("no usable TLSA records"), "{st:?}");
    // Unsigned records for another key are ignored by dane (may).
    let (_d, _dir, param) = dns_with(
        port,
        vec![Rec::Tlsa(3, 1, 1, sha256(&other.leaf_spki))],
        true,
    );
    assert_eq!(send(&param, "dane", port).action, Action::Delivered);
    assert_eq!(send(&param, "dane-only", port).action, Action::Deferred);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[test]
fn policy_match_protocols_and_ciphers() {
    let p = pki(&["mx.dane.test", "alias.test"]);
    let (port, accepted) = tls_server(&p);
    let (_d, dir, param) = dns_with(port, vec![], false);
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &p.ca_pem).unwrap();
    let hop = format!("dane.test:{port}");
    let run = |attrs: &str| {
        let s = settings(&format!(
            "{param}smtp_tls_CAfile = {}\nsmtp_tls_policy_maps = inline:{{ {{{hop} = {attrs}}} }}\n",
            ca.display()
        ));
        deliver(&s, &hop, "Subject: m\n\nx\n", &["a@dane.test"]).remove(0)
    };
    assert_eq!(run("verify").action, Action::Delivered);
    assert_eq!(run("verify match=alias.test").action, Action::Delivered);
    assert_eq!(
        run("verify match=nexthop:hostname").action,
        Action::Delivered
    );
    let st = run("verify match=other.test");
    assert_eq!(st.action, Action::Deferred, "{st:?}");
    // TLS 1.2 only, and a cipher grade: still works.
    assert_eq!(
        run("encrypt protocols=!TLSv1.3 ciphers=high").action,
        Action::Delivered
    );
    // Nothing left to negotiate: deferred with the reason.
    let st = run("encrypt protocols=!TLSv1.2,!TLSv1.3");
    assert_eq!(st.action, Action::Deferred, "{st:?}");
    // main.cf's smtp_tls_protocols applies without a policy entry.
    let s = settings(&format!(
        "{param}smtp_tls_security_level = encrypt\nsmtp_tls_protocols = !TLSv1.2, !TLSv1.3\n"
    ));
    let st = deliver(&s, &hop, "x\n", &["a@dane.test"]).remove(0);
    assert_eq!(st.action, Action::Deferred, "{st:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 4);
}
