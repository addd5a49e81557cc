//! Message structure from the message's bytes, with mail-parser building
//! the MIME tree: ENVELOPE, BODY and BODYSTRUCTURE, `BODY[section]<partial>`
//! and BINARY[section]. Callers give the message in its IMAP form (CRLF
//! line ends; [`to_crlf`] converts bare-LF storage) so that every size and
//! offset is the one the client sees.
//!
//! What mail-parser cannot express, and how it is handled here:
//! - address display names come decoded from RFC 2047, and ENVELOPE wants
//!   them as sent: `address` parses address lists from the raw header
//!   value instead (mail-parser's addresses still serve SEARCH and SORT);
//! - Content-Type and Content-Disposition parameters come merged from
//!   RFC 2231 continuations and decoded: `params` parses them from the raw
//!   header instead, as Dovecot shows them;
//! - a message/rfc822 part sent base64 or quoted-printable is parsed from
//!   its decoded octets, so its inner offsets are not offsets of the
//!   stored message: BODY[n.x] below such a part is served from the decoded
//!   inner message;
//! - a body part with neither header nor body (a delimiter line right
//!   after another) is dropped from the tree; Dovecot shows it as an empty
//!   text/plain part;
//! - a multipart without a boundary parameter comes back as one text
//!   part: BODYSTRUCTURE shows it as a multipart with one empty part, as
//!   Dovecot does;
//! - body sizes and line counts are not offered: they are computed here
//!   from the part offsets, which mail-parser does give exactly (the CRLF
//!   before a boundary belongs to the boundary).
//!
//! Header values (Date, Subject, Message-ID, In-Reply-To, Content-ID, ...)
//! are read raw from the header offsets, never from mail-parser's decoded
//! values.

pub mod address;
pub mod bodystructure;
pub mod envelope;
pub mod params;
pub mod section;

use mail_parser::{Message, MessageParser, MessagePart, PartType};
use std::borrow::Cow;

/// Parse a message (CRLF form). `None` only for input mail-parser
/// cannot make anything of (such as empty input); callers then serve an
/// empty structure.
pub fn parse(raw: &[u8]) -> Option<Message<'_>> {
    parser().parse(raw)
}

/// mail-parser configured for what imapd reads: MIME headers, dates,
/// addresses, message ids and the subject parsed; every other header
/// (Received above all, the costliest) only as decoded text for SEARCH.
fn parser() -> MessageParser {
    MessageParser::new()
        .with_minimal_headers()
        .with_message_ids()
        .header_address(mail_parser::HeaderName::Sender)
        .default_header_text()
}

/// The message with bare LF line ends turned into CRLF (borrowed when it
/// has none).
pub fn to_crlf(raw: &[u8]) -> Cow<'_, [u8]> {
    let bare = raw
        .iter()
        .enumerate()
        .any(|(i, &c)| c == b'\n' && (i == 0 || raw[i - 1] != b'\r'));
    if !bare {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
    for (i, &c) in raw.iter().enumerate() {
        if c == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// Appends `raw` to `out` with bare LF line ends turned into CRLF (one
/// copy, line by line).
pub fn to_crlf_into(raw: &[u8], out: &mut Vec<u8>) {
    out.reserve(raw.len() + raw.len() / 32);
    let mut rest = raw;
    let mut prev_cr = false;
    while let Some(nl) = rest.iter().position(|&c| c == b'\n') {
        let (line, tail) = rest.split_at(nl);
        let cr = line.last().map_or(prev_cr, |&c| c == b'\r');
        out.extend_from_slice(line);
        if !cr {
            out.push(b'\r');
        }
        out.push(b'\n');
        prev_cr = false;
        rest = tail.get(1..).unwrap_or_default();
    }
    out.extend_from_slice(rest);
}

/// One MIME part within the (possibly nested) message whose bytes its
/// offsets index.
#[derive(Clone, Copy)]
pub struct PartRef<'m, 'x> {
    /// The message holding the part.
    pub msg: &'m Message<'x>,
    /// Index into `msg.parts`.
    pub idx: usize,
}

impl<'m, 'x> PartRef<'m, 'x> {
    /// The root part of a message.
    pub fn root(msg: &'m Message<'x>) -> Self {
        PartRef { msg, idx: 0 }
    }

    /// The part itself.
    pub fn part(&self) -> Option<&'m MessagePart<'x>> {
        self.msg.parts.get(self.idx)
    }

    fn slice(&self, a: u32, b: u32) -> &'m [u8] {
        let raw: &'m [u8] = &self.msg.raw_message;
        let (a, b) = (a as usize, b as usize);
        raw.get(a.min(raw.len())..b.min(raw.len()))
            .unwrap_or_default()
    }

    /// The part's header block, blank line included.
    pub fn header_bytes(&self) -> &'m [u8] {
        self.part()
            .map_or(&[][..], |p| self.slice(p.offset_header, p.offset_body))
    }

    /// The part's body as stored (still transfer-encoded). A multipart or
    /// message/rfc822 part that ends with a close delimiter keeps the CRLF
    /// after it, as Dovecot counts it (RFC 2046 would give that CRLF to the
    /// enclosing boundary; clients see Dovecot's sizes either way).
    pub fn body_bytes(&self) -> &'m [u8] {
        let Some(p) = self.part() else { return &[][..] };
        let raw: &'m [u8] = &self.msg.raw_message;
        let mut end = p.offset_end as usize;
        let container = matches!(p.body, PartType::Multipart(_) | PartType::Message(_));
        if container
            && self.idx != 0
            && raw.get(..end).is_some_and(|r| r.ends_with(b"--"))
            && raw.get(end..end + 2) == Some(b"\r\n")
        {
            end += 2;
        }
        self.slice(p.offset_body, end as u32)
    }

    /// The raw (undecoded, folded) value of the first header `name`.
    pub fn header_raw(&self, name: &str) -> Option<&'m [u8]> {
        let p = self.part()?;
        let h = p
            .headers
            .iter()
            .find(|h| h.name.as_str().eq_ignore_ascii_case(name))?;
        Some(self.slice(h.offset_start, h.offset_end))
    }

    /// A header's value unfolded: leading white space, CR and LF removed.
    pub fn header_unfolded(&self, name: &str) -> Option<Vec<u8>> {
        self.header_raw(name).map(unfold)
    }

    /// The parsed value of the first header `name`.
    pub fn header_value(&self, name: &str) -> Option<&'m mail_parser::HeaderValue<'x>> {
        let p = self.part()?;
        p.headers
            .iter()
            .find(|h| h.name.as_str().eq_ignore_ascii_case(name))
            .map(|h| &h.value)
    }

    /// Sub-part `n` (1-based) of a multipart.
    pub fn child(&self, n: u32) -> Option<PartRef<'m, 'x>> {
        match &self.part()?.body {
            PartType::Multipart(ids) => {
                let id = *ids.get((n as usize).checked_sub(1)?)?;
                Some(PartRef {
                    msg: self.msg,
                    idx: id as usize,
                })
            }
            _ => None,
        }
    }

    /// Does the Content-Type say multipart (whatever mail-parser made of it)?
    fn declared_multipart(&self) -> bool {
        self.header_raw("Content-Type")
            .map(|v| v.trim_ascii_start())
            .is_some_and(|v| v.len() >= 10 && v[..10].eq_ignore_ascii_case(b"multipart/"))
    }

    /// The nested message of a message/rfc822 part.
    pub fn nested(&self) -> Option<&'m Message<'x>> {
        match &self.part()?.body {
            PartType::Message(m) => Some(m),
            _ => None,
        }
    }

    /// Follow a part path from a message root (RFC 3501 6.4.5, with
    /// Dovecot's reading): a number picks a multipart's child; on a single
    /// part only 1 is valid, and only as the first number of a message or
    /// below a multipart; a message/rfc822 part with numbers after it
    /// continues in the message it holds.
    pub fn descend(&self, path: &[u32]) -> Option<PartRef<'m, 'x>> {
        let mut cur = *self;
        let mut fresh = true;
        let mut below_multipart = false;
        for (i, &n) in path.iter().enumerate() {
            if let Some(c) = cur.child(n) {
                cur = c;
                below_multipart = true;
            } else if matches!(cur.part()?.body, PartType::Multipart(_))
                || n != 1
                || !(fresh || below_multipart)
                || cur.declared_multipart()
            {
                return None;
            }
            fresh = false;
            if let Some(m) = cur.nested().filter(|_| i + 1 < path.len()) {
                cur = PartRef::root(m);
                fresh = true;
                below_multipart = false;
            }
        }
        Some(cur)
    }
}

/// Unfold a raw header value as Dovecot does for ENVELOPE: white space
/// right after the colon skipped, every CR and LF dropped, the rest kept
/// (trailing white space included).
pub fn unfold(v: &[u8]) -> Vec<u8> {
    let start = v
        .iter()
        .position(|&c| c != b' ' && c != b'\t')
        .unwrap_or(v.len());
    v[start..]
        .iter()
        .copied()
        .filter(|&c| c != b'\r' && c != b'\n')
        .collect()
}

/// Lines in a body: its LFs (an unterminated last line, such as the
/// one before a boundary, does not count: Dovecot counts the same way).
pub fn count_lines(body: &[u8]) -> usize {
    body.iter().filter(|&&c| c == b'\n').count()
}

#[cfg(test)]
mod tests;
