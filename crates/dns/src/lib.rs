//! dns - the blocking DNS stub resolver the mail programs share.
//!
//! # Description
//!
//! [`Resolver`] asks the nameservers of resolv.conf (read once, before a
//! daemon enters its chroot: [`Resolver::from_system`] or
//! [`Resolver::from_resolv_conf`]) for MX, A, AAAA, TXT, PTR and TLSA
//! records. Each question goes over our own UDP socket, is asked again
//! over TCP when the answer is truncated, and goes to each server in turn
//! for `options attempts:N` rounds of `options timeout:N` each, as the C
//! library does. Answers, positive and negative, are kept in a per-process
//! cache for their TTL (negative answers for the SOA minimum).
//!
//! The three kinds of failure stay apart, because mail delivery treats
//! them differently: [`Error::NotFound`] (NXDOMAIN: bounce),
//! [`Error::NoData`] (the name exists without records of that type: for
//! MX, fall back to the A/AAAA records) and [`Error::Temporary`]
//! (timeout, SERVFAIL, REFUSED, a network error: defer).
//!
//! Names are looked up as given (absolute), as Postfix's smtp client does
//! by default; [`Resolver::lookup_search`] applies the `search` list.
//!
//! Queries ask for the AD bit; [`Resolver::lookup_secure`] and
//! [`Resolver::tlsa_secure`] (not cached) say whether the resolver set it,
//! i.e. validated the answer with DNSSEC: DANE trusts the resolver of
//! resolv.conf for that, as Postfix does with smtp_dns_support_level =
//! dnssec.
//!
//! # Talks to
//!
//! The nameservers of resolv.conf, over UDP and TCP port 53 (or the port a
//! test names with `nameserver ADDR#PORT`).
//!
//! # Security
//!
//! Every answer is untrusted: it is decoded by hickory-proto with length
//! checks; an answer whose id, type or question differs from ours is
//! ignored; names are returned in ASCII form (callers make them printable
//! before logging). The cache is bounded ([`CACHE_LIMIT`] entries).
//!
//! # Synopsis
//!
//! ```no_run
//! let r = dns::Resolver::from_system();
//! match r.mx("example.org") {
//!     Ok(hosts) => hosts.iter().for_each(|mx| println!("{} {}", mx.preference, mx.exchange)),
//!     Err(e) if e.is_temporary() => println!("try later: {e}"),
//!     Err(e) => println!("{e}"),
//! }
//! ```

mod cache;
mod conf;
#[cfg(any(test, feature = "test-support"))]
pub mod testserver;
mod wire;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

pub use conf::{MAX_SEARCH, MAX_SERVERS, ResolvConf};
pub use hickory_proto::rr::RecordType as Type;

/// The environment variable naming another resolv.conf (tests; smtpd's
/// restrictions use the same name).
pub const RESOLV_CONF_ENV: &str = "MAIL_RESOLV_CONF";

/// The most cached answers per process; the cache is emptied when full.
pub const CACHE_LIMIT: usize = 10_000;

/// Longest time a positive answer is kept, whatever its TTL.
const MAX_TTL: u32 = 86_400;

/// Longest time a negative answer is kept; and its time without an SOA.
const MAX_NEGATIVE_TTL: u32 = 3_600;
const DEFAULT_NEGATIVE_TTL: u32 = 60;

/// Why a lookup gave no records.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The name does not exist (NXDOMAIN): a permanent failure.
    NotFound {
        /// The name asked for.
        name: String,
    },
    /// The name exists but has no records of this type.
    NoData {
        /// The name asked for.
        name: String,
        /// The type asked for.
        rtype: RecordType,
    },
    /// No definite answer (timeout, SERVFAIL, REFUSED, network error).
    Temporary {
        /// The name asked for.
        name: String,
        /// What went wrong, for the log.
        reason: String,
    },
    /// Not a valid domain name.
    BadName {
        /// The name as given.
        name: String,
    },
}

impl Error {
    /// True for a failure worth trying again later.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Error::Temporary { .. })
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NotFound { name } => write!(f, "Host not found: {name}"),
            Error::NoData { name, rtype } => write!(f, "no {rtype} record for {name}"),
            Error::Temporary { name, reason } => {
                write!(f, "Host not found, try again: {name}: {reason}")
            }
            Error::BadName { name } => write!(f, "bad domain name: {name}"),
        }
    }
}

impl std::error::Error for Error {}

/// One MX record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mx {
    /// Lower is preferred.
    pub preference: u16,
    /// The exchange, lower case, without the trailing dot; "" for the
    /// null MX of RFC 7505 (`MX 0 .`).
    pub exchange: String,
}

/// One TLSA record (RFC 6698).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    /// Certificate usage (0-3).
    pub usage: u8,
    /// Selector (0 full certificate, 1 public key).
    pub selector: u8,
    /// Matching type (0 exact, 1 SHA-256, 2 SHA-512).
    pub matching: u8,
    /// Association data.
    pub data: Vec<u8>,
}

/// A stub resolver: resolv.conf settings plus an answer cache.
#[derive(Debug)]
pub struct Resolver {
    conf: ResolvConf,
    cache: cache::Cache,
}

impl Resolver {
    /// A resolver with these settings.
    pub fn new(conf: ResolvConf) -> Resolver {
        Resolver {
            conf,
            cache: cache::Cache::new(CACHE_LIMIT),
        }
    }

    /// Reads `$MAIL_RESOLV_CONF` or `/etc/resolv.conf`; an unreadable file
    /// gives the C library's defaults (a nameserver on 127.0.0.1).
    pub fn from_system() -> Resolver {
        let path = std::env::var_os(RESOLV_CONF_ENV)
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| "/etc/resolv.conf".into());
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        Resolver::new(ResolvConf::parse(&text))
    }

    /// Reads the resolv.conf at `path`.
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn from_resolv_conf(path: &Path) -> std::io::Result<Resolver> {
        let text = std::fs::read_to_string(path)?;
        Ok(Resolver::new(ResolvConf::parse(&text)))
    }

    /// The settings in use.
    pub fn conf(&self) -> &ResolvConf {
        &self.conf
    }

    /// The same resolver with another per-query timeout and number of
    /// rounds (a daemon's own limits).
    pub fn with_timeout(mut self, timeout: Duration, attempts: u32) -> Resolver {
        self.conf.timeout = timeout;
        self.conf.attempts = attempts.max(1);
        self
    }

    /// The records of type `rtype` for `name` (absolute; no search list).
    /// CNAMEs the server followed are skipped; only records of the type
    /// asked are returned.
    ///
    /// # Errors
    /// [`Error`]: NXDOMAIN, no data, temporary, or a bad name.
    pub fn lookup(&self, name: &str, rtype: RecordType) -> Result<Vec<RData>, Error> {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(hit) = self.cache.get(&key, rtype) {
            return hit;
        }
        let fqdn = format!("{key}.");
        let qname = Name::from_ascii(&fqdn).map_err(|_| Error::BadName {
            name: name.to_string(),
        })?;
        if key.is_empty() {
            return Err(Error::BadName {
                name: name.to_string(),
            });
        }
        let (result, ttl, _) = self.ask(&key, &qname, rtype);
        if let Some(ttl) = ttl {
            self.cache.put(key, rtype, result.clone(), ttl);
        }
        result
    }

    /// As [`Resolver::lookup`], trying the search domains as the C
    /// library does: a name with fewer than `ndots` dots is tried with each
    /// search domain first, any other name as is first.
    ///
    /// # Errors
    /// The error for the name as given when no candidate has records.
    pub fn lookup_search(&self, name: &str, rtype: RecordType) -> Result<Vec<RData>, Error> {
        if name.ends_with('.') || self.conf.search.is_empty() {
            return self.lookup(name, rtype);
        }
        let suffixed = self.conf.search.iter().map(|d| format!("{name}.{d}"));
        let mut candidates: Vec<String> = Vec::new();
        if name.matches('.').count() >= self.conf.ndots {
            candidates.push(name.to_string());
            candidates.extend(suffixed);
        } else {
            candidates.extend(suffixed);
            candidates.push(name.to_string());
        }
        let mut first_error = None;
        for c in &candidates {
            match self.lookup(c, rtype) {
                Ok(r) => return Ok(r),
                Err(e) if e.is_temporary() => return Err(e),
                Err(e) => {
                    if c == name || first_error.is_none() {
                        first_error = Some(e);
                    }
                }
            }
        }
        Err(first_error.unwrap_or(Error::NotFound {
            name: name.to_string(),
        }))
    }

    /// The MX records of `domain`, lowest preference first (equal
    /// preferences in the server's order; the caller shuffles them).
    ///
    /// # Errors
    /// As [`Resolver::lookup`].
    pub fn mx(&self, domain: &str) -> Result<Vec<Mx>, Error> {
        let mut out: Vec<Mx> = self
            .lookup(domain, RecordType::MX)?
            .into_iter()
            .filter_map(|r| match r {
                RData::MX(mx) => Some(Mx {
                    preference: mx.preference,
                    exchange: ascii_name(&mx.exchange),
                }),
                _ => None,
            })
            .collect();
        out.sort_by_key(|m| m.preference);
        Ok(out)
    }

    /// The IPv4 addresses of `name`.
    ///
    /// # Errors
    /// As [`Resolver::lookup`].
    pub fn a(&self, name: &str) -> Result<Vec<Ipv4Addr>, Error> {
        Ok(self
            .lookup(name, RecordType::A)?
            .into_iter()
            .filter_map(|r| match r {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect())
    }

    /// The IPv6 addresses of `name`.
    ///
    /// # Errors
    /// As [`Resolver::lookup`].
    pub fn aaaa(&self, name: &str) -> Result<Vec<Ipv6Addr>, Error> {
        Ok(self
            .lookup(name, RecordType::AAAA)?
            .into_iter()
            .filter_map(|r| match r {
                RData::AAAA(a) => Some(a.0),
                _ => None,
            })
            .collect())
    }

    /// The addresses of `name` in the families asked for, IPv4 first.
    /// A temporary failure of one family does not hide the other's
    /// addresses; with none found, the most serious failure is returned
    /// (temporary, then not found, then no data).
    ///
    /// # Errors
    /// As [`Resolver::lookup`].
    pub fn addresses(&self, name: &str, ipv4: bool, ipv6: bool) -> Result<Vec<IpAddr>, Error> {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        if ipv4 {
            match self.a(name) {
                Ok(v) => out.extend(v.into_iter().map(IpAddr::V4)),
                Err(e) => errors.push(e),
            }
        }
        if ipv6 {
            match self.aaaa(name) {
                Ok(v) => out.extend(v.into_iter().map(IpAddr::V6)),
                Err(e) => errors.push(e),
            }
        }
        if !out.is_empty() {
            return Ok(out);
        }
        errors.sort_by_key(|e| match e {
            Error::Temporary { .. } => 0,
            Error::BadName { .. } => 1,
            Error::NotFound { .. } => 2,
            Error::NoData { .. } => 3,
        });
        Err(errors.into_iter().next().unwrap_or(Error::NoData {
            name: name.to_string(),
            rtype: RecordType::A,
        }))
    }

    /// The TXT strings of `name`, each record's strings joined.
    ///
    /// # Errors
    /// As [`Resolver::lookup`].
    pub fn txt(&self, name: &str) -> Result<Vec<String>, Error> {
        Ok(self
            .lookup(name, RecordType::TXT)?
            .into_iter()
            .filter_map(|r| match r {
                RData::TXT(t) => Some(
                    t.txt_data
                        .iter()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect())
    }

    /// The names of an address (the PTR records of its reverse name).
    ///
    /// # Errors
    /// As [`Resolver::lookup`].
    pub fn ptr(&self, addr: IpAddr) -> Result<Vec<String>, Error> {
        let name = reverse_name(addr);
        Ok(self
            .lookup(&name, RecordType::PTR)?
            .into_iter()
            .filter_map(|r| match r {
                RData::PTR(p) => Some(ascii_name(&p.0)),
                _ => None,
            })
            .collect())
    }

    /// The TLSA records at `name` (`_25._tcp.mx.example.org`).
    ///
    /// # Errors
    /// As [`Resolver::lookup`].
    pub fn tlsa(&self, name: &str) -> Result<Vec<Tlsa>, Error> {
        Ok(self
            .lookup(name, RecordType::TLSA)?
            .into_iter()
            .filter_map(tlsa_of)
            .collect())
    }

    /// As [`Resolver::lookup`], not cached, with whether the resolver
    /// vouched for the answer with the AD bit (DNSSEC-validated; Postfix's
    /// smtp_dns_support_level = dnssec trusts the resolver of resolv.conf
    /// the same way). A negative answer carries the AD bit in the error's
    /// place: `Ok((vec![], true))` is a validated NXDOMAIN or no data.
    ///
    /// # Errors
    /// As [`Resolver::lookup`], for unvalidated negative answers too.
    pub fn lookup_secure(
        &self,
        name: &str,
        rtype: RecordType,
    ) -> Result<(Vec<RData>, bool), Error> {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        let qname = Name::from_ascii(format!("{key}.")).map_err(|_| Error::BadName {
            name: name.to_string(),
        })?;
        if key.is_empty() {
            return Err(Error::BadName {
                name: name.to_string(),
            });
        }
        match self.ask(&key, &qname, rtype) {
            (Ok(r), _, ad) => Ok((r, ad)),
            (Err(Error::NotFound { .. } | Error::NoData { .. }), _, true) => Ok((Vec::new(), true)),
            (Err(e), _, _) => Err(e),
        }
    }

    /// The TLSA records at `name` and whether they are DNSSEC-validated
    /// (not cached). `Ok((vec![], true))`: validated absence.
    ///
    /// # Errors
    /// As [`Resolver::lookup_secure`].
    pub fn tlsa_secure(&self, name: &str) -> Result<(Vec<Tlsa>, bool), Error> {
        let (records, ad) = self.lookup_secure(name, RecordType::TLSA)?;
        Ok((records.into_iter().filter_map(tlsa_of).collect(), ad))
    }

    /// Asks the servers in turn, `attempts` rounds. Returns the result,
    /// how long it may be cached (`None`: not at all), and the AD bit.
    fn ask(
        &self,
        key: &str,
        qname: &Name,
        rtype: RecordType,
    ) -> (Result<Vec<RData>, Error>, Option<u32>, bool) {
        let mut last = String::from("no nameserver answered");
        for _ in 0..self.conf.attempts.max(1) {
            for server in &self.conf.servers {
                match wire::query(*server, qname, rtype, self.conf.timeout) {
                    Ok(m) => match m.metadata.response_code {
                        ResponseCode::NoError | ResponseCode::NXDomain => {
                            let (r, ttl) = interpret(key, &m, rtype);
                            return (r, ttl, m.metadata.authentic_data);
                        }
                        other => last = format!("{server}: server answered {other}"),
                    },
                    Err(e) => last = format!("{server}: {e}"),
                }
            }
        }
        (
            Err(Error::Temporary {
                name: key.to_string(),
                reason: last,
            }),
            None,
            false,
        )
    }
}

/// The records of the asked type, or the negative answer; with the TTL to
/// cache them for.
fn interpret(
    key: &str,
    m: &Message,
    rtype: RecordType,
) -> (Result<Vec<RData>, Error>, Option<u32>) {
    let negative_ttl = || {
        let ttl = m
            .authorities
            .iter()
            .find_map(|r| match &r.data {
                RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
                _ => None,
            })
            .unwrap_or(DEFAULT_NEGATIVE_TTL)
            .min(MAX_NEGATIVE_TTL);
        (ttl > 0).then_some(ttl)
    };
    if m.metadata.response_code == ResponseCode::NXDomain {
        return (
            Err(Error::NotFound {
                name: key.to_string(),
            }),
            negative_ttl(),
        );
    }
    let records: Vec<&hickory_proto::rr::Record> = m
        .answers
        .iter()
        .filter(|r| r.record_type() == rtype)
        .collect();
    if records.is_empty() {
        return (
            Err(Error::NoData {
                name: key.to_string(),
                rtype,
            }),
            negative_ttl(),
        );
    }
    let ttl = records
        .iter()
        .map(|r| r.ttl)
        .min()
        .unwrap_or(0)
        .min(MAX_TTL);
    let data = records.into_iter().map(|r| r.data.clone()).collect();
    (Ok(data), (ttl > 0).then_some(ttl))
}

fn tlsa_of(r: RData) -> Option<Tlsa> {
    match r {
        RData::TLSA(t) => Some(Tlsa {
            usage: t.cert_usage.into(),
            selector: t.selector.into(),
            matching: t.matching.into(),
            data: t.cert_data.clone(),
        }),
        _ => None,
    }
}

/// A name in lower-case ASCII without the trailing dot ("" for the root).
fn ascii_name(n: &Name) -> String {
    n.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

/// `4.3.2.1.in-addr.arpa` or the nibble form under `ip6.arpa`.
pub fn reverse_name(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => {
            let [p, q, r, s] = a.octets();
            format!("{s}.{r}.{q}.{p}.in-addr.arpa")
        }
        IpAddr::V6(a) => {
            let mut out = String::with_capacity(72);
            for byte in a.octets().iter().rev() {
                out.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            out.push_str("ip6.arpa");
            out
        }
    }
}

#[cfg(test)]
mod tests;
