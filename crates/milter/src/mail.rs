//! The message as milters see and change it: envelope sender and
//! recipients, the header list and the body, with the modification
//! actions applied the way Postfix's cleanup_milter applies them.

/// A header: its name and everything after the colon, as in the message
/// (leading space and folds, lines joined by `\n`).
pub type Header = (String, String);

/// One modification a milter asked for at end of message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// SMFIR_ADDHEADER: append.
    AddHeader(String, String),
    /// SMFIR_INSHEADER: insert at this position (0: first, counting our
    /// own hidden headers).
    InsertHeader(usize, String, String),
    /// SMFIR_CHGHEADER: the n-th (from 1) header of this name, among the
    /// headers the milter saw; an empty value deletes it.
    ChangeHeader(usize, String, String),
    /// SMFIR_REPLBODY: the new body (LF line ends).
    ReplaceBody(Vec<u8>),
    /// SMFIR_ADDRCPT / SMFIR_ADDRCPT_PAR: a new recipient (ESMTP args
    /// ignored).
    AddRecipient(String),
    /// SMFIR_DELRCPT.
    DeleteRecipient(String),
    /// SMFIR_CHGFROM: a new envelope sender (ESMTP args ignored).
    ChangeSender(String),
    /// SMFIR_QUARANTINE: hold the message, with the milter's reason.
    Quarantine(String),
}

/// A message between milters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mail {
    /// The envelope sender (empty for `<>`).
    pub sender: String,
    /// The envelope recipients.
    pub recipients: Vec<String>,
    /// The headers, in order.
    pub headers: Vec<Header>,
    /// The header milters do not see (our Received), by position.
    pub hidden: Option<usize>,
    /// The body, LF line ends.
    pub body: Vec<u8>,
    /// Set by a quarantine action: the reason.
    pub quarantine: Option<String>,
}

impl Mail {
    /// Splits message `content` (LF line ends) into headers and body.
    /// With `hide_first`, the first header (our Received) is not shown
    /// to milters.
    pub fn parse(sender: &str, recipients: Vec<String>, content: &[u8], hide_first: bool) -> Mail {
        let mut headers: Vec<Header> = Vec::new();
        let mut pos = 0usize;
        let mut body_start = content.len();
        while pos < content.len() {
            let end = content
                .get(pos..)
                .and_then(|r| r.iter().position(|b| *b == b'\n'))
                .map_or(content.len(), |i| pos + i);
            let line = content.get(pos..end).unwrap_or_default();
            let next = (end + 1).min(content.len());
            if line.is_empty() {
                body_start = next;
                break;
            }
            let text = String::from_utf8_lossy(line);
            if line.first().is_some_and(|b| *b == b' ' || *b == b'\t')
                && let Some(last) = headers.last_mut()
            {
                last.1.push('\n');
                last.1.push_str(&text);
                pos = next;
                continue;
            }
            match text.split_once(':') {
                Some((n, v)) if !n.is_empty() && !n.contains(' ') => {
                    headers.push((n.to_string(), v.to_string()));
                }
                _ => {
                    // Not a header: the body starts here (no blank line).
                    body_start = pos;
                    break;
                }
            }
            pos = next;
        }
        Mail {
            sender: sender.to_string(),
            recipients,
            hidden: (hide_first && !headers.is_empty()).then_some(0),
            headers,
            body: content.get(body_start..).unwrap_or_default().to_vec(),
            quarantine: None,
        }
    }

    /// The message again: headers, a blank line, the body.
    pub fn content(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 1024);
        for (n, v) in &self.headers {
            out.extend_from_slice(n.as_bytes());
            out.push(b':');
            out.extend_from_slice(v.as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(&self.body);
        out
    }

    /// The headers milters see.
    pub fn visible_headers(&self) -> impl Iterator<Item = &Header> {
        let hidden = self.hidden;
        self.headers
            .iter()
            .enumerate()
            .filter(move |(i, _)| Some(*i) != hidden)
            .map(|(_, h)| h)
    }

    /// Applies one modification.
    pub fn apply(&mut self, edit: Edit) {
        match edit {
            Edit::AddHeader(n, v) => self.headers.push((n, header_value(&v))),
            Edit::InsertHeader(i, n, v) => {
                let i = i.min(self.headers.len());
                self.headers.insert(i, (n, header_value(&v)));
                if let Some(h) = self.hidden.as_mut()
                    && *h >= i
                {
                    *h += 1;
                }
            }
            Edit::ChangeHeader(idx, n, v) => {
                let hidden = self.hidden;
                let found = self
                    .headers
                    .iter()
                    .enumerate()
                    .filter(|(i, (hn, _))| Some(*i) != hidden && hn.eq_ignore_ascii_case(&n))
                    .nth(idx.saturating_sub(1))
                    .map(|(i, _)| i);
                match (found, v.is_empty()) {
                    (Some(i), true) => {
                        self.headers.remove(i);
                        if let Some(h) = self.hidden.as_mut()
                            && *h > i
                        {
                            *h -= 1;
                        }
                    }
                    (Some(i), false) => {
                        if let Some(h) = self.headers.get_mut(i) {
                            *h = (n, header_value(&v));
                        }
                    }
                    // Sendmail and Postfix: a missing header is added.
                    (None, false) => self.headers.push((n, header_value(&v))),
                    (None, true) => {}
                }
            }
            Edit::ReplaceBody(b) => self.body = b,
            Edit::AddRecipient(r) => {
                let r = strip_brackets(&r);
                if !self.recipients.contains(&r) {
                    self.recipients.push(r);
                }
            }
            Edit::DeleteRecipient(r) => {
                let r = strip_brackets(&r);
                self.recipients.retain(|x| !x.eq_ignore_ascii_case(&r));
            }
            Edit::ChangeSender(s) => self.sender = strip_brackets(&s),
            Edit::Quarantine(reason) => self.quarantine = Some(reason),
        }
    }
}

/// A milter's header value as stored: one space after the colon unless
/// the value brings its own, CRLF folds made LF.
fn header_value(v: &str) -> String {
    let v = v.replace("\r\n", "\n");
    if v.starts_with([' ', '\t']) {
        v
    } else {
        format!(" {v}")
    }
}

/// `<a@b>` -> `a@b`.
fn strip_brackets(a: &str) -> String {
    let a = a.trim();
    a.strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(a)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"Received: from x\n\tby y\nSubject: hi\nX-A: 1\nX-A: 2\n\nbody\n";

    #[test]
    fn parse_and_rebuild() {
        let m = Mail::parse("s@x", vec!["r@y".into()], MSG, true);
        assert_eq!(m.headers.len(), 4);
        assert_eq!(m.headers[0].1, " from x\n\tby y");
        assert_eq!(m.visible_headers().count(), 3);
        assert_eq!(m.body, b"body\n");
        assert_eq!(m.content(), MSG);
        let m = Mail::parse("", vec![], b"no header line\n", true);
        assert!(m.headers.is_empty());
        assert_eq!(m.body, b"no header line\n");
    }

    #[test]
    fn edits() {
        let mut m = Mail::parse("s@x", vec!["r@y".into()], MSG, true);
        m.apply(Edit::InsertHeader(0, "DKIM-Signature".into(), "v=1".into()));
        assert_eq!(m.headers[0], ("DKIM-Signature".into(), " v=1".into()));
        // The hidden Received is still hidden; DKIM is above it.
        assert_eq!(m.hidden, Some(1));
        assert_eq!(m.visible_headers().next().unwrap().0, "DKIM-Signature");
        m.apply(Edit::ChangeHeader(2, "x-a".into(), "two".into()));
        m.apply(Edit::ChangeHeader(1, "X-A".into(), String::new()));
        m.apply(Edit::ChangeHeader(1, "X-New".into(), "n".into()));
        m.apply(Edit::AddHeader("X-Added".into(), "yes".into()));
        let text = String::from_utf8(m.content()).unwrap();
        assert_eq!(
            text,
            "DKIM-Signature: v=1\nReceived: from x\n\tby y\nSubject: hi\nx-a: two\nX-New: n\nX-Added: yes\n\nbody\n"
        );
        m.apply(Edit::AddRecipient("<new@y>".into()));
        m.apply(Edit::DeleteRecipient("<r@y>".into()));
        m.apply(Edit::ChangeSender("<other@x>".into()));
        m.apply(Edit::ReplaceBody(b"new\n".to_vec()));
        m.apply(Edit::Quarantine("spam".into()));
        assert_eq!(m.recipients, ["new@y"]);
        assert_eq!(m.sender, "other@x");
        assert_eq!(m.body, b"new\n");
        assert_eq!(m.quarantine.as_deref(), Some("spam"));
    }
}
