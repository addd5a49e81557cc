//! SORT (RFC 5256): the sort keys of each message and the ordering, with
//! the sequence number breaking ties.

use crate::parse::{SortCriterion, SortKey};
use crate::thread::subject::base_subject;
use mail_parser::{HeaderValue, Message};
use std::cmp::Ordering;

/// The SORT keys of one message.
#[derive(Debug, Clone, Default)]
pub struct SortInfo {
    /// Sequence number (ties).
    pub seq: u32,
    /// UID.
    pub uid: u32,
    /// Internal date, Unix time.
    pub arrival: i64,
    /// Sent date (Date: in UTC, else the internal date), Unix time.
    pub date: i64,
    /// RFC822.SIZE.
    pub size: u64,
    /// addr-mailbox of the first From address, ASCII lower case.
    pub from: String,
    /// Same for To.
    pub to: String,
    /// Same for Cc.
    pub cc: String,
    /// Base subject, case-folded.
    pub subject: String,
}

fn first_mailbox(msg: Option<&Message<'_>>, name: &str) -> String {
    let Some(m) = msg else { return String::new() };
    let v = m.parts.first().and_then(|p| {
        p.headers
            .iter()
            .find(|h| h.name.as_str().eq_ignore_ascii_case(name))
    });
    match v.map(|h| &h.value) {
        Some(HeaderValue::Address(a)) => a
            .first()
            .and_then(|a| a.address.as_deref())
            .map(|a| {
                a.rsplit_once('@')
                    .map_or(a, |(l, _)| l)
                    .to_ascii_lowercase()
            })
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// The keys of a message; `msg` None (unparsable) sorts with empty keys.
pub fn sort_info(
    msg: Option<&Message<'_>>,
    seq: u32,
    uid: u32,
    arrival: i64,
    size: u64,
) -> SortInfo {
    let date = msg
        .and_then(|m| m.date())
        .filter(|d| d.is_valid())
        .map_or(arrival, |d| d.to_timestamp());
    SortInfo {
        seq,
        uid,
        arrival,
        date,
        size,
        from: first_mailbox(msg, "From"),
        to: first_mailbox(msg, "To"),
        cc: first_mailbox(msg, "Cc"),
        subject: base_subject(msg.and_then(|m| m.subject()).unwrap_or("")).0,
    }
}

/// Order `items` by the criteria, then by sequence number.
pub fn sort(criteria: &[SortCriterion], items: &mut [SortInfo]) {
    items.sort_by(|a, b| {
        for c in criteria {
            let o = match c.key {
                SortKey::Arrival => a.arrival.cmp(&b.arrival),
                SortKey::Cc => a.cc.cmp(&b.cc),
                SortKey::Date => a.date.cmp(&b.date),
                SortKey::From => a.from.cmp(&b.from),
                SortKey::Size => a.size.cmp(&b.size),
                SortKey::Subject => a.subject.cmp(&b.subject),
                SortKey::To => a.to.cmp(&b.to),
            };
            let o = if c.reverse { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        a.seq.cmp(&b.seq)
    });
}
