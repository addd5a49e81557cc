//! Warnings about parameters that are set but that no program reads yet.
//!
//! The parameter table marks such parameters (`.unsupported()` in
//! [`crate::params::PARAMS`], [`crate::Param::supported`]). `postfix check`
//! and `postfix start` call [`Config::unsupported_warnings`] so that an
//! administrator who sets one, in main.cf or as a master.cf `-o` option,
//! learns that it has no effect, in one warning per parameter:
//!
//! ```text
//! /etc/postfix/main.cf, line 12: parameter smtpd_proxy_filter is not supported yet and has no effect
//! ```
//!
//! A supported list parameter may name values no program acts on yet
//! ([`UNSUPPORTED_VALUES`]: notify_classes's SMTP transcript classes); a
//! main.cf setting that names them gets one warning too.
//!
//! A setting whose raw value equals the built-in default changes nothing
//! and is not warned about (Postfix's own master.cf examples say
//! `-o smtpd_milters=`), nor is a parameter another setting refers to as
//! `$name` (its value then does reach a program).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use crate::master_cf::Service;
use crate::{Config, expand, params};

/// Values of supported list parameters that no program acts on yet:
/// parameter, then the words of its list that have no effect.
pub const UNSUPPORTED_VALUES: &[(&str, &[&str])] = &[(
    "notify_classes",
    // SMTP session transcripts in Postfix; smtpd sends none yet.
    &["data", "policy", "protocol", "resource", "software"],
)];

/// The words of `value` (a comma or blank separated list) that
/// [`UNSUPPORTED_VALUES`] lists for `name`, lowercase, in order.
pub fn unsupported_words(name: &str, value: &str) -> Vec<String> {
    let Some((_, words)) = UNSUPPORTED_VALUES.iter().find(|(n, _)| *n == name) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for w in value
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(str::to_ascii_lowercase)
    {
        if words.contains(&w.as_str()) && !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

/// The parameters no program reads yet, in table order.
pub fn unsupported_params() -> impl Iterator<Item = &'static crate::Param> {
    params::PARAMS.iter().filter(|p| !p.supported)
}

/// The warning text for one parameter set at `place` (`file, line N` or
/// `file, line N: service NAME`).
pub fn warning_text(place: &str, name: &str) -> String {
    format!("{place}: parameter {name} is not supported yet and has no effect")
}

impl Config {
    /// One warning per unsupported parameter that main.cf or a `-o` option
    /// of `services` (master.cf, read from this configuration directory)
    /// sets to something other than its default. The first place that sets
    /// it leads the message; further places follow in parentheses.
    pub fn unsupported_warnings(&self, services: &[Service]) -> Vec<String> {
        let is_unsupported = |name: &str| params::lookup(name).is_some_and(|p| !p.supported);
        // Settings that could carry an unsupported value into a supported one.
        let mut referenced: HashSet<String> = HashSet::new();
        for (name, s) in self.main_cf_settings() {
            if !is_unsupported(name) {
                referenced.extend(expand::references(&s.value));
            }
        }
        for service in services {
            for (name, value) in service.overrides() {
                if !is_unsupported(&name) {
                    referenced.extend(expand::references(&value));
                }
            }
        }
        let differs = |name: &str, value: &str| {
            self.default_raw(name)
                .is_none_or(|d| d.trim() != value.trim())
        };
        // Parameter name -> places, in the order found (main.cf first).
        let mut places: BTreeMap<String, (usize, Vec<String>)> = BTreeMap::new();
        let mut order = 0usize;
        let mut add = |name: &str, place: String| {
            let entry = places.entry(name.to_string()).or_insert_with(|| {
                order = order.saturating_add(1);
                (order, Vec::new())
            });
            entry.1.push(place);
        };
        let mut set: Vec<(&str, &crate::Setting)> = self.main_cf_settings().collect();
        set.sort_by_key(|(_, s)| s.line);
        let mut value_warnings = Vec::new();
        for (name, s) in set {
            let place = format!("{}, line {}", self.main_cf_path().display(), s.line);
            if is_unsupported(name) && !referenced.contains(name) && differs(name, &s.value) {
                add(name, place);
            } else if UNSUPPORTED_VALUES.iter().any(|(n, _)| *n == name) {
                let words = unsupported_words(name, &self.get(name).unwrap_or_default());
                if !words.is_empty() {
                    let (verb, have) = if words.len() == 1 {
                        ("is", "has")
                    } else {
                        ("are", "have")
                    };
                    value_warnings.push(format!(
                        "{place}: parameter {name}: {} {verb} not supported yet and {have} no effect",
                        words.join(", ")
                    ));
                }
            }
        }
        let master: PathBuf = self.config_dir().join("master.cf");
        for service in services {
            for (name, value) in service.overrides() {
                if is_unsupported(&name) && !referenced.contains(&name) && differs(&name, &value) {
                    add(
                        &name,
                        format!(
                            "{}, line {}: service {}",
                            master.display(),
                            service.line,
                            service.id()
                        ),
                    );
                }
            }
        }
        let mut found: Vec<(usize, String, Vec<String>)> = places
            .into_iter()
            .map(|(name, (n, p))| (n, name, p))
            .collect();
        found.sort();
        let mut out: Vec<String> = found
            .into_iter()
            .filter_map(|(_, name, p)| {
                let (first, rest) = p.split_first()?;
                let mut text = warning_text(first, &name);
                if !rest.is_empty() {
                    text.push_str(&format!(" (also set at {})", rest.join("; ")));
                }
                Some(text)
            })
            .collect();
        out.extend(value_warnings);
        out
    }
}
