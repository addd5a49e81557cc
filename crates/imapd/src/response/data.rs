//! Untagged data responses other than FETCH: LIST/LSUB (with
//! LIST-EXTENDED's CHILDINFO), STATUS, SEARCH (with CONDSTORE's MODSEQ),
//! ESEARCH (RFC 4731), VANISHED (QRESYNC), FLAGS, EXISTS and EXPUNGE.

use super::encode::{seq_set, string};
use super::mailbox_name;
use crate::parse::{SearchReturn, StatusItem};

/// `* LIST (attrs) "delim" name [extended data]`. `delim` None is NIL.
pub fn list(
    out: &mut Vec<u8>,
    cmd: &str,
    attrs: &[&str],
    delim: Option<char>,
    name: &str,
    utf8: bool,
    childinfo_subscribed: bool,
) {
    out.extend_from_slice(format!("* {cmd} ({}) ", attrs.join(" ")).as_bytes());
    match delim {
        Some(d) => {
            let mut b = [0u8; 4];
            string(out, d.encode_utf8(&mut b).as_bytes(), false);
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    mailbox_name(out, name, utf8);
    if childinfo_subscribed {
        out.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
    }
    out.extend_from_slice(b"\r\n");
}

fn status_item_name(i: StatusItem) -> &'static str {
    match i {
        StatusItem::Messages => "MESSAGES",
        StatusItem::Recent => "RECENT",
        StatusItem::UidNext => "UIDNEXT",
        StatusItem::UidValidity => "UIDVALIDITY",
        StatusItem::Unseen => "UNSEEN",
        StatusItem::Deleted => "DELETED",
        StatusItem::Size => "SIZE",
        StatusItem::HighestModSeq => "HIGHESTMODSEQ",
        StatusItem::DeletedStorage => "DELETED-STORAGE",
    }
}

/// `* STATUS name (ITEM n ...)`.
pub fn status(out: &mut Vec<u8>, name: &str, items: &[(StatusItem, u64)], utf8: bool) {
    out.extend_from_slice(b"* STATUS ");
    mailbox_name(out, name, utf8);
    out.extend_from_slice(b" (");
    let parts: Vec<String> = items
        .iter()
        .map(|(i, n)| format!("{} {n}", status_item_name(*i)))
        .collect();
    out.extend_from_slice(parts.join(" ").as_bytes());
    out.extend_from_slice(b")\r\n");
}

/// `* SEARCH n...` (or `* SORT`), with `(MODSEQ m)` when given and
/// something matched.
pub fn search(out: &mut Vec<u8>, word: &str, nums: &[u32], modseq: Option<u64>) {
    out.extend_from_slice(b"* ");
    out.extend_from_slice(word.as_bytes());
    for n in nums {
        out.extend_from_slice(format!(" {n}").as_bytes());
    }
    if let Some(m) = modseq.filter(|_| !nums.is_empty()) {
        out.extend_from_slice(format!(" (MODSEQ {m})").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// `* ESEARCH (TAG "t") [UID] MIN a MAX b COUNT c ALL set [MODSEQ m]` for
/// the requested options (RETURN () means ALL); MIN, MAX and ALL are left
/// out when nothing matched.
pub fn esearch(
    out: &mut Vec<u8>,
    tag: &str,
    uid: bool,
    ret: &[SearchReturn],
    nums: &[u32],
    modseq: Option<u64>,
) {
    out.extend_from_slice(b"* ESEARCH (TAG ");
    string(out, tag.as_bytes(), false);
    out.push(b')');
    if uid {
        out.extend_from_slice(b" UID");
    }
    let all_default = [SearchReturn::All];
    let ret = if ret.iter().all(|r| *r == SearchReturn::Save) && !ret.is_empty() {
        &[][..]
    } else if ret.is_empty() {
        &all_default[..]
    } else {
        ret
    };
    let min = nums.iter().min();
    let max = nums.iter().max();
    for r in ret {
        match r {
            SearchReturn::Min => {
                if let Some(m) = min {
                    out.extend_from_slice(format!(" MIN {m}").as_bytes());
                }
            }
            SearchReturn::Max => {
                if let Some(m) = max {
                    out.extend_from_slice(format!(" MAX {m}").as_bytes());
                }
            }
            SearchReturn::Count => {
                out.extend_from_slice(format!(" COUNT {}", nums.len()).as_bytes())
            }
            SearchReturn::All => {
                if !nums.is_empty() {
                    out.extend_from_slice(format!(" ALL {}", seq_set(nums)).as_bytes());
                }
            }
            SearchReturn::Save => {}
        }
    }
    if let Some(m) = modseq.filter(|_| !nums.is_empty()) {
        out.extend_from_slice(format!(" MODSEQ {m}").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// `* VANISHED [(EARLIER)] uid-set` (QRESYNC).
pub fn vanished(out: &mut Vec<u8>, earlier: bool, uids: &[u32]) {
    if uids.is_empty() {
        return;
    }
    out.extend_from_slice(if earlier {
        b"* VANISHED (EARLIER) "
    } else {
        b"* VANISHED "
    });
    out.extend_from_slice(seq_set(uids).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `* FLAGS (...)`.
pub fn flags(out: &mut Vec<u8>, flags: &[String]) {
    out.extend_from_slice(format!("* FLAGS ({})\r\n", flags.join(" ")).as_bytes());
}

/// `* n EXISTS`.
pub fn exists(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(format!("* {n} EXISTS\r\n").as_bytes());
}

/// `* n EXPUNGE`.
pub fn expunge(out: &mut Vec<u8>, seq: u32) {
    out.extend_from_slice(format!("* {seq} EXPUNGE\r\n").as_bytes());
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
    fn lines() {
        assert_eq!(
            s(|o| list(
                o,
                "LIST",
                &["\\HasNoChildren", "\\Sent"],
                Some('.'),
                "Gesendete Objekte",
                false,
                false
            )),
            "* LIST (\\HasNoChildren \\Sent) \".\" \"Gesendete Objekte\"\r\n"
        );
        assert_eq!(
            s(|o| list(o, "LIST", &["\\Noselect"], None, "", false, false)),
            "* LIST (\\Noselect) NIL \"\"\r\n"
        );
        assert_eq!(
            s(|o| list(o, "LIST", &[], Some('.'), "Entwürfe", false, true)),
            "* LIST () \".\" Entw&APw-rfe (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"
        );
        assert_eq!(
            s(|o| status(
                o,
                "INBOX",
                &[(StatusItem::Messages, 3), (StatusItem::UidNext, 44)],
                false
            )),
            "* STATUS INBOX (MESSAGES 3 UIDNEXT 44)\r\n"
        );
        assert_eq!(
            s(|o| search(o, "SEARCH", &[2, 5], Some(9))),
            "* SEARCH 2 5 (MODSEQ 9)\r\n"
        );
        assert_eq!(s(|o| search(o, "SEARCH", &[], Some(9))), "* SEARCH\r\n");
        assert_eq!(
            s(|o| esearch(
                o,
                "a1",
                true,
                &[SearchReturn::Min, SearchReturn::Count, SearchReturn::All],
                &[3, 1, 2, 9],
                None
            )),
            "* ESEARCH (TAG \"a1\") UID MIN 1 COUNT 4 ALL 1:3,9\r\n"
        );
        assert_eq!(
            s(|o| esearch(
                o,
                "a",
                false,
                &[SearchReturn::Min, SearchReturn::Count],
                &[],
                None
            )),
            "* ESEARCH (TAG \"a\") COUNT 0\r\n"
        );
        assert_eq!(
            s(|o| esearch(o, "a", false, &[], &[4, 5], Some(7))),
            "* ESEARCH (TAG \"a\") ALL 4:5 MODSEQ 7\r\n"
        );
        assert_eq!(
            s(|o| vanished(o, true, &[1, 2, 3, 8])),
            "* VANISHED (EARLIER) 1:3,8\r\n"
        );
        assert_eq!(
            s(|o| flags(o, &["\\Seen".into(), "$Junk".into()])),
            "* FLAGS (\\Seen $Junk)\r\n"
        );
        assert_eq!(
            s(|o| {
                exists(o, 4);
                expunge(o, 2)
            }),
            "* 4 EXISTS\r\n* 2 EXPUNGE\r\n"
        );
    }
}
