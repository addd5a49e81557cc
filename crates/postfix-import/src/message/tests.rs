//! Parser tests: real Postfix 3.7 queue files (made by tests/make-fixtures
//! with Debian's Postfix) and hostile input.

use super::*;
use crate::record::encode;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn micros(t: Option<SystemTime>) -> u128 {
    t.unwrap().duration_since(UNIX_EPOCH).unwrap().as_micros()
}

#[test]
fn deferred_file_with_a_done_recipient_and_dsn() {
    let m = parse(&fixture("deferred-dsn"), Shape::Queue).unwrap();
    assert_eq!(m.sender, "a@example.org");
    assert_eq!(micros(m.arrival), 1_796_625_417_548_217);
    assert_eq!(m.done, 1);
    assert_eq!(
        m.recipients,
        vec![Rcpt {
            address: "c@remote.example".into(),
            original: Some("c@remote.example".into()),
            dsn_orcpt: Some("rfc822;c@remote.example".into()),
            dsn_notify: 10,
        }]
    );
    assert_eq!(m.dsn_envid.as_deref(), Some("env-42"));
    assert_eq!(m.dsn_ret, Some(2));
    assert!(
        m.content
            .starts_with(b"Received: by fixture.example (Postfix, from userid 0)\n\tid ")
    );
    assert!(m.content.ends_with(
        b"Subject: deferred\nMessage-Id: <20261207063657.87D899A2504@fixture.example>\n\
          Date: Mon,  7 Dec 2026 06:36:57 +0000 (UTC)\n\nline one\n"
    ));
    assert_eq!(
        m.attributes,
        vec![("rewrite_context".to_owned(), "local".to_owned())]
    );
}

#[test]
fn held_file() {
    let m = parse(&fixture("hold"), Shape::Queue).unwrap();
    assert_eq!(m.sender, "h@example.org");
    assert_eq!(m.done, 0);
    assert_eq!(m.recipients.len(), 1);
    assert_eq!(m.recipients[0].address, "d@remote.example");
    assert!(m.content.ends_with(b"\n\nheld body\n"));
}

#[test]
fn maildrop_files() {
    let m = parse(&fixture("maildrop"), Shape::Pickup).unwrap();
    assert_eq!(m.sender, "m@example.org");
    assert_eq!(m.full_name.as_deref(), Some("Mail Drop"));
    assert_eq!(m.recipients.len(), 1);
    assert_eq!(m.recipients[0].dsn_notify, 1);
    assert_eq!(
        m.content,
        b"From: m@example.org\nSubject: maildrop\n\nfrom the maildrop\n"
    );
    // sendmail -t: the recipients are in the extracted segment.
    let t = parse(&fixture("maildrop-t"), Shape::Pickup).unwrap();
    let rcpts: Vec<_> = t.recipients.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(rcpts, ["f@remote.example", "g@remote.example"]);
    // A maildrop file is not a queue file (no size record first).
    assert!(matches!(
        parse(&fixture("maildrop"), Shape::Queue),
        Err(ParseError::Malformed { offset: 0, .. })
    ));
}

/// A queue file built by hand: a header appended behind pointer records
/// (as cleanup does for milter-inserted headers) and a recipient appended
/// after the end record.
#[test]
fn pointer_records_in_content_and_envelope() {
    const PLACEHOLDER: &[u8] = b"              0";
    let mut f = encode(b'C', b"0 0 1 0 0 0");
    f.extend(encode(b'T', b"1700000000 5"));
    f.extend(encode(b'S', b""));
    f.extend(encode(b'R', b"first@example.net"));
    let env_ptr = f.len();
    f.extend(encode(b'p', PLACEHOLDER));
    let after_env_ptr = f.len();
    f.extend(encode(b'M', b""));
    let hdr_ptr = f.len();
    f.extend(encode(b'p', PLACEHOLDER));
    let body = f.len();
    f.extend(encode(b'N', b""));
    f.extend(encode(b'L', b"long "));
    f.extend(encode(b'N', b"line"));
    f.extend(encode(b'w', b"pad"));
    f.extend(encode(b'X', b""));
    f.extend(encode(b'E', b""));
    // Appended header, then back to the body.
    let hdr = f.len();
    f.extend(encode(b'N', b"X-Added: yes"));
    f.extend(encode(b'p', format!("{body:15}").as_bytes()));
    // Appended recipient, then back behind the envelope pointer.
    let rcpt = f.len();
    f.extend(encode(b'R', b"second@example.net"));
    f.extend(encode(b'p', format!("{after_env_ptr:15}").as_bytes()));
    let patch = |f: &mut Vec<u8>, at: usize, to: usize| {
        let p = encode(b'p', format!("{to:15}").as_bytes());
        f.splice(at..at + p.len(), p);
    };
    patch(&mut f, env_ptr, rcpt);
    patch(&mut f, hdr_ptr, hdr);
    let m = parse(&f, Shape::Queue).unwrap();
    assert_eq!(m.sender, "");
    let rcpts: Vec<_> = m.recipients.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(rcpts, ["first@example.net", "second@example.net"]);
    assert_eq!(m.content, b"X-Added: yes\n\nlong line\n");
    assert_eq!(micros(m.arrival), 1_700_000_000_000_005);
}

#[test]
fn what_our_queue_cannot_carry_is_unsafe() {
    let base = |extra: Vec<u8>| {
        let mut f = encode(b'C', b"0 0 1 0 0 0");
        f.extend(encode(b'T', b"1700000000 0"));
        f.extend(extra);
        f.extend(encode(b'S', b"a@example.org"));
        f.extend(encode(b'R', b"b@example.org"));
        f.extend(encode(b'M', b""));
        f.extend(encode(b'X', b""));
        f.extend(encode(b'E', b""));
        f
    };
    for (extra, want) in [
        (
            encode(b'L', b"smtp-amavis:[127.0.0.1]:10024"),
            "content filter",
        ),
        (encode(b'V', b"+="), "VERP"),
        (encode(b'>', b"x@example.org"), "redirected"),
    ] {
        match parse(&base(extra), Shape::Queue) {
            Err(ParseError::Unsafe(why)) => assert!(why.contains(want), "{why}"),
            other => panic!("{want}: {other:?}"),
        }
    }
    assert!(parse(&base(Vec::new()), Shape::Queue).is_ok());
}

#[test]
fn hostile_files_are_clear_errors() {
    let real = fixture("deferred-dsn");
    // Every truncation of a real file is an error (never a panic, never a
    // message without its end record).
    for len in 0..real.len() {
        let e = parse(&real[..len], Shape::Queue).unwrap_err();
        assert!(!e.to_string().is_empty());
    }
    // Every single-byte change either still parses or is an error.
    for at in 0..real.len() {
        for v in [0u8, 0x7f, 0x80, 0xff, b'p', b'E'] {
            let mut f = real.clone();
            f[at] = v;
            let _ = parse(&f, Shape::Queue);
        }
    }
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (Vec::new(), "no end record"),
        (b"garbage that is no queue file".to_vec(), "damaged record"),
        (b"\x00\x01garbage".to_vec(), "first record"),
        (
            [encode(b'C', b""), encode(b'T', b"soon")].concat(),
            "bad time",
        ),
        (
            [encode(b'C', b""), encode(b'T', b"1 0"), encode(b'X', b"")].concat(),
            "unexpected record 'X'",
        ),
        (
            [encode(b'C', b""), encode(b'A', b"novalue")].concat(),
            "bad attribute",
        ),
        (
            [encode(b'C', b""), encode(b'n', b"99")].concat(),
            "DSN notify",
        ),
        (
            [
                encode(b'C', b""),
                encode(b'T', b"1 0"),
                encode(b'M', b""),
                encode(b'X', b""),
                encode(b'E', b""),
            ]
            .concat(),
            "no sender",
        ),
        (
            [encode(b'C', b""), encode(b'S', b"a"), encode(b'S', b"b")].concat(),
            "second sender",
        ),
        (
            [encode(b'C', b""), encode(b'S', &[b'a'; 70_000])].concat(),
            "too long",
        ),
    ];
    for (bytes, want) in cases {
        let e = parse(&bytes, Shape::Queue).unwrap_err().to_string();
        assert!(e.contains(want), "{want}: {e}");
    }
}
