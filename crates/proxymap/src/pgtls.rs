//! TLS to PostgreSQL servers, named by libpq's `sslmode` and
//! `sslrootcert` in a `postgresql://` URI of pgsql_table(5)'s `hosts`
//! (the postgres crate reads neither: they are taken out of the URI here).
//!
//! | sslmode | here |
//! |---|---|
//! | `disable` (and no sslmode) | no TLS |
//! | `allow`, `prefer` | TLS when the server offers it, certificate not checked (libpq's rule) |
//! | `require` | TLS required, certificate not checked (libpq without a root file) |
//! | `verify-ca`, `verify-full` | TLS required, certificate chain and host name checked against `sslrootcert` |
//!
//! `verify-ca` checks the host name too (rustls has no chain-only mode).

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;

/// What a URI's sslmode asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tls {
    /// Plain connection.
    Off,
    /// Encrypt, do not check the certificate; `required` or only when the
    /// server offers it.
    Unverified {
        /// sslmode=require.
        required: bool,
    },
    /// Encrypt and check the chain and host name against this CA file.
    Verified {
        /// sslrootcert.
        ca: String,
    },
}

/// Takes `sslmode` and `sslrootcert` out of a URI's query string.
pub(crate) fn split_uri(uri: &str) -> Result<(String, Tls), String> {
    let Some((base, query)) = uri.split_once('?') else {
        return Ok((uri.to_string(), Tls::Off));
    };
    let mut mode = None;
    let mut root = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", v)) => mode = Some(v.to_string()),
            Some(("sslrootcert", v)) => root = Some(v.replace("%2F", "/").replace("%2f", "/")),
            _ => rest.push(pair),
        }
    }
    let tls = match mode.as_deref() {
        None | Some("disable") => Tls::Off,
        Some("allow" | "prefer") => Tls::Unverified { required: false },
        Some("require") => Tls::Unverified { required: true },
        Some("verify-ca" | "verify-full") => Tls::Verified {
            ca: root.ok_or_else(|| {
                format!(
                    "{uri}: sslmode={} needs sslrootcert",
                    mode.as_deref().unwrap_or("")
                )
            })?,
        },
        Some(m) => return Err(format!("{uri}: unknown sslmode {m}")),
    };
    let uri = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((uri, tls))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls configuration for `tls` (not [`Tls::Off`]).
pub(crate) fn client_config(tls: &Tls) -> Result<rustls::ClientConfig, String> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    Ok(match tls {
        Tls::Verified { ca } => {
            use rustls::pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{ca}: {e}"))? {
                roots
                    .add(cert.map_err(|e| format!("{ca}: {e}"))?)
                    .map_err(|e| format!("{ca}: {e}"))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        _ => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(tls::AnyServerCertificate(provider())))
            .with_no_client_auth(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmodes() {
        assert_eq!(
            split_uri("postgresql://h/db").unwrap(),
            ("postgresql://h/db".to_string(), Tls::Off)
        );
        assert_eq!(
            split_uri("postgresql://h/db?sslmode=require&connect_timeout=5").unwrap(),
            (
                "postgresql://h/db?connect_timeout=5".to_string(),
                Tls::Unverified { required: true }
            )
        );
        assert_eq!(
            split_uri("postgresql://h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem")
                .unwrap()
                .1,
            Tls::Verified {
                ca: "/etc/ca.pem".into()
            }
        );
        assert!(split_uri("postgresql://h/db?sslmode=verify-full").is_err());
        assert!(split_uri("postgresql://h/db?sslmode=bogus").is_err());
        assert!(client_config(&Tls::Unverified { required: false }).is_ok());
        assert!(
            client_config(&Tls::Verified {
                ca: "/nonexistent".into()
            })
            .is_err()
        );
    }
}
