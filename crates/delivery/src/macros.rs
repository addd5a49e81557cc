//! `$name` expansion for pipe(8) argv and local(8) forward_path, as
//! Postfix's mac_expand does it: `$name`, `${name}`, `${name?text}` (text
//! when the value is not empty), `${name:text}` (text when it is empty)
//! and `$$`. Values are inserted literally, never expanded again, since
//! they come from addresses and other untrusted input.

use std::fmt;

/// Deepest nesting of `${name?text}` forms.
pub const MAX_DEPTH: usize = 10;

/// Longest result.
pub const MAX_OUTPUT: usize = 100_000;

/// Why a template did not expand.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `$name` that the caller does not know.
    Unknown(String),
    /// Malformed `$` syntax.
    Syntax(&'static str),
    /// Nested too deep or too long.
    TooLarge,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unknown(n) => write!(f, "unknown macro name: ${n}"),
            Error::Syntax(s) => write!(f, "{s}"),
            Error::TooLarge => write!(f, "expansion too deep or too long"),
        }
    }
}

impl std::error::Error for Error {}

/// Expands `template`; `lookup` gives a name's value or None when the
/// name is unknown (an error). Known names with no value return `Some("")`.
///
/// # Errors
/// An unknown name, bad syntax, or a result past the limits.
pub fn expand(template: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, Error> {
    let mut out = String::new();
    expand_into(template, lookup, &mut out, 0)?;
    Ok(out)
}

fn expand_into(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
    depth: usize,
) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        return Err(Error::TooLarge);
    }
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(rest.get(..pos).unwrap_or_default());
        let after = rest.get(pos + 1..).unwrap_or_default();
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end = matching_brace(inner).ok_or(Error::Syntax("missing '}'"))?;
            let body = inner.get(..end).unwrap_or_default();
            rest = inner.get(end + 1..).unwrap_or_default();
            let name_len = body
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(body.len());
            let name = body.get(..name_len).unwrap_or_default();
            if name.is_empty() {
                return Err(Error::Syntax("empty macro name"));
            }
            let value = lookup(name).ok_or_else(|| Error::Unknown(name.to_string()))?;
            match body.get(name_len..).unwrap_or_default() {
                "" => out.push_str(&value),
                cond => {
                    let (op, alt) = cond.split_at(1);
                    match op {
                        "?" if !value.is_empty() => expand_into(alt, lookup, out, depth + 1)?,
                        ":" if value.is_empty() => expand_into(alt, lookup, out, depth + 1)?,
                        "?" | ":" => {}
                        _ => return Err(Error::Syntax("bad character after macro name")),
                    }
                }
            }
        } else {
            let name_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            let name = after.get(..name_len).unwrap_or_default();
            if name.is_empty() {
                return Err(Error::Syntax("'$' without a macro name"));
            }
            out.push_str(&lookup(name).ok_or_else(|| Error::Unknown(name.to_string()))?);
            rest = after.get(name_len..).unwrap_or_default();
        }
        if out.len() > MAX_OUTPUT {
            return Err(Error::TooLarge);
        }
    }
    out.push_str(rest);
    if out.len() > MAX_OUTPUT {
        return Err(Error::TooLarge);
    }
    Ok(())
}

/// Byte offset of the `}` that closes an already opened `{`.
fn matching_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(n: &str) -> Option<String> {
        match n {
            "user" => Some("bob".into()),
            "extension" => Some(String::new()),
            "evil" => Some("$user ${x}".into()),
            _ => None,
        }
    }

    #[test]
    fn forms() {
        assert_eq!(expand("/h/$user/.f", &look).unwrap(), "/h/bob/.f");
        assert_eq!(expand("${user}x", &look).unwrap(), "bobx");
        assert_eq!(expand("a${extension?+$extension}b", &look).unwrap(), "ab");
        assert_eq!(expand("a${user?+${user}}b", &look).unwrap(), "a+bobb");
        assert_eq!(expand("${extension:none}", &look).unwrap(), "none");
        assert_eq!(expand("$$user", &look).unwrap(), "$user");
        assert_eq!(expand("${evil}", &look).unwrap(), "$user ${x}");
    }

    #[test]
    fn errors() {
        assert_eq!(expand("$nope", &look), Err(Error::Unknown("nope".into())));
        assert!(matches!(expand("${user", &look), Err(Error::Syntax(_))));
        assert!(matches!(expand("$", &look), Err(Error::Syntax(_))));
        assert!(matches!(expand("${user!x}", &look), Err(Error::Syntax(_))));
    }
}
