//! Building one log record: the bounded, cleaned message text, the time
//! stamps of the two record shapes, and `printable` for untrusted text.
//!
//! Every record is built in memory first so that it leaves the process in
//! one write(2) or send(2) call: records from concurrent processes that
//! share a maillog_file (opened with O_APPEND) then never interleave.

use std::fmt;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

/// Longest message text, in bytes, that one record carries; longer text
/// is cut (at a character boundary). Postfix cuts at 2000 characters,
/// because unlimited logging is a liability.
pub const TEXT_LIMIT: usize = 2000;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// True for characters that must not reach a log record as they are:
/// controls (newline, carriage return, escape, tab, ...), Unicode line and
/// paragraph separators, and the bidirectional and zero-width format
/// characters that can make a record display as something else.
fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// A `fmt::Write` sink that keeps at most `limit` bytes, replacing each
/// unsafe character with `?` on the way in. Formatting a huge message
/// therefore never allocates more than the limit.
#[derive(Debug)]
pub(crate) struct CleanText {
    buf: String,
    limit: usize,
    full: bool,
}

impl CleanText {
    pub(crate) fn new(limit: usize) -> CleanText {
        CleanText {
            buf: String::with_capacity(limit.min(256)),
            limit,
            full: false,
        }
    }

    /// Formats `args` into a cleaned string of at most `limit` bytes.
    pub(crate) fn format(args: fmt::Arguments<'_>, limit: usize) -> String {
        let mut text = CleanText::new(limit);
        // Our write_str never fails; a Display impl that fails leaves
        // whatever it wrote so far, which is still worth logging.
        let _ = fmt::write(&mut text, args);
        text.buf
    }
}

impl fmt::Write for CleanText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.full {
            return Ok(());
        }
        for c in s.chars() {
            let c = if is_unsafe_char(c) { '?' } else { c };
            if self.buf.len().saturating_add(c.len_utf8()) > self.limit {
                self.full = true;
                break;
            }
            self.buf.push(c);
        }
        Ok(())
    }
}

/// Makes untrusted text safe to log: control characters (newlines
/// included), Unicode line separators and bidirectional or zero-width
/// format characters become `?`, and the result is cut at `max`
/// characters. Postfix logs client text through the same kind of filter
/// (its `printable()`), typically with a 100-character cut.
pub fn printable(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| if is_unsafe_char(c) { '?' } else { c })
        .collect()
}

/// Like [`printable`] for raw bytes from the network or a file: bytes that
/// are not valid UTF-8 become `?` as well. At most `max` characters.
pub fn printable_bytes(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    let mut count = 0usize;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if count >= max {
                return out;
            }
            out.push(if is_unsafe_char(c) { '?' } else { c });
            count += 1;
        }
        if !chunk.invalid().is_empty() {
            if count >= max {
                return out;
            }
            out.push('?');
            count += 1;
        }
    }
    out
}

/// The local wall-clock time of `now` in `tz`.
pub(crate) fn civil(tz: &TimeZone, now: Timestamp) -> DateTime {
    tz.to_datetime(now)
}

fn month_name(dt: &DateTime) -> &'static str {
    let index = usize::try_from(dt.month().saturating_sub(1)).unwrap_or(0);
    MONTHS.get(index).copied().unwrap_or("Jan")
}

/// `Nov 03 12:11:53`: the maillog_file stamp. Postfix's msg_logger formats
/// it with strftime `%b %d %H:%M:%S`, so the day has a leading zero.
pub(crate) fn file_stamp(dt: &DateTime) -> String {
    format!(
        "{} {:02} {:02}:{:02}:{:02}",
        month_name(dt),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// `Nov  3 12:11:53`: the RFC 3164 stamp that syslog(3) sends, day padded
/// with a space.
pub(crate) fn syslog_stamp(dt: &DateTime) -> String {
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        month_name(dt),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// The first label of a host name: maillog_file records carry `mail`, not
/// `mail.example.org`, like syslog's and Postfix's own.
pub(crate) fn first_label(hostname: &str) -> String {
    let label = hostname.split('.').next().unwrap_or("");
    let label = printable(label, 64).replace(' ', "?");
    if label.is_empty() {
        "localhost".to_owned()
    } else {
        label
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_replaces_controls_and_caps() {
        assert_eq!(printable("a\nb\rc\td\x1b[0m", 100), "a?b?c?d?[0m");
        assert_eq!(printable("abcdef", 3), "abc");
        assert_eq!(printable("x\u{202E}y\u{2028}z", 10), "x?y?z");
        assert_eq!(printable("héllo wörld", 4), "héll");
        assert_eq!(printable("", 4), "");
    }

    #[test]
    fn printable_bytes_handles_invalid_utf8() {
        assert_eq!(printable_bytes(b"ok\xff\xfe\nx", 100), "ok???x");
        assert_eq!(printable_bytes(b"abc\xffdef", 4), "abc?");
        assert_eq!(printable_bytes(b"abc\xffdef", 3), "abc");
    }

    #[test]
    fn clean_text_is_bounded_and_one_line() {
        let big = "x".repeat(10_000);
        let t = CleanText::format(format_args!("{big}\n{big}"), 50);
        assert_eq!(t.len(), 50);
        let t = CleanText::format(format_args!("one\ntwo\r\nthree"), 100);
        assert_eq!(t, "one?two??three");
        // A multi-byte character that does not fit is left out whole.
        let t = CleanText::format(format_args!("aé"), 2);
        assert_eq!(t, "a");
    }

    #[test]
    fn stamps_have_both_day_paddings() {
        let dt = jiff::civil::date(2026, 11, 3).at(9, 5, 7, 0);
        assert_eq!(file_stamp(&dt), "Nov 03 09:05:07");
        assert_eq!(syslog_stamp(&dt), "Nov  3 09:05:07");
        let dt = jiff::civil::date(2026, 1, 23).at(23, 59, 59, 0);
        assert_eq!(file_stamp(&dt), "Jan 23 23:59:59");
        assert_eq!(syslog_stamp(&dt), "Jan 23 23:59:59");
    }

    #[test]
    fn first_label_of_hostname() {
        assert_eq!(first_label("mail.example.org"), "mail");
        assert_eq!(first_label("mx"), "mx");
        assert_eq!(first_label(""), "localhost");
        assert_eq!(first_label("bad host\n.x"), "bad?host?");
    }
}
