//! Tests of SEARCH evaluation and SORT.

use super::sort::{sort, sort_info};
use super::*;
use crate::parse::{
    Command, CommandBody, Date, Event, Parser, SearchKey, SeqSet, SortCriterion, SortKey,
};
use crate::structure::parse;

const MSG: &str = "Date: Tue, 1 Feb 1994 10:00:00 +0100\r\nFrom: =?iso-8859-1?q?J=F6rg?= Smith <smith@example.com>\r\nTo: a@b.c, Bob <bob@x.org>\r\nCc: carol@x.org\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= from the meeting\r\nX-Priority: 1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nThe budget is =E2=82=AC 5.\r\n";

fn key(s: &str) -> SearchKey {
    let mut p = Parser::default();
    match p.feed(format!("a SEARCH {s}\r\n").as_bytes()).1 {
        Event::Command(Command {
            body: CommandBody::Search { key, .. },
            ..
        }) => key,
        e => panic!("{s}: {e:?}"),
    }
}

fn check(s: &str, flags: &[&str], recent: bool) -> bool {
    let m = parse(MSG.as_bytes());
    let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    let c = Candidate {
        seq: 3,
        uid: 30,
        flags: &flags,
        recent,
        internal_date: Date {
            year: 1994,
            month: 2,
            day: 3,
        },
        size: MSG.len() as u64,
        modseq: 77,
        raw: MSG.as_bytes(),
        msg: m.as_ref(),
    };
    let ctx = Context {
        max_seq: 5,
        max_uid: 50,
        saved: &[30],
    };
    matches(&key(s), &c, &ctx)
}

#[test]
fn flag_keys() {
    assert!(check("SEEN ANSWERED", &["\\Seen", "\\Answered"], false));
    assert!(!check("UNSEEN", &["\\Seen"], false));
    assert!(check(
        "UNSEEN UNDELETED UNDRAFT UNFLAGGED UNANSWERED",
        &[],
        false
    ));
    assert!(check(
        "DELETED DRAFT FLAGGED",
        &["\\Deleted", "\\Draft", "\\Flagged"],
        false
    ));
    assert!(check("KEYWORD $junk", &["$Junk"], false));
    assert!(check("UNKEYWORD $Junk", &[], false));
    assert!(check("NEW RECENT", &[], true));
    assert!(!check("NEW", &["\\Seen"], true));
    assert!(check("OLD", &[], false));
}

#[test]
fn numbers_dates_sizes() {
    assert!(check("3 UID 30 1:* UID 25:*", &[], false));
    assert!(!check("4:5", &[], false));
    assert!(check("*:3", &[], false));
    assert!(check("$ UID $", &[], false));
    assert!(check(
        "ON 3-Feb-1994 SINCE 3-Feb-1994 BEFORE 4-Feb-1994",
        &[],
        false
    ));
    assert!(!check("BEFORE 3-Feb-1994", &[], false));
    assert!(check(
        "SENTON 1-Feb-1994 SENTBEFORE 2-Feb-1994 SENTSINCE 1-Feb-1994",
        &[],
        false
    ));
    assert!(check("LARGER 10 SMALLER 100000 MODSEQ 77", &[], false));
    assert!(!check("MODSEQ 78", &[], false));
}

#[test]
fn header_and_text_keys() {
    assert!(check(
        "FROM smith FROM \"jörg\" FROM EXAMPLE.COM",
        &[],
        false
    ));
    assert!(check("TO bob CC carol", &[], false));
    assert!(!check("BCC carol", &[], false));
    assert!(check("SUBJECT \"grüße\" SUBJECT MEETING", &[], false));
    assert!(check(
        "HEADER X-Priority 1 HEADER x-priority \"\"",
        &[],
        false
    ));
    assert!(!check("HEADER X-Missing \"\"", &[], false));
    assert!(check("BODY \"€\"", &[], false));
    assert!(check("BODY budget", &[], false));
    assert!(!check("BODY meeting", &[], false));
    assert!(check("TEXT meeting TEXT budget", &[], false));
    assert!(check("OR BODY nothing-here NOT SEEN", &[], false));
    assert!(check("NOT (SEEN DELETED)", &["\\Seen"], false));
    assert!(check("CHARSET UTF-8 SUBJECT {7+}\r\ngrüße", &[], false));
}

#[test]
fn needs_message_only_for_content_keys() {
    assert!(!needs_message(&key(
        "1:* UNSEEN LARGER 5 OR SINCE 1-Jan-2000 UID 4"
    )));
    assert!(needs_message(&key("UNSEEN OR SEEN SUBJECT x")));
    assert!(needs_message(&key("NOT SENTON 1-Jan-2000")));
    assert!(
        charset_supported("utf-8")
            && charset_supported("US-ASCII")
            && !charset_supported("ISO-8859-1")
    );
}

#[test]
fn sort_orders() {
    let m1 = "From: zed@x\r\nSubject: Re: beta\r\nDate: Mon, 2 Jan 2006 00:00:00 +0000\r\n\r\n";
    let m2 =
        "From: Adam <adam@x>\r\nSubject: alpha\r\nDate: Sun, 1 Jan 2006 23:00:00 -0200\r\n\r\n";
    let m3 = "From: bob@x\r\nSubject: [list] Beta\r\n\r\n";
    let p: Vec<_> = [m1, m2, m3].iter().map(|m| parse(m.as_bytes())).collect();
    let mut v: Vec<_> = p
        .iter()
        .enumerate()
        .map(|(i, m)| sort_info(m.as_ref(), i as u32 + 1, 0, 100 * i as i64, 50 - i as u64))
        .collect();
    let order = |v: &[sort::SortInfo]| v.iter().map(|s| s.seq).collect::<Vec<_>>();
    sort(
        &[SortCriterion {
            reverse: false,
            key: SortKey::From,
        }],
        &mut v,
    );
    assert_eq!(order(&v), [2, 3, 1]);
    sort(
        &[SortCriterion {
            reverse: false,
            key: SortKey::Subject,
        }],
        &mut v,
    );
    assert_eq!(order(&v), [2, 1, 3]);
    sort(
        &[SortCriterion {
            reverse: false,
            key: SortKey::Date,
        }],
        &mut v,
    );
    // m3 has no Date: its internal date (200) sorts first; m2 is 01:00 UTC on Jan 2.
    assert_eq!(order(&v), [3, 1, 2]);
    sort(
        &[SortCriterion {
            reverse: true,
            key: SortKey::Size,
        }],
        &mut v,
    );
    assert_eq!(order(&v), [1, 2, 3]);
    sort(
        &[SortCriterion {
            reverse: true,
            key: SortKey::Arrival,
        }],
        &mut v,
    );
    assert_eq!(order(&v), [3, 2, 1]);
}

#[test]
fn prepared_sets_are_fast_and_equal() {
    // 40,000 single-number ranges against 100,000 messages.
    use crate::parse::SeqNum;
    let ranges = (0..40_000u32)
        .map(|i| (SeqNum::Value(i * 2 + 1), SeqNum::Value(i * 2 + 1)))
        .collect();
    let k = SearchKey::And(vec![SearchKey::Uid(SeqSet::Ranges(ranges))]);
    let ctx = Context {
        max_seq: 100_000,
        max_uid: 100_000,
        saved: &[],
    };
    let p = prepare(&k, &ctx);
    let flags: Vec<String> = Vec::new();
    let t = std::time::Instant::now();
    let mut hits = 0;
    for uid in 1..=100_000u32 {
        let c = Candidate {
            seq: uid,
            uid,
            flags: &flags,
            recent: false,
            internal_date: Date {
                year: 2000,
                month: 1,
                day: 1,
            },
            size: 0,
            modseq: 0,
            raw: b"",
            msg: None,
        };
        hits += usize::from(matches(&p, &c, &ctx));
    }
    assert_eq!(hits, 40_000);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
    for uid in [1, 2, 79_999, 80_000, 80_001] {
        let c = Candidate {
            seq: uid,
            uid,
            flags: &flags,
            recent: false,
            internal_date: Date {
                year: 2000,
                month: 1,
                day: 1,
            },
            size: 0,
            modseq: 0,
            raw: b"",
            msg: None,
        };
        assert_eq!(matches(&p, &c, &ctx), matches(&k, &c, &ctx), "{uid}");
    }
    let saved = [4, 6, 7];
    let ctx = Context {
        max_seq: 10,
        max_uid: 10,
        saved: &saved,
    };
    assert_eq!(
        prepare(&key("$"), &ctx),
        SearchKey::And(vec![SearchKey::Uid(SeqSet::Sorted(vec![(4, 4), (6, 7)]))])
    );
}
