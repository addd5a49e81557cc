//! COMPRESS=DEFLATE (RFC 4978): raw deflate both ways, each server write
//! flushed with a sync flush so the client can decode it at once, and
//! inflation bounded so a small compressed input cannot expand without
//! limit in one call.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Why compressed client data could not be inflated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InflateError;

/// The two deflate streams of one connection.
pub struct Deflate {
    out: Compress,
    inp: Decompress,
}

impl Default for Deflate {
    fn default() -> Self {
        Self::new()
    }
}

impl Deflate {
    /// Fresh streams (raw deflate, no zlib header, as RFC 4978 asks).
    pub fn new() -> Self {
        Deflate {
            out: Compress::new(Compression::new(6), false),
            inp: Decompress::new(false),
        }
    }

    /// Compress `data` for the client, ending with a sync flush.
    pub fn compress(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut consumed = 0usize;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(1024));
            }
            let before_in = self.out.total_in();
            let before_out = self.out.total_out();
            let r = self
                .out
                .compress_vec(&data[consumed..], &mut out, FlushCompress::Sync);
            consumed += (self.out.total_in() - before_in) as usize;
            let produced = self.out.total_out() - before_out;
            // Done when all input is in and the flush left spare room.
            if r.is_err() || (consumed >= data.len() && out.len() < out.capacity() && produced > 0)
            {
                break;
            }
            if consumed >= data.len() && produced == 0 {
                break;
            }
        }
        out
    }

    /// Inflate what the client sent; at most `limit` octets come out per
    /// call (`Err` on corrupt data or when more would come out).
    pub fn decompress(&mut self, data: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
        let mut out: Vec<u8> =
            Vec::with_capacity(data.len().saturating_mul(4).clamp(256, limit.max(256)));
        let mut consumed = 0usize;
        loop {
            if out.len() == out.capacity() {
                if out.len() >= limit {
                    return Err(InflateError);
                }
                out.reserve(out.len().max(256).min(limit - out.len()));
            }
            let before_in = self.inp.total_in();
            let before_out = self.inp.total_out();
            let st = self
                .inp
                .decompress_vec(&data[consumed..], &mut out, FlushDecompress::Sync)
                .map_err(|_| InflateError)?;
            consumed += (self.inp.total_in() - before_in) as usize;
            let produced = self.inp.total_out() - before_out;
            if st == Status::StreamEnd {
                return Ok(out);
            }
            if consumed >= data.len() && out.len() < out.capacity() {
                return Ok(out);
            }
            if produced == 0 && consumed >= data.len() {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn round_trip_with_flate2_streams() {
        let mut d = Deflate::new();
        // Server side: each write decodes by itself with a reader of the stream so far.
        let a = d.compress(b"* OK ready\r\n");
        let b = d.compress(&b"* 1 FETCH (FLAGS (\\Seen))\r\n".repeat(1000));
        let mut all = a.clone();
        all.extend_from_slice(&b);
        let mut dec = flate2::read::DeflateDecoder::new(&all[..]);
        let mut s = Vec::new();
        let _ = dec.read_to_end(&mut s);
        assert!(s.starts_with(b"* OK ready\r\n* 1 FETCH"));
        assert_eq!(s.len(), 12 + 27 * 1000);
        // Client side: a flate2 writer with sync flushes, inflated in pieces.
        let mut enc =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(b"a NOOP\r\n").unwrap();
        enc.flush().unwrap();
        let first = enc.get_ref().len();
        enc.write_all(&b"b SELECT INBOX\r\n".repeat(500)).unwrap();
        enc.flush().unwrap();
        let wire = enc.get_ref().clone();
        assert_eq!(
            d.decompress(&wire[..first], 1 << 20).unwrap(),
            b"a NOOP\r\n"
        );
        assert_eq!(
            d.decompress(&wire[first..], 1 << 20).unwrap().len(),
            16 * 500
        );
    }

    #[test]
    fn bomb_and_garbage_refused() {
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![b'a'; 10 << 20]).unwrap();
        enc.flush().unwrap();
        let wire = enc.get_ref().clone();
        assert!(wire.len() < 100_000);
        let mut d = Deflate::new();
        assert_eq!(d.decompress(&wire, 1 << 20), Err(InflateError));
        let mut d = Deflate::new();
        assert_eq!(d.decompress(&[0xff; 64], 1 << 20), Err(InflateError));
    }
}
