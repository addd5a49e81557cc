//! Reading main.cf (and master.cf) into logical lines, as Postfix's
//! readlline and dict_load_fp do.
//!
//! A logical line starts with non-whitespace text; a line that starts with
//! whitespace continues it (the newline is dropped, the whitespace kept).
//! Empty lines, whitespace-only lines and lines whose first non-whitespace
//! character is `#` are ignored and do not end a logical line. Continuing
//! text with nothing before it is warned about and ignored. main.cf's
//! logical lines are `name = value` with whitespace around name and value
//! removed; a later definition of a name wins.

use crate::Error;
use std::path::Path;

/// Largest main.cf or master.cf we read, in bytes.
pub const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// One logical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalLine {
    /// The joined text.
    pub text: String,
    /// 1-based number of the physical line it starts on.
    pub line: usize,
    /// 1-based number of its last physical line with text.
    pub end_line: usize,
}

/// One `name = value` definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Parameter name.
    pub name: String,
    /// Raw (unexpanded) value, whitespace around it removed.
    pub value: String,
    /// 1-based line the definition starts on.
    pub line: usize,
    /// 1-based last line of the definition (continuation lines included).
    pub end_line: usize,
}

/// True for a line Postfix skips: empty, whitespace only, or a comment.
pub fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// True for a line that continues the previous logical line.
pub fn is_continuation(line: &str) -> bool {
    line.starts_with(|c: char| c.is_ascii_whitespace()) && !is_blank_or_comment(line)
}

/// Splits text into logical lines. Warnings (continuing text without a
/// logical line before it) are returned beside them, naming `path` and line.
pub fn logical_lines(text: &str, path: &Path) -> (Vec<LogicalLine>, Vec<String>) {
    let mut out: Vec<LogicalLine> = Vec::new();
    let mut warnings = Vec::new();
    // Whether continuation lines now belong to the last logical line; after
    // an orphan continuation (warned once) they are dropped with it.
    let mut open = false;
    let mut orphan = false;
    for (n, line) in text.split('\n').enumerate() {
        let lineno = n + 1;
        if is_blank_or_comment(line) {
            continue;
        }
        if is_continuation(line) {
            match out.last_mut() {
                Some(last) if open => {
                    last.text.push_str(line);
                    last.end_line = lineno;
                }
                _ if orphan => {}
                _ => {
                    warnings.push(format!(
                        "{}, line {}: logical line must not start with whitespace: \"{}\"",
                        path.display(),
                        lineno,
                        printable(line.trim(), 30)
                    ));
                    orphan = true;
                }
            }
            continue;
        }
        out.push(LogicalLine {
            text: line.to_string(),
            line: lineno,
            end_line: lineno,
        });
        open = true;
        orphan = false;
    }
    (out, warnings)
}

/// Splits a logical line into name and value as Postfix's split_nameval.
///
/// # Errors
/// A message: `missing attribute name` or `missing '=' after attribute name`.
pub fn split_nameval(text: &str) -> Result<(&str, &str), &'static str> {
    let t = text.trim_start();
    let name_len = t
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(t.len());
    let (name, rest) = t.split_at(name_len);
    if name.is_empty() {
        return Err("missing attribute name");
    }
    let Some(value) = rest.trim_start().strip_prefix('=') else {
        return Err("missing '=' after attribute name");
    };
    Ok((name, value.trim()))
}

/// Parses main.cf text into its definitions, in file order.
///
/// # Errors
/// A logical line that is not `name = value`, naming `path` and line.
pub fn parse(text: &str, path: &Path) -> Result<(Vec<Entry>, Vec<String>), Error> {
    let (lines, warnings) = logical_lines(text, path);
    let mut entries = Vec::with_capacity(lines.len());
    for l in lines {
        let (name, value) = split_nameval(&l.text).map_err(|what| Error::Syntax {
            path: path.to_path_buf(),
            line: l.line,
            message: format!("{what}: \"{}\"", printable(&l.text, 100)),
        })?;
        entries.push(Entry {
            name: name.to_string(),
            value: value.to_string(),
            line: l.line,
            end_line: l.end_line,
        });
    }
    Ok((entries, warnings))
}

/// Reads a configuration file as text, lossily for non-UTF-8 bytes, refusing
/// files over [`MAX_FILE_SIZE`].
///
/// # Errors
/// The file cannot be opened or read, or is too large.
pub fn read_file(path: &Path) -> Result<String, Error> {
    use std::io::Read;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    // Sized from the file, so that a whole main.cf takes one read or two
    // (read_to_end's own growth starts at 32 bytes: a dozen reads).
    let size = file.metadata().map_or(0, |m| m.len()).min(MAX_FILE_SIZE);
    let mut bytes = Vec::with_capacity(size as usize + 1);
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_FILE_SIZE,
        });
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

pub use maillog::printable;

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Vec<(String, String, usize)> {
        parse(text, Path::new("main.cf"))
            .unwrap()
            .0
            .into_iter()
            .map(|e| (e.name, e.value, e.line))
            .collect()
    }

    #[test]
    fn name_value_trimmed() {
        assert_eq!(
            p("a=b\n  \nc   =   d e  \n"),
            [("a".into(), "b".into(), 1), ("c".into(), "d e".into(), 3)]
        );
        assert_eq!(p("empty =\n"), [("empty".into(), "".into(), 1)]);
        assert_eq!(p("x = a = b\n"), [("x".into(), "a = b".into(), 1)]);
    }

    #[test]
    fn comments_skipped() {
        assert_eq!(
            p("# comment\n   # indented comment\na = b # not a comment\n"),
            [("a".into(), "b # not a comment".into(), 3)]
        );
    }

    #[test]
    fn continuation_lines() {
        let (e, _) = parse(
            "mydestination = a,\n    b,\n# comment inside\n\n\tc\nnext = 1\n",
            Path::new("main.cf"),
        )
        .unwrap();
        assert_eq!(e[0].value, "a,    b,\tc");
        assert_eq!((e[0].line, e[0].end_line), (1, 5));
        assert_eq!((e[1].name.as_str(), e[1].line), ("next", 6));
    }

    #[test]
    fn orphan_continuation_warns() {
        let (e, w) = parse("  orphan = 1\n   more\na = b\n", Path::new("main.cf")).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("line 1: logical line must not start with whitespace"));
    }

    #[test]
    fn syntax_errors_name_line() {
        let e = parse("a = b\n\nnovalue\n", Path::new("/etc/postfix/main.cf")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/postfix/main.cf, line 3: missing '=' after attribute name: \"novalue\""
        );
        let e = parse("= b\n", Path::new("main.cf")).unwrap_err();
        assert!(e.to_string().contains("line 1: missing attribute name"));
        let e = parse("two words = b\n", Path::new("main.cf")).unwrap_err();
        assert!(e.to_string().contains("missing '='"));
    }

    #[test]
    fn crlf_and_no_final_newline() {
        assert_eq!(
            p("a = b\r\nc = d"),
            [("a".into(), "b".into(), 1), ("c".into(), "d".into(), 2)]
        );
    }
}
