//! The text format shared by all file-based tables: Postfix's readllines
//! (logical lines with continuation) and the `key whitespace value` lines of
//! hash: and texthash: sources.
//!
//! A logical line starts with non-whitespace text; a following line that
//! starts with whitespace continues it. Empty lines, all-whitespace lines
//! and lines whose first non-whitespace character is `#` are skipped and do
//! not end a logical line.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{Error, SyntaxError, Warning, WarningKind};

/// Longest logical line accepted (bytes).
pub const MAX_LINE_LENGTH: usize = 1 << 20;

/// Largest text table read (bytes).
pub const MAX_TEXT_SIZE: u64 = 1 << 30;

/// One logical line: its text (continuations joined, newlines removed) and
/// the number of its first physical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalLine {
    /// 1-based number of the first physical line.
    pub line: usize,
    /// The joined text.
    pub text: String,
}

/// Reads a whole text table, bounded by [`MAX_TEXT_SIZE`]. Bytes that are
/// not UTF-8 are replaced (keys must be UTF-8 to be looked up anyway).
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be read, [`Error::TooLarge`] past the
/// limit.
pub fn read_text(path: &Path) -> Result<String, Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_TEXT_SIZE.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > MAX_TEXT_SIZE {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_TEXT_SIZE,
        });
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Splits text into logical lines. A continuation line with nothing before
/// it is reported as a warning and dropped, as Postfix does.
///
/// # Errors
///
/// [`SyntaxError::LineTooLong`] (with file and line) past
/// [`MAX_LINE_LENGTH`].
pub fn logical_lines(
    path: &Path,
    text: &str,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<LogicalLine>, Error> {
    let mut out: Vec<LogicalLine> = Vec::new();
    let mut warned = false;
    for (i, raw) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let continues = raw.starts_with(char::is_whitespace);
        match out.last_mut() {
            Some(last) if continues => {
                if last.text.len().saturating_add(raw.len()) > MAX_LINE_LENGTH {
                    return Err(Error::syntax(path, last.line, too_long()));
                }
                last.text.push_str(raw);
            }
            // Text before the first logical line: one warning for the run.
            None if continues => {
                if !warned {
                    warnings.push(Warning::new(path, line_no, WarningKind::LeadingWhitespace));
                    warned = true;
                }
            }
            _ => {
                if raw.len() > MAX_LINE_LENGTH {
                    return Err(Error::syntax(path, line_no, too_long()));
                }
                out.push(LogicalLine {
                    line: line_no,
                    text: raw.to_string(),
                });
            }
        }
    }
    Ok(out)
}

fn too_long() -> SyntaxError {
    SyntaxError::LineTooLong {
        limit: MAX_LINE_LENGTH,
    }
}

/// How duplicate keys are treated when a table is loaded or built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Duplicates {
    /// Keep the first entry and record a warning (postmap's default).
    #[default]
    Warn,
    /// Keep the last entry silently (`postmap -r`).
    Replace,
    /// Keep the first entry silently.
    Ignore,
}

/// Options for reading `key value` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// Lowercase keys (postmap does unless `-f`).
    pub fold_case: bool,
    /// What to do with a key seen twice.
    pub duplicates: Duplicates,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            fold_case: true,
            duplicates: Duplicates::Warn,
        }
    }
}

/// Parses `key whitespace value` lines into entries in file order.
/// Malformed lines are skipped with a warning, as postmap does.
///
/// # Errors
///
/// As [`logical_lines`].
pub fn parse_entries(
    path: &Path,
    text: &str,
    opts: ParseOptions,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<(String, String)>, Error> {
    let mut entries: Vec<(String, String)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for line in logical_lines(path, text, warnings)? {
        let (key, value) = match split_key_value(&line.text) {
            Ok(kv) => kv,
            Err(kind) => {
                warnings.push(Warning::new(path, line.line, kind));
                continue;
            }
        };
        if key.ends_with(':') {
            warnings.push(Warning::new(path, line.line, WarningKind::AliasFormat));
        }
        let key = if opts.fold_case {
            key.to_lowercase()
        } else {
            key.to_string()
        };
        add_entry(
            &mut entries,
            &mut index,
            key,
            value.to_string(),
            opts,
            |k| {
                warnings.push(Warning::new(
                    path,
                    line.line,
                    WarningKind::DuplicateKey { key: k },
                ));
            },
        );
    }
    Ok(entries)
}

/// Adds one entry under the duplicate policy.
pub(crate) fn add_entry(
    entries: &mut Vec<(String, String)>,
    index: &mut HashMap<String, usize>,
    key: String,
    value: String,
    opts: ParseOptions,
    mut warn: impl FnMut(String),
) {
    match index.get(&key) {
        Some(&i) => match opts.duplicates {
            Duplicates::Replace => {
                if let Some(e) = entries.get_mut(i) {
                    e.1 = value;
                }
            }
            Duplicates::Warn => warn(key),
            Duplicates::Ignore => {}
        },
        None => {
            index.insert(key.clone(), entries.len());
            entries.push((key, value));
        }
    }
}

/// Splits a `key whitespace value` line at the first whitespace outside
/// double quotes (a backslash escapes the next character), as postmap
/// does; the key keeps its quotes, so `"john doe"@example.com` is stored
/// in the quoted form that address lookups use. Both parts are trimmed.
///
/// # Errors
///
/// [`WarningKind::UnbalancedQuote`], or [`WarningKind::ExpectedKeyValue`]
/// when the key or the value is missing: postmap skips such lines.
pub fn split_key_value(text: &str) -> Result<(&str, &str), WarningKind> {
    let text = text.trim();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut end = text.len();
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            in_quotes = !in_quotes;
        } else if c.is_whitespace() && !in_quotes {
            end = i;
            break;
        }
    }
    if in_quotes {
        return Err(WarningKind::UnbalancedQuote);
    }
    let key = text.get(..end).unwrap_or_default();
    let value = text.get(end..).unwrap_or_default().trim();
    if key.is_empty() || value.is_empty() {
        return Err(WarningKind::ExpectedKeyValue);
    }
    Ok((key, value))
}

/// A texthash: table: the source text read into memory at open.
#[derive(Debug)]
pub(crate) struct TextTable {
    pub(crate) map: HashMap<String, String>,
}

impl TextTable {
    /// Reads and parses `path`.
    pub(crate) fn open(
        path: &Path,
        fold_case: bool,
        warnings: &mut Vec<Warning>,
    ) -> Result<TextTable, Error> {
        let text = read_text(path)?;
        let opts = ParseOptions {
            fold_case,
            duplicates: Duplicates::Warn,
        };
        let entries = parse_entries(path, &text, opts, warnings)?;
        Ok(TextTable {
            map: entries.into_iter().collect(),
        })
    }
}

/// The path of a table name (`hash:/etc/postfix/virtual` names
/// `/etc/postfix/virtual`).
pub(crate) fn name_path(name: &str) -> PathBuf {
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<(usize, String)> {
        let mut w = Vec::new();
        logical_lines(Path::new("t"), text, &mut w)
            .unwrap()
            .into_iter()
            .map(|l| (l.line, l.text))
            .collect()
    }

    #[test]
    fn continuation_comments_and_blank_lines() {
        let text = "a 1\n  2\n# c\n\n   \n\tthree\nb x\r\n#x\nc y";
        assert_eq!(
            lines(text),
            vec![
                (1, "a 1  2\tthree".to_string()),
                (7, "b x".to_string()),
                (9, "c y".to_string())
            ]
        );
    }

    #[test]
    fn orphan_continuation_is_a_warning() {
        let mut w = Vec::new();
        let l = logical_lines(Path::new("f"), "  x\n  more\ny z\n", &mut w).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].to_string(),
            "f, line 1: logical line must not start with whitespace"
        );
    }

    #[test]
    fn entries_fold_case_and_warn_on_duplicates() {
        let mut w = Vec::new();
        let e = parse_entries(
            Path::new("f"),
            "User@Example.COM  Target@X\nuser@example.com second\nnovalue\nalias: x\n",
            ParseOptions::default(),
            &mut w,
        )
        .unwrap();
        assert_eq!(
            e,
            vec![
                ("user@example.com".to_string(), "Target@X".to_string()),
                ("alias:".to_string(), "x".to_string())
            ]
        );
        let msgs: Vec<String> = w.iter().map(|w| w.to_string()).collect();
        assert_eq!(
            msgs,
            [
                "f, line 2: duplicate entry: \"user@example.com\"",
                "f, line 3: expected format: key whitespace value",
                "f, line 4: record is in \"key: value\" format; is this an alias file?"
            ]
        );
    }

    #[test]
    fn quoted_keys_keep_their_quotes() {
        assert_eq!(
            split_key_value("\"john doe\"@x  jd@y"),
            Ok(("\"john doe\"@x", "jd@y"))
        );
        assert_eq!(split_key_value("a\\ b c"), Ok(("a\\ b", "c")));
        assert_eq!(
            split_key_value("\"open key value"),
            Err(WarningKind::UnbalancedQuote)
        );
        assert_eq!(split_key_value("key"), Err(WarningKind::ExpectedKeyValue));
        assert_eq!(split_key_value("key\\"), Err(WarningKind::ExpectedKeyValue));
    }

    #[test]
    fn replace_keeps_last() {
        let mut w = Vec::new();
        let opts = ParseOptions {
            fold_case: false,
            duplicates: Duplicates::Replace,
        };
        let e = parse_entries(Path::new("f"), "K 1\nK 2\nk 3\n", opts, &mut w).unwrap();
        assert_eq!(e, vec![("K".into(), "2".into()), ("k".into(), "3".into())]);
        assert!(w.is_empty());
    }

    #[test]
    fn long_lines_are_refused() {
        let mut w = Vec::new();
        let text = format!("k {}\n", "v".repeat(MAX_LINE_LENGTH));
        assert!(matches!(
            logical_lines(Path::new("f"), &text, &mut w),
            Err(Error::Syntax { line: 1, .. })
        ));
    }
}
