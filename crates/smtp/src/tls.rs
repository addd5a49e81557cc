//! The TLS client side (smtp_tls_security_level): `none` never starts
//! TLS; `may` starts it when the server offers STARTTLS and does not
//! check the certificate (opportunistic: a failed handshake is a failed
//! session, the next server is tried); `encrypt` requires TLS, still
//! without checking the certificate; `verify` and `secure` require TLS
//! and a certificate that chains to smtp_tls_CAfile (or the files of
//! smtp_tls_CApath) and names the server host (or one of the `match=`
//! names of its smtp_tls_policy_maps entry); `dane` and `dane-only` check
//! the certificate against DNSSEC-validated TLSA records (`dane`).
//! `protocols=` and `ciphers=` of a policy entry limit the TLS versions and
//! suites offered to that destination.

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
    /// DANE when the server has validated TLSA records, else `may`.
    Dane,
    /// DANE required: no usable validated TLSA records defers.
    DaneOnly,
}

/// A crypto provider and the TLS versions to offer.
pub(crate) type Limits = (
    Arc<CryptoProvider>,
    Vec<&'static rustls::SupportedProtocolVersion>,
);

/// The TLS policy for one destination: the level and the attributes of
/// its smtp_tls_policy_maps entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Policy {
    pub(crate) level: Level,
    /// match=: names the certificate may carry (verify, secure).
    pub(crate) matches: Vec<String>,
    /// protocols=, ciphers=.
    pub(crate) protocols: Option<String>,
    pub(crate) ciphers: Option<String>,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            level: Level::None,
            matches: Vec::new(),
            protocols: None,
            ciphers: None,
        }
    }
}

impl Policy {
    /// The crypto provider for protocols= and ciphers=; None for the
    /// defaults.
    ///
    /// # Errors
    /// An invalid value (the delivery is deferred).
    pub(crate) fn provider(&self) -> Result<Option<Limits>, String> {
        if self.protocols.is_none() && self.ciphers.is_none() {
            return Ok(None);
        }
        let protocols = self.protocols.clone().unwrap_or_default();
        let ciphers = self.ciphers.clone().unwrap_or_else(|| "medium".into());
        let p = ::tls::policy::Policy::from_params("smtp", false, |name| match name {
            "smtp_tls_protocols" => protocols.clone(),
            "smtp_tls_ciphers" => ciphers.clone(),
            _ => String::new(),
        })?;
        for w in &p.warnings {
            maillog::warning!("smtp_tls_policy_maps: {w}");
        }
        Ok(Some((Arc::new(p.provider()), p.versions.clone())))
    }
}

/// A client configuration with `verifier`, limited by `policy`'s
/// protocols= and ciphers=.
///
/// # Errors
/// An invalid policy value.
pub(crate) fn config_with(
    policy: &Policy,
    verifier: Arc<dyn ServerCertVerifier>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let (provider, versions) = match policy.provider()? {
        Some(p) => p,
        None => (
            Arc::new(rustls::crypto::ring::default_provider()),
            vec![&rustls::version::TLS13, &rustls::version::TLS12],
        ),
    };
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(
        b.dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    ))
}

/// The verifier for `verify`/`secure`: the chain must lead to one of
/// `roots`, and the certificate name one of `names`.
#[derive(Debug)]
pub(crate) struct NamesVerifier {
    pub(crate) inner: Arc<rustls::client::WebPkiServerVerifier>,
    pub(crate) names: Vec<String>,
}

impl NamesVerifier {
    pub(crate) fn new(
        roots: Arc<rustls::RootCertStore>,
        names: Vec<String>,
    ) -> Result<NamesVerifier, String> {
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
            roots,
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .map_err(|e| e.to_string())?;
        Ok(NamesVerifier { inner, names })
    }
}

impl ServerCertVerifier for NamesVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut last = rustls::Error::General("no name to match".into());
        for name in &self.names {
            let Ok(sn) = ServerName::try_from(name.clone()) else {
                continue;
            };
            match self
                .inner
                .verify_server_cert(end_entity, intermediates, &sn, ocsp, now)
            {
                Ok(v) => return Ok(v),
                Err(e) => last = e,
            }
        }
        if self.names.is_empty() {
            return self.inner.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp,
                now,
            );
        }
        Err(last)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

impl Level {
    /// Parses a level; `fingerprint` is taken as `verify`.
    pub(crate) fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "none" => Some(Level::None),
            "may" => Some(Level::May),
            "dane" => Some(Level::Dane),
            "dane-only" => Some(Level::DaneOnly),
            "encrypt" => Some(Level::Encrypt),
            "verify" | "secure" | "fingerprint" => Some(Level::Verify),
            _ => None,
        }
    }

    /// TLS must be used.
    pub(crate) fn required(self) -> bool {
        matches!(self, Level::Encrypt | Level::Verify | Level::DaneOnly)
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
    /// The CA certificates, for configurations built per destination.
    pub(crate) roots: Option<Arc<rustls::RootCertStore>>,
    /// The same certificates as DER (the MTA-STS policy fetch).
    pub(crate) ca_der: Vec<Vec<u8>>,
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
        let mut ca_der = Vec::new();
        for f in &files {
            load_certs(f, &mut roots, &mut ca_der, &mut warnings);
        }
        let roots = Arc::new(roots);
        let verified = (!roots.is_empty()).then(|| {
            rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map(|b| {
                    Arc::new(
                        b.with_root_certificates(roots.clone())
                            .with_no_client_auth(),
                    )
                })
                .map_err(|e| warnings.push(format!("TLS client setup: {e}")))
                .ok()
        });
        (
            Client {
                unverified,
                verified: verified.flatten(),
                roots: (!roots.is_empty()).then_some(roots),
                ca_der,
            },
            warnings,
        )
    }
}

fn load_certs(
    path: &Path,
    roots: &mut rustls::RootCertStore,
    ders: &mut Vec<Vec<u8>>,
    warnings: &mut Vec<String>,
) {
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
                ders.push(c.as_ref().to_vec());
                if let Err(e) = roots.add(c) {
                    warnings.push(format!("bad CA certificate in {}: {e}", path.display()));
                }
            }
            Err(e) => warnings.push(format!("bad CA file {}: {e}", path.display())),
        }
    }
}

/// Accepts any server certificate, still checking the handshake
/// signatures (opportunistic TLS: `may` and `encrypt`).
pub(crate) use tls::AnyServerCertificate as AnyCertificate;

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
