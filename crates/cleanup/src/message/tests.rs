use super::*;
use crate::addr::tests::AppendOrigin;
use crate::settings::tests::settings;
use proptest::prelude::*;
use std::time::{Duration, UNIX_EPOCH};

fn info(flags: u32) -> Info {
    Info {
        queue_id: "QID123".into(),
        sender: "alice@origin.example".into(),
        flags,
        full_name: None,
        origin: "local".into(),
        log_extra: String::new(),
        first_recipient: Some("bob@origin.example".into()),
        header_rewrite: Some(Context::Local),
        received: "Received: by mail.example.org (Postfix, from userid 1000)\n\tid QID123; DATE"
            .into(),
        arrival: UNIX_EPOCH + Duration::from_secs(1_794_000_000),
    }
}

/// Runs content through a processor; output and the processor.
fn run_with<'s>(s: &'s Settings, info: Info, chunks: &[&[u8]]) -> (Vec<u8>, Message<'s>) {
    let mut rw = AppendOrigin;
    let mut mapper = Mapper::new(s, &mut rw);
    let mut m = Message::new(s, info);
    let mut out = Vec::new();
    for c in chunks {
        m.feed(c, &mut mapper, &mut out);
    }
    m.end(&mut mapper, &mut out);
    (out, m)
}

fn run(main_cf: &str, content: &str) -> (String, bool) {
    let s = settings(main_cf);
    let (out, m) = run_with(&s, info(flags::LOCAL_SUBMISSION), &[content.as_bytes()]);
    (String::from_utf8(out).unwrap(), m.failure().is_some())
}

fn headers(out: &str) -> Vec<&str> {
    out.split("\n\n").next().unwrap().lines().collect()
}

#[test]
fn adds_missing_headers_after_the_client_headers() {
    let (out, _) = run("", "Subject: hi\n\nbody\n");
    let h = headers(&out);
    assert_eq!(
        h[0],
        "Received: by mail.example.org (Postfix, from userid 1000)"
    );
    assert_eq!(h[1], "\tid QID123; DATE");
    assert_eq!(h[2], "Subject: hi");
    assert_eq!(h[3], "Message-Id: <20261106212000.QID123@mail.example.org>");
    assert!(h[4].starts_with("Date: Fri,  6 Nov 2026 "), "{}", h[4]);
    assert_eq!(h[5], "From: alice@origin.example");
    assert_eq!(h.len(), 6);
    assert!(out.ends_with("\n\nbody\n"));
}

#[test]
fn keeps_present_headers_and_adds_nothing_for_remote_clients() {
    let (out, _) = run(
        "",
        "From: a@x\nDate: whenever\nMessage-ID: <m@x>\nTo: b@y\n\nbody\n",
    );
    assert_eq!(headers(&out).len(), 6);
    let s = settings("");
    let mut i = info(0);
    i.header_rewrite = None;
    let (out, m) = run_with(&s, i, &[b"Subject: x\n\nb\n"]);
    let out = String::from_utf8(out).unwrap();
    assert_eq!(headers(&out).len(), 3, "{out}");
    assert_eq!(m.message_id(), None);
    let (out, _) = run("always_add_missing_headers = yes\n", "Subject: x\n\nb\n");
    assert!(out.contains("\nMessage-Id: "));
}

#[test]
fn undisclosed_recipients_only_when_configured() {
    let (out, _) = run("", "Subject: x\n\nb\n");
    assert!(!out.contains("undisclosed"));
    let (out, _) = run(
        "undisclosed_recipients_header = To: undisclosed-recipients:;\n",
        "Subject: x\n\nb\n",
    );
    assert!(out.contains("\nTo: undisclosed-recipients:;\n"));
    let (out, _) = run(
        "undisclosed_recipients_header = To: undisclosed-recipients:;\n",
        "Cc: c@x\n\nb\n",
    );
    assert!(!out.contains("undisclosed"));
}

#[test]
fn resent_headers_get_resent_missing_headers() {
    let (out, _) = run(
        "",
        "From: a@x\nDate: d\nMessage-Id: <m@x>\nResent-To: b@y\n\nb\n",
    );
    assert!(out.contains("\nResent-Message-Id: <"));
    assert!(out.contains("\nResent-Date: "));
    assert!(out.contains("\nResent-From: alice@origin.example\n"));
}

#[test]
fn drops_return_path_bcc_and_content_length() {
    let (out, _) = run(
        "",
        "Return-Path: <evil@x>\nTo: b\nBcc: secret@x,\n other@y\nContent-Length: 3\nSubject: s\n\nbody\n",
    );
    assert!(!out.contains("Return-Path"));
    assert!(!out.contains("secret"));
    assert!(!out.contains("other@y"));
    assert!(!out.contains("Content-Length"));
    assert!(out.contains("\nTo: b@origin.example\n"), "{out}");
}

#[test]
fn extracts_recipients_with_t() {
    let s = settings("");
    let (out, mut m) = run_with(
        &s,
        info(flags::LOCAL_SUBMISSION | flags::EXTRACT_RECIPIENTS),
        &[b"To: \"B\" <b@x>, c\nCc: d@y\nBcc: e@z\nSubject: s\n\nbody\n"],
    );
    let out = String::from_utf8(out).unwrap();
    assert!(!out.contains("e@z"));
    assert_eq!(m.extracted(), ["b@x", "c", "d@y", "e@z"]);
}

#[test]
fn extraction_prefers_resent_headers() {
    let s = settings("");
    let (_, mut m) = run_with(
        &s,
        info(flags::EXTRACT_RECIPIENTS),
        &[b"To: a@x\nResent-To: r@x\nResent-Bcc: rb@x\n\nbody\n"],
    );
    assert_eq!(m.extracted(), ["r@x", "rb@x"]);
}

#[test]
fn header_addresses_are_rewritten_with_display_names_kept() {
    let (out, _) = run(
        "canonical_maps = inline:{ carol@origin.example=carol.c@example.com }\n",
        "From: Alice <alice>\nTo: carol, \"Dave D\" <dave@x.org>\nSubject: carol\n\nbody carol\n",
    );
    assert!(
        out.contains("\nFrom: Alice <alice@origin.example>\n"),
        "{out}"
    );
    assert!(
        out.contains("\nTo: carol.c@example.com, \"Dave D\" <dave@x.org>\n"),
        "{out}"
    );
    assert!(out.contains("\nSubject: carol\n"));
    assert!(out.ends_with("body carol\n"));
}

#[test]
fn from_header_forms() {
    assert_eq!(from_header("", Some("X")), "MAILER-DAEMON");
    assert_eq!(from_header("a@x", None), "a@x");
    assert_eq!(
        from_header("a@x", Some("  Alice   Smith ")),
        "Alice Smith <a@x>"
    );
    assert_eq!(from_header("a@x", Some("Smith, J.")), "\"Smith, J.\" <a@x>");
    assert_eq!(from_header("a b@x", Some("Q\"q")), "\"Q\\\"q\" <\"a b\"@x>");
    assert_eq!(
        from_header("a@x", Some("Jörg")),
        "=?utf-8?B?SsO2cmc=?= <a@x>"
    );
    assert_eq!(encode_word("ab"), "=?utf-8?B?YWI=?=");
    assert_eq!(encode_word("abc"), "=?utf-8?B?YWJj?=");
    let long = encode_word(&"ä".repeat(40));
    assert!(long.split(' ').all(|w| w.len() <= 75), "{long}");
}

#[test]
fn dsn_codes_in_reject_text() {
    assert_eq!(
        dsn_split("5.7.1", "", "rejected"),
        ("5.7.1".into(), "rejected".into())
    );
    assert_eq!(
        dsn_split("5.7.1", "go away", "r"),
        ("5.7.1".into(), "go away".into())
    );
    assert_eq!(
        dsn_split("5.7.1", "4.7.0 later", "r"),
        ("4.7.0".into(), "later".into())
    );
    assert_eq!(
        dsn_split("5.7.1", "1.2 x", "r"),
        ("5.7.1".into(), "1.2 x".into())
    );
}

fn checks_file(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    format!("regexp:{}", p.display())
}

#[test]
fn header_check_actions() {
    let dir = tempfile::tempdir().unwrap();
    let hc = checks_file(
        dir.path(),
        "hc",
        "/^Subject: reject me/ REJECT no thanks\n\
         /^Subject: later/ REJECT 4.7.0 try later\n\
         /^Subject: drop me/ DISCARD\n\
         /^Subject: hold me/ HOLD held for review\n\
         /^X-Ignore:/ IGNORE\n\
         /^Subject: warn me/ WARN looked odd\n\
         /^Subject: tag me/ PREPEND X-Tagged: yes\n\
         /^Subject: fix me/ REPLACE Subject: fixed\n",
    );
    let cf = format!("header_checks = {hc}\n");
    let s = settings(&cf);
    let go = |content: &str| {
        let (out, m) = run_with(&s, info(flags::LOCAL_SUBMISSION), &[content.as_bytes()]);
        (String::from_utf8(out).unwrap(), m)
    };
    let (_, mut m) = go("Subject: reject me\n\nb\n");
    match m.take_failure() {
        Some(Failure::Reject { status, text }) => {
            assert_eq!((status.as_str(), text.as_str()), ("5.7.1", "no thanks"));
        }
        other => panic!("{other:?}"),
    }
    let (_, mut m) = go("Subject: later\n\nb\n");
    assert!(matches!(m.take_failure(), Some(Failure::Reject { status, .. }) if status == "4.7.0"));
    let (_, m) = go("Subject: drop me\n\nb\n");
    assert!(m.discarded() && m.failure().is_none());
    let (_, m) = go("Subject: hold me\n\nb\n");
    assert!(m.held());
    let (out, m) = go("X-Ignore: x\nSubject: warn me\n\nb\n");
    assert!(!out.contains("X-Ignore") && out.contains("Subject: warn me"));
    assert!(m.failure().is_none() && !m.held());
    let (out, _) = go("Subject: tag me\n\nb\n");
    assert!(out.contains("\nX-Tagged: yes\nSubject: tag me\n"), "{out}");
    let (out, _) = go("Subject: fix me\n\nb\n");
    assert!(out.contains("\nSubject: fixed\n") && !out.contains("fix me"));
    // NO_CHECKS skips them.
    let (_, m) = run_with(&s, info(flags::NO_CHECKS), &[b"Subject: reject me\n\nb\n"]);
    assert!(m.failure().is_none());
}

#[test]
fn body_checks_see_body_lines_only() {
    let dir = tempfile::tempdir().unwrap();
    let bc = checks_file(
        dir.path(),
        "bc",
        "/^bad line$/ REJECT body says no\n/^strip$/ IGNORE\n",
    );
    let cf = format!("body_checks = {bc}\n");
    let (_, failed) = run(&cf, "Subject: bad line\n\ngood\nbad line\n");
    assert!(failed);
    let (out, failed) = run(&cf, "Subject: x\n\ngood\nstrip\nend\n");
    assert!(!failed);
    assert!(out.ends_with("\n\ngood\nend\n"), "{out}");
    let (_, failed) = run(&cf, "Subject: bad line\n\ngood\n");
    assert!(!failed);
}

#[test]
fn size_limit_stops_the_message() {
    let s = settings("message_size_limit = 1000\n");
    let big = vec![b'x'; 600];
    let (out, m) = run_with(
        &s,
        info(0),
        &[b"Subject: s\n\n", &big, b"\n", &big, b"\n", &big],
    );
    assert!(matches!(m.failure(), Some(Failure::TooBig)));
    assert!(out.len() <= 1000 + 700);
}

#[test]
fn long_header_lines_are_truncated_not_refused() {
    let s = settings("");
    let mut content = b"Subject: ".to_vec();
    content.extend(std::iter::repeat_n(b'a', 1 << 20));
    content.extend_from_slice(b"\nTo: b@x\n\nbody\n");
    let chunks: Vec<&[u8]> = content.chunks(65536).collect();
    let (out, m) = run_with(&s, info(flags::LOCAL_SUBMISSION), &chunks);
    assert!(m.failure().is_none());
    let out = String::from_utf8(out).unwrap();
    let subject = out.lines().find(|l| l.starts_with("Subject:")).unwrap();
    assert_eq!(subject.len(), s.header_size_limit);
    assert!(out.contains("\nTo: b@x\n"));
    assert!(out.ends_with("\n\nbody\n"));
}

#[test]
fn long_body_lines_pass_unchanged() {
    let s = settings("");
    let line = vec![b'z'; 10_000];
    let mut content = b"Subject: s\n\n".to_vec();
    content.extend_from_slice(&line);
    content.push(b'\n');
    let (out, _) = run_with(&s, info(0), &[&content]);
    assert!(out.ends_with(&content[12..]));
}

#[test]
fn nul_bytes_8bit_and_headerless_bodies() {
    let s = settings("");
    let (out, m) = run_with(
        &s,
        info(flags::LOCAL_SUBMISSION),
        &[b"Subj\x00ect: x\nsome \xff\xfe body\r\nno newline"],
    );
    assert!(m.failure().is_none());
    // The NUL line is not a header: the body starts there, after the
    // added headers and an inserted separator.
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("\nFrom: alice@origin.example\n\nSubj\0ect: x\n"),
        "{text}"
    );
    assert!(out.ends_with(b"some \xff\xfe body\r\nno newline\n"));
    let (out, _) = run_with(&s, info(0), &[b"\xe4\xf6\xfc only 8-bit text\n"]);
    assert!(out.ends_with(b"\n\n\xe4\xf6\xfc only 8-bit text\n"));
    let (out, _) = run_with(&s, info(0), &[b"Subject: \xe4\xf6\xfc\n\nb\n"]);
    assert!(out.windows(13).any(|w| w == b"Subject: \xe4\xf6\xfc\n"));
}

#[test]
fn empty_message_gets_headers() {
    let s = settings("");
    let (out, m) = run_with(&s, info(flags::LOCAL_SUBMISSION), &[]);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("Received: "));
    assert!(text.contains("\nFrom: "));
    assert!(m.message_id().is_some());
}

#[test]
fn split_feeds_give_the_same_result() {
    let s = settings("");
    let content = b"Subject: one\n two\nTo: x@y\n\nline one\nline two\n";
    let (whole, _) = run_with(&s, info(0), &[content]);
    let bytes: Vec<&[u8]> = content.chunks(1).collect();
    let (split, _) = run_with(&s, info(0), &bytes);
    assert_eq!(whole, split);
}

#[test]
fn hop_count_limit() {
    let s = settings("hopcount_limit = 3\n");
    let (_, mut m) = run_with(&s, info(0), &[b"Received: a\nReceived: b\n\nbody\n"]);
    assert!(matches!(m.take_failure(), Some(Failure::Reject { status, .. }) if status == "5.4.0"));
    let (_, m) = run_with(&s, info(0), &[b"Received: a\n\nbody\n"]);
    assert!(m.failure().is_none());
    assert!(m.written() > 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn random_content_never_panics(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
        small in any::<bool>(),
    ) {
        let cf = if small {
            "line_length_limit = 512\nheader_size_limit = 40\nmessage_size_limit = 2000\n"
        } else {
            ""
        };
        let s = settings(cf);
        let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        let (out, m) = run_with(&s, info(flags::LOCAL_SUBMISSION | flags::EXTRACT_RECIPIENTS), &refs);
        prop_assert!(m.failure().is_some() || out.ends_with(b"\n"));
    }

    #[test]
    fn random_headers_never_panic(lines in proptest::collection::vec("[ -~\t]{0,60}", 0..12)) {
        let s = settings("");
        let mut content = lines.join("\n");
        content.push_str("\n\nbody\n");
        let (_, _m) = run_with(&s, info(flags::LOCAL_SUBMISSION | flags::EXTRACT_RECIPIENTS), &[content.as_bytes()]);
    }
}

const MULTIPART: &str = "Subject: s\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"XX\"\n\n\
preamble\n--XX\nContent-Type: text/plain\n\nhello\n--XX\nContent-Type: application/octet-stream;\n\x20name=\"evil.exe\"\
\nContent-Disposition: attachment\n\nTVqQAAMAAAAEAAAA\n--XX\n\
Content-Type: message/rfc822\n\nSubject: inner spam\nFrom: x@y\n\ninner body\n--XX--\nepilogue\n";

#[test]
fn mime_part_headers_meet_mime_and_nested_header_checks() {
    let dir = tempfile::tempdir().unwrap();
    let hc = checks_file(
        dir.path(),
        "hc",
        "/^Content-Type:.*name=\"?[^\"]*\\.exe/ REJECT executable attachment\n",
    );
    let s = settings(&format!("header_checks = {hc}\n"));
    let (_, mut m) = run_with(&s, info(0), &[MULTIPART.as_bytes()]);
    assert!(
        matches!(m.take_failure(), Some(Failure::Reject { text, .. }) if text == "executable attachment")
    );
    // Only header_checks itself: MIME headers go to mime_header_checks.
    let s = settings(&format!("header_checks = {hc}\nmime_header_checks =\n"));
    let (_, m) = run_with(&s, info(0), &[MULTIPART.as_bytes()]);
    assert!(m.failure().is_none());
    // Headers of an attached message meet nested_header_checks.
    let nc = checks_file(dir.path(), "nc", "/^Subject: inner spam/ REJECT nested\n");
    let s = settings(&format!("nested_header_checks = {nc}\n"));
    let (_, mut m) = run_with(&s, info(0), &[MULTIPART.as_bytes()]);
    assert!(matches!(m.take_failure(), Some(Failure::Reject { text, .. }) if text == "nested"));
    // ... and not header_checks or body_checks.
    let s = settings(&format!(
        "header_checks = {nc}\nnested_header_checks =\nmime_header_checks = {nc}\n"
    ));
    let (out, m) = run_with(&s, info(0), &[MULTIPART.as_bytes()]);
    assert!(m.failure().is_none());
    assert!(
        String::from_utf8(out)
            .unwrap()
            .ends_with(&MULTIPART[MULTIPART.find("\n\n").unwrap() + 2..])
    );
}

#[test]
fn mime_part_headers_can_be_ignored_and_body_checks_skip_them() {
    let dir = tempfile::tempdir().unwrap();
    let hc = checks_file(dir.path(), "hc", "/^Content-Disposition:/ IGNORE\n");
    let bc = checks_file(
        dir.path(),
        "bc",
        "/^Content-Type: text/ REJECT body\n/^inner body$/ REJECT inner\n",
    );
    let s = settings(&format!("mime_header_checks = {hc}\nbody_checks = {bc}\n"));
    let (_, mut m) = run_with(&s, info(0), &[MULTIPART.as_bytes()]);
    // The nested message's body is body, and body_checks see it.
    assert!(matches!(m.take_failure(), Some(Failure::Reject { text, .. }) if text == "inner"));
    let bc = checks_file(dir.path(), "bc2", "/^Content-Type: text/ REJECT body\n");
    let s = settings(&format!("mime_header_checks = {hc}\nbody_checks = {bc}\n"));
    let (out, m) = run_with(&s, info(0), &[MULTIPART.as_bytes()]);
    assert!(m.failure().is_none());
    let out = String::from_utf8(out).unwrap();
    assert!(!out.contains("Content-Disposition"));
    assert!(out.contains("\n name=\"evil.exe\"\n\nTVqQ"));
}
