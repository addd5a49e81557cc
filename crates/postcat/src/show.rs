//! Printing one queue file in postcat's shape.

use queue::format::DsnRet;
use queue::{QueueFile, RecipientState};
use std::io::{self, BufRead, BufReader, Read, Write};

/// Longest piece of a content line handled at once; longer lines are
/// printed in pieces (only the first piece decides header or body).
const PIECE: u64 = 64 * 1024;

/// Which sections to print.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sections {
    /// -e
    pub(crate) envelope: bool,
    /// -h
    pub(crate) header: bool,
    /// -b
    pub(crate) body: bool,
}

/// asctime() without its newline, local time.
fn asctime(secs: u64, tz: &jiff::tz::TimeZone) -> String {
    let ts = i64::try_from(secs)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.to_zoned_datetime(tz.clone())
        .strftime("%a %b %e %H:%M:%S %Y")
        .to_string()
}

/// Replaces control characters in envelope values (they are one line each).
fn line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Prints `qf` labelled `label` (`deferred/ID` or a file name).
///
/// # Errors
/// Write errors, and read errors of the content (a damaged file).
pub(crate) fn show(
    qf: &QueueFile,
    label: &str,
    s: Sections,
    tz: &jiff::tz::TimeZone,
    out: &mut dyn Write,
) -> io::Result<()> {
    if s.envelope {
        envelope(qf, label, tz, out)?;
        writeln!(out, "*** MESSAGE CONTENTS {label} ***")?;
    }
    if s.header || s.body {
        content(qf, s, out)?;
    } else {
        // Still read it all: a damaged file must not pass silently.
        io::copy(&mut qf.content(), &mut io::sink())?;
    }
    if s.envelope {
        writeln!(out, "*** HEADER EXTRACTED {label} ***")?;
        writeln!(out, "*** MESSAGE FILE END {label} ***")?;
    }
    Ok(())
}

fn envelope(
    qf: &QueueFile,
    label: &str,
    tz: &jiff::tz::TimeZone,
    out: &mut dyn Write,
) -> io::Result<()> {
    let env = qf.envelope();
    writeln!(out, "*** ENVELOPE RECORDS {label} ***")?;
    writeln!(
        out,
        "message_size: {:>15} {:>15} {:>15} {:>15} {:>15}",
        qf.content_len(),
        qf.content_offset(),
        env.recipients.len(),
        0,
        qf.content_len()
    )?;
    writeln!(
        out,
        "message_arrival_time: {}",
        asctime(env.arrival_secs, tz)
    )?;
    for a in &env.attributes {
        writeln!(out, "named_attribute: {}={}", line(&a.name), line(&a.value))?;
    }
    if let Some(id) = &env.dsn_envid {
        writeln!(out, "dsn_envelope_id: {}", line(id))?;
    }
    if let Some(ret) = env.dsn_ret {
        let v = match ret {
            DsnRet::Full => 1,
            DsnRet::Headers => 2,
        };
        writeln!(out, "dsn_return_flags: {v}")?;
    }
    writeln!(out, "sender: {}", line(&env.sender))?;
    for (_, r, state) in qf.recipients() {
        if let Some(o) = &r.dsn_orcpt {
            writeln!(out, "dsn_orig_rcpt: {}", line(o))?;
        }
        if r.dsn_notify != 0 {
            writeln!(out, "dsn_notify_flags: {}", r.dsn_notify)?;
        }
        if !r.original.is_empty() {
            writeln!(out, "original_recipient: {}", line(&r.original))?;
        }
        let kind = match state {
            RecipientState::Pending => "recipient",
            RecipientState::Done => "done_recipient",
        };
        writeln!(out, "{kind}: {}", line(&r.address))?;
    }
    Ok(())
}

/// Postfix's is_header(): a field name of printable characters other than
/// `:`, optional blanks, then `:`.
pub(crate) fn is_header(piece: &[u8]) -> bool {
    let name_len = piece
        .iter()
        .take_while(|&&b| b > b' ' && b < 0x7f && b != b':')
        .count();
    if name_len == 0 {
        return false;
    }
    let rest = piece.get(name_len..).unwrap_or_default();
    let rest = rest
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .and_then(|p| rest.get(p..))
        .unwrap_or_default();
    rest.first() == Some(&b':')
}

/// Prints the header, the body or both.
fn content(qf: &QueueFile, s: Sections, out: &mut dyn Write) -> io::Result<()> {
    let mut reader = BufReader::with_capacity(PIECE as usize, qf.content());
    let mut in_header = true;
    let mut line_start = true;
    let mut piece = Vec::with_capacity(1024);
    loop {
        piece.clear();
        if reader.by_ref().take(PIECE).read_until(b'\n', &mut piece)? == 0 {
            break;
        }
        if in_header
            && line_start
            && !is_header(&piece)
            && !matches!(piece.first(), Some(b' ' | b'\t'))
        {
            in_header = false;
            if !s.body && !s.envelope {
                // Nothing more to print; the rest is not checked either,
                // as with Postfix's postcat -h.
                return Ok(());
            }
        }
        line_start = piece.last() == Some(&b'\n');
        if (in_header && s.header) || (!in_header && s.body) {
            out.write_all(&piece)?;
        }
    }
    if !line_start && ((in_header && s.header) || (!in_header && s.body)) {
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use queue::Queue;

    fn make(content: &[u8]) -> (tempfile::TempDir, QueueFile) {
        let q = tempfile::tempdir().unwrap();
        queue::layout::create_or_repair(q.path(), None, None).unwrap();
        let mut w = queue::enter(q.path()).unwrap();
        w.write_all(content).unwrap();
        let mut env = queue::Envelope::new("alice@example.org", std::time::UNIX_EPOCH);
        env.add_recipient("bob@example.org").original = "bob".into();
        env.add_recipient("carol@example.org");
        env.set_attribute("rewrite_context", "local");
        let id = *w.finish(&env).unwrap().id();
        let mut qf = QueueFile::open(q.path(), Queue::Incoming, &id).unwrap();
        qf.mark_done(1).unwrap();
        (q, qf)
    }

    fn render(qf: &QueueFile, s: Sections) -> String {
        let mut out = Vec::new();
        show(qf, "incoming/X", s, &jiff::tz::TimeZone::UTC, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    const ALL: Sections = Sections {
        envelope: true,
        header: true,
        body: true,
    };

    #[test]
    fn everything_in_postfix_order() {
        let (_q, qf) = make(b"Subject: hi\nX-Long: a\n b\n\nbody\n");
        let text = render(&qf, ALL);
        let expect = "*** ENVELOPE RECORDS incoming/X ***\n\
message_size:              31              64               2               0              31\n\
message_arrival_time: Thu Jan  1 00:00:00 1970\n\
named_attribute: rewrite_context=local\n\
sender: alice@example.org\n\
original_recipient: bob\n\
recipient: bob@example.org\n\
original_recipient: carol@example.org\n\
done_recipient: carol@example.org\n\
*** MESSAGE CONTENTS incoming/X ***\n\
Subject: hi\nX-Long: a\n b\n\nbody\n\
*** HEADER EXTRACTED incoming/X ***\n\
*** MESSAGE FILE END incoming/X ***\n";
        assert_eq!(text, expect);
    }

    #[test]
    fn header_or_body_only() {
        let (_q, qf) = make(b"Subject: hi\nX-Long: a\n b\n\nbody\nmore");
        let h = Sections {
            header: true,
            ..Sections::default()
        };
        assert_eq!(render(&qf, h), "Subject: hi\nX-Long: a\n b\n");
        let b = Sections {
            body: true,
            ..Sections::default()
        };
        assert_eq!(render(&qf, b), "\nbody\nmore\n");
        // No header at all: everything is body.
        let (_q, qf) = make(b"just text\n");
        assert_eq!(render(&qf, h), "");
        assert_eq!(render(&qf, b), "just text\n");
    }

    #[test]
    fn header_detection() {
        assert!(is_header(b"Subject: x\n"));
        assert!(is_header(b"X-A :x"));
        assert!(!is_header(b": x"));
        assert!(!is_header(b"From alice"));
        assert!(!is_header(b"\n"));
        assert!(!is_header(b"a b: c"));
    }
}
