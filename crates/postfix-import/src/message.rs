//! One Postfix queue file read into an envelope and a content.
//!
//! Two shapes exist (rec_type.h): the queue file cleanup writes (first
//! record `C`, size and offsets; found in incoming/, active/, deferred/,
//! hold/) and the pickup file postdrop writes (maildrop/; no `C` record,
//! DSN values as `A` attributes). Both are three segments: the envelope
//! (time `T`, sender `S`, recipients `R`, attributes `A`, ...) up to `M`,
//! the content (`N` a line, `L` a piece of a longer line, `w` padding) up
//! to `X`, the extracted segment (more recipients) up to `E`.
//!
//! Per recipient, `O` (original recipient), `o` (DSN ORCPT) and `n` (DSN
//! NOTIFY) come before its `R`; a recipient already delivered has had its
//! `R` overwritten with `D` (done) or `/` (cancelled) and is skipped.
//!
//! What the file asks for and our queue cannot carry (a content filter
//! `L`/`I` in the envelope, VERP `V`, a redirect `>`, a record type
//! Postfix itself would reject) makes the file [`Unsafe`]: it is left for
//! Postfix to deliver rather than sent without that step.

use crate::record::{RecordError, Records, show};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Which of the two file shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// cleanup's queue file (incoming, active, deferred, hold).
    Queue,
    /// postdrop's file (maildrop).
    Pickup,
}

/// One recipient still to be delivered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rcpt {
    /// The address.
    pub address: String,
    /// The original recipient (`O`), if the file has one.
    pub original: Option<String>,
    /// DSN ORCPT (`o` or `A dsn_orig_rcpt=`).
    pub dsn_orcpt: Option<String>,
    /// DSN NOTIFY bits (`n` or `A notify_flags=`), Postfix's values (the
    /// same bits as ours).
    pub dsn_notify: u8,
}

/// What a Postfix queue file holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PostfixMessage {
    /// Arrival time (`T`).
    pub arrival: Option<SystemTime>,
    /// Envelope sender (`S`); empty for `<>`.
    pub sender: String,
    /// Recipients still to deliver, in file order.
    pub recipients: Vec<Rcpt>,
    /// Recipients already delivered or cancelled (skipped).
    pub done: usize,
    /// Full name (`F`).
    pub full_name: Option<String>,
    /// DSN ENVID.
    pub dsn_envid: Option<String>,
    /// DSN RET bits (1 full, 2 headers).
    pub dsn_ret: Option<u8>,
    /// Other named attributes (`A name=value`), in file order.
    pub attributes: Vec<(String, String)>,
    /// The content: `N` records end in a newline, `L` records do not.
    pub content: Vec<u8>,
}

/// Why a file is not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The record stream is damaged.
    Record(RecordError),
    /// The records are readable but make no message (no sender, no end
    /// record, a record out of place, ...).
    Malformed {
        /// Byte offset of the record at fault.
        offset: usize,
        /// What is wrong.
        problem: String,
    },
    /// A message our queue cannot carry faithfully.
    Unsafe(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Record(e) => write!(f, "damaged record: {e}"),
            ParseError::Malformed { offset, problem } => {
                write!(f, "malformed at offset {offset}: {problem}")
            }
            ParseError::Unsafe(why) => write!(f, "cannot be imported safely: {why}"),
        }
    }
}

impl std::error::Error for ParseError {}

impl From<RecordError> for ParseError {
    fn from(e: RecordError) -> ParseError {
        ParseError::Record(e)
    }
}

/// Longest envelope field taken (an address, an attribute value).
const MAX_FIELD: usize = 64 * 1024;

/// Which segment the reader is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    Envelope,
    Content,
    Extracted,
}

/// Per-recipient values waiting for their `R`.
#[derive(Debug, Default)]
struct Pending {
    original: Option<String>,
    orcpt: Option<String>,
    notify: u8,
}

/// Reads a whole Postfix file (its bytes) of the given shape.
///
/// # Errors
/// [`ParseError`] for a damaged file, one that is not a message, or one
/// that asks for something our queue cannot carry.
pub fn parse(buf: &[u8], shape: Shape) -> Result<PostfixMessage, ParseError> {
    let mut msg = PostfixMessage::default();
    let mut records = Records::new(buf);
    let mut segment = Segment::Envelope;
    let mut pending = Pending::default();
    let mut seen_sender = false;
    let mut first = true;
    let mut ended = false;
    while let Some(rec) = records.next_record()? {
        let bad = |problem: String| ParseError::Malformed {
            offset: rec.offset,
            problem,
        };
        if rec.data.len() > MAX_FIELD && segment != Segment::Content {
            return Err(bad(format!("record {} too long", show(rec.kind))));
        }
        if first {
            first = false;
            match (shape, rec.kind) {
                (Shape::Queue, b'C') | (Shape::Pickup, _) => {}
                (Shape::Queue, k) => {
                    return Err(bad(format!(
                        "first record is {}, not the size record 'C'",
                        show(k)
                    )));
                }
            }
        }
        if segment == Segment::Content {
            match rec.kind {
                b'N' => {
                    msg.content.extend_from_slice(rec.data);
                    msg.content.push(b'\n');
                }
                b'L' => msg.content.extend_from_slice(rec.data),
                b'w' => {}
                b'X' => segment = Segment::Extracted,
                k => return Err(bad(format!("unexpected record {} in the content", show(k)))),
            }
            continue;
        }
        // Attributes that stand for records (Postfix's rec_attr_map and
        // mail_proto.h names: envelope_id, ret_flags, notify_flags,
        // dsn_orig_rcpt, create_time).
        let (kind, value): (u8, String) = if rec.kind == b'A' {
            let text = rec.text();
            let Some((name, value)) = text.split_once('=') else {
                return Err(bad(format!("bad attribute record: {text}")));
            };
            let name = name.trim();
            match name {
                "envelope_id" => (b'i', value.to_owned()),
                "ret_flags" => (b'<', value.to_owned()),
                "notify_flags" => (b'n', value.to_owned()),
                "dsn_orig_rcpt" => (b'o', value.to_owned()),
                "create_time" => (b'c', value.to_owned()),
                _ => {
                    if name.is_empty() {
                        return Err(bad(format!("bad attribute record: {text}")));
                    }
                    msg.attributes.push((name.to_owned(), value.to_owned()));
                    continue;
                }
            }
        } else {
            (rec.kind, rec.text().into_owned())
        };
        match kind {
            b'C' if segment == Segment::Envelope => {}
            b'T' if segment == Segment::Envelope => {
                msg.arrival = Some(
                    parse_time(&value).ok_or_else(|| bad(format!("bad time record: {value}")))?,
                );
            }
            b'c' | b'W' | b'P' | b'f' | b'd' | b'm' | b'r' | b'e' | b'K' | b'w' => {}
            b'F' => msg.full_name = Some(value),
            b'S' if segment == Segment::Envelope => {
                if seen_sender {
                    return Err(bad("second sender record".into()));
                }
                seen_sender = true;
                msg.sender = value;
            }
            b'O' => pending.original = Some(value),
            b'o' => pending.orcpt = Some(value),
            b'n' => {
                let n: u8 = value
                    .trim()
                    .parse()
                    .ok()
                    .filter(|&n| n != 0 && n < 16)
                    .ok_or_else(|| bad(format!("bad DSN notify value: {value}")))?;
                pending.notify = n;
            }
            b'R' => {
                let p = std::mem::take(&mut pending);
                // An empty recipient is Postfix's marker for "no address
                // in that argument"; cleanup drops it.
                if !value.is_empty() {
                    msg.recipients.push(Rcpt {
                        address: value,
                        original: p.original,
                        dsn_orcpt: p.orcpt,
                        dsn_notify: p.notify,
                    });
                }
            }
            b'D' | b'/' => {
                pending = Pending::default();
                msg.done += 1;
            }
            b'i' => msg.dsn_envid = Some(value),
            b'<' => {
                let n: u8 = value
                    .trim()
                    .parse()
                    .ok()
                    .filter(|&n| n == 1 || n == 2)
                    .ok_or_else(|| bad(format!("bad DSN ret value: {value}")))?;
                msg.dsn_ret = Some(n);
            }
            b'M' if segment == Segment::Envelope => segment = Segment::Content,
            b'E' if segment == Segment::Extracted => {
                ended = true;
                break;
            }
            b'L' | b'I' => {
                return Err(ParseError::Unsafe(format!(
                    "it names a content filter ({value}) that our system does not run"
                )));
            }
            b'V' => return Err(ParseError::Unsafe("it asks for VERP delivery".into())),
            b'>' => {
                return Err(ParseError::Unsafe(format!(
                    "it is redirected to {value} (access table REDIRECT)"
                )));
            }
            k => {
                return Err(bad(format!(
                    "unexpected record {} in the {} segment",
                    show(k),
                    if segment == Segment::Envelope {
                        "envelope"
                    } else {
                        "extracted"
                    }
                )));
            }
        }
    }
    if !ended {
        return Err(ParseError::Malformed {
            offset: buf.len(),
            problem: "no end record (an incomplete file)".into(),
        });
    }
    if !seen_sender {
        return Err(ParseError::Malformed {
            offset: 0,
            problem: "no sender record".into(),
        });
    }
    if msg.arrival.is_none() && shape == Shape::Queue {
        return Err(ParseError::Malformed {
            offset: 0,
            problem: "no arrival time record".into(),
        });
    }
    Ok(msg)
}

/// `T` record: "seconds microseconds" (or seconds alone, older files).
fn parse_time(text: &str) -> Option<SystemTime> {
    let mut parts = text.split_ascii_whitespace();
    let secs: u64 = parts.next()?.parse().ok()?;
    let micros: u64 = match parts.next() {
        Some(u) => u.parse().ok().filter(|&u| u < 1_000_000)?,
        None => 0,
    };
    if parts.next().is_some() {
        return None;
    }
    UNIX_EPOCH.checked_add(Duration::from_secs(secs) + Duration::from_micros(micros))
}

#[cfg(test)]
mod tests;
