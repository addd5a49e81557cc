//! Postfix's TLS protocol and cipher settings, mapped onto rustls.
//!
//! # Synopsis
//!
//! ```text
//! Policy::from_params(prefix, mandatory, get) -> Result<Policy, String>  // "smtpd", "smtp", ...
//! parse_protocols(param, value) -> Result<Protocols, String>
//! grade_suites(param, value) -> Result<(Vec<SupportedCipherSuite>, Vec<String>), String>
//! exclude_suites(param, value, suites) -> Result<Vec<SupportedCipherSuite>, String>
//! suite_matches(element, suite) -> bool
//! Policy::provider() -> rustls::crypto::CryptoProvider
//! ```
//!
//! # Description
//!
//! [`Policy::from_params`] reads `PREFIX_tls_protocols`, `PREFIX_tls_ciphers`
//! and `PREFIX_tls_exclude_ciphers` through `get` (a main.cf lookup), or,
//! when TLS is mandatory (`encrypt` level, wrapper mode), as Postfix does,
//! `PREFIX_tls_mandatory_protocols`, `PREFIX_tls_mandatory_ciphers` and
//! both `PREFIX_tls_exclude_ciphers` and
//! `PREFIX_tls_mandatory_exclude_ciphers`. The prefix is `smtpd` for the
//! server and `smtp` for the client.
//!
//! Protocols are written as Postfix accepts them (tls_proto_mask_lims):
//! names to include (`TLSv1.3`), names to exclude (`!SSLv2, !SSLv3`), and
//! bounds (`>=TLSv1.2`, `<=TLSv1.2`, `>=0x0303`, `>=None`), separated by
//! commas, white space or colons, case-insensitive. rustls speaks TLSv1.2
//! and TLSv1.3 only: lower floors are raised silently, a setting that names
//! SSLv2, SSLv3, TLSv1 or TLSv1.1 to include them gets a warning saying they
//! are not supported, and a setting that leaves neither TLSv1.2 nor TLSv1.3
//! is an error naming the parameter.
//!
//! Cipher grades: every rustls suite is what OpenSSL calls HIGH (AEAD,
//! ECDHE), so `high`, `medium`, `low` and `export` (the last two mean
//! `medium` in Postfix) all give the full rustls list. `null` (no
//! encryption) cannot be had: a warning says so and the full list is used.
//!
//! Exclusions are OpenSSL cipher-string elements: full names
//! (`ECDHE-RSA-AES128-GCM-SHA256`, `TLS_AES_128_GCM_SHA256`, IANA names),
//! aliases (`AES128`, `AES256`, `AES`, `AESGCM`, `CHACHA20`, `aRSA`,
//! `aECDSA`, `ECDSA`, `ECDHE`, `EECDH`, `kECDHE`, `TLSv1.2`, `TLSv1.3`,
//! `HIGH`, `ALL`) and `A+B` (both). Unlike OpenSSL, an alias such as
//! `AES128` or `CHACHA20` also removes the TLSv1.3 suite of that cipher.
//! Elements that name nothing rustls has (`aNULL`, `RC4`, `3DES`, `MD5`,
//! `kRSA`...) remove nothing, as in OpenSSL. A version left without a
//! suite is turned off with a warning; nothing left at all is an error.
//!
//! # Diagnostics
//!
//! Errors and warnings are strings that name the parameter and its value;
//! the caller logs warnings and treats errors as fatal.

use rustls::SupportedCipherSuite;
use rustls::SupportedProtocolVersion;
use rustls::crypto::CryptoProvider;

/// Protocol version codes, as in the TLS record layer.
const SSL2: u32 = 0x0200;
const SSL3: u32 = 0x0300;
const TLS1: u32 = 0x0301;
const TLS1_1: u32 = 0x0302;
const TLS1_2: u32 = 0x0303;
const TLS1_3: u32 = 0x0304;

/// Postfix's protocol names (include / exclude lists).
const PROTOCOL_NAMES: &[(&str, u32)] = &[
    ("SSLv2", SSL2),
    ("SSLv3", SSL3),
    ("TLSv1", TLS1),
    ("TLSv1.1", TLS1_1),
    ("TLSv1.2", TLS1_2),
    ("TLSv1.3", TLS1_3),
];

/// Names allowed after `>=` and `<=` (Postfix's tls_version_table); 0 is no bound.
const BOUND_NAMES: &[(&str, u32)] = &[
    ("None", 0),
    ("SSLv3", SSL3),
    ("TLSv1", TLS1),
    ("TLSv1.1", TLS1_1),
    ("TLSv1.2", TLS1_2),
    ("TLSv1.3", TLS1_3),
];

/// Separators of protocol lists and cipher exclusions (CHARS_COMMA_SP ":").
const SEPARATORS: &[char] = &[',', ' ', '\t', '\r', '\n', ':'];

/// The TLS versions a protocol setting leaves, with its warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocols {
    /// TLSv1.2 is allowed.
    pub tls12: bool,
    /// TLSv1.3 is allowed.
    pub tls13: bool,
    /// Things to log as warnings (protocols asked for that rustls lacks).
    pub warnings: Vec<String>,
}

/// lookup_name - case-insensitive lookup in a name table.
fn lookup_name(table: &[(&str, u32)], name: &str) -> Option<u32> {
    table
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, code)| code)
}

/// parse_bound - a `>=`/`<=` operand: a version name or a hex number.
fn parse_bound(text: &str) -> Option<u32> {
    if let Some(code) = lookup_name(BOUND_NAMES, text) {
        return Some(code);
    }
    let hex = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if hex.is_empty() {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

/// Parses a protocol setting such as `>=TLSv1.2` or `!SSLv2, !SSLv3`.
///
/// `param` names the parameter in messages.
///
/// # Errors
/// An unknown protocol name, or a setting that leaves neither TLSv1.2 nor
/// TLSv1.3.
pub fn parse_protocols(param: &str, value: &str) -> Result<Protocols, String> {
    let invalid =
        |tok: &str| format!("invalid {param} value: \"{value}\": unknown protocol \"{tok}\"");
    let (mut floor, mut ceiling) = (0u32, 0u32);
    let mut include = Vec::new();
    let mut exclude = Vec::new();
    let mut old = Vec::new();
    for tok in value.split(SEPARATORS).filter(|t| !t.is_empty()) {
        if let Some(v) = tok.strip_prefix(">=") {
            floor = parse_bound(v).ok_or_else(|| invalid(tok))?;
        } else if let Some(v) = tok.strip_prefix("<=") {
            ceiling = parse_bound(v).ok_or_else(|| invalid(tok))?;
            if ceiling != 0 && ceiling < TLS1_2 {
                old.push(v.to_string());
            }
        } else if let Some(v) = tok.strip_prefix('!') {
            exclude.push(lookup_name(PROTOCOL_NAMES, v).ok_or_else(|| invalid(tok))?);
        } else {
            let code = lookup_name(PROTOCOL_NAMES, tok).ok_or_else(|| invalid(tok))?;
            if code < TLS1_2 {
                old.push(tok.to_string());
            }
            include.push(code);
        }
    }
    let allowed = |v: u32| {
        !exclude.contains(&v)
            && (include.is_empty() || include.contains(&v))
            && (floor == 0 || v >= floor)
            && (ceiling == 0 || v <= ceiling)
    };
    let mut warnings = Vec::new();
    if !old.is_empty() {
        warnings.push(format!(
            "{param} = {value}: {} not supported (only TLSv1.2 and TLSv1.3 are)",
            old.join(", ")
        ));
    }
    let p = Protocols {
        tls12: allowed(TLS1_2),
        tls13: allowed(TLS1_3),
        warnings,
    };
    if !p.tls12 && !p.tls13 {
        return Err(format!(
            "{param} = {value} leaves no supported TLS protocol \
             (only TLSv1.2 and TLSv1.3 are supported; SSLv3, TLSv1 and TLSv1.1 are not)"
        ));
    }
    Ok(p)
}

/// The suites of the ring provider, rustls' defaults.
fn all_suites() -> Vec<SupportedCipherSuite> {
    rustls::crypto::ring::default_provider().cipher_suites
}

/// Maps a Postfix cipher grade to rustls suites; warnings come second.
///
/// # Errors
/// A grade Postfix does not know.
pub fn grade_suites(
    param: &str,
    value: &str,
) -> Result<(Vec<SupportedCipherSuite>, Vec<String>), String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "high" | "medium" | "low" | "export" => Ok((all_suites(), Vec::new())),
        "null" => Ok((
            all_suites(),
            vec![format!(
                "{param} = null: the null cipher grade (no encryption) is not supported; \
                 using the high grade"
            )],
        )),
        _ => Err(format!(
            "invalid {param} value: \"{value}\" (use high, medium, low, export or null)"
        )),
    }
}

/// The names and OpenSSL aliases one rustls suite answers to.
fn suite_names(suite: SupportedCipherSuite) -> Vec<String> {
    let iana = suite
        .suite()
        .as_str()
        .map(str::to_string)
        .unwrap_or_default();
    let mut names: Vec<String> = ["ALL", "DEFAULT", "HIGH"].map(String::from).to_vec();
    names.push(iana.clone());
    let bulk = if let Some(rest) = iana.strip_prefix("TLS13_") {
        names.push(format!("TLS_{rest}"));
        names.push("TLSv1.3".into());
        rest.to_string()
    } else {
        names.push(crate::openssl_tls12_name(&iana));
        names.extend(["TLSv1.2", "ECDHE", "EECDH", "kECDHE", "kEECDH", "ECDH"].map(String::from));
        if iana.contains("_ECDSA_") {
            names.extend(["aECDSA", "ECDSA"].map(String::from));
        } else if iana.contains("_RSA_") {
            names.push("aRSA".into());
        }
        iana.split_once("_WITH_")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    };
    if let Some(bits) = bulk.strip_prefix("AES_") {
        names.extend(["AES", "AESGCM"].map(String::from));
        names.push(format!("AES{}", bits.get(..3).unwrap_or("")));
    } else if bulk.starts_with("CHACHA20") {
        names.push("CHACHA20".into());
    }
    names
}

/// True when OpenSSL cipher-string element `element` (`AES128`,
/// `ECDHE-RSA-AES128-GCM-SHA256`, `aRSA+AES256`...) selects `suite`.
pub fn suite_matches(element: &str, suite: SupportedCipherSuite) -> bool {
    let names = suite_names(suite);
    element
        .split('+')
        .all(|part| !part.is_empty() && names.iter().any(|n| n.eq_ignore_ascii_case(part)))
}

/// Removes the suites an exclusion list (`smtpd_tls_exclude_ciphers`) names.
///
/// # Errors
/// An element starting with `!`, `+`, `-` or `@` (Postfix refuses those).
pub fn exclude_suites(
    param: &str,
    value: &str,
    suites: Vec<SupportedCipherSuite>,
) -> Result<Vec<SupportedCipherSuite>, String> {
    let mut elements = Vec::new();
    for tok in value.split(SEPARATORS).filter(|t| !t.is_empty()) {
        if tok.starts_with(['!', '+', '-', '@']) {
            return Err(format!(
                "invalid {param} value: \"{value}\": invalid unary '!+-@' in cipher exclusion: {tok}"
            ));
        }
        elements.push(tok);
    }
    Ok(suites
        .into_iter()
        .filter(|s| !elements.iter().any(|e| suite_matches(e, *s)))
        .collect())
}

/// Protocol versions and cipher suites for one rustls configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Versions to offer (TLSv1.3 first).
    pub versions: Vec<&'static SupportedProtocolVersion>,
    /// Suites to offer, in rustls' order of preference.
    pub suites: Vec<SupportedCipherSuite>,
    /// Things the caller should log as warnings.
    pub warnings: Vec<String>,
}

impl Default for Policy {
    /// rustls' defaults: TLSv1.3 and TLSv1.2 with all ring suites.
    fn default() -> Policy {
        Policy {
            versions: vec![&rustls::version::TLS13, &rustls::version::TLS12],
            suites: all_suites(),
            warnings: Vec::new(),
        }
    }
}

impl Policy {
    /// Reads `{prefix}_tls_protocols`, `{prefix}_tls_ciphers` and
    /// `{prefix}_tls_exclude_ciphers` (the `mandatory_` variants too when
    /// `mandatory`) through `get`, which returns a parameter's value.
    ///
    /// # Errors
    /// A value that is invalid or leaves nothing to negotiate, naming the parameter.
    pub fn from_params(
        prefix: &str,
        mandatory: bool,
        get: impl Fn(&str) -> String,
    ) -> Result<Policy, String> {
        let kind = if mandatory { "mandatory_" } else { "" };
        let proto_param = format!("{prefix}_tls_{kind}protocols");
        let protocols = parse_protocols(&proto_param, &get(&proto_param))?;
        let grade_param = format!("{prefix}_tls_{kind}ciphers");
        let (mut suites, grade_warnings) = grade_suites(&grade_param, &get(&grade_param))?;
        let mut excl_params = vec![format!("{prefix}_tls_exclude_ciphers")];
        if mandatory {
            excl_params.push(format!("{prefix}_tls_mandatory_exclude_ciphers"));
        }
        for p in &excl_params {
            suites = exclude_suites(p, &get(p), suites)?;
        }
        let mut warnings = protocols.warnings;
        warnings.extend(grade_warnings);
        let mut versions: Vec<&'static SupportedProtocolVersion> = Vec::new();
        for (on, version, name) in [
            (protocols.tls13, &rustls::version::TLS13, "TLSv1.3"),
            (protocols.tls12, &rustls::version::TLS12, "TLSv1.2"),
        ] {
            if !on {
                continue;
            }
            if suites.iter().any(|s| s.version() == version) {
                versions.push(version);
            } else {
                warnings.push(format!(
                    "{} leave no {name} cipher suite: {name} is off",
                    excl_params.join(" and ")
                ));
            }
        }
        if versions.is_empty() {
            return Err(format!(
                "{} = {} with {} leave no cipher suite to offer",
                excl_params.join(" and "),
                excl_params
                    .iter()
                    .map(|p| get(p))
                    .collect::<Vec<_>>()
                    .join(" / "),
                proto_param
            ));
        }
        suites.retain(|s| versions.contains(&s.version()));
        Ok(Policy {
            versions,
            suites,
            warnings,
        })
    }

    /// The ring provider limited to this policy's suites.
    pub fn provider(&self) -> CryptoProvider {
        CryptoProvider {
            cipher_suites: self.suites.clone(),
            ..rustls::crypto::ring::default_provider()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(value: &str) -> (bool, bool) {
        let p = parse_protocols("smtpd_tls_protocols", value).unwrap();
        (p.tls12, p.tls13)
    }

    #[test]
    fn protocol_forms() {
        assert_eq!(versions(""), (true, true));
        assert_eq!(versions(">=TLSv1"), (true, true));
        assert_eq!(versions(">=TLSv1.2"), (true, true));
        assert_eq!(versions(">=TLSv1.3"), (false, true));
        assert_eq!(versions(">=tlsv1.3"), (false, true));
        assert_eq!(versions("<=TLSv1.2"), (true, false));
        assert_eq!(versions(">=TLSv1.2, <=TLSv1.2"), (true, false));
        assert_eq!(versions("!SSLv2, !SSLv3, !TLSv1, !TLSv1.1"), (true, true));
        assert_eq!(versions("!SSLv2:!SSLv3:!TLSv1.2"), (false, true));
        assert_eq!(versions("TLSv1.3"), (false, true));
        assert_eq!(versions("TLSv1.2 TLSv1.3"), (true, true));
        assert_eq!(versions(">=0x0304"), (false, true));
        assert_eq!(versions(">=None <=0x303"), (true, false));
        let p = parse_protocols("smtpd_tls_protocols", ">=TLSv1").unwrap();
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn old_protocols_warn_or_fail() {
        let p = parse_protocols("smtpd_tls_protocols", "TLSv1, TLSv1.1, TLSv1.2").unwrap();
        assert_eq!((p.tls12, p.tls13), (true, false));
        assert_eq!(p.warnings.len(), 1);
        assert!(
            p.warnings[0].contains("TLSv1, TLSv1.1 not supported"),
            "{:?}",
            p.warnings
        );
        for bad in [
            "<=TLSv1.1",
            "SSLv3",
            "TLSv1",
            "!TLSv1.2 !TLSv1.3",
            ">=TLSv1.3 <=TLSv1.2",
        ] {
            let e = parse_protocols("smtp_tls_mandatory_protocols", bad).unwrap_err();
            assert!(e.contains("smtp_tls_mandatory_protocols"), "{e}");
            assert!(e.contains("leaves no supported TLS protocol"), "{e}");
        }
        for bad in ["TLSv1.4", ">=SSLv2", "!TLS", ">=", "<=0xZZ", "SSLv3x"] {
            let e = parse_protocols("smtpd_tls_protocols", bad).unwrap_err();
            assert!(e.starts_with("invalid smtpd_tls_protocols value"), "{e}");
        }
    }

    fn names(suites: &[SupportedCipherSuite]) -> Vec<String> {
        suites
            .iter()
            .map(|s| s.suite().as_str().unwrap_or("?").to_string())
            .collect()
    }

    #[test]
    fn grades() {
        for g in ["high", "medium", "LOW", "export", " medium "] {
            let (s, w) = grade_suites("smtpd_tls_ciphers", g).unwrap();
            assert_eq!(s.len(), all_suites().len());
            assert!(w.is_empty());
        }
        let (s, w) = grade_suites("smtpd_tls_ciphers", "null").unwrap();
        assert_eq!(s.len(), all_suites().len());
        assert!(w[0].contains("not supported"), "{w:?}");
        let e = grade_suites("smtpd_tls_mandatory_ciphers", "strong").unwrap_err();
        assert!(e.contains("smtpd_tls_mandatory_ciphers"), "{e}");
        assert!(grade_suites("x", "").is_err());
    }

    fn excluded(value: &str) -> Vec<String> {
        let left = exclude_suites("smtpd_tls_exclude_ciphers", value, all_suites()).unwrap();
        let left = names(&left);
        names(&all_suites())
            .into_iter()
            .filter(|n| !left.contains(n))
            .collect()
    }

    #[test]
    fn exclusions() {
        assert!(excluded("").is_empty());
        assert!(excluded("aNULL, eNULL, EXPORT, DES, RC4, MD5, PSK, kRSA, RSA").is_empty());
        assert_eq!(
            excluded("ECDHE-RSA-AES128-GCM-SHA256"),
            ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]
        );
        assert_eq!(
            excluded("TLS_AES_128_GCM_SHA256"),
            ["TLS13_AES_128_GCM_SHA256"]
        );
        let mut a = excluded("AES128");
        a.sort();
        assert_eq!(
            a,
            [
                "TLS13_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
            ]
        );
        assert_eq!(excluded("CHACHA20").len(), 3);
        assert_eq!(excluded("AES256:CHACHA20").len(), 6);
        assert_eq!(excluded("aRSA").len(), 3);
        assert_eq!(excluded("ecdsa").len(), 3);
        assert_eq!(
            excluded("aRSA+CHACHA20"),
            ["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"]
        );
        assert_eq!(excluded("TLSv1.3").len(), 3);
        assert_eq!(excluded("ALL").len(), all_suites().len());
        let e =
            exclude_suites("smtpd_tls_exclude_ciphers", "AES128, !RC4", all_suites()).unwrap_err();
        assert!(
            e.contains("smtpd_tls_exclude_ciphers") && e.contains("!RC4"),
            "{e}"
        );
    }

    fn params<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> String + 'a {
        move |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
                .unwrap_or_default()
        }
    }

    #[test]
    fn policy_from_params() {
        let p = Policy::from_params(
            "smtpd",
            false,
            params(&[
                ("smtpd_tls_protocols", ">=TLSv1"),
                ("smtpd_tls_ciphers", "medium"),
                ("smtpd_tls_mandatory_protocols", ">=TLSv1.3"),
                ("smtpd_tls_mandatory_ciphers", "high"),
                ("smtpd_tls_mandatory_exclude_ciphers", "AES256"),
            ]),
        )
        .unwrap();
        assert_eq!(p.versions.len(), 2);
        assert_eq!(p.suites.len(), all_suites().len());
        assert!(p.warnings.is_empty());
        let m = Policy::from_params(
            "smtpd",
            true,
            params(&[
                ("smtpd_tls_protocols", ">=TLSv1"),
                ("smtpd_tls_ciphers", "medium"),
                ("smtpd_tls_mandatory_protocols", ">=TLSv1.3"),
                ("smtpd_tls_mandatory_ciphers", "high"),
                ("smtpd_tls_exclude_ciphers", "CHACHA20"),
                ("smtpd_tls_mandatory_exclude_ciphers", "AES256"),
            ]),
        )
        .unwrap();
        assert_eq!(m.versions, [&rustls::version::TLS13]);
        assert_eq!(names(&m.suites), ["TLS13_AES_128_GCM_SHA256"]);
        assert_eq!(m.provider().cipher_suites.len(), 1);
        // TLSv1.3 suites all excluded: TLSv1.3 goes off with a warning.
        let p = Policy::from_params(
            "smtp",
            false,
            params(&[
                ("smtp_tls_ciphers", "high"),
                ("smtp_tls_exclude_ciphers", "TLSv1.3"),
            ]),
        )
        .unwrap();
        assert_eq!(p.versions, [&rustls::version::TLS12]);
        assert!(
            p.warnings[0].contains("no TLSv1.3 cipher suite"),
            "{:?}",
            p.warnings
        );
        // Nothing left at all.
        let e = Policy::from_params(
            "smtp",
            false,
            params(&[
                ("smtp_tls_protocols", "TLSv1.3"),
                ("smtp_tls_ciphers", "high"),
                ("smtp_tls_exclude_ciphers", "AES CHACHA20"),
            ]),
        )
        .unwrap_err();
        assert!(e.contains("smtp_tls_exclude_ciphers"), "{e}");
        // The grade parameter must be set (Postfix requires a value).
        assert!(Policy::from_params("smtpd", false, params(&[])).is_err());
    }
}
