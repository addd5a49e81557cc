//! Evaluating a SEARCH key against one message.

use super::text::{body_contains, contains_ci, header_block_contains, header_texts};
use crate::parse::{Date, SearchKey, SeqSet};
use mail_parser::Message;

/// One message as SEARCH sees it.
pub struct Candidate<'a, 'x> {
    /// Sequence number.
    pub seq: u32,
    /// UID.
    pub uid: u32,
    /// Flags and keywords (system flags as `\Seen` etc.), without \Recent.
    pub flags: &'a [String],
    /// The session sees it as recent (rev1 \Recent).
    pub recent: bool,
    /// The internal date's calendar date (in the server's time zone).
    pub internal_date: Date,
    /// RFC822.SIZE.
    pub size: u64,
    /// MODSEQ.
    pub modseq: u64,
    /// The raw message, when a key needs it.
    pub raw: &'a [u8],
    /// The parsed message, when a key needs it.
    pub msg: Option<&'a Message<'x>>,
}

/// The mailbox around the candidates.
pub struct Context<'a> {
    /// The largest sequence number (`*`).
    pub max_seq: u32,
    /// The largest UID (`*` in UID sets).
    pub max_uid: u32,
    /// UIDs of the saved search result (`$`).
    pub saved: &'a [u32],
}

/// Does any key need the message's bytes (header, body or sent date)?
pub fn needs_message(key: &SearchKey) -> bool {
    use SearchKey as K;
    match key {
        K::And(v) => v.iter().any(needs_message),
        K::Not(k) => needs_message(k),
        K::Or(a, b) => needs_message(a) || needs_message(b),
        K::Bcc(_)
        | K::Body(_)
        | K::Cc(_)
        | K::From(_)
        | K::Header(..)
        | K::Subject(_)
        | K::Text(_)
        | K::To(_) => true,
        K::SentBefore(_) | K::SentOn(_) | K::SentSince(_) => true,
        _ => false,
    }
}

fn has_flag(c: &Candidate<'_, '_>, f: &str) -> bool {
    c.flags.iter().any(|x| x.eq_ignore_ascii_case(f))
}

fn in_set(set: &SeqSet, n: u32, max: u32, uid: u32, saved: &[u32]) -> bool {
    match set {
        SeqSet::Saved => saved.contains(&uid),
        s => s.contains(n, max),
    }
}

fn header_has(c: &Candidate<'_, '_>, name: &str, needle: &str) -> bool {
    match c.msg {
        Some(m) => header_texts(m, name).iter().any(|t| contains_ci(t, needle)),
        None => false,
    }
}

/// The sent date (Date: header, else the internal date) as a calendar date
/// in the header's own zone (RFC 3501: time and zone disregarded).
fn sent_date(c: &Candidate<'_, '_>) -> Date {
    c.msg
        .and_then(|m| m.date())
        .filter(|d| d.is_valid())
        .map_or(c.internal_date, |d| Date {
            year: d.year,
            month: d.month,
            day: d.day,
        })
}

/// The key made ready for many candidates: every sequence and UID set
/// resolved into sorted ranges (binary search instead of a scan of each
/// range per message) and `$` into the saved UIDs.
pub fn prepare(key: &SearchKey, ctx: &Context<'_>) -> SearchKey {
    use SearchKey as K;
    let uid_saved = || K::Uid(SeqSet::from_numbers(ctx.saved));
    match key {
        K::And(v) => K::And(v.iter().map(|k| prepare(k, ctx)).collect()),
        K::Not(k) => K::Not(Box::new(prepare(k, ctx))),
        K::Or(a, b) => K::Or(Box::new(prepare(a, ctx)), Box::new(prepare(b, ctx))),
        K::Seq(SeqSet::Saved) | K::Uid(SeqSet::Saved) => uid_saved(),
        K::Seq(s) => K::Seq(s.normalize(ctx.max_seq)),
        K::Uid(s) => K::Uid(s.normalize(ctx.max_uid)),
        other => other.clone(),
    }
}

/// Does `key` match the candidate? (Call [`prepare`] first when testing
/// many candidates.)
pub fn matches(key: &SearchKey, c: &Candidate<'_, '_>, ctx: &Context<'_>) -> bool {
    use SearchKey as K;
    match key {
        K::And(v) => v.iter().all(|k| matches(k, c, ctx)),
        K::Seq(s) => in_set(s, c.seq, ctx.max_seq, c.uid, ctx.saved),
        K::Uid(s) => in_set(s, c.uid, ctx.max_uid, c.uid, ctx.saved),
        K::All => true,
        K::Answered => has_flag(c, "\\Answered"),
        K::Deleted => has_flag(c, "\\Deleted"),
        K::Draft => has_flag(c, "\\Draft"),
        K::Flagged => has_flag(c, "\\Flagged"),
        K::Seen => has_flag(c, "\\Seen"),
        K::Unanswered => !has_flag(c, "\\Answered"),
        K::Undeleted => !has_flag(c, "\\Deleted"),
        K::Undraft => !has_flag(c, "\\Draft"),
        K::Unflagged => !has_flag(c, "\\Flagged"),
        K::Unseen => !has_flag(c, "\\Seen"),
        K::Keyword(k) => has_flag(c, k),
        K::Unkeyword(k) => !has_flag(c, k),
        K::Recent => c.recent,
        K::New => c.recent && !has_flag(c, "\\Seen"),
        K::Old => !c.recent,
        K::Before(d) => c.internal_date < *d,
        K::On(d) => c.internal_date == *d,
        K::Since(d) => c.internal_date >= *d,
        K::SentBefore(d) => sent_date(c) < *d,
        K::SentOn(d) => sent_date(c) == *d,
        K::SentSince(d) => sent_date(c) >= *d,
        K::Larger(n) => c.size > *n,
        K::Smaller(n) => c.size < *n,
        K::ModSeq(n) => c.modseq >= *n,
        K::Not(k) => !matches(k, c, ctx),
        K::Or(a, b) => matches(a, c, ctx) || matches(b, c, ctx),
        K::Bcc(s) => header_has(c, "Bcc", s),
        K::Cc(s) => header_has(c, "Cc", s),
        K::From(s) => header_has(c, "From", s),
        K::To(s) => header_has(c, "To", s),
        K::Subject(s) => header_has(c, "Subject", s),
        K::Header(name, s) => match c.msg {
            Some(m) => {
                let t = header_texts(m, name);
                // HEADER name "": every message with the field.
                !t.is_empty() && t.iter().any(|v| contains_ci(v, s))
            }
            None => false,
        },
        K::Body(s) => match c.msg {
            Some(m) => body_contains(m, s, 0),
            None => contains_ci(&String::from_utf8_lossy(c.raw), s),
        },
        K::Text(s) => match c.msg {
            Some(m) => header_block_contains(m, s) || body_contains(m, s, 0),
            None => contains_ci(&String::from_utf8_lossy(c.raw), s),
        },
    }
}
