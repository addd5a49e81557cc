//! DATA and BDAT content decoding: a streaming state machine fed arbitrary
//! splits of client input.
//!
//! [`DataDecoder`] undoes dot-stuffing, turns CRLF into LF (cleanup's
//! content lines end in `\n`), counts the bytes against
//! message_size_limit and yields chunks of at most [`proto::CONTENT_CHUNK`]
//! bytes. The message ends ONLY at CRLF.CRLF: the `.` line must end in
//! CRLF and so must the line before it (the DATA command's own CRLF counts
//! for an empty message). `\n.\n`, `\r.\n`, `\n.\r\n` and `\r.\r` are
//! content, never an end, so a second message hidden behind them (SMTP
//! smuggling, CVE-2023-51764) is just text of the first.
//!
//! A bare LF ends a content line under smtpd_forbid_bare_newline =
//! normalize (Postfix 3.9's default, chosen here too: it closes the
//! smuggling hole and keeps sloppy clients working), or stops the decoder
//! with [`DataEvent::BareLf`] under `reject` (the shell replies
//! `550 5.5.2 Error: bare <LF> received` and disconnects). A bare CR is
//! kept as a content byte, as Postfix does.
//!
//! [`BdatDecoder`] reads exactly the announced number of bytes of a BDAT
//! chunk (no dot-stuffing), converting CRLF to LF across chunk boundaries.

use crate::line::BareNewline;
use proto::CONTENT_CHUNK;

/// What the decoder produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataEvent {
    /// Message text, lines ending in `\n`; at most [`CONTENT_CHUNK`] bytes.
    /// Not produced once the message is over message_size_limit.
    Chunk(Vec<u8>),
    /// The end of the message (CRLF.CRLF) was read.
    End {
        /// Decoded bytes in the message (after unstuffing, LF endings).
        size: u64,
        /// The message was over the size limit: reply
        /// `552 5.3.4 Error: message file too big`.
        too_big: bool,
    },
    /// A bare LF under [`BareNewline::Reject`]; nothing more is read.
    BareLf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    /// At the start of a line; whether the previous line ended in CRLF.
    LineStart(bool),
    /// Read `.` at the start of a line.
    Dot(bool),
    /// Read `.` CR at the start of a line.
    DotCr(bool),
    /// Inside a line.
    Mid,
    /// Read a CR inside a line.
    Cr,
    /// Finished (end seen or bare LF refused).
    Done,
}

/// Decodes DATA content; see the module documentation.
#[derive(Debug, Clone)]
pub struct DataDecoder {
    st: St,
    mode: BareNewline,
    out: Vec<u8>,
    size: u64,
    limit: u64,
}

impl DataDecoder {
    /// A decoder for one message; `size_limit` 0 means no limit.
    pub fn new(mode: BareNewline, size_limit: u64) -> DataDecoder {
        DataDecoder {
            st: St::LineStart(true),
            mode,
            out: Vec::new(),
            size: 0,
            limit: size_limit,
        }
    }

    /// True once the end of data (or a refused bare LF) was read.
    pub fn is_done(&self) -> bool {
        self.st == St::Done
    }

    fn too_big(&self) -> bool {
        self.limit != 0 && self.size > self.limit
    }

    /// Adds message text: counted, kept while the size is within the
    /// limit (the chunk in hand is dropped when it is exceeded), handed on
    /// in chunks of [`CONTENT_CHUNK`].
    fn emit(&mut self, mut bytes: &[u8], events: &mut Vec<DataEvent>) {
        while !bytes.is_empty() {
            let room = if self.limit == 0 {
                usize::MAX
            } else {
                usize::try_from(self.limit.saturating_sub(self.size)).unwrap_or(usize::MAX)
            };
            if room == 0 {
                self.size = self.size.saturating_add(bytes.len() as u64);
                self.out.clear();
                return;
            }
            let space = CONTENT_CHUNK.saturating_sub(self.out.len()).max(1);
            let take = bytes.len().min(space).min(room);
            let (now, rest) = bytes.split_at(take);
            self.out.extend_from_slice(now);
            self.size = self.size.saturating_add(take as u64);
            bytes = rest;
            if self.out.len() >= CONTENT_CHUNK {
                events.push(DataEvent::Chunk(std::mem::take(&mut self.out)));
            }
        }
    }

    /// Decodes from `input`, appending events; returns how many bytes were
    /// used. It stops right after the end of data or a refused bare LF, so
    /// the bytes after it (pipelined commands) go back to the line reader.
    pub fn feed(&mut self, input: &[u8], events: &mut Vec<DataEvent>) -> usize {
        let mut i = 0;
        while let Some(rest) = input.get(i..).filter(|r| !r.is_empty()) {
            // Inside a line, everything up to the next CR or LF is text
            // as it is: taken at once.
            if self.st == St::Mid {
                let plain = memchr::memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
                if plain > 0 {
                    self.emit(rest.get(..plain).unwrap_or_default(), events);
                    i += plain;
                    continue;
                }
            }
            let Some(&b) = rest.first() else { break };
            if self.step(b, events) {
                return i + 1;
            }
            i += 1;
        }
        input.len()
    }

    /// One byte; true when decoding is finished.
    fn step(&mut self, b: u8, ev: &mut Vec<DataEvent>) -> bool {
        match (self.st, b) {
            (St::Done, _) => return true,
            (St::LineStart(p), b'.') => self.st = St::Dot(p),
            (St::LineStart(_), b'\r') => self.st = St::Cr,
            (St::LineStart(_) | St::Mid | St::Dot(_), b'\n') => return self.bare_lf(ev),
            (St::Dot(p), b'\r') => self.st = St::DotCr(p),
            (St::DotCr(true), b'\n') => {
                if !self.out.is_empty() {
                    ev.push(DataEvent::Chunk(std::mem::take(&mut self.out)));
                }
                ev.push(DataEvent::End {
                    size: self.size,
                    too_big: self.too_big(),
                });
                self.st = St::Done;
                return true;
            }
            (St::DotCr(false), b'\n') | (St::Cr, b'\n') => {
                // ".\r\n" after a bare-LF line: an (unstuffed) empty line.
                self.emit(b"\n", ev);
                self.st = St::LineStart(true);
            }
            (St::DotCr(_), b'\r') | (St::Cr, b'\r') => {
                self.emit(b"\r", ev);
                self.st = St::Cr;
            }
            (St::DotCr(_), b) | (St::Cr, b) => {
                self.emit(&[b'\r', b], ev);
                self.st = St::Mid;
            }
            (St::Mid, b'\r') => self.st = St::Cr,
            (St::LineStart(_) | St::Dot(_) | St::Mid, b) => {
                // A leading dot was dropped by the Dot state (unstuffing).
                self.emit(&[b], ev);
                self.st = St::Mid;
            }
        }
        false
    }

    fn bare_lf(&mut self, ev: &mut Vec<DataEvent>) -> bool {
        if self.mode == BareNewline::Reject {
            self.out.clear();
            ev.push(DataEvent::BareLf);
            self.st = St::Done;
            return true;
        }
        self.emit(b"\n", ev);
        self.st = St::LineStart(false);
        false
    }
}

/// What a BDAT chunk produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BdatEvent {
    /// Message text, lines ending in `\n`; at most [`CONTENT_CHUNK`] bytes.
    Chunk(Vec<u8>),
    /// The announced byte count of this chunk has been read.
    ChunkEnd {
        /// Decoded message bytes so far, all chunks.
        size: u64,
        /// Over message_size_limit.
        too_big: bool,
    },
}

/// Reads BDAT chunks of one message; see the module documentation.
#[derive(Debug, Clone)]
pub struct BdatDecoder {
    remaining: u64,
    last: bool,
    cr_pending: bool,
    out: Vec<u8>,
    size: u64,
    limit: u64,
}

impl BdatDecoder {
    /// A decoder for one message; `size_limit` 0 means no limit.
    pub fn new(size_limit: u64) -> BdatDecoder {
        BdatDecoder {
            remaining: 0,
            last: false,
            cr_pending: false,
            out: Vec::new(),
            size: 0,
            limit: size_limit,
        }
    }

    /// Starts a chunk of `count` bytes (`BDAT count [LAST]`). A zero-length
    /// chunk ends at once: the caller sees [`BdatEvent::ChunkEnd`] on the
    /// next [`BdatDecoder::feed`], even with empty input.
    pub fn begin_chunk(&mut self, count: u64, last: bool) {
        self.remaining = count;
        self.last = last;
    }

    /// Bytes of the current chunk still to be read.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Total decoded bytes so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    fn push(&mut self, b: u8, ev: &mut Vec<BdatEvent>) {
        self.size = self.size.saturating_add(1);
        if self.limit != 0 && self.size > self.limit {
            self.out.clear();
            return;
        }
        self.out.push(b);
        if self.out.len() >= CONTENT_CHUNK {
            ev.push(BdatEvent::Chunk(std::mem::take(&mut self.out)));
        }
    }

    /// Reads chunk bytes from `input`; returns how many were used (never
    /// more than the chunk has left).
    pub fn feed(&mut self, input: &[u8], ev: &mut Vec<BdatEvent>) -> usize {
        let take = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(input.len());
        for &b in input.get(..take).unwrap_or(&[]) {
            if self.cr_pending {
                self.cr_pending = false;
                if b != b'\n' {
                    self.push(b'\r', ev);
                }
            }
            if b == b'\r' {
                self.cr_pending = true;
            } else {
                self.push(b, ev);
            }
        }
        self.remaining -= take as u64;
        if self.remaining == 0 {
            if self.last && self.cr_pending {
                self.cr_pending = false;
                self.push(b'\r', ev);
            }
            if !self.out.is_empty() {
                ev.push(BdatEvent::Chunk(std::mem::take(&mut self.out)));
            }
            ev.push(BdatEvent::ChunkEnd {
                size: self.size,
                too_big: self.limit != 0 && self.size > self.limit,
            });
        }
        take
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Decodes with the given split points; returns (text, ended, used).
    fn decode(
        mode: BareNewline,
        input: &[u8],
        splits: &[usize],
    ) -> (Vec<u8>, Vec<DataEvent>, usize) {
        let mut d = DataDecoder::new(mode, 0);
        let mut ev = Vec::new();
        let mut pos = 0;
        let mut points: Vec<usize> = splits.iter().map(|&s| s.min(input.len())).collect();
        points.sort_unstable();
        points.push(input.len());
        for p in points {
            if p < pos || d.is_done() {
                continue;
            }
            pos += d.feed(&input[pos..p], &mut ev);
        }
        let mut text = Vec::new();
        let mut rest = Vec::new();
        for e in &ev {
            match e {
                DataEvent::Chunk(c) => text.extend_from_slice(c),
                other => rest.push(other.clone()),
            }
        }
        (text, rest, pos)
    }

    #[test]
    fn simple_message_and_unstuffing() {
        let msg = b"Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n";
        let (text, ev, used) = decode(BareNewline::Normalize, msg, &[]);
        assert_eq!(text, b"Subject: x\n\n.dot\n");
        assert_eq!(
            ev,
            vec![DataEvent::End {
                size: 17,
                too_big: false
            }]
        );
        assert_eq!(&msg[used..], b"QUIT\r\n");
    }

    #[test]
    fn empty_message() {
        let (text, ev, used) = decode(BareNewline::Normalize, b".\r\n", &[]);
        assert!(text.is_empty());
        assert_eq!(
            ev,
            vec![DataEvent::End {
                size: 0,
                too_big: false
            }]
        );
        assert_eq!(used, 3);
    }

    const SMUGGLE: &[u8] = b"Subject: a\r\n\r\nhello\n.\nMAIL FROM:<evil@x>\r\nx\r.\nRCPT TO:<v@y>\r\ny\n.\r\nDATA\r\nz\r.\r\nw\r\n.\r\nNEXT\r\n";

    #[test]
    fn smuggling_sequences_do_not_end_the_message() {
        let (text, ev, used) = decode(BareNewline::Normalize, SMUGGLE, &[]);
        assert_eq!(
            text,
            b"Subject: a\n\nhello\n\nMAIL FROM:<evil@x>\nx\r.\nRCPT TO:<v@y>\ny\n\nDATA\nz\r.\nw\n"
                .to_vec()
        );
        assert_eq!(ev.len(), 1);
        assert!(matches!(ev[0], DataEvent::End { .. }));
        assert_eq!(&SMUGGLE[used..], b"NEXT\r\n");
    }

    #[test]
    fn smuggling_rejected_under_reject() {
        let (text, ev, used) = decode(BareNewline::Reject, SMUGGLE, &[]);
        assert!(text.is_empty());
        assert_eq!(ev, vec![DataEvent::BareLf]);
        assert_eq!(used, b"Subject: a\r\n\r\nhello\n".len());
    }

    #[test]
    fn every_split_point_gives_the_same_output() {
        let whole = decode(BareNewline::Normalize, SMUGGLE, &[]);
        for i in 0..=SMUGGLE.len() {
            assert_eq!(
                decode(BareNewline::Normalize, SMUGGLE, &[i]),
                whole,
                "split at {i}"
            );
            for j in i..=SMUGGLE.len() {
                assert_eq!(
                    decode(BareNewline::Normalize, SMUGGLE, &[i, j]),
                    whole,
                    "split at {i},{j}"
                );
            }
        }
    }

    proptest! {
        /// Text taken in bulk inside a line (the fast path of `feed`)
        /// gives what one byte at a time gives: the same events, the
        /// same bytes used, also across the size limit.
        #[test]
        fn bulk_text_is_byte_by_byte_text(
            input in proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b'.'), Just(b'\r'), Just(b'\n')], 0..300),
            limit in 0u64..40,
        ) {
            let mut input = input;
            input.extend_from_slice(b"\r\n.\r\nQUIT\r\n");
            let mut whole = DataDecoder::new(BareNewline::Normalize, limit);
            let mut ev_whole = Vec::new();
            let used_whole = whole.feed(&input, &mut ev_whole);
            let mut single = DataDecoder::new(BareNewline::Normalize, limit);
            let mut ev_single = Vec::new();
            let mut used_single = 0;
            while used_single < input.len() && !single.is_done() {
                used_single += single.feed(&input[used_single..used_single + 1], &mut ev_single);
            }
            let text = |ev: &[DataEvent]| -> (Vec<u8>, Vec<DataEvent>) {
                let mut t = Vec::new();
                let mut rest = Vec::new();
                for e in ev {
                    match e {
                        DataEvent::Chunk(c) => t.extend_from_slice(c),
                        other => rest.push(other.clone()),
                    }
                }
                (t, rest)
            };
            prop_assert_eq!(text(&ev_whole), text(&ev_single));
            prop_assert_eq!(used_whole, used_single);
        }
    }

    #[test]
    fn size_limit_counts_and_drops() {
        let mut d = DataDecoder::new(BareNewline::Normalize, 5);
        let mut ev = Vec::new();
        d.feed(b"123456789\r\n.\r\n", &mut ev);
        assert_eq!(
            ev,
            vec![DataEvent::End {
                size: 10,
                too_big: true
            }]
        );
    }

    #[test]
    fn chunks_are_bounded() {
        let mut input = vec![b'a'; CONTENT_CHUNK * 2 + 10];
        input.extend_from_slice(b"\r\n.\r\n");
        let mut d = DataDecoder::new(BareNewline::Normalize, 0);
        let mut ev = Vec::new();
        d.feed(&input, &mut ev);
        let sizes: Vec<usize> = ev
            .iter()
            .filter_map(|e| {
                if let DataEvent::Chunk(c) = e {
                    Some(c.len())
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(sizes, vec![CONTENT_CHUNK, CONTENT_CHUNK, 11]);
    }

    #[test]
    fn bdat_chunks() {
        let mut d = BdatDecoder::new(0);
        let mut ev = Vec::new();
        d.begin_chunk(5, false);
        assert_eq!(d.feed(b"ab\r\ncdef", &mut ev), 5);
        // The CR of "\r\n" split across chunks still becomes one LF.
        d.begin_chunk(4, true);
        assert_eq!(d.feed(b"\nx\r\rQUIT", &mut ev), 4);
        let text: Vec<u8> = ev
            .iter()
            .flat_map(|e| {
                if let BdatEvent::Chunk(c) = e {
                    c.clone()
                } else {
                    Vec::new()
                }
            })
            .collect();
        assert_eq!(text, b"ab\nc\nx\r\r");
        assert_eq!(
            ev.last(),
            Some(&BdatEvent::ChunkEnd {
                size: 8,
                too_big: false
            })
        );
        let mut z = BdatDecoder::new(0);
        let mut ev = Vec::new();
        z.begin_chunk(0, true);
        assert_eq!(z.feed(b"", &mut ev), 0);
        assert_eq!(
            ev,
            vec![BdatEvent::ChunkEnd {
                size: 0,
                too_big: false
            }]
        );
    }

    proptest! {
        #[test]
        fn random_input_any_split(input in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'.'), any::<u8>()], 0..200), a in 0usize..200, b in 0usize..200) {
            let whole = decode(BareNewline::Normalize, &input, &[]);
            prop_assert_eq!(decode(BareNewline::Normalize, &input, &[a, b]), whole);
            let whole = decode(BareNewline::Reject, &input, &[]);
            prop_assert_eq!(decode(BareNewline::Reject, &input, &[a, b]), whole);
        }

        #[test]
        fn end_only_after_crlf_dot_crlf(input in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'.'), Just(b'a')], 0..60)) {
            let (_, ev, used) = decode(BareNewline::Normalize, &input, &[]);
            if matches!(ev.last(), Some(DataEvent::End { .. })) {
                let mut framed = b"\r\n".to_vec();
                framed.extend_from_slice(&input[..used]);
                prop_assert!(framed.ends_with(b"\r\n.\r\n"));
            }
        }
    }
}
