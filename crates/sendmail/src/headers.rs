//! For `-t`: does the message header name any recipient?
//!
//! cleanup does the real extraction (and removes Bcc), but like Postfix's
//! sendmail we refuse at once, with `No recipient addresses found in message
//! header`, a `-t` message whose To, Cc and Bcc (or Resent-To, Resent-Cc,
//! Resent-Bcc) hold no address and which has no command-line recipient,
//! rather than let it vanish in the queue.
//!
//! [`RecipientProbe`] sees the content as it streams by, keeps only the
//! header field being read (at most [`MAX_FIELD`] bytes; a longer one is
//! taken as naming a recipient), and stops at the end of the header.

/// Longest header field examined.
pub const MAX_FIELD: usize = 102_400;

/// Header fields that name recipients for `-t`.
const RECIPIENT_FIELDS: [&str; 6] = ["to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc"];

/// Watches the header of a streamed message for a recipient address.
#[derive(Debug, Default)]
pub struct RecipientProbe {
    /// The physical line being read (pieces arrive up to a newline).
    line: Vec<u8>,
    /// The logical field being read (folded lines joined).
    field: Vec<u8>,
    /// The field or line grew past [`MAX_FIELD`].
    overflow: bool,
    found: bool,
    done: bool,
}

impl RecipientProbe {
    /// A probe at the start of a message.
    pub fn new() -> RecipientProbe {
        RecipientProbe::default()
    }

    /// Feeds the next piece of content.
    pub fn feed(&mut self, piece: &[u8]) {
        let mut rest = piece;
        while !self.done && !rest.is_empty() {
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.push_line_bytes(rest.get(..i).unwrap_or_default());
                    rest = rest.get(i + 1..).unwrap_or_default();
                    let line = std::mem::take(&mut self.line);
                    self.end_line(&line);
                }
                None => {
                    self.push_line_bytes(rest);
                    rest = &[];
                }
            }
        }
    }

    /// True when a recipient was seen; call after the last [`feed`](Self::feed).
    pub fn found(&mut self) -> bool {
        if !self.done {
            if !self.line.is_empty() {
                let line = std::mem::take(&mut self.line);
                self.end_line(&line);
            }
            self.finish_field();
            self.done = true;
        }
        self.found
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) {
        if self.line.len() + bytes.len() > MAX_FIELD {
            self.overflow = true;
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    fn end_line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if self.overflow {
            // Too long to judge: cleanup will; assume it names someone
            // rather than refuse a message that may be fine.
            self.found = true;
            self.done = true;
            return;
        }
        if line.is_empty() {
            self.finish_field();
            self.done = true;
        } else if line.starts_with(b" ") || line.starts_with(b"\t") {
            if self.field.is_empty() {
                // Leading white space before any field: body text.
                self.done = true;
            } else if self.field.len() + line.len() > MAX_FIELD {
                // Too long to judge, as above.
                self.found = true;
                self.done = true;
            } else {
                self.field.extend_from_slice(line);
            }
        } else if is_field_start(line) {
            self.finish_field();
            self.field.extend_from_slice(line);
        } else {
            // Not a header line: the body starts here.
            self.finish_field();
            self.done = true;
        }
    }

    fn finish_field(&mut self) {
        let field = std::mem::take(&mut self.field);
        let Some(colon) = field.iter().position(|&b| b == b':') else {
            return;
        };
        let name = String::from_utf8_lossy(field.get(..colon).unwrap_or_default())
            .trim()
            .to_ascii_lowercase();
        if !RECIPIENT_FIELDS.contains(&name.as_str()) {
            return;
        }
        let value = String::from_utf8_lossy(field.get(colon + 1..).unwrap_or_default());
        self.found |= match address::parse_address_list(&value) {
            Ok(list) => list.iter().any(|a| !a.is_null()),
            // Unparsable: cleanup decides.
            Err(_) => !value.trim().is_empty(),
        };
    }
}

/// `name:` with a field name of printable ASCII other than `:` (RFC 5322).
fn is_field_start(line: &[u8]) -> bool {
    match line.iter().position(|&b| b == b':') {
        Some(0) | None => false,
        Some(i) => line
            .get(..i)
            .unwrap_or_default()
            .iter()
            .all(|&b| (33..=126).contains(&b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(msg: &[u8], piece: usize) -> bool {
        let mut p = RecipientProbe::new();
        for chunk in msg.chunks(piece) {
            p.feed(chunk);
        }
        p.found()
    }

    #[test]
    fn finds_recipients_in_the_header_only() {
        for piece in [1, 3, 1000] {
            assert!(probe(b"Subject: x\nTo: bob\n\nhi\n", piece));
            assert!(probe(b"Cc:\r\n  Carol <carol@example.org>\r\n\r\n", piece));
            assert!(probe(b"BCC: dave@example.net", piece));
            assert!(probe(b"Resent-To: erin\n\n", piece));
            assert!(!probe(b"Subject: x\n\nTo: bob\n", piece));
            assert!(!probe(b"To: undisclosed-recipients:;\n\n", piece));
            assert!(!probe(b"From: alice\nX-To: bob\n\n", piece));
            assert!(!probe(b"", piece));
            // A body line without a blank line first ends the header.
            assert!(!probe(b"Subject: x\nnot a header\nTo: bob\n", piece));
        }
    }

    #[test]
    fn huge_fields_are_given_the_benefit_of_the_doubt() {
        let mut msg = b"To: ".to_vec();
        msg.extend(std::iter::repeat_n(b'x', MAX_FIELD + 10));
        msg.extend_from_slice(b"\n\n");
        assert!(probe(&msg, 4096));
        let mut msg = b"Subject: x\n".to_vec();
        for _ in 0..20_000 {
            msg.extend_from_slice(b" folded words\n");
        }
        msg.extend_from_slice(b"To: bob\n\n");
        assert!(probe(&msg, 4096));
    }
}
