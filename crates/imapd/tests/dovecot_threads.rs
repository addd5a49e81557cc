//! THREAD (REFERENCES, ORDEREDSUBJECT), SORT and SEARCH over tests/threads
//! compared with Dovecot 2.3.19's answers for the same messages appended
//! in the same order (expected.dovecot and search.dovecot, captured with
//! dovecot-imapd).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use imapd::parse::{CommandBody, Date, Event, Parser};
use imapd::search::sort::{sort, sort_info};
use imapd::search::{Candidate, Context, matches};
use imapd::structure::parse;
use imapd::thread::orderedsubject::ordered_subject;
use imapd::thread::references::references;
use imapd::thread::thread_info;
use std::path::Path;

#[test]
fn threads_and_sorts_match_dovecot() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/threads");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    let raws: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let msgs: Vec<_> = raws.iter().map(|r| parse(r)).collect();
    let expected = std::fs::read_to_string(dir.join("expected.dovecot")).unwrap();
    let mut checked = 0;
    for line in expected.lines() {
        let (query, want) = line.split_once('\t').unwrap();
        let cmd = format!("a {query}\r\n");
        let got = match Parser::default().feed(cmd.as_bytes()).1 {
            Event::Command(c) => match c.body {
                CommandBody::Thread { algorithm, .. } => {
                    let infos: Vec<_> = msgs
                        .iter()
                        .enumerate()
                        .map(|(i, m)| thread_info(m.as_ref(), i as u32 + 1, i as u32 + 1, i as i64))
                        .collect();
                    let f = match algorithm {
                        imapd::parse::ThreadAlgorithm::References => references(&infos),
                        imapd::parse::ThreadAlgorithm::OrderedSubject => ordered_subject(&infos),
                    };
                    format!("* THREAD {}", f.format())
                }
                CommandBody::Sort { criteria, .. } => {
                    let mut v: Vec<_> = msgs
                        .iter()
                        .enumerate()
                        .map(|(i, m)| {
                            sort_info(
                                m.as_ref(),
                                i as u32 + 1,
                                i as u32 + 1,
                                i as i64,
                                raws[i].len() as u64,
                            )
                        })
                        .collect();
                    sort(&criteria, &mut v);
                    let ids: Vec<String> = v.iter().map(|s| s.seq.to_string()).collect();
                    format!("* SORT {}", ids.join(" "))
                }
                other => panic!("{other:?}"),
            },
            e => panic!("{e:?}"),
        };
        assert_eq!(got, want, "{query}");
        checked += 1;
    }
    assert!(checked >= 6);
}

#[test]
fn searches_match_dovecot() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/threads");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    let raws: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let msgs: Vec<_> = raws.iter().map(|r| parse(r)).collect();
    let expected = std::fs::read_to_string(dir.join("search.dovecot")).unwrap();
    let n = raws.len() as u32;
    let mut checked = 0;
    for line in expected.lines() {
        let (query, want) = line.split_once('\t').unwrap();
        let key = match Parser::default()
            .feed(format!("a {query}\r\n").as_bytes())
            .1
        {
            Event::Command(c) => match c.body {
                CommandBody::Search { key, .. } => key,
                other => panic!("{other:?}"),
            },
            e => panic!("{e:?}"),
        };
        let ctx = Context {
            max_seq: n,
            max_uid: n,
            saved: &[],
        };
        let hits: Vec<String> = (0..raws.len())
            .filter(|&i| {
                let c = Candidate {
                    seq: i as u32 + 1,
                    uid: i as u32 + 1,
                    flags: &[],
                    recent: false,
                    internal_date: Date {
                        year: 2026,
                        month: 12,
                        day: 7,
                    },
                    size: raws[i].len() as u64,
                    modseq: 1,
                    raw: &raws[i],
                    msg: msgs[i].as_ref(),
                };
                matches(&key, &c, &ctx)
            })
            .map(|i| (i + 1).to_string())
            .collect();
        let got = if hits.is_empty() {
            "* SEARCH".to_string()
        } else {
            format!("* SEARCH {}", hits.join(" "))
        };
        assert_eq!(got, want, "{query}");
        checked += 1;
    }
    assert!(checked >= 20);
}
