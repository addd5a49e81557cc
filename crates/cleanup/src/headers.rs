//! Message header knowledge (Postfix's is_header and header_opts): which
//! line starts a header, what kind of header it is, and rewriting the
//! addresses in an address-list header value without disturbing display
//! names, comments and folding.

/// What cleanup does with a header, by name (Postfix's header_opts table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// From.
    From,
    /// Sender, Reply-To, Errors-To, Return-Receipt-To, Mail-Followup-To,
    /// Disposition-Notification-To: sender-class addresses.
    OtherSender,
    /// Return-Path (sender class; dropped by message_drop_headers).
    ReturnPath,
    /// To.
    To,
    /// Cc.
    Cc,
    /// Bcc.
    Bcc,
    /// Apparently-To: recipient-class addresses, never extracted.
    ApparentlyTo,
    /// Resent-From.
    ResentFrom,
    /// Resent-Sender.
    ResentSender,
    /// Resent-Reply-To (recipient class, as Postfix has it).
    ResentReplyTo,
    /// Resent-To.
    ResentTo,
    /// Resent-Cc.
    ResentCc,
    /// Resent-Bcc.
    ResentBcc,
    /// Resent-Date.
    ResentDate,
    /// Resent-Message-Id.
    ResentMessageId,
    /// Date.
    Date,
    /// Message-Id.
    MessageId,
    /// Received.
    Received,
    /// Anything else.
    Other,
}

impl Kind {
    /// Classifies a header name (case-insensitive).
    pub(crate) fn of(name: &str) -> Kind {
        match name.to_ascii_lowercase().as_str() {
            "from" => Kind::From,
            "sender"
            | "reply-to"
            | "errors-to"
            | "return-receipt-to"
            | "mail-followup-to"
            | "disposition-notification-to" => Kind::OtherSender,
            "return-path" => Kind::ReturnPath,
            "to" => Kind::To,
            "cc" => Kind::Cc,
            "bcc" => Kind::Bcc,
            "apparently-to" => Kind::ApparentlyTo,
            "resent-from" => Kind::ResentFrom,
            "resent-sender" => Kind::ResentSender,
            "resent-reply-to" => Kind::ResentReplyTo,
            "resent-to" => Kind::ResentTo,
            "resent-cc" => Kind::ResentCc,
            "resent-bcc" => Kind::ResentBcc,
            "resent-date" => Kind::ResentDate,
            "resent-message-id" => Kind::ResentMessageId,
            "date" => Kind::Date,
            "message-id" => Kind::MessageId,
            "received" => Kind::Received,
            _ => Kind::Other,
        }
    }

    /// Addresses in it are sender addresses (header_sender class).
    pub(crate) fn is_sender(self) -> bool {
        matches!(
            self,
            Kind::From
                | Kind::OtherSender
                | Kind::ReturnPath
                | Kind::ResentFrom
                | Kind::ResentSender
        )
    }

    /// Addresses in it are recipient addresses (header_recipient class).
    pub(crate) fn is_recipient(self) -> bool {
        matches!(
            self,
            Kind::To
                | Kind::Cc
                | Kind::Bcc
                | Kind::ApparentlyTo
                | Kind::ResentReplyTo
                | Kind::ResentTo
                | Kind::ResentCc
                | Kind::ResentBcc
        )
    }

    /// A Resent- header: missing headers get the Resent- prefix.
    pub(crate) fn is_resent(self) -> bool {
        matches!(
            self,
            Kind::ResentFrom
                | Kind::ResentSender
                | Kind::ResentReplyTo
                | Kind::ResentTo
                | Kind::ResentCc
                | Kind::ResentBcc
                | Kind::ResentDate
                | Kind::ResentMessageId
        )
    }
}

/// The header name when `line` starts a header (`name:` with the name made
/// of printable ASCII other than `:`, optionally followed by blanks before
/// the colon), as Postfix's is_header decides.
pub(crate) fn header_name(line: &[u8]) -> Option<&str> {
    let end = line
        .iter()
        .position(|&b| !(33..=126).contains(&b) || b == b':')?;
    if end == 0 {
        return None;
    }
    let rest = line.get(end..)?;
    let colon = rest.iter().position(|&b| b != b' ' && b != b'\t')?;
    if rest.get(colon) != Some(&b':') {
        return None;
    }
    std::str::from_utf8(line.get(..end)?).ok()
}

/// The value of a header (after `name:` and leading blanks).
pub(crate) fn header_value(header: &[u8]) -> &[u8] {
    let Some(colon) = header.iter().position(|&b| b == b':') else {
        return &[];
    };
    let rest = header.get(colon + 1..).unwrap_or(&[]);
    let start = rest
        .iter()
        .position(|&b| !b.is_ascii_whitespace())
        .unwrap_or(rest.len());
    rest.get(start..).unwrap_or(&[])
}

/// A byte range of an address-list value and how to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Item {
    start: usize,
    end: usize,
}

/// Rewrites every address in an address-list header value (`To: a, "B"
/// <b@x> (c), team: d@y;`) with `map`, which takes and returns internal
/// forms. Display names, comments, group names and spacing stay as they
/// are; only the address text changes. Returns `Ok(None)` when nothing
/// changed. Items that do not parse as one address are left alone.
///
/// # Errors
/// The first error from `map`.
pub(crate) fn rewrite_address_list<E>(
    value: &str,
    mut map: impl FnMut(&str) -> Result<String, E>,
) -> Result<Option<String>, E> {
    let mut out = String::with_capacity(value.len());
    let mut last = 0usize;
    let mut changed = false;
    for item in address_items(value) {
        let Some(text) = value.get(item.start..item.end) else {
            continue;
        };
        if has_bare_blank(text) {
            continue;
        }
        let Ok(addr) = address::parse_mailbox(text) else {
            continue;
        };
        if addr.is_null() {
            continue;
        }
        let internal = addr.to_internal();
        let mapped = map(&internal)?;
        if mapped == internal {
            continue;
        }
        let external = address::Address::from_internal(&mapped).to_external();
        out.push_str(value.get(last..item.start).unwrap_or_default());
        out.push_str(&external);
        last = item.end;
        changed = true;
    }
    if !changed {
        return Ok(None);
    }
    out.push_str(value.get(last..).unwrap_or_default());
    Ok(Some(out))
}

/// Scanner state for [`address_items`].
struct Scan {
    items: Vec<Item>,
    /// Start of the current item.
    item_start: usize,
    /// The `<...>` of the current item, if any.
    angle: Option<Item>,
    /// First and last byte of text outside comments in the current item.
    bare: Option<Item>,
    /// A comment sits between the first and last bare text.
    comment_inside: bool,
}

impl Scan {
    fn close(&mut self, end: usize) {
        let _ = end;
        let item = match (self.angle.take(), self.bare.take()) {
            (Some(a), _) => Some(a),
            (None, Some(b)) if !self.comment_inside => Some(b),
            _ => None,
        };
        self.items.extend(item.filter(|i| i.end > i.start));
        self.comment_inside = false;
    }

    fn bare_text(&mut self, start: usize, end: usize, after_comment: bool) {
        match &mut self.bare {
            Some(b) => {
                if after_comment {
                    self.comment_inside = true;
                }
                b.end = end;
            }
            None => self.bare = Some(Item { start, end }),
        }
    }
}

/// The byte ranges of the addresses in an address-list value: the inside
/// of `<...>` when an item has one, else the item without its comments
/// and surrounding blanks. Group names (`name:`) are skipped.
fn address_items(value: &str) -> Vec<Item> {
    let bytes = value.as_bytes();
    let mut scan = Scan {
        items: Vec::new(),
        item_start: 0,
        angle: None,
        bare: None,
        comment_inside: false,
    };
    let mut i = 0usize;
    let mut after_comment = false;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'(' => {
                i = skip_comment(bytes, i);
                after_comment = scan.bare.is_some();
                continue;
            }
            b'"' => {
                let end = skip_quoted(bytes, i);
                scan.bare_text(i, end, after_comment);
                after_comment = false;
                i = end;
                continue;
            }
            b'<' => {
                let close = bytes
                    .get(i + 1..)
                    .and_then(|r| r.iter().position(|&c| c == b'>'))
                    .map(|p| i + 1 + p);
                match close {
                    Some(c) => {
                        scan.angle = Some(Item {
                            start: i + 1,
                            end: c,
                        });
                        i = c + 1;
                    }
                    None => i = bytes.len(),
                }
                continue;
            }
            b',' | b';' => {
                scan.close(i);
                scan.item_start = i + 1;
                after_comment = false;
            }
            b':' if scan.angle.is_none() => {
                // A group name ends here: it is not an address.
                scan.bare = None;
                scan.comment_inside = false;
                scan.item_start = i + 1;
                after_comment = false;
            }
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ => {
                scan.bare_text(i, i + 1, after_comment);
                after_comment = false;
            }
        }
        i += 1;
    }
    scan.close(bytes.len());
    let _ = scan.item_start;
    scan.items
}

/// True when `text` has a blank outside quoted strings: then it is not
/// one address (`a b c`), whatever a lenient parser makes of it.
fn has_bare_blank(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                i = skip_quoted(bytes, i);
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// The index after a comment that starts at `i` (nested, with escapes).
fn skip_comment(bytes: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => i += 1,
            b'(' => depth += 1,
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// The index after a quoted string that starts at `i`.
fn skip_quoted(bytes: &[u8], mut i: usize) -> usize {
    i += 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => i += 1,
            b'"' => return i + 1,
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upper_domain(v: &str) -> Option<String> {
        rewrite_address_list::<()>(v, |a| {
            Ok(if a.contains('@') {
                a.to_uppercase()
            } else {
                format!("{a}@origin")
            })
        })
        .unwrap()
    }

    #[test]
    fn header_names() {
        assert_eq!(header_name(b"Subject: hi"), Some("Subject"));
        assert_eq!(header_name(b"Subject : hi"), Some("Subject"));
        assert_eq!(header_name(b"X-A:"), Some("X-A"));
        assert_eq!(header_name(b"not a header"), None);
        assert_eq!(header_name(b": value"), None);
        assert_eq!(header_name(b" Subject: x"), None);
        assert_eq!(header_name(b"From alice Mon"), None);
        assert_eq!(header_name(b"Sub\x00ject: x"), None);
        assert_eq!(header_name(b""), None);
    }

    #[test]
    fn kinds() {
        assert_eq!(Kind::of("BCC"), Kind::Bcc);
        assert!(Kind::of("reply-to").is_sender());
        assert!(Kind::of("Resent-To").is_recipient());
        assert!(Kind::of("Resent-To").is_resent());
        assert_eq!(Kind::of("X-Whatever"), Kind::Other);
    }

    #[test]
    fn values() {
        assert_eq!(header_value(b"To:  bob"), b"bob");
        assert_eq!(header_value(b"To:"), b"");
        assert_eq!(header_value(b"nothing"), b"");
    }

    #[test]
    fn rewrites_bare_angle_and_grouped_addresses() {
        assert_eq!(upper_domain("bob").as_deref(), Some("bob@origin"));
        assert_eq!(
            upper_domain("\"Bob, B.\" <bob> (home), carol@x.org (Carol)").as_deref(),
            Some("\"Bob, B.\" <bob@origin> (home), CAROL@X.ORG (Carol)")
        );
        assert_eq!(
            upper_domain("team: dave, erin@y;").as_deref(),
            Some("team: dave@origin, ERIN@Y;")
        );
        assert_eq!(upper_domain("undisclosed-recipients:;"), None);
        assert_eq!(upper_domain("<>"), None);
        assert_eq!(upper_domain("A@B"), None);
    }

    #[test]
    fn leaves_unparsable_items_alone() {
        assert_eq!(upper_domain("a b c"), None);
        assert_eq!(upper_domain("<unterminated"), None);
        assert_eq!(
            upper_domain("\"quoted user\"@x, ok").as_deref(),
            Some("\"QUOTED USER\"@X, ok@origin")
        );
    }
}
