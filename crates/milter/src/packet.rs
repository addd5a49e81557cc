//! Milter packets: a 4-byte big-endian length (command byte included),
//! the command byte, then the data. Decoding goes through [`Cursor`],
//! which never panics on short or malformed data.

use std::io::{Read, Write};

use crate::Error;

/// Largest packet accepted from a milter (Postfix's limit is similar:
/// a replaced body comes in chunks of at most 64 KiB, plus slack).
pub const MAX_PACKET: usize = 1024 * 1024;

/// Writes one packet.
///
/// # Errors
/// [`Error::Io`] when the write fails; [`Error::TooLong`] for data over
/// [`MAX_PACKET`].
pub fn write(w: &mut impl Write, cmd: u8, data: &[u8]) -> Result<(), Error> {
    let len = data
        .len()
        .checked_add(1)
        .filter(|n| *n <= MAX_PACKET)
        .ok_or(Error::TooLong(data.len()))?;
    let len = u32::try_from(len).map_err(|_| Error::TooLong(data.len()))?;
    let mut buf = Vec::with_capacity(data.len() + 5);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.push(cmd);
    buf.extend_from_slice(data);
    w.write_all(&buf).map_err(Error::Io)?;
    w.flush().map_err(Error::Io)
}

/// Reads one packet: the command byte and the data.
///
/// # Errors
/// [`Error::Io`] (a timeout shows as WouldBlock/TimedOut),
/// [`Error::TooLong`], [`Error::Protocol`] for a zero length.
pub fn read(r: &mut impl Read) -> Result<(u8, Vec<u8>), Error> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).map_err(Error::Io)?;
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 {
        return Err(Error::Protocol("empty packet".into()));
    }
    if len > MAX_PACKET {
        return Err(Error::TooLong(len));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).map_err(Error::Io)?;
    let data = buf.split_off(1);
    let cmd = buf.first().copied().unwrap_or(0);
    Ok((cmd, data))
}

/// A reader over a packet's data.
#[derive(Debug)]
pub struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Cursor<'a> {
        Cursor { rest: data }
    }

    /// A big-endian u32.
    ///
    /// # Errors
    /// [`Error::Protocol`] when fewer than 4 bytes are left.
    pub fn u32(&mut self) -> Result<u32, Error> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<4>()
            .ok_or_else(|| Error::Protocol("short packet".into()))?;
        self.rest = rest;
        Ok(u32::from_be_bytes(*head))
    }

    /// A NUL-terminated string (lossy UTF-8); the rest of the data when
    /// the NUL is missing.
    pub fn string(&mut self) -> String {
        let end = self.rest.iter().position(|b| *b == 0);
        let (s, rest) = match end {
            Some(i) => (
                self.rest.get(..i).unwrap_or_default(),
                self.rest.get(i + 1..).unwrap_or_default(),
            ),
            None => (self.rest, &[][..]),
        };
        self.rest = rest;
        String::from_utf8_lossy(s).into_owned()
    }

    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Everything left.
    pub fn rest(self) -> &'a [u8] {
        self.rest
    }
}

/// Appends `s` and a NUL.
pub fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_input() {
        let mut b = Vec::new();
        write(&mut b, b'H', b"helo.example\0").unwrap();
        assert_eq!(&b[..5], &[0, 0, 0, 14, b'H']);
        let (c, d) = read(&mut &b[..]).unwrap();
        assert_eq!((c, &d[..]), (b'H', &b"helo.example\0"[..]));
        assert!(read(&mut &[0u8, 0, 0, 0][..]).is_err());
        assert!(read(&mut &[0xffu8, 0, 0, 0][..]).is_err());
        assert!(read(&mut &[0u8, 0, 0, 9, b'x'][..]).is_err());
        let mut c = Cursor::new(b"\0\0\0\x05ab\0cd");
        assert_eq!(c.u32().unwrap(), 5);
        assert_eq!(c.string(), "ab");
        assert_eq!(c.string(), "cd");
        assert!(c.is_empty());
        assert!(c.u32().is_err());
    }
}
