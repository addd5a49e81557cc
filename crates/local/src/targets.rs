//! The right-hand side of aliases(5) entries and the lines of .forward
//! and :include: files: a list of targets separated by commas (and, in
//! files, newlines), each one of
//!
//! - `|command` (also `"|command with, commas"`): a command run by the shell;
//! - `/file/name` (a mailbox file) or `/dir/name/` (a Maildir);
//! - `:include:/file/name`: more targets from a file;
//! - `\user`: the user's own mailbox, no alias or .forward expansion;
//! - `user` or `user@domain`: an address.
//!
//! Parsing is bounded ([`MAX_TARGETS`]) and never fails: what is not a
//! command, file or include is an address.

/// Most targets taken from one list.
pub(crate) const MAX_TARGETS: usize = 1000;

/// One target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// `|command`: the command text (for `/bin/sh -c`).
    Command(String),
    /// `/path` or `/path/`.
    File(String),
    /// `:include:/path`.
    Include(String),
    /// An address, internal form; `bypass` for `\user` (no alias or .forward).
    Address {
        /// The address.
        address: String,
        /// From `\user`.
        bypass: bool,
    },
}

/// Splits a list into targets.
pub(crate) fn parse(list: &str) -> Vec<Target> {
    split(list)
        .into_iter()
        .filter_map(|t| classify(&t))
        .take(MAX_TARGETS)
        .collect()
}

/// Splits at commas and newlines outside double quotes; `#` at the start
/// of a line (in files) starts a comment.
fn split(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    let mut line_start = true;
    let mut comment = false;
    for c in list.chars() {
        if comment {
            if c == '\n' {
                comment = false;
                line_start = true;
            }
            continue;
        }
        if line_start && !quoted && c == '#' {
            comment = true;
            continue;
        }
        if line_start && !c.is_whitespace() {
            line_start = false;
        }
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' | '\n' if !quoted => {
                out.push(std::mem::take(&mut cur));
                if c == '\n' {
                    line_start = true;
                }
            }
            _ => cur.push(c),
        }
        if out.len() > MAX_TARGETS {
            break;
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Removes one level of double quotes around the whole token.
fn unquote(t: &str) -> Option<String> {
    let inner = t.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '"' => return None,
            _ => out.push(c),
        }
    }
    Some(out)
}

fn classify(token: &str) -> Option<Target> {
    let t = unquote(token).unwrap_or_else(|| token.to_string());
    let t = t.trim();
    if let Some(cmd) = t.strip_prefix('|') {
        let cmd = unquote(cmd.trim()).unwrap_or_else(|| cmd.trim().to_string());
        return (!cmd.is_empty()).then_some(Target::Command(cmd));
    }
    if t.len() >= 9
        && t.get(..9)
            .is_some_and(|p| p.eq_ignore_ascii_case(":include:"))
    {
        let path = t.get(9..).unwrap_or_default().trim();
        return (!path.is_empty()).then(|| Target::Include(path.to_string()));
    }
    if t.starts_with('/') {
        return Some(Target::File(t.to_string()));
    }
    let (bypass, rest) = match t.strip_prefix('\\') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let rest = rest
        .rsplit_once('<')
        .and_then(|(_, r)| r.strip_suffix('>'))
        .unwrap_or(rest)
        .trim();
    if rest.is_empty() {
        return None;
    }
    let address = match address::parse_mailbox(rest) {
        Ok(a) if !a.is_null() => a.to_internal(),
        _ => rest.to_string(),
    };
    Some(Target::Address { address, bypass })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(a: &str) -> Target {
        Target::Address {
            address: a.into(),
            bypass: false,
        }
    }

    #[test]
    fn every_kind() {
        assert_eq!(
            parse(
                r#"bob, carol@example.org, "|/usr/bin/prog a, b", |/bin/x y, /var/log/mail, /srv/md/, :include:/etc/list, \dave, Eve <eve@x.example>, "john doe"@y.example"#
            ),
            vec![
                addr("bob"),
                addr("carol@example.org"),
                Target::Command("/usr/bin/prog a, b".into()),
                Target::Command("/bin/x y".into()),
                Target::File("/var/log/mail".into()),
                Target::File("/srv/md/".into()),
                Target::Include("/etc/list".into()),
                Target::Address {
                    address: "dave".into(),
                    bypass: true
                },
                addr("eve@x.example"),
                addr("john doe@y.example"),
            ]
        );
    }

    #[test]
    fn files_with_comments_and_lines() {
        assert_eq!(
            parse("# my forward\nbob\n\n  carol , dave\n#x,y\n"),
            vec![addr("bob"), addr("carol"), addr("dave")]
        );
    }

    #[test]
    fn hostile_input_is_bounded() {
        assert!(parse(&",".repeat(100_000)).is_empty());
        assert_eq!(parse(&"a,".repeat(5000)).len(), MAX_TARGETS);
        assert!(parse("\"unterminated, x").len() <= 1);
        assert_eq!(parse("|"), vec![]);
        assert_eq!(parse(":include:"), vec![]);
    }
}
