//! Postfix's record layer: a queue file is a sequence of records, each a
//! type byte, a length in 7-bit groups (low group first, high bit set on
//! every byte but the last), then that many data bytes (Postfix's
//! record.c, rec_type.h).
//!
//! [`Records`] walks a file held in memory and follows pointer records
//! (`p`, a decimal file offset; 0 is a placeholder) the way Postfix's
//! readers do, with a bound on the number of jumps so that a pointer loop
//! ends in an error instead of running forever. Every failure is a
//! [`RecordError`] with the byte offset; nothing here panics.

use std::fmt;

/// Pointer record type (`REC_TYPE_PTR`).
pub const PTR: u8 = b'p';

/// Longest record accepted: Postfix's own limit for any record is far
/// lower (line_length_limit splits text into `L` records); this only
/// bounds a hostile length field.
pub const MAX_RECORD: usize = 1 << 24;

/// Most pointer jumps followed in one file. Postfix allows 10000 reverse
/// jumps; one per inserted header and one per appended recipient group.
pub const MAX_JUMPS: usize = 100_000;

/// A damaged record stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// Byte offset of the record that could not be read.
    pub offset: usize,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "offset {}: {}", self.offset, self.problem)
    }
}

impl std::error::Error for RecordError {}

/// One record: its type, its data, and where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The type byte.
    pub kind: u8,
    /// The data bytes.
    pub data: &'a [u8],
    /// Offset of the type byte in the file.
    pub offset: usize,
}

impl Record<'_> {
    /// The data as text: Postfix records carry text; a byte that is not
    /// UTF-8 is replaced (envelope fields must be text to be queued).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.data)
    }
}

/// Reads one raw record at `pos`; returns it and the offset after it, or
/// `None` at the end of the file.
pub fn read_raw(buf: &[u8], pos: usize) -> Result<Option<(Record<'_>, usize)>, RecordError> {
    let err = |problem: String| RecordError {
        offset: pos,
        problem,
    };
    let Some(&kind) = buf.get(pos) else {
        return Ok(None);
    };
    let mut len: usize = 0;
    let mut shift = 0u32;
    let mut at = pos + 1;
    loop {
        // Postfix's limit: the length must fit an int.
        if shift + 7 >= 32 {
            return Err(err(format!(
                "too many length bits, record type {}",
                show(kind)
            )));
        }
        let Some(&byte) = buf.get(at) else {
            return Err(err(format!(
                "unexpected end of file reading length, record type {}",
                show(kind)
            )));
        };
        at += 1;
        len |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    if len > MAX_RECORD {
        return Err(err(format!(
            "illegal length {len}, record type {}",
            show(kind)
        )));
    }
    let end = at
        .checked_add(len)
        .filter(|&e| e <= buf.len())
        .ok_or_else(|| {
            err(format!(
                "unexpected end of file in data, record type {} length {len}",
                show(kind)
            ))
        })?;
    let data = buf.get(at..end).unwrap_or_default();
    Ok(Some((
        Record {
            kind,
            data,
            offset: pos,
        },
        end,
    )))
}

/// A record type for messages: the letter, or its number when not
/// printable.
pub fn show(kind: u8) -> String {
    if kind.is_ascii_graphic() {
        format!("'{}'", char::from(kind))
    } else {
        format!("{kind}")
    }
}

/// The records of a file, pointer records followed (not returned).
#[derive(Debug)]
pub struct Records<'a> {
    buf: &'a [u8],
    pos: usize,
    jumps: usize,
    done: bool,
}

impl<'a> Records<'a> {
    /// Records of `buf` from its start.
    pub fn new(buf: &'a [u8]) -> Records<'a> {
        Records {
            buf,
            pos: 0,
            jumps: 0,
            done: false,
        }
    }

    /// The next record, following pointers; `Ok(None)` at the end of the
    /// file.
    pub fn next_record(&mut self) -> Result<Option<Record<'a>>, RecordError> {
        if self.done {
            return Ok(None);
        }
        loop {
            let Some((rec, next)) =
                read_raw(self.buf, self.pos).inspect_err(|_| self.done = true)?
            else {
                self.done = true;
                return Ok(None);
            };
            if rec.kind != PTR {
                self.pos = next;
                return Ok(Some(rec));
            }
            let target = parse_offset(rec.data).ok_or_else(|| {
                self.done = true;
                RecordError {
                    offset: rec.offset,
                    problem: format!("malformed pointer record value: {}", rec.text()),
                }
            })?;
            if target == 0 {
                // A placeholder, reserved for later appends.
                self.pos = next;
                continue;
            }
            self.jumps += 1;
            if self.jumps > MAX_JUMPS {
                self.done = true;
                return Err(RecordError {
                    offset: rec.offset,
                    problem: "too many pointer jumps (a loop?)".into(),
                });
            }
            if target >= self.buf.len() {
                self.done = true;
                return Err(RecordError {
                    offset: rec.offset,
                    problem: format!("pointer record past the end of file: {target}"),
                });
            }
            self.pos = target;
        }
    }
}

/// A pointer record's value: decimal, leading blanks allowed.
fn parse_offset(data: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(data).ok()?.trim_start();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Encodes one record (tests, and fixtures made by hand).
pub fn encode(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    let mut rest = data.len();
    loop {
        let mut byte = (rest & 0x7f) as u8;
        rest >>= 7;
        if rest != 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(buf: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, RecordError> {
        let mut r = Records::new(buf);
        let mut out = Vec::new();
        while let Some(rec) = r.next_record()? {
            out.push((rec.kind, rec.data.to_vec()));
        }
        Ok(out)
    }

    #[test]
    fn lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 300, 16384, 70000] {
            let data = vec![b'x'; len];
            let buf = encode(b'N', &data);
            let (rec, next) = read_raw(&buf, 0).unwrap().unwrap();
            assert_eq!(rec.data.len(), len);
            assert_eq!(next, buf.len());
        }
    }

    #[test]
    fn pointers_are_followed_and_zero_is_a_placeholder() {
        // R a, p -> (offset of R c), R b (skipped), R c, E
        let mut buf = encode(b'R', b"a");
        buf.extend(encode(PTR, b"0"));
        let ptr_at = buf.len();
        buf.extend(encode(PTR, b"000000000000000"));
        buf.extend(encode(b'R', b"b"));
        let target = buf.len();
        buf.extend(encode(b'R', b"c"));
        buf.extend(encode(b'E', b""));
        let p = encode(PTR, format!("{target:15}").as_bytes());
        buf.splice(ptr_at..ptr_at + p.len(), p);
        let recs = all(&buf).unwrap();
        let kinds: Vec<_> = recs.iter().map(|(k, d)| (*k, d.clone())).collect();
        assert_eq!(
            kinds,
            vec![(b'R', b"a".to_vec()), (b'R', b"c".to_vec()), (b'E', vec![])]
        );
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        // Truncated length, truncated data, huge length, too many length
        // bytes, pointer loop, pointer past the end, bad pointer text.
        let cases: Vec<Vec<u8>> = vec![
            vec![b'N', 0x80],
            vec![b'N', 5, b'a'],
            vec![b'N', 0xff, 0xff, 0xff, 0x7f],
            vec![b'N', 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
            encode(PTR, b"0000000000000000000000000")
                .into_iter()
                .chain(encode(PTR, b"26"))
                .collect(),
            encode(PTR, b"999999"),
            encode(PTR, b"-5"),
            encode(PTR, b"x"),
        ];
        for case in cases {
            let e = all(&case).unwrap_err();
            assert!(!e.problem.is_empty(), "{case:?}");
        }
        // A loop to the start of the file.
        let looped = encode(PTR, b"1");
        let mut buf = encode(b'R', b"x");
        buf.extend(encode(PTR, b"0"));
        let _ = looped;
        let back: Vec<u8> = encode(PTR, b"3");
        buf.extend(back);
        assert!(
            all(&buf)
                .unwrap_err()
                .problem
                .contains("too many pointer jumps")
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let len = (seed % 64) as usize;
            let mut buf = Vec::with_capacity(len);
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                buf.push((seed >> 24) as u8);
            }
            let _ = all(&buf);
        }
    }
}
