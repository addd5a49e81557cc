//! LIST and LSUB name matching (RFC 3501 6.3.8, RFC 9051 6.3.9): the
//! reference and pattern combined, `*` matching anything and `%` anything
//! but the hierarchy delimiter, INBOX matched case-insensitively, and
//! whether a pattern could match below a name (for CHILDREN and
//! RECURSIVEMATCH answers).

/// Combine LIST's reference and pattern into one pattern: the pattern
/// alone when it starts with the delimiter or the reference is empty.
pub fn combine(reference: &str, pattern: &str, delim: char) -> String {
    if reference.is_empty() || pattern.starts_with(delim) {
        return pattern.to_string();
    }
    format!("{reference}{pattern}")
}

/// The longest pattern matched (longer ones match nothing): matching
/// costs pattern length times name length, per mailbox.
pub const MAX_PATTERN: usize = 1024;

/// Does `name` match `pattern`? A leading "INBOX" (any case) in both
/// compares case-insensitively, as INBOX is one name in every case.
pub fn matches(pattern: &str, name: &str, delim: char) -> bool {
    if pattern.len() > MAX_PATTERN {
        return false;
    }
    let p: Vec<char> = inbox_upper(pattern).chars().collect();
    let n: Vec<char> = inbox_upper(name).chars().collect();
    // Simulate the pattern as an NFA: states are pattern positions.
    let mut states = vec![false; p.len() + 1];
    states[0] = true;
    close(&p, &mut states);
    for &c in &n {
        let mut next = vec![false; p.len() + 1];
        for i in 0..p.len() {
            if !states[i] {
                continue;
            }
            match p[i] {
                '*' => next[i] = true,
                '%' if c != delim => next[i] = true,
                '%' => {}
                pc if pc == c => next[i + 1] = true,
                _ => {}
            }
        }
        close(&p, &mut next);
        if !next.iter().any(|&s| s) {
            return false;
        }
        states = next;
    }
    states[p.len()]
}

/// Wildcards match the empty string: let each state skip them.
fn close(p: &[char], states: &mut [bool]) {
    for i in 0..p.len() {
        if states[i] && (p[i] == '*' || p[i] == '%') {
            states[i + 1] = true;
        }
    }
}

/// Could some name below `name` (name + delim + ...) match `pattern`?
pub fn may_match_below(pattern: &str, name: &str, delim: char) -> bool {
    let probe = format!("{name}{delim}");
    prefix_matches(pattern, &probe, delim)
}

/// Can `prefix` be extended to a name that matches `pattern`?
fn prefix_matches(pattern: &str, prefix: &str, delim: char) -> bool {
    if pattern.len() > MAX_PATTERN {
        return false;
    }
    let p: Vec<char> = inbox_upper(pattern).chars().collect();
    let n: Vec<char> = inbox_upper(prefix).chars().collect();
    let mut states = vec![false; p.len() + 1];
    states[0] = true;
    close(&p, &mut states);
    for &c in &n {
        let mut next = vec![false; p.len() + 1];
        for i in 0..p.len() {
            if states[i] {
                match p[i] {
                    '*' => next[i] = true,
                    '%' if c != delim => next[i] = true,
                    pc if pc == c => next[i + 1] = true,
                    _ => {}
                }
            }
        }
        close(&p, &mut next);
        states = next;
    }
    // Some state left that can still consume more characters.
    states.iter().enumerate().any(|(i, &s)| s && i < p.len())
}

fn inbox_upper(s: &str) -> String {
    let b = s.as_bytes();
    if b.len() >= 5 && b[..5].eq_ignore_ascii_case(b"INBOX") && s.is_char_boundary(5) {
        let rest = &s[5..];
        if rest.is_empty() || !rest.starts_with(|c: char| c.is_alphanumeric()) {
            return format!("INBOX{rest}");
        }
    }
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(matches("*", "a.b.c", '.'));
        assert!(matches("%", "INBOX", '.'));
        assert!(!matches("%", "a.b", '.'));
        assert!(matches("a.%", "a.b", '.'));
        assert!(!matches("a.%", "a.b.c", '.'));
        assert!(matches("a*c", "a.b.c", '.'));
        assert!(matches("%.%", "a.b", '.'));
        assert!(matches("inbox", "INBOX", '.'));
        assert!(matches("Inbox.*", "INBOX.x", '.'));
        assert!(!matches("inboxes", "INBOX", '.'));
        assert!(!matches("Sent", "sent", '.'));
        assert!(matches("", "", '.'));
        assert!(!matches("", "x", '.'));
        assert!(matches("**%%*", "x", '.'));
    }

    #[test]
    fn combining_and_children() {
        assert_eq!(combine("", "%", '.'), "%");
        assert_eq!(combine("Archive.", "%", '.'), "Archive.%");
        assert_eq!(combine("Archive.", ".x", '.'), ".x");
        assert!(may_match_below("%.%", "a", '.'));
        assert!(!may_match_below("%", "a", '.'));
        assert!(may_match_below("*", "a", '.'));
        assert!(!may_match_below("b.*", "a", '.'));
    }

    #[test]
    fn long_patterns_are_linear() {
        let p = "*a".repeat(200);
        let n = "a".repeat(2000) + "b";
        assert!(!matches(&p, &n, '.'));
        assert!(!matches(&"*".repeat(MAX_PATTERN + 1), "x", '.'));
    }
}
