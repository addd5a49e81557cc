//! MTA-STS (RFC 8461), with our own parameter smtp_tls_mta_sts (yes|no,
//! default no; Postfix itself has no MTA-STS client and uses a policy
//! server such as postfix-mta-sts-resolver for it).
//!
//! For a nexthop that is looked up by MX (a recipient domain, not
//! `[host]`), the TXT record at `_mta-sts.DOMAIN` (`v=STSv1; id=...`)
//! says whether the domain has a policy; the policy is then fetched from
//! `https://mta-sts.DOMAIN/.well-known/mta-sts.txt` with ureq (certificate
//! checked against smtp_tls_CAfile/smtp_tls_CApath when set, else the
//! webpki roots; no redirects; a 64 KiB body limit; a 10 s time limit) and
//! kept until its max_age runs out or the TXT id changes. The cache lives in
//! the memory of each smtp process only (no policy survives the process;
//! a fetch failure falls back to a still-valid cached policy, as the RFC
//! says).
//!
//! `mode: enforce`: only the MX hosts the policy lists (`mx:` patterns,
//! `*.example.com` standing for one more label) are used, each with TLS
//! required and its certificate verified for its name (as the `verify`
//! level); no listed MX defers the mail (4.7.5), as the RFC wants, never
//! bounces. `mode: testing`: failures are only logged. `mode: none`: no
//! policy.
//!
//! Our parameter smtp_tls_mta_sts_connect (`host:port`, default empty) is
//! for tests only: the policy fetch connects there instead of to the
//! address of mta-sts.DOMAIN (the request, its Host and the certificate
//! check still name mta-sts.DOMAIN).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest policy body read.
const BODY_LIMIT: u64 = 64 * 1024;

/// Time limit of a policy fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest max_age honoured (RFC 8461: 31557600).
const MAX_AGE_LIMIT: u64 = 31_557_600;

/// A policy's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Enforce,
    Testing,
    None,
}

/// A fetched policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Policy {
    pub(crate) mode: Mode,
    /// The mx: patterns (lower case).
    pub(crate) mx: Vec<String>,
    pub(crate) max_age: u64,
}

impl Policy {
    /// Whether `host` is listed (exactly, or by a `*.` pattern covering
    /// one more label).
    pub(crate) fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx.iter().any(|p| match p.strip_prefix("*.") {
            Some(parent) => host
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
            None => *p == host,
        })
    }
}

/// Parses a policy body (CRLF or LF lines, `key: value`).
///
/// # Errors
/// A missing or wrong version, mode or max_age; enforce/testing without mx.
pub(crate) fn parse(body: &str) -> Result<Policy, String> {
    let mut version = None;
    let mut mode = None;
    let mut max_age = None;
    let mut mx = Vec::new();
    for line in body.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "version" => version = Some(v.to_string()),
            "mode" => {
                mode = Some(match v {
                    "enforce" => Mode::Enforce,
                    "testing" => Mode::Testing,
                    "none" => Mode::None,
                    _ => return Err(format!("unknown mode \"{v}\"")),
                });
            }
            "max_age" => {
                let n: u64 = v.parse().map_err(|_| format!("bad max_age \"{v}\""))?;
                max_age = Some(n.min(MAX_AGE_LIMIT));
            }
            "mx" => mx.push(v.trim_end_matches('.').to_ascii_lowercase()),
            _ => {}
        }
    }
    if version.as_deref() != Some("STSv1") {
        return Err("no \"version: STSv1\"".into());
    }
    let mode = mode.ok_or("no mode")?;
    let max_age = max_age.ok_or("no max_age")?;
    if mode != Mode::None && mx.is_empty() {
        return Err("no mx".into());
    }
    Ok(Policy { mode, mx, max_age })
}

/// The `id=` of the one `v=STSv1` TXT record; None without one (or with
/// several, which the RFC treats as none).
pub(crate) fn txt_id(records: &[String]) -> Option<String> {
    let sts: Vec<&String> = records
        .iter()
        .filter(|r| r.trim_start().starts_with("v=STSv1"))
        .collect();
    let [one] = sts.as_slice() else {
        return None;
    };
    one.split(';').find_map(|f| {
        f.trim()
            .strip_prefix("id=")
            .map(|id| id.trim().to_string())
            .filter(|id| {
                !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric())
            })
    })
}

/// The MTA-STS client of one smtp process.
pub(crate) struct Sts {
    pub(crate) enabled: bool,
    connect: Option<SocketAddr>,
    agent: Option<ureq::Agent>,
    cache: Mutex<HashMap<String, (Instant, String, Policy)>>,
}

impl std::fmt::Debug for Sts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sts")
            .field("enabled", &self.enabled)
            .field("connect", &self.connect)
            .finish()
    }
}

/// Connects the policy fetch to a fixed address (tests), else resolves
/// as usual.
#[derive(Debug)]
struct FixedResolver(Option<SocketAddr>);

impl ureq::unversioned::resolver::Resolver for FixedResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        use ureq::unversioned::resolver::DefaultResolver;
        match self.0 {
            Some(addr) => {
                let mut out = self.empty();
                out.push(addr);
                Ok(out)
            }
            None => DefaultResolver::default().resolve(uri, config, timeout),
        }
    }
}

impl Sts {
    /// Off.
    pub(crate) fn off() -> Sts {
        Sts {
            enabled: false,
            connect: None,
            agent: None,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The client; `roots` are the CA certificates of smtp_tls_CAfile and
    /// smtp_tls_CApath (empty: the webpki roots).
    pub(crate) fn new(enabled: bool, connect: &str, roots: Vec<Vec<u8>>) -> (Sts, Vec<String>) {
        let mut warnings = Vec::new();
        if !enabled {
            return (Sts::off(), warnings);
        }
        let connect = if connect.trim().is_empty() {
            None
        } else {
            match connect.trim().parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    warnings.push(format!("smtp_tls_mta_sts_connect: bad address {connect}"));
                    None
                }
            }
        };
        let root_certs = if roots.is_empty() {
            ureq::tls::RootCerts::WebPki
        } else {
            ureq::tls::RootCerts::Specific(Arc::new(
                roots
                    .iter()
                    .map(|d| ureq::tls::Certificate::from_der(d).to_owned())
                    .collect(),
            ))
        };
        let config = ureq::Agent::config_builder()
            .max_redirects(0)
            .https_only(true)
            .http_status_as_error(false)
            .timeout_global(Some(FETCH_TIMEOUT))
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .provider(ureq::tls::TlsProvider::Rustls)
                    .root_certs(root_certs)
                    .build(),
            )
            .build();
        let agent = ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::DefaultConnector::default(),
            FixedResolver(connect),
        );
        (
            Sts {
                enabled,
                connect,
                agent: Some(agent),
                cache: Mutex::new(HashMap::new()),
            },
            warnings,
        )
    }

    /// The policy of `domain`, if it has one in force.
    pub(crate) fn policy(&self, resolver: &dns::Resolver, domain: &str) -> Option<Policy> {
        if !self.enabled {
            return None;
        }
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let cached = self.cache.lock().ok().and_then(|c| {
            c.get(&domain)
                .filter(|(until, _, _)| *until > Instant::now())
                .cloned()
        });
        let id = resolver
            .txt(&format!("_mta-sts.{domain}"))
            .ok()
            .and_then(|t| txt_id(&t));
        let Some(id) = id else {
            // No TXT record: a cached policy still applies until max_age.
            return cached.map(|(_, _, p)| p);
        };
        if let Some((_, cached_id, p)) = &cached
            && *cached_id == id
        {
            return Some(p.clone());
        }
        match self.fetch(&domain) {
            Ok(p) => {
                if let Ok(mut c) = self.cache.lock() {
                    if c.len() > 1000 {
                        c.clear();
                    }
                    let until = Instant::now() + Duration::from_secs(p.max_age);
                    c.insert(domain.clone(), (until, id, p.clone()));
                }
                (p.mode != Mode::None).then_some(p)
            }
            Err(e) => {
                maillog::warning!(
                    "MTA-STS policy for {}: {}",
                    maillog::printable(&domain, 100),
                    maillog::printable(&e, 200)
                );
                cached.map(|(_, _, p)| p)
            }
        }
    }

    /// Fetches and parses the policy of `domain`.
    fn fetch(&self, domain: &str) -> Result<Policy, String> {
        let agent = self.agent.as_ref().ok_or("MTA-STS is off")?;
        let url = format!("https://mta-sts.{domain}/.well-known/mta-sts.txt");
        let mut response = agent.get(&url).call().map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(format!("{url}: HTTP status {status}"));
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_string()
            .map_err(|e| format!("{url}: {e}"))?;
        parse(&body).map_err(|e| format!("{url}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_text_and_txt_records() {
        let p = parse(
            "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n",
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert!(p.allows("mail.example.com") && p.allows("MX1.example.net."));
        assert!(!p.allows("a.b.example.net") && !p.allows("example.net"));
        assert!(!p.allows("other.example.com"));
        assert!(parse("version: STSv1\nmode: enforce\nmax_age: 1\n").is_err());
        assert!(parse("version: STSv2\nmode: none\nmax_age: 1\n").is_err());
        assert_eq!(
            parse("version: STSv1\nmode: testing\nmx: a\nmax_age: 99999999999\n")
                .unwrap()
                .max_age,
            MAX_AGE_LIMIT
        );
        assert_eq!(
            txt_id(&["v=STSv1; id=20240101T0000".into(), "other".into()]),
            Some("20240101T0000".into())
        );
        assert_eq!(
            txt_id(&["v=STSv1; id=a".into(), "v=STSv1; id=b".into()]),
            None
        );
        assert_eq!(txt_id(&["v=STSv1; id=bad-id".into()]), None);
    }
}
