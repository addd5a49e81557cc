//! The smtpd restriction names this suite builds, so that `postfix check`
//! (and `postfix start`, which runs it) can refuse a restriction list that
//! names one that is not built, before smtpd meets it.
//!
//! smtpd itself never exits on such a name: it logs a warning and answers
//! `451 4.3.5 Server configuration error` where the name is reached (as
//! Postfix does for an unknown restriction), so clients always get a
//! banner. smtpd's parser and [`RESTRICTIONS`] are kept in agreement by a
//! test in smtpd.

/// What follows a restriction name in a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// Nothing.
    None,
    /// One word that is not a table (an RBL domain).
    Word,
    /// One `type:name` lookup table.
    Table,
    /// One service address (`inet:host:port`, `unix:path`).
    Service,
}

/// Every smtpd restriction built here, with what follows it.
pub const RESTRICTIONS: &[(&str, Arg)] = &[
    ("permit", Arg::None),
    ("reject", Arg::None),
    ("defer", Arg::None),
    ("defer_if_permit", Arg::None),
    ("defer_if_reject", Arg::None),
    ("warn_if_reject", Arg::None),
    ("reject_unauth_pipelining", Arg::None),
    ("reject_plaintext_session", Arg::None),
    ("permit_mynetworks", Arg::None),
    ("permit_sasl_authenticated", Arg::None),
    ("reject_unknown_client_hostname", Arg::None),
    ("reject_unknown_client", Arg::None),
    ("reject_rbl_client", Arg::Word),
    ("reject_rbl", Arg::Word),
    ("reject_invalid_helo_hostname", Arg::None),
    ("reject_invalid_hostname", Arg::None),
    ("reject_non_fqdn_helo_hostname", Arg::None),
    ("reject_non_fqdn_hostname", Arg::None),
    ("reject_non_fqdn_sender", Arg::None),
    ("reject_unknown_sender_domain", Arg::None),
    ("reject_non_fqdn_recipient", Arg::None),
    ("reject_unknown_recipient_domain", Arg::None),
    ("reject_unauth_destination", Arg::None),
    ("defer_unauth_destination", Arg::None),
    ("permit_auth_destination", Arg::None),
    ("reject_unlisted_recipient", Arg::None),
    ("check_recipient_maps", Arg::None),
    ("reject_unverified_recipient", Arg::None),
    ("reject_unverified_sender", Arg::None),
    ("check_client_access", Arg::Table),
    ("check_helo_access", Arg::Table),
    ("check_sender_access", Arg::Table),
    ("check_recipient_access", Arg::Table),
    ("check_etrn_access", Arg::Table),
    ("check_policy_service", Arg::Service),
];

/// The parameters that hold smtpd restriction lists.
pub const LISTS: &[&str] = &[
    "smtpd_client_restrictions",
    "smtpd_helo_restrictions",
    "smtpd_sender_restrictions",
    "smtpd_relay_restrictions",
    "smtpd_recipient_restrictions",
    "smtpd_data_restrictions",
    "smtpd_etrn_restrictions",
    "smtpd_end_of_data_restrictions",
];

/// The restrictions that make smtpd_relay_restrictions or
/// smtpd_recipient_restrictions safe against relaying; one of the two
/// lists must name one.
pub const RELAY_GUARDS: &[&str] = &[
    "reject_unauth_destination",
    "defer_unauth_destination",
    "reject",
    "defer",
    "defer_if_permit",
];

/// True when `relay` or `recipient` (the two lists' values) names a
/// [`RELAY_GUARDS`] restriction.
pub fn relay_guarded(relay: &str, recipient: &str) -> bool {
    [relay, recipient].iter().any(|l| {
        split_words(l)
            .iter()
            .any(|w| RELAY_GUARDS.contains(&w.to_ascii_lowercase().as_str()))
    })
}

/// What a restriction list names: restrictions that are not built, and
/// the lookup tables it names (for the caller to check their types).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ListProblems {
    /// Names that are neither a built restriction, a restriction class
    /// nor a `type:table`.
    pub unknown: Vec<String>,
    /// `type:name` tables the list names (to check that the type exists).
    pub tables: Vec<String>,
    /// A restriction whose argument is missing.
    pub missing_arg: Vec<String>,
}

/// Reads one restriction list (words separated by commas or blanks)
/// against [`RESTRICTIONS`] and the names of smtpd_restriction_classes.
pub fn scan_list(value: &str, classes: &[String]) -> ListProblems {
    let mut out = ListProblems::default();
    let words: Vec<&str> = split_words(value);
    let mut i = 0;
    while let Some(&w) = words.get(i) {
        i += 1;
        let lower = w.to_ascii_lowercase();
        if let Some((_, arg)) = RESTRICTIONS.iter().find(|(n, _)| *n == lower) {
            if *arg == Arg::None {
                continue;
            }
            let Some(&a) = words.get(i) else {
                out.missing_arg.push(lower);
                continue;
            };
            i += 1;
            if *arg == Arg::Table {
                out.tables.push(a.to_string());
            }
        } else if classes.iter().any(|c| c == w) {
        } else if w.contains(':') {
            out.tables.push(w.to_string());
        } else {
            out.unknown.push(w.to_string());
        }
    }
    out
}

/// Splits at commas and whitespace outside `{ }` (inline tables).
fn split_words(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start: Option<usize> = None;
    for (i, c) in value.char_indices() {
        match c {
            '{' => {
                depth += 1;
                start.get_or_insert(i);
            }
            '}' => {
                depth = depth.saturating_sub(1);
            }
            c if depth == 0 && (c == ',' || c.is_whitespace()) => {
                if let Some(s) = start.take()
                    && let Some(w) = value.get(s..i)
                {
                    out.push(w);
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start
        && let Some(w) = value.get(s..)
    {
        out.push(w);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_unknown_names_and_tables() {
        let p = scan_list(
            "permit_mynetworks, check_policy_service inet:127.0.0.1:10023, \
             reject_rhsbl_client x.example, check_sender_access hash:/a, myclass, \
             inline:{ a=b, c=d }, reject_rbl_client",
            &["myclass".to_string()],
        );
        assert_eq!(p.unknown, ["reject_rhsbl_client", "x.example"]);
        assert_eq!(p.tables, ["hash:/a", "inline:{ a=b, c=d }"]);
        assert_eq!(p.missing_arg, ["reject_rbl_client"]);
    }

    #[test]
    fn lists_are_known_parameters() {
        for l in LISTS {
            assert!(crate::params::lookup(l).is_some(), "{l}");
        }
    }
}
