//! SMTP replies: a code, an optional enhanced status code and text lines.

use std::fmt;

/// One SMTP reply, possibly multi-line (EHLO).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code.
    pub code: u16,
    /// The RFC 3463 enhanced status code (`5.5.2`), if any. It is written
    /// after the code on every line.
    pub enhanced: Option<&'static str>,
    /// The text lines; at least one.
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply.
    pub fn new(code: u16, enhanced: Option<&'static str>, text: impl Into<String>) -> Reply {
        Reply {
            code,
            enhanced,
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply without enhanced codes (EHLO).
    pub fn multi(code: u16, lines: Vec<String>) -> Reply {
        Reply {
            code,
            enhanced: None,
            lines,
        }
    }

    /// True for 4xx and 5xx replies.
    pub fn is_error(&self) -> bool {
        self.code >= 400
    }

    /// The reply as it goes on the wire, every line ending in CRLF.
    pub fn to_wire(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.lines.len().max(1);
        for i in 0..n {
            let sep = if i + 1 == n { ' ' } else { '-' };
            let text = self.lines.get(i).map(String::as_str).unwrap_or("");
            write!(f, "{}{}", self.code, sep)?;
            if let Some(e) = self.enhanced {
                write!(f, "{e} ")?;
            }
            write!(f, "{text}\r\n")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format() {
        let r = Reply::new(500, Some("5.5.2"), "Error: command not recognized");
        assert_eq!(r.to_string(), "500 5.5.2 Error: command not recognized\r\n");
        let m = Reply::multi(250, vec!["host".into(), "PIPELINING".into()]);
        assert_eq!(m.to_string(), "250-host\r\n250 PIPELINING\r\n");
        assert!(r.is_error() && !m.is_error());
    }
}
