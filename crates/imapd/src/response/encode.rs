//! Encoding strings in responses: an atom where the grammar allows one and
//! it is safe, else a quoted string, else a literal (or literal8 for
//! octets with NUL); NIL for absent values; sequence sets from numbers.

use crate::parse::lexer::is_astring_char;

/// Append `s` as a string: quoted when it is short 7-bit (or UTF-8 in
/// `utf8` mode) text without CR, LF or NUL, else a literal.
pub fn string(out: &mut Vec<u8>, s: &[u8], utf8: bool) {
    let quotable = s.len() <= 1024
        && s.iter()
            .all(|&c| c != 0 && c != b'\r' && c != b'\n' && (c < 0x80 || utf8))
        && (!utf8 || std::str::from_utf8(s).is_ok());
    if quotable {
        out.push(b'"');
        for &c in s {
            if c == b'"' || c == b'\\' {
                out.push(b'\\');
            }
            out.push(c);
        }
        out.push(b'"');
    } else {
        literal(out, s);
    }
}

/// Append `s` as a literal, `~{n}` when it holds NUL (binary content).
pub fn literal(out: &mut Vec<u8>, s: &[u8]) {
    if s.contains(&0) {
        out.push(b'~');
    }
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// Append an nstring: NIL or a string.
pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>, utf8: bool) {
    match s {
        None => out.extend_from_slice(b"NIL"),
        Some(s) => string(out, s, utf8),
    }
}

/// Append an astring: an atom when every octet is an ASTRING-CHAR and it
/// is not "NIL", else a string.
pub fn astring(out: &mut Vec<u8>, s: &[u8], utf8: bool) {
    if !s.is_empty() && s.iter().all(|&c| is_astring_char(c)) && !s.eq_ignore_ascii_case(b"NIL") {
        out.extend_from_slice(s);
    } else {
        string(out, s, utf8);
    }
}

/// Append a mailbox name: INBOX as an atom, others as astrings (names
/// with `%` or `*` are quoted).
pub fn mailbox(out: &mut Vec<u8>, name: &[u8], utf8: bool) {
    astring(out, name, utf8);
}

/// A compact sequence set for sorted or unsorted numbers: `1:3,7,9:10`.
pub fn seq_set(nums: &[u32]) -> String {
    let mut v = nums.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        let mut end = start;
        while i + 1 < v.len() && v[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = v[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// A sequence set keeping the given order (COPYUID/APPENDUID pair their
/// two sets position by position): runs of consecutive numbers joined.
pub fn seq_list(nums: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < nums.len() {
        let start = nums[i];
        let mut end = start;
        while i + 1 < nums.len() && nums[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = nums[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl Fn(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    }

    #[test]
    fn string_choice() {
        assert_eq!(s(|o| astring(o, b"INBOX", false)), "INBOX");
        assert_eq!(s(|o| astring(o, b"nil", false)), "\"nil\"");
        assert_eq!(s(|o| astring(o, b"", false)), "\"\"");
        assert_eq!(s(|o| astring(o, b"a b\"c\\", false)), "\"a b\\\"c\\\\\"");
        assert_eq!(s(|o| astring(o, b"a*", false)), "\"a*\"");
        assert_eq!(s(|o| string(o, b"l1\r\nl2", false)), "{6}\r\nl1\r\nl2");
        assert_eq!(s(|o| string(o, "ü".as_bytes(), false)), "{2}\r\nü");
        assert_eq!(s(|o| string(o, "ü".as_bytes(), true)), "\"ü\"");
        assert_eq!(s(|o| string(o, b"\xff", true)), "{1}\r\n\u{fffd}");
        assert_eq!(s(|o| literal(o, b"a\0b")), "~{3}\r\na\0b");
        assert_eq!(s(|o| nstring(o, None, false)), "NIL");
    }

    #[test]
    fn seq_sets() {
        assert_eq!(seq_set(&[5, 1, 2, 3, 9, 10, 3]), "1:3,5,9:10");
        assert_eq!(seq_set(&[]), "");
        assert_eq!(seq_list(&[4, 5, 1]), "4:5,1");
        assert_eq!(seq_set(&[u32::MAX, 1]), "1,4294967295");
    }
}
