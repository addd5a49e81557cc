//! The aliases(5) text format: `name: value, value, ...` on logical lines
//! (continuation lines start with whitespace; `#` comments), with a
//! quoted name when it holds special characters (`"a b": ...`).

use std::collections::HashMap;
use std::path::Path;

/// One skipped line, for `postalias: warning: FILE, line N: TEXT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skipped {
    /// 1-based line number.
    pub(crate) line: usize,
    /// What is wrong.
    pub(crate) text: String,
}

/// What to do with a name seen twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Duplicates {
    /// Keep the first, warn (default).
    Warn,
    /// Keep the last, silently (-r).
    Replace,
    /// Keep the first, silently (-w).
    Ignore,
}

/// Splits `name: value` at the first `:` outside quotes; returns the name
/// in internal form (quotes removed, backslash escapes resolved) and the
/// value text.
pub(crate) fn split_alias(text: &str) -> Result<(String, &str), &'static str> {
    let mut name = String::new();
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            name.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            in_quotes = !in_quotes;
        } else if c == ':' && !in_quotes {
            let name = name.trim().to_string();
            if name.is_empty() {
                return Err("missing alias name");
            }
            return Ok((name, text.get(i + 1..).unwrap_or_default()));
        } else {
            name.push(c);
        }
    }
    if in_quotes {
        Err("unbalanced '\"' in alias name")
    } else {
        Err("need name:value pair")
    }
}

/// Normalizes a value: the members separated by `,` outside quotes, each
/// trimmed with inner runs of whitespace (outside quotes) made one space,
/// joined by `, `. Empty members are dropped.
pub(crate) fn normalize_value(value: &str) -> String {
    let mut members: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut space = false;
    let push = |cur: &mut String, members: &mut Vec<String>| {
        let m = cur.trim().to_string();
        if !m.is_empty() {
            members.push(m);
        }
        cur.clear();
    };
    for c in value.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                in_quotes = !in_quotes;
                cur.push(c);
            }
            ',' if !in_quotes => {
                push(&mut cur, &mut members);
                space = false;
                continue;
            }
            c if c.is_whitespace() && !in_quotes => {
                space = true;
                continue;
            }
            c => {
                if space && !cur.is_empty() {
                    cur.push(' ');
                }
                cur.push(c);
            }
        }
        space = false;
    }
    push(&mut cur, &mut members);
    members.join(", ")
}

/// Entries in file order and the lines skipped.
pub(crate) type Parsed = (Vec<(String, String)>, Vec<Skipped>);

/// Parses an aliases file into (name, value) entries in file order, plus
/// the lines it skipped. Names are lowercased when `fold_case`.
///
/// # Errors
/// A logical line over the tables library's limit.
pub(crate) fn parse(
    path: &Path,
    text: &str,
    fold_case: bool,
    duplicates: Duplicates,
) -> Result<Parsed, tables::Error> {
    let mut warnings = Vec::new();
    let lines = tables::text::logical_lines(path, text, &mut warnings)?;
    let mut skipped: Vec<Skipped> = warnings
        .iter()
        .map(|w| Skipped {
            line: w.line,
            text: w.kind.to_string(),
        })
        .collect();
    let mut entries: Vec<(String, String)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for l in lines {
        let (name, value) = match split_alias(&l.text) {
            Ok(nv) => nv,
            Err(why) => {
                skipped.push(Skipped {
                    line: l.line,
                    text: why.into(),
                });
                continue;
            }
        };
        let value = normalize_value(value);
        if value.is_empty() {
            skipped.push(Skipped {
                line: l.line,
                text: format!("no alias value for \"{name}\""),
            });
            continue;
        }
        let name = if fold_case { name.to_lowercase() } else { name };
        match index.get(&name) {
            Some(&i) => match duplicates {
                Duplicates::Replace => {
                    if let Some(e) = entries.get_mut(i) {
                        e.1 = value;
                    }
                }
                Duplicates::Warn => skipped.push(Skipped {
                    line: l.line,
                    text: format!("duplicate entry: \"{name}\""),
                }),
                Duplicates::Ignore => {}
            },
            None => {
                index.insert(name.clone(), entries.len());
                entries.push((name, value));
            }
        }
    }
    skipped.sort_by_key(|s| s.line);
    Ok((entries, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_file() {
        let text = "# comment\n\
                    Postmaster: root\n\
                    root:   alice,\n\
                    \tbob ,  \"|/usr/bin/prog a, b\"\n\
                    \"john doe\": jd@example.org\n\
                    \n\
                    list: :include:/etc/list\n\
                    bad line\n\
                    empty:\n\
                    root: again\n";
        let (e, s) = parse(Path::new("aliases"), text, true, Duplicates::Warn).unwrap();
        assert_eq!(
            e,
            vec![
                ("postmaster".into(), "root".into()),
                ("root".into(), "alice, bob, \"|/usr/bin/prog a, b\"".into()),
                ("john doe".into(), "jd@example.org".into()),
                ("list".into(), ":include:/etc/list".into()),
            ]
        );
        let lines: Vec<usize> = s.iter().map(|s| s.line).collect();
        assert_eq!(lines, vec![8, 9, 10]);
        let (e, _) = parse(
            Path::new("a"),
            "Root: x\nroot: y\n",
            true,
            Duplicates::Replace,
        )
        .unwrap();
        assert_eq!(e, vec![("root".into(), "y".into())]);
        let (e, _) = parse(Path::new("a"), "Root: x\n", false, Duplicates::Warn).unwrap();
        assert_eq!(e, vec![("Root".into(), "x".into())]);
    }

    #[test]
    fn hostile_lines_do_not_panic() {
        for t in [
            "\"",
            ":",
            "\"a:b",
            "\\",
            "a\\:b: c",
            "é: ü,,,",
            "a: \"",
            "\u{0}: \u{0}",
        ] {
            let _ = parse(Path::new("a"), t, true, Duplicates::Warn).unwrap();
        }
        assert_eq!(split_alias("a\\:b: c"), Ok(("a:b".into(), " c")));
    }
}
