//! The command line reader: bytes in as they arrive, command lines out.
//!
//! A line ends in CRLF. Its length (without the terminator) is limited by
//! line_length_limit; a longer line is read to its end and thrown away,
//! and [`LineError::TooLong`] stands in its place (Postfix replies
//! `500 5.5.0 Error: line too long`). The buffer never holds more than the
//! limit plus the terminator: [`LineReader::feed`] takes only what fits.
//!
//! A line ending in a bare LF is handled per smtpd_forbid_bare_newline
//! ([`BareNewline`]): normalized (as if CRLF had been sent; Postfix 3.9's
//! default) or refused with [`LineError::BareLf`] (Postfix's `reject`: the
//! shell replies `550 5.5.2 Error: bare <LF> received` and hangs up). A bare
//! CR inside a line is not a line end: it stays in the line, and the
//! command parser refuses it as a control character.

/// Postfix's default line_length_limit.
pub const DEFAULT_LINE_LENGTH_LIMIT: usize = 2048;

/// What smtpd_forbid_bare_newline asks for.
///
/// Postfix 3.9 defaults to `normalize` (`yes` is an alias): the end of
/// DATA must be CRLF.CRLF, and lines ending in a bare LF are otherwise
/// taken as if they ended in CRLF. `reject` refuses a command or message
/// with a bare LF and disconnects. Postfix's `no` (any LF.LF ends DATA) is
/// deliberately not offered: it is the SMTP smuggling hole, so `no` is
/// read as `normalize` ([`BareNewline::from_param`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BareNewline {
    /// Accept a bare LF as a line end, but never as part of end-of-data.
    #[default]
    Normalize,
    /// Refuse a bare LF (reply smtpd_forbid_bare_newline_reject_code and
    /// disconnect).
    Reject,
}

impl BareNewline {
    /// Reads the parameter value: `reject` gives [`BareNewline::Reject`],
    /// anything else (`normalize`, `yes`, `no`) [`BareNewline::Normalize`].
    pub fn from_param(value: &str) -> BareNewline {
        if value.trim().eq_ignore_ascii_case("reject") {
            BareNewline::Reject
        } else {
            BareNewline::Normalize
        }
    }
}

/// Why a line was not delivered as a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineError {
    /// The line was longer than the limit; its rest was skipped.
    TooLong,
    /// The line ended in a bare LF under [`BareNewline::Reject`].
    BareLf,
}

/// Splits client input into command lines.
#[derive(Debug, Clone)]
pub struct LineReader {
    buf: Vec<u8>,
    limit: usize,
    mode: BareNewline,
    /// Skipping the rest of an over-long line.
    skipping: bool,
    /// An over-long line was found and not yet reported.
    too_long_pending: bool,
}

impl LineReader {
    /// A reader for lines of at most `limit` bytes (at least 1).
    pub fn new(limit: usize, mode: BareNewline) -> LineReader {
        let limit = limit.max(1);
        LineReader {
            buf: Vec::new(),
            limit,
            mode,
            skipping: false,
            too_long_pending: false,
        }
    }

    /// How many more bytes [`LineReader::feed`] would take now.
    pub fn space(&self) -> usize {
        (self.limit + 2).saturating_sub(self.buf.len())
    }

    /// Takes bytes; returns how many were taken. While skipping an
    /// over-long line everything up to its LF is taken and dropped. Call
    /// [`LineReader::next_line`] until it gives `None`, then feed the rest.
    pub fn feed(&mut self, input: &[u8]) -> usize {
        let mut used = 0;
        if self.skipping {
            match input.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.skipping = false;
                    used = i + 1;
                }
                None => return input.len(),
            }
        }
        let rest = input.get(used..).unwrap_or(&[]);
        let n = rest.len().min(self.space());
        self.buf.extend_from_slice(rest.get(..n).unwrap_or(&[]));
        used + n
    }

    /// The next complete line without its terminator, or `None` when more
    /// input is needed.
    pub fn next_line(&mut self) -> Option<Result<Vec<u8>, LineError>> {
        if self.too_long_pending {
            self.too_long_pending = false;
            return Some(Err(LineError::TooLong));
        }
        match self.buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let bare = i == 0 || self.buf.get(i - 1) != Some(&b'\r');
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                if self.buf.is_empty() && self.buf.capacity() > 256 {
                    // An idle connection keeps no buffer.
                    self.buf = Vec::new();
                }
                line.pop();
                if bare {
                    if self.mode == BareNewline::Reject {
                        return Some(Err(LineError::BareLf));
                    }
                } else {
                    line.pop();
                }
                if line.len() > self.limit {
                    return Some(Err(LineError::TooLong));
                }
                Some(Ok(line))
            }
            None if self.buf.len() > self.limit => {
                // Keep a trailing CR: it may be the start of this line's CRLF.
                if self.buf.len() == self.limit + 1 && self.buf.last() == Some(&b'\r') {
                    return None;
                }
                self.buf.clear();
                self.skipping = true;
                Some(Err(LineError::TooLong))
            }
            None => None,
        }
    }

    /// Removes and returns everything buffered but not yet delivered as a
    /// line: the shell hands it to the DATA decoder, or drops it after
    /// STARTTLS.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        self.skipping = false;
        self.too_long_pending = false;
        std::mem::take(&mut self.buf)
    }

    /// True when bytes are buffered (a pipelined command may follow).
    pub fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Puts bytes back at the front (what the DATA decoder did not use,
    /// after the end of the message). Bytes beyond the buffer's bound
    /// are returned to the caller to feed later.
    pub fn unread<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        let mut v = Vec::with_capacity(bytes.len() + self.buf.len());
        let n = bytes
            .len()
            .min((self.limit + 2).saturating_sub(self.buf.len()));
        v.extend_from_slice(bytes.get(..n).unwrap_or(&[]));
        v.append(&mut self.buf);
        self.buf = v;
        bytes.get(n..).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all(r: &mut LineReader, mut input: &[u8]) -> Vec<Result<Vec<u8>, LineError>> {
        let mut out = Vec::new();
        loop {
            let n = r.feed(input);
            input = &input[n..];
            while let Some(l) = r.next_line() {
                out.push(l);
            }
            if input.is_empty() {
                return out;
            }
        }
    }

    #[test]
    fn crlf_lines() {
        let mut r = LineReader::new(2048, BareNewline::Normalize);
        let got = all(&mut r, b"EHLO a\r\nMAIL FROM:<>\r\npart");
        assert_eq!(
            got,
            vec![Ok(b"EHLO a".to_vec()), Ok(b"MAIL FROM:<>".to_vec())]
        );
        assert_eq!(r.take_buffered(), b"part");
    }

    #[test]
    fn bare_lf_normalize_and_reject() {
        let mut r = LineReader::new(2048, BareNewline::Normalize);
        assert_eq!(all(&mut r, b"NOOP\n"), vec![Ok(b"NOOP".to_vec())]);
        let mut r = LineReader::new(2048, BareNewline::Reject);
        assert_eq!(all(&mut r, b"NOOP\n"), vec![Err(LineError::BareLf)]);
        assert_eq!(BareNewline::from_param("reject"), BareNewline::Reject);
        assert_eq!(BareNewline::from_param("yes"), BareNewline::Normalize);
        assert_eq!(BareNewline::from_param("no"), BareNewline::Normalize);
    }

    #[test]
    fn bare_cr_is_not_a_line_end() {
        let mut r = LineReader::new(2048, BareNewline::Normalize);
        assert_eq!(
            all(&mut r, b"EHLO c\r.test\r\n"),
            vec![Ok(b"EHLO c\r.test".to_vec())]
        );
    }

    #[test]
    fn too_long_line_skipped_then_next_line_read() {
        let mut r = LineReader::new(10, BareNewline::Normalize);
        let mut input = vec![b'x'; 100];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        assert_eq!(
            all(&mut r, &input),
            vec![Err(LineError::TooLong), Ok(b"NOOP".to_vec())]
        );
        // Exactly at the limit is fine.
        let mut r = LineReader::new(4, BareNewline::Normalize);
        assert_eq!(all(&mut r, b"NOOP\r\n"), vec![Ok(b"NOOP".to_vec())]);
        let mut r = LineReader::new(4, BareNewline::Normalize);
        assert_eq!(
            all(&mut r, b"NOOPX\r\nQUIT\r\n"),
            vec![Err(LineError::TooLong), Ok(b"QUIT".to_vec())]
        );
    }

    #[test]
    fn unread_puts_bytes_back_in_front() {
        let mut r = LineReader::new(2048, BareNewline::Normalize);
        r.feed(b"T\r\n");
        let rest = r.unread(b"QUI");
        assert!(rest.is_empty());
        assert_eq!(r.next_line(), Some(Ok(b"QUIT".to_vec())));
    }

    proptest! {
        #[test]
        fn any_split_same_lines(input in proptest::collection::vec(any::<u8>(), 0..300), split in 0usize..300) {
            let split = split.min(input.len());
            let mut a = LineReader::new(16, BareNewline::Normalize);
            let whole = all(&mut a, &input);
            let mut b = LineReader::new(16, BareNewline::Normalize);
            let mut parts = all(&mut b, &input[..split]);
            parts.extend(all(&mut b, &input[split..]));
            prop_assert_eq!(whole, parts);
            prop_assert!(a.space() <= 18);
        }
    }
}
