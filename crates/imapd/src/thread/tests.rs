//! Tests of THREAD=REFERENCES, THREAD=ORDEREDSUBJECT and the response form.

use super::orderedsubject::ordered_subject;
use super::references::references;
use super::*;
use crate::structure::parse;

fn info(id: u32, date: i64, mid: &str, refs: &[&str], subject: &str) -> ThreadInfo {
    let (subject, is_reply) = subject::base_subject(subject);
    ThreadInfo {
        id,
        seq: id,
        date,
        message_id: Some(mid.to_string()).filter(|m| !m.is_empty()),
        references: refs.iter().map(|s| s.to_string()).collect(),
        subject,
        is_reply,
    }
}

#[test]
fn format_forms() {
    let n = |id, children: Vec<usize>| Node { id, children };
    let f = Forest {
        nodes: vec![
            n(Some(1), vec![1]),
            n(Some(2), vec![2]),
            n(Some(3), vec![]),
            n(Some(4), vec![4, 5]),
            n(Some(5), vec![]),
            n(Some(6), vec![]),
            n(None, vec![7, 8]),
            n(Some(7), vec![]),
            n(Some(8), vec![]),
        ],
        roots: vec![0, 3, 6],
    };
    assert_eq!(f.format(), "(1 2 3)(4 (5)(6))((7)(8))");
}

#[test]
fn references_chain_and_missing_parent() {
    let msgs = vec![
        info(1, 10, "a", &[], "hello"),
        info(2, 20, "b", &["a"], "Re: hello"),
        info(3, 30, "c", &["a", "b"], "Re: hello"),
        info(4, 15, "d", &["a"], "Re: hello"),
        info(5, 5, "x", &[], "other"),
        // Parent "gone" is missing: 6 and 7 share an empty parent.
        info(6, 40, "f", &["gone"], "Re: lost"),
        info(7, 41, "g", &["gone"], "Re: lost"),
    ];
    assert_eq!(references(&msgs).format(), "(5)(1 (4)(2 3))((6)(7))");
}

#[test]
fn references_subject_merge() {
    // No references, same base subject: the reply goes under the original.
    let msgs = vec![
        info(1, 10, "a", &[], "Meeting"),
        info(2, 20, "b", &[], "Re: meeting"),
    ];
    assert_eq!(references(&msgs).format(), "(1 2)");
    // Neither a reply: a new empty parent holds both.
    let msgs = vec![
        info(1, 10, "a", &[], "Meeting"),
        info(2, 20, "b", &[], "meeting"),
    ];
    assert_eq!(references(&msgs).format(), "((1)(2))");
}

#[test]
fn references_loops_and_duplicates() {
    let msgs = vec![
        info(1, 10, "a", &["b"], "x"),
        info(2, 20, "b", &["a"], "y"),
        info(3, 30, "a", &[], "z"), // duplicate Message-ID
        info(4, 40, "", &[], "w"),
    ];
    let t = references(&msgs).format();
    for id in ["1", "2", "3", "4"] {
        assert!(t.contains(id), "{t}");
    }
}

#[test]
fn ordered_subject_threads() {
    let msgs = vec![
        info(1, 30, "", &[], "beta"),
        info(2, 10, "", &[], "Re: beta"),
        info(3, 20, "", &[], "alpha"),
        info(4, 40, "", &[], "Fwd: alpha"),
        info(5, 50, "", &[], "beta (fwd)"),
    ];
    assert_eq!(ordered_subject(&msgs).format(), "(2 (1)(5))(3 4)");
}

#[test]
fn thread_info_from_headers() {
    let raw = "Message-ID: <m3@x>\r\nReferences: <m1@x> <m2@x>\r\nIn-Reply-To: <m2@x>\r\nSubject: Re: [l] topic\r\nDate: Mon, 2 Jan 2006 00:00:00 +0000\r\n\r\n";
    let m = parse(raw.as_bytes());
    let t = thread_info(m.as_ref(), 9, 9, 0);
    assert_eq!(t.message_id.as_deref(), Some("m3@x"));
    assert_eq!(t.references, ["m1@x", "m2@x"]);
    assert_eq!(
        (t.subject.as_str(), t.is_reply, t.date),
        ("topic", true, 1136160000)
    );
    let raw = "In-Reply-To: <p@x> <q@x>\r\n\r\n";
    let m = parse(raw.as_bytes());
    assert_eq!(thread_info(m.as_ref(), 1, 1, 0).references, ["p@x"]);
}

#[test]
fn long_reply_chain_does_not_overflow() {
    let ids: Vec<String> = (0..3000).map(|i| format!("m{i}")).collect();
    let msgs: Vec<ThreadInfo> = (0..3000)
        .map(|i| {
            let refs: Vec<&str> = if i == 0 {
                vec![]
            } else {
                vec![ids[i - 1].as_str()]
            };
            info(i as u32 + 1, i as i64, &ids[i], &refs, "Re: x")
        })
        .collect();
    let t = references(&msgs).format();
    assert!(t.starts_with("(1 2 3 ") && t.ends_with(" 3000)"));
}

#[test]
fn references_capped() {
    let ids: Vec<String> = (0..500).map(|i| format!("<r{i}@x>")).collect();
    let raw = format!("Message-ID: <m@x>\r\nReferences: {}\r\n\r\n", ids.join(" "));
    let m = parse(raw.as_bytes());
    let t = thread_info(m.as_ref(), 1, 1, 0);
    assert_eq!(t.references.len(), MAX_REFERENCES);
    assert_eq!(t.references.last().map(String::as_str), Some("r499@x"));
}
