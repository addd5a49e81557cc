//! What a POP3 (and IMAP) reader needs on top of the stores: the RFC 1939
//! size of a message (every line end counted as CRLF), streaming a message
//! as a POP3 multi-line answer (LF turned into CRLF, lines starting with
//! `.` stuffed, `.` CRLF at the end, optionally only the header and the
//! first n body lines for TOP), Dovecot's default UIDL (`%08Xu%08Xv`) and a
//! content-derived UIDL for mbox messages.
//!
//! The size and the stream use one rule (an LF not preceded by CR counts
//! one more byte), so LIST and the octets RETR sends agree exactly. Memory
//! stays at one 64 KiB buffer whatever the message size.

use std::io::{self, Read, Write};

/// Buffer size for scanning and streaming.
const CHUNK: usize = 64 * 1024;

/// The size of the message in `r` with CRLF line ends.
///
/// # Errors
/// Read errors.
pub fn crlf_size<R: Read>(mut r: R) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total: u64 = 0;
    let mut prev_cr = false;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        for &b in buf.get(..n).unwrap_or_default() {
            total += 1;
            if b == b'\n' && !prev_cr {
                total += 1;
            }
            prev_cr = b == b'\r';
        }
    }
}

/// Streams the message in `r` to `w` as a POP3 multi-line answer body:
/// CRLF line ends, byte-stuffed, ending with `.` CRLF. With `body_lines`
/// (TOP), only the header, the blank line and that many body lines.
///
/// # Errors
/// Read or write errors.
pub fn send_message<R: Read, W: Write>(
    mut r: R,
    w: &mut W,
    body_lines: Option<u64>,
) -> io::Result<()> {
    let mut inbuf = vec![0u8; CHUNK];
    let mut out: Vec<u8> = Vec::with_capacity(CHUNK + CHUNK / 8);
    let mut at_line_start = true;
    let mut prev_cr = false;
    // TOP: None while in the header; Some(left) in the body.
    let mut in_body = false;
    let mut left = body_lines.unwrap_or(u64::MAX);
    let mut line_empty = true;
    'outer: loop {
        let n = match r.read(&mut inbuf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        for &b in inbuf.get(..n).unwrap_or_default() {
            if body_lines.is_some() && in_body && left == 0 {
                break 'outer;
            }
            if at_line_start && b == b'.' {
                out.push(b'.');
            }
            if b == b'\n' {
                if !prev_cr {
                    out.push(b'\r');
                }
                out.push(b'\n');
                if in_body {
                    left = left.saturating_sub(1);
                } else if line_empty {
                    in_body = true;
                }
                at_line_start = true;
                line_empty = true;
            } else {
                out.push(b);
                at_line_start = false;
                if b != b'\r' {
                    line_empty = false;
                }
            }
            prev_cr = b == b'\r';
        }
        if out.len() >= CHUNK {
            w.write_all(&out)?;
            out.clear();
        }
    }
    if !at_line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    w.write_all(&out)?;
    w.flush()
}

/// Dovecot's default POP3 UIDL, `pop3_uidl_format = %08Xu%08Xv`. Dovecot's
/// `X` modifier writes lowercase hex (checked against Dovecot 2.3.19).
pub fn dovecot_uidl(uid: u32, uid_validity: u32) -> String {
    format!("{uid:08x}{uid_validity:08x}")
}

/// A UIDL for an mbox message, from its From_ line and its header (what
/// `header` holds: the first bytes of the message): FNV-1a 64 in hex.
/// Stable while the message is not rewritten, across sessions and
/// restarts, without writing to the user's mbox. Identical messages get
/// the same value; callers add a counter for repeats.
pub fn content_uidl(from_line: &[u8], header: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in from_line.iter().chain(b"\n").chain(header) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Reads up to the end of the header (the first empty line) or `limit`
/// bytes, for [`content_uidl`].
///
/// # Errors
/// Read errors.
pub fn read_header<R: Read>(r: R, limit: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut reader = io::BufReader::new(r.take(limit));
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = io::BufRead::read_until(&mut reader, b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&line);
        if line == b"\n" || line == b"\r\n" {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(msg: &[u8], top: Option<u64>) -> Vec<u8> {
        let mut out = Vec::new();
        send_message(msg, &mut out, top).unwrap();
        out
    }

    #[test]
    fn crlf_and_stuffing_match_the_size() {
        let msg = b"Subject: x\n\n.hidden\nplain\r\n..two\nlast";
        let out = send(msg, None);
        assert_eq!(
            out,
            b"Subject: x\r\n\r\n..hidden\r\nplain\r\n...two\r\nlast\r\n.\r\n"
        );
        assert_eq!(crlf_size(&msg[..]).unwrap(), 41);
        let full = b"a\nb\r\n";
        assert_eq!(
            crlf_size(&full[..]).unwrap(),
            send(full, None).len() as u64 - 3
        );
    }

    #[test]
    fn top_sends_the_header_and_n_lines() {
        let msg = b"A: 1\nB: 2\n\nl1\nl2\nl3\n";
        assert_eq!(send(msg, Some(0)), b"A: 1\r\nB: 2\r\n\r\n.\r\n");
        assert_eq!(send(msg, Some(2)), b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n.\r\n");
        assert_eq!(send(msg, Some(99)), send(msg, None));
    }

    #[test]
    fn large_messages_stream_in_chunks() {
        let line = b".0123456789\n".repeat(20_000);
        let out = send(&line, None);
        assert_eq!(out.len() as u64, crlf_size(&line[..]).unwrap() + 20_000 + 3);
    }

    #[test]
    fn uidls() {
        assert_eq!(dovecot_uidl(1, 0x6b16_3b9b), "000000016b163b9b");
        let a = content_uidl(b"a@b Mon", b"Subject: x\n\n");
        assert_eq!(a.len(), 16);
        assert_ne!(a, content_uidl(b"a@b Tue", b"Subject: x\n\n"));
        assert_eq!(
            read_header(&b"A: 1\n\nbody\n"[..], 100).unwrap(),
            b"A: 1\n\n"
        );
    }
}
