//! The local time zone's offset from UTC, for the date in an mbox From_
//! line (Postfix writes asctime(localtime())).
//!
//! Reads the TZif file named by `TZ` (`:path`, `Area/City` under
//! /usr/share/zoneinfo) or /etc/localtime, bounded to 256 KiB, and takes
//! the offset of the last transition at or before the time. After the last
//! listed transition the last offset is kept: Debian ships "fat" TZif files
//! that list transitions up to 2037, so only later dates in zones with
//! daylight saving time can be an hour off. Any failure means UTC; the
//! From_ line's date is informational.

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Largest TZif file read.
const TZIF_LIMIT: u64 = 256 * 1024;

/// Offset from UTC in seconds of the local time zone at `time`; 0 when it
/// cannot be known.
pub fn utc_offset(time: SystemTime) -> i32 {
    let secs = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    };
    let Some(path) = zone_file(std::env::var("TZ").ok().as_deref()) else {
        return 0;
    };
    let mut data = Vec::new();
    let read = File::open(&path).and_then(|f| f.take(TZIF_LIMIT).read_to_end(&mut data));
    if read.is_err() {
        return 0;
    }
    offset_at(&data, secs).unwrap_or(0)
}

/// The TZif file for a TZ value; None for UTC or an unusable value.
fn zone_file(tz: Option<&str>) -> Option<PathBuf> {
    let Some(tz) = tz else {
        return Some(PathBuf::from("/etc/localtime"));
    };
    let name = tz.strip_prefix(':').unwrap_or(tz);
    if name.is_empty() || name == "UTC" || name == "UTC0" || name == "GMT" {
        return None;
    }
    let path = Path::new(name);
    if path.is_absolute() {
        return Some(path.to_path_buf());
    }
    if path
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return None;
    }
    Some(Path::new("/usr/share/zoneinfo").join(path))
}

/// A cursor over TZif bytes that cannot read past the end.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let slice = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(slice)
    }

    fn u32(&mut self) -> Option<usize> {
        let b: [u8; 4] = self.take(4)?.try_into().ok()?;
        usize::try_from(u32::from_be_bytes(b)).ok()
    }
}

/// Counts from a TZif header.
struct Header {
    version: u8,
    isutcnt: usize,
    isstdcnt: usize,
    leapcnt: usize,
    timecnt: usize,
    typecnt: usize,
    charcnt: usize,
}

fn header(c: &mut Cursor<'_>) -> Option<Header> {
    if c.take(4)? != b"TZif" {
        return None;
    }
    let version = *c.take(1)?.first()?;
    c.take(15)?;
    Some(Header {
        version,
        isutcnt: c.u32()?,
        isstdcnt: c.u32()?,
        leapcnt: c.u32()?,
        timecnt: c.u32()?,
        typecnt: c.u32()?,
        charcnt: c.u32()?,
    })
}

/// The UTC offset at `secs` from a TZif file's bytes.
fn offset_at(data: &[u8], secs: i64) -> Option<i32> {
    let mut c = Cursor { data, pos: 0 };
    let mut h = header(&mut c)?;
    let mut time_size = 4;
    if h.version >= b'2' {
        // Skip the 32-bit block; use the 64-bit one that follows.
        let v1 = h
            .timecnt
            .checked_mul(5)?
            .checked_add(h.typecnt.checked_mul(6)?)?
            .checked_add(h.charcnt)?
            .checked_add(h.leapcnt.checked_mul(8)?)?
            .checked_add(h.isstdcnt)?
            .checked_add(h.isutcnt)?;
        c.take(v1)?;
        h = header(&mut c)?;
        time_size = 8;
    }
    let times = c.take(h.timecnt.checked_mul(time_size)?)?;
    let indices = c.take(h.timecnt)?;
    let types = c.take(h.typecnt.checked_mul(6)?)?;
    let mut index = 0usize;
    for (i, chunk) in times.chunks_exact(time_size).enumerate() {
        let t = if time_size == 8 {
            i64::from_be_bytes(chunk.try_into().ok()?)
        } else {
            i64::from(i32::from_be_bytes(chunk.try_into().ok()?))
        };
        if t > secs {
            break;
        }
        index = usize::from(*indices.get(i)?);
    }
    let ttinfo = types.get(index.checked_mul(6)?..index.checked_mul(6)?.checked_add(4)?)?;
    Some(i32::from_be_bytes(ttinfo.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version 1 TZif with two types (+3600, +7200) and one transition.
    fn sample() -> Vec<u8> {
        let mut v = b"TZif".to_vec();
        v.push(0);
        v.extend_from_slice(&[0; 15]);
        for n in [0u32, 0, 0, 1, 2, 4] {
            v.extend_from_slice(&n.to_be_bytes());
        }
        v.extend_from_slice(&1_000_000i32.to_be_bytes());
        v.push(1);
        v.extend_from_slice(&3600i32.to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(&7200i32.to_be_bytes());
        v.extend_from_slice(&[1, 0]);
        v.extend_from_slice(b"CET\0");
        v
    }

    #[test]
    fn parses_transitions() {
        let data = sample();
        assert_eq!(offset_at(&data, 0), Some(3600));
        assert_eq!(offset_at(&data, 1_000_000), Some(7200));
        assert_eq!(offset_at(&data, 2_000_000), Some(7200));
        // Truncated or foreign data never panics.
        for n in 0..data.len() {
            let _ = offset_at(&data[..n], 5);
        }
        assert_eq!(offset_at(b"not a zone file", 0), None);
    }

    #[test]
    fn zone_files() {
        assert_eq!(zone_file(None), Some(PathBuf::from("/etc/localtime")));
        assert_eq!(zone_file(Some("UTC")), None);
        assert_eq!(zone_file(Some("../etc/passwd")), None);
        assert_eq!(
            zone_file(Some(":Europe/Berlin")),
            Some(PathBuf::from("/usr/share/zoneinfo/Europe/Berlin"))
        );
    }

    #[test]
    fn real_zone_file_when_installed() {
        let zone = std::path::Path::new("/usr/share/zoneinfo/Europe/Berlin");
        testkit::need_file(zone, "tzdata");
        let data = std::fs::read(zone).unwrap();
        // 2026-01-15 and 2026-07-15, noon UTC.
        assert_eq!(offset_at(&data, 1_768_478_400), Some(3600));
        assert_eq!(offset_at(&data, 1_784_116_800), Some(7200));
    }
}
