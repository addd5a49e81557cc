//! Postfix's search order for addresses in canonical(5), virtual(5) and
//! similar tables (mail_addr_find and mail_addr_map), and the propagation
//! of an unmatched address extension to the result.
//!
//! For `user+ext@domain` (with `+` in recipient_delimiter) the keys are:
//!
//! 1. `user+ext@domain`
//! 2. `user@domain`                      (extension unmatched)
//! 3. `user+ext`, then `user`            (only when the domain is local:
//!    the caller decides, from mydestination, inet_interfaces, ...)
//! 4. `@domain`                          (extension unmatched)
//!
//! A regexp: or pcre: table is queried with the whole address only. Keys
//! are lowercased and in external form, the local part quoted where RFC
//! 5322 requires it (`"john doe"@example.com`), as Postfix 3.5 and later
//! query tables and as postmap stores quoted keys.
//!
//! [`map_address`] then turns the result into addresses: a result of the
//! form `@otherdomain` keeps the original user (`user@otherdomain`), and
//! when the caller's propagate_unmatched_extensions covers this table an
//! unmatched extension is appended to each result's local part
//! (`user+ext@domain` found via `user@domain -> other@x` gives
//! `other+ext@x`).

use crate::{Error, Table};

/// How to search a table for an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressSearch<'a> {
    /// recipient_delimiter: the set of extension delimiters (`""` for none).
    pub delimiters: &'a str,
    /// The domain is local (mydestination and friends): also try the bare
    /// `user+ext` and `user` keys.
    pub local_domain: bool,
    /// propagate_unmatched_extensions names this table's class (canonical
    /// and virtual by default).
    pub propagate_extension: bool,
}

/// One key to try, with the extension left unmatched when it is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchKey {
    /// The lookup key (lowercased, local part quoted if needed).
    pub key: String,
    /// The unmatched extension, delimiter included (`+ext`).
    pub extension: Option<String>,
    /// A derived key (all but the first): pattern tables are not asked,
    /// so that a regular expression written for whole addresses never
    /// matches a bare `user` or `@domain` (Postfix's DICT_FLAG_FIXED).
    pub partial: bool,
}

/// A table hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The key that matched.
    pub key: String,
    /// The table's value.
    pub value: String,
    /// The extension that the key did not match, delimiter included.
    pub extension: Option<String>,
}

/// The keys to try for an internal-form (unquoted) address, in order.
///
/// ```
/// let s = tables::AddressSearch { delimiters: "+", local_domain: true, propagate_extension: true };
/// let keys: Vec<String> = tables::search_keys("User+Ext@Example.com", &s)
///     .into_iter().map(|k| k.key).collect();
/// assert_eq!(keys, ["user+ext@example.com", "user@example.com", "user+ext", "user", "@example.com"]);
/// ```
pub fn search_keys(address: &str, search: &AddressSearch<'_>) -> Vec<SearchKey> {
    let full = address.to_lowercase();
    if full.is_empty() {
        return Vec::new();
    }
    let key = |k: String, ext: Option<&str>| SearchKey {
        key: k,
        extension: ext.map(str::to_string),
        partial: true,
    };
    let (local, domain) = match full.rfind('@') {
        Some(at) => (
            full.get(..at).unwrap_or_default(),
            full.get(at..).filter(|d| d.len() > 1),
        ),
        None => (full.as_str(), None),
    };
    let quote = address::quote_local;
    let split = address::split_extension(local, search.delimiters);
    let ext = split.map(|e| format!("{}{}", e.delimiter, e.extension));
    let ext = ext.as_deref();
    let with_domain = |l: &str, d: Option<&str>| format!("{}{}", quote(l), d.unwrap_or_default());
    let mut keys = vec![key(with_domain(local, domain), None)];
    if let (Some(e), Some(d)) = (split, domain) {
        keys.push(key(with_domain(e.base, Some(d)), ext));
    }
    if (search.local_domain || domain.is_none()) && !local.is_empty() {
        if domain.is_some() {
            keys.push(key(quote(local), None));
        }
        if let Some(e) = split {
            keys.push(key(quote(e.base), ext));
        }
    }
    if let Some(d) = domain {
        keys.push(key(d.to_string(), ext));
    }
    if let Some(first) = keys.first_mut() {
        first.partial = false;
    }
    keys
}

/// Finds the first key of [`search_keys`] that one of `tables` has,
/// trying every table for a key before the next key (Postfix's
/// mail_addr_find over a list of maps). Pass a [`crate::Maps`] or
/// `std::slice::from_ref(&table)`.
///
/// # Errors
///
/// Lookup errors from the table (a temporary failure for the caller).
pub fn find_address(
    tables: &[Table],
    address: &str,
    search: &AddressSearch<'_>,
) -> Result<Option<Found>, Error> {
    for k in search_keys(address, search) {
        for table in tables {
            if k.partial && table.is_pattern() {
                continue;
            }
            if let Some(value) = table.lookup(&k.key)? {
                return Ok(Some(Found {
                    key: k.key,
                    value,
                    extension: k.extension,
                }));
            }
        }
    }
    Ok(None)
}

/// Looks an address up and returns the addresses it maps to, in internal
/// form, with `@otherdomain` results and extension propagation applied.
///
/// The result is read as an address list (`a@x, "b c"@y`); a value that is
/// not one is split at commas and whitespace instead.
///
/// # Errors
///
/// Lookup errors from the table.
pub fn map_address(
    tables: &[Table],
    address: &str,
    search: &AddressSearch<'_>,
) -> Result<Option<Vec<String>>, Error> {
    let Some(found) = find_address(tables, address, search)? else {
        return Ok(None);
    };
    let value = found.value.trim();
    let ext = found.extension.as_deref();
    let value = if value.starts_with('@') {
        // Prepend the original user (its case kept), without its extension.
        let bare = match ext {
            Some(_) => address::strip_extension(address, search.delimiters)
                .map(|(bare, _)| bare)
                .unwrap_or_else(|| address.to_string()),
            None => address.to_string(),
        };
        let local = bare
            .rfind('@')
            .and_then(|at| bare.get(..at))
            .unwrap_or(&bare);
        address::quote_822_local(&format!("{local}{value}"))
    } else {
        value.to_string()
    };
    let propagate = if search.propagate_extension {
        ext
    } else {
        None
    };
    Ok(Some(
        result_addresses(&value)
            .into_iter()
            .map(|a| extend(&a, propagate))
            .collect(),
    ))
}

/// The addresses in a table result, internal form.
fn result_addresses(value: &str) -> Vec<String> {
    match address::parse_address_list(value) {
        Ok(list) if !list.is_empty() => list.iter().map(|a| a.to_internal()).collect(),
        _ => value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    }
}

/// Inserts an extension before the last `@` (or appends it).
fn extend(addr: &str, ext: Option<&str>) -> String {
    match (ext, addr.rfind('@')) {
        (None, _) => addr.to_string(),
        (Some(e), Some(at)) => {
            let (l, d) = addr.split_at(at);
            format!("{l}{e}{d}")
        }
        (Some(e), None) => format!("{addr}{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Flags, open};
    use proptest::prelude::*;

    const LOCAL: AddressSearch<'static> = AddressSearch {
        delimiters: "+-",
        local_domain: true,
        propagate_extension: true,
    };
    const REMOTE: AddressSearch<'static> = AddressSearch {
        delimiters: "+-",
        local_domain: false,
        propagate_extension: true,
    };

    fn keys(addr: &str, s: &AddressSearch<'_>) -> Vec<(String, Option<String>)> {
        search_keys(addr, s)
            .into_iter()
            .map(|k| (k.key, k.extension))
            .collect()
    }

    fn k(key: &str, ext: Option<&str>) -> (String, Option<String>) {
        (key.to_string(), ext.map(str::to_string))
    }

    #[test]
    fn order_for_local_and_remote_domains() {
        assert_eq!(
            keys("user-x@d.org", &REMOTE),
            vec![
                k("user-x@d.org", None),
                k("user@d.org", Some("-x")),
                k("@d.org", Some("-x"))
            ]
        );
        assert_eq!(
            keys("user@d.org", &LOCAL),
            vec![k("user@d.org", None), k("user", None), k("@d.org", None)]
        );
        assert_eq!(
            keys("user+x", &REMOTE),
            vec![k("user+x", None), k("user", Some("+x"))]
        );
        assert!(keys("", &LOCAL).is_empty());
        let partial: Vec<bool> = search_keys("A+b@C", &LOCAL)
            .iter()
            .map(|k| k.partial)
            .collect();
        assert_eq!(partial, [false, true, true, true, true]);
        // Nothing to split: postmaster and an empty delimiter set.
        assert_eq!(
            keys("postmaster@d", &REMOTE),
            vec![k("postmaster@d", None), k("@d", None)]
        );
        let none = AddressSearch {
            delimiters: "",
            ..LOCAL
        };
        assert_eq!(keys("a+b@d", &none).len(), 3);
    }

    fn inline(entries: &str) -> Table {
        open(&format!("inline:{{ {entries} }}"), Flags::default()).unwrap()
    }

    fn map(t: &Table, addr: &str, s: &AddressSearch<'_>) -> Option<Vec<String>> {
        map_address(std::slice::from_ref(t), addr, s).unwrap()
    }

    #[test]
    fn exact_match_has_no_propagation() {
        let t = inline("user+x@d=exact@t, user@d=base@t");
        assert_eq!(map(&t, "user+x@d", &REMOTE), Some(vec!["exact@t".into()]));
        // Keys, and so the unmatched extension, are lowercased.
        assert_eq!(map(&t, "User+Y@D", &REMOTE), Some(vec!["base+y@t".into()]));
        let no = AddressSearch {
            propagate_extension: false,
            ..REMOTE
        };
        assert_eq!(map(&t, "user+y@d", &no), Some(vec!["base@t".into()]));
    }

    #[test]
    fn catch_all_and_other_domain() {
        let t = inline("@d=@other.org, @e=catch@x");
        assert_eq!(
            map(&t, "joe+box@d", &REMOTE),
            Some(vec!["joe+box@other.org".into()])
        );
        assert_eq!(
            map(&t, "joe@d", &REMOTE),
            Some(vec!["joe@other.org".into()])
        );
        assert_eq!(
            map(&t, "Joe@D", &REMOTE),
            Some(vec!["Joe@other.org".into()])
        );
        assert_eq!(
            map(&t, "a b@d", &REMOTE),
            Some(vec!["a b@other.org".into()])
        );
        assert_eq!(map(&t, "joe-z@e", &REMOTE), Some(vec!["catch-z@x".into()]));
        assert_eq!(map(&t, "joe@f", &REMOTE), None);
    }

    #[test]
    fn local_keys_only_for_local_domains() {
        let t = inline("joe=local-joe, {list = a@x, b@y}");
        assert_eq!(map(&t, "joe@d", &REMOTE), None);
        assert_eq!(map(&t, "joe@d", &LOCAL), Some(vec!["local-joe".into()]));
        assert_eq!(
            map(&t, "list+tag@d", &LOCAL),
            Some(vec!["a+tag@x".into(), "b+tag@y".into()])
        );
    }

    #[test]
    fn keys_are_quoted_like_postmap_keys() {
        assert_eq!(
            keys("john doe+x@d", &LOCAL),
            vec![
                k("\"john doe+x\"@d", None),
                k("\"john doe\"@d", Some("+x")),
                k("\"john doe+x\"", None),
                k("\"john doe\"", Some("+x")),
                k("@d", Some("+x"))
            ]
        );
        let t = inline("{\"john doe\"@d = jd@x}");
        assert_eq!(map(&t, "John Doe@d", &REMOTE), Some(vec!["jd@x".into()]));
    }

    #[test]
    fn quoted_results_are_unquoted() {
        let t = inline("{a@d = \"x y\"@z}");
        assert_eq!(map(&t, "a@d", &REMOTE), Some(vec!["x y@z".into()]));
    }

    #[test]
    fn maps_try_each_table_per_key_and_skip_patterns_for_partial_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("re");
        std::fs::write(&p, "/^@d$/ from-regexp\n/^u@d$/ full-regexp\n").unwrap();
        let list = format!(
            "regexp:{}, inline:{{ @d=from-inline, u@e=e1 }}",
            p.display()
        );
        let maps = crate::Maps::open(&list, Flags::default()).unwrap();
        let find = |a| map_address(&maps, a, &REMOTE).unwrap();
        // "@d" is a partial key: the regexp table is not asked.
        assert_eq!(find("x@d"), Some(vec!["from-inline".into()]));
        // The full address goes to every table, in order.
        assert_eq!(find("u@d"), Some(vec!["full-regexp".into()]));
        assert_eq!(find("u@e"), Some(vec!["e1".into()]));
    }

    #[test]
    fn regexp_tables_see_the_whole_address() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("re");
        std::fs::write(&p, "/^(.*)\\+.*@d$/ $1@t\n/^user@d$/ never\n").unwrap();
        let t = open(&format!("regexp:{}", p.display()), Flags::default()).unwrap();
        assert_eq!(map(&t, "user+x@d", &LOCAL), Some(vec!["user@t".into()]));
        assert_eq!(map(&t, "other@e", &LOCAL), None);
    }

    proptest! {
        #[test]
        fn never_panics(addr in "\\PC{0,30}", value in "[@a-z+,\" ]{0,20}") {
            let t = open("static:x", Flags::default()).unwrap();
            let _ = map_address(std::slice::from_ref(&t), &addr, &LOCAL);
            let spec = format!("inline:{{ {{ k = {value} }} }}");
            if let Ok(t) = open(&spec, Flags::default()) {
                let _ = map_address(std::slice::from_ref(&t), "k", &LOCAL);
            }
            let _ = search_keys(&addr, &LOCAL);
        }
    }
}
