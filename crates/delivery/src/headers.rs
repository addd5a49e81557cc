//! Reading the Delivered-To headers of a message (Postfix's
//! delivered_hdr.c) and building the lines a delivery prepends.

use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Read};

/// How much of the header is read looking for Delivered-To.
pub const HEADER_SCAN_LIMIT: u64 = 1 << 20;

/// Most Delivered-To values remembered.
pub const MAX_DELIVERED: usize = 1000;

/// The Delivered-To values in the message header, lowercased and trimmed.
/// Reading stops at the first empty line, at a line that is not a header,
/// or after [`HEADER_SCAN_LIMIT`] bytes.
///
/// # Errors
/// Reading the content failed.
pub fn delivered_to(content: &mut dyn Read) -> io::Result<HashSet<String>> {
    let mut found = HashSet::new();
    let mut reader = BufReader::new(content.take(HEADER_SCAN_LIMIT));
    let mut line = Vec::new();
    loop {
        line.clear();
        // Lines longer than this cannot be a Delivered-To we care about;
        // they are skipped piece by piece.
        let n = (&mut reader).take(8192).read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        let complete = line.last() == Some(&b'\n');
        let text = line.trim_ascii_end();
        if text.is_empty() {
            break;
        }
        if let Some(value) = header_value(text, "delivered-to") {
            if found.len() < MAX_DELIVERED {
                found.insert(String::from_utf8_lossy(value).trim().to_lowercase());
            }
        } else if !text.starts_with(b" ") && !text.starts_with(b"\t") && !is_header(text) {
            break;
        }
        if !complete {
            // Skip the rest of an overlong line.
            let mut rest = Vec::new();
            loop {
                rest.clear();
                let m = (&mut reader).take(8192).read_until(b'\n', &mut rest)?;
                if m == 0 || rest.last() == Some(&b'\n') {
                    break;
                }
            }
        }
    }
    Ok(found)
}

fn is_header(line: &[u8]) -> bool {
    match line.iter().position(|b| *b == b':') {
        Some(colon) if colon > 0 => line
            .get(..colon)
            .is_some_and(|name| name.iter().all(|b| b.is_ascii_graphic())),
        _ => false,
    }
}

fn header_value<'a>(line: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let head = line.get(..name.len())?;
    if !head.eq_ignore_ascii_case(name.as_bytes()) {
        return None;
    }
    let rest = line.get(name.len()..)?.trim_ascii_start();
    rest.strip_prefix(b":")
}

/// The form of an address written in Delivered-To and compared against
/// it: external (quoted where needed), lowercased.
pub fn delivered_form(address: &str) -> String {
    address::quote_822_local(address).to_lowercase()
}

/// Which lines to prepend.
#[derive(Debug, Clone, Copy, Default)]
pub struct Prepend {
    /// `Return-Path: <sender>`.
    pub return_path: bool,
    /// `X-Original-To: original` (when enable_original_recipient and known).
    pub original_to: bool,
    /// `Delivered-To: recipient`.
    pub delivered_to: bool,
}

/// The lines, in Postfix's order: Return-Path, X-Original-To, Delivered-To.
/// Addresses are written in external form; CR and LF (which cannot come
/// from a valid queue file) are replaced so a line stays one line.
pub fn prepend_lines(which: Prepend, sender: &str, original: &str, recipient: &str) -> Vec<String> {
    let clean = |s: String| s.replace(['\r', '\n'], " ");
    let mut out = Vec::new();
    if which.return_path {
        out.push(clean(format!(
            "Return-Path: <{}>",
            address::quote_822_local(sender)
        )));
    }
    if which.original_to && !original.is_empty() {
        out.push(clean(format!(
            "X-Original-To: {}",
            address::quote_822_local(original)
        )));
    }
    if which.delivered_to {
        out.push(clean(format!(
            "Delivered-To: {}",
            delivered_form(recipient)
        )));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_delivered_to_in_header_only() {
        let msg = "Received: x\n\ty\nDelivered-To: Bob@Example.org\ndelivered-to:  c@d \n\
                   Subject: s\n\nDelivered-To: body@x\n";
        let set = delivered_to(&mut msg.as_bytes()).unwrap();
        assert_eq!(set.len(), 2);
        assert!(set.contains("bob@example.org"));
        assert!(set.contains("c@d"));
    }

    #[test]
    fn stops_at_non_header_and_survives_long_lines() {
        let long = "X".repeat(100_000);
        let msg = format!("X-Long: {long}\nDelivered-To: a@b\nnot a header\nDelivered-To: c@d\n");
        let set = delivered_to(&mut msg.as_bytes()).unwrap();
        assert!(set.contains("a@b"));
        assert!(!set.contains("c@d"));
    }

    #[test]
    fn lines_in_order() {
        let all = Prepend {
            return_path: true,
            original_to: true,
            delivered_to: true,
        };
        assert_eq!(
            prepend_lines(all, "", "Bob", "Bob@Example.org"),
            [
                "Return-Path: <>",
                "X-Original-To: Bob",
                "Delivered-To: bob@example.org"
            ]
        );
        let lines = prepend_lines(all, "a b@x", "", "c\n@d");
        assert_eq!(lines[0], "Return-Path: <\"a b\"@x>");
        assert_eq!(lines.len(), 2);
        assert!(!lines[1].contains('\n'));
    }
}
