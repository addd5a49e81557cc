//! Server responses: status responses (tagged and untagged OK, NO, BAD,
//! BYE, PREAUTH) with response codes, continuation requests, and the
//! string encoders and modified UTF-7 conversion the data responses use.

pub mod data;
pub mod date;
pub mod encode;
pub mod fetch;
pub mod mutf7;

/// The status of a status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// OK.
    Ok,
    /// NO.
    No,
    /// BAD.
    Bad,
    /// BYE (untagged only).
    Bye,
    /// PREAUTH (greeting only).
    PreAuth,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
            Status::Bye => "BYE",
            Status::PreAuth => "PREAUTH",
        }
    }
}

/// Write `tag STATUS [code] text\r\n` (`tag` None: untagged `*`). The
/// code is written as given, inside brackets; the text is cleaned of CR,
/// LF and NUL so client-supplied text cannot inject a line.
pub fn status(out: &mut Vec<u8>, tag: Option<&str>, st: Status, code: Option<&str>, text: &str) {
    out.extend_from_slice(tag.unwrap_or("*").as_bytes());
    out.push(b' ');
    out.extend_from_slice(st.as_str().as_bytes());
    if let Some(code) = code {
        out.extend_from_slice(b" [");
        push_clean(out, code);
        out.push(b']');
    }
    out.push(b' ');
    push_clean(out, if text.is_empty() { "done" } else { text });
    out.extend_from_slice(b"\r\n");
}

/// Write a continuation request `+ text\r\n`.
pub fn continuation(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"+ ");
    push_clean(out, text);
    out.extend_from_slice(b"\r\n");
}

/// Write an untagged data response `* data\r\n` (data already encoded).
pub fn untagged(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(b"* ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

fn push_clean(out: &mut Vec<u8>, s: &str) {
    out.extend(s.bytes().map(|c| {
        if c == b'\r' || c == b'\n' || c == 0 {
            b' '
        } else {
            c
        }
    }));
}

/// Encode a mailbox name for this client: UTF-8 for IMAP4rev2 or
/// UTF8=ACCEPT clients, modified UTF-7 otherwise.
pub fn mailbox_name(out: &mut Vec<u8>, name: &str, utf8: bool) {
    if utf8 {
        encode::mailbox(out, name.as_bytes(), true);
    } else {
        encode::mailbox(out, mutf7::encode(name).as_bytes(), false);
    }
}

/// Decode a mailbox name a client sent: UTF-8 clients send UTF-8 (which
/// must be valid), others modified UTF-7. `None`: not a valid name.
pub fn decode_mailbox_name(name: &[u8], utf8: bool) -> Option<String> {
    if utf8 {
        // A UTF8=ACCEPT client may still send modified UTF-7 names (RFC 6855 3).
        let s = std::str::from_utf8(name).ok()?;
        if s.is_ascii() && s.contains('&') {
            return mutf7::decode(name).or_else(|| Some(s.to_string()));
        }
        Some(s.to_string())
    } else {
        mutf7::decode(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        let mut o = Vec::new();
        status(
            &mut o,
            Some("a1"),
            Status::Ok,
            Some("READ-WRITE"),
            "SELECT completed",
        );
        status(&mut o, None, Status::Bye, None, "bye\r\nx");
        continuation(&mut o, "Ready");
        untagged(&mut o, b"3 EXISTS");
        assert_eq!(
            o,
            b"a1 OK [READ-WRITE] SELECT completed\r\n* BYE bye  x\r\n+ Ready\r\n* 3 EXISTS\r\n"
        );
    }

    #[test]
    fn mailbox_names() {
        let mut o = Vec::new();
        mailbox_name(&mut o, "Entwürfe", false);
        o.push(b' ');
        mailbox_name(&mut o, "Entwürfe", true);
        o.push(b' ');
        mailbox_name(&mut o, "A B", false);
        assert_eq!(
            String::from_utf8_lossy(&o),
            "Entw&APw-rfe \"Entwürfe\" \"A B\""
        );
        assert_eq!(
            decode_mailbox_name(b"Entw&APw-rfe", false).as_deref(),
            Some("Entwürfe")
        );
        assert_eq!(
            decode_mailbox_name("Entwürfe".as_bytes(), true).as_deref(),
            Some("Entwürfe")
        );
        assert_eq!(
            decode_mailbox_name(b"Entw&APw-rfe", true).as_deref(),
            Some("Entwürfe")
        );
        assert_eq!(decode_mailbox_name(b"\xff", true), None);
    }
}
