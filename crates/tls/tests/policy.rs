//! Protocol and cipher policies in real handshakes: a rustls client and
//! `openssl s_client` (scripts/install-deps installs openssl) against a
//! server built by `ServerConfig::load_with_policy` from Postfix-style
//! settings.

// A test binary: helpers panic on setup failure as #[test] bodies do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;

use rcgen::{CertificateParams, KeyPair};
use tls::{Error, Policy, ServerConfig, SessionInfo, TlsStream};

/// A self-signed ECDSA certificate for localhost in a temp dir.
struct Pki {
    _dir: tempfile::TempDir,
    der: rustls::pki_types::CertificateDer<'static>,
    cert: PathBuf,
    key: PathBuf,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    Pki {
        der: cert.der().clone(),
        _dir: dir,
        cert: cert_path,
        key: key_path,
    }
}

/// A policy from main.cf-like `name = value` pairs (smtpd prefix).
fn policy(mandatory: bool, pairs: &[(&str, &str)]) -> Policy {
    let defaults = [
        ("smtpd_tls_protocols", ">=TLSv1"),
        ("smtpd_tls_mandatory_protocols", ">=TLSv1"),
        ("smtpd_tls_ciphers", "medium"),
        ("smtpd_tls_mandatory_ciphers", "medium"),
    ];
    let get = |name: &str| {
        pairs
            .iter()
            .chain(defaults.iter())
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
            .unwrap_or_default()
    };
    Policy::from_params("smtpd", mandatory, get).unwrap()
}

/// Starts a server that accepts one connection and reports its handshake.
fn serve(pki: &Pki, policy: &Policy) -> (u16, thread::JoinHandle<Result<SessionInfo, Error>>) {
    let config =
        ServerConfig::load_with_policy(&pki.cert, &pki.key, &[] as &[PathBuf], policy).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = thread::spawn(move || {
        let (sock, _) = listener.accept().unwrap();
        let mut tls = TlsStream::accept(config, sock)?;
        let info = tls.info();
        let _ = tls.close();
        Ok(info.unwrap())
    });
    (port, h)
}

/// A rustls client handshake limited to `versions`.
fn rustls_client(
    pki: &Pki,
    port: u16,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<(), rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.der.clone()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut conn =
        rustls::ClientConnection::new(Arc::new(cfg), "localhost".try_into().unwrap()).unwrap();
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut sock) {
            return Err(
                match e.into_inner().map(|i| i.downcast::<rustls::Error>()) {
                    Some(Ok(tls)) => *tls,
                    _ => rustls::Error::General("I/O error in handshake".into()),
                },
            );
        }
    }
    Ok(())
}

/// Runs `openssl s_client` with `args`; returns (handshake done, output).
fn s_client(port: u16, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(["s_client", "-brief", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("openssl (scripts/install-deps installs it)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (text.contains("CONNECTION ESTABLISHED"), text)
}

#[test]
fn tls12_client_refused_when_protocols_want_tls13() {
    let pki = pki();
    let strict = policy(false, &[("smtpd_tls_protocols", ">=TLSv1.3")]);
    let (port, server) = serve(&pki, &strict);
    let r = rustls_client(&pki, port, &[&rustls::version::TLS12]);
    assert!(r.is_err(), "TLSv1.2 client accepted");
    assert!(server.join().unwrap().is_err());

    let (port, server) = serve(&pki, &strict);
    rustls_client(&pki, port, &[&rustls::version::TLS13]).unwrap();
    assert_eq!(server.join().unwrap().unwrap().protocol, "TLSv1.3");

    // Postfix's default (>=TLSv1): the TLSv1.2 client gets in.
    let (port, server) = serve(&pki, &policy(false, &[]));
    rustls_client(&pki, port, &[&rustls::version::TLS12]).unwrap();
    assert_eq!(server.join().unwrap().unwrap().protocol, "TLSv1.2");

    // The "!name" form, and the mandatory parameter when TLS is mandatory.
    let excl = policy(
        true,
        &[
            ("smtpd_tls_protocols", ">=TLSv1"),
            (
                "smtpd_tls_mandatory_protocols",
                "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1, !TLSv1.2",
            ),
        ],
    );
    let (port, server) = serve(&pki, &excl);
    assert!(rustls_client(&pki, port, &[&rustls::version::TLS12]).is_err());
    assert!(server.join().unwrap().is_err());
}

#[test]
fn openssl_s_client_tls12_refused_when_protocols_want_tls13() {
    let pki = pki();
    let (port, server) = serve(
        &pki,
        &policy(false, &[("smtpd_tls_protocols", ">=TLSv1.3")]),
    );
    let (ok, text) = s_client(port, &["-tls1_2"]);
    assert!(!ok, "{text}");
    assert!(server.join().unwrap().is_err());

    let (port, server) = serve(
        &pki,
        &policy(false, &[("smtpd_tls_protocols", "<=TLSv1.2")]),
    );
    let (ok, text) = s_client(port, &["-tls1_2"]);
    assert!(ok, "{text}");
    assert!(text.contains("Protocol version: TLSv1.2"), "{text}");
    assert_eq!(server.join().unwrap().unwrap().protocol, "TLSv1.2");
}

#[test]
fn excluded_cipher_is_not_negotiated() {
    let pki = pki();
    // Without exclusions the client's first choice wins: AES-256-GCM.
    let (port, server) = serve(&pki, &policy(false, &[]));
    rustls_client(&pki, port, &[&rustls::version::TLS13]).unwrap();
    assert_eq!(
        server.join().unwrap().unwrap().cipher,
        "TLS_AES_256_GCM_SHA384"
    );

    let no_aes256 = policy(false, &[("smtpd_tls_exclude_ciphers", "AES256")]);
    let (port, server) = serve(&pki, &no_aes256);
    rustls_client(&pki, port, &[&rustls::version::TLS13]).unwrap();
    let c = server.join().unwrap().unwrap().cipher;
    assert!(
        c == "TLS_AES_128_GCM_SHA256" || c.contains("CHACHA20"),
        "{c}"
    );

    // OpenSSL asking for exactly the excluded TLSv1.2 suite gets nothing.
    let one = policy(
        false,
        &[("smtpd_tls_exclude_ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256")],
    );
    let (port, server) = serve(&pki, &one);
    let (ok, text) = s_client(
        port,
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
    );
    assert!(!ok, "{text}");
    assert!(server.join().unwrap().is_err());
    let (port, server) = serve(&pki, &one);
    let (ok, text) = s_client(
        port,
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"],
    );
    assert!(ok, "{text}");
    assert_eq!(
        server.join().unwrap().unwrap().cipher,
        "ECDHE-ECDSA-AES256-GCM-SHA384"
    );

    // A TLSv1.3 suite by its OpenSSL/IANA name.
    let (port, server) = serve(
        &pki,
        &policy(
            false,
            &[("smtpd_tls_exclude_ciphers", "TLS_AES_128_GCM_SHA256")],
        ),
    );
    let (ok, text) = s_client(
        port,
        &["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"],
    );
    assert!(!ok, "{text}");
    assert!(server.join().unwrap().is_err());
}
