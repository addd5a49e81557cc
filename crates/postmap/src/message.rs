//! `postmap -h` and `-b` with `-q -`: standard input is a message; each
//! logical header line (`-h`; a folded header is one key with its embedded
//! newlines) or each body line (`-b`) is a lookup key, as header_checks and
//! body_checks see them. Without `-m` (MIME parsing, not offered here) the
//! header ends at the first line that is not a header line and the body
//! runs from there to the end, as in Postfix.

/// Which keys to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Parts {
    /// `-h`: logical header lines.
    pub(crate) headers: bool,
    /// `-b`: body lines.
    pub(crate) body: bool,
}

impl Parts {
    /// True when either mode is on.
    pub(crate) fn any(self) -> bool {
        self.headers || self.body
    }
}

/// True for a line that starts a header: a field name (printable ASCII
/// without `:`), optional blanks, then `:`.
fn is_header(line: &str) -> bool {
    let name_len = line
        .bytes()
        .take_while(|b| (b'!'..=b'~').contains(b) && *b != b':')
        .count();
    name_len > 0
        && line
            .get(name_len..)
            .is_some_and(|rest| rest.trim_start_matches([' ', '\t']).starts_with(':'))
}

/// The lookup keys of `text` in message order.
pub(crate) fn keys(text: &str, parts: Parts) -> Vec<String> {
    let mut out = Vec::new();
    let mut header: Option<String> = None;
    let mut in_header = true;
    for line in text.split_inclusive('\n') {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if in_header {
            if header.is_some() && line.starts_with([' ', '\t']) {
                if let Some(h) = header.as_mut() {
                    h.push('\n');
                    h.push_str(line);
                }
                continue;
            }
            if let Some(h) = header.take()
                && parts.headers
            {
                out.push(h);
            }
            if is_header(line) {
                header = Some(line.to_string());
                continue;
            }
            in_header = false;
        }
        if parts.body {
            out.push(line.to_string());
        }
    }
    if let Some(h) = header
        && parts.headers
    {
        out.push(h);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &str = "From: a@b\nSubject: hi\nX-Long: a\n b\n\nbody one\n\ttwo\n";

    #[test]
    fn headers_and_body() {
        let h = Parts {
            headers: true,
            body: false,
        };
        assert_eq!(keys(MSG, h), ["From: a@b", "Subject: hi", "X-Long: a\n b"]);
        let b = Parts {
            headers: false,
            body: true,
        };
        assert_eq!(keys(MSG, b), ["", "body one", "\ttwo"]);
        assert!(is_header("Subject : x"));
        assert!(!is_header(" x: y"));
        assert!(!is_header("no colon"));
    }
}
