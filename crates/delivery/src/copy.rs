//! Copying a message to a command or a file, as Postfix's mail_copy()
//! does: an optional `From ` line, the lines to prepend (Return-Path,
//! X-Original-To, Delivered-To), then the content with optional `>From `
//! quoting, dot stuffing and another line end, and an optional blank line
//! at the end. A last line without a newline gets one.
//!
//! The content is streamed in bounded pieces ([`PIECE`]); long lines are
//! never held whole.

use std::io::{self, BufRead, BufReader, Read, Write};

/// Largest piece of a line handled at once.
pub const PIECE: u64 = 64 * 1024;

/// How to copy.
#[derive(Debug, Clone)]
pub struct Options {
    /// A `From sender date` line (without line end) to write first.
    pub from_line: Option<String>,
    /// Header lines (without line end) to write before the content.
    pub prepend: Vec<String>,
    /// Quote body lines starting with `From ` as `>From `.
    pub quote_from: bool,
    /// Prepend `.` to lines starting with `.`.
    pub dot_stuff: bool,
    /// The line end to write (`\n`, `\r\n`).
    pub eol: Vec<u8>,
    /// Write an empty line after the message.
    pub blank_line: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            from_line: None,
            prepend: Vec::new(),
            quote_from: false,
            dot_stuff: false,
            eol: b"\n".to_vec(),
            blank_line: false,
        }
    }
}

/// Which side failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Reading the content (for a queue file: damaged, checksum).
    Read(io::Error),
    /// Writing to the destination (a command that exited, a full disk).
    Write(io::Error),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Read(e) => write!(f, "error reading message: {e}"),
            Error::Write(e) => write!(f, "error writing message: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// Copies `src` to `dst` as `options` say; returns the bytes written.
///
/// # Errors
/// [`Error::Read`] or [`Error::Write`].
pub fn copy(src: &mut dyn Read, dst: &mut dyn Write, options: &Options) -> Result<u64, Error> {
    let mut written = 0u64;
    let mut put = |dst: &mut dyn Write, bytes: &[u8]| -> Result<(), Error> {
        dst.write_all(bytes).map_err(Error::Write)?;
        written = written.saturating_add(bytes.len() as u64);
        Ok(())
    };
    if let Some(from) = &options.from_line {
        put(dst, from.trim_end_matches(['\n', '\r']).as_bytes())?;
        put(dst, &options.eol)?;
    }
    for line in &options.prepend {
        put(dst, line.as_bytes())?;
        put(dst, &options.eol)?;
    }
    let mut reader = BufReader::with_capacity(PIECE as usize, src);
    let mut piece = Vec::with_capacity(PIECE as usize);
    let mut at_line_start = true;
    let mut in_body = false;
    let mut ended_with_newline = true;
    loop {
        piece.clear();
        let n = (&mut reader)
            .take(PIECE)
            .read_until(b'\n', &mut piece)
            .map_err(Error::Read)?;
        if n == 0 {
            break;
        }
        let newline = piece.last() == Some(&b'\n');
        let mut text: &[u8] = &piece;
        if newline {
            text = text.get(..text.len() - 1).unwrap_or_default();
            if text.last() == Some(&b'\r') && options.eol != b"\n" {
                text = text.get(..text.len() - 1).unwrap_or_default();
            }
        }
        if at_line_start {
            if !in_body && text.is_empty() && newline {
                in_body = true;
            }
            if options.quote_from && in_body && text.starts_with(b"From ") {
                put(dst, b">")?;
            }
            if options.dot_stuff && text.starts_with(b".") {
                put(dst, b".")?;
            }
        }
        put(dst, text)?;
        if newline {
            put(dst, &options.eol)?;
        }
        at_line_start = newline;
        ended_with_newline = newline;
    }
    if !ended_with_newline {
        put(dst, &options.eol)?;
    }
    if options.blank_line {
        put(dst, &options.eol)?;
    }
    dst.flush().map_err(Error::Write)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str, o: &Options) -> String {
        let mut out = Vec::new();
        copy(&mut input.as_bytes(), &mut out, o).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn plain_copy_adds_final_newline() {
        let o = Options::default();
        assert_eq!(run("A: b\n\nbody", &o), "A: b\n\nbody\n");
        assert_eq!(run("", &o), "");
    }

    #[test]
    fn from_line_headers_and_quoting() {
        let o = Options {
            from_line: Some("From a@b  Mon Nov 23 12:00:00 2026".into()),
            prepend: vec!["Return-Path: <a@b>".into(), "Delivered-To: c@d".into()],
            quote_from: true,
            blank_line: true,
            ..Options::default()
        };
        assert_eq!(
            run("From: x\n\nFrom here\n.dot\n", &o),
            "From a@b  Mon Nov 23 12:00:00 2026\nReturn-Path: <a@b>\nDelivered-To: c@d\n\
             From: x\n\n>From here\n.dot\n\n"
        );
    }

    #[test]
    fn dot_stuffing_and_crlf() {
        let o = Options {
            dot_stuff: true,
            eol: b"\r\n".to_vec(),
            ..Options::default()
        };
        assert_eq!(
            run("S: x\n\n.\n..a\nb\n", &o),
            "S: x\r\n\r\n..\r\n...a\r\nb\r\n"
        );
    }

    #[test]
    fn long_lines_stream() {
        let long = "x".repeat(200_000);
        let o = Options {
            quote_from: true,
            ..Options::default()
        };
        let text = format!("S: y\n\n{long}From x\n");
        // "From " in the middle of a long line is not at a line start.
        assert_eq!(run(&text, &o), text);
    }

    #[test]
    fn write_errors_are_reported_as_such() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from(io::ErrorKind::BrokenPipe))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let r = copy(&mut "a\n".as_bytes(), &mut Broken, &Options::default());
        assert!(matches!(r, Err(Error::Write(_))));
    }
}
