//! BODY[section]<partial>, BINARY, BINARY.SIZE and RFC822.HEADER/TEXT of
//! every message in tests/corpus compared with Dovecot 2.3.19's answers
//! (stored as *.sections: item, length, Dovecot's FETCH response).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use imapd::parse::{CommandBody, Event, FetchAttr, Parser};
use imapd::response::fetch::{FetchInput, fetch_response};
use imapd::structure::{parse, to_crlf};
use std::path::Path;

/// Items where we differ from Dovecot on purpose, with the reason.
const KNOWN: &[(&str, &str, &str)] = &[
    (
        "02-nested.eml",
        "BINARY.PEEK[1]",
        "BINARY of a multipart: Dovecot decodes the parts inside and rewrites their CTE headers; we send the part as stored",
    ),
    ("02-nested.eml", "BINARY.SIZE[1]", "the same"),
    (
        "14-empty-parts.eml",
        "*",
        "mail-parser drops the empty first part, so part numbers shift",
    ),
];

fn attrs(item: &str) -> Vec<FetchAttr> {
    match Parser::default()
        .feed(format!("a FETCH 1 ({item})\r\n").as_bytes())
        .1
    {
        Event::Command(c) => match c.body {
            CommandBody::Fetch { attrs, .. } => attrs,
            other => panic!("{other:?}"),
        },
        e => panic!("{e:?}"),
    }
}

fn ours(raw: &[u8], item: &str) -> Vec<u8> {
    let raw = to_crlf(raw);
    let msg = parse(&raw);
    let flags = vec!["\\Seen".to_string()];
    let input = FetchInput {
        seq: 1,
        uid: 1,
        flags: &flags,
        recent: false,
        internal_date: 0,
        zone_minutes: 0,
        modseq: 1,
        raw: &raw,
        msg: msg.as_ref(),
        utf8: false,
    };
    let mut out = Vec::new();
    match fetch_response(&mut out, &attrs(item), &input, false) {
        Ok(()) => out,
        Err(e) => format!("error {e:?}").into_bytes(),
    }
}

#[test]
fn sections_match_dovecot() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
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
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let raw = std::fs::read(p).unwrap();
        let d = std::fs::read(p.with_extension("sections")).unwrap();
        let mut pos = 0;
        while pos < d.len() {
            let nl = pos + d[pos..].iter().position(|&c| c == b'\n').unwrap();
            let head = String::from_utf8_lossy(&d[pos..nl]).into_owned();
            let (item, len) = head.split_once('\t').unwrap();
            let len: usize = len.parse().unwrap();
            let want: Vec<u8> = d[nl + 1..nl + 1 + len].to_vec();
            pos = nl + 1 + len;
            if KNOWN
                .iter()
                .any(|(f, i, _)| *f == name && (*i == item || *i == "*"))
            {
                continue;
            }
            let got = ours(&raw, item);
            checked += 1;
            // Dovecot sends BINARY data as literal8 always; we only when it holds NUL.
            let want = String::from_utf8_lossy(&want).replace("~{", "{");
            let got = String::from_utf8_lossy(&got).into_owned();
            if got != want {
                failures.push(format!(
                    "{name} {item}\n ours:    {got:?}\n dovecot: {want:?}"
                ));
            }
        }
    }
    assert!(checked > 300, "{checked}");
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
