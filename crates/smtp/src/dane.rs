//! DANE for SMTP (RFC 7672; smtp_tls_security_level = dane, dane-only):
//! the TLSA records of `_PORT._tcp.HOST` decide how the server's
//! certificate is checked, when the resolver vouches for them with the AD
//! bit (as Postfix with smtp_dns_support_level = dnssec trusts the
//! resolver of resolv.conf). For an MX host the MX records of the nexthop
//! must be validated too.
//!
//! Usable records are DANE-EE (usage 3: the server's own certificate or
//! public key; no name or date check) and DANE-TA (usage 2: a certificate
//! of the chain the server sends, to which the server certificate must
//! chain and whose name it must carry), each with selector 0 (the whole
//! certificate) or 1 (the SubjectPublicKeyInfo) and matching type 0
//! (exact), 1 (SHA-256) or 2 (SHA-512). PKIX usages 0 and 1 are not
//! usable (as in Postfix).
//!
//! Without validated TLSA records (none, or an unsigned answer), `dane`
//! behaves as `may` and `dane-only` defers; validated records that are
//! all unusable make TLS mandatory without authentication (as Postfix's
//! `encrypt`); a failed TLSA lookup defers.

use std::sync::Arc;

use dns::Tlsa;
use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use crate::nexthop::Server;

/// What DNS says about one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    /// Validated usable TLSA records: TLS required, checked with them.
    Authenticate(Vec<Tlsa>),
    /// Validated records, none usable: TLS required, not authenticated.
    Encrypt,
    /// No validated TLSA records.
    Insecure(String),
}

/// Looks up the TLSA records for `server` of `nexthop_host` (the
/// nexthop's domain when the server came from its MX records).
///
/// # Errors
/// A temporary DNS failure (the delivery is deferred).
pub(crate) fn lookup(
    resolver: &dns::Resolver,
    server: &Server,
    nexthop_host: &str,
) -> Result<State, String> {
    if server.path.is_some() || server.name.parse::<std::net::IpAddr>().is_ok() {
        return Ok(State::Insecure("no DNS name for the server".into()));
    }
    let name = server.name.trim_end_matches('.').to_ascii_lowercase();
    if !nexthop_host.is_empty() && !name.eq_ignore_ascii_case(nexthop_host) {
        match resolver.lookup_secure(nexthop_host, dns::Type::MX) {
            Ok((_, true)) => {}
            Ok((_, false)) => {
                return Ok(State::Insecure(format!(
                    "MX RRset of {nexthop_host} is not DNSSEC-validated"
                )));
            }
            Err(e) if e.is_temporary() => return Err(e.to_string()),
            Err(_) => {
                return Ok(State::Insecure(format!(
                    "MX RRset of {nexthop_host} is not DNSSEC-validated"
                )));
            }
        }
    }
    let qname = format!("_{}._tcp.{name}", server.addr.port());
    match resolver.tlsa_secure(&qname) {
        Ok((records, true)) if !records.is_empty() => {
            let usable: Vec<Tlsa> = records.into_iter().filter(usable).collect();
            if usable.is_empty() {
                Ok(State::Encrypt)
            } else {
                Ok(State::Authenticate(usable))
            }
        }
        Ok((_, true)) => Ok(State::Insecure(format!("no TLSA records for {qname}"))),
        Ok((_, false)) => Ok(State::Insecure(format!(
            "TLSA records for {qname} are not DNSSEC-validated"
        ))),
        Err(e) if e.is_temporary() => Err(format!("TLSA lookup error for {qname}: {e}")),
        Err(_) => Ok(State::Insecure(format!(
            "TLSA records for {qname} are not DNSSEC-validated"
        ))),
    }
}

/// DANE-EE or DANE-TA with a known selector and matching type, and data
/// of the right length.
fn usable(t: &Tlsa) -> bool {
    let len_ok = match t.matching {
        0 => !t.data.is_empty(),
        1 => t.data.len() == 32,
        2 => t.data.len() == 64,
        _ => false,
    };
    matches!(t.usage, 2 | 3) && t.selector <= 1 && len_ok
}

/// Whether `cert` (DER) matches one record's selector and matching type.
pub(crate) fn matches(t: &Tlsa, cert: &[u8]) -> bool {
    let selected = match t.selector {
        0 => cert,
        1 => match spki(cert) {
            Some(s) => s,
            None => return false,
        },
        _ => return false,
    };
    match t.matching {
        0 => selected == t.data.as_slice(),
        1 => ring::digest::digest(&ring::digest::SHA256, selected).as_ref() == t.data.as_slice(),
        2 => ring::digest::digest(&ring::digest::SHA512, selected).as_ref() == t.data.as_slice(),
        _ => false,
    }
}

/// One DER element: (tag, whole element, content, what follows).
type Element<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

/// The first DER element of `input`.
fn der(input: &[u8]) -> Option<Element<'_>> {
    let tag = *input.first()?;
    let first = *input.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for b in input.get(2..2 + n)? {
            len = (len << 8) | usize::from(*b);
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    let whole = input.get(..end)?;
    let content = input.get(header..end)?;
    Some((tag, whole, content, input.get(end..)?))
}

/// The SubjectPublicKeyInfo of a certificate (with its SEQUENCE header).
pub(crate) fn spki(cert: &[u8]) -> Option<&[u8]> {
    let (_, _, certificate, _) = der(cert)?;
    let (_, _, tbs, _) = der(certificate)?;
    let mut rest = tbs;
    // [0] version (optional), serial, signature, issuer, validity,
    // subject, then the key.
    let (tag, _, _, after) = der(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    for _ in 0..5 {
        let (_, _, _, after) = der(rest)?;
        rest = after;
    }
    let (tag, whole, _, _) = der(rest)?;
    (tag == 0x30).then_some(whole)
}

/// The certificate check with TLSA records.
#[derive(Debug)]
pub(crate) struct Verifier {
    pub(crate) tlsa: Vec<Tlsa>,
    /// The names a DANE-TA certificate may carry (the server's name, the
    /// nexthop's).
    pub(crate) names: Vec<String>,
    pub(crate) provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // DANE-EE: the server's own certificate or key; nothing else.
        if self
            .tlsa
            .iter()
            .any(|t| t.usage == 3 && matches(t, end_entity.as_ref()))
        {
            return Ok(ServerCertVerified::assertion());
        }
        // DANE-TA: a certificate of the chain sent is the trust anchor.
        for t in self.tlsa.iter().filter(|t| t.usage == 2) {
            for anchor in intermediates.iter().filter(|c| matches(t, c.as_ref())) {
                let mut roots = rustls::RootCertStore::empty();
                if roots.add(anchor.clone()).is_err() {
                    continue;
                }
                let Ok(inner) = rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    self.provider.clone(),
                )
                .build() else {
                    continue;
                };
                for name in &self.names {
                    let Ok(sn) = ServerName::try_from(name.clone()) else {
                        continue;
                    };
                    if inner
                        .verify_server_cert(end_entity, intermediates, &sn, ocsp, now)
                        .is_ok()
                    {
                        return Ok(ServerCertVerified::assertion());
                    }
                }
            }
        }
        Err(rustls::Error::General(
            "no TLSA record matches the server certificate chain".into(),
        ))
    }

    tls::provider_signature_checks!(provider);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_and_matching_types() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["mx.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der().to_vec();
        let key_info = spki(&der).unwrap().to_vec();
        assert_eq!(
            key_info,
            rcgen::PublicKeyData::subject_public_key_info(&key)
        );
        let sha256 = |d: &[u8]| {
            ring::digest::digest(&ring::digest::SHA256, d)
                .as_ref()
                .to_vec()
        };
        let sha512 = |d: &[u8]| {
            ring::digest::digest(&ring::digest::SHA512, d)
                .as_ref()
                .to_vec()
        };
        let t = |selector, matching, data: Vec<u8>| Tlsa {
            usage: 3,
            selector,
            matching,
            data,
        };
        assert!(matches(&t(0, 0, der.clone()), &der));
        assert!(matches(&t(0, 1, sha256(&der)), &der));
        assert!(matches(&t(0, 2, sha512(&der)), &der));
        assert!(matches(&t(1, 0, key_info.clone()), &der));
        assert!(matches(&t(1, 1, sha256(&key_info)), &der));
        assert!(matches(&t(1, 2, sha512(&key_info)), &der));
        assert!(!matches(&t(1, 1, sha256(&der)), &der));
        assert!(!matches(&t(0, 1, vec![0; 32]), &der));
        assert!(usable(&t(1, 1, vec![0; 32])));
        assert!(!usable(&Tlsa {
            usage: 1,
            ..t(1, 1, vec![0; 32])
        }));
        assert!(!usable(&t(1, 1, vec![0; 31])));
        assert!(spki(b"\x30\x03\x02\x01").is_none());
    }
}
