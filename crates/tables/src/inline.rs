//! inline: and static: tables, whose contents are written in the name.
//!
//! `inline:{ key=value, { key = value with spaces } }`: elements are
//! separated by commas or whitespace; an element in braces may contain
//! both, and whitespace around its `=` is ignored.
//! `static:value` or `static:{ value with spaces }` answers every key.

use std::collections::HashMap;

use crate::{Error, SyntaxError};

/// Parses the name of an inline: table into its entries.
pub(crate) fn parse_inline(
    spec: &str,
    name: &str,
    fold_case: bool,
) -> Result<HashMap<String, String>, Error> {
    let err = |kind| Error::Inline {
        spec: spec.to_string(),
        kind,
    };
    let inner = strip_braces(name.trim()).ok_or_else(|| err(SyntaxError::UnbalancedBraces))?;
    let mut map = HashMap::new();
    for element in elements(inner).map_err(err)? {
        let (key, value) = match strip_braces(element) {
            Some(braced) => braced.split_once('=').map(|(k, v)| (k.trim(), v.trim())),
            None => element.split_once('='),
        }
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| {
            err(SyntaxError::ExpectedKeyValue {
                element: element.to_string(),
            })
        })?;
        let key = if fold_case {
            key.to_lowercase()
        } else {
            key.to_string()
        };
        map.entry(key).or_insert_with(|| value.to_string());
    }
    Ok(map)
}

/// The value of a static: table.
pub(crate) fn parse_static(spec: &str, name: &str) -> Result<String, Error> {
    if !name.starts_with('{') {
        return Ok(name.to_string());
    }
    strip_braces(name.trim())
        .map(|v| v.trim().to_string())
        .ok_or_else(|| Error::Inline {
            spec: spec.to_string(),
            kind: SyntaxError::UnbalancedBraces,
        })
}

/// The text between an outer `{` and its matching final `}`.
fn strip_braces(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    balanced(inner).then_some(inner)
}

/// True when every `}` closes an earlier `{` and none is left open.
fn balanced(s: &str) -> bool {
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '{' => depth = depth.saturating_add(1),
            '}' => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => {}
        }
    }
    depth == 0
}

/// Splits at commas and whitespace outside braces.
fn elements(s: &str) -> Result<Vec<&str>, SyntaxError> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start: Option<usize> = None;
    for (i, c) in s.char_indices() {
        let separator = depth == 0 && (c == ',' || c.is_whitespace());
        match c {
            '{' => depth = depth.saturating_add(1),
            '}' => depth = depth.checked_sub(1).ok_or(SyntaxError::UnbalancedBraces)?,
            _ => {}
        }
        match (separator, start) {
            (true, Some(b)) => {
                out.extend(s.get(b..i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if depth != 0 {
        return Err(SyntaxError::UnbalancedBraces);
    }
    if let Some(b) = start {
        out.extend(s.get(b..));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn inline(name: &str) -> Result<HashMap<String, String>, Error> {
        parse_inline(&format!("inline:{name}"), name, true)
    }

    #[test]
    fn plain_and_braced_elements() {
        let m = inline("{ a=1, B=2 {c = three four }, d=x=y }").unwrap();
        assert_eq!(m.get("a").map(String::as_str), Some("1"));
        assert_eq!(m.get("b").map(String::as_str), Some("2"));
        assert_eq!(m.get("c").map(String::as_str), Some("three four"));
        assert_eq!(m.get("d").map(String::as_str), Some("x=y"));
        assert!(inline("{}").unwrap().is_empty());
        assert_eq!(
            inline("{k=}").unwrap().get("k").map(String::as_str),
            Some("")
        );
    }

    #[test]
    fn malformed_inline() {
        for bad in [
            "a=1",
            "{a=1",
            "{a=1}}",
            "{ nokey }",
            "{ =v }",
            "{ {x} }",
            "{ a=1 } x",
        ] {
            assert!(inline(bad).is_err(), "{bad}");
        }
        let e = inline("{ nokey }").unwrap_err();
        assert_eq!(
            e.to_string(),
            "inline:{ nokey }: expected key=value, got \"nokey\""
        );
    }

    #[test]
    fn static_values() {
        assert_eq!(parse_static("s", "value").unwrap(), "value");
        assert_eq!(parse_static("s", "{ two words }").unwrap(), "two words");
        assert!(parse_static("s", "{ open").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(s in "[{}=, a-z\t]{0,40}") {
            let _ = inline(&s);
            let _ = parse_static("s", &s);
        }
    }
}
