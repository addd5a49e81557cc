//! recipient_delimiter: address extensions (`user+ext@domain`), split as
//! Postfix's split_addr and strip_addr do.

/// Local parts that are never split, whatever the delimiter (compared
/// without regard to case). `double-bounce` is Postfix's default
/// double_bounce_sender.
const NEVER_SPLIT: [&str; 3] = ["postmaster", "mailer-daemon", "double-bounce"];

/// A local part split at its first delimiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The part before the delimiter (`user`).
    pub base: &'a str,
    /// The delimiter that was found (`+`).
    pub delimiter: char,
    /// The part after the delimiter (`ext`), possibly empty.
    pub extension: &'a str,
}

/// Splits a local part at the first character from `delimiters` (the
/// recipient_delimiter value, a set such as `"+-"`).
///
/// As in Postfix: nothing is split when `delimiters` is empty; postmaster,
/// MAILER-DAEMON and double-bounce are never split; when `-` is a delimiter,
/// `owner-foo` and `foo-request` are not split (mailing-list conventions);
/// and a split that would leave an empty base (`+foo`) is not made.
///
/// ```
/// let e = address::split_extension("user+box", "+-").unwrap();
/// assert_eq!((e.base, e.delimiter, e.extension), ("user", '+', "box"));
/// assert!(address::split_extension("owner-list", "-").is_none());
/// ```
pub fn split_extension<'a>(local: &'a str, delimiters: &str) -> Option<Extension<'a>> {
    if delimiters.is_empty() || is_never_split(local) {
        return None;
    }
    if delimiters.contains('-') && is_list_name(local) {
        return None;
    }
    let (pos, delimiter) = local
        .char_indices()
        .find(|(_, c)| delimiters.contains(*c))?;
    if pos == 0 {
        return None;
    }
    Some(Extension {
        base: local.get(..pos)?,
        delimiter,
        extension: local.get(pos + delimiter.len_utf8()..)?,
    })
}

/// Removes the extension from an internal-form address (`user+ext@domain`
/// becomes `user@domain`), splitting the local part before the last `@`.
/// Returns the stripped address and the extension *with* its delimiter
/// (`+ext`), which is what Postfix appends when it propagates an unmatched
/// extension; `None` when there was nothing to strip.
///
/// ```
/// assert_eq!(
///     address::strip_extension("user+ext@example.com", "+"),
///     Some(("user@example.com".to_string(), "+ext".to_string()))
/// );
/// ```
pub fn strip_extension(addr: &str, delimiters: &str) -> Option<(String, String)> {
    let (local, domain) = match addr.rfind('@') {
        Some(at) => (addr.get(..at)?, addr.get(at..)?),
        None => (addr, ""),
    };
    let e = split_extension(local, delimiters)?;
    let ext = format!("{}{}", e.delimiter, e.extension);
    Some((format!("{}{}", e.base, domain), ext))
}

fn is_never_split(local: &str) -> bool {
    NEVER_SPLIT.iter().any(|n| n.eq_ignore_ascii_case(local))
}

/// `owner-foo` and `foo-request` (the latter needs something before `-`).
fn is_list_name(local: &str) -> bool {
    let starts = local
        .get(..6)
        .is_some_and(|p| p.eq_ignore_ascii_case("owner-"));
    let ends = local.len() > 8
        && local
            .get(local.len() - 8..)
            .is_some_and(|s| s.eq_ignore_ascii_case("-request"));
    starts || ends
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_first_delimiter_of_set() {
        let e = split_extension("a-b+c", "+-").unwrap();
        assert_eq!((e.base, e.delimiter, e.extension), ("a", '-', "b+c"));
        let e = split_extension("user+", "+").unwrap();
        assert_eq!((e.base, e.extension), ("user", ""));
    }

    #[test]
    fn exceptions_are_not_split() {
        assert!(split_extension("user+x", "").is_none());
        assert!(split_extension("+x", "+").is_none());
        assert!(split_extension("Postmaster", "+").is_none());
        assert!(split_extension("MAILER-DAEMON", "-").is_none());
        assert!(split_extension("double-bounce", "-").is_none());
        assert!(split_extension("owner-list", "-").is_none());
        assert!(split_extension("list-request", "-").is_none());
        // Without '-' in the set the list names are ordinary.
        assert!(split_extension("owner+x", "+").is_some());
        assert!(split_extension("plain", "+").is_none());
    }

    #[test]
    fn strip_keeps_domain_and_delimiter() {
        assert_eq!(
            strip_extension("u-x@d", "+-"),
            Some(("u@d".into(), "-x".into()))
        );
        assert_eq!(strip_extension("u+x", "+"), Some(("u".into(), "+x".into())));
        assert_eq!(strip_extension("u@d", "+"), None);
        // The split happens in the local part only.
        assert_eq!(strip_extension("u@d+x.com", "+"), None);
    }

    #[test]
    fn multibyte_is_safe() {
        assert!(split_extension("ü+ö", "+").is_some());
        assert!(split_extension("üüüüüüüüü", "-").is_none());
        assert!(split_extension("-requestü", "-").is_none());
    }
}
