//! Queue ids: unique, ordered by arrival time, safe to use in a path.
//!
//! The shape follows Postfix's long queue ids (`enable_long_queue_ids`):
//! the arrival time in seconds (6 digits) and microseconds (4 digits), both
//! in base 52, followed by the inode number of the queue file in base 52
//! (1 to 12 digits). The base-52 alphabet is Postfix's: digits and the
//! consonants of both cases, in ASCII order, so that
//!
//! - ids sort by arrival time when compared as strings (the time part has a
//!   fixed width and the alphabet is in ASCII order);
//! - no vowels means no words, and only `[0-9A-Za-z]` ever reaches a path.
//!
//! Why the inode: two live files on one file system never share an inode,
//! so time plus inode is unique among all messages in the queue, whichever
//! process created them, without any shared counter (Postfix's
//! mail_queue_enter reasons the same way). The inode stays the same when a
//! file is renamed between queues, so the id is stable for the message's
//! life. [`crate::writer`] creates the file first, reads its inode, then
//! links it under its id without replacing anything.

use crate::error::{Error, printable};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Postfix's base-52 alphabet: digits and consonants, in ASCII order.
const ALPHABET: &[u8; 52] = b"0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";
/// Width of the seconds field.
const SEC_DIGITS: usize = 6;
/// Width of the microseconds field.
const USEC_DIGITS: usize = 4;
/// Largest number of seconds the seconds field holds (52^6 - 1).
const MAX_SECS: u64 = 52u64.pow(SEC_DIGITS as u32) - 1;
/// Width of the whole time part.
pub(crate) const TIME_DIGITS: usize = SEC_DIGITS + USEC_DIGITS;
/// Most digits a u64 inode needs in base 52 (52^12 > 2^64).
const MAX_INODE_DIGITS: usize = 12;
/// Longest queue id.
pub(crate) const MAX_LEN: usize = TIME_DIGITS + MAX_INODE_DIGITS;
/// Shortest queue id.
pub(crate) const MIN_LEN: usize = TIME_DIGITS + 1;

/// A validated queue id. Only [`QueueId::parse`] and the writer make one, so
/// holding a `QueueId` means the text is safe to join to a directory.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId {
    // Ordering derives from `text` first: byte order is time order.
    text: [u8; MAX_LEN],
    len: u8,
}

fn digit_value(b: u8) -> Option<u64> {
    ALPHABET.iter().position(|&a| a == b).map(|p| p as u64)
}

/// Writes `value` as exactly `out.len()` base-52 digits; false if it does
/// not fit.
fn encode_fixed(mut value: u64, out: &mut [u8]) -> bool {
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value % 52) as usize];
        value /= 52;
    }
    value == 0
}

fn decode(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, &b| {
        acc.checked_mul(52)?.checked_add(digit_value(b)?)
    })
}

impl QueueId {
    /// Validates `text` as a queue id: 11 to 22 characters of the base-52
    /// alphabet, a microseconds field below one million and an inode that
    /// fits in 64 bits. This is the one check every id from outside (a file
    /// name, a command line, a socket) passes before any path is built.
    ///
    /// # Errors
    /// [`Error::BadQueueId`] with the text made printable.
    pub fn parse(text: &str) -> Result<QueueId, Error> {
        let bad = || Error::BadQueueId {
            text: printable(text),
        };
        let bytes = text.as_bytes();
        if bytes.len() < MIN_LEN || bytes.len() > MAX_LEN {
            return Err(bad());
        }
        let (time, inode) = bytes.split_at(TIME_DIGITS);
        let (sec, usec) = time.split_at(SEC_DIGITS);
        decode(sec).ok_or_else(bad)?;
        match decode(usec) {
            Some(u) if u < 1_000_000 => {}
            _ => return Err(bad()),
        }
        // A leading zero digit would give one inode two spellings.
        if inode.len() > 1 && inode.first() == Some(&b'0') {
            return Err(bad());
        }
        decode(inode).ok_or_else(bad)?;
        let mut id = QueueId {
            text: [0; MAX_LEN],
            len: bytes.len() as u8,
        };
        id.text[..bytes.len()].copy_from_slice(bytes);
        Ok(id)
    }

    /// Builds the id for a file created at `time` with inode `inode`.
    /// Times before 1970 or past the year 2600 (beyond six base-52 digits)
    /// are clamped.
    pub(crate) fn new(time: Duration, inode: u64) -> QueueId {
        let mut id = QueueId {
            text: [0; MAX_LEN],
            len: 0,
        };
        let (secs, usecs) = if encode_fixed(time.as_secs(), &mut id.text[..SEC_DIGITS]) {
            (time.as_secs(), u64::from(time.subsec_micros()))
        } else {
            // Past the year 2600: the largest representable time keeps order.
            (MAX_SECS, 999_999)
        };
        encode_fixed(secs, &mut id.text[..SEC_DIGITS]);
        encode_fixed(usecs, &mut id.text[SEC_DIGITS..TIME_DIGITS]);
        let mut digits = [0u8; MAX_INODE_DIGITS];
        let mut n = 0;
        let mut v = inode;
        loop {
            digits[n] = ALPHABET[(v % 52) as usize];
            n += 1;
            v /= 52;
            if v == 0 {
                break;
            }
        }
        for (i, d) in digits[..n].iter().rev().enumerate() {
            id.text[TIME_DIGITS + i] = *d;
        }
        id.len = (TIME_DIGITS + n) as u8;
        id
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only alphabet bytes are ever stored.
        std::str::from_utf8(&self.text[..usize::from(self.len)]).unwrap_or("")
    }

    /// The arrival time encoded in the id.
    pub fn time(&self) -> SystemTime {
        let sec = decode(&self.text[..SEC_DIGITS]).unwrap_or(0);
        let usec = decode(&self.text[SEC_DIGITS..TIME_DIGITS]).unwrap_or(0);
        UNIX_EPOCH + Duration::from_secs(sec) + Duration::from_micros(usec)
    }

    /// The inode number encoded in the id.
    pub fn inode(&self) -> u64 {
        decode(&self.text[TIME_DIGITS..usize::from(self.len)]).unwrap_or(0)
    }

    /// The one character that picks a hashed subdirectory: the last digit of
    /// the microseconds, which changes fastest and so spreads files evenly.
    pub(crate) fn hash_char(&self) -> char {
        char::from(self.text[TIME_DIGITS - 1])
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QueueId({})", self.as_str())
    }
}

impl std::str::FromStr for QueueId {
    type Err = Error;
    fn from_str(s: &str) -> Result<QueueId, Error> {
        QueueId::parse(s)
    }
}

/// The last time handed out by [`next_time`], in microseconds since the
/// epoch.
static LAST_MICROS: AtomicU64 = AtomicU64::new(0);

/// The current time in microseconds, strictly greater than any value this
/// process returned before, so ids made by one process strictly increase
/// even when two files are created within one microsecond or the clock
/// steps back a little.
pub(crate) fn next_time() -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let now = u64::try_from(now.as_micros()).unwrap_or(u64::MAX);
    let mut last = LAST_MICROS.load(Ordering::Relaxed);
    loop {
        let next = now.max(last.saturating_add(1));
        match LAST_MICROS.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Duration::from_micros(next),
            Err(seen) => last = seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_time_and_inode() {
        let t = Duration::new(1_763_900_000, 123_456_000);
        for inode in [0u64, 1, 51, 52, 12345, u64::MAX] {
            let id = QueueId::new(t, inode);
            let parsed = QueueId::parse(id.as_str()).unwrap();
            assert_eq!(parsed, id);
            assert_eq!(parsed.inode(), inode);
            assert_eq!(parsed.time(), UNIX_EPOCH + t);
            assert!(id.as_str().bytes().all(|b| b.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn far_future_clamps_to_a_valid_id() {
        let id = QueueId::new(Duration::from_secs(u64::MAX / 2), 9);
        assert_eq!(QueueId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn string_order_is_time_order() {
        let mut ids = Vec::new();
        for (s, us, ino) in [
            (1, 0, 999_999u64),
            (1, 1, 1),
            (1, 999_999, 5),
            (2, 0, 0),
            (52, 0, 7),
            (1_763_900_000, 5, 3),
        ] {
            ids.push(QueueId::new(Duration::new(s, us * 1000), ino));
        }
        let mut sorted = ids.clone();
        sorted.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        assert_eq!(sorted, ids);
        let mut by_ord = ids.clone();
        by_ord.sort();
        assert_eq!(by_ord, ids);
    }

    #[test]
    fn parse_rejects_bad_text() {
        for bad in [
            "",
            "0000000000",               // too short
            "0000000000B0000000000000", // too long
            "00000000000A",             // vowel
            "000000000 B",              // space
            "../../etc/passwd",
            "000000zzzzB",  // microseconds >= 10^6
            "000000000000", // fine time, then inode "00": leading zero
            "0000000000\u{e9}",
            "zzzzzzzzzzzzzzzzzzzzzz", // inode overflows u64
        ] {
            assert!(QueueId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(QueueId::parse("00000000000").is_ok());
    }

    #[test]
    fn next_time_strictly_increases() {
        let mut last = next_time();
        for _ in 0..10_000 {
            let t = next_time();
            assert!(t > last);
            last = t;
        }
    }
}
