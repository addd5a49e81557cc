//! The TLS client side (smtp_tls_security_level): `none` never starts
//! TLS; `may` starts it when the server offers STARTTLS and does not
//! check the certificate (opportunistic: a failed handshake is a failed
//! session, the next server is tried); `encrypt` requires TLS, still
//! without checking the certificate; `verify` and `secure` require TLS
//! and a certificate that chains to smtp_tls_CAfile (or the files of
//! smtp_tls_CApath) and names the server host.

use std::path::Path;
use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls_pki_types::pem::PemObject;

/// smtp_tls_security_level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// No TLS.
    None,
    /// Opportunistic.
    May,
    /// Mandatory, unauthenticated.
    Encrypt,
    /// Mandatory, certificate checked (verify, secure).
    Verify,
}

impl Level {
    /// Parses a level; `dane` and `dane-only` are treated as `may` and
    /// `encrypt` until TLSA support is here, `fingerprint` as `verify`.
    pub(crate) fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "none" => Some(Level::None),
            "may" | "dane" => Some(Level::May),
            "encrypt" | "dane-only" => Some(Level::Encrypt),
            "verify" | "secure" | "fingerprint" => Some(Level::Verify),
            _ => None,
        }
    }

    /// TLS must be used.
    pub(crate) fn required(self) -> bool {
        matches!(self, Level::Encrypt | Level::Verify)
    }
}

/// The client configurations, built before the chroot.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    /// Accepts any certificate (may, encrypt).
    pub(crate) unverified: Arc<rustls::ClientConfig>,
    /// Checks the certificate against the CAs (verify, secure); `None`
    /// when no CA could be loaded.
    pub(crate) verified: Option<Arc<rustls::ClientConfig>>,
}

impl Client {
    /// Builds both configurations; CA problems are returned as warnings.
    pub(crate) fn load(ca_file: &str, ca_path: &str) -> (Client, Vec<String>) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut warnings = Vec::new();
        let unverified = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map(|b| {
                b.dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider.clone())))
                    .with_no_client_auth()
            });
        let unverified = match unverified {
            Ok(c) => Arc::new(c),
            Err(e) => {
                warnings.push(format!("TLS client setup: {e}"));
                Arc::new(
                    rustls::ClientConfig::builder()
                        .dangerous()
                        .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                            provider.clone(),
                        )))
                        .with_no_client_auth(),
                )
            }
        };
        let mut roots = rustls::RootCertStore::empty();
        let mut files: Vec<std::path::PathBuf> = Vec::new();
        if !ca_file.is_empty() {
            files.push(ca_file.into());
        }
        if !ca_path.is_empty() {
            match std::fs::read_dir(ca_path) {
                Ok(dir) => files.extend(dir.flatten().map(|e| e.path()).filter(|p| p.is_file())),
                Err(e) => warnings.push(format!("smtp_tls_CApath {ca_path}: {e}")),
            }
        }
        for f in &files {
            load_certs(f, &mut roots, &mut warnings);
        }
        let verified = (!roots.is_empty()).then(|| {
            rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
                .map_err(|e| warnings.push(format!("TLS client setup: {e}")))
                .ok()
        });
        (
            Client {
                unverified,
                verified: verified.flatten(),
            },
            warnings,
        )
    }
}

fn load_certs(path: &Path, roots: &mut rustls::RootCertStore, warnings: &mut Vec<String>) {
    let iter = match CertificateDer::pem_file_iter(path) {
        Ok(i) => i,
        Err(e) => {
            warnings.push(format!("cannot read CA file {}: {e}", path.display()));
            return;
        }
    };
    for cert in iter {
        match cert {
            Ok(c) => {
                if let Err(e) = roots.add(c) {
                    warnings.push(format!("bad CA certificate in {}: {e}", path.display()));
                }
            }
            Err(e) => warnings.push(format!("bad CA file {}: {e}", path.display())),
        }
    }
}

/// Accepts any server certificate, still checking the handshake
/// signatures (opportunistic TLS: protects against passive listeners
/// only, as Postfix's `may` and `encrypt`).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(Level::parse(""), Some(Level::None));
        assert_eq!(Level::parse("May"), Some(Level::May));
        assert_eq!(Level::parse("encrypt"), Some(Level::Encrypt));
        assert_eq!(Level::parse("secure"), Some(Level::Verify));
        assert_eq!(Level::parse("bogus"), None);
        assert!(Level::Encrypt.required() && !Level::May.required());
    }
}
