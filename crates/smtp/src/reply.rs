//! SMTP server replies (RFC 5321 section 4.2): `NNN-text` continuation
//! lines and a final `NNN text` line, read with a bounded line length and
//! line count. The parser takes bytes; the reader in `conn` feeds it.

/// Longest reply line kept (longer lines are cut, the rest is dropped).
pub(crate) const LINE_LIMIT: usize = 2048;

/// Most lines in one reply.
pub(crate) const LINES_LIMIT: usize = 100;

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    /// The three-digit code.
    pub(crate) code: u16,
    /// The lines as received (code included), without line ends.
    pub(crate) lines: Vec<String>,
}

/// A line that is not a reply line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed(pub(crate) String);

/// One parsed line: code, is it the last, the line itself.
pub(crate) fn parse_line(raw: &[u8]) -> Result<(u16, bool, String), Malformed> {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_end_matches(['\r', '\n']).to_string();
    let bytes = text.as_bytes();
    let digits = bytes.get(..3).filter(|d| d.iter().all(u8::is_ascii_digit));
    let Some(d) = digits else {
        return Err(Malformed(text));
    };
    let code = d
        .iter()
        .fold(0u16, |n, b| n * 10 + u16::from(b.saturating_sub(b'0')));
    if !(200..=599).contains(&code) {
        return Err(Malformed(text));
    }
    let last = match bytes.get(3) {
        None | Some(b' ') => true,
        Some(b'-') => false,
        Some(_) => return Err(Malformed(text)),
    };
    Ok((code, last, text))
}

impl Reply {
    /// 2, 3, 4 or 5.
    pub(crate) fn class(&self) -> u16 {
        self.code / 100
    }

    /// The lines joined with spaces, as Postfix puts them in a DSN.
    pub(crate) fn text(&self) -> String {
        self.lines.join(" ")
    }

    /// The enhanced status code of the first line when it has one of the
    /// reply's class, else `C.0.0`.
    pub(crate) fn dsn(&self) -> String {
        let class = self.class();
        self.lines
            .first()
            .and_then(|l| l.get(4..))
            .and_then(|rest| rest.split_whitespace().next())
            .filter(|w| is_enhanced(w, class))
            .map(str::to_string)
            .unwrap_or_else(|| format!("{class}.0.0"))
    }
}

/// `C.S.D` with C the reply class, S up to 3 digits, D up to 3 digits.
fn is_enhanced(w: &str, class: u16) -> bool {
    let parts: Vec<&str> = w.split('.').collect();
    let [c, s, d] = parts.as_slice() else {
        return false;
    };
    let num = |p: &str, max: usize| {
        !p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit())
    };
    *c == class.to_string() && matches!(class, 2 | 4 | 5) && num(s, 3) && num(d, 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(lines: &[&str]) -> Reply {
        let mut out = Reply {
            code: 0,
            lines: vec![],
        };
        for l in lines {
            let (code, _, text) = parse_line(l.as_bytes()).unwrap();
            out.code = code;
            out.lines.push(text);
        }
        out
    }

    #[test]
    fn lines() {
        assert_eq!(
            parse_line(b"250-PIPELINING\r\n").unwrap(),
            (250, false, "250-PIPELINING".into())
        );
        assert_eq!(
            parse_line(b"250 OK\r\n").unwrap(),
            (250, true, "250 OK".into())
        );
        assert_eq!(parse_line(b"220").unwrap(), (220, true, "220".into()));
        assert!(parse_line(b"hello").is_err());
        assert!(parse_line(b"25").is_err());
        assert!(parse_line(b"250xOK").is_err());
        assert!(parse_line(b"999 what").is_err());
        assert!(parse_line(b"\xff\xfe\xfd").is_err());
    }

    #[test]
    fn dsn_and_text() {
        let r = reply(&["550-5.1.1 <b@x>: no such user", "550 5.1.1 really"]);
        assert_eq!(r.dsn(), "5.1.1");
        assert_eq!(r.text(), "550-5.1.1 <b@x>: no such user 550 5.1.1 really");
        assert_eq!(reply(&["450 try later"]).dsn(), "4.0.0");
        // A code of another class is not trusted.
        assert_eq!(reply(&["550 2.0.0 odd"]).dsn(), "5.0.0");
        assert_eq!(reply(&["250 2.0.0 Ok: queued as X"]).dsn(), "2.0.0");
        assert_eq!(
            reply(&["552 5.3.4 Message size exceeds fixed limit"]).dsn(),
            "5.3.4"
        );
    }
}
