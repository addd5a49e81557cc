//! ENVELOPE, BODYSTRUCTURE, BODY and RFC822.SIZE of the MIME shapes in
//! tests/corpus compared with what Dovecot 2.3.19 answers for the same
//! messages (its answers are stored beside them as *.dovecot, captured
//! with Debian's dovecot-imapd over a Maildir holding the corpus).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use imapd::parse::FetchAttr;
use imapd::response::fetch::{FetchInput, fetch_response};
use imapd::structure::{parse, to_crlf};
use std::path::Path;

fn ours(raw: &[u8]) -> Vec<u8> {
    let raw = to_crlf(raw);
    let msg = parse(&raw);
    let input = FetchInput {
        seq: 1,
        uid: 1,
        flags: &[],
        recent: false,
        internal_date: 0,
        zone_minutes: 0,
        modseq: 1,
        raw: &raw,
        msg: msg.as_ref(),
        utf8: false,
    };
    let attrs = [
        FetchAttr::Rfc822Size,
        FetchAttr::Envelope,
        FetchAttr::BodyStructure,
        FetchAttr::Body,
    ];
    let mut out = Vec::new();
    fetch_response(&mut out, &attrs, &input, false).expect("fetch");
    out[b"* 1 FETCH (".len()..out.len() - 3].to_vec()
}

/// Literals turned into quoted strings where that is possible: Dovecot
/// sends long strings as literals, we quote them; both mean the same.
fn normalize(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if let Some((text, next)) = literal_at(b, i) {
            out.push(b'"');
            for &c in text {
                if c == b'"' || c == b'\\' {
                    out.push(b'\\');
                }
                out.push(c);
            }
            out.push(b'"');
            i = next;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// A literal at `i` whose text could be quoted, and the offset after it.
fn literal_at(b: &[u8], i: usize) -> Option<(&[u8], usize)> {
    if b[i] != b'{' {
        return None;
    }
    let close = b[i..].iter().position(|&c| c == b'}')?;
    let n: usize = std::str::from_utf8(&b[i + 1..i + close])
        .ok()?
        .parse()
        .ok()?;
    let start = i + close + 3;
    if b.get(i + close + 1..start) != Some(&b"\r\n"[..]) || start + n > b.len() {
        return None;
    }
    let text = &b[start..start + n];
    let quotable = !text.iter().any(|&c| c == b'\r' || c == b'\n' || c >= 0x80);
    quotable.then_some((text, start + n))
}

/// Where we differ from Dovecot on purpose: (file, Dovecot's text, ours, why).
const KNOWN: &[(&str, &str, &str, &str)] = &[
    (
        "13-types.eml",
        "(\"text\" \"\" (",
        "(\"text\" \"plain\" (",
        "Content-Type: text (no subtype) is invalid; RFC 2045 5.2 makes it text/plain, Dovecot shows subtype \"\"",
    ),
    (
        "14-empty-parts.eml",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)(\"text\"",
        "(\"text\"",
        "mail-parser 0.11.9 drops a body part that has neither header nor body (--e right after --e)",
    ),
    (
        "14-empty-parts.eml",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)(\"text\"",
        "(\"text\"",
        "the same in BODY",
    ),
];

#[test]
fn corpus_matches_dovecot() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    let mut failures = Vec::new();
    let mut checked = 0;
    for p in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
    {
        let raw = std::fs::read(p).expect("read");
        let mut want =
            normalize(&std::fs::read(p.with_extension("dovecot")).expect("dovecot answer"));
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        for (file, theirs, ours_text, _why) in KNOWN {
            if *file == name {
                let s = String::from_utf8_lossy(&want).replace(theirs, ours_text);
                want = s.into_bytes();
            }
        }
        let got = normalize(&ours(&raw));
        checked += 1;
        if got != want {
            failures.push(format!(
                "{}\n ours:    {}\n dovecot: {}",
                p.display(),
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            ));
        }
    }
    assert!(checked >= 9);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
