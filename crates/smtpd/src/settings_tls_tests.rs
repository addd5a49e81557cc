//! Tests of the TLS configuration smtpd builds from main.cf: a real rustls
//! client, limited to some protocol versions, handshakes in memory with
//! the server configuration `Settings::from_config` made, so that
//! smtpd_tls_protocols, smtpd_tls_mandatory_protocols and
//! smtpd_tls_exclude_ciphers are seen to be applied.

use std::sync::Arc;

use config::Config;
use rustls::{ClientConnection, ServerConnection};

use super::Settings;

/// A temp dir with a self-signed localhost certificate and a main.cf
/// pointing at it, followed by `extra`.
struct Setup {
    _dir: tempfile::TempDir,
    cfg: Config,
    der: rustls::pki_types::CertificateDer<'static>,
}

fn setup(extra: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    std::fs::write(
        dir.path().join("main.cf"),
        format!(
            "myhostname = mx.example\nsmtpd_tls_cert_file = {}\nsmtpd_tls_key_file = {}\n{extra}",
            cert_path.display(),
            key_path.display()
        ),
    )
    .unwrap();
    let cfg = Config::load(dir.path()).unwrap();
    Setup {
        _dir: dir,
        cfg,
        der: cert.der().clone(),
    }
}

/// Handshakes a rustls client offering `versions` with smtpd's TLS
/// configuration; returns the negotiated protocol and cipher suite.
fn handshake(
    s: &Setup,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<(rustls::ProtocolVersion, rustls::CipherSuite), rustls::Error> {
    let settings = Settings::from_config(&s.cfg, "smtp").unwrap();
    let server_cfg = settings.tls.clone().unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(s.der.clone()).unwrap();
    let client_cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut client =
        ClientConnection::new(Arc::new(client_cfg), "localhost".try_into().unwrap()).unwrap();
    let mut server = ServerConnection::new(server_cfg).unwrap();
    for _ in 0..10 {
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            server.read_tls(&mut rd).unwrap();
            server.process_new_packets()?;
        }
        let mut buf = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            client.read_tls(&mut rd).unwrap();
            client.process_new_packets()?;
        }
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok((
                server.protocol_version().unwrap(),
                server.negotiated_cipher_suite().unwrap().suite(),
            ));
        }
    }
    panic!("handshake did not finish");
}

const TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
const TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

#[test]
fn smtpd_tls_protocols_is_applied() {
    let s = setup("smtpd_tls_security_level = may\nsmtpd_tls_protocols = >=TLSv1.3\n");
    assert!(handshake(&s, TLS12).is_err(), "TLSv1.2 client accepted");
    assert_eq!(
        handshake(&s, TLS13).unwrap().0,
        rustls::ProtocolVersion::TLSv1_3
    );
    let s = setup("smtpd_tls_security_level = may\n");
    assert_eq!(
        handshake(&s, TLS12).unwrap().0,
        rustls::ProtocolVersion::TLSv1_2
    );
    let s = setup(
        "smtpd_tls_security_level = may\nsmtpd_tls_protocols = !SSLv2, !SSLv3, !TLSv1, !TLSv1.1, !TLSv1.3\n",
    );
    assert!(handshake(&s, TLS13).is_err(), "TLSv1.3 client accepted");
    assert!(handshake(&s, TLS12).is_ok());
}

#[test]
fn mandatory_settings_apply_when_tls_is_required() {
    let strict = "smtpd_tls_mandatory_protocols = >=TLSv1.3\n\
                  smtpd_tls_mandatory_exclude_ciphers = AES256\n";
    // may: the mandatory settings do not apply.
    let s = setup(&format!("smtpd_tls_security_level = may\n{strict}"));
    assert!(handshake(&s, TLS12).is_ok());
    assert_eq!(
        handshake(&s, TLS13).unwrap().1,
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384
    );
    // encrypt, and wrapper mode: they do.
    for level in [
        "smtpd_tls_security_level = encrypt\n",
        "smtpd_tls_wrappermode = yes\n",
    ] {
        let s = setup(&format!("{level}{strict}"));
        assert!(handshake(&s, TLS12).is_err(), "{level}");
        let (_, suite) = handshake(&s, TLS13).unwrap();
        assert_ne!(
            suite,
            rustls::CipherSuite::TLS13_AES_256_GCM_SHA384,
            "{level}"
        );
    }
}

#[test]
fn excluded_cipher_is_not_negotiated() {
    let s = setup(
        "smtpd_tls_security_level = may\n\
         smtpd_tls_exclude_ciphers = AES256, CHACHA20, ECDHE-ECDSA-AES128-GCM-SHA256\n",
    );
    assert_eq!(
        handshake(&s, TLS13).unwrap().1,
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
    );
    // The certificate is ECDSA: no TLSv1.2 suite is left for it.
    assert!(handshake(&s, TLS12).is_err());
}

#[test]
fn bad_tls_settings_are_fatal_and_named() {
    for (extra, param) in [
        ("smtpd_tls_protocols = <=TLSv1.1\n", "smtpd_tls_protocols"),
        ("smtpd_tls_protocols = TLSv9\n", "smtpd_tls_protocols"),
        ("smtpd_tls_ciphers = bogus\n", "smtpd_tls_ciphers"),
        (
            "smtpd_tls_exclude_ciphers = !RC4\n",
            "smtpd_tls_exclude_ciphers",
        ),
        (
            "smtpd_tls_exclude_ciphers = ALL\n",
            "smtpd_tls_exclude_ciphers",
        ),
    ] {
        let s = setup(&format!("smtpd_tls_security_level = may\n{extra}"));
        let e = Settings::from_config(&s.cfg, "smtp").unwrap_err();
        assert!(e.contains(param), "{extra}: {e}");
    }
    // The mandatory protocols are only checked when they apply.
    let s = setup("smtpd_tls_security_level = may\nsmtpd_tls_mandatory_protocols = SSLv3\n");
    assert!(Settings::from_config(&s.cfg, "smtp").is_ok());
    let s = setup("smtpd_tls_security_level = encrypt\nsmtpd_tls_mandatory_protocols = SSLv3\n");
    let e = Settings::from_config(&s.cfg, "smtp").unwrap_err();
    assert!(e.contains("smtpd_tls_mandatory_protocols"), "{e}");
}
