//! The 8BITMIME downgrade (Postfix's mime_state with MIME_OPT_DOWNGRADE):
//! a message with 8-bit content going to a server that does not offer
//! 8BITMIME is rewritten as 7-bit MIME while it is streamed.
//!
//! The message is walked as MIME: each entity's header is read (bounded),
//! multipart bodies are followed through their boundaries, and
//! message/rfc822 bodies are entered. A leaf part declared
//! `Content-Transfer-Encoding: 8bit` or `binary`, or one without an
//! encoding (7bit by default) whose body has 8-bit bytes, gets its body
//! encoded as quoted-printable and its encoding header replaced by
//! `Content-Transfer-Encoding: quoted-printable`; multipart and message
//! entities declared 8bit/binary are relabelled `7bit` (their parts are
//! converted). A converted message without a `MIME-Version:` header gets
//! `MIME-Version: 1.0`. Parts already
//! base64 or quoted-printable, and 7-bit parts, pass unchanged. 8-bit
//! bytes in header lines cannot be fixed here and pass as they are (as in
//! Postfix).
//!
//! Which parts without a declared encoding have 8-bit bytes is learnt by a
//! first pass over the content ([`scan`]), so that a part's header can be
//! changed before its body is seen; both passes stream the queue file in
//! bounded pieces.

use std::io::{self, BufRead, Read};

/// Longest piece of a line handled at once.
const PIECE: u64 = 8 * 1024;

/// Largest header block of one entity kept to be rewritten; a larger one
/// passes unchanged.
const HEADER_LIMIT: usize = 256 * 1024;

/// Deepest MIME nesting followed (Postfix's mime_nesting_limit).
const NESTING_LIMIT: usize = 100;

/// The longest encoded line, without the soft line break `=`.
const QP_WIDTH: usize = 75;

/// What the first pass found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Any 8-bit byte anywhere (header or body).
    pub(crate) eight_bit: bool,
    /// Per leaf part, in order: its body has 8-bit bytes.
    leaves: Vec<bool>,
}

/// Reads `src` once and notes where 8-bit bytes are.
///
/// # Errors
/// Reading the content failed.
pub(crate) fn scan(src: &mut dyn Read) -> io::Result<Scan> {
    let mut walker = Walker::new(None);
    let mut reader = io::BufReader::with_capacity(64 * 1024, src);
    let mut line = Vec::new();
    let mut sink = Vec::new();
    loop {
        line.clear();
        let n = (&mut reader).take(PIECE).read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        walker.piece(&line, &mut sink);
        sink.clear();
    }
    walker.finish(&mut sink);
    Ok(walker.scan)
}

/// The converting reader: reads the message from `inner` and yields it
/// downgraded (LF line ends, as the queue file has them).
pub(crate) struct Downgrade<R> {
    inner: R,
    walker: Walker,
    out: Vec<u8>,
    pos: usize,
    line: Vec<u8>,
    done: bool,
}

impl<R: BufRead> Downgrade<R> {
    /// A converter that uses what [`scan`] found in the same content.
    pub(crate) fn new(inner: R, scan: Scan) -> Downgrade<R> {
        Downgrade {
            inner,
            walker: Walker::new(Some(scan)),
            out: Vec::new(),
            pos: 0,
            line: Vec::new(),
            done: false,
        }
    }
}

impl<R: BufRead> Read for Downgrade<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.out.len() {
            if self.done {
                return Ok(0);
            }
            self.out.clear();
            self.pos = 0;
            self.line.clear();
            let n = (&mut self.inner)
                .take(PIECE)
                .read_until(b'\n', &mut self.line)?;
            if n == 0 {
                self.walker.finish(&mut self.out);
                self.done = true;
            } else {
                self.walker.piece(&self.line, &mut self.out);
            }
        }
        let avail = self.out.get(self.pos..).unwrap_or_default();
        let n = avail.len().min(buf.len());
        buf.get_mut(..n)
            .unwrap_or_default()
            .copy_from_slice(avail.get(..n).unwrap_or_default());
        self.pos += n;
        Ok(n)
    }
}

/// What the body of the current entity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// Copied (7-bit, base64, already QP, a preamble or epilogue).
    Copy,
    /// Encoded as quoted-printable.
    Encode,
}

/// Where in the message the walker is.
#[derive(Debug)]
enum Phase {
    /// Reading an entity's header; `top` for the message header.
    Header { top: bool },
    /// In a body.
    Body(Body),
}

/// The MIME walker shared by both passes: `scan` is None in the first
/// pass (which fills `self.scan`), Some in the second.
struct Walker {
    known: Option<Scan>,
    scan: Scan,
    phase: Phase,
    /// The header block being collected (whole lines with their LF).
    header: Vec<u8>,
    /// The header block was too large: pass it on as it is.
    header_overflow: bool,
    /// Boundaries of the open multiparts, innermost last.
    boundaries: Vec<Vec<u8>>,
    /// The current leaf's index and its 8-bit state (first pass).
    leaf: Option<usize>,
    /// The last piece ended without a line end (a long line continues).
    mid_line: bool,
    /// Column of the current encoded output line.
    col: usize,
    /// Trailing white space of an encoded line held back until we know
    /// whether the line ends there.
    held: Vec<u8>,
}

impl Walker {
    fn new(known: Option<Scan>) -> Walker {
        Walker {
            known,
            scan: Scan::default(),
            phase: Phase::Header { top: true },
            header: Vec::new(),
            header_overflow: false,
            boundaries: Vec::new(),
            leaf: None,
            mid_line: false,
            col: 0,
            held: Vec::new(),
        }
    }

    /// One piece of a line (ends with LF unless the line was longer).
    fn piece(&mut self, piece: &[u8], out: &mut Vec<u8>) {
        if piece.iter().any(|b| *b >= 0x80) {
            self.scan.eight_bit = true;
        }
        let starts_line = !self.mid_line;
        self.mid_line = !piece.ends_with(b"\n");
        match self.phase {
            Phase::Header { top } => self.header_piece(piece, top, out),
            Phase::Body(kind) => {
                if starts_line && self.boundary(piece, out) {
                    return;
                }
                if let Some(i) = self.leaf
                    && self.known.is_none()
                    && piece.iter().any(|b| *b >= 0x80)
                    && let Some(slot) = self.scan.leaves.get_mut(i)
                {
                    *slot = true;
                }
                match kind {
                    Body::Copy => out.extend_from_slice(piece),
                    Body::Encode => self.encode(piece, out),
                }
            }
        }
    }

    /// End of the content: what is still held.
    fn finish(&mut self, out: &mut Vec<u8>) {
        if let Phase::Header { .. } = self.phase {
            out.append(&mut self.header);
        }
        if let Phase::Body(Body::Encode) = self.phase
            && self.mid_line
        {
            self.end_encoded_line(out);
        }
    }

    fn header_piece(&mut self, piece: &[u8], top: bool, out: &mut Vec<u8>) {
        let line_start = self.header.is_empty() || self.header.ends_with(b"\n");
        let blank = line_start && (piece == b"\n" || piece == b"\r\n");
        // A boundary line ends a part whose header never ended.
        if line_start && !blank && !self.boundaries.is_empty() && self.is_boundary(piece) {
            out.append(&mut self.header);
            self.header_overflow = false;
            self.phase = Phase::Body(Body::Copy);
            let _ = self.boundary(piece, out);
            return;
        }
        // A line that is not a header line ends the header as well
        // (the body starts without a blank line).
        let not_header = line_start
            && !blank
            && !piece.starts_with(b" ")
            && !piece.starts_with(b"\t")
            && !is_header_name(piece);
        if blank || not_header {
            self.end_header(top, out);
            if blank {
                out.extend_from_slice(piece);
            } else {
                self.mid_line = false;
                self.piece(piece, out);
            }
            return;
        }
        if self.header_overflow || self.header.len() + piece.len() > HEADER_LIMIT {
            self.header_overflow = true;
            out.append(&mut self.header);
            out.extend_from_slice(piece);
            return;
        }
        self.header.extend_from_slice(piece);
    }

    /// The header block is complete: decide on the body and write the
    /// header, changed where needed.
    fn end_header(&mut self, top: bool, out: &mut Vec<u8>) {
        let header = std::mem::take(&mut self.header);
        let overflow = std::mem::replace(&mut self.header_overflow, false);
        let fields = unfold(&header);
        let ctype = field(&fields, "content-type").unwrap_or_default();
        let cte = field(&fields, "content-transfer-encoding")
            .map(|v| first_word(&v).to_ascii_lowercase())
            .unwrap_or_default();
        let (ty, _) = split_type(&ctype);
        let declared8 = cte == "8bit" || cte == "binary";
        let mut replace: Option<&str> = None;
        self.leaf = None;
        if ty.starts_with("multipart/") && self.boundaries.len() < NESTING_LIMIT {
            if let Some(b) = param(&ctype, "boundary") {
                self.boundaries.push(b.into_bytes());
            }
            if declared8 {
                replace = Some("7bit");
            }
            self.phase = Phase::Body(Body::Copy);
        } else if (ty == "message/rfc822" || ty == "message/global")
            && matches!(cte.as_str(), "" | "7bit" | "8bit" | "binary")
            && self.boundaries.len() < NESTING_LIMIT
        {
            if declared8 {
                replace = Some("7bit");
            }
            self.phase = Phase::Header { top: false };
        } else {
            let index = self.scan.leaves.len();
            self.scan.leaves.push(false);
            self.leaf = Some(index);
            let undeclared = matches!(cte.as_str(), "" | "7bit");
            let found8 = self
                .known
                .as_ref()
                .is_some_and(|k| k.leaves.get(index).copied().unwrap_or(false));
            let encode = self.known.is_some() && (declared8 || (undeclared && found8));
            if encode {
                replace = Some("quoted-printable");
                self.col = 0;
                self.held.clear();
                self.phase = Phase::Body(Body::Encode);
            } else {
                self.phase = Phase::Body(Body::Copy);
            }
        }
        let add_version = top
            && self.known.as_ref().is_some_and(|k| k.eight_bit)
            && field(&fields, "mime-version").is_none();
        let Some(new_cte) = replace.filter(|_| self.known.is_some() && !overflow) else {
            out.extend_from_slice(&header);
            if add_version {
                out.extend_from_slice(b"MIME-Version: 1.0\n");
            }
            return;
        };
        // Drop the old encoding header (with its continuation lines).
        let mut skipping = false;
        for line in header.split_inclusive(|b| *b == b'\n') {
            let continuation = line.starts_with(b" ") || line.starts_with(b"\t");
            if !continuation {
                skipping = field_name_is(line, "content-transfer-encoding");
            }
            if !skipping {
                out.extend_from_slice(line);
            }
        }
        if add_version {
            out.extend_from_slice(b"MIME-Version: 1.0\n");
        }
        out.extend_from_slice(format!("Content-Transfer-Encoding: {new_cte}\n").as_bytes());
    }

    /// Whether a line (start) is a boundary of an open multipart.
    fn is_boundary(&self, line: &[u8]) -> bool {
        self.match_boundary(line).is_some()
    }

    /// The depth (index) of the boundary a line names, and whether it is
    /// the closing one.
    fn match_boundary(&self, line: &[u8]) -> Option<(usize, bool)> {
        let rest = line.strip_prefix(b"--")?;
        for (i, b) in self.boundaries.iter().enumerate().rev() {
            if let Some(after) = rest.strip_prefix(b.as_slice()) {
                let (close, tail) = match after.strip_prefix(b"--") {
                    Some(t) => (true, t),
                    None => (false, after),
                };
                if tail.iter().all(|c| c.is_ascii_whitespace()) {
                    return Some((i, close));
                }
            }
        }
        None
    }

    /// Handles a boundary line; false when `line` is not one.
    fn boundary(&mut self, line: &[u8], out: &mut Vec<u8>) -> bool {
        let Some((depth, close)) = self.match_boundary(line) else {
            return false;
        };
        if let Phase::Body(Body::Encode) = self.phase
            && (self.col > 0 || !self.held.is_empty())
        {
            // The part's last line had no line end of its own.
            self.end_encoded_line(out);
        }
        self.leaf = None;
        out.extend_from_slice(line);
        if close {
            self.boundaries.truncate(depth);
            self.phase = Phase::Body(Body::Copy);
        } else {
            self.boundaries.truncate(depth + 1);
            self.phase = Phase::Header { top: false };
        }
        true
    }

    /// Encodes a piece of a body line as quoted-printable.
    fn encode(&mut self, piece: &[u8], out: &mut Vec<u8>) {
        let (body, ends) = match piece.strip_suffix(b"\n") {
            Some(b) => (b.strip_suffix(b"\r").unwrap_or(b), true),
            None => (piece, false),
        };
        for &b in body {
            if b == b' ' || b == b'\t' {
                self.held.push(b);
                continue;
            }
            self.flush_held(out);
            if (33..=126).contains(&b) && b != b'=' {
                self.put(&[b], out);
            } else {
                self.put(format!("={b:02X}").as_bytes(), out);
            }
        }
        if ends {
            self.end_encoded_line(out);
        }
    }

    /// Ends an encoded line: trailing white space encoded, then LF.
    fn end_encoded_line(&mut self, out: &mut Vec<u8>) {
        let held = std::mem::take(&mut self.held);
        for b in held {
            self.put(format!("={b:02X}").as_bytes(), out);
        }
        out.push(b'\n');
        self.col = 0;
    }

    /// White space followed by more text goes out as it is.
    fn flush_held(&mut self, out: &mut Vec<u8>) {
        let held = std::mem::take(&mut self.held);
        for b in held {
            self.put(&[b], out);
        }
    }

    /// One encoded unit, with a soft line break first if it does not fit.
    fn put(&mut self, unit: &[u8], out: &mut Vec<u8>) {
        if self.col + unit.len() > QP_WIDTH {
            out.extend_from_slice(b"=\n");
            self.col = 0;
        }
        out.extend_from_slice(unit);
        self.col += unit.len();
    }
}

/// `Name:` at the start of a line.
fn is_header_name(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|b| *b == b':') else {
        return false;
    };
    let name = line.get(..colon).unwrap_or_default();
    let name = name.trim_ascii_end();
    !name.is_empty() && name.iter().all(|b| (33..=126).contains(b) && *b != b':')
}

fn field_name_is(line: &[u8], name: &str) -> bool {
    line.iter().position(|b| *b == b':').is_some_and(|c| {
        line.get(..c)
            .unwrap_or_default()
            .trim_ascii_end()
            .eq_ignore_ascii_case(name.as_bytes())
    })
}

/// The header block as (lower-case name, unfolded value) pairs.
fn unfold(header: &[u8]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in header.split(|b| *b == b'\n') {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        if text.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(text.trim());
            }
        } else if let Some((n, v)) = text.split_once(':') {
            out.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    out
}

fn field(fields: &[(String, String)], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

fn first_word(v: &str) -> &str {
    v.split([';', ' ', '\t', '(']).next().unwrap_or("").trim()
}

/// `type/subtype` (lower case) and the rest.
fn split_type(v: &str) -> (String, &str) {
    let (t, rest) = v.split_once(';').unwrap_or((v, ""));
    (t.trim().to_ascii_lowercase(), rest)
}

/// A parameter of a Content-Type value (quoted or not).
fn param(v: &str, name: &str) -> Option<String> {
    let (_, mut rest) = v.split_once(';')?;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        let (n, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (q.get(..end).unwrap_or(""), q.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find([';', ' ', '\t']).unwrap_or(after.len());
            (
                after.get(..end).unwrap_or(""),
                after.get(end..).unwrap_or(""),
            )
        };
        if n.trim().eq_ignore_ascii_case(name) {
            return Some(value.to_string());
        }
        rest = tail;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn downgrade(msg: &[u8]) -> String {
        let s = scan(&mut &msg[..]).unwrap();
        let mut out = Vec::new();
        Downgrade::new(msg, s).read_to_end(&mut out).unwrap();
        String::from_utf8(out).expect("7-bit output")
    }

    /// Decodes quoted-printable text.
    pub(crate) fn qp_decode(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for line in s.split_inclusive('\n') {
            let (body, eol) = match line.strip_suffix('\n') {
                Some(b) => (b, true),
                None => (line, false),
            };
            let (body, soft) = match body.strip_suffix('=') {
                Some(b) => (b, true),
                None => (body, false),
            };
            let bytes = body.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'=' {
                    let h = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(h, 16).unwrap());
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            if eol && !soft {
                out.push(b'\n');
            }
        }
        out
    }

    #[test]
    fn plain_message_gets_qp_and_mime_version() {
        let body = "caf\u{e9} =  trailing \nline two\t\n".to_string() + &"\u{e9}".repeat(60) + "\n";
        let msg = format!("Subject: x\nContent-Type: text/plain; charset=utf-8\n\n{body}");
        let out = downgrade(msg.as_bytes());
        assert!(out.is_ascii());
        let (head, enc) = out.split_once("\n\n").unwrap();
        assert!(head.contains("MIME-Version: 1.0\n"), "{head}");
        assert!(head.ends_with("Content-Transfer-Encoding: quoted-printable"));
        assert!(enc.lines().all(|l| l.len() <= 76), "{enc}");
        assert!(!enc.lines().any(|l| l.ends_with(' ') || l.ends_with('\t')));
        assert_eq!(qp_decode(enc), body.as_bytes());
    }

    #[test]
    fn multipart_only_eight_bit_text_parts_change() {
        let msg = "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\nContent-Transfer-Encoding: 8bit\n\npre\n--b1\nContent-Type: text/plain\n\nascii only\n--b1\nContent-Type: text/plain; charset=latin1\nContent-Transfer-Encoding: 8bit\n\nna\u{ef}ve\n--b1\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAAA\n--b1--\nepilogue\n";
        let out = downgrade(msg.as_bytes());
        assert!(out.is_ascii(), "{out}");
        assert_eq!(out.matches("MIME-Version").count(), 1);
        assert!(out.contains("boundary=\"b1\"\nContent-Transfer-Encoding: 7bit\n\npre\n"));
        assert!(out.contains("--b1\nContent-Type: text/plain\n\nascii only\n--b1\n"));
        assert!(out.contains(
            "charset=latin1\nContent-Transfer-Encoding: quoted-printable\n\nna=C3=AFve\n--b1\n"
        ));
        assert!(out.contains("base64\n\nAAAA\n--b1--\nepilogue\n"));
    }

    #[test]
    fn undeclared_eight_bit_and_nested_messages() {
        let msg = "Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: message/rfc822\n\nSubject: in\nContent-Type: multipart/alternative; boundary=i\n\n--i\n\n\u{fc}ber\n--i--\n--o--\n";
        let out = downgrade(msg.as_bytes());
        assert!(out.is_ascii(), "{out}");
        assert!(
            out.contains(
                "--i\nContent-Transfer-Encoding: quoted-printable\n\n=C3=BCber\n--i--\n--o--\n"
            ),
            "{out}"
        );
        // 7-bit content passes unchanged.
        let plain = "Subject: a\n\nhello\n";
        assert_eq!(downgrade(plain.as_bytes()), plain);
        assert!(!scan(&mut plain.as_bytes()).unwrap().eight_bit);
    }

    #[test]
    fn long_lines_stream_in_pieces() {
        let body = "\u{e9}x ".repeat(20_000) + "\n";
        let msg = format!("Subject: l\n\n{body}");
        let out = downgrade(msg.as_bytes());
        let (_, enc) = out.split_once("\n\n").unwrap();
        assert!(enc.lines().all(|l| l.len() <= 76));
        assert_eq!(qp_decode(enc), body.as_bytes());
    }
}
