//! Reading the message from standard input, as Postfix's sendmail does.
//!
//! The text is copied as it is (bare LF or CRLF line ends, NUL bytes, 8-bit
//! bytes, lines of any length: cleanup repairs and normalises), with two
//! Sendmail rules applied on the way:
//!
//! - a first line that starts with `From ` (a UNIX mailbox separator) is
//!   dropped;
//! - unless `-i` or `-oi` was given, a line that holds only `.` (with LF,
//!   CRLF, or at the end of the input) ends the message. Dots are not
//!   unstuffed (`..` stays `..`), as with Sendmail.
//!
//! Memory is bounded: input is read in pieces of at most [`PIECE`] bytes
//! and handed on at once, whatever the message size or line length.

use std::io::{self, BufRead, Read};

/// The most bytes read from one line at a time.
pub const PIECE: u64 = 64 * 1024;

/// Why copying stopped early.
#[derive(Debug)]
pub enum CopyError {
    /// Reading the input failed.
    Read(io::Error),
    /// The sink refused the data (postdrop went away).
    Write(io::Error),
}

/// Copies the message from `input` to `sink` (called with consecutive
/// pieces of the content). Returns the number of content bytes passed on.
///
/// # Errors
/// [`CopyError::Read`] when the input fails, [`CopyError::Write`] when the
/// sink does.
pub fn copy_message<R: BufRead>(
    input: &mut R,
    dot_ends: bool,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> Result<u64, CopyError> {
    let mut piece = Vec::with_capacity(PIECE as usize);
    let mut at_line_start = true;
    let mut first_line = true;
    let mut skipping_from = false;
    let mut total: u64 = 0;
    loop {
        piece.clear();
        let n = input
            .by_ref()
            .take(PIECE)
            .read_until(b'\n', &mut piece)
            .map_err(CopyError::Read)?;
        if n == 0 {
            return Ok(total);
        }
        let ends_line = piece.last() == Some(&b'\n');
        if at_line_start && first_line && piece.starts_with(b"From ") {
            skipping_from = true;
        }
        if at_line_start && dot_ends && is_lone_dot(&piece) {
            return Ok(total);
        }
        if !skipping_from {
            sink(&piece).map_err(CopyError::Write)?;
            total = total.saturating_add(piece.len() as u64);
        }
        if ends_line {
            skipping_from = false;
            first_line = false;
        }
        at_line_start = ends_line;
    }
}

/// A whole line that is a single dot (`.`, `.\n` or `.\r\n`).
fn is_lone_dot(line: &[u8]) -> bool {
    matches!(line, b"." | b".\n" | b".\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8], dot_ends: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut r = io::BufReader::with_capacity(7, input);
        copy_message(&mut r, dot_ends, |b| {
            out.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn lone_dot_ends_unless_i() {
        let msg = b"Subject: x\n\nline\n.\nafter\n";
        assert_eq!(run(msg, true), b"Subject: x\n\nline\n");
        assert_eq!(run(msg, false), msg);
        assert_eq!(run(b"a\r\n.\r\nb\r\n", true), b"a\r\n");
        assert_eq!(run(b"a\n.", true), b"a\n");
        // Not lone: kept, and not unstuffed.
        assert_eq!(run(b"a\n..\n. \nb.\n", true), b"a\n..\n. \nb.\n");
    }

    #[test]
    fn first_from_line_dropped() {
        assert_eq!(
            run(b"From alice Mon\nSubject: x\n\nFrom me\n", true),
            b"Subject: x\n\nFrom me\n"
        );
        assert_eq!(
            run(b"Subject: x\nFrom bob\n", true),
            b"Subject: x\nFrom bob\n"
        );
    }

    #[test]
    fn long_lines_and_binary_pass_through() {
        let mut msg = vec![b'x'; 200_000];
        msg.extend_from_slice(b"\n.\n");
        msg.extend_from_slice(b"\0\xff\n");
        // A dot right after a long-line piece boundary is not a line start.
        let mut long = vec![b'y'; PIECE as usize];
        long.extend_from_slice(b".\nz\n");
        assert_eq!(run(&long, true), long);
        assert_eq!(run(&msg, false), msg);
        assert_eq!(run(&msg, true), msg[..200_001].to_vec());
        // No trailing newline: kept as is.
        assert_eq!(run(b"abc", true), b"abc");
    }

    #[test]
    fn sink_errors_stop_the_copy() {
        let mut r = io::BufReader::new(&b"a\nb\n"[..]);
        let e = copy_message(&mut r, true, |_| Err(io::ErrorKind::BrokenPipe.into()));
        assert!(matches!(e, Err(CopyError::Write(_))));
    }
}
