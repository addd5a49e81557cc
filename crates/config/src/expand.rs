//! `$name` expansion as Postfix's mac_expand does it.
//!
//! Forms: `$name`, `${name}`, `$(name)`, `${name?value}` (value when `$name`
//! is non-empty), `${name:value}` (value when `$name` is empty),
//! `${name?{value}}`, `${name:{value}}`, `${name?{value1}:{value2}}`,
//! Postfix 3's relational form `${{text1} op {text2} ? {value1} : {value2}}`
//! (op: `==`, `!=`, `<`, `<=`, `>=`, `>` on numbers, and `<level`,
//! `<=level`, `>=level`, `>level` on compatibility levels), and `$$` for a
//! literal `$`. Values are expanded recursively; an undefined name
//! expands to the empty string. main.cf is untrusted input here: nesting,
//! output size and total work are bounded, a loop is an error naming the
//! chain, and nothing panics.

use std::collections::HashMap;
use std::fmt;

/// Deepest nesting of parameter references (Postfix's mac_expand limit).
pub const MAX_DEPTH: usize = 100;
/// Largest expanded value in bytes.
pub const MAX_OUTPUT: usize = 256 * 1024;
/// Largest total of bytes produced while expanding one value, all
/// intermediate results included.
pub const MAX_WORK: usize = 16 * 1024 * 1024;

/// Why an expansion failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpandError {
    /// A parameter refers to itself, directly or through others; the chain
    /// starts and ends with the same name.
    Loop(Vec<String>),
    /// References nest deeper than [`MAX_DEPTH`].
    TooDeep,
    /// The result (or the work to get it) exceeds [`MAX_OUTPUT`] / [`MAX_WORK`].
    TooLong,
    /// Malformed `$` syntax; the text says what.
    Syntax(String),
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpandError::Loop(chain) => {
                write!(f, "parameter expansion loop: {}", chain.join(" -> "))
            }
            ExpandError::TooDeep => write!(
                f,
                "unreasonable macro call nesting (more than {MAX_DEPTH} levels)"
            ),
            ExpandError::TooLong => {
                write!(f, "expanded value too long (more than {MAX_OUTPUT} bytes)")
            }
            ExpandError::Syntax(what) => write!(f, "{what}"),
        }
    }
}

impl std::error::Error for ExpandError {}

/// Expands `text`. `lookup` gives the raw (unexpanded) value of a name, or
/// `None` when the name is undefined.
///
/// # Errors
/// A loop, too deep nesting, a too long result or malformed `$` syntax.
pub fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    let mut ex = Expander {
        lookup,
        memo: HashMap::new(),
        stack: Vec::new(),
        work: 0,
    };
    ex.text(text, 0)
}

/// The names `text` refers to with `$name`, `${name...}` or `$(name...)`,
/// including those inside conditional values. Malformed syntax is skipped.
pub fn references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes.get(i) == Some(&b'$') {
            i += 1;
            match bytes.get(i) {
                Some(b'$') => {
                    i += 1;
                    continue;
                }
                Some(b'{') | Some(b'(') => i += 1,
                _ => {}
            }
            let start = i;
            while bytes.get(i).is_some_and(|c| is_name_byte(*c)) {
                i += 1;
            }
            if let Some(name) = text.get(start..i).filter(|n| !n.is_empty()) {
                out.push(name.to_string());
            }
        } else {
            i += 1;
        }
    }
    out
}

fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

struct Expander<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Expanded values already computed: a parameter's value does not depend
    /// on where it is referenced, and without this `a = $b$b`, `b = $c$c`, ...
    /// takes exponential time.
    memo: HashMap<String, String>,
    stack: Vec<String>,
    work: usize,
}

impl Expander<'_> {
    fn text(&mut self, text: &str, depth: usize) -> Result<String, ExpandError> {
        if depth > MAX_DEPTH {
            return Err(ExpandError::TooDeep);
        }
        let mut out = String::new();
        let mut rest = text;
        while let Some(pos) = rest.find('$') {
            let (before, from_dollar) = rest.split_at(pos);
            out.push_str(before);
            let after = from_dollar.get(1..).unwrap_or("");
            let consumed = match after.as_bytes().first() {
                Some(b'$') => {
                    out.push('$');
                    1
                }
                Some(&open @ (b'{' | b'(')) => {
                    let close = if open == b'{' { b'}' } else { b')' };
                    let inner_len = matching(after, open, close).ok_or_else(|| {
                        ExpandError::Syntax(format!(
                            "unbalanced '{}' in \"{}\"",
                            char::from(open),
                            cut(text)
                        ))
                    })?;
                    let inner = after.get(1..inner_len).unwrap_or("");
                    let value = self.braced(inner, text, depth)?;
                    out.push_str(&value);
                    inner_len + 1
                }
                Some(c) if is_name_byte(*c) => {
                    let len = after
                        .bytes()
                        .position(|c| !is_name_byte(c))
                        .unwrap_or(after.len());
                    let name = after.get(..len).unwrap_or("");
                    let value = self.value(name, depth)?;
                    out.push_str(&value);
                    len
                }
                _ => {
                    return Err(ExpandError::Syntax(format!(
                        "improper macro call: \"$\" must be followed by a name, '{{', '(' or '$' in \"{}\"",
                        cut(text)
                    )));
                }
            };
            self.charge(&out)?;
            rest = after.get(consumed..).unwrap_or("");
        }
        out.push_str(rest);
        self.charge(&out)?;
        Ok(out)
    }

    fn charge(&mut self, out: &str) -> Result<(), ExpandError> {
        self.work = self.work.saturating_add(out.len());
        if out.len() > MAX_OUTPUT || self.work > MAX_WORK {
            return Err(ExpandError::TooLong);
        }
        Ok(())
    }

    /// The inside of `${...}` or `$(...)`.
    fn braced(&mut self, inner: &str, whole: &str, depth: usize) -> Result<String, ExpandError> {
        if inner.trim_start().starts_with('{') {
            return self.relational(inner, whole, depth);
        }
        let len = inner
            .bytes()
            .position(|c| !is_name_byte(c))
            .unwrap_or(inner.len());
        let name = inner.get(..len).unwrap_or("");
        if name.is_empty() {
            return Err(ExpandError::Syntax(format!(
                "attribute name syntax error in \"{}\"",
                cut(whole)
            )));
        }
        let tail = inner.get(len..).unwrap_or("");
        let Some(op) = tail.chars().next() else {
            return self.value(name, depth);
        };
        if op != '?' && op != ':' {
            return Err(ExpandError::Syntax(format!(
                "unexpected '{op}' after attribute name \"{name}\" in \"{}\"",
                cut(whole)
            )));
        }
        let (if_set, if_unset) = conditional_values(tail.get(1..).unwrap_or(""), op, whole)?;
        let current = self.value(name, depth)?;
        let chosen = match op {
            '?' if !current.is_empty() => Some(if_set),
            '?' => if_unset,
            _ if current.is_empty() => Some(if_set),
            _ => None,
        };
        match chosen {
            Some(v) => self.text(v, depth + 1),
            None => Ok(String::new()),
        }
    }

    /// `{text1} op {text2} ? {value1} : {value2}` (the `: {value2}` part
    /// optional), as Postfix 3.0 and later accept inside `${...}`.
    fn relational(
        &mut self,
        inner: &str,
        whole: &str,
        depth: usize,
    ) -> Result<String, ExpandError> {
        let bad = |what: &str| {
            ExpandError::Syntax(format!(
                "{what} in relational expression \"{}\"",
                cut(whole)
            ))
        };
        let (left, rest) = take_braced(inner).ok_or_else(|| bad("missing '}'"))?;
        let rest = rest.trim_start();
        let op_len = rest
            .find(|c: char| c.is_whitespace() || c == '{')
            .unwrap_or(rest.len());
        let (op, rest) = rest.split_at(op_len);
        let op = Relop::parse(op).ok_or_else(|| bad("unknown operator"))?;
        let (right, rest) = take_braced(rest).ok_or_else(|| bad("missing right operand"))?;
        let rest = rest.trim_start();
        let rest = rest.strip_prefix('?').ok_or_else(|| bad("missing '?'"))?;
        let (if_true, rest) =
            take_braced(rest).ok_or_else(|| bad("missing '{value}' after '?'"))?;
        let rest = rest.trim();
        let if_false = if rest.is_empty() {
            None
        } else {
            let rest = rest.strip_prefix(':').ok_or_else(|| bad("missing ':'"))?;
            let (v, tail) = take_braced(rest).ok_or_else(|| bad("missing '{value}' after ':'"))?;
            if !tail.trim().is_empty() {
                return Err(bad("unexpected text after ':{value}'"));
            }
            Some(v)
        };
        let left = self.text(left, depth + 1)?;
        let right = self.text(right, depth + 1)?;
        let truth = op
            .eval(&left, &right)
            .ok_or_else(|| bad("non-numeric operand"))?;
        match (truth, if_false) {
            (true, _) => self.text(if_true, depth + 1),
            (false, Some(v)) => self.text(v, depth + 1),
            (false, None) => Ok(String::new()),
        }
    }

    /// The expanded value of a parameter.
    fn value(&mut self, name: &str, depth: usize) -> Result<String, ExpandError> {
        if let Some(v) = self.memo.get(name) {
            return Ok(v.clone());
        }
        if let Some(first) = self.stack.iter().position(|n| n == name) {
            let mut chain: Vec<String> = self.stack.get(first..).unwrap_or(&[]).to_vec();
            chain.push(name.to_string());
            return Err(ExpandError::Loop(chain));
        }
        let Some(raw) = (self.lookup)(name) else {
            return Ok(String::new());
        };
        self.stack.push(name.to_string());
        let result = self.text(&raw, depth + 1);
        self.stack.pop();
        let value = result?;
        self.memo.insert(name.to_string(), value.clone());
        Ok(value)
    }
}

/// Takes `{text}` (after optional whitespace) from the start of `s`,
/// returning the text inside and what follows.
fn take_braced(s: &str) -> Option<(&str, &str)> {
    let t = s.trim_start();
    if !t.starts_with('{') {
        return None;
    }
    let end = matching(t, b'{', b'}')?;
    Some((t.get(1..end)?, t.get(end + 1..)?))
}

/// A relational operator of `${{a} op {b} ? {x} : {y}}`.
#[derive(Debug, Clone, Copy)]
enum Relop {
    Eq,
    Ne,
    Lt,
    Le,
    Ge,
    Gt,
    LtLevel,
    LeLevel,
    GeLevel,
    GtLevel,
}

impl Relop {
    fn parse(s: &str) -> Option<Relop> {
        Some(match s {
            "==" => Relop::Eq,
            "!=" => Relop::Ne,
            "<" => Relop::Lt,
            "<=" => Relop::Le,
            ">=" => Relop::Ge,
            ">" => Relop::Gt,
            "<level" => Relop::LtLevel,
            "<=level" => Relop::LeLevel,
            ">=level" => Relop::GeLevel,
            ">level" => Relop::GtLevel,
            _ => return None,
        })
    }

    /// `==` and `!=` compare text; `<` and friends compare decimal numbers;
    /// the `level` forms compare compatibility levels such as `3.6`.
    fn eval(self, a: &str, b: &str) -> Option<bool> {
        use std::cmp::Ordering;
        let ord = match self {
            Relop::Eq => return Some(a == b),
            Relop::Ne => return Some(a != b),
            Relop::Lt | Relop::Le | Relop::Ge | Relop::Gt => a
                .trim()
                .parse::<i64>()
                .ok()?
                .cmp(&b.trim().parse::<i64>().ok()?),
            _ => level(a)?.cmp(&level(b)?),
        };
        Some(match self {
            Relop::Lt | Relop::LtLevel => ord == Ordering::Less,
            Relop::Le | Relop::LeLevel => ord != Ordering::Greater,
            Relop::Ge | Relop::GeLevel => ord != Ordering::Less,
            _ => ord == Ordering::Greater,
        })
    }
}

/// A compatibility level `major[.minor[.patch]]` as a comparable triple.
fn level(s: &str) -> Option<(u32, u32, u32)> {
    let mut parts = s.trim().split('.');
    let mut next = |required: bool| -> Option<u32> {
        match parts.next() {
            Some(p) if !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()) => p.parse().ok(),
            None if !required => Some(0),
            _ => None,
        }
    };
    let v = (next(true)?, next(false)?, next(false)?);
    parts.next().is_none().then_some(v)
}

/// Splits the text after `?` or `:` into the value(s): `value`, `{value}`, or
/// (for `?`) `{value1}:{value2}`.
fn conditional_values<'t>(
    text: &'t str,
    op: char,
    whole: &str,
) -> Result<(&'t str, Option<&'t str>), ExpandError> {
    let trimmed = text.trim_start();
    if !trimmed.starts_with('{') {
        return Ok((text, None));
    }
    let bad = || ExpandError::Syntax(format!("syntax error after '{op}' in \"{}\"", cut(whole)));
    let end = matching(trimmed, b'{', b'}').ok_or_else(bad)?;
    let first = trimmed.get(1..end).unwrap_or("");
    let rest = trimmed.get(end + 1..).unwrap_or("").trim();
    if rest.is_empty() {
        return Ok((first, None));
    }
    if let Some(second) = rest.strip_prefix(':').filter(|_| op == '?') {
        let second = second.trim();
        if second.starts_with('{') && matching(second, b'{', b'}') == Some(second.len() - 1) {
            return Ok((first, second.get(1..second.len() - 1)));
        }
    }
    Err(bad())
}

/// The index of the bracket closing the one at `text[0]`, counting nesting.
fn matching(text: &str, open: u8, close: u8) -> Option<usize> {
    let mut level = 0usize;
    for (i, c) in text.bytes().enumerate() {
        if c == open {
            level += 1;
        } else if c == close {
            level = level.checked_sub(1)?;
            if level == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// The first 100 characters of a value, for messages.
fn cut(text: &str) -> String {
    let mut s: String = text.chars().take(100).collect();
    if s.len() < text.len() {
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(table: &[(&str, &str)], text: &str) -> Result<String, ExpandError> {
        let map: HashMap<String, String> = table
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        expand(text, &|n| map.get(n).cloned())
    }

    #[test]
    fn plain_forms() {
        let t = [("a", "A"), ("b", "B")];
        assert_eq!(with(&t, "$a").unwrap(), "A");
        assert_eq!(with(&t, "${a}").unwrap(), "A");
        assert_eq!(with(&t, "$(a)").unwrap(), "A");
        assert_eq!(with(&t, "x$a.y${b}z$(a)").unwrap(), "xA.yBzA");
        assert_eq!(with(&t, "$a-$b").unwrap(), "A-B");
        assert_eq!(with(&t, "no dollars").unwrap(), "no dollars");
    }

    #[test]
    fn literal_dollar() {
        assert_eq!(with(&[], "cost $$5").unwrap(), "cost $5");
        assert_eq!(with(&[("a", "A")], "$$a").unwrap(), "$a");
    }

    #[test]
    fn undefined_is_empty() {
        assert_eq!(with(&[], "<$nosuch>").unwrap(), "<>");
        assert_eq!(with(&[], "<${nosuch}>").unwrap(), "<>");
    }

    #[test]
    fn conditionals() {
        let t = [("set", "yes"), ("empty", "")];
        assert_eq!(with(&t, "${set?value}").unwrap(), "value");
        assert_eq!(with(&t, "${empty?value}").unwrap(), "");
        assert_eq!(with(&t, "${nosuch?value}").unwrap(), "");
        assert_eq!(with(&t, "${set:value}").unwrap(), "");
        assert_eq!(with(&t, "${empty:value}").unwrap(), "value");
        assert_eq!(with(&t, "${nosuch:value}").unwrap(), "value");
        assert_eq!(with(&t, "${set?{a b}}").unwrap(), "a b");
        assert_eq!(with(&t, "${empty?{a b}}").unwrap(), "");
        assert_eq!(with(&t, "${empty:{a b}}").unwrap(), "a b");
        assert_eq!(with(&t, "${set:{a b}}").unwrap(), "");
        assert_eq!(with(&t, "${set?{one}:{two}}").unwrap(), "one");
        assert_eq!(with(&t, "${empty?{one}:{two}}").unwrap(), "two");
        assert_eq!(with(&t, "${set? {spaced} }").unwrap(), "spaced");
    }

    #[test]
    fn relational_expressions() {
        let t = [("compatibility_level", "3.6"), ("n", "10")];
        for (text, want) in [
            ("${{$compatibility_level} <level {1} ? {yes} : {no}}", "no"),
            (
                "${{$compatibility_level} <level {3.10} ? {old} : {new}}",
                "old",
            ),
            ("${{$compatibility_level} >=level {3.6} ? {new}}", "new"),
            ("${{0} <level {1} ? {yes} : {no}}", "yes"),
            ("${{$n} == {10} ? {eq} : {ne}}", "eq"),
            ("${{$n} != {10} ? {ne}}", ""),
            ("${{$n} < {9} ? {lt} : {ge}}", "ge"),
            ("${{$n}<={10}?{le}:{gt}}", "le"),
            ("${{$n} > {9} ? {$n} : {x}}", "10"),
        ] {
            assert_eq!(with(&t, text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn conditional_values_are_expanded() {
        let t = [("set", "x"), ("v", "V$w"), ("w", "W")];
        assert_eq!(with(&t, "${set?$v}").unwrap(), "VW");
        assert_eq!(with(&t, "${set?{[$v]}}").unwrap(), "[VW]");
        assert_eq!(with(&t, "${nosuch:{$set}}").unwrap(), "x");
        // The tested value is the expanded one: $e is empty after expansion.
        let t = [("e", "$nothing"), ("v", "V")];
        assert_eq!(with(&t, "${e:$v}").unwrap(), "V");
    }

    #[test]
    fn recursive() {
        let t = [
            ("myhostname", "mail.$mydomain"),
            ("mydomain", "example.com"),
            ("myorigin", "$myhostname"),
        ];
        assert_eq!(with(&t, "$myorigin").unwrap(), "mail.example.com");
    }

    #[test]
    fn loops_are_errors() {
        let t = [("a", "$b"), ("b", "$a")];
        match with(&t, "$a") {
            Err(ExpandError::Loop(chain)) => assert_eq!(chain, ["a", "b", "a"]),
            other => panic!("{other:?}"),
        }
        let e = with(&[("a", "x$a")], "$a").unwrap_err();
        assert_eq!(e.to_string(), "parameter expansion loop: a -> a");
        assert!(matches!(
            with(&[("a", "${b?x}"), ("b", "$a")], "$a"),
            Err(ExpandError::Loop(_))
        ));
    }

    #[test]
    fn same_name_twice_is_no_loop() {
        assert_eq!(with(&[("a", "$b$b"), ("b", "x")], "$a").unwrap(), "xx");
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "$",
            "a$",
            "$ x",
            "${a",
            "$(a",
            "${}",
            "${a!b}",
            "${a?{x}junk}",
            "${{x}}",
        ] {
            assert!(
                matches!(with(&[("a", "A")], bad), Err(ExpandError::Syntax(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn bounded_depth() {
        let mut t: Vec<(String, String)> = (0..200)
            .map(|i| (format!("p{i}"), format!("$p{}", i + 1)))
            .collect();
        t.push(("p200".into(), "end".into()));
        let map: HashMap<String, String> = t.into_iter().collect();
        assert_eq!(
            expand("$p0", &|n| map.get(n).cloned()),
            Err(ExpandError::TooDeep)
        );
        assert_eq!(expand("$p150", &|n| map.get(n).cloned()).unwrap(), "end");
    }

    #[test]
    fn bounded_output_and_work() {
        // Doubling at each level: 2^60 bytes if unbounded.
        let map: HashMap<String, String> = (0..60)
            .map(|i| (format!("p{i}"), format!("$p{}$p{}", i + 1, i + 1)))
            .chain([("p60".to_string(), "x".to_string())])
            .collect();
        assert_eq!(
            expand("$p0", &|n| map.get(n).cloned()),
            Err(ExpandError::TooLong)
        );
        // Doubling with empty leaves: no output but exponential work without memo.
        let map: HashMap<String, String> = (0..60)
            .map(|i| (format!("p{i}"), format!("$p{}$p{}", i + 1, i + 1)))
            .collect();
        assert_eq!(expand("$p0", &|n| map.get(n).cloned()).unwrap(), "");
    }

    #[test]
    fn finds_references() {
        assert_eq!(
            references("$a ${b?$c} $(d) $$e ${f:{x}}"),
            ["a", "b", "c", "d", "f"]
        );
    }
}
