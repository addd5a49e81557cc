//! The listing without reading the directories: when new/ and cur/ are
//! exactly as they were when the list was last written from a full scan,
//! the list's records are the listing (as Dovecot trusts its index while
//! the directories' times are unchanged).
//!
//! The list's header then carries a stamp, the extension field
//! `p<new ino>.<ctime s>.<ctime ns>.<mtime s>.<mtime ns>.<cur ...>` (the
//! same five for cur/), then `-` and a hash of the records as written
//! ([`Fingerprint`]): Dovecot keeps header fields it does not know as
//! they are but writes its own records (unique names without the info
//! part, its `W` sizes), so a list it rewrote no longer matches its
//! stamp and is scanned again rather than trusted. It is written only when both directories' ctimes were at
//! least [`SETTLED`] old at the scan: a later change to a directory then
//! gets a later ctime (file system times are coarse, so a change in the
//! same tick as the stamped time would not show), and any difference in
//! either directory's inode, ctime or mtime means a full scan again. The
//! records hold full file names (Dovecot's form); a name with `:` (the
//! info part) is in cur/, one without in new/, and a scan whose names do
//! not follow that rule writes no stamp.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::listing::{Listing, name_crlf_size};
use super::vsize;
use crate::error::{Error, Result};
use crate::maildir::{Entry, Location, Maildir};

/// How long a directory must have been unchanged before its state is stamped.
pub(super) const SETTLED: Duration = Duration::from_secs(2);

/// The header key of the stamp.
pub(super) const KEY: char = 'p';

/// new/ and cur/ as the stamp records them, and whether both have been
/// unchanged for [`SETTLED`]; None when either cannot be read.
pub(super) fn directories(root: &Path) -> Option<(String, bool)> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let mut stamp = String::new();
    let mut settled = true;
    for location in [Location::New, Location::Cur] {
        let m = fs::metadata(root.join(location.dir())).ok()?;
        if !m.is_dir() {
            return None;
        }
        if !stamp.is_empty() {
            stamp.push('.');
        }
        stamp.push_str(&format!(
            "{}.{}.{}.{}.{}",
            m.ino(),
            m.ctime(),
            m.ctime_nsec(),
            m.mtime(),
            m.mtime_nsec()
        ));
        #[allow(clippy::cast_precision_loss, reason = "seconds, compared to 2")]
        let age = now - (m.ctime() as f64 + m.ctime_nsec() as f64 / 1e9);
        settled &= age >= SETTLED.as_secs_f64();
    }
    Some((stamp, settled))
}

/// A hash of the list's record lines (each without its `\n`), eight
/// bytes at a time: it tells the records this crate stamped from records
/// another program wrote under the same header.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fingerprint(u64);

impl Fingerprint {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;

    /// Before the first line.
    pub(super) fn new() -> Fingerprint {
        Fingerprint(0x243f_6a88_85a3_08d3)
    }

    /// Adds one record line.
    pub(super) fn line(&mut self, line: &[u8]) {
        let mut h = self.0 ^ (line.len() as u64).wrapping_mul(Self::K);
        for chunk in line.chunks(8) {
            let mut w = [0u8; 8];
            if let Some(dst) = w.get_mut(..chunk.len()) {
                dst.copy_from_slice(chunk);
            }
            h = (h ^ u64::from_le_bytes(w))
                .wrapping_mul(Self::K)
                .rotate_left(29);
        }
        self.0 = h.rotate_left(7) ^ h.wrapping_mul(Self::K);
    }

    /// The hash, as the stamp writes it.
    pub(super) fn finish(self) -> String {
        format!("{:016x}", self.0)
    }
}

/// A stored stamp's directories part, when its records hash is `records`
/// (None: another program rewrote the records, or an old stamp).
pub(super) fn verified<'a>(stamp: &'a str, records: &str) -> Option<&'a str> {
    let (dirs, hash) = stamp.rsplit_once('-')?;
    (hash == records).then_some(dirs)
}

/// True when every name is where its form says (info part in cur/ only).
pub(super) fn names_follow_rule<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> bool {
    entries.into_iter().all(|e| {
        let has_info = e
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains(':'));
        has_info == (e.location == Location::Cur)
    })
}

/// The listing from the list alone, when its stamp matches the
/// directories; None when a full scan is needed.
///
/// # Errors
/// [`Error::Io`] reading the list (a missing list is None).
pub(super) fn read(md: &Maildir) -> Result<Option<Listing>> {
    let path = md.path().join(super::UIDLIST_NAME);
    let data = match fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    Ok(parse(md.path(), &data))
}

/// [`read`] on the list's bytes: None unless the stamp matches and every
/// record is sound (ascending UIDs below UIDNEXT, plain file names).
fn parse(root: &Path, data: &[u8]) -> Option<Listing> {
    let text = std::str::from_utf8(data).ok()?;
    let mut lines = text.split_terminator('\n');
    let (version, uid_validity, uid_next, _, stamp) =
        super::parse_header(lines.next()?.as_bytes())?;
    let stamp = stamp?;
    if version != 3 {
        return None;
    }
    let (now, _) = directories(root)?;
    let records = text.split_once('\n').map_or("", |(_, r)| r);
    let mut fp = Fingerprint::new();
    for line in records.split_terminator('\n') {
        fp.line(line.as_bytes());
    }
    if verified(&stamp, &fp.finish()) != Some(now.as_str()) {
        return None;
    }
    let mut listing = Listing::new(uid_validity, uid_next, data.len() / 64);
    let mut last = 0u32;
    for line in lines {
        let (uid, rest) = line.split_once(' ')?;
        let uid: u32 = uid.parse().ok()?;
        let (fields, name) = rest.split_once(':')?;
        if uid <= last
            || uid >= uid_next
            || name.is_empty()
            || name.starts_with('.')
            || name.contains('/')
        {
            return None;
        }
        last = uid;
        let (unique, cur) = match name.split_once(':') {
            Some((u, _)) => (u, true),
            None => (name, false),
        };
        let size = name_crlf_size(unique).or_else(|| vsize(fields));
        if !listing.push(uid, name, cur, size) {
            return None;
        }
    }
    Some(listing)
}
