//! One Maildir mailbox (INBOX or a Maildir++ folder) as IMAP sees it:
//! messages with UIDs (dovecot-uidlist), flags and keywords (file names
//! and dovecot-keywords), MODSEQs, sizes and internal dates (the index),
//! and the changes made to it: flags by rename, APPEND, COPY, expunge.
//!
//! [`Mailbox::scan`] is the synchronisation point: under the uidlist's
//! dotlock it assigns UIDs, under the index lock it compares the files
//! with the index (a changed flag part gets a new MODSEQ, a missing file
//! is an expunge, a new file is measured once) and saves the index.
//! Messages found in new/ are moved to cur/ by a read-write session and
//! are \Recent for it only (the rename decides which session wins).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use mailstore::lock::LockOptions;
use mailstore::maildir::{self, Location};
use mailstore::{Flags, Maildir};

use super::index::{Cache, Index, IndexLock, Record, Stored};
use super::keywords::Keywords;
use super::view::{Lazy, View};

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// UID.
    pub uid: u32,
    /// IMAP flags and keywords (without \Recent), shared by the
    /// messages with the same letters (no allocation per message).
    pub flags: FlagList,
    /// Maildir flag letters (shared like `flags`).
    pub letters: Letters,
    /// MODSEQ.
    pub modseq: u64,
    /// RFC822.SIZE, when known ([`Mailbox::fill`] learns it).
    pub size: Option<u64>,
    /// Internal date, Unix time, when known ([`Mailbox::fill`] learns it).
    pub date: Option<i64>,
    /// \Recent in this session.
    pub recent: bool,
    /// The unique part of the file name.
    pub unique: SharedStr,
    /// The file when last seen (the mbox for an mbox).
    pub path: SharedPath,
    /// In an mbox: the offset of the message's From_ line.
    pub offset: u64,
}

/// The most of one message file FETCH reads (far above any message
/// a delivery or APPEND stores).
const MESSAGE_READ_LIMIT: u64 = 1 << 40;

/// A message's IMAP flags, shared between messages.
pub type FlagList = Rc<[String]>;

/// A message's Maildir flag letters, shared between messages.
pub type Letters = Rc<str>;

/// A buffer many messages' names are slices of: the index file's bytes
/// for a view built from a version 5 index (no copy, no allocation per
/// message), else the one name's own.
pub type NameBuf = Rc<Vec<u8>>;

/// A string that is a slice of a [`NameBuf`] (UTF-8 checked when it is
/// used: empty if not), up to its first `:` when `colon` is set (a
/// unique name in a file name: found when asked for, not when a view of
/// 10,000 messages is built).
#[derive(Clone, Default)]
pub struct SharedStr {
    buf: NameBuf,
    start: u32,
    end: u32,
    colon: bool,
}

impl SharedStr {
    /// The part of `buf[start..end]` before its first `:` (all of it
    /// without one); empty when the range is not in `buf`.
    pub fn before_colon(buf: &NameBuf, start: usize, end: usize) -> SharedStr {
        match (
            u32::try_from(start),
            u32::try_from(end),
            buf.get(start..end),
        ) {
            (Ok(s), Ok(e), Some(_)) => SharedStr {
                buf: buf.clone(),
                start: s,
                end: e,
                colon: true,
            },
            _ => SharedStr::default(),
        }
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        let s = self
            .buf
            .get(self.start as usize..self.end as usize)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default();
        if self.colon {
            s.split(':').next().unwrap_or_default()
        } else {
            s
        }
    }
}

impl From<String> for SharedStr {
    fn from(s: String) -> SharedStr {
        let v = s.into_bytes();
        let end = u32::try_from(v.len()).unwrap_or(0);
        SharedStr {
            buf: Rc::new(v),
            start: 0,
            end,
            colon: false,
        }
    }
}

impl From<&str> for SharedStr {
    fn from(s: &str) -> SharedStr {
        SharedStr::from(s.to_string())
    }
}

impl std::ops::Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for SharedStr {
    fn eq(&self, other: &SharedStr) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SharedStr {}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<String> for SharedStr {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl std::fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

/// A message's file: a slice of a [`NameBuf`], relative to `dir` when
/// that is set (a view built from the index: `cur/NAME` in the index's
/// bytes), else the whole path.
#[derive(Clone, Default)]
pub struct SharedPath {
    dir: Option<Rc<Path>>,
    buf: NameBuf,
    start: u32,
    end: u32,
}

impl SharedPath {
    /// `dir` joined with the slice of `buf`; empty when the range is not
    /// in it.
    pub fn under(dir: &Rc<Path>, buf: &NameBuf, start: usize, end: usize) -> SharedPath {
        match (
            u32::try_from(start),
            u32::try_from(end),
            buf.get(start..end),
        ) {
            (Ok(s), Ok(e), Some(_)) => SharedPath {
                dir: Some(dir.clone()),
                buf: buf.clone(),
                start: s,
                end: e,
            },
            _ => SharedPath::default(),
        }
    }

    /// The path (joined with the directory, when relative to one).
    pub fn path(&self) -> std::borrow::Cow<'_, Path> {
        use std::os::unix::ffi::OsStrExt;
        let rel = Path::new(std::ffi::OsStr::from_bytes(
            self.buf
                .get(self.start as usize..self.end as usize)
                .unwrap_or_default(),
        ));
        match &self.dir {
            Some(d) => std::borrow::Cow::Owned(d.join(rel)),
            None => std::borrow::Cow::Borrowed(rel),
        }
    }
}

impl From<PathBuf> for SharedPath {
    fn from(p: PathBuf) -> SharedPath {
        use std::os::unix::ffi::OsStringExt;
        let bytes = p.into_os_string().into_vec();
        let end = u32::try_from(bytes.len()).unwrap_or(0);
        SharedPath {
            dir: None,
            buf: Rc::new(bytes),
            start: 0,
            end,
        }
    }
}

impl PartialEq for SharedPath {
    fn eq(&self, other: &SharedPath) -> bool {
        self.path() == other.path()
    }
}

impl Eq for SharedPath {}

impl std::fmt::Debug for SharedPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.path().fmt(f)
    }
}

/// Flag lists by Maildir letters, so that the messages of a mailbox with
/// the same letters share one list (and one string of letters).
#[derive(Debug, Default)]
pub struct FlagSets {
    /// (mask, letters, flags), few in most mailboxes: searched in order
    /// while short, else through `many`.
    sets: Vec<(u64, Letters, FlagList)>,
    many: std::collections::HashMap<u64, usize>,
}

impl FlagSets {
    /// The letters and flags of `letters` under `keywords`.
    pub fn of(&mut self, keywords: &Keywords, letters: &str) -> (Letters, FlagList) {
        self.of_mask(keywords, super::index::letter_mask(letters))
    }

    /// The letters and flags of a letter mask under `keywords`.
    pub fn of_mask(&mut self, keywords: &Keywords, mask: u64) -> (Letters, FlagList) {
        let found = if self.sets.len() <= 16 {
            self.sets.iter().position(|(m, _, _)| *m == mask)
        } else {
            self.many.get(&mask).copied()
        };
        if let Some((_, l, f)) = found.and_then(|i| self.sets.get(i)) {
            return (l.clone(), f.clone());
        }
        let letters = super::index::mask_letters(mask);
        let f: FlagList = keywords.flags_of(&letters).into();
        let l: Letters = letters.into();
        self.many.insert(mask, self.sets.len());
        self.sets.push((mask, l.clone(), f.clone()));
        (l, f)
    }
}

/// A message as a listing finds it, before the index is consulted.
#[derive(Debug, Clone)]
pub struct Found {
    /// UID.
    pub uid: u32,
    /// Flag letters from the file name (None: the index keeps them).
    pub letters: Option<String>,
    /// \Recent for this session.
    pub recent: bool,
    /// RFC822.SIZE when known without reading.
    pub size: Option<u64>,
    /// Internal date when not the file's mtime.
    pub date: Option<i64>,
    /// The unique name (Maildir) or content key (mbox).
    pub unique: String,
    /// The file.
    pub path: PathBuf,
    /// mbox offset.
    pub offset: u64,
}

/// An open mailbox.
#[derive(Debug)]
pub struct Mailbox {
    /// The maildir.
    pub md: Maildir,
    lock: LockOptions,
    /// Keyword names.
    pub keywords: Keywords,
    /// UIDVALIDITY.
    pub uid_validity: u32,
    /// UIDNEXT.
    pub uid_next: u32,
    /// HIGHESTMODSEQ.
    pub highest_modseq: u64,
    /// Recently expunged UIDs with their MODSEQs.
    pub expunged: Vec<(u32, u64)>,
    /// ENVELOPE/BODYSTRUCTURE cache.
    pub cache: Cache,
    /// An mbox INBOX (`md` is then its index directory).
    pub mbox: Option<super::mbox::MboxSource>,
    /// The index as last read or written, with the identity of its file
    /// (inode, size, mtime): not read again while the file is the same.
    last_index: Option<(FileId, Stored)>,
}

/// Modification times of new/, cur/, the index and the keywords (and an
/// mbox): a different stamp means the mailbox may have changed.
pub type Stamp = Vec<Option<std::time::SystemTime>>;

/// What [`Mailbox::store_letters`] did: each message's new file (None:
/// gone), and the MODSEQs recorded with the stamp after, or why nothing
/// was recorded.
pub type StoreResult = (
    Vec<Option<PathBuf>>,
    Result<(Vec<(u32, u64)>, Stamp), String>,
);

/// The identity of a file: device, inode, size, mtime (seconds, nanoseconds).
type FileId = (u64, u64, u64, i64, i64);

/// The modification times of a maildir's new/, cur/ and dovecot-uidlist
/// (a missing file as zero); None when one cannot be trusted to change
/// with the next change: a file system with whole-second times and a
/// time within the last two seconds.
fn dir_stamp(dir: &Path) -> Option<super::index::DirStamp> {
    use std::os::unix::fs::MetadataExt;
    let time = |name: &str| -> Option<(i64, i64)> {
        match fs::metadata(dir.join(name)) {
            Ok(m) => Some((m.mtime(), m.mtime_nsec())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some((0, 0)),
            Err(_) => None,
        }
    };
    let stamp = [
        time("new")?,
        time("cur")?,
        time(mailstore::uidlist::UIDLIST_NAME)?,
    ];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let coarse = stamp.iter().all(|(_, ns)| *ns == 0);
    if coarse && stamp.iter().any(|(s, _)| now.saturating_sub(*s) < 2) {
        return None;
    }
    Some(stamp)
}

/// The identity of the file at `path`.
fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec()))
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Mailbox {
    /// The mailbox in the maildir at `dir`.
    pub fn open(dir: &Path, lock: LockOptions) -> Mailbox {
        Mailbox {
            md: Maildir::open(dir),
            lock,
            keywords: Keywords::load(dir),
            uid_validity: 0,
            uid_next: 1,
            highest_modseq: 0,
            expunged: Vec::new(),
            cache: Cache::new(dir),
            mbox: None,
            last_index: None,
        }
    }

    /// The mbox at `path`, its index, cache and keywords kept in the
    /// directory `index_dir`.
    pub fn open_mbox(
        path: &Path,
        index_dir: &Path,
        lock: LockOptions,
        options: mailstore::mbox::Options,
    ) -> Mailbox {
        let mut m = Mailbox::open(index_dir, lock);
        m.mbox = Some(super::mbox::MboxSource {
            path: path.to_path_buf(),
            options,
        });
        m
    }

    /// Drops what is kept only to save work (the parsed index, the read
    /// cache): an idle session's memory.
    pub fn forget(&mut self) {
        self.last_index = None;
        self.cache = Cache::new(self.md.path());
    }

    /// Modification times that change when the mailbox does.
    pub fn stamp(&self) -> Stamp {
        let dir = self.md.path();
        let mut names: Vec<PathBuf> = [
            "new",
            "cur",
            super::index::INDEX_NAME,
            super::keywords::KEYWORDS_NAME,
        ]
        .iter()
        .map(|n| dir.join(n))
        .collect();
        if let Some(m) = &self.mbox {
            names.push(m.path.clone());
        }
        let mut stamp: Stamp = names
            .iter()
            .map(|p| fs::metadata(p).and_then(|m| m.modified()).ok())
            .collect();
        // An index found damaged since: a change (the next refresh scans,
        // and the scan lists the maildir).
        if matches!(&self.last_index, Some((_, Stored::Raw(r))) if r.damaged()) {
            stamp.push(Some(std::time::UNIX_EPOCH));
        }
        stamp
    }

    /// The maildir's directory.
    pub fn dir(&self) -> &Path {
        self.md.path()
    }

    /// Synchronises with the files and returns the messages by UID;
    /// `claim_new` moves new/ messages to cur/ (as \Recent here).
    ///
    /// # Errors
    /// The maildir or its index cannot be read or written.
    pub fn scan(&mut self, claim_new: bool) -> Result<View, String> {
        let dir = self.md.path().to_path_buf();
        if self.mbox.is_none() && !dir.join("cur").is_dir() {
            maildir::create(&dir).map_err(err)?;
        }
        if self.mbox.is_some() {
            fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        // The listing is made under the index lock, so that two sessions
        // cannot record each other's older flags.
        let _lock = IndexLock::take(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        // Taken before the listing: a change made while it runs shows as
        // a different stamp at the next scan.
        let listed_at = if self.mbox.is_none() {
            if let Some(msgs) = self.read_index(&dir, claim_new) {
                return Ok(msgs);
            }
            dir_stamp(&dir)
        } else {
            None
        };
        let (uid_validity, uid_next, found) = match &self.mbox {
            Some(mb) => mb.list(&dir, &self.lock, claim_new)?,
            None => self.list_maildir(claim_new)?,
        };
        self.keywords = Keywords::load(&dir);
        let index_path = dir.join(super::index::INDEX_NAME);
        let id = file_id(&index_path);
        let stored = self.index_as_map(id);
        let mut changed = false;
        let mut ix = match stored {
            Some(ix) if ix.uid_validity == uid_validity => ix,
            other => {
                changed = true;
                Index::fresh(
                    uid_validity,
                    other.map_or(self.highest_modseq, |o| o.highest_modseq) + 1,
                )
            }
        };
        let mut msgs = Vec::with_capacity(found.len());
        let mut live = std::collections::HashSet::with_capacity(found.len());
        let mut sets = FlagSets::default();
        let dir_bytes = {
            use std::os::unix::ffi::OsStrExt;
            let b = dir.as_os_str().as_bytes();
            b.strip_suffix(b"/").unwrap_or(b).to_vec()
        };
        for f in found {
            live.insert(f.uid);
            // The file relative to the maildir, by its bytes (Path's
            // strip_prefix compares component by component).
            let file = if self.mbox.is_none() {
                use std::os::unix::ffi::OsStrExt;
                f.path
                    .as_os_str()
                    .as_bytes()
                    .strip_prefix(dir_bytes.as_slice())
                    .map(|p| p.strip_prefix(b"/").unwrap_or(p))
                    .and_then(|p| std::str::from_utf8(p).ok())
                    .filter(|p| super::index::storable_file(p))
                    .unwrap_or_default()
            } else {
                ""
            };
            let next_modseq = ix.highest_modseq + 1;
            let rec = match ix.records.get_mut(&f.uid) {
                Some(r) => {
                    let mut bumped = false;
                    if let Some(l) = &f.letters
                        && &r.letters != l
                    {
                        r.letters.clone_from(l);
                        r.modseq = next_modseq;
                        bumped = true;
                        changed = true;
                    }
                    if r.file != file {
                        r.file = file.to_string();
                        changed = true;
                    }
                    let r = r.clone_light();
                    if bumped {
                        ix.bump();
                    }
                    r
                }
                None => {
                    // The size when the name or the list has it, the
                    // date from an mbox; else learned when first asked
                    // for (a listing neither reads nor stats a message).
                    let size = f.size;
                    let date = f.date;
                    let r = Record {
                        modseq: ix.bump(),
                        size,
                        date,
                        letters: f.letters.clone().unwrap_or_default(),
                        file: file.to_string(),
                    };
                    let light = r.clone_light();
                    ix.records.insert(f.uid, r);
                    changed = true;
                    light
                }
            };
            let (letters, flags) = sets.of(&self.keywords, &rec.letters);
            msgs.push(Msg {
                uid: f.uid,
                flags,
                letters,
                modseq: rec.modseq,
                size: rec.size,
                date: rec.date,
                recent: f.recent,
                unique: f.unique.into(),
                path: f.path.into(),
                offset: f.offset,
            });
        }
        let gone: Vec<u32> = ix
            .records
            .keys()
            .copied()
            .filter(|u| !live.contains(u))
            .collect();
        for uid in gone {
            ix.expunge(uid);
            changed = true;
        }
        if ix.uid_next != uid_next || ix.listed != listed_at {
            ix.uid_next = uid_next;
            ix.listed = listed_at;
            changed = true;
        }
        if changed {
            ix.save(&dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let id = file_id(&index_path);
        self.uid_validity = uid_validity;
        self.uid_next = uid_next;
        self.highest_modseq = ix.highest_modseq;
        self.expunged = ix.expunged.clone();
        if let Some(id) = id {
            self.last_index = Some((id, Stored::Parsed(ix)));
        }
        self.cache.compact(&|u| live.contains(&u));
        Ok(msgs.into())
    }

    /// The index as a map: the one last read or written while its file
    /// is still `id`, else read again.
    fn index_as_map(&mut self, id: Option<FileId>) -> Option<Index> {
        match self.last_index.take() {
            Some((was, ix)) if Some(was) == id => ix.into_index(),
            _ => Index::load(self.md.path()),
        }
    }

    /// The messages from the index alone, when it reflects a listing of
    /// the maildir as it still is (new/, cur/ and dovecot-uidlist with the
    /// same modification times) and nothing in new/ is to be claimed;
    /// else None (the caller lists). Called under the index lock.
    fn read_index(&mut self, dir: &Path, claim_new: bool) -> Option<View> {
        let index_path = dir.join(super::index::INDEX_NAME);
        let id = file_id(&index_path)?;
        let (stored, from_file) = match self.last_index.take() {
            Some((was, ix)) if was == id => (ix, false),
            _ => (Stored::load(dir)?, true),
        };
        let msgs = match &stored {
            Stored::Raw(raw) => self.view_of_raw(dir, raw, claim_new),
            Stored::Parsed(ix) => self.view_of_index(dir, ix, claim_new),
        };
        // An older (text) index read from its file is written again as
        // version 5, so that the next session reads it in place.
        if from_file
            && msgs.is_some()
            && let Stored::Parsed(ix) = &stored
            && ix.save(dir).is_ok()
            && let Some(now) = file_id(&index_path)
        {
            self.last_index = Some((now, stored));
            return msgs;
        }
        self.last_index = Some((id, stored));
        msgs
    }

    /// [`Mailbox::read_index`] from a version 5 index: its head alone (the
    /// messages are built when a command touches them, see
    /// [`super::view`]).
    fn view_of_raw(
        &mut self,
        dir: &Path,
        raw: &Rc<super::index::RawIndex>,
        claim_new: bool,
    ) -> Option<View> {
        if raw.listed().is_none()
            || raw.listed() != dir_stamp(dir)
            || raw.uid_next() == 0
            || (claim_new && raw.in_new() > 0)
            || raw.damaged()
        {
            return None;
        }
        self.keywords = Keywords::load(dir);
        self.uid_validity = raw.uid_validity();
        self.uid_next = raw.uid_next();
        self.highest_modseq = raw.highest_modseq();
        self.expunged = raw.expunged();
        Some(View::lazy(Lazy::new(
            raw.clone(),
            dir,
            self.keywords.clone(),
        )))
    }

    /// [`Mailbox::read_index`] from an index read as a map (an older
    /// version, or one this process wrote).
    fn view_of_index(&mut self, dir: &Path, ix: &Index, claim_new: bool) -> Option<View> {
        let usable = ix.listed.is_some()
            && ix.listed == dir_stamp(dir)
            && ix.uid_next > 0
            && !(claim_new && ix.records.values().any(|r| r.file.starts_with("new/")));
        if !usable {
            return None;
        }
        self.keywords = Keywords::load(dir);
        let mut sets = FlagSets::default();
        let msgs: Vec<Msg> = ix
            .records
            .iter()
            .map(|(uid, r)| {
                let name = r.file.get(4..).unwrap_or_default();
                let (letters, flags) = sets.of(&self.keywords, &r.letters);
                Msg {
                    uid: *uid,
                    flags,
                    letters,
                    modseq: r.modseq,
                    size: r.size,
                    date: r.date,
                    recent: false,
                    unique: name.split(':').next().unwrap_or_default().into(),
                    path: dir.join(&r.file).into(),
                    offset: 0,
                }
            })
            .collect();
        self.uid_validity = ix.uid_validity;
        self.uid_next = ix.uid_next;
        self.highest_modseq = ix.highest_modseq;
        self.expunged.clone_from(&ix.expunged);
        Some(View::from(msgs))
    }

    /// The maildir's messages with UIDs (dovecot-uidlist), claiming new/.
    fn list_maildir(&self, claim_new: bool) -> Result<(u32, u32, Vec<Found>), String> {
        let dir = self.md.path();
        if !dir.join("cur").is_dir() {
            maildir::create(dir).map_err(err)?;
        }
        let (list, sizes) = self.md.sync_uids_with_sizes(&self.lock).map_err(err)?;
        let mut found = Vec::with_capacity(list.messages.len());
        for ue in list.messages {
            let mut entry = ue.entry;
            let mut recent = false;
            if claim_new
                && entry.location == Location::New
                && let Ok(e) = self.md.move_to_cur(&entry, &entry.flags)
            {
                entry = e;
                recent = true;
            }
            found.push(Found {
                uid: ue.uid,
                letters: Some(entry.flags.as_str().to_string()),
                recent,
                size: entry
                    .crlf_size
                    .or_else(|| sizes.get(&entry.unique).copied()),
                date: None,
                unique: entry.unique,
                path: entry.path,
                offset: 0,
            });
        }
        Ok((list.uid_validity, list.uid_next, found))
    }

    /// Learns what is not known yet of the messages of `msgs`: their
    /// sizes (`sizes`: the files read, in CRLF form) and internal dates
    /// (`dates`: the files' modification times), and records them in the
    /// index, so that each is learned once; a message gone meanwhile
    /// counts 0 and the time 0.
    pub fn fill<'a>(
        &mut self,
        msgs: impl IntoIterator<Item = &'a mut Msg>,
        sizes: bool,
        dates: bool,
    ) {
        use std::os::unix::fs::MetadataExt;
        let mut learned = Vec::new();
        for m in msgs {
            let size_wanted = sizes && m.size.is_none();
            let date_wanted = dates && m.date.is_none();
            if !size_wanted && !date_wanted {
                continue;
            }
            let file = fs::File::open(m.path.path())
                .ok()
                .or_else(|| self.locate(m).and_then(|p| fs::File::open(p).ok()));
            let Some(file) = file else {
                m.size = m.size.or(Some(0));
                m.date = m.date.or(Some(0));
                continue;
            };
            if date_wanted {
                m.date = Some(file.metadata().map_or(0, |md| md.mtime()));
            }
            if size_wanted {
                let size = mailstore::pop3::crlf_size(std::io::BufReader::new(&file)).ok();
                m.size = Some(size.unwrap_or(0));
            }
            learned.push((m.uid, m.size, m.date));
        }
        if learned.is_empty() || self.mbox.is_some() {
            return;
        }
        if let Err(e) = self.record_sizes(&learned) {
            maillog::warning!("{}: {e}", self.md.path().display());
        }
    }

    /// Puts learned sizes and dates into the index (under its lock; the
    /// index as it is on disk, whoever wrote it last).
    fn record_sizes(&mut self, learned: &[(u32, Option<u64>, Option<i64>)]) -> Result<(), String> {
        let dir = self.md.path().to_path_buf();
        let _lock = IndexLock::take(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let index_path = dir.join(super::index::INDEX_NAME);
        let id = file_id(&index_path);
        let mut ix = self.index_as_map(id).ok_or("no index")?;
        let mut changed = false;
        for (uid, size, date) in learned {
            if let Some(r) = ix.records.get_mut(uid) {
                if r.size.is_none() && size.is_some() {
                    r.size = *size;
                    changed = true;
                }
                if r.date.is_none() && date.is_some() {
                    r.date = *date;
                    changed = true;
                }
            }
        }
        if changed {
            ix.save(&dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        if let Some(id) = file_id(&index_path) {
            self.last_index = Some((id, Stored::Parsed(ix)));
        }
        Ok(())
    }

    /// mbox: flags live in the index only; a change gets its MODSEQ now.
    fn set_index_letters(&self, uid: u32, letters: &str) -> Result<(), String> {
        let dir = self.md.path();
        let _lock = IndexLock::take(dir).map_err(err)?;
        let mut ix = Index::load(dir).ok_or("no index")?;
        let m = ix.bump();
        if let Some(r) = ix.records.get_mut(&uid) {
            r.letters = Flags::new(letters).as_str().to_string();
            r.modseq = m;
        }
        ix.save(dir).map_err(err)
    }

    /// Finds a message's file again after another session renamed it.
    fn locate(&self, m: &Msg) -> Option<PathBuf> {
        let path = m.path.path();
        if path.exists() {
            return Some(path.into_owned());
        }
        for sub in ["cur", "new"] {
            let dir = self.md.path().join(sub);
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            for item in rd.flatten() {
                let name = item.file_name();
                let name = name.to_string_lossy();
                if name == m.unique.as_str()
                    || name
                        .strip_prefix(m.unique.as_str())
                        .is_some_and(|r| r.starts_with(':'))
                {
                    return Some(item.path());
                }
            }
        }
        None
    }

    /// The message's bytes in CRLF form; None when it was expunged.
    pub fn read(&self, m: &Msg) -> Option<Vec<u8>> {
        if let Some(mb) = &self.mbox {
            return mb
                .read(m.offset)
                .map(|d| crate::structure::to_crlf(&d).into_owned());
        }
        let path = self.locate(m)?;
        let mut data = Vec::new();
        fs::File::open(path).ok()?.read_to_end(&mut data).ok()?;
        Some(crate::structure::to_crlf(&data).into_owned())
    }

    /// The message's bytes in CRLF form into `out` (cleared first),
    /// through `scratch` (both kept by the caller across messages, so a
    /// FETCH of many bodies allocates once); false when it was expunged.
    pub fn read_into(&self, m: &Msg, scratch: &mut Vec<u8>, out: &mut Vec<u8>) -> bool {
        out.clear();
        scratch.clear();
        if let Some(mb) = &self.mbox {
            let Some(d) = mb.read(m.offset) else {
                return false;
            };
            crate::structure::to_crlf_into(&d, out);
            return true;
        }
        // The file as last seen first; renamed by another session: found again.
        let file = match fs::File::open(m.path.path()) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let Some(f) = self.locate(m).and_then(|p| fs::File::open(p).ok()) else {
                    return false;
                };
                f
            }
            Err(_) => return false,
        };
        // Read through Take: std's File::read_to_end first asks the
        // file's size and position (two more system calls per message);
        // with room already in `scratch` a small file is one read and the
        // read that sees its end.
        scratch.reserve(64 * 1024);
        if file.take(MESSAGE_READ_LIMIT).read_to_end(scratch).is_err() {
            return false;
        }
        crate::structure::to_crlf_into(scratch, out);
        true
    }

    /// Gives a message new flag letters (a rename; MODSEQ follows at the
    /// next scan). False when the message is gone.
    pub fn set_letters(&self, m: &Msg, letters: &str) -> bool {
        if self.mbox.is_some() {
            return self.set_index_letters(m.uid, letters).is_ok();
        }
        self.rename_letters(m, letters).is_some()
    }

    /// A Maildir message's flags by rename; its new path (None: gone).
    pub fn rename_letters(&self, m: &Msg, letters: &str) -> Option<PathBuf> {
        let path = self.locate(m)?;
        let entry = mailstore::Entry {
            path,
            location: Location::Cur,
            unique: m.unique.to_string(),
            flags: Flags::new(&m.letters),
            size: None,
            crlf_size: None,
        };
        self.md
            .set_flags(&entry, &Flags::new(letters))
            .ok()
            .map(|e| e.path)
    }

    /// This session's own flag changes: each message renamed for its new
    /// letters, then, when `clean` (nothing changed since the caller's
    /// view was brought up to date), recorded in the index without
    /// listing the mailbox: new MODSEQs by UID and the change stamp taken
    /// while the index is still locked, so another imapd session's later
    /// index write still shows as a change. All under the index lock,
    /// which every imapd change of cur/ takes (STORE, EXPUNGE, APPEND,
    /// COPY, MOVE, and a listing's claim of new/): when the index
    /// reflected the maildir just before the renames, its listing stamp
    /// is carried over them (cur/'s time as after them; new/'s and
    /// dovecot-uidlist's as before, so that a delivery or a UID
    /// assignment meanwhile still shows), and the next SELECT of any
    /// session reads the index alone rather than listing the maildir.
    /// A rename by another program (not imapd) in cur/ in that instant
    /// shows only at the next change of the maildir.
    ///
    /// Returns each message's new file (None: gone), and the MODSEQs
    /// recorded with the stamp after, or why nothing was recorded (the
    /// caller rescans).
    pub fn store_letters(&mut self, plan: &[(&Msg, String)], clean: bool) -> StoreResult {
        let dir = self.md.path().to_path_buf();
        let lock = IndexLock::take(&dir);
        let before = dir_stamp(&dir);
        let paths: Vec<Option<PathBuf>> = plan
            .iter()
            .map(|(m, letters)| self.rename_letters(m, letters))
            .collect();
        if let Err(e) = lock {
            return (paths, Err(format!("{}: {e}", dir.display())));
        }
        if !clean {
            return (paths, Err("changed meanwhile".to_string()));
        }
        let recorded = self.record_letters(&dir, plan, &paths, before);
        (paths, recorded)
    }

    /// [`Mailbox::store_letters`]'s record, under the index lock.
    fn record_letters(
        &mut self,
        dir: &Path,
        plan: &[(&Msg, String)],
        paths: &[Option<PathBuf>],
        before: Option<super::index::DirStamp>,
    ) -> Result<(Vec<(u32, u64)>, Stamp), String> {
        let index_path = dir.join(super::index::INDEX_NAME);
        let id = file_id(&index_path);
        // Another session wrote the index since our scan: its changes are
        // not in our view, so the caller rescans instead.
        let stored = match self.last_index.take() {
            Some((was, ix)) if Some(was) == id => ix,
            _ => return Err("the index changed".to_string()),
        };
        let listed = match &stored {
            Stored::Raw(raw) => raw.listed(),
            Stored::Parsed(ix) => ix.listed,
        };
        let carried = match (listed, before) {
            (Some(listed), Some(b)) if listed == b => {
                dir_stamp(dir).map(|now| [b[0], now[1], b[2]])
            }
            _ => None,
        };
        let dir_bytes = {
            use std::os::unix::ffi::OsStrExt;
            let b = dir.as_os_str().as_bytes();
            b.strip_suffix(b"/").unwrap_or(b).to_vec()
        };
        let mut complete = carried.is_some();
        // (UID, letters, file) of each message renamed.
        let mut changes = Vec::with_capacity(plan.len());
        for ((m, letters), path) in plan.iter().zip(paths) {
            let Some(path) = path else {
                // Gone meanwhile: the next scan sees it.
                complete = false;
                continue;
            };
            let file = {
                use std::os::unix::ffi::OsStrExt;
                path.as_os_str()
                    .as_bytes()
                    .strip_prefix(dir_bytes.as_slice())
                    .map(|p| p.strip_prefix(b"/").unwrap_or(p))
                    .and_then(|p| std::str::from_utf8(p).ok())
                    .filter(|p| super::index::storable_file(p))
                    .unwrap_or_default()
            };
            if file.is_empty() {
                complete = false;
            }
            changes.push((
                m.uid,
                Flags::new(letters).as_str().to_string(),
                file.to_string(),
            ));
        }
        let listed = if complete { carried } else { None };
        let mut out = Vec::with_capacity(changes.len());
        let written = match stored {
            // Version 5 as read: its records patched in place (no map).
            Stored::Raw(raw) => {
                let mut highest = raw.highest_modseq();
                let mut patch = std::collections::BTreeMap::new();
                for (uid, letters, file) in changes {
                    highest += 1;
                    if raw.find(uid).is_some() {
                        let mask = super::index::letter_mask(&letters);
                        patch.insert(uid, (mask, highest, file));
                        out.push((uid, highest));
                    }
                }
                let bytes = raw
                    .with_changes(&patch, highest, listed)
                    .ok_or("a damaged index")?;
                super::index::write_atomic(&index_path, &bytes)
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
                self.highest_modseq = highest;
                super::index::RawIndex::from_bytes(bytes).map(|r| Stored::Raw(Rc::new(r)))
            }
            Stored::Parsed(mut ix) => {
                for (uid, letters, file) in changes {
                    let modseq = ix.bump();
                    if let Some(r) = ix.records.get_mut(&uid) {
                        r.letters = letters;
                        r.modseq = modseq;
                        r.file = file;
                        out.push((uid, modseq));
                    }
                }
                ix.listed = listed;
                ix.save(dir)
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
                self.highest_modseq = ix.highest_modseq;
                Some(Stored::Parsed(ix))
            }
        };
        if let (Some(id), Some(w)) = (file_id(&index_path), written) {
            self.last_index = Some((id, w));
        }
        Ok((out, self.stamp()))
    }

    /// Removes messages (one rewrite of an mbox for all of them).
    pub fn remove_many(&self, msgs: &[&Msg]) {
        if let Some(mb) = &self.mbox {
            let offsets: Vec<u64> = msgs.iter().map(|m| m.offset).collect();
            if !offsets.is_empty() {
                mb.remove(&offsets, "messages");
            }
            return;
        }
        // Under the index lock, as every imapd change of cur/ (see
        // store_letters).
        let _lock = IndexLock::take(self.md.path());
        for m in msgs {
            if let Some(p) = self.locate(m) {
                let _ = fs::remove_file(p);
            }
        }
    }

    /// Removes a message's file.
    pub fn remove(&self, m: &Msg) {
        if let Some(mb) = &self.mbox {
            mb.remove(&[m.offset], &m.unique);
            return;
        }
        let _lock = IndexLock::take(self.md.path());
        if let Some(p) = self.locate(m) {
            let _ = fs::remove_file(p);
        }
    }

    /// Stores a new message (CRLF or LF; kept with LF line ends as local
    /// delivers) in cur/ with `letters` and internal date `date`; returns
    /// its unique name.
    ///
    /// # Errors
    /// File system errors.
    pub fn append(&self, data: &[u8], letters: &str, date: Option<i64>) -> Result<String, String> {
        if let Some(mb) = &self.mbox {
            let key = mb.append(data)?;
            mb.pending_letters(self.md.path(), &key, letters);
            return Ok(key);
        }
        let lf: Vec<u8> = if data.windows(2).any(|w| w == b"\r\n") {
            let mut v = Vec::with_capacity(data.len());
            let mut i = 0;
            while i < data.len() {
                if data.get(i) == Some(&b'\r') && data.get(i + 1) == Some(&b'\n') {
                    i += 1;
                    continue;
                }
                if let Some(&c) = data.get(i) {
                    v.push(c);
                }
                i += 1;
            }
            v
        } else {
            data.to_vec()
        };
        let delivered = self
            .md
            .deliver(&maildir::Options::default(), &[], &mut &lf[..])
            .map_err(err)?;
        let name = delivered
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let unique = name.split(':').next().unwrap_or_default().to_string();
        let target = self
            .md
            .path()
            .join("cur")
            .join(format!("{unique}:2,{}", Flags::new(letters)));
        {
            // Under the index lock, as every imapd change of cur/.
            let _lock = IndexLock::take(self.md.path());
            fs::rename(&delivered.path, &target).map_err(err)?;
        }
        if let Some(t) = date {
            let when = std::time::UNIX_EPOCH
                + std::time::Duration::from_secs(u64::try_from(t).unwrap_or(0));
            if let Ok(f) = fs::File::options().write(true).open(&target) {
                let _ = f.set_modified(when);
            }
        }
        Ok(unique)
    }

    /// Copies a message into `to` with the same flags and internal date;
    /// returns the copy's unique name.
    ///
    /// # Errors
    /// The message is gone, or file system errors.
    pub fn copy_to(&self, m: &Msg, to: &Mailbox, letters: &str) -> Result<String, String> {
        let data = match &self.mbox {
            Some(mb) => mb.read(m.offset).ok_or("message expunged")?,
            None => fs::read(self.locate(m).ok_or("message expunged")?).map_err(err)?,
        };
        let date = m.date.or_else(|| {
            use std::os::unix::fs::MetadataExt;
            let path = self.locate(m)?;
            fs::metadata(path).ok().map(|md| md.mtime())
        });
        to.append(&data, letters, date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn quick() -> LockOptions {
        LockOptions {
            attempts: 100,
            delay: Duration::from_millis(20),
            stale_after: Duration::from_secs(120),
        }
    }

    /// An index an older imapd wrote (version 4, text) serves a scan of
    /// the unchanged maildir as it is, and is written again as version 5.
    #[test]
    fn an_older_index_is_read_and_written_again() {
        let dir = tempfile::tempdir().unwrap();
        maildir::create(dir.path()).unwrap();
        for i in 0..5 {
            fs::write(
                dir.path().join(format!("cur/{i}.M{i}P1.host:2,S")),
                "Subject: s\n\nx\n",
            )
            .unwrap();
        }
        let mut mb = Mailbox::open(dir.path(), quick());
        mb.scan(true).unwrap();
        let listed = mb.scan(true).unwrap().into_vec();
        let path = dir.path().join(crate::store::index::INDEX_NAME);
        let ix = Index::load(dir.path()).unwrap();
        assert!(ix.listed.is_some());
        fs::write(&path, ix.render_v4()).unwrap();
        let mut old = Mailbox::open(dir.path(), quick());
        assert_eq!(old.scan(true).unwrap().into_vec(), listed);
        assert!(fs::read(&path).unwrap().starts_with(b"imapdix5"));
        assert_eq!(Index::load(dir.path()), Some(ix));
    }

    /// A view from the index (its head alone) is the one a listing
    /// gives, its messages built only as far as commands touch them; a
    /// damaged tail is found when they are, and the next scan lists the
    /// maildir and writes the index again.
    #[test]
    fn a_view_from_the_index_is_built_when_touched() {
        let dir = tempfile::tempdir().unwrap();
        maildir::create(dir.path()).unwrap();
        for i in 0..150 {
            let flags = if i % 3 == 0 { "" } else { "S" };
            fs::write(
                dir.path()
                    .join(format!("cur/{i}.M{i}P1.host,S=16:2,{flags}")),
                format!("Subject: {i:03}\n\nx\n"),
            )
            .unwrap();
        }
        let mut mb = Mailbox::open(dir.path(), quick());
        // Listed (dovecot-uidlist written meanwhile: listed again), then
        // from the index.
        mb.scan(true).unwrap();
        let listed = mb.scan(true).unwrap();
        let mut fresh = Mailbox::open(dir.path(), quick());
        let lazy = fresh.scan(true).unwrap();
        assert_eq!(lazy.built_chunks(), 0, "SELECT builds no message");
        assert_eq!(lazy.len(), 150);
        assert_eq!(lazy.last_uid(), listed.last_uid());
        assert_eq!(lazy.uid(70), listed.uid(70));
        assert_eq!(lazy.first_unseen(), Some(0));
        assert_eq!(lazy.first_unseen(), listed.first_unseen());
        assert_eq!(lazy.recent_count(), 0);
        assert_eq!(lazy.built_chunks(), 0);
        assert_eq!(lazy.get(70), listed.get(70));
        assert_eq!(lazy.built_chunks(), 1, "one chunk for one message");
        assert_eq!(lazy, listed);
        assert_eq!(lazy.built_chunks(), 3);
        assert!(lazy.iter().all(|m| m.path.path().exists()));
        // A damaged tail (the last name's last byte): the head is sound,
        // so SELECT answers; the first message touched finds the damage,
        // which changes the mailbox's stamp, and the next scan lists.
        let path = dir.path().join(crate::store::index::INDEX_NAME);
        let mut data = fs::read(&path).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0x01;
        fs::write(&path, &data).unwrap();
        let mut hurt = Mailbox::open(dir.path(), quick());
        let view = hurt.scan(true).unwrap();
        assert_eq!(view.len(), 150);
        let before = hurt.stamp();
        assert_eq!(
            view.get(0).map(|m| m.path.path().into_owned()),
            Some(PathBuf::new())
        );
        assert_ne!(hurt.stamp(), before, "the damage shows as a change");
        let again = hurt.scan(true).unwrap();
        assert_eq!(
            again
                .iter()
                .map(|m| (m.uid, m.path.clone()))
                .collect::<Vec<_>>(),
            listed
                .iter()
                .map(|m| (m.uid, m.path.clone()))
                .collect::<Vec<_>>()
        );
        assert!(Index::load(dir.path()).is_some(), "written again");
    }

    /// A scan of an unchanged maildir comes from the index (no listing:
    /// a file slipped into cur/ with cur/'s time put back is not seen);
    /// any change to new/, cur/ or dovecot-uidlist lists again, and so
    /// does a read-write scan while the index knows messages in new/.
    #[test]
    fn an_unchanged_maildir_is_read_from_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::open(dir.path());
        let deliver = |i: u32| {
            md.deliver(
                &maildir::Options::default(),
                &[],
                &mut format!("Subject: {i}\n\nx\n").as_bytes(),
            )
            .unwrap()
        };
        for i in 0..3 {
            deliver(i);
        }
        let mut examine = Mailbox::open(dir.path(), quick());
        let listed = examine.scan(false).unwrap().into_vec();
        assert!(
            listed
                .iter()
                .all(|m| m.path.path().starts_with(dir.path().join("new")))
        );
        let again = examine.scan(false).unwrap().into_vec();
        assert_eq!(again, listed, "from the index");
        let ix = Index::load(dir.path()).unwrap();
        assert!(ix.listed.is_some() && ix.uid_next == 4);
        // Read-write: new/ is claimed (listed), then the index serves.
        let mut mb = Mailbox::open(dir.path(), quick());
        let first = mb.scan(true).unwrap().into_vec();
        assert!(first.iter().all(|m| m.recent && m.path.path().exists()));
        let settled = mb.scan(true).unwrap().into_vec();
        let second = mb.scan(true).unwrap().into_vec();
        assert_eq!(second, settled);
        assert!(second.iter().all(|m| !m.recent && m.path.path().exists()));
        assert_eq!(mb.uid_next, 4);
        // A file put into cur/ behind the stamp's back is not seen ...
        let cur = dir.path().join("cur");
        let was = fs::metadata(&cur).unwrap().modified().unwrap();
        fs::write(cur.join("1.M9P9.sneak:2,"), "Subject: s\n\nx\n").unwrap();
        fs::File::open(&cur).unwrap().set_modified(was).unwrap();
        assert_eq!(
            mb.scan(true).unwrap().into_vec().len(),
            3,
            "served from the index"
        );
        // ... until cur/ changes; a delivery into new/ is seen too.
        deliver(9);
        let now = mb.scan(true).unwrap().into_vec();
        assert_eq!(now.len(), 5);
        assert_eq!(now.last().map(|m| (m.uid, m.recent)), Some((5, true)));
        // A damaged index is rebuilt by a listing, never trusted.
        let path = dir.path().join(crate::store::index::INDEX_NAME);
        let mut data = fs::read(&path).unwrap();
        let at = data.len() / 2;
        data[at] ^= 0x20;
        fs::write(&path, &data).unwrap();
        let mut fresh = Mailbox::open(dir.path(), quick());
        let rebuilt = fresh.scan(true).unwrap().into_vec();
        assert_eq!(
            rebuilt.iter().map(|m| m.uid).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
    }

    /// This session's own flag renames keep the index's listing stamp:
    /// the next scan of any session reads the index alone (a file slipped
    /// into cur/ behind the stamp's back is not seen), with the new flags
    /// and files; a delivery meanwhile still shows.
    #[test]
    fn own_flag_changes_keep_the_listing_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::open(dir.path());
        let deliver = |i: u32| {
            md.deliver(
                &maildir::Options::default(),
                &[],
                &mut format!("Subject: {i}\n\nx\n").as_bytes(),
            )
            .unwrap()
        };
        for i in 0..3 {
            deliver(i);
        }
        let mut mb = Mailbox::open(dir.path(), quick());
        mb.scan(true).unwrap().into_vec();
        // Settled: the claim of new/ changed cur/ under the first listing.
        let view = mb.scan(true).unwrap().into_vec();
        assert_eq!(mb.scan(true).unwrap().into_vec(), view);
        let stamp_before = Index::load(dir.path()).unwrap().listed;
        assert!(stamp_before.is_some());
        // Whole-second file systems need the times to be two seconds old.
        if stamp_before.is_some_and(|s| s.iter().all(|(_, ns)| *ns == 0)) {
            return;
        }
        let plan = vec![(&view[1], "FS".to_string())];
        let (paths, recorded) = mb.store_letters(&plan, true);
        let (modseqs, _) = recorded.unwrap();
        let new_path = paths[0].clone().unwrap();
        assert!(new_path.exists());
        assert_eq!(modseqs.len(), 1);
        let ix = Index::load(dir.path()).unwrap();
        assert!(ix.listed.is_some(), "the stamp is kept");
        assert_ne!(ix.listed, stamp_before, "with cur/'s new time");
        // A file slipped into cur/ with cur/'s time put back: not seen,
        // so the next session's scan comes from the index.
        let cur = dir.path().join("cur");
        let was = fs::metadata(&cur).unwrap().modified().unwrap();
        fs::write(cur.join("1.M9P9.sneak:2,"), "Subject: s\n\nx\n").unwrap();
        fs::File::open(&cur).unwrap().set_modified(was).unwrap();
        let mut other = Mailbox::open(dir.path(), quick());
        let seen = other.scan(true).unwrap().into_vec();
        assert_eq!(seen.len(), 3, "from the index");
        assert_eq!(&*seen[1].letters, "FS");
        assert_eq!(seen[1].modseq, modseqs[0].1);
        assert_eq!(&*seen[1].path.path(), new_path.as_path());
        // The same from an index read as version 5 (its records patched
        // in place rather than through the map).
        let plan = vec![(&seen[2], "S".to_string())];
        let (paths, recorded) = other.store_letters(&plan, true);
        let (modseqs, _) = recorded.unwrap();
        let ix = Index::load(dir.path()).unwrap();
        assert!(ix.listed.is_some(), "the stamp is kept");
        assert_eq!(ix.records[&seen[2].uid].letters, "S");
        assert_eq!(ix.records[&seen[2].uid].modseq, modseqs[0].1);
        assert_eq!(ix.highest_modseq, modseqs[0].1);
        let third = Mailbox::open(dir.path(), quick())
            .scan(true)
            .unwrap()
            .into_vec();
        assert_eq!(third.len(), 3, "from the index");
        assert_eq!(&*third[1].letters, "FS");
        assert_eq!(&*third[2].letters, "S");
        assert_eq!(&*third[2].path.path(), paths[0].clone().unwrap().as_path());
        // A delivery changes new/: listed again (the sneaked file too).
        deliver(7);
        let now = other.scan(true).unwrap().into_vec();
        assert_eq!(
            now.len(),
            5,
            "listed again: the sneaked file and the delivery"
        );
    }

    /// A listing opens no message: a size the name does not give is
    /// measured when asked for, once, and kept in the index.
    #[test]
    fn sizes_are_measured_when_asked_for_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        maildir::create(dir.path()).unwrap();
        fs::write(
            dir.path().join("cur/1.M1P1.host:2,S"),
            "Subject: a\n\nbody\n",
        )
        .unwrap();
        let mut mb = Mailbox::open(dir.path(), quick());
        let mut msgs = mb.scan(true).unwrap().into_vec();
        assert_eq!(msgs[0].size, None);
        mb.fill(msgs.iter_mut(), true, false);
        assert_eq!(msgs[0].size, Some(20));
        let ix = Index::load(dir.path()).unwrap();
        assert_eq!(ix.records[&1].size, Some(20));
        let mut again = Mailbox::open(dir.path(), quick());
        assert_eq!(again.scan(true).unwrap().into_vec()[0].size, Some(20));
    }

    #[test]
    fn scan_tracks_flags_modseqs_and_expunges() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::open(dir.path());
        for i in 0..3 {
            md.deliver(
                &maildir::Options::default(),
                &[],
                &mut format!("Subject: {i}\n\nx\n").as_bytes(),
            )
            .unwrap();
        }
        let mut mb = Mailbox::open(dir.path(), quick());
        let first = mb.scan(true).unwrap().into_vec();
        assert_eq!(first.len(), 3);
        assert!(first.iter().all(|m| m.recent));
        assert_eq!(first[0].size, Some("Subject: 0\r\n\r\nx\r\n".len() as u64));
        let h = mb.highest_modseq;
        let mut other = Mailbox::open(dir.path(), quick());
        let seen = other.scan(true).unwrap().into_vec();
        assert!(seen.iter().all(|m| !m.recent));
        assert!(mb.set_letters(&first[1], "Sa"));
        mb.remove(&first[2]);
        let second = mb.scan(true).unwrap().into_vec();
        assert_eq!(second.len(), 2);
        assert_eq!(&*second[1].flags, &["\\Seen".to_string()]);
        assert!(second[1].modseq > h && mb.highest_modseq > second[1].modseq);
        assert_eq!(mb.expunged.last().map(|e| e.0), Some(first[2].uid));
        assert_eq!(second[0].modseq, first[0].modseq);
        let uid = mb
            .append(b"Subject: a\r\n\r\nb\r\n", "F", Some(1_000_000_000))
            .unwrap();
        let mut third = mb.scan(true).unwrap().into_vec();
        // The date is the file's time, learned when asked for.
        assert_eq!(third.iter().find(|m| m.unique == uid).unwrap().date, None);
        mb.fill(third.iter_mut(), false, true);
        let m = third.iter().find(|m| m.unique == uid).unwrap();
        assert_eq!(
            (m.date, m.size, m.flags.to_vec()),
            (Some(1_000_000_000), Some(17), vec!["\\Flagged".to_string()])
        );
        assert_eq!(mb.read(m).unwrap(), b"Subject: a\r\n\r\nb\r\n");
        // A torn index is rebuilt, never trusted: MODSEQs keep growing.
        let before = mb.highest_modseq;
        let ix = dir.path().join(super::super::index::INDEX_NAME);
        let data = fs::read(&ix).unwrap();
        fs::write(&ix, &data[..data.len() / 2]).unwrap();
        let mut rebuilt = mb.scan(false).unwrap().into_vec();
        mb.fill(rebuilt.iter_mut(), false, true);
        assert_eq!(rebuilt.len(), 3);
        assert!(rebuilt.iter().all(|m| m.modseq > before), "{rebuilt:?}");
        assert_eq!(
            rebuilt.iter().find(|m| m.unique == uid).unwrap().date,
            Some(1_000_000_000)
        );
    }
}
