//! Just enough MIME structure for mime_header_checks and
//! nested_header_checks (Postfix's mime_state): multipart boundaries,
//! the header blocks of body parts, and message/rfc822 parts whose
//! headers are "nested" headers. Nothing is decoded or converted.

/// Deepest multipart nesting followed (Postfix's mime_nesting_limit).
pub(crate) const NESTING_LIMIT: usize = 100;

/// Longest boundary kept (Postfix's mime_boundary_length_limit).
pub(crate) const BOUNDARY_LIMIT: usize = 2048;

/// What a Content-Type header says about the content after the headers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum PartType {
    /// multipart/* with its boundary.
    Multipart(Vec<u8>),
    /// message/rfc822 (or message/global): headers of a nested message follow.
    Message,
    /// Anything else.
    #[default]
    Other,
}

/// True for the headers Postfix's header_opts marks as MIME headers
/// (Content-*, MIME-Version): mime_header_checks applies to them.
pub(crate) fn is_mime_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "mime-version"
        || matches!(
            n.as_str(),
            "content-description"
                | "content-disposition"
                | "content-id"
                | "content-transfer-encoding"
                | "content-type"
        )
}

/// Reads a Content-Type value.
pub(crate) fn content_type(value: &[u8]) -> PartType {
    let text = String::from_utf8_lossy(value);
    let mut params = text.split(';');
    let kind = params
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if kind == "message/rfc822" || kind == "message/global" {
        return PartType::Message;
    }
    if !kind.starts_with("multipart/") {
        return PartType::Other;
    }
    for p in params {
        let Some((name, val)) = p.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("boundary") {
            continue;
        }
        let val = val.trim();
        let b = match val.strip_prefix('"') {
            Some(q) => q.split('"').next().unwrap_or_default(),
            None => val.split_whitespace().next().unwrap_or_default(),
        };
        if b.is_empty() || b.len() > BOUNDARY_LIMIT {
            return PartType::Other;
        }
        return PartType::Multipart(b.as_bytes().to_vec());
    }
    PartType::Other
}

/// What a body line is, given the open boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Boundary {
    /// `--b`: a new part starts (its headers follow); the index of the
    /// boundary in the stack.
    Next(usize),
    /// `--b--`: the multipart at this index ends.
    Close(usize),
    /// Not a boundary.
    None,
}

/// Classifies a body line against the stack of open boundaries (inner
/// boundaries last); trailing blanks after a boundary are allowed.
pub(crate) fn boundary(line: &[u8], open: &[Vec<u8>]) -> Boundary {
    let Some(rest) = line.strip_prefix(b"--") else {
        return Boundary::None;
    };
    for (i, b) in open.iter().enumerate().rev() {
        let Some(after) = rest.strip_prefix(b.as_slice()) else {
            continue;
        };
        let blank = |s: &[u8]| s.iter().all(|c| c.is_ascii_whitespace());
        if let Some(tail) = after.strip_prefix(b"--")
            && blank(tail)
        {
            return Boundary::Close(i);
        }
        if blank(after) {
            return Boundary::Next(i);
        }
    }
    Boundary::None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(
            content_type(b"multipart/mixed; boundary=\"=_abc d\""),
            PartType::Multipart(b"=_abc d".to_vec())
        );
        assert_eq!(
            content_type(b"Multipart/Alternative;\n\tBOUNDARY=xyz; charset=x"),
            PartType::Multipart(b"xyz".to_vec())
        );
        assert_eq!(content_type(b"message/rfc822"), PartType::Message);
        assert_eq!(content_type(b"text/plain; charset=utf-8"), PartType::Other);
        assert_eq!(content_type(b"multipart/mixed"), PartType::Other);
        assert_eq!(content_type(b"\xff\xfe"), PartType::Other);
    }

    #[test]
    fn boundaries() {
        let open = vec![b"outer".to_vec(), b"inner".to_vec()];
        assert_eq!(boundary(b"--inner", &open), Boundary::Next(1));
        assert_eq!(boundary(b"--outer  ", &open), Boundary::Next(0));
        assert_eq!(boundary(b"--inner--", &open), Boundary::Close(1));
        assert_eq!(boundary(b"--innerx", &open), Boundary::None);
        assert_eq!(boundary(b"inner", &open), Boundary::None);
        assert!(is_mime_header("Content-Type") && !is_mime_header("Subject"));
    }
}
