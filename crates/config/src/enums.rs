//! Enumerated parameters: the values Postfix accepts for parameters that
//! name one choice (`mynetworks_style = subnet`) or a list of choices
//! (`inet_protocols = ipv4, ipv6`), as its name_code and name_mask tables
//! do. A value outside them is refused when main.cf is loaded, as Postfix
//! refuses it (`unknown inet_protocols value "ipv5" in "ipv5"`).
//!
//! Matching is case-insensitive; list words are separated by commas and
//! whitespace. Parameters whose syntax is richer than a word list (TLS
//! protocol lists with `!`, OpenSSL option names) are not checked here,
//! nor the cipher grades, which smtpd and smtp check when they apply.

use crate::value::Problem;

/// How many choices a value holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Exactly one word (or empty when `empty_ok`).
    One,
    /// Any number of words, each from the set.
    List,
}

/// One enumerated parameter.
#[derive(Debug, Clone, Copy)]
pub struct Enumerated {
    /// The parameter.
    pub name: &'static str,
    /// One word or a list.
    pub shape: Shape,
    /// The accepted words.
    pub values: &'static [&'static str],
    /// An empty value is accepted (a list may always be empty unless this
    /// is false).
    pub empty_ok: bool,
}

const fn one(name: &'static str, values: &'static [&'static str], empty_ok: bool) -> Enumerated {
    Enumerated {
        name,
        shape: Shape::One,
        values,
        empty_ok,
    }
}

const fn list(name: &'static str, values: &'static [&'static str], empty_ok: bool) -> Enumerated {
    Enumerated {
        name,
        shape: Shape::List,
        values,
        empty_ok,
    }
}

/// reject_tempfail_action and the *_tempfail_action parameters.
const TEMPFAIL_ACTIONS: &[&str] = &["defer", "defer_if_permit"];

const TLS_LEVELS: &[&str] = &[
    "none",
    "may",
    "encrypt",
    "dane",
    "dane-only",
    "fingerprint",
    "verify",
    "secure",
];
const SASL_OPTIONS: &[&str] = &[
    "noanonymous",
    "noplaintext",
    "noactive",
    "nodictionary",
    "mutual_auth",
    "forward_secrecy",
];
const DIGESTS: &[&str] = &["md5", "sha1", "sha224", "sha256", "sha384", "sha512"];

/// Every enumerated parameter (each also in [`crate::params::PARAMS`]; a
/// test checks).
pub const ENUMERATED: &[Enumerated] = &[
    list("inet_protocols", &["all", "ipv4", "ipv6"], false),
    one("mynetworks_style", &["host", "subnet", "class"], false),
    one(
        "smtpd_tls_security_level",
        &["none", "may", "encrypt"],
        true,
    ),
    one("smtp_tls_security_level", TLS_LEVELS, true),
    one("smtpd_sasl_type", &["dovecot", "cyrus"], false),
    one("smtp_sasl_type", &["cyrus", "dovecot"], false),
    list(
        "notify_classes",
        &[
            "bounce", "2bounce", "data", "delay", "policy", "protocol", "resource", "software",
        ],
        true,
    ),
    one("header_from_format", &["standard", "obsolete"], false),
    one("info_log_address_format", &["external", "internal"], false),
    list("smtpd_sasl_security_options", SASL_OPTIONS, true),
    list("smtpd_sasl_tls_security_options", SASL_OPTIONS, true),
    list("smtp_sasl_security_options", SASL_OPTIONS, true),
    list("smtp_sasl_tls_security_options", SASL_OPTIONS, true),
    one(
        "sendmail_fix_line_endings",
        &["always", "strict", "never"],
        false,
    ),
    one("smtp_address_preference", &["ipv4", "ipv6", "any"], false),
    one(
        "smtp_dns_support_level",
        &["enabled", "disabled", "dnssec"],
        true,
    ),
    list("smtp_host_lookup", &["dns", "native"], false),
    one(
        "smtpd_tls_eecdh_grade",
        &["none", "strong", "ultra", "auto"],
        true,
    ),
    one(
        "milter_default_action",
        &["accept", "reject", "tempfail", "quarantine"],
        false,
    ),
    list(
        "mailbox_delivery_lock",
        &["flock", "fcntl", "dotlock"],
        false,
    ),
    one(
        "smtpd_forbid_bare_newline",
        &["normalize", "yes", "note", "reject", "no"],
        false,
    ),
    one("reject_tempfail_action", TEMPFAIL_ACTIONS, false),
    one(
        "unverified_recipient_tempfail_action",
        TEMPFAIL_ACTIONS,
        false,
    ),
    one("unverified_sender_tempfail_action", TEMPFAIL_ACTIONS, false),
    one("smtpd_tls_fingerprint_digest", DIGESTS, false),
    one("smtp_tls_fingerprint_digest", DIGESTS, false),
    list(
        "propagate_unmatched_extensions",
        &[
            "canonical",
            "virtual",
            "alias",
            "forward",
            "include",
            "generic",
        ],
        true,
    ),
];

/// The entry for `name`, when it is enumerated.
pub fn lookup(name: &str) -> Option<&'static Enumerated> {
    ENUMERATED.iter().find(|e| e.name == name)
}

/// Checks `value` (expanded) against `name`'s choices; parameters that are
/// not enumerated pass.
///
/// # Errors
/// [`Problem::UnknownValue`] naming the first word that is not a choice.
pub fn check(name: &str, value: &str) -> Result<(), Problem> {
    let Some(e) = lookup(name) else {
        return Ok(());
    };
    let words: Vec<&str> = value
        .split([',', ' ', '\t', '\r', '\n'])
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return if e.empty_ok {
            Ok(())
        } else {
            Err(Problem::UnknownValue(String::new()))
        };
    }
    if e.shape == Shape::One && words.len() > 1 {
        return Err(Problem::UnknownValue(value.trim().to_string()));
    }
    match words
        .iter()
        .find(|w| !e.values.iter().any(|v| v.eq_ignore_ascii_case(w)))
    {
        Some(bad) => Err(Problem::UnknownValue((*bad).to_string())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_enumerated_parameter_is_known_and_its_default_passes() {
        for e in ENUMERATED {
            let p = crate::params::lookup(e.name)
                .unwrap_or_else(|| panic!("{} is not in the parameter table", e.name));
            if let crate::params::Default::Fixed(d) = p.default
                && !d.contains('$')
            {
                assert_eq!(check(e.name, d), Ok(()), "{} default {d:?}", e.name);
            }
        }
    }

    #[test]
    fn words_are_checked() {
        assert_eq!(check("inet_protocols", "ipv4, IPv6"), Ok(()));
        assert_eq!(
            check("inet_protocols", "ipv4 ipv5"),
            Err(Problem::UnknownValue("ipv5".into()))
        );
        assert!(check("inet_protocols", "").is_err());
        assert!(check("mynetworks_style", "host subnet").is_err());
        assert_eq!(check("smtpd_tls_security_level", ""), Ok(()));
        assert!(check("smtpd_tls_security_level", "dane").is_err());
        assert_eq!(check("notify_classes", "resource,software"), Ok(()));
        assert_eq!(check("myhostname", "anything"), Ok(()));
    }
}
