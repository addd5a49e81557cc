//! Streaming the message into a mailbox file: buffered writes with a byte
//! limit, prepended header lines, and the copy loop from the caller's source.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::quote::{Direction, Quoter, Quoting};

/// Size of the write buffer: large enough that a 20 MB message costs a
/// few hundred writes.
pub(crate) const BUFFER_SIZE: usize = 64 * 1024;

/// Size of each read from the source (the queue file, from the page
/// cache). Small enough that a delivery's buffers stay under malloc's
/// trim threshold (128 KB): larger ones were given back to the kernel
/// after every delivery and faulted in again for the next (four brk
/// calls and some fifty page faults a delivery in local).
const READ_SIZE: usize = 16 * 1024;

/// A buffered writer that refuses to write past a limit.
pub(crate) struct LimitedWriter<'a> {
    inner: BufWriter<&'a File>,
    path: PathBuf,
    written: u64,
    /// Bytes that may still be written; None is unlimited.
    room: Option<u64>,
    /// The configured limit, for the error.
    limit: u64,
    last: Option<u8>,
    /// LF bytes not preceded by CR: what a CRLF conversion would add.
    bare_newlines: u64,
}

/// A configured size limit: Postfix's 0 means no limit.
pub(crate) fn effective_limit(limit: Option<u64>) -> Option<u64> {
    limit.filter(|&l| l > 0)
}

impl<'a> LimitedWriter<'a> {
    /// Writes to `file`; at most `room` bytes (None: no limit). `limit` is
    /// the configured limit reported in [`Error::SizeLimit`].
    pub(crate) fn new(file: &'a File, path: &Path, room: Option<u64>, limit: u64) -> Self {
        LimitedWriter {
            inner: BufWriter::with_capacity(BUFFER_SIZE, file),
            path: path.to_path_buf(),
            written: 0,
            room,
            limit,
            last: None,
            bare_newlines: 0,
        }
    }

    /// Appends bytes, or fails with SizeLimit before writing any of them.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let Some(&last) = bytes.last() else {
            return Ok(());
        };
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        let total = self.written.saturating_add(len);
        if let Some(room) = self.room
            && total > room
        {
            return Err(Error::SizeLimit {
                path: self.path.clone(),
                limit: self.limit,
            });
        }
        self.inner
            .write_all(bytes)
            .map_err(|e| Error::io("write", &self.path, e))?;
        self.written = total;
        let mut previous = self.last;
        for &b in bytes {
            if b == b'\n' && previous != Some(b'\r') {
                self.bare_newlines = self.bare_newlines.saturating_add(1);
            }
            previous = Some(b);
        }
        self.last = Some(last);
        Ok(())
    }

    /// Bytes written so far.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// The size with every bare LF counted as CRLF (Maildir++ `,W=`, the
    /// size that POP3 and IMAP report).
    pub(crate) fn crlf_size(&self) -> u64 {
        self.written.saturating_add(self.bare_newlines)
    }

    /// True when something was written and the last byte was not `\n`.
    pub(crate) fn in_line(&self) -> bool {
        matches!(self.last, Some(b) if b != b'\n')
    }

    /// Flushes the buffer to the file (no fsync).
    pub(crate) fn flush(&mut self) -> Result<()> {
        self.inner
            .flush()
            .map_err(|e| Error::io("write", &self.path, e))
    }
}

/// Writes the caller's header lines, each followed by `\n`.
pub(crate) fn write_prepend(out: &mut LimitedWriter<'_>, prepend: &[&str]) -> Result<()> {
    for line in prepend {
        check_prepend_line(line)?;
        out.write(line.as_bytes())?;
        out.write(b"\n")?;
    }
    Ok(())
}

/// Refuses a line that would break the header block.
pub(crate) fn check_prepend_line(line: &str) -> Result<()> {
    if line.bytes().any(|b| b == b'\n' || b == b'\r') {
        return Err(Error::BadPrependLine {
            line: line.to_string(),
        });
    }
    Ok(())
}

/// Reads from the source, retrying EINTR.
fn read_source(source: &mut dyn Read, buf: &mut [u8]) -> Result<usize> {
    loop {
        match source.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => return Err(Error::Source { source }),
        }
    }
}

/// Copies the whole source, optionally through the From_ quoter, and ends
/// the last line with `\n` when the source did not (records are lines, as
/// in Postfix's mail_copy).
pub(crate) fn copy_content(
    source: &mut dyn Read,
    out: &mut LimitedWriter<'_>,
    quoting: Option<Quoting>,
) -> Result<()> {
    let mut buf = vec![0u8; READ_SIZE];
    let mut quoter = quoting.map(|q| Quoter::new(q, Direction::Quote));
    // Grown by the quoter as it needs (nothing without quoting).
    let mut quoted = Vec::new();
    loop {
        let n = read_source(source, &mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        match quoter.as_mut() {
            Some(q) => {
                quoted.clear();
                q.feed(chunk, &mut quoted);
                out.write(&quoted)?;
            }
            None => out.write(chunk)?,
        }
    }
    if let Some(q) = quoter.as_mut() {
        quoted.clear();
        q.finish(&mut quoted);
        out.write(&quoted)?;
    }
    if out.in_line() {
        out.write(b"\n")?;
    }
    Ok(())
}
