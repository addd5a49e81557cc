//! Quoting and unquoting local parts (Postfix's quote_822_local and
//! unquote_822_local).
//!
//! A local part may stay unquoted when it is an RFC 5322 dot-atom: no
//! leading, trailing or doubled dot, no space, control character or
//! special (`()<>@,;:\".[]`). Everything else is written as one quoted
//! string with `"` and `\` escaped. Eight-bit text (UTF-8) is left
//! unquoted, as SMTPUTF8 allows.

/// RFC 5322 specials other than `.`, which has its own rules.
const SPECIALS: &str = "()<>@,;:\\\"[]";

/// True when `local` cannot be written as a dot-atom and must be quoted.
pub fn needs_quoting(local: &str) -> bool {
    if local.is_empty() || local.starts_with('.') || local.ends_with('.') {
        return true;
    }
    if local.contains("..") {
        return true;
    }
    local
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || SPECIALS.contains(c))
}

/// Quotes one local part (internal form) if it needs quoting.
///
/// ```
/// assert_eq!(address::quote_local("john.doe"), "john.doe");
/// assert_eq!(address::quote_local("john doe"), "\"john doe\"");
/// assert_eq!(address::quote_local("a\"b"), "\"a\\\"b\"");
/// ```
pub fn quote_local(local: &str) -> String {
    if !needs_quoting(local) {
        return local.to_string();
    }
    let mut out = String::with_capacity(local.len().saturating_add(2));
    out.push('"');
    for c in local.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Converts an internal-form address (`user@remote@local`) to external
/// form (`"user@remote"@local`): the text before the last `@` is quoted
/// when needed, the domain is left alone. An empty address stays empty.
pub fn quote_822_local(addr: &str) -> String {
    if addr.is_empty() {
        return String::new();
    }
    match addr.rfind('@') {
        Some(at) => {
            let local = addr.get(..at).unwrap_or_default();
            let domain = addr.get(at..).unwrap_or_default();
            format!("{}{}", quote_local(local), domain)
        }
        None => quote_local(addr),
    }
}

/// Converts an external-form address to internal form: quotes around (parts
/// of) the local part are removed and backslash escapes resolved, up to the
/// last `@` outside quotes; the domain is copied as it is.
///
/// ```
/// assert_eq!(address::unquote_822_local("\"user@remote\"@local"), "user@remote@local");
/// assert_eq!(address::unquote_822_local("\"a\\\"b\".c@d"), "a\"b.c@d");
/// ```
pub fn unquote_822_local(addr: &str) -> String {
    let split = last_unquoted_at(addr).unwrap_or(addr.len());
    let (local, domain) = addr.split_at(split);
    let mut out = String::with_capacity(addr.len());
    let mut chars = local.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {}
            '\\' => {
                if let Some(e) = chars.next() {
                    out.push(e);
                }
            }
            _ => out.push(c),
        }
    }
    out.push_str(domain);
    out
}

/// Byte offset of the last `@` that is not inside a quoted string.
fn last_unquoted_at(addr: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    let mut last = None;
    for (i, c) in addr.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            '@' if !quoted => last = Some(i),
            _ => {}
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dot_atoms_stay_bare() {
        for s in ["a", "a.b", "a+b", "a!b%c", "üser", "a-b_c=d"] {
            assert!(!needs_quoting(s), "{s}");
        }
        for s in ["", ".a", "a.", "a..b", "a b", "a@b", "a\"b", "a,b", "a\\b"] {
            assert!(needs_quoting(s), "{s}");
        }
    }

    #[test]
    fn quote_full_address() {
        assert_eq!(
            quote_822_local("user@remote@local"),
            "\"user@remote\"@local"
        );
        assert_eq!(quote_822_local("plain@x"), "plain@x");
        assert_eq!(quote_822_local("a b"), "\"a b\"");
        assert_eq!(quote_822_local(""), "");
    }

    #[test]
    fn unquote_keeps_domain() {
        assert_eq!(unquote_822_local("\"a b\"@[1.2.3.4]"), "a b@[1.2.3.4]");
        assert_eq!(unquote_822_local("plain"), "plain");
        assert_eq!(unquote_822_local("\"x@y\""), "x@y");
    }

    proptest! {
        #[test]
        fn quote_then_unquote_round_trips(local in "\\PC{0,40}", domain in "[a-z]{1,10}") {
            let internal = format!("{local}@{domain}");
            let external = quote_822_local(&internal);
            prop_assert_eq!(unquote_822_local(&external), internal);
        }
    }
}
