//! Base subject extraction (RFC 5256 section 2.1): the subject with
//! encoded words decoded, white space collapsed, and the reply and forward
//! markers ("Re:", "Fwd:", "`[list]` ", "(fwd)", "`[fwd: ...]`") removed.

/// The base subject (case-folded for comparison) and whether the subject
/// was a reply or forward.
pub fn base_subject(decoded: &str) -> (String, bool) {
    let mut s: String = String::with_capacity(decoded.len());
    let mut ws = false;
    for ch in decoded.chars() {
        if ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' {
            ws = true;
        } else {
            if ws {
                s.push(' ');
            }
            ws = false;
            s.push(ch);
        }
    }
    if ws {
        s.push(' ');
    }
    let mut reply = false;
    let mut cur: &str = &s;
    loop {
        // (2) trailers: "(fwd)" and white space.
        loop {
            let t = cur.trim_end_matches(' ');
            let lower_end = t.len() >= 5
                && t.is_char_boundary(t.len() - 5)
                && t[t.len() - 5..].eq_ignore_ascii_case("(fwd)");
            if lower_end {
                cur = &t[..t.len() - 5];
                reply = true;
            } else {
                cur = t;
                break;
            }
        }
        // (3) leaders, (4) a leading blob when something remains.
        loop {
            let before = cur.len();
            cur = cur.trim_start_matches(' ');
            if let Some(rest) = strip_refwd(cur) {
                cur = rest;
                reply = true;
            }
            if let Some(rest) = strip_blob(cur).filter(|r| !r.is_empty()) {
                cur = rest;
            }
            if cur.len() == before {
                break;
            }
        }
        // (5) "[fwd: ... ]".
        if cur.len() >= 6
            && cur.is_char_boundary(5)
            && cur[..5].eq_ignore_ascii_case("[fwd:")
            && cur.ends_with(']')
        {
            cur = &cur[5..cur.len() - 1];
            reply = true;
            continue;
        }
        break;
    }
    (cur.to_lowercase(), reply)
}

/// subj-blob: "[" *BLOBCHAR "]" *WSP; the rest after it.
fn strip_blob(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find(['[', ']'])?;
    if !rest[end..].starts_with(']') {
        return None;
    }
    Some(rest[end + 1..].trim_start_matches(' '))
}

/// *subj-blob subj-refwd, where subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":".
fn strip_refwd(s: &str) -> Option<&str> {
    let mut cur = s;
    while let Some(r) = strip_blob(cur) {
        cur = r;
    }
    let lower: String = cur.chars().take(3).collect::<String>().to_ascii_lowercase();
    let n = if lower.starts_with("re") {
        2
    } else if lower.starts_with("fwd") {
        3
    } else if lower.starts_with("fw") {
        2
    } else {
        return None;
    };
    let mut rest = cur[n..].trim_start_matches(' ');
    if let Some(r) = strip_blob(rest) {
        rest = r;
    }
    rest.strip_prefix(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5256_forms() {
        assert_eq!(base_subject("Re: hello"), ("hello".into(), true));
        assert_eq!(
            base_subject("RE: Fwd: [list] Re[2]: Hello  World (fwd)"),
            ("hello world".into(), true)
        );
        assert_eq!(base_subject("[list] hello"), ("hello".into(), false));
        assert_eq!(base_subject("[fwd: Re: hi]"), ("hi".into(), true));
        assert_eq!(base_subject("[only blob]"), ("[only blob]".into(), false));
        assert_eq!(base_subject("  "), (String::new(), false));
        assert_eq!(base_subject("Réponse"), ("réponse".into(), false));
        assert_eq!(base_subject("Fw : x"), ("x".into(), true));
        assert_eq!(base_subject("regarding"), ("regarding".into(), false));
    }
}
