//! regexp: and pcre: tables (regexp_table(5), pcre_table(5)).
//!
//! Rules, tried in order; the first match returns its result:
//!
//! ```text
//! /pattern/flags result          # result when the key matches
//! !/pattern/flags result         # result when the key does not match
//! /pat1/flags!/pat2/flags result # pat1 matches and pat2 does not
//! if /pattern/flags              # the rules up to endif apply only
//! endif                          #   when the key matches (if !/.../: not)
//! ```
//!
//! Any character may delimit a pattern (`/` is usual); a backslash escapes
//! the delimiter. `$1`, `${1}` and `$(1)` in a result insert what a group
//! matched (an unmatched group inserts nothing); `$$` is a dollar sign.
//! Comments, blank lines and continuation lines are as in every table.
//!
//! Flags. regexp: `i` toggles case-insensitivity (on by default), `m`
//! toggles multi-line mode (`^`/`$` at line ends, `.` stops at newline;
//! off by default, when `.` also matches a newline as in POSIX), `x`
//! toggles POSIX extended syntax (on by default; off: basic syntax). pcre: `i` (on by default) toggles case-insensitivity, `m`
//! multi-line, `s` dot-matches-newline, `x` extended (whitespace and `#`
//! comments ignored), `U` ungreedy, `A` anchors at the start, `E` and `X`
//! are accepted and change nothing (`$` already matches only at the very
//! end outside multi-line mode).
//!
//! Patterns are compiled by PCRE2 ([`crate::pcre`]): backreferences,
//! lookahead and lookbehind work; regexp: patterns are read as POSIX
//! syntax (`{,n}`, `\<`, `\>`, basic syntax under the `x` flag).
//!
//! A malformed rule is skipped with a warning naming file and line, as
//! Postfix does; the rest of the table is used. An `endif` without its
//! `if` is ignored with a warning; an `if` without `endif` runs to the end.

use std::path::Path;

pub use crate::pcre::Dialect;
use crate::pcre::{Pattern, PatternError};
use crate::text::{LogicalLine, logical_lines, read_text};
use crate::{Error, SyntaxError, Warning, WarningKind};

type Regex = Pattern;

/// One piece of a result template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Group(usize),
}

#[derive(Debug)]
enum Rule {
    Match {
        re: Regex,
        negate: bool,
        unless: Option<Regex>,
        result: Vec<Piece>,
    },
    If {
        re: Regex,
        negate: bool,
        /// Index of the matching `endif`.
        end: usize,
    },
    Endif,
}

/// A compiled regexp: or pcre: table.
#[derive(Debug)]
pub(crate) struct RegexpTable {
    rules: Vec<Rule>,
}

impl RegexpTable {
    /// Reads and compiles a table file; skipped rules are added to
    /// `warnings`.
    pub(crate) fn open(
        path: &Path,
        dialect: Dialect,
        warnings: &mut Vec<Warning>,
    ) -> Result<RegexpTable, Error> {
        let text = read_text(path)?;
        RegexpTable::parse(path, &text, dialect, warnings)
    }

    /// Compiles table text; `path` names the file in warnings. A malformed
    /// rule is skipped with a warning.
    ///
    /// # Errors
    /// Only a logical line over the length limit.
    pub(crate) fn parse(
        path: &Path,
        text: &str,
        dialect: Dialect,
        warnings: &mut Vec<Warning>,
    ) -> Result<RegexpTable, Error> {
        let mut rules = Vec::new();
        let mut open_ifs: Vec<usize> = Vec::new();
        for line in logical_lines(path, text, warnings)? {
            let mut skip = |kind| {
                warnings.push(Warning::new(
                    path,
                    line.line,
                    WarningKind::SkippedRule { kind },
                ));
            };
            let rule = match parse_rule(&line, dialect) {
                Ok(r) => r,
                Err(kind) => {
                    skip(kind);
                    continue;
                }
            };
            match &rule {
                Rule::If { .. } => open_ifs.push(rules.len()),
                Rule::Endif => {
                    let Some(start) = open_ifs.pop() else {
                        skip(SyntaxError::EndifWithoutIf);
                        continue;
                    };
                    let here = rules.len();
                    if let Some(Rule::If { end, .. }) = rules.get_mut(start) {
                        *end = here;
                    }
                }
                Rule::Match { .. } => {}
            }
            rules.push(rule);
        }
        // An unclosed if runs to the end of the table.
        let last = rules.len();
        for start in open_ifs {
            if let Some(Rule::If { end, .. }) = rules.get_mut(start) {
                *end = last;
            }
        }
        Ok(RegexpTable { rules })
    }

    /// The result of the first rule that matches `key`.
    pub(crate) fn lookup(&self, key: &str) -> Option<String> {
        let mut i = 0usize;
        while let Some(rule) = self.rules.get(i) {
            match rule {
                Rule::If { re, negate, end } => {
                    if re.is_match(key) == *negate {
                        i = *end;
                    }
                }
                Rule::Endif => {}
                Rule::Match {
                    re,
                    negate,
                    unless,
                    result,
                } => {
                    if let Some(v) = try_match(key, re, *negate, unless.as_ref(), result) {
                        return Some(v);
                    }
                }
            }
            i = i.saturating_add(1);
        }
        None
    }
}

/// Applies one match rule.
fn try_match(
    key: &str,
    re: &Regex,
    negate: bool,
    unless: Option<&Regex>,
    result: &[Piece],
) -> Option<String> {
    if negate {
        return (!re.is_match(key)).then(|| expand(result, &[]));
    }
    let caps = re.captures(key)?;
    if unless.is_some_and(|u| u.is_match(key)) {
        return None;
    }
    Some(expand(result, &caps))
}

/// Builds a result from its template and the groups of the match.
fn expand(result: &[Piece], caps: &[Option<String>]) -> String {
    let mut out = String::new();
    for p in result {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Group(n) => {
                if let Some(Some(m)) = caps.get(*n) {
                    out.push_str(m);
                }
            }
        }
    }
    out
}

/// Parses one logical line into a rule.
fn parse_rule(line: &LogicalLine, dialect: Dialect) -> Result<Rule, SyntaxError> {
    let text = line.text.trim();
    if let Some(rest) = keyword(text, "if") {
        let (re, negate, rest) = pattern(rest, dialect)?;
        if !rest.trim().is_empty() {
            return Err(SyntaxError::ExtraText);
        }
        return Ok(Rule::If { re, negate, end: 0 });
    }
    if let Some(rest) = keyword(text, "endif") {
        if !rest.trim().is_empty() {
            return Err(SyntaxError::ExtraText);
        }
        return Ok(Rule::Endif);
    }
    let (re, negate, rest) = pattern(text, dialect)?;
    let (unless, rest) = if !negate && rest.starts_with('!') {
        let (u, un, rest) = pattern(rest, dialect)?;
        if !un {
            return Err(SyntaxError::ExpectedPattern);
        }
        (Some(u), rest)
    } else {
        (None, rest)
    };
    let result = template(rest.trim(), re.groups())?;
    if negate && result.iter().any(|p| matches!(p, Piece::Group(_))) {
        return Err(SyntaxError::SubstitutionInNegatedRule);
    }
    Ok(Rule::Match {
        re,
        negate,
        unless,
        result,
    })
}

/// `if` / `endif` (any case) followed by whitespace or the end.
fn keyword<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let head = text.get(..word.len())?;
    let rest = text.get(word.len()..)?;
    (head.eq_ignore_ascii_case(word) && (rest.is_empty() || rest.starts_with(char::is_whitespace)))
        .then_some(rest)
}

/// Reads `[!]<d>pattern<d>flags` at the start of `text` (after optional
/// whitespace); returns the compiled pattern, the negation and the rest.
fn pattern(text: &str, dialect: Dialect) -> Result<(Regex, bool, &str), SyntaxError> {
    let text = text.trim_start();
    let (negate, text) = match text.strip_prefix('!') {
        Some(t) => (true, t),
        None => (false, text),
    };
    let mut chars = text.char_indices();
    let delimiter = match chars.next() {
        Some((_, d)) if !d.is_whitespace() && !d.is_alphanumeric() => d,
        _ => return Err(SyntaxError::ExpectedPattern),
    };
    let mut end = None;
    let mut escaped = false;
    for (i, c) in chars {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == delimiter {
            end = Some(i);
            break;
        }
    }
    let end = end.ok_or(SyntaxError::NoClosingDelimiter { delimiter })?;
    let body = text.get(delimiter.len_utf8()..end).unwrap_or_default();
    let after = text.get(end + delimiter.len_utf8()..).unwrap_or_default();
    let flag_len = after
        .find(|c: char| c.is_whitespace() || c == '!')
        .unwrap_or(after.len());
    let (flags, rest) = after.split_at(flag_len);
    Ok((compile(body, flags, dialect)?, negate, rest))
}

/// Compiles a pattern under a table's flags.
fn compile(body: &str, flags: &str, dialect: Dialect) -> Result<Regex, SyntaxError> {
    Pattern::compile(body, flags, dialect).map_err(|e| match e {
        PatternError::UnknownFlag(flag) => SyntaxError::UnknownFlag { flag },
        PatternError::Compile(message) => SyntaxError::Regex { message },
    })
}

/// Parses a result with `$n`, `${n}`, `$(n)` and `$$`.
fn template(text: &str, groups: usize) -> Result<Vec<Piece>, SyntaxError> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        lit.push_str(rest.get(..pos).unwrap_or_default());
        let after = rest.get(pos + 1..).unwrap_or_default();
        if let Some(r) = after.strip_prefix('$') {
            lit.push('$');
            rest = r;
            continue;
        }
        let (digits, r) = group_ref(after).ok_or_else(|| SyntaxError::BadSubstitution {
            text: after.chars().take(10).collect(),
        })?;
        let group: usize = digits.parse().map_err(|_| SyntaxError::BadSubstitution {
            text: digits.to_string(),
        })?;
        if group == 0 || group > groups {
            return Err(SyntaxError::GroupOutOfRange { group, groups });
        }
        if !lit.is_empty() {
            out.push(Piece::Text(std::mem::take(&mut lit)));
        }
        out.push(Piece::Group(group));
        rest = r;
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        out.push(Piece::Text(lit));
    }
    Ok(out)
}

/// The digits of `1`, `{1}` or `(1)` at the start of `s`, and the rest.
fn group_ref(s: &str) -> Option<(&str, &str)> {
    let (inner, close) = match s.chars().next()? {
        '{' => (s.get(1..)?, Some('}')),
        '(' => (s.get(1..)?, Some(')')),
        _ => (s, None),
    };
    let n = inner
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(inner.len());
    if n == 0 || n > 9 {
        return None;
    }
    let digits = inner.get(..n)?;
    let rest = inner.get(n..)?;
    match close {
        Some(c) => rest.strip_prefix(c).map(|r| (digits, r)),
        None => Some((digits, rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn table(text: &str, d: Dialect) -> RegexpTable {
        let mut w = Vec::new();
        let t = RegexpTable::parse(Path::new("t"), text, d, &mut w).unwrap();
        assert!(w.is_empty(), "{w:?}");
        t
    }

    /// The first skipped rule's line and problem.
    fn err(text: &str, d: Dialect) -> (usize, SyntaxError) {
        let mut w = Vec::new();
        RegexpTable::parse(Path::new("t"), text, d, &mut w).unwrap();
        match w.first().map(|w| (w.line, &w.kind)) {
            Some((line, WarningKind::SkippedRule { kind })) => (line, kind.clone()),
            other => panic!("expected a skipped rule, got {other:?}"),
        }
    }

    #[test]
    fn first_match_with_substitution() {
        let t = table(
            "# header_checks\n/^Subject: (.*)viagra(.*)/ REJECT $1${2}$$ spam\n/^(.+)@(example\\.com)$/ $(2)!$1\n/./ DUNNO\n",
            Dialect::Regexp,
        );
        assert_eq!(
            t.lookup("subject: buy VIAGRA now").as_deref(),
            Some("REJECT buy  now$ spam")
        );
        assert_eq!(
            t.lookup("joe@EXAMPLE.com").as_deref(),
            Some("EXAMPLE.com!joe")
        );
        assert_eq!(t.lookup("x").as_deref(), Some("DUNNO"));
        assert_eq!(t.lookup(""), None);
    }

    #[test]
    fn case_flag_toggles() {
        let t = table("/^ABC$/i exact\n/^abc$/ folded\n", Dialect::Regexp);
        assert_eq!(t.lookup("ABC").as_deref(), Some("exact"));
        assert_eq!(t.lookup("aBc").as_deref(), Some("folded"));
        let t = table("/^ABC$/i exact\n", Dialect::Pcre);
        assert_eq!(t.lookup("abc"), None);
    }

    #[test]
    fn negation_and_compound() {
        let t = table("!/@example\\.com$/ REJECT outside\n", Dialect::Regexp);
        assert_eq!(t.lookup("a@example.com"), None);
        assert_eq!(t.lookup("a@other.org").as_deref(), Some("REJECT outside"));
        let t = table("/^a/!/^ab/ only-a\n", Dialect::Regexp);
        assert_eq!(t.lookup("ac").as_deref(), Some("only-a"));
        assert_eq!(t.lookup("ab"), None);
    }

    #[test]
    fn if_endif_nesting() {
        let text = "if /@example\\.com$/\n  # nested comment\nif !/^postmaster@/\n/^(.*)@/ user $1\nendif\n/^postmaster@/ pm\nendif\n/./ outside\n";
        let t = table(text, Dialect::Regexp);
        assert_eq!(t.lookup("joe@example.com").as_deref(), Some("user joe"));
        assert_eq!(t.lookup("postmaster@example.com").as_deref(), Some("pm"));
        assert_eq!(t.lookup("joe@other.org").as_deref(), Some("outside"));
        let t = table("IF /x/\n/y/ both\nENDIF\n", Dialect::Pcre);
        assert_eq!(t.lookup("xy").as_deref(), Some("both"));
        assert_eq!(t.lookup("y"), None);
    }

    #[test]
    fn multiline_and_dot() {
        let t = table("/^b$/ no-m\n/^b$/m with-m\n", Dialect::Regexp);
        assert_eq!(t.lookup("a\nb").as_deref(), Some("with-m"));
        let t = table("/a.b/ dot\n", Dialect::Regexp);
        assert_eq!(t.lookup("a\nb").as_deref(), Some("dot"));
        let t = table("/a.b/ nodot\n/a.b/s dot\n", Dialect::Pcre);
        assert_eq!(t.lookup("a\nb").as_deref(), Some("dot"));
    }

    #[test]
    fn pcre_flags() {
        let t = table("/ a b # comment\n /x plain\n", Dialect::Pcre);
        assert_eq!(t.lookup("xaby").as_deref(), Some("plain"));
        let t = table("/b/A anchored\n/a+/U lazy\n/(a+)/U ${1}\n", Dialect::Pcre);
        assert_eq!(t.lookup("ab").as_deref(), Some("lazy"));
        let t = table("/(a+?)/U $1\n", Dialect::Pcre);
        assert_eq!(t.lookup("aaa").as_deref(), Some("aaa"));
        let t = table("/b/A anchored\n", Dialect::Pcre);
        assert_eq!(t.lookup("ab"), None);
        assert_eq!(t.lookup("ba").as_deref(), Some("anchored"));
    }

    #[test]
    fn other_delimiters_and_escapes() {
        let t = table("|a/b| slash\n/c\\/d/ escaped\n", Dialect::Regexp);
        assert_eq!(t.lookup("xa/by").as_deref(), Some("slash"));
        assert_eq!(t.lookup("c/d").as_deref(), Some("escaped"));
    }

    #[test]
    fn continuation_lines_extend_results() {
        let t = table("/x/ REJECT a\n    long text\n", Dialect::Regexp);
        assert_eq!(t.lookup("x").as_deref(), Some("REJECT a    long text"));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        assert_eq!(
            err("/ok/ x\n/unclosed x\n", Dialect::Regexp),
            (2, SyntaxError::NoClosingDelimiter { delimiter: '/' })
        );
        assert_eq!(
            err("/a/q x\n", Dialect::Regexp),
            (1, SyntaxError::UnknownFlag { flag: 'q' })
        );
        assert_eq!(
            err("/a/s x\n", Dialect::Regexp),
            (1, SyntaxError::UnknownFlag { flag: 's' })
        );
        assert_eq!(
            err("/(a)/ $2\n", Dialect::Regexp),
            (
                1,
                SyntaxError::GroupOutOfRange {
                    group: 2,
                    groups: 1
                }
            )
        );
        assert_eq!(
            err("!/(a)/ $1\n", Dialect::Regexp),
            (1, SyntaxError::SubstitutionInNegatedRule)
        );
        assert!(matches!(
            err("/a/ $x\n", Dialect::Regexp),
            (1, SyntaxError::BadSubstitution { .. })
        ));
        assert!(matches!(
            err("/(/ x\n", Dialect::Pcre),
            (1, SyntaxError::Regex { .. })
        ));
        assert_eq!(
            err("x y\n", Dialect::Regexp),
            (1, SyntaxError::ExpectedPattern)
        );
        assert_eq!(
            err("endif\n", Dialect::Regexp),
            (1, SyntaxError::EndifWithoutIf)
        );
        assert_eq!(
            err("if /x/ junk\nendif\n", Dialect::Regexp),
            (1, SyntaxError::ExtraText)
        );
        let mut w = Vec::new();
        let t = RegexpTable::parse(
            Path::new("/etc/postfix/hc"),
            "/a/q x\n/b/ y\n",
            Dialect::Regexp,
            &mut w,
        )
        .unwrap();
        assert_eq!(
            w[0].to_string(),
            "/etc/postfix/hc, line 1: unknown regexp option \"q\": skipping this rule"
        );
        // The bad line is skipped; the rest of the table works.
        assert_eq!(t.lookup("b").as_deref(), Some("y"));
        assert_eq!(t.lookup("a"), None);
    }

    #[test]
    fn issue14_postfix_syntax_compiles() {
        // Backreference in the pattern, $1 and ${1} in the result.
        let t = table("/^(.+)@(.+)\\.\\2$/ twice ${2} $1\n", Dialect::Regexp);
        assert_eq!(t.lookup("joe@ex.ex").as_deref(), Some("twice ex joe"));
        assert_eq!(t.lookup("joe@ex.org"), None);
        let t = table("/^x{,2}$/ short\n/^a\\{2\\}$/x basic\n", Dialect::Regexp);
        assert_eq!(t.lookup("xx").as_deref(), Some("short"));
        assert_eq!(t.lookup("aa").as_deref(), Some("basic"));
        let t = table(
            "/^Subject:(?!.*\\[ext\\])/ PREPEND X-Tag: internal\n/(?<=@)spam\\.test$/ REJECT\n",
            Dialect::Pcre,
        );
        assert_eq!(
            t.lookup("Subject: hello").as_deref(),
            Some("PREPEND X-Tag: internal")
        );
        assert_eq!(t.lookup("Subject: [ext] hello"), None);
        assert_eq!(t.lookup("a@spam.test").as_deref(), Some("REJECT"));
    }

    #[test]
    fn empty_result_is_allowed() {
        let t = table("/a/\n", Dialect::Regexp);
        assert_eq!(t.lookup("a").as_deref(), Some(""));
    }

    proptest! {
        #[test]
        fn random_tables_never_panic(text in "[/!a-z()$\\\\{}#.*+?\\[\\] \n\t0-9ifendxmsUAE]{0,120}", key in "\\PC{0,40}") {
            for d in [Dialect::Regexp, Dialect::Pcre] {
                if let Ok(t) = RegexpTable::parse(Path::new("p"), &text, d, &mut Vec::new()) {
                    let _ = t.lookup(&key);
                }
            }
        }

        #[test]
        fn random_unicode_tables_never_panic(text in "\\PC{0,200}", key in "\\PC{0,40}") {
            if let Ok(t) = RegexpTable::parse(Path::new("p"), &text, Dialect::Pcre, &mut Vec::new()) {
                let _ = t.lookup(&key);
            }
        }
    }
}
