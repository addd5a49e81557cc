//! Tests of the streaming parser and the command grammar.

use super::*;
use proptest::prelude::*;

fn one(s: &str) -> CommandBody {
    let mut p = Parser::default();
    match p.feed(s.as_bytes()) {
        (n, Event::Command(c)) => {
            assert_eq!(n, s.len(), "{s}");
            c.body
        }
        other => panic!("{s:?}: {other:?}"),
    }
}

fn bad(s: &str) -> (Option<String>, &'static str) {
    let mut p = Parser::default();
    match p.feed(s.as_bytes()) {
        (_, Event::Bad { tag, text, .. }) => (tag, text),
        other => panic!("{s:?}: {other:?}"),
    }
}

#[test]
fn simple_commands() {
    assert_eq!(one("a1 CAPABILITY\r\n"), CommandBody::Capability);
    assert_eq!(one("a noop\n"), CommandBody::Noop);
    assert_eq!(one("x.y LOGOUT\r\n"), CommandBody::Logout);
    assert_eq!(one("t UNSELECT\r\n"), CommandBody::Unselect);
    assert_eq!(one("t IDLE\r\n"), CommandBody::Idle);
    assert_eq!(one("t NAMESPACE\r\n"), CommandBody::Namespace);
    assert_eq!(one("t STARTTLS\r\n"), CommandBody::StartTls);
    assert_eq!(
        one("t COMPRESS DEFLATE\r\n"),
        CommandBody::Compress("DEFLATE".into())
    );
    assert_eq!(
        one("t ENABLE UTF8=ACCEPT condstore\r\n"),
        CommandBody::Enable(vec!["UTF8=ACCEPT".into(), "CONDSTORE".into()])
    );
}

#[test]
fn login_forms() {
    assert_eq!(
        one("a LOGIN joe \"se\\\"cret\"\r\n"),
        CommandBody::Login {
            user: b"joe".to_vec(),
            password: b"se\"cret".to_vec()
        }
    );
    assert_eq!(
        one("a LOGIN {3+}\r\njoe {2+}\r\npw\r\n"),
        CommandBody::Login {
            user: b"joe".to_vec(),
            password: b"pw".to_vec()
        }
    );
    assert_eq!(
        one("a AUTHENTICATE plain AGpvZQBwdw==\r\n"),
        CommandBody::Authenticate {
            mechanism: "PLAIN".into(),
            initial: Some(b"AGpvZQBwdw==".to_vec())
        }
    );
    assert_eq!(
        one("a AUTHENTICATE PLAIN =\r\n"),
        CommandBody::Authenticate {
            mechanism: "PLAIN".into(),
            initial: Some(b"=".to_vec())
        }
    );
}

#[test]
fn synchronizing_literal_asks_for_continuation() {
    let mut p = Parser::default();
    let mut buf = b"a LOGIN {3}\r\n".to_vec();
    assert_eq!(p.feed(&buf), (0, Event::Continue));
    // Asked once only.
    assert_eq!(p.feed(&buf), (0, Event::NeedMore));
    buf.extend_from_slice(b"joe {2}\r\n");
    assert_eq!(p.feed(&buf), (0, Event::Continue));
    buf.extend_from_slice(b"pw");
    assert_eq!(p.feed(&buf), (0, Event::NeedMore));
    buf.extend_from_slice(b"\r\n");
    let (n, ev) = p.feed(&buf);
    assert_eq!(n, buf.len());
    assert!(matches!(
        ev,
        Event::Command(Command {
            body: CommandBody::Login { .. },
            ..
        })
    ));
}

#[test]
fn literal_limits() {
    let mut p = Parser::new(Limits {
        max_literal: 100,
        ..Limits::default()
    });
    let (n, ev) = p.feed(b"a7 APPEND INBOX {101}\r\n");
    assert_eq!(n, 23);
    assert_eq!(
        ev,
        Event::Bad {
            tag: Some("a7".into()),
            text: "Literal too large",
            too_big: true
        }
    );
    assert!(matches!(
        p.feed(b"a APPEND INBOX {101+}\r\n"),
        (0, Event::Fatal(_))
    ));
    // LITERAL-: non-synchronizing only up to 4096.
    let mut p = Parser::default();
    assert!(matches!(
        p.feed(b"a APPEND INBOX {4097-}\r\n"),
        (0, Event::Fatal(_))
    ));
    assert!(matches!(
        p.feed(b"a APPEND INBOX {99999999999999999999}\r\n"),
        (_, Event::Bad { too_big: true, .. })
    ));
}

#[test]
fn line_limits() {
    let mut p = Parser::new(Limits {
        max_line: 20,
        ..Limits::default()
    });
    assert!(matches!(p.feed(&[b'a'; 30]), (0, Event::Fatal(_))));
    assert!(matches!(p.feed(b"a NOOP\r\n"), (8, Event::Command(_))));
}

#[test]
fn nesting_bounded() {
    let deep = format!("a SEARCH {}ALL{}\r\n", "(".repeat(100), ")".repeat(100));
    assert_eq!(bad(&deep).1, "Too deep nesting");
    let nots = format!("a SEARCH {}ALL\r\n", "NOT ".repeat(100));
    assert_eq!(bad(&nots).1, "Too deep nesting");
}

#[test]
fn bad_commands_keep_tag() {
    assert_eq!(bad("a12 FOO\r\n"), (Some("a12".into()), "Unknown command"));
    assert_eq!(bad("\r\n").0, None);
    assert_eq!(bad("+ NOOP\r\n").0, None);
    assert_eq!(bad("a NOOP extra\r\n").1, "Unexpected extra arguments");
}

#[test]
fn select_with_qresync() {
    let b = one(
        "a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541 (1,3 41,43)))\r\n",
    );
    let CommandBody::Select(m, p) = b else {
        panic!()
    };
    assert_eq!(m, b"INBOX");
    let q = p.qresync.expect("qresync");
    assert_eq!((q.uidvalidity, q.modseq), (67890007, 20050715194045000));
    assert!(q.known_uids.is_some() && q.seq_match.is_some());
    assert_eq!(
        one("a EXAMINE \"Sent\" (CONDSTORE)\r\n"),
        CommandBody::Examine(
            b"Sent".to_vec(),
            SelectParams {
                condstore: true,
                qresync: None
            }
        )
    );
}

#[test]
fn list_forms() {
    let b = one("a LIST \"\" %\r\n");
    assert!(
        matches!(b, CommandBody::List { ref patterns, ref options, .. } if patterns == &[b"%".to_vec()] && !options.extended)
    );
    let b = one(
        "a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (INBOX* \"Sent\") RETURN (CHILDREN STATUS (MESSAGES UNSEEN SIZE))\r\n",
    );
    let CommandBody::List {
        patterns, options, ..
    } = b
    else {
        panic!()
    };
    assert_eq!(patterns.len(), 2);
    assert!(options.subscribed && options.recursive_match && options.return_children);
    assert_eq!(
        options.return_status,
        Some(vec![
            StatusItem::Messages,
            StatusItem::Unseen,
            StatusItem::Size
        ])
    );
    assert_eq!(
        one("a LSUB \"\" *\r\n"),
        CommandBody::Lsub(b"".to_vec(), b"*".to_vec())
    );
    assert_eq!(
        bad("a LIST (RECURSIVEMATCH) \"\" *\r\n").1,
        "RECURSIVEMATCH needs another selection option"
    );
}

#[test]
fn status_create_rename() {
    assert_eq!(
        one("a STATUS blurdybloop (UIDNEXT MESSAGES HIGHESTMODSEQ DELETED)\r\n"),
        CommandBody::Status(
            b"blurdybloop".to_vec(),
            vec![
                StatusItem::UidNext,
                StatusItem::Messages,
                StatusItem::HighestModSeq,
                StatusItem::Deleted
            ]
        )
    );
    assert!(
        matches!(one("a STATUS x (DELETED-STORAGE SIZE)\r\n"), CommandBody::Status(_, ref v) if v == &[StatusItem::DeletedStorage, StatusItem::Size])
    );
    assert_eq!(
        one("a CREATE Junk (USE (\\Junk))\r\n"),
        CommandBody::Create(b"Junk".to_vec(), vec!["\\Junk".into()])
    );
    assert_eq!(
        one("a RENAME a b\r\n"),
        CommandBody::Rename(b"a".to_vec(), b"b".to_vec())
    );
}

#[test]
fn append_forms() {
    let b = one(
        "a APPEND saved-messages (\\seen $Label) \" 7-Feb-1994 21:52:25 -0800\" {5+}\r\nhello\r\n",
    );
    let CommandBody::Append {
        mailbox,
        flags,
        date,
        message,
    } = b
    else {
        panic!()
    };
    assert_eq!(mailbox, b"saved-messages");
    assert_eq!(flags, vec!["\\Seen".to_string(), "$Label".into()]);
    let d = date.expect("date");
    assert_eq!(
        (
            d.date.day,
            d.date.month,
            d.date.year,
            d.time,
            d.zone_minutes
        ),
        (7, 2, 1994, (21, 52, 25), -480)
    );
    assert_eq!(message, b"hello");
    let b = one("a APPEND INBOX UTF8 (~{3+}\r\nh\0i)\r\n");
    assert!(matches!(b, CommandBody::Append { ref message, .. } if message == b"h\0i"));
    assert_eq!(bad("a APPEND INBOX {3+}\r\nh\0i\r\n").1, "NUL in literal");
}

#[test]
fn fetch_items() {
    let b = one(
        "a FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From Subject)] BODY[1.2.MIME] BODY[]<0.100> BINARY.PEEK[1]<5.10> BINARY.SIZE[2] RFC822.SIZE MODSEQ) (CHANGEDSINCE 12345)\r\n",
    );
    let CommandBody::Fetch {
        attrs,
        changed_since,
        set,
        ..
    } = b
    else {
        panic!()
    };
    assert_eq!(set, SeqSet::Ranges(vec![(SeqNum::Value(1), SeqNum::Star)]));
    assert_eq!(changed_since, Some(12345));
    assert_eq!(
        attrs[1],
        FetchAttr::BodySection {
            peek: true,
            section: Section {
                part: vec![],
                text: Some(SectionText::HeaderFields(vec![
                    "FROM".into(),
                    "SUBJECT".into()
                ]))
            },
            partial: None
        }
    );
    assert_eq!(
        attrs[2],
        FetchAttr::BodySection {
            peek: false,
            section: Section {
                part: vec![1, 2],
                text: Some(SectionText::Mime)
            },
            partial: None
        }
    );
    assert_eq!(
        attrs[3],
        FetchAttr::BodySection {
            peek: false,
            section: Section::default(),
            partial: Some((0, 100))
        }
    );
    assert_eq!(
        attrs[4],
        FetchAttr::Binary {
            peek: true,
            part: vec![1],
            partial: Some((5, 10))
        }
    );
    assert_eq!(attrs[5], FetchAttr::BinarySize(vec![2]));
    assert_eq!(
        one("a FETCH 2 ALL\r\n"),
        CommandBody::Fetch {
            uid: false,
            set: SeqSet::Ranges(vec![(SeqNum::Value(2), SeqNum::Value(2))]),
            attrs: vec![
                FetchAttr::Flags,
                FetchAttr::InternalDate,
                FetchAttr::Rfc822Size,
                FetchAttr::Envelope
            ],
            changed_since: None,
            vanished: false
        }
    );
    assert!(matches!(
        one("a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\n"),
        CommandBody::Fetch {
            uid: true,
            vanished: true,
            ..
        }
    ));
    assert!(matches!(
        one("a FETCH $ BODY\r\n"),
        CommandBody::Fetch {
            set: SeqSet::Saved,
            ..
        }
    ));
    assert!(matches!(
        one("a FETCH 1 BODY[3.TEXT]\r\n"),
        CommandBody::Fetch { .. }
    ));
    assert!(matches!(
        one("a FETCH 1 BODY[4.2.HEADER.FIELDS.NOT (Received)]\r\n"),
        CommandBody::Fetch { .. }
    ));
    assert_eq!(bad("a FETCH 1 BODY[MIME]\r\n").1, "Bad section");
    assert_eq!(
        bad("a FETCH 1 (FLAGS) (VANISHED)\r\n").1,
        "Unknown FETCH modifier"
    );
}

#[test]
fn store_forms() {
    assert_eq!(
        one("a STORE 2:4 +FLAGS.SILENT (\\Deleted \\seen)\r\n"),
        CommandBody::Store {
            uid: false,
            set: SeqSet::Ranges(vec![(SeqNum::Value(2), SeqNum::Value(4))]),
            unchanged_since: None,
            mode: StoreMode::Add,
            silent: true,
            flags: vec!["\\Deleted".into(), "\\Seen".into()]
        }
    );
    assert!(matches!(
        one("a UID STORE 5 (UNCHANGEDSINCE 320162338) -FLAGS Junk\r\n"),
        CommandBody::Store {
            uid: true,
            unchanged_since: Some(320162338),
            mode: StoreMode::Remove,
            ..
        }
    ));
}

#[test]
fn copy_move_expunge() {
    assert!(matches!(
        one("a UID MOVE 42:69 foo\r\n"),
        CommandBody::Move { uid: true, .. }
    ));
    assert!(matches!(
        one("a COPY 2:4 MEETING\r\n"),
        CommandBody::Copy { uid: false, .. }
    ));
    assert!(matches!(
        one("a UID EXPUNGE 3000:3002\r\n"),
        CommandBody::UidExpunge(_)
    ));
}

#[test]
fn search_keys() {
    let b = one(
        "a UID SEARCH RETURN (MIN COUNT SAVE) CHARSET UTF-8 OR FROM \"Smith\" NOT (SEEN 1:3) SINCE 1-Feb-1994 HEADER X-Foo bar UID 5:* LARGER 10 KEYWORD $Junk MODSEQ \"/flags/\\\\draft\" all 620162338\r\n",
    );
    let CommandBody::Search {
        uid,
        ret,
        charset,
        key,
    } = b
    else {
        panic!()
    };
    assert!(uid);
    assert_eq!(
        ret,
        Some(vec![
            SearchReturn::Min,
            SearchReturn::Count,
            SearchReturn::Save
        ])
    );
    assert_eq!(charset.as_deref(), Some("UTF-8"));
    let SearchKey::And(keys) = key else { panic!() };
    assert_eq!(keys.len(), 7);
    assert!(
        matches!(&keys[0], SearchKey::Or(a, b) if **a == SearchKey::From("Smith".into()) && matches!(**b, SearchKey::Not(_)))
    );
    assert_eq!(
        keys[1],
        SearchKey::Since(Date {
            year: 1994,
            month: 2,
            day: 1
        })
    );
    assert_eq!(keys[2], SearchKey::Header("X-Foo".into(), "bar".into()));
    assert_eq!(keys[6], SearchKey::ModSeq(620162338));
    for k in [
        "ALL",
        "ANSWERED",
        "BCC x",
        "BEFORE \"1-Jan-2000\"",
        "BODY x",
        "CC x",
        "DELETED",
        "DRAFT",
        "FLAGGED",
        "FROM x",
        "KEYWORD k",
        "LARGER 1",
        "NEW",
        "NOT ALL",
        "OLD",
        "ON 1-Jan-2000",
        "OR ALL ALL",
        "RECENT",
        "SEEN",
        "SENTBEFORE 1-Jan-2000",
        "SENTON 1-Jan-2000",
        "SENTSINCE 1-Jan-2000",
        "SINCE 1-Jan-2000",
        "SMALLER 1",
        "SUBJECT {3+}\r\nabc",
        "TEXT x",
        "TO x",
        "UID 1",
        "UNANSWERED",
        "UNDELETED",
        "UNDRAFT",
        "UNFLAGGED",
        "UNKEYWORD k",
        "UNSEEN",
        "1,2:*",
        "$",
    ] {
        let s = format!("a SEARCH {k}\r\n");
        assert!(matches!(one(&s), CommandBody::Search { .. }), "{k}");
    }
    assert_eq!(bad("a SEARCH FOO\r\n").1, "Unknown search key");
    assert_eq!(bad("a SEARCH BEFORE 32-Jan-2000\r\n").1, "Bad date");
}

#[test]
fn sort_thread_quota_id() {
    let b = one("a UID SORT (REVERSE ARRIVAL SUBJECT) UTF-8 ALL\r\n");
    assert!(
        matches!(b, CommandBody::Sort { uid: true, ref criteria, .. } if criteria.len() == 2 && criteria[0].reverse)
    );
    assert!(matches!(
        one("a THREAD REFERENCES US-ASCII SINCE 1-Feb-1994\r\n"),
        CommandBody::Thread {
            algorithm: ThreadAlgorithm::References,
            ..
        }
    ));
    assert!(matches!(
        one("a THREAD ORDEREDSUBJECT UTF-8 ALL\r\n"),
        CommandBody::Thread {
            algorithm: ThreadAlgorithm::OrderedSubject,
            ..
        }
    ));
    assert_eq!(
        one("a GETQUOTAROOT INBOX\r\n"),
        CommandBody::GetQuotaRoot(b"INBOX".to_vec())
    );
    assert_eq!(one("a GETQUOTA \"\"\r\n"), CommandBody::GetQuota(vec![]));
    assert_eq!(
        one("a SETQUOTA \"\" (STORAGE 512)\r\n"),
        CommandBody::SetQuota(vec![], vec![("STORAGE".into(), 512)])
    );
    assert_eq!(one("a ID NIL\r\n"), CommandBody::Id(None));
    assert_eq!(
        one("a ID (\"name\" \"sodr\" \"version\" NIL)\r\n"),
        CommandBody::Id(Some(vec![
            ("name".into(), Some("sodr".into())),
            ("version".into(), None)
        ]))
    );
}

#[test]
fn pipelined_commands() {
    let mut p = Parser::default();
    let buf = b"a NOOP\r\nb LOGOUT\r\n";
    let (n, ev) = p.feed(buf);
    assert_eq!((n, matches!(ev, Event::Command(_))), (8, true));
    let (n, ev) = p.feed(&buf[8..]);
    assert_eq!(
        (
            n,
            matches!(
                ev,
                Event::Command(Command {
                    body: CommandBody::Logout,
                    ..
                })
            )
        ),
        (10, true)
    );
}

#[test]
fn take_line_works() {
    assert_eq!(take_line(b"DONE\r\nx", 10), Some(Ok((&b"DONE"[..], 6))));
    assert_eq!(take_line(b"DON", 10), None);
    assert!(matches!(take_line(&[b'x'; 20], 10), Some(Err(_))));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut p = Parser::new(Limits { max_line: 200, max_literal: 100, ..Limits::default() });
        let mut buf = data.as_slice();
        for _ in 0..50 {
            let (n, ev) = p.feed(buf);
            prop_assert!(n <= buf.len());
            buf = &buf[n..];
            if n == 0 && !matches!(ev, Event::Continue) { break; }
        }
    }

    #[test]
    fn never_panics_on_command_shapes(
        cmd in proptest::sample::select(vec!["FETCH 1:* ", "SEARCH ", "UID STORE 1 ", "LIST ", "APPEND x ", "SELECT x ", "SORT ", "THREAD ", "ID ", "STATUS x "]),
        tail in "[ -~]{0,80}",
    ) {
        let mut p = Parser::default();
        let s = format!("t {cmd}{tail}\r\n");
        let _ = p.feed(s.as_bytes());
    }
}

proptest! {
    /// What the response encoder writes as an astring, the parser reads
    /// back as the same octets (atoms, quoted strings and literals alike).
    #[test]
    fn encoded_strings_parse_back(s in proptest::collection::vec(1u8..=255, 0..60), utf8 in any::<bool>()) {
        let mut cmd = b"t LOGIN ".to_vec();
        crate::response::encode::astring(&mut cmd, &s, utf8);
        cmd.extend_from_slice(b" x\r\n");
        let mut p = Parser::default();
        let (_, ev) = p.feed(&cmd);
        let ev = if ev == Event::Continue { p.feed(&cmd).1 } else { ev };
        match ev {
            Event::Command(Command { body: CommandBody::Login { user, .. }, .. }) => prop_assert_eq!(user, s),
            other => prop_assert!(false, "{:?} from {:?}", other, String::from_utf8_lossy(&cmd)),
        }
    }
}

/// Feed `input` in pieces of the given sizes (cycled), as a session would:
/// append what arrives, feed until nothing more happens; collect the
/// commands and BADs; stop at a fatal error.
fn run_chunked(input: &[u8], sizes: &[usize]) -> Vec<Event> {
    let mut p = Parser::new(Limits {
        max_line: 300,
        max_literal: 200,
        ..Limits::default()
    });
    let mut buf: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    loop {
        loop {
            let (n, ev) = p.feed(&buf);
            assert!(n <= buf.len());
            buf.drain(..n);
            match ev {
                Event::NeedMore | Event::Continue => break,
                Event::Fatal(_) => {
                    events.push(ev);
                    return events;
                }
                ev => events.push(ev),
            }
        }
        if pos >= input.len() {
            return events;
        }
        let step = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(1)
            .max(1);
        i += 1;
        let end = (pos + step).min(input.len());
        buf.extend_from_slice(&input[pos..end]);
        pos = end;
    }
}

fn token_soup() -> impl Strategy<Value = Vec<u8>> {
    let tokens = vec![
        "a ",
        "b1 ",
        "FETCH ",
        "UID ",
        "1:*",
        ",",
        "$ ",
        "(",
        ")",
        "BODY[",
        "]",
        "HEADER.FIELDS ",
        "<0.10>",
        "\"q\\\"x\"",
        "{3}\r\nabc",
        "{2+}\r\nxy",
        "{1-}\r\nz",
        "~{2}\r\n\0\0",
        "{999}\r\n",
        "SEARCH ",
        "OR ",
        "NOT ",
        "ALL",
        "LOGIN ",
        "APPEND INBOX ",
        "\r\n",
        "\n",
        " ",
        "STORE 1 +FLAGS (\\Seen)",
        "LIST \"\" %",
        "IDLE",
        "\u{e9}",
        "*",
        "%",
    ];
    proptest::collection::vec(proptest::sample::select(tokens), 0..40)
        .prop_map(|v| v.concat().into_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// However the bytes are split, the same commands and BADs come out.
    #[test]
    fn streaming_is_split_independent(
        input in token_soup(),
        sizes in proptest::collection::vec(1usize..8, 1..5),
    ) {
        let whole = run_chunked(&input, &[usize::MAX]);
        let pieces = run_chunked(&input, &sizes);
        prop_assert_eq!(whole, pieces);
    }
}

#[test]
fn drip_feed_is_linear() {
    // 200,000 octets arriving one at a time: framing resumes where it
    // stopped, so this is 200,000 small steps, not 2e10 octet compares.
    let mut p = Parser::new(Limits {
        max_line: 300_000,
        max_command: 300_000,
        ..Limits::default()
    });
    let mut line = b"a LOGIN ".to_vec();
    line.extend(std::iter::repeat_n(b'x', 200_000));
    line.extend_from_slice(b" {3}\r\npw!\r\n");
    let t = std::time::Instant::now();
    let mut events = Vec::new();
    for i in 1..=line.len() {
        match p.feed(&line[..i]) {
            (0, Event::NeedMore) | (0, Event::Continue) => {}
            (n, ev) => events.push((n, ev)),
        }
    }
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(events.len(), 1);
    assert!(
        matches!(&events[0], (n, Event::Command(Command { body: CommandBody::Login { password, .. }, .. })) if *n == line.len() && password == b"pw!")
    );
}
