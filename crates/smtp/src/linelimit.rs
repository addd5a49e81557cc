//! smtp_line_length_limit: a writer that breaks lines longer than the
//! limit by inserting CRLF and a space, as Postfix's smtp client does, so
//! that no line sent exceeds what RFC 5321 allows (998 octets before
//! CRLF). Applied to the content after dot stuffing and CRLF conversion;
//! the inserted continuation starts with a space, so it is never taken
//! for the end of the data.

use std::io::{self, Write};

/// The writer.
pub(crate) struct LineLimit<W: Write> {
    inner: W,
    limit: usize,
    column: usize,
}

impl<W: Write> LineLimit<W> {
    /// Wraps `inner`; `limit` 0 means no limit.
    pub(crate) fn new(inner: W, limit: usize) -> LineLimit<W> {
        LineLimit {
            inner,
            limit,
            column: 0,
        }
    }
}

impl<W: Write> Write for LineLimit<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.limit == 0 {
            return self.inner.write(buf);
        }
        let mut start = 0;
        for (i, b) in buf.iter().enumerate() {
            match b {
                b'\n' => self.column = 0,
                b'\r' => {}
                _ => {
                    if self.column >= self.limit {
                        if let Some(piece) = buf.get(start..i) {
                            self.inner.write_all(piece)?;
                        }
                        self.inner.write_all(b"\r\n ")?;
                        start = i;
                        self.column = 1;
                    }
                    self.column += 1;
                }
            }
        }
        if let Some(piece) = buf.get(start..) {
            self.inner.write_all(piece)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limited(input: &[u8], limit: usize, chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = LineLimit::new(&mut out, limit);
        for piece in input.chunks(chunk) {
            w.write_all(piece).unwrap();
        }
        out
    }

    #[test]
    fn long_lines_are_broken_whatever_the_write_sizes() {
        for chunk in [1, 3, 100] {
            assert_eq!(
                limited(b"abcdefgh\r\nab\r\n", 4, chunk),
                b"abcd\r\n efg\r\n h\r\nab\r\n"
            );
            assert_eq!(limited(b"abcd\r\n", 4, chunk), b"abcd\r\n");
            assert_eq!(limited(b"abcde", 0, chunk), b"abcde");
        }
        let long = vec![b'x'; 2500];
        let out = limited(&long, 998, 64);
        assert!(out.split(|b| *b == b'\n').all(|l| l.len() <= 999));
        assert_eq!(out.iter().filter(|b| **b == b'x').count(), 2500);
    }
}
