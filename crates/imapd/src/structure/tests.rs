//! Tests of ENVELOPE, BODYSTRUCTURE and section extraction on small MIME shapes.

use super::bodystructure::body_structure;
use super::envelope::envelope;
use super::section::{BinaryError, binary_bytes, partial, section_bytes};
use super::*;
use crate::parse::{Section, SectionText};

const NESTED: &str = "From: A <a@b.c>\r\nSubject: =?utf-8?q?h=C3=A9?=\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\npreamble\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n--YY\r\n\r\ninner1\r\n--YY--\r\nepi-inner\r\n--XX--\r\nepilogue\r\n";

fn bs(raw: &str, ext: bool) -> String {
    let m = parse(raw.as_bytes()).expect("parse");
    let mut o = Vec::new();
    body_structure(&mut o, PartRef::root(&m), ext, false);
    String::from_utf8_lossy(&o).into_owned()
}

fn env(raw: &str, utf8: bool) -> String {
    let m = parse(raw.as_bytes()).expect("parse");
    let mut o = Vec::new();
    envelope(&mut o, PartRef::root(&m), utf8);
    String::from_utf8_lossy(&o).into_owned()
}

fn sect(raw: &str, part: &[u32], text: Option<SectionText>) -> Option<String> {
    let m = parse(raw.as_bytes());
    let s = Section {
        part: part.to_vec(),
        text,
    };
    section_bytes(raw.as_bytes(), m.as_ref(), &s).map(|b| String::from_utf8_lossy(&b).into_owned())
}

#[test]
fn simple_text_structure() {
    let raw = "Subject: x\r\nContent-Type: text/plain; charset=UTF-8; format=flowed\r\nContent-Transfer-Encoding: 8bit\r\n\r\nline1\r\nline2\r\n";
    assert_eq!(
        bs(raw, false),
        "(\"text\" \"plain\" (\"charset\" \"UTF-8\" \"format\" \"flowed\") NIL NIL \"8bit\" 14 2)"
    );
    assert_eq!(
        bs(raw, true),
        "(\"text\" \"plain\" (\"charset\" \"UTF-8\" \"format\" \"flowed\") NIL NIL \"8bit\" 14 2 NIL NIL NIL NIL)"
    );
    let raw = "Subject: x\r\n\r\nbody";
    assert_eq!(
        bs(raw, false),
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 4 0)"
    );
}

#[test]
fn nested_structure() {
    assert_eq!(
        bs(NESTED, false),
        "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 0)\
(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 101 (NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) \
((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 0) \"alternative\") 7) \"mixed\")"
    );
    assert!(bs(NESTED, true).ends_with(" \"mixed\" (\"boundary\" \"XX\") NIL NIL NIL)"));
}

#[test]
fn attachment_extension_data() {
    let raw = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/pdf; name=\"a b.pdf\"\r\nContent-Disposition: attachment; filename=\"a b.pdf\"\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <id@x>\r\nContent-Language: en, de\r\nContent-Location: http://x/\r\n\r\nAAAA\r\n--b--\r\n";
    assert_eq!(
        bs(raw, true),
        "((\"application\" \"pdf\" (\"name\" \"a b.pdf\") \"<id@x>\" NIL \"base64\" 4 NIL (\"attachment\" (\"filename\" \"a b.pdf\")) (\"en\" \"de\") \"http://x/\") \"mixed\" (\"boundary\" \"b\") NIL NIL NIL)"
    );
}

#[test]
fn missing_boundary_still_valid() {
    let raw = "Content-Type: multipart/mixed; boundary=zz\r\n\r\nno parts here\r\n";
    let s = bs(raw, false);
    assert!(s.starts_with('(') && s.ends_with(')'), "{s}");
}

#[test]
fn envelope_fields() {
    let raw = "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\nFrom: Terry Gray <gray@cac.washington.edu>\r\nSubject: IMAP4rev1 WG mtg summary\r\n and minutes\r\nTo: imap@cac.washington.edu\r\ncc: minutes@CNRI.Reston.VA.US, \"John Klensin\" <KLENSIN@MIT.EDU>\r\nMessage-Id: <B27397-0100000@cac.washington.edu>\r\n\r\nbody\r\n";
    assert_eq!(
        env(raw, false),
        "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \"<B27397-0100000@cac.washington.edu>\")"
    );
}

#[test]
fn envelope_groups_and_encoded_names() {
    let raw = "From: =?iso-8859-1?q?J=F6rg?= <j@x.de>\r\nTo: undisclosed-recipients:;\r\nSubject: =?utf-8?q?h=C3=A9?=\r\n\r\n";
    let e = env(raw, false);
    assert!(e.contains("\"=?utf-8?q?h=C3=A9?=\""), "{e}");
    assert!(
        e.contains("((\"=?iso-8859-1?q?J=F6rg?=\" NIL \"j\" \"x.de\"))"),
        "{e}"
    );
    assert!(
        e.contains("((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL))"),
        "{e}"
    );
    let raw8 = "From: Jörg <j@x.de>\r\n\r\n";
    assert!(env(raw8, true).contains("((\"Jörg\" NIL \"j\" \"x.de\"))"));
    assert!(env(raw8, false).contains("(({5}\r\nJörg NIL \"j\" \"x.de\"))"));
}

#[test]
fn sections() {
    assert_eq!(sect(NESTED, &[], None).as_deref(), Some(NESTED));
    assert!(
        sect(NESTED, &[], Some(SectionText::Header))
            .expect("h")
            .ends_with("boundary=\"XX\"\r\n\r\n")
    );
    assert!(
        sect(NESTED, &[], Some(SectionText::Text))
            .expect("t")
            .starts_with("preamble\r\n--XX")
    );
    assert_eq!(sect(NESTED, &[1], None).as_deref(), Some("hello"));
    assert_eq!(
        sect(NESTED, &[1], Some(SectionText::Mime)).as_deref(),
        Some("Content-Type: text/plain\r\n\r\n")
    );
    assert_eq!(
        sect(NESTED, &[2], Some(SectionText::Header)).as_deref(),
        Some("Subject: inner\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n")
    );
    assert_eq!(sect(NESTED, &[2, 1], None).as_deref(), Some("inner1"));
    assert_eq!(
        sect(NESTED, &[2], Some(SectionText::Text)).as_deref(),
        Some("--YY\r\n\r\ninner1\r\n--YY--\r\nepi-inner")
    );
    assert_eq!(sect(NESTED, &[3], None), None);
    assert_eq!(sect(NESTED, &[1, 1], None).as_deref(), Some("hello"));
    assert_eq!(
        sect(
            NESTED,
            &[],
            Some(SectionText::HeaderFields(vec![
                "SUBJECT".into(),
                "FROM".into()
            ]))
        )
        .as_deref(),
        Some("From: A <a@b.c>\r\nSubject: =?utf-8?q?h=C3=A9?=\r\n\r\n")
    );
    assert_eq!(
        sect(
            NESTED,
            &[],
            Some(SectionText::HeaderFieldsNot(vec![
                "SUBJECT".into(),
                "CONTENT-TYPE".into()
            ]))
        )
        .as_deref(),
        Some("From: A <a@b.c>\r\n\r\n")
    );
    let single = "Subject: a\r\n folded\r\nX: y\r\n\r\nbody\r\n";
    assert_eq!(sect(single, &[1], None).as_deref(), Some("body\r\n"));
    assert_eq!(
        sect(
            single,
            &[],
            Some(SectionText::HeaderFields(vec!["SUBJECT".into()]))
        )
        .as_deref(),
        Some("Subject: a\r\n folded\r\n\r\n")
    );
}

#[test]
fn partial_ranges() {
    assert_eq!(partial(b"0123456789", Some((2, 3))), b"234");
    assert_eq!(partial(b"0123456789", Some((8, 30))), b"89");
    assert_eq!(partial(b"0123456789", Some((30, 3))), b"");
    assert_eq!(partial(b"0123456789", Some((u64::MAX, u64::MAX))), b"");
}

#[test]
fn binary_decoding() {
    let raw = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\naGVs\r\nbG8=\r\n--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nh=C3=A9 soft=\r\nbreak\r\n--b\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nzz\r\n--b--\r\n";
    let m = parse(raw.as_bytes());
    assert_eq!(
        binary_bytes(raw.as_bytes(), m.as_ref(), &[1]).as_deref(),
        Ok(&b"hello"[..])
    );
    assert_eq!(
        binary_bytes(raw.as_bytes(), m.as_ref(), &[2]).as_deref(),
        Ok("hé softbreak".as_bytes())
    );
    assert_eq!(
        binary_bytes(raw.as_bytes(), m.as_ref(), &[3]),
        Err(BinaryError::UnknownCte)
    );
    assert_eq!(
        binary_bytes(raw.as_bytes(), m.as_ref(), &[4]),
        Err(BinaryError::NoPart)
    );
}

#[test]
fn crlf_conversion_and_lines() {
    assert_eq!(&*to_crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
    assert!(matches!(to_crlf(b"a\r\n"), std::borrow::Cow::Borrowed(_)));
    assert_eq!(count_lines(b""), 0);
    assert_eq!(count_lines(b"a\r\nb"), 1);
    assert_eq!(count_lines(b"a\r\n"), 1);
}

proptest::proptest! {
    /// The copying conversion FETCH streams with gives what `to_crlf` does.
    #[test]
    fn crlf_into_matches_to_crlf(data in proptest::collection::vec(proptest::sample::select(vec![b'\r', b'\n', b'a', 0u8]), 0..64)) {
        let mut out = b"kept".to_vec();
        to_crlf_into(&data, &mut out);
        proptest::prop_assert_eq!(&out[4..], &*to_crlf(&data));
        proptest::prop_assert_eq!(&out[..4], b"kept");
    }

    #[test]
    fn structure_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
        let raw = to_crlf(&data);
        if let Some(m) = parse(&raw) {
            let mut o = Vec::new();
            body_structure(&mut o, PartRef::root(&m), true, false);
            envelope(&mut o, PartRef::root(&m), false);
            let _ = section_bytes(&raw, Some(&m), &Section { part: vec![1, 2], text: Some(SectionText::Mime) });
            let _ = binary_bytes(&raw, Some(&m), &[1]);
        }
    }
}
