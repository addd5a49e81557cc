//! Compiled patterns for regexp: and pcre: tables, on PCRE2 (Debian's
//! libpcre2, the library Postfix's pcre: tables use), so that lookahead,
//! lookbehind and backreferences in header_checks written for Postfix work.
//!
//! regexp: patterns are POSIX regular expressions (regcomp in Postfix).
//! They are translated to PCRE2 syntax where the two differ: `{,n}` is
//! `{0,n}` (glibc reads it so; PCRE2 10.42 would take it literally), `\<`
//! and `\>` are word starts and ends, and with the `x` flag toggled off the
//! pattern is POSIX basic syntax (`\(`, `\{`, `\|`, `\+`, `\?` are the
//! operators, the bare characters literal). What remains different:
//! PCRE2 matches leftmost-first rather than POSIX leftmost-longest, which
//! only changes what a group captures in an ambiguous alternation.

use pcre2::bytes::{Regex, RegexBuilder};

/// Which table syntax a file follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// regexp_table(5).
    Regexp,
    /// pcre_table(5).
    Pcre,
}

/// Why a pattern does not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatternError {
    /// A flag the dialect does not know.
    UnknownFlag(char),
    /// PCRE2's message.
    Compile(String),
}

/// A compiled pattern.
#[derive(Debug)]
pub(crate) struct Pattern {
    re: Regex,
}

impl Pattern {
    /// Compiles `body` under a table's `flags`.
    pub(crate) fn compile(body: &str, flags: &str, dialect: Dialect) -> Result<Self, PatternError> {
        let mut icase = true;
        let mut multi = false;
        let mut dotall = dialect == Dialect::Regexp;
        let mut extended = dialect == Dialect::Regexp;
        let mut ungreedy = false;
        let mut anchored = false;
        for flag in flags.chars() {
            match (dialect, flag) {
                (_, 'i') => icase = !icase,
                (Dialect::Regexp, 'm') => {
                    multi = !multi;
                    dotall = !multi;
                }
                (Dialect::Regexp, 'x') => extended = !extended,
                (Dialect::Pcre, 'm') => multi = !multi,
                (Dialect::Pcre, 's') => dotall = !dotall,
                (Dialect::Pcre, 'x') => extended = !extended,
                (Dialect::Pcre, 'U') => ungreedy = !ungreedy,
                (Dialect::Pcre, 'A') => anchored = true,
                (Dialect::Pcre, 'E' | 'X') => {}
                _ => return Err(PatternError::UnknownFlag(flag)),
            }
        }
        let mut source = match dialect {
            Dialect::Regexp => posix_to_pcre(body, extended),
            Dialect::Pcre => body.to_string(),
        };
        if anchored {
            source = format!("\\A(?:{source})");
        }
        if ungreedy {
            source = format!("(?U){source}");
        }
        let re = RegexBuilder::new()
            .caseless(icase)
            .multi_line(multi)
            .dotall(dotall)
            .extended(dialect == Dialect::Pcre && extended)
            .build(&source)
            .map_err(|e| PatternError::Compile(e.to_string()))?;
        Ok(Pattern { re })
    }

    /// The number of groups, without the whole match.
    pub(crate) fn groups(&self) -> usize {
        self.re.captures_len().saturating_sub(1)
    }

    /// True when `key` matches; a match error (PCRE2's match limits) is no
    /// match, as Postfix treats it.
    pub(crate) fn is_match(&self, key: &str) -> bool {
        self.re.is_match(key.as_bytes()).unwrap_or(false)
    }

    /// The groups of the first match (index 0: the whole match; `None` for
    /// a group that did not take part), or `None` without a match.
    pub(crate) fn captures(&self, key: &str) -> Option<Vec<Option<String>>> {
        let caps = self.re.captures(key.as_bytes()).ok()??;
        Some(
            (0..caps.len())
                .map(|i| {
                    caps.get(i)
                        .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
                })
                .collect(),
        )
    }
}

/// Rewrites a POSIX pattern (extended, or basic when `extended` is off) in
/// PCRE2 syntax.
fn posix_to_pcre(body: &str, extended: bool) -> String {
    let mut out = String::with_capacity(body.len() + 8);
    let mut chars = body.chars().peekable();
    let mut in_bracket = false;
    while let Some(c) = chars.next() {
        if in_bracket {
            // Inside [...] a POSIX backslash is literal.
            match c {
                ']' => {
                    in_bracket = false;
                    out.push(']');
                }
                '\\' => out.push_str("\\\\"),
                '[' if matches!(chars.peek(), Some(':' | '.' | '=')) => {
                    // [:class:] stays as written.
                    out.push('[');
                    for d in chars.by_ref() {
                        out.push(d);
                        if d == ']' {
                            break;
                        }
                    }
                }
                _ => out.push(c),
            }
            continue;
        }
        match c {
            '[' => {
                in_bracket = true;
                out.push('[');
                // A leading ] (after an optional ^) is a literal member.
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
                if chars.peek() == Some(&']') {
                    chars.next();
                    out.push_str("\\]");
                }
            }
            '\\' => match chars.next() {
                Some('<') => out.push_str("\\b(?=\\w)"),
                Some('>') => out.push_str("\\b(?<=\\w)"),
                Some(d @ ('(' | ')' | '{' | '}' | '|' | '+' | '?')) if !extended => out.push(d),
                Some(d) => {
                    out.push('\\');
                    out.push(d);
                }
                None => out.push_str("\\\\"),
            },
            '(' | ')' | '|' | '+' | '?' if !extended => {
                out.push('\\');
                out.push(c);
            }
            '{' if !extended => out.push_str("\\{"),
            '}' if !extended => out.push_str("\\}"),
            '{' if chars.peek() == Some(&',') => out.push_str("{0"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(body: &str, flags: &str, d: Dialect, key: &str) -> bool {
        Pattern::compile(body, flags, d).unwrap().is_match(key)
    }

    #[test]
    fn posix_translation() {
        assert_eq!(posix_to_pcre("a{,3}b", true), "a{0,3}b");
        assert_eq!(posix_to_pcre("\\<w\\>", true), "\\b(?=\\w)w\\b(?<=\\w)");
        assert_eq!(posix_to_pcre("\\(a\\)\\{2\\}+", false), "(a){2}\\+");
        assert_eq!(posix_to_pcre("[]a\\]", true), "[\\]a\\\\]");
        assert_eq!(posix_to_pcre("[[:alpha:]]", true), "[[:alpha:]]");
    }

    #[test]
    fn backreferences_lookaround_and_intervals() {
        assert!(m("^(a+)b\\1$", "", Dialect::Regexp, "aabaa"));
        assert!(!m("^(a+)b\\1$", "", Dialect::Regexp, "aaba"));
        assert!(m("^foo(?!bar)", "", Dialect::Pcre, "foobaz"));
        assert!(!m("^foo(?!bar)", "", Dialect::Pcre, "foobar"));
        assert!(m(
            "(?<=@)example\\.com$",
            "",
            Dialect::Pcre,
            "a@example.com"
        ));
        assert!(m("^x{,2}$", "", Dialect::Regexp, "xx"));
        assert!(!m("^x{,2}$", "", Dialect::Regexp, "xxx"));
        assert!(m("^a\\{2\\}$", "x", Dialect::Regexp, "aa"));
        assert!(m("^a+$", "x", Dialect::Regexp, "a+"));
    }
}
