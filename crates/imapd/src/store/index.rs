//! The per-mailbox index (`imapd.index`) and cache (`imapd.cache`), kept
//! in the maildir beside Dovecot's files (which Dovecot ignores, as we
//! ignore its dovecot.index*).
//!
//! The index holds, per UID: MODSEQ, RFC822.SIZE (CRLF form), internal
//! date and the maildir flag letters last seen; and the mailbox's
//! UIDVALIDITY, HIGHESTMODSEQ and recently expunged UIDs with their
//! MODSEQ (for QRESYNC's VANISHED). It is rewritten whole through a
//! temporary file and rename, and ends with a checksum line: a torn,
//! foreign or damaged index is rebuilt (MODSEQs restart above the time in
//! seconds, so they still grow), never trusted.
//!
//! Version 5 is binary ([`RawIndex`]). Its head is a fixed header and
//! fixed-size records (UID and the flag letters as a bit mask: 12 bytes
//! a message) and the expunged UIDs; its tail, each message's size,
//! date, MODSEQ and name length (32 bytes), then the names of their
//! files. The header holds both parts' checksums and is covered by the
//! head's, and the lengths it announces must add up to the file's. A new
//! session's SELECT of an unchanged maildir reads the head alone (120 KB
//! for 10,000 messages) and answers from it; the tail is read from the same
//! open file, and checked, when a message is first needed (see
//! [`super::view`]); the map of [`Index`] is made only when the index is
//! to be changed. A damaged tail makes the next scan list the maildir
//! and write the index again. Versions 1 to 4 (text) are still read, and
//! written again as version 5.
//!
//! Version 4 sums the file eight bytes at a time ([`sum64`]; versions 1
//! to 3, still read, with FNV-1a). Version 3 allows `-` for a size or
//! internal date not known yet (a
//! listing neither reads nor stats the messages; they are learned when
//! first asked for and recorded then). Version 2 also keeps each message's file (`cur/NAME` or `new/NAME`),
//! UIDNEXT and the [`DirStamp`] of the listing it reflects: while new/,
//! cur/ and dovecot-uidlist keep those modification times, a scan takes
//! the messages from the index without listing the maildir (Dovecot's
//! index sync works the same way). Version 1 files are read (without
//! files or stamp, so the next scan lists) and written as version 3.
//!
//! The cache holds ENVELOPE, BODYSTRUCTURE and BODY as sent to clients,
//! appended as length-prefixed records with a checksum each; reading stops
//! at the first bad record and such a file is rewritten. So SELECT and
//! `FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)` open no message once the
//! first access has filled both.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The index's file name.
pub const INDEX_NAME: &str = "imapd.index";
/// The cache's file name.
pub const CACHE_NAME: &str = "imapd.cache";
/// The lock file serialising index updates.
pub const LOCK_NAME: &str = "imapd.index.lock";
/// Expunged UIDs remembered for VANISHED (EARLIER).
const EXPUNGED_KEPT: usize = 10_000;

/// FNV-1a, 64 bits: a checksum against torn and damaged files.
pub fn fnv64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The index's checksum from version 4 on: eight bytes at a time (FNV-1a
/// takes one, and was a tenth of a new session's SELECT of 10,000
/// messages).
pub fn sum64(data: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h: u64 = 0x243f_6a88_85a3_08d3 ^ (data.len() as u64).wrapping_mul(K);
    let mut chunks = data.chunks_exact(8);
    for c in chunks.by_ref() {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(29);
    }
    let mut w = [0u8; 8];
    let rest = chunks.remainder();
    if let Some(dst) = w.get_mut(..rest.len()) {
        dst.copy_from_slice(rest);
    }
    h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(29);
    h ^ (h >> 31)
}

/// Version 5's first eight bytes.
const MAGIC: &[u8; 8] = b"imapdix5";
/// Version 5's header: magic, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, the
/// counts of records and expunged UIDs, the names' length, whether the
/// stamp is set, the stamp (six i64), how many files are in new/, the
/// tail's checksum, the head's checksum.
const HEAD: usize = 128;
/// Where the tail's checksum is in the header.
const TAIL_SUM_AT: usize = 112;
/// Where the head's checksum is in the header.
const HEAD_SUM_AT: usize = 120;
/// One record in the head: UID, flags.
const REC: usize = 12;
/// One expunged UID: UID, MODSEQ.
const EXP: usize = 16;
/// One record in the tail: size, date, MODSEQ, name length (and four
/// bytes of padding).
const SD: usize = 32;
/// A size not known yet.
const NO_SIZE: u64 = u64::MAX;
/// A date not known yet.
const NO_DATE: i64 = i64::MIN;

/// Maildir flag letters (ASCII letters) as a bit mask: `A`-`Z` bits 0 to
/// 25, `a`-`z` 26 to 51; other characters are dropped.
pub fn letter_mask(letters: &str) -> u64 {
    letters.bytes().fold(0, |m, b| match b {
        b'A'..=b'Z' => m | 1 << (b - b'A'),
        b'a'..=b'z' => m | 1 << (26 + b - b'a'),
        _ => m,
    })
}

/// The letters of a mask, sorted (as [`mailstore::Flags`] keeps them).
pub fn mask_letters(mask: u64) -> String {
    (0u8..52)
        .filter(|i| mask & 1 << i != 0)
        .map(|i| char::from(if i < 26 { b'A' + i } else { b'a' + i - 26 }))
        .collect()
}

/// Version 5's checksum: four lanes of eight bytes (the dependent chain
/// of [`sum64`] was the larger part of reading a big index).
pub fn sum64x4(data: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = [
        0x243f_6a88_85a3_08d3 ^ (data.len() as u64).wrapping_mul(K),
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    ];
    let mut blocks = data.chunks_exact(32);
    for b in blocks.by_ref() {
        for (lane, c) in h.iter_mut().zip(b.chunks_exact(8)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            *lane = (*lane ^ u64::from_le_bytes(w))
                .wrapping_mul(K)
                .rotate_left(29);
        }
    }
    let tail = sum64(blocks.remainder());
    let mut out = tail;
    for lane in h {
        out = (out ^ lane).wrapping_mul(K).rotate_left(31);
    }
    out ^ (out >> 29)
}

/// The head's checksum: the header before its own sum, and the records
/// and expunged UIDs after the header.
fn head_sum(head: &[u8]) -> u64 {
    let a = sum64x4(head.get(..HEAD_SUM_AT).unwrap_or_default());
    let b = sum64x4(head.get(HEAD..).unwrap_or_default());
    a.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ b
}

fn le_u32(data: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(b) = data.get(at..at + 4) {
        w.copy_from_slice(b);
    }
    u32::from_le_bytes(w)
}

fn le_u64(data: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(b) = data.get(at..at + 8) {
        w.copy_from_slice(b);
    }
    u64::from_le_bytes(w)
}

/// One record of a [`RawIndex`]'s head.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord {
    /// UID.
    pub uid: u32,
    /// The flag letters' mask ([`letter_mask`]).
    pub mask: u64,
}

/// A version 5 index's tail as read when first needed: each message's
/// size and date, then the names of their files.
#[derive(Debug)]
pub struct Tail {
    /// The tail's bytes (shared with the messages whose names are slices
    /// of them).
    pub buf: std::rc::Rc<Vec<u8>>,
    /// Where each record's name starts in `buf` (one more: the end).
    starts: Vec<u32>,
}

impl Tail {
    /// Record `i`'s MODSEQ.
    pub fn modseq(&self, i: usize) -> u64 {
        le_u64(&self.buf, i * SD + 16)
    }

    /// Record `i`'s size and date.
    pub fn size_date(&self, i: usize) -> (Option<u64>, Option<i64>) {
        let size = le_u64(&self.buf, i * SD);
        let date = le_u64(&self.buf, i * SD + 8).cast_signed();
        (
            (size != NO_SIZE).then_some(size),
            (date != NO_DATE).then_some(date),
        )
    }

    /// Where record `i`'s file name (`cur/NAME`, `new/NAME` or empty) is
    /// in `buf`.
    pub fn file_at(&self, i: usize) -> Option<(usize, usize)> {
        let a = *self.starts.get(i)? as usize;
        let b = *self.starts.get(i + 1)? as usize;
        Some((a, b))
    }

    /// Record `i`'s file name.
    pub fn file(&self, i: usize) -> Option<&str> {
        let (a, b) = self.file_at(i)?;
        std::str::from_utf8(self.buf.get(a..b)?).ok()
    }
}

/// Where the tail comes from when it is first needed.
#[derive(Debug)]
enum Source {
    /// The index file, kept open: the bytes are the ones the head was
    /// read from (the file is replaced by rename, never written in
    /// place), checked by the tail's sum all the same.
    File(File),
    /// The whole file's bytes.
    Bytes(Vec<u8>),
}

/// A version 5 index as read: its head (header, records, expunged UIDs)
/// read with one read and checked (the lengths add up to the file's,
/// the head's sum); the tail (sizes, dates, file names) is read and
/// checked when first needed ([`RawIndex::tail`]). No map, no parsing
/// of numbers: records are read in place.
#[derive(Debug)]
pub struct RawIndex {
    head: Vec<u8>,
    count: usize,
    expunged: usize,
    names: usize,
    src: Source,
    tail: std::cell::OnceCell<Option<Tail>>,
}

impl RawIndex {
    /// The lengths a header announces: (records, expunged, names, head
    /// length, whole file's length).
    fn lengths(head: &[u8]) -> Option<(usize, usize, usize, usize, usize)> {
        if !head.starts_with(MAGIC) || head.len() < HEAD || le_u64(head, 48) > 1 {
            return None;
        }
        let count = usize::try_from(le_u64(head, 24)).ok()?;
        let expunged = usize::try_from(le_u64(head, 32)).ok()?;
        let names = usize::try_from(le_u64(head, 40)).ok()?;
        let head_len = count
            .checked_mul(REC)?
            .checked_add(expunged.checked_mul(EXP)?)?
            .checked_add(HEAD)?;
        let total = count
            .checked_mul(SD)?
            .checked_add(names)?
            .checked_add(head_len)?;
        Some((count, expunged, names, head_len, total))
    }

    /// The index file at `path`, its head read and checked; None when it
    /// is missing, not version 5, torn or damaged.
    pub fn open(path: &Path) -> Option<RawIndex> {
        use std::io::Read;
        let mut f = File::open(path).ok()?;
        let size = usize::try_from(f.metadata().ok()?.len()).ok()?;
        let mut head = vec![0u8; HEAD];
        f.read_exact(&mut head).ok()?;
        let (count, expunged, names, head_len, total) = RawIndex::lengths(&head)?;
        if total != size {
            return None;
        }
        head.resize(head_len, 0);
        f.read_exact(head.get_mut(HEAD..)?).ok()?;
        RawIndex::checked(head, count, expunged, names, Source::File(f))
    }

    /// The index in a whole file's bytes.
    pub fn from_bytes(data: Vec<u8>) -> Option<RawIndex> {
        let (count, expunged, names, head_len, total) = RawIndex::lengths(&data)?;
        if total != data.len() {
            return None;
        }
        let head = data.get(..head_len)?.to_vec();
        RawIndex::checked(head, count, expunged, names, Source::Bytes(data))
    }

    fn checked(
        head: Vec<u8>,
        count: usize,
        expunged: usize,
        names: usize,
        src: Source,
    ) -> Option<RawIndex> {
        if head_sum(&head) != le_u64(&head, HEAD_SUM_AT) {
            return None;
        }
        let ix = RawIndex {
            head,
            count,
            expunged,
            names,
            src,
            tail: std::cell::OnceCell::new(),
        };
        // Strictly ascending UIDs (a map's order).
        let mut last = 0u32;
        for i in 0..count {
            let uid = le_u32(&ix.head, HEAD + i * REC);
            if uid <= last {
                return None;
            }
            last = uid;
        }
        Some(ix)
    }

    /// UIDVALIDITY.
    pub fn uid_validity(&self) -> u32 {
        le_u32(&self.head, 8)
    }

    /// UIDNEXT at the listing.
    pub fn uid_next(&self) -> u32 {
        le_u32(&self.head, 12)
    }

    /// HIGHESTMODSEQ.
    pub fn highest_modseq(&self) -> u64 {
        le_u64(&self.head, 16)
    }

    /// The listing's stamp.
    pub fn listed(&self) -> Option<DirStamp> {
        if le_u64(&self.head, 48) == 0 {
            return None;
        }
        let t = |i: usize| le_u64(&self.head, 56 + 8 * i).cast_signed();
        Some([(t(0), t(1)), (t(2), t(3)), (t(4), t(5))])
    }

    /// How many messages' files are in new/.
    pub fn in_new(&self) -> u64 {
        le_u64(&self.head, 104)
    }

    /// How many messages.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True without messages.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The `i`th record (UID order).
    pub fn record(&self, i: usize) -> Option<RawRecord> {
        if i >= self.count {
            return None;
        }
        let at = HEAD + i * REC;
        Some(RawRecord {
            uid: le_u32(&self.head, at),
            mask: le_u64(&self.head, at + 4),
        })
    }

    /// The index of UID `uid`'s record.
    pub fn find(&self, uid: u32) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let u = le_u32(&self.head, HEAD + mid * REC);
            match u.cmp(&uid) {
                std::cmp::Ordering::Equal => return Some(mid),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        None
    }

    /// The expunged UIDs with their MODSEQs.
    pub fn expunged(&self) -> Vec<(u32, u64)> {
        (0..self.expunged)
            .map(|k| {
                let at = HEAD + self.count * REC + k * EXP;
                (le_u32(&self.head, at), le_u64(&self.head, at + 8))
            })
            .collect()
    }

    /// The tail (sizes, dates, names), read and checked the first time;
    /// None when it cannot be read or is damaged ([`RawIndex::damaged`]).
    pub fn tail(&self) -> Option<&Tail> {
        self.tail.get_or_init(|| self.read_tail()).as_ref()
    }

    /// True once the tail was found damaged: the index is not to be
    /// trusted (the next scan lists the maildir and writes it again).
    pub fn damaged(&self) -> bool {
        matches!(self.tail.get(), Some(None))
    }

    fn read_tail(&self) -> Option<Tail> {
        let at = self.head.len();
        let len = self.count.checked_mul(SD)?.checked_add(self.names)?;
        let buf = match &self.src {
            Source::File(f) => {
                use std::os::unix::fs::FileExt;
                let mut b = vec![0u8; len];
                f.read_exact_at(&mut b, at as u64).ok()?;
                b
            }
            Source::Bytes(d) => d.get(at..at.checked_add(len)?)?.to_vec(),
        };
        if sum64x4(&buf) != le_u64(&self.head, TAIL_SUM_AT) {
            return None;
        }
        // The names: one token each (storable_file's bytes), checked at
        // once (branch-free, so vectorised): UTF-8, no space or control
        // character, one '/' for each name; then each name's place and
        // shape (`cur/` or `new/` and a name).
        let names_at = self.count * SD;
        let names = buf.get(names_at..)?;
        let clean = names
            .iter()
            .fold(true, |ok, &b| ok & (b > b' ') & (b != 0x7f));
        let slashes = names.iter().filter(|&&b| b == b'/').count();
        std::str::from_utf8(names).ok()?;
        let mut starts = Vec::with_capacity(self.count + 1);
        let mut pos = names_at;
        let mut named = 0;
        let mut in_new = 0u64;
        let boundary =
            |at: usize| at == buf.len() || buf.get(at).is_some_and(|&c| !(0x80..0xc0).contains(&c));
        for i in 0..self.count {
            starts.push(u32::try_from(pos).ok()?);
            let len = le_u32(&buf, i * SD + 24) as usize;
            let end = pos.checked_add(len)?;
            let file = buf.get(pos..end)?;
            if !file.is_empty() {
                named += 1;
                let rest = match file.get(..4) {
                    Some(b"cur/") => file.get(4..)?,
                    Some(b"new/") => {
                        in_new += 1;
                        file.get(4..)?
                    }
                    _ => return None,
                };
                if rest.is_empty() || rest.starts_with(b".") || !boundary(end) {
                    return None;
                }
            }
            pos = end;
        }
        starts.push(u32::try_from(pos).ok()?);
        if !clean || slashes != named || pos != buf.len() || in_new != self.in_new() {
            return None;
        }
        Some(Tail {
            buf: std::rc::Rc::new(buf),
            starts,
        })
    }

    /// The file's bytes with some records changed (by UID: flag mask,
    /// MODSEQ, file), HIGHESTMODSEQ `highest` and the listing stamp
    /// `listed` (to be None unless every record has its file): the
    /// records patched in place, the names rebuilt, the sums made again,
    /// without a map or an allocation per message. None when the tail is
    /// damaged.
    pub fn with_changes(
        &self,
        changes: &BTreeMap<u32, (u64, u64, String)>,
        highest: u64,
        listed: Option<DirStamp>,
    ) -> Option<Vec<u8>> {
        let tail = self.tail()?;
        let n = self.count;
        let mut out = self.head.clone();
        let put = |out: &mut Vec<u8>, at: usize, v: &[u8]| -> Option<()> {
            out.get_mut(at..at + v.len())?.copy_from_slice(v);
            Some(())
        };
        put(&mut out, 16, &highest.to_le_bytes())?;
        put(&mut out, 48, &u64::from(listed.is_some()).to_le_bytes())?;
        for (k, (sec, ns)) in listed.unwrap_or_default().iter().enumerate() {
            put(&mut out, 56 + 16 * k, &sec.to_le_bytes())?;
            put(&mut out, 64 + 16 * k, &ns.to_le_bytes())?;
        }
        let head_len = out.len();
        out.extend_from_slice(tail.buf.get(..n * SD)?);
        let mut names = Vec::with_capacity(self.names + 64 * changes.len());
        let mut in_new = 0u64;
        for i in 0..n {
            let at = HEAD + i * REC;
            let t_at = head_len + i * SD;
            let uid = le_u32(&out, at);
            let (a, b) = tail.file_at(i)?;
            let file: &[u8] = match changes.get(&uid) {
                Some((mask, modseq, file)) => {
                    let file = if storable_file(file) {
                        file.as_str()
                    } else {
                        ""
                    };
                    put(&mut out, at + 4, &mask.to_le_bytes())?;
                    put(&mut out, t_at + 16, &modseq.to_le_bytes())?;
                    file.as_bytes()
                }
                None => tail.buf.get(a..b)?,
            };
            put(
                &mut out,
                t_at + 24,
                &u32::try_from(file.len()).ok()?.to_le_bytes(),
            )?;
            if file.starts_with(b"new/") {
                in_new += 1;
            }
            names.extend_from_slice(file);
        }
        put(&mut out, 40, &(names.len() as u64).to_le_bytes())?;
        put(&mut out, 104, &in_new.to_le_bytes())?;
        out.extend_from_slice(&names);
        let sum = sum64x4(out.get(head_len..)?);
        put(&mut out, TAIL_SUM_AT, &sum.to_le_bytes())?;
        let sum = head_sum(out.get(..head_len)?);
        put(&mut out, HEAD_SUM_AT, &sum.to_le_bytes())?;
        Some(out)
    }

    /// The whole index as a map (to be changed and written); None when
    /// the tail is damaged.
    pub fn to_index(&self) -> Option<Index> {
        let tail = self.tail()?;
        let mut records = Vec::with_capacity(self.count);
        for i in 0..self.count {
            let r = self.record(i)?;
            let (size, date) = tail.size_date(i);
            records.push((
                r.uid,
                Record {
                    modseq: tail.modseq(i),
                    size,
                    date,
                    letters: mask_letters(r.mask),
                    file: tail.file(i)?.to_string(),
                },
            ));
        }
        let ix = Index {
            uid_validity: self.uid_validity(),
            highest_modseq: self.highest_modseq(),
            records: records.into_iter().collect(),
            expunged: self.expunged(),
            uid_next: self.uid_next(),
            listed: self.listed(),
        };
        if ix.listed.is_some() && ix.records.values().any(|r| r.file.is_empty()) {
            return None;
        }
        Some(ix)
    }
}

/// An index as read from its file: version 5 kept as read (its head),
/// an older one parsed.
#[derive(Debug, Clone)]
pub enum Stored {
    /// Version 5 (shared with the views built from it).
    Raw(std::rc::Rc<RawIndex>),
    /// Versions 1 to 4, or one made or changed here.
    Parsed(Index),
}

impl Stored {
    /// Reads the index of `dir`; None when missing or not to be trusted.
    pub fn load(dir: &Path) -> Option<Stored> {
        let path = dir.join(INDEX_NAME);
        match RawIndex::open(&path) {
            Some(raw) => Some(Stored::Raw(std::rc::Rc::new(raw))),
            // Not version 5 (or damaged: refused again by from_bytes).
            None => Stored::from_bytes(fs::read(&path).ok()?),
        }
    }

    /// The index in a file's bytes.
    pub fn from_bytes(data: Vec<u8>) -> Option<Stored> {
        if data.starts_with(MAGIC) {
            RawIndex::from_bytes(data).map(|r| Stored::Raw(std::rc::Rc::new(r)))
        } else {
            Index::parse(&data).map(Stored::Parsed)
        }
    }

    /// As a map.
    pub fn into_index(self) -> Option<Index> {
        match self {
            Stored::Raw(r) => r.to_index(),
            Stored::Parsed(ix) => Some(ix),
        }
    }
}

/// One message's indexed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// MODSEQ.
    pub modseq: u64,
    /// RFC822.SIZE, when known: a listing does not read the messages
    /// (the size is learned when first asked for, from the file).
    pub size: Option<u64>,
    /// Internal date, Unix time, when known (a maildir message's is its
    /// file's modification time, learned when first asked for).
    pub date: Option<i64>,
    /// Maildir flag letters.
    pub letters: String,
    /// The message's file relative to the maildir (`cur/NAME`), when
    /// known and storable (else empty).
    pub file: String,
}

impl Record {
    /// The record without its file name (what a message's view needs).
    pub fn clone_light(&self) -> Record {
        Record {
            modseq: self.modseq,
            size: self.size,
            date: self.date,
            letters: self.letters.clone(),
            file: String::new(),
        }
    }
}

/// Modification times (seconds, nanoseconds) of new/, cur/ and
/// dovecot-uidlist, taken before a listing.
pub type DirStamp = [(i64, i64); 3];

/// Can `file` be kept in the index (one token: `cur/` or `new/` and a
/// plain name)?
pub fn storable_file(file: &str) -> bool {
    let name = file
        .strip_prefix("cur/")
        .or_else(|| file.strip_prefix("new/"));
    name.is_some_and(|n| {
        !n.is_empty()
            && !n.starts_with('.')
            && !n.contains('/')
            && n.bytes().all(|b| b > b' ' && b != 0x7f)
    })
}

/// The index of one mailbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    /// UIDVALIDITY it belongs to.
    pub uid_validity: u32,
    /// HIGHESTMODSEQ.
    pub highest_modseq: u64,
    /// Messages by UID.
    pub records: BTreeMap<u32, Record>,
    /// Expunged UIDs and the MODSEQ of their expunge, oldest first.
    pub expunged: Vec<(u32, u64)>,
    /// UIDNEXT at the listing (0: unknown).
    pub uid_next: u32,
    /// The listing the records reflect, when every record has its file
    /// (None: the next scan lists the maildir).
    pub listed: Option<DirStamp>,
}

/// Seconds since the epoch (a MODSEQ floor for rebuilt indexes).
fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs())
}

impl Index {
    /// A new index for `uid_validity`, MODSEQs starting above `floor` and
    /// the time.
    pub fn fresh(uid_validity: u32, floor: u64) -> Index {
        Index {
            uid_validity,
            highest_modseq: floor.max(now_secs()),
            ..Index::default()
        }
    }

    /// Reads the index of `dir`; None when missing or not to be trusted.
    pub fn load(dir: &Path) -> Option<Index> {
        Stored::load(dir)?.into_index()
    }

    /// The index in a file's bytes (version 5 binary, or 1 to 4 text).
    pub fn from_bytes(data: Vec<u8>) -> Option<Index> {
        Stored::from_bytes(data)?.into_index()
    }

    fn parse(data: &[u8]) -> Option<Index> {
        let body_end = data
            .strip_suffix(b"\n")?
            .iter()
            .rposition(|&c| c == b'\n')?
            + 1;
        let (body, last) = data.split_at(body_end);
        let last = std::str::from_utf8(last).ok()?.trim_end();
        let sum = u64::from_str_radix(last.strip_prefix("end ")?, 16).ok()?;
        let expected = if body.starts_with(b"imapd-index 4 ") {
            sum64(body)
        } else {
            fnv64(body)
        };
        if sum != expected {
            return None;
        }
        let text = std::str::from_utf8(body).ok()?;
        let mut lines = text.lines();
        let mut head = lines.next()?.split(' ');
        if head.next()? != "imapd-index" {
            return None;
        }
        let version = head.next()?;
        if !matches!(version, "1" | "2" | "3" | "4") {
            return None;
        }
        let uid_validity = head.next()?.strip_prefix('V')?.parse().ok()?;
        let highest_modseq = head.next()?.strip_prefix('H')?.parse().ok()?;
        let mut ix = Index {
            uid_validity,
            highest_modseq,
            ..Index::default()
        };
        if version != "1" {
            ix.uid_next = head.next()?.strip_prefix('N')?.parse().ok()?;
            let stamp = head.next()?.strip_prefix('S')?;
            if stamp != "-" {
                let t: Vec<i64> = stamp
                    .split(',')
                    .map(|x| x.parse().ok())
                    .collect::<Option<_>>()?;
                let [a, b, c, d, e, f] = t.as_slice() else {
                    return None;
                };
                ix.listed = Some([(*a, *b), (*c, *d), (*e, *f)]);
            }
        }
        if head.next().is_some() {
            return None;
        }
        let mut records = Vec::new();
        for line in lines {
            let mut f = line.split(' ');
            let kind = f.next()?;
            let uid: u32 = f.next()?.parse().ok()?;
            if kind == "x" {
                let modseq = f.next()?.parse().ok()?;
                if f.next().is_some() {
                    return None;
                }
                ix.expunged.push((uid, modseq));
                continue;
            }
            if kind != "m" {
                return None;
            }
            let modseq = f.next()?.parse().ok()?;
            let size = match f.next()? {
                "-" if version == "3" || version == "4" => None,
                n => Some(n.parse().ok()?),
            };
            let date = match f.next()? {
                "-" if version == "3" || version == "4" => None,
                n => Some(n.parse().ok()?),
            };
            let letters = f.next()?.strip_prefix('-')?;
            let file = if version == "1" { "-" } else { f.next()? };
            if f.next().is_some() {
                return None;
            }
            let file = if file == "-" { "" } else { file };
            if !file.is_empty() && !storable_file(file) {
                return None;
            }
            records.push((
                uid,
                Record {
                    modseq,
                    size,
                    date,
                    letters: letters.to_string(),
                    file: file.to_string(),
                },
            ));
        }
        // Written in UID order: one bulk build.
        ix.records = records.into_iter().collect();
        if ix.listed.is_some() && ix.records.values().any(|r| r.file.is_empty()) {
            return None;
        }
        Some(ix)
    }

    /// The file's bytes (version 5).
    fn render(&self) -> Vec<u8> {
        let complete = self.records.values().all(|r| storable_file(&r.file));
        fn file_of(r: &Record) -> &str {
            if storable_file(&r.file) {
                r.file.as_str()
            } else {
                ""
            }
        }
        let names_len: usize = self.records.values().map(|r| file_of(r).len()).sum();
        let in_new = self
            .records
            .values()
            .filter(|r| file_of(r).starts_with("new/"))
            .count();
        let n = self.records.len();
        let head_len = HEAD + REC * n + EXP * self.expunged.len();
        let mut out = Vec::with_capacity(head_len + SD * n + names_len);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.uid_validity.to_le_bytes());
        out.extend_from_slice(&self.uid_next.to_le_bytes());
        out.extend_from_slice(&self.highest_modseq.to_le_bytes());
        out.extend_from_slice(&(n as u64).to_le_bytes());
        out.extend_from_slice(&(self.expunged.len() as u64).to_le_bytes());
        out.extend_from_slice(&(names_len as u64).to_le_bytes());
        let stamp = self.listed.filter(|_| complete);
        out.extend_from_slice(&u64::from(stamp.is_some()).to_le_bytes());
        for (s, ns) in stamp.unwrap_or_default() {
            out.extend_from_slice(&s.to_le_bytes());
            out.extend_from_slice(&ns.to_le_bytes());
        }
        out.extend_from_slice(&(in_new as u64).to_le_bytes());
        // The two sums, filled in below.
        out.extend_from_slice(&[0u8; 16]);
        for (uid, r) in &self.records {
            out.extend_from_slice(&uid.to_le_bytes());
            out.extend_from_slice(&letter_mask(&r.letters).to_le_bytes());
        }
        for (uid, m) in &self.expunged {
            out.extend_from_slice(&u64::from(*uid).to_le_bytes());
            out.extend_from_slice(&m.to_le_bytes());
        }
        for r in self.records.values() {
            out.extend_from_slice(&r.size.unwrap_or(NO_SIZE).to_le_bytes());
            out.extend_from_slice(&r.date.unwrap_or(NO_DATE).to_le_bytes());
            out.extend_from_slice(&r.modseq.to_le_bytes());
            out.extend_from_slice(&(file_of(r).len() as u32).to_le_bytes());
            out.extend_from_slice(&[0u8; 4]);
        }
        for r in self.records.values() {
            out.extend_from_slice(file_of(r).as_bytes());
        }
        let tail = sum64x4(out.get(head_len..).unwrap_or_default());
        if let Some(d) = out.get_mut(TAIL_SUM_AT..TAIL_SUM_AT + 8) {
            d.copy_from_slice(&tail.to_le_bytes());
        }
        let head = head_sum(out.get(..head_len).unwrap_or_default());
        if let Some(d) = out.get_mut(HEAD_SUM_AT..HEAD_SUM_AT + 8) {
            d.copy_from_slice(&head.to_le_bytes());
        }
        out
    }

    /// The file's bytes in the text form of version 4 (tests of reading
    /// an older index).
    #[cfg(test)]
    pub(crate) fn render_v4(&self) -> Vec<u8> {
        let complete = self.records.values().all(|r| storable_file(&r.file));
        let stamp = match self.listed {
            Some([(a, b), (c, d), (e, f)]) if complete => format!("{a},{b},{c},{d},{e},{f}"),
            _ => "-".to_string(),
        };
        let mut out = format!(
            "imapd-index 4 V{} H{} N{} S{stamp}\n",
            self.uid_validity, self.highest_modseq, self.uid_next
        )
        .into_bytes();
        for (uid, r) in &self.records {
            let file = if storable_file(&r.file) {
                r.file.as_str()
            } else {
                "-"
            };
            let size = r.size.map_or("-".to_string(), |n| n.to_string());
            let date = r.date.map_or("-".to_string(), |n| n.to_string());
            out.extend_from_slice(
                format!("m {uid} {} {size} {date} -{} {file}\n", r.modseq, r.letters).as_bytes(),
            );
        }
        for (uid, m) in &self.expunged {
            out.extend_from_slice(format!("x {uid} {m}\n").as_bytes());
        }
        let sum = sum64(&out);
        out.extend_from_slice(format!("end {sum:016x}\n").as_bytes());
        out
    }

    /// Writes the index of `dir` (temporary file, fsync, rename).
    ///
    /// # Errors
    /// I/O errors.
    pub fn save(&self, dir: &Path) -> io::Result<()> {
        write_atomic(&dir.join(INDEX_NAME), &self.render())
    }

    /// The next MODSEQ.
    pub fn bump(&mut self) -> u64 {
        self.highest_modseq += 1;
        self.highest_modseq
    }

    /// Records an expunge.
    pub fn expunge(&mut self, uid: u32) {
        if self.records.remove(&uid).is_some() {
            let m = self.bump();
            self.expunged.push((uid, m));
            if self.expunged.len() > EXPUNGED_KEPT {
                let over = self.expunged.len() - EXPUNGED_KEPT;
                self.expunged.drain(..over);
            }
        }
    }
}

/// Writes `path` through a temporary file, fsync and rename.
///
/// # Errors
/// I/O errors.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!("{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The exclusive lock on a mailbox's index, held while it is read,
/// changed and written.
pub struct IndexLock {
    _lock: nix::fcntl::Flock<File>,
}

impl IndexLock {
    /// Waits for the lock of the mailbox at `dir`.
    ///
    /// # Errors
    /// The lock file cannot be opened or locked.
    pub fn take(dir: &Path) -> io::Result<IndexLock> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(dir.join(LOCK_NAME))?;
        let lock = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| io::Error::from(e))?;
        Ok(IndexLock { _lock: lock })
    }
}

/// What the cache keeps per message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cached {
    /// ENVELOPE data.
    pub envelope: Vec<u8>,
    /// BODYSTRUCTURE data.
    pub bodystructure: Vec<u8>,
    /// BODY data.
    pub body: Vec<u8>,
}

/// One message's cached data as borrowed from the [`Cache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedRef<'a> {
    /// ENVELOPE data.
    pub envelope: &'a [u8],
    /// BODYSTRUCTURE data.
    pub bodystructure: &'a [u8],
    /// BODY data.
    pub body: &'a [u8],
}

impl CachedRef<'_> {
    /// An owned copy.
    pub fn to_cached(&self) -> Cached {
        Cached {
            envelope: self.envelope.to_vec(),
            bodystructure: self.bodystructure.to_vec(),
            body: self.body.to_vec(),
        }
    }
}

/// Where a record's payload is in the file's bytes: its start and the
/// lengths of its three parts.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    envelope: usize,
    bodystructure: usize,
    body: usize,
    /// The record's checksum, checked when the record is used (a
    /// session that fetches ten messages does not hash them all).
    sum: u64,
}

/// The cache as read: the file's good records as one buffer with the
/// place of each UID's (no allocation per record), and the records added
/// since.
#[derive(Debug, Default)]
struct Loaded {
    data: Vec<u8>,
    at: HashMap<u32, Span>,
    added: HashMap<u32, Cached>,
}

impl Loaded {
    fn get(&self, uid: u32) -> Option<CachedRef<'_>> {
        if let Some(c) = self.added.get(&uid) {
            return Some(CachedRef {
                envelope: &c.envelope,
                bodystructure: &c.bodystructure,
                body: &c.body,
            });
        }
        let s = self.at.get(&uid)?;
        let e_end = s.start.checked_add(s.envelope)?;
        let b_end = e_end.checked_add(s.bodystructure)?;
        let y_end = b_end.checked_add(s.body)?;
        // A damaged record is not served (the message is parsed again
        // and a good record appended).
        if fnv64(self.data.get(s.start..y_end)?) != s.sum {
            return None;
        }
        Some(CachedRef {
            envelope: self.data.get(s.start..e_end)?,
            bodystructure: self.data.get(e_end..b_end)?,
            body: self.data.get(b_end..y_end)?,
        })
    }

    fn len(&self) -> usize {
        self.at.len()
            + self
                .added
                .keys()
                .filter(|u| !self.at.contains_key(u))
                .count()
    }
}

/// The cache of one mailbox, loaded on first use.
#[derive(Debug, Default)]
pub struct Cache {
    path: PathBuf,
    entries: Option<Loaded>,
    /// Records not yet appended to the file ([`Cache::flush`]).
    pending: Vec<u8>,
}

/// How many octets of new records the cache gathers before appending them.
const CACHE_APPEND_AT: usize = 256 * 1024;

impl Cache {
    /// The cache of the mailbox at `dir` (not read yet).
    pub fn new(dir: &Path) -> Cache {
        Cache {
            path: dir.join(CACHE_NAME),
            entries: None,
            pending: Vec::new(),
        }
    }

    fn load(&mut self) -> &mut Loaded {
        self.entries.get_or_insert_with(|| {
            let mut data = fs::read(&self.path).unwrap_or_default();
            let (at, good) = parse_cache(&data);
            if good < data.len() {
                // A torn or damaged tail: keep the good records only.
                data.truncate(good);
                let _ = write_atomic(&self.path, &data);
            }
            Loaded {
                data,
                at,
                added: HashMap::new(),
            }
        })
    }

    /// The cached data of `uid`.
    pub fn get(&mut self, uid: u32) -> Option<CachedRef<'_>> {
        self.load().get(uid)
    }

    /// Adds `uid`'s data: appended to the file with the records gathered
    /// since the last append, once they are many (and at
    /// [`Cache::flush`]); a record lost to a crash is made again.
    pub fn put(&mut self, uid: u32, c: Cached) {
        self.pending.extend_from_slice(&record(uid, &c));
        self.load().added.insert(uid, c);
        if self.pending.len() >= CACHE_APPEND_AT {
            self.flush();
        }
    }

    /// Appends the gathered records to the file with one write.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let appended = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&self.path)
            .and_then(|mut f| f.write_all(&self.pending));
        if let Err(e) = appended {
            maillog::warning!("{}: {e}", self.path.display());
        }
        self.pending = Vec::new();
    }

    /// Drops the records of UIDs not in `live` when they are most of the
    /// file (expunged messages); only when the cache has been read.
    pub fn compact(&mut self, live: &dyn Fn(u32) -> bool) {
        // Only a cache already read (a scan must not read it).
        let Some(loaded) = self.entries.as_mut() else {
            return;
        };
        let total = loaded.len();
        let mut uids: Vec<u32> = loaded
            .at
            .keys()
            .chain(loaded.added.keys())
            .copied()
            .collect();
        uids.sort_unstable();
        uids.dedup();
        let dead = uids.iter().filter(|u| !live(**u)).count();
        if dead < 64 || dead * 2 < total {
            return;
        }
        let mut out = Vec::new();
        let mut kept = HashMap::new();
        for uid in uids.into_iter().filter(|u| live(*u)) {
            if let Some(c) = loaded.get(uid) {
                let c = c.to_cached();
                out.extend_from_slice(&record(uid, &c));
                kept.insert(uid, c);
            }
        }
        *loaded = Loaded {
            data: Vec::new(),
            at: HashMap::new(),
            added: kept,
        };
        // The gathered records are kept, so in the new file.
        self.pending = Vec::new();
        let _ = write_atomic(&self.path, &out);
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        self.flush();
    }
}

fn record(uid: u32, c: &Cached) -> Vec<u8> {
    let mut payload = Vec::with_capacity(c.envelope.len() + c.bodystructure.len() + c.body.len());
    payload.extend_from_slice(&c.envelope);
    payload.extend_from_slice(&c.bodystructure);
    payload.extend_from_slice(&c.body);
    let mut out = format!(
        "C {uid} {} {} {} {:016x}\n",
        c.envelope.len(),
        c.bodystructure.len(),
        c.body.len(),
        fnv64(&payload)
    )
    .into_bytes();
    out.extend_from_slice(&payload);
    out
}

/// The whole records' places, and how many leading octets of `data`
/// they fill (all of it for a sound file; reading stops at the first
/// record that is cut short or whose header is not one; each record's
/// checksum is checked when it is used).
fn parse_cache(data: &[u8]) -> (HashMap<u32, Span>, usize) {
    let mut map = HashMap::new();
    let mut at = 0usize;
    loop {
        let Some(rest) = data.get(at..).filter(|r| !r.is_empty()) else {
            return (map, at);
        };
        let Some(nl) = rest.iter().position(|&c| c == b'\n').filter(|&n| n < 200) else {
            return (map, at);
        };
        let head = std::str::from_utf8(rest.get(..nl).unwrap_or_default()).unwrap_or("");
        let f: Vec<&str> = head.split(' ').collect();
        let parsed = match f.as_slice() {
            ["C", uid, e, b, y, sum] => (|| {
                Some((
                    uid.parse::<u32>().ok()?,
                    e.parse::<usize>().ok()?,
                    b.parse::<usize>().ok()?,
                    y.parse::<usize>().ok()?,
                    u64::from_str_radix(sum, 16).ok()?,
                ))
            })(),
            _ => None,
        };
        let Some((uid, e, b, y, sum)) = parsed else {
            return (map, at);
        };
        let Some(total) = e.checked_add(b).and_then(|t| t.checked_add(y)) else {
            return (map, at);
        };
        if rest.get(nl + 1..).and_then(|p| p.get(..total)).is_none() {
            return (map, at);
        }
        map.insert(
            uid,
            Span {
                start: at + nl + 1,
                envelope: e,
                bodystructure: b,
                body: y,
                sum,
            },
        );
        at += nl + 1 + total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let mut ix = Index::fresh(77, 5);
        let m = ix.bump();
        ix.records.insert(
            3,
            Record {
                modseq: m,
                size: None,
                date: Some(1_700_000_000),
                letters: "RSa".into(),
                file: "cur/1.M1P1.x,S=120:2,RSa".into(),
            },
        );
        ix.records.insert(
            4,
            Record {
                modseq: m,
                size: Some(1),
                date: None,
                letters: String::new(),
                file: "new/2.M2P2.x".into(),
            },
        );
        ix.expunge(4);
        ix.uid_next = 5;
        ix.listed = Some([(1, 2), (3, 4), (5, 6)]);
        ix.save(dir.path()).unwrap();
        let back = Index::load(dir.path()).unwrap();
        assert_eq!(back, ix);
        assert_eq!(back.expunged, vec![(4, m + 1)]);
        // Written as version 5: a torn file (any cut) and any changed
        // byte are refused.
        let data = fs::read(dir.path().join(INDEX_NAME)).unwrap();
        assert!(data.starts_with(MAGIC));
        assert!(matches!(
            Stored::from_bytes(data.clone()),
            Some(Stored::Raw(_))
        ));
        for cut in 0..data.len() {
            assert!(
                Index::from_bytes(data[..cut].to_vec()).is_none(),
                "cut {cut}"
            );
        }
        for at in 0..data.len() {
            let mut bad = data.clone();
            bad[at] ^= 1;
            assert!(Index::from_bytes(bad).is_none(), "byte {at}");
        }
        // Names in UTF-8 beyond ASCII round-trip too.
        let mut wide = ix.clone();
        wide.records.insert(
            9,
            Record {
                modseq: 1,
                size: None,
                date: None,
                letters: "S".into(),
                file: "cur/9.Mü€.x:2,S".into(),
            },
        );
        assert_eq!(Index::from_bytes(wide.render()), Some(wide));
        // A name that is not one token under cur/ or new/, even with a
        // good checksum: refused.
        let mut odd = ix.clone();
        odd.listed = None;
        odd.records.get_mut(&3).unwrap().file = "cur/1.M1P1.x,S=120:2,RSa".into();
        let mut bytes = odd.render();
        let at = bytes.windows(4).position(|w| w == b"cur/").unwrap();
        bytes[at..at + 4].copy_from_slice(b"tmp/");
        let head_len = HEAD + REC * odd.records.len() + EXP * odd.expunged.len();
        let sum = sum64x4(&bytes[head_len..]);
        bytes[TAIL_SUM_AT..TAIL_SUM_AT + 8].copy_from_slice(&sum.to_le_bytes());
        let sum = head_sum(&bytes[..head_len]);
        bytes[HEAD_SUM_AT..HEAD_SUM_AT + 8].copy_from_slice(&sum.to_le_bytes());
        let raw = RawIndex::from_bytes(bytes).unwrap();
        assert!(raw.tail().is_none() && raw.damaged());
        assert!(raw.to_index().is_none());
        // Read from its file, the head alone first; the tail when needed.
        let raw = RawIndex::open(&dir.path().join(INDEX_NAME)).unwrap();
        assert_eq!(raw.len(), ix.records.len());
        assert_eq!(raw.find(3), Some(0));
        assert_eq!(raw.to_index(), Some(ix.clone()));
        assert!(!raw.damaged());
        // Version 4 (text), as an older imapd wrote it, is read the same.
        let v4 = ix.render_v4();
        assert_eq!(Index::from_bytes(v4.clone()), Some(ix.clone()));
        for cut in 0..v4.len() {
            assert!(Index::parse(&v4[..cut]).is_none(), "cut {cut}");
        }
        let mut bad = v4.clone();
        bad[25] ^= 1;
        assert!(Index::parse(&bad).is_none());
        // Another version, a file name that is not one token under cur/
        // or new/, a stamp with a record without its file: refused.
        let text = String::from_utf8(v4).unwrap();
        let body = text.rsplit_once("end ").unwrap().0;
        let resum = |b: &str| format!("{b}end {:016x}\n", sum64(b.as_bytes()));
        let resum_fnv = |b: &str| format!("{b}end {:016x}\n", fnv64(b.as_bytes()));
        assert!(Index::parse(resum(body).as_bytes()).is_some());
        // Version 3 (FNV-1a) is still read, and only with its own sum.
        let v3 = body.replacen("imapd-index 4", "imapd-index 3", 1);
        assert_eq!(
            Index::parse(resum_fnv(&v3).as_bytes()),
            Index::parse(resum(body).as_bytes())
        );
        assert!(Index::parse(resum(&v3).as_bytes()).is_none());
        for (from, to) in [
            ("imapd-index 4", "imapd-index 6"),
            ("cur/1.M1P1", "tmp/1.M1P1"),
            ("cur/1.M1P1", "cur/../1.M1P1"),
            (" cur/1.M1P1.x,S=120:2,RSa", " -"),
        ] {
            let changed = body.replacen(from, to, 1);
            assert_ne!(changed, body);
            assert!(Index::parse(resum(&changed).as_bytes()).is_none(), "{to}");
        }
        // Without a stamp a record may lack its file; the file is read
        // as version 1 too (no files, no stamp: the next scan lists).
        ix.listed = None;
        ix.records.get_mut(&3).unwrap().file.clear();
        ix.save(dir.path()).unwrap();
        assert_eq!(Index::load(dir.path()).unwrap(), ix);
        let v1 = format!(
            "imapd-index 1 V77 H{} \nm 3 {m} 120 1700000000 -RSa\n",
            m + 1
        );
        let v1 = v1.replace(" \n", "\n");
        let old = Index::parse(resum_fnv(&v1).as_bytes()).unwrap();
        assert_eq!(old.records[&3].letters, "RSa");
        assert!(old.listed.is_none() && old.records[&3].file.is_empty());
    }

    #[test]
    fn letter_masks_keep_sorted_letters() {
        for l in [
            "",
            "S",
            "DFRST",
            "Sabz",
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        ] {
            assert_eq!(mask_letters(letter_mask(l)), l);
        }
        assert_eq!(mask_letters(letter_mask("zS,a1S")), "Saz");
    }

    #[test]
    fn cache_survives_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Cache::new(dir.path());
        let one = Cached {
            envelope: b"(NIL \"x\")".to_vec(),
            bodystructure: b"(\"text\" \"plain\")".to_vec(),
            body: b"(\"text\")".to_vec(),
        };
        c.put(1, one.clone());
        c.put(2, one.clone());
        c.flush();
        let path = dir.path().join(CACHE_NAME);
        let data = fs::read(&path).unwrap();
        fs::write(&path, &data[..data.len() - 3]).unwrap();
        let mut again = Cache::new(dir.path());
        assert_eq!(again.get(1).map(|c| c.to_cached()), Some(one.clone()));
        assert_eq!(again.get(2), None);
        // The damaged tail was cut off; new records append cleanly.
        again.put(2, one.clone());
        drop(again);
        let mut third = Cache::new(dir.path());
        assert_eq!(third.get(2).map(|c| c.to_cached()), Some(one.clone()));
        // A changed byte inside a record: that record is not served, the
        // others are.
        let other = tempfile::tempdir().unwrap();
        let mut flipped = data.clone();
        let at = flipped.iter().position(|&c| c == b'x').unwrap();
        flipped[at] = b'y';
        fs::write(other.path().join(CACHE_NAME), &flipped).unwrap();
        let mut damaged = Cache::new(other.path());
        assert_eq!(damaged.get(1), None);
        assert_eq!(damaged.get(2).map(|c| c.to_cached()), Some(one.clone()));
    }
}
