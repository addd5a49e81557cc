//! IMAP UIDs for a maildir: a list kept beside the messages
//! (`mailstore-uidlist`) so that UIDs and UIDVALIDITY survive restarts and
//! are the same for concurrent sessions.
//!
//! The file is Dovecot's `dovecot-uidlist` (version 3, as
//! src/lib-storage/index/maildir/maildir-uidlist.c writes it), so a maildir
//! that Dovecot served keeps its UIDs and UIDVALIDITY here, and Dovecot
//! keeps ours:
//!
//! ```text
//! 3 V<uidvalidity> N<uidnext> G<guid>
//! <uid> [<ext>...] :<file name>
//! ```
//!
//! Version 1 lists (`1 <uidvalidity> <uidnext>`, lines `<uid> <name>`)
//! and this crate's earlier `mailstore-uidlist` are read too. Extension
//! fields (Dovecot's `W<vsize>`, `S<size>`, `G<guid>`...) are kept as they
//! are when the list is rewritten. The `W` field, the size with CRLF line
//! ends (RFC 1939's octet count), is the size cache for messages whose
//! names carry no `,W=`: [`Maildir::sync_uids_with_sizes`] returns the
//! known ones and [`Maildir::remember_sizes`] adds the ones a reader
//! computed, as Dovecot writes them, so each file is read for its size
//! once.
//!
//! [`Maildir::sync_uids`] takes a dotlock on the list, reads it, gives the
//! next UIDs to messages it does not know (in delivery order, as
//! Dovecot sorts them), forgets messages that are gone, and writes it back
//! through a temporary file, fsync and rename before it answers, so a UID
//! once handed out is never given to another message. A damaged list
//! starts over with a new UIDVALIDITY, which tells IMAP clients to resync.
//!
//! The list is rewritten only when UIDs change, or once to stamp a
//! settled state of new/ and cur/: while both directories stay as
//! stamped, the list alone is the listing and neither directory is read
//! ([`snapshot`]; Dovecot trusts its index the same way). The records
//! hold full file names, as Dovecot writes them.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::lock::{LockOptions, dotlock};
use crate::maildir::{Entry, Maildir, delivery_order};

mod listing;
mod snapshot;

pub use listing::{Item, Listing};

/// The list's file name in the maildir.
pub const UIDLIST_NAME: &str = "dovecot-uidlist";

/// The list's name before it took Dovecot's format, read when there is no
/// `dovecot-uidlist`.
const OLD_UIDLIST_NAME: &str = "mailstore-uidlist";

/// Longest line accepted in the list; longer lines are dropped (their
/// messages get new UIDs).
const LINE_LIMIT: u64 = 4096;

/// A message with its UID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UidEntry {
    /// The IMAP UID.
    pub uid: u32,
    /// The message.
    pub entry: Entry,
}

/// The messages of a maildir with their UIDs, sorted by UID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UidList {
    /// UIDVALIDITY.
    pub uid_validity: u32,
    /// UIDNEXT: the UID the next new message will get.
    pub uid_next: u32,
    /// The messages, by ascending UID.
    pub messages: Vec<UidEntry>,
}

/// What was read from the file.
struct Stored {
    uid_validity: u32,
    uid_next: u32,
    guid: String,
    /// The directories' state the records were scanned from
    /// ([`snapshot`]), when the header has it.
    stamp: Option<String>,
    uids: HashMap<String, u32>,
    /// Extension fields by unique name, as the line had them.
    ext: HashMap<String, String>,
}

impl Maildir {
    /// Lists the messages with UIDs, giving new messages the next UIDs and
    /// saving the list.
    ///
    /// # Errors
    ///
    /// [`Error::Locked`] when another session holds the list's lock for the
    /// whole bounded wait, [`Error::Io`].
    pub fn sync_uids(&self, lock: &LockOptions) -> Result<UidList> {
        self.sync_uids_with_sizes(lock).map(|(list, _)| list)
    }

    /// As [`Maildir::sync_uids`], with the sizes the list remembers
    /// (Dovecot's `W` field: CRLF size) by unique name.
    ///
    /// # Errors
    /// As [`Maildir::sync_uids`].
    pub fn sync_uids_with_sizes(
        &self,
        lock: &LockOptions,
    ) -> Result<(UidList, HashMap<String, u64>)> {
        // Unchanged directories: the list is the listing (no lock needed:
        // the list is replaced whole by rename).
        if let Some(listed) = snapshot::read(self)?.and_then(|l| l.into_uid_list(self.path())) {
            return Ok(listed);
        }
        self.scan(lock)
    }

    /// The messages with UIDs in the compact form ([`Listing`]): from the
    /// list alone while the directories are as stamped, else as
    /// [`Maildir::sync_uids_with_sizes`] gives them.
    ///
    /// # Errors
    /// As [`Maildir::sync_uids`].
    pub fn listing(&self, lock: &LockOptions) -> Result<Listing> {
        if let Some(listed) = snapshot::read(self)? {
            return Ok(listed);
        }
        let (list, sizes) = self.scan(lock)?;
        Ok(Listing::from_uid_list(&list, &sizes))
    }

    /// The full scan: both directories read, UIDs given, the list written
    /// when UIDs changed or to stamp a settled state.
    fn scan(&self, lock: &LockOptions) -> Result<(UidList, HashMap<String, u64>)> {
        let path = self.path().join(UIDLIST_NAME);
        let _lock = dotlock(&path, lock)?;
        let stored = match read_list(&path)? {
            Some(s) => s,
            None => read_list(&self.path().join(OLD_UIDLIST_NAME))?.unwrap_or_else(fresh),
        };
        let mut ext = stored.ext.clone();
        // The directories' state before they are read: a change during
        // the scan makes the stamp differ at the next reading.
        let before = snapshot::directories(self.path());
        let old_stamp = stored.stamp.clone();
        let entries = self.list()?;
        let (list, guid, changed) = assign(stored, entries);
        let stamp = before
            .filter(|(_, settled)| *settled)
            .map(|(s, _)| s)
            .filter(|_| snapshot::names_follow_rule(list.messages.iter().map(|m| &m.entry)));
        // Extension fields of messages that are gone are dropped.
        let present: std::collections::HashSet<&str> = list
            .messages
            .iter()
            .map(|m| m.entry.unique.as_str())
            .collect();
        ext.retain(|u, _| present.contains(u.as_str()));
        // Written when UIDs changed, or to stamp a settled state that the
        // list does not have yet; otherwise left alone.
        if changed || !path.exists() || (stamp.is_some() && stamp != old_stamp) {
            let rows: Vec<(u32, &str, &str)> = list
                .messages
                .iter()
                .map(|m| {
                    let unique = m.entry.unique.as_str();
                    let name = m.entry.path.file_name().and_then(|n| n.to_str());
                    (m.uid, unique, name.unwrap_or(unique))
                })
                .collect();
            write_list(
                &path,
                (list.uid_validity, list.uid_next, &guid, stamp.as_deref()),
                &rows,
                &ext,
            )?;
        }
        let sizes = list
            .messages
            .iter()
            .filter_map(|m| {
                let e = ext.get(&m.entry.unique)?;
                Some((m.entry.unique.clone(), vsize(e)?))
            })
            .collect();
        Ok((list, sizes))
    }

    /// Remembers CRLF sizes (unique name to size) in the list's `W`
    /// fields, for messages the list has; others are ignored.
    ///
    /// # Errors
    /// [`Error::Locked`], [`Error::Io`].
    pub fn remember_sizes(&self, lock: &LockOptions, sizes: &HashMap<String, u64>) -> Result<()> {
        let path = self.path().join(UIDLIST_NAME);
        let _lock = dotlock(&path, lock)?;
        let Some(mut stored) = read_list(&path)? else {
            return Ok(());
        };
        let mut changed = false;
        for (unique, size) in sizes {
            if !stored.uids.contains_key(unique) {
                continue;
            }
            let old = stored.ext.get(unique).map(String::as_str).unwrap_or("");
            if vsize(old) == Some(*size) {
                continue;
            }
            let mut fields: Vec<String> = old
                .split(' ')
                .filter(|f| !f.is_empty() && !f.starts_with('W'))
                .map(str::to_string)
                .collect();
            fields.push(format!("W{size}"));
            stored.ext.insert(unique.clone(), fields.join(" "));
            changed = true;
        }
        if !changed {
            return Ok(());
        }
        // Written without a stamp (the records here are unique names
        // only): the next full scan stamps it again.
        let mut rows: Vec<(u32, &str, &str)> = stored
            .uids
            .iter()
            .map(|(u, &uid)| (uid, u.as_str(), u.as_str()))
            .collect();
        rows.sort_unstable();
        write_list(
            &path,
            (stored.uid_validity, stored.uid_next, &stored.guid, None),
            &rows,
            &stored.ext,
        )
    }
}

/// The `W<size>` field of extension fields.
fn vsize(ext: &str) -> Option<u64> {
    ext.split(' ')
        .find_map(|f| f.strip_prefix('W'))
        .and_then(|v| v.parse().ok())
}

/// A new, empty list.
fn fresh() -> Stored {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(1);
    Stored {
        uid_validity: u32::try_from(now).unwrap_or(u32::MAX).max(1),
        uid_next: 1,
        guid: new_guid(now),
        stamp: None,
        uids: HashMap::new(),
        ext: HashMap::new(),
    }
}

/// A 128-bit mailbox GUID in hex, as Dovecot's `G` field holds.
fn new_guid(now: u64) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{now:016x}{:08x}{nanos:08x}", std::process::id())
}

/// Gives UIDs; true when the list must be saved.
fn assign(mut stored: Stored, entries: Vec<Entry>) -> (UidList, String, bool) {
    let known = stored.uids.len();
    let mut found = 0usize;
    let mut messages = Vec::with_capacity(entries.len());
    let mut new = Vec::new();
    for entry in entries {
        match stored.uids.get(&entry.unique) {
            Some(&uid) => {
                found += 1;
                messages.push(UidEntry { uid, entry });
            }
            None => new.push(entry),
        }
    }
    new.sort_by(|a, b| delivery_order(&a.unique, &b.unique));
    let needed = u32::try_from(new.len()).unwrap_or(u32::MAX);
    if stored.uid_next.checked_add(needed).is_none() {
        // UIDs ran out: start over, as RFC 3501 allows with a new UIDVALIDITY.
        let mut again = fresh();
        if again.uid_validity == stored.uid_validity {
            again.uid_validity = again.uid_validity.wrapping_add(1).max(1);
        }
        let all = messages.into_iter().map(|m| m.entry).chain(new).collect();
        return assign(again, all);
    }
    let changed = !new.is_empty() || found != known;
    for entry in new {
        let uid = stored.uid_next;
        stored.uid_next += 1;
        stored.uids.insert(entry.unique.clone(), uid);
        messages.push(UidEntry { uid, entry });
    }
    messages.sort_by_key(|m| m.uid);
    let list = UidList {
        uid_validity: stored.uid_validity,
        uid_next: stored.uid_next,
        messages,
    };
    (list, stored.guid, changed)
}

/// Reads the list; None when it is missing or damaged (start over).
fn read_list(path: &Path) -> Result<Option<Stored>> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", path, e)),
    };
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    if !read_line(&mut reader, &mut line).map_err(|e| Error::io("read", path, e))? {
        return Ok(None);
    }
    let Some((version, uid_validity, mut uid_next, guid, stamp)) = parse_header(&line) else {
        return Ok(None);
    };
    let mut uids = HashMap::new();
    let mut ext = HashMap::new();
    let mut fp = snapshot::Fingerprint::new();
    while read_line(&mut reader, &mut line).map_err(|e| Error::io("read", path, e))? {
        fp.line(&line);
        // Dovecot leaves UIDNEXT in the header behind the records it
        // writes (its index holds the real one: a first sync writes `N1`
        // above UIDs 1, 2, 3); it takes the records and raises UIDNEXT
        // past them, and so does this. A version 1 list must keep its
        // records below UIDNEXT.
        if let Some((uid, unique, fields)) = parse_entry(&line, version)
            && (uid < uid_next || version >= 3)
        {
            uid_next = uid_next.max(uid.saturating_add(1));
            if !fields.is_empty() {
                ext.insert(unique.clone(), fields);
            }
            uids.insert(unique, uid);
        }
    }
    Ok(Some(Stored {
        uid_validity,
        uid_next,
        guid: guid.unwrap_or_else(|| new_guid(u64::from(uid_validity))),
        // The directories' part of a stamp whose records are ours.
        stamp: stamp.and_then(|s| snapshot::verified(&s, &fp.finish()).map(str::to_string)),
        uids,
        ext,
    }))
}

/// Reads one line without its `\n` into `line`, dropping (and returning
/// empty) a line longer than LINE_LIMIT. False at end of file.
fn read_line<R: BufRead>(reader: &mut R, line: &mut Vec<u8>) -> io::Result<bool> {
    line.clear();
    let n = reader.by_ref().take(LINE_LIMIT).read_until(b'\n', line)?;
    if n == 0 {
        return Ok(false);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    } else if u64::try_from(n).unwrap_or(u64::MAX) >= LINE_LIMIT {
        // Overlong: skip to the end of the line.
        line.clear();
        let mut skip = Vec::new();
        loop {
            skip.clear();
            let m = reader
                .by_ref()
                .take(LINE_LIMIT)
                .read_until(b'\n', &mut skip)?;
            if m == 0 || skip.last() == Some(&b'\n') {
                break;
            }
        }
    }
    Ok(true)
}

/// A header: version, UIDVALIDITY, UIDNEXT and (version 3) the GUID and
/// our stamp ([`snapshot`]).
type Header = (u32, u32, u32, Option<String>, Option<String>);

/// The header.
fn parse_header(line: &[u8]) -> Option<Header> {
    let text = std::str::from_utf8(line).ok()?;
    let mut fields = text.split(' ').filter(|f| !f.is_empty());
    let version: u32 = fields.next()?.parse().ok()?;
    let (mut validity, mut next, mut guid, mut stamp) = (0u32, 0u32, None, None);
    match version {
        1 => {
            // Dovecot's `1 <v> <n>` or this crate's `1 V<v> N<n>`.
            let v = fields.next()?;
            let n = fields.next()?;
            validity = v.strip_prefix('V').unwrap_or(v).parse().ok()?;
            next = n.strip_prefix('N').unwrap_or(n).parse().ok()?;
        }
        3 => {
            for f in fields {
                let (key, value) = f.split_at(f.char_indices().nth(1).map_or(f.len(), |(i, _)| i));
                match key {
                    "V" => validity = value.parse().ok()?,
                    "N" => next = value.parse().ok()?,
                    "G" => {
                        guid = Some(value.to_string())
                            .filter(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
                    }
                    k if k.starts_with(snapshot::KEY) => stamp = Some(value.to_string()),
                    _ => {}
                }
            }
        }
        _ => return None,
    }
    (validity > 0 && next > 0).then_some((version, validity, next, guid, stamp))
}

/// An entry: `<uid> <name>` (version 1) or `<uid> [<ext>...] :<name>`
/// (version 3), with the extension fields (space-separated, trimmed). The
/// name's flag part (after `:` in the name) is dropped.
fn parse_entry(line: &[u8], version: u32) -> Option<(u32, String, String)> {
    let text = std::str::from_utf8(line).ok()?;
    let (uid, rest) = text.split_once(' ')?;
    let uid: u32 = uid.parse().ok()?;
    let (fields, name) = if version >= 3 {
        rest.split_once(':')?
    } else {
        ("", rest)
    };
    let unique = name.split(':').next().unwrap_or_default();
    let fields = fields
        .split(' ')
        .filter(|f| !f.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    (uid > 0 && !unique.is_empty() && !unique.contains('/') && !unique.contains(' '))
        .then(|| (uid, unique.to_string(), fields))
}

/// Writes the list through a temporary file and rename: the header
/// (UIDVALIDITY, UIDNEXT, GUID, the stamp when given), then each (uid,
/// unique name, file name) as the uid, the unique name's extension fields
/// and the file name.
fn write_list(
    path: &Path,
    (uid_validity, uid_next, guid, stamp): (u32, u32, &str, Option<&str>),
    rows: &[(u32, &str, &str)],
    ext: &HashMap<String, String>,
) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!("{UIDLIST_NAME}.tmp.{}", std::process::id()));
    let result = (|| -> io::Result<()> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&tmp)?;
        // The records first: a stamp carries their hash.
        let mut records = Vec::with_capacity(rows.len() * 64);
        let mut fp = snapshot::Fingerprint::new();
        for (uid, unique, name) in rows {
            let start = records.len();
            match ext.get(*unique).filter(|e| !e.is_empty()) {
                Some(e) => write!(records, "{uid} {e} :{name}")?,
                None => write!(records, "{uid} :{name}")?,
            }
            fp.line(records.get(start..).unwrap_or_default());
            records.push(b'\n');
        }
        let mut out = io::BufWriter::new(&file);
        match stamp {
            Some(p) => writeln!(
                out,
                "3 V{uid_validity} N{uid_next} G{guid} {}{p}-{}",
                snapshot::KEY,
                fp.finish()
            )?,
            None => writeln!(out, "3 V{uid_validity} N{uid_next} G{guid}")?,
        }
        out.write_all(&records)?;
        out.flush()?;
        drop(out);
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io("write", path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::{Flags, Options};
    use std::time::Duration;

    fn quick() -> LockOptions {
        LockOptions {
            attempts: 100,
            delay: Duration::from_millis(20),
            stale_after: Duration::from_secs(120),
        }
    }

    /// Each message's UID and unique name, in the list's order.
    fn uids_and_names(list: &UidList) -> Vec<(u32, &str)> {
        list.messages
            .iter()
            .map(|m| (m.uid, m.entry.unique.as_str()))
            .collect()
    }

    #[test]
    fn uids_are_stable_and_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::open(dir.path());
        for i in 0..3 {
            md.deliver(&Options::default(), &[], &mut format!("{i}\n").as_bytes())
                .unwrap();
        }
        let first = md.sync_uids(&quick()).unwrap();
        assert_eq!(first.uid_next, 4);
        let uids: Vec<u32> = first.messages.iter().map(|m| m.uid).collect();
        assert_eq!(uids, vec![1, 2, 3]);
        // Flag changes keep the UID; expunge frees none; new mail gets 4.
        let seen = md
            .set_flags(&first.messages[0].entry, &Flags::new("S"))
            .unwrap();
        md.remove(&first.messages[1].entry).unwrap();
        md.deliver(&Options::default(), &[], &mut &b"new\n"[..])
            .unwrap();
        let second = md.sync_uids(&quick()).unwrap();
        assert_eq!(second.uid_validity, first.uid_validity);
        let got = uids_and_names(&second);
        assert_eq!(
            got,
            vec![
                (1, seen.unique.as_str()),
                (3, first.messages[2].entry.unique.as_str()),
                (4, second.messages[2].entry.unique.as_str()),
            ]
        );
        assert_eq!(second.uid_next, 5);
        assert_eq!(md.sync_uids(&quick()).unwrap(), second);
        assert!(!dir.path().join("dovecot-uidlist.lock").exists());
        let text = fs::read_to_string(dir.path().join(UIDLIST_NAME)).unwrap();
        assert!(
            text.starts_with(&format!("3 V{} N5 G", first.uid_validity)),
            "{text}"
        );
        // Full file names, as Dovecot writes them.
        assert!(
            text.contains(&format!("\n1 :{}:2,S\n", seen.unique)),
            "{text}"
        );
    }

    #[test]
    fn damaged_list_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::open(dir.path());
        md.deliver(&Options::default(), &[], &mut &b"x\n"[..])
            .unwrap();
        let path = dir.path().join(UIDLIST_NAME);
        fs::write(&path, b"garbage\n").unwrap();
        let list = md.sync_uids(&quick()).unwrap();
        assert_eq!(list.messages.len(), 1);
        assert_eq!(list.messages[0].uid, 1);
        // Long and bad lines are skipped, good ones kept.
        let unique = &list.messages[0].entry.unique;
        let mut text = format!("1 77 10\n{}\n", "9".repeat(10_000)).into_bytes();
        text.extend_from_slice(b"x y\n0 zero\n\xff\xfe\n");
        text.extend_from_slice(format!("5 {unique}\n").as_bytes());
        fs::write(&path, &text).unwrap();
        let list = md.sync_uids(&quick()).unwrap();
        assert_eq!(list.uid_validity, 77);
        assert_eq!(list.uid_next, 10);
        assert_eq!(list.messages[0].uid, 5);
    }

    /// A maildir with messages `a` and `b` delivered and the list that
    /// `list(a's file name, b's file name)` gives, as Dovecot left it.
    fn two_messages_and_a_list(
        list: impl FnOnce(&str, &str) -> String,
    ) -> (
        tempfile::TempDir,
        Maildir,
        std::path::PathBuf,
        std::path::PathBuf,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::open(dir.path());
        let deliver = |text: &[u8]| {
            md.deliver(&Options::default(), &[], &mut &text[..])
                .unwrap()
                .path
        };
        let (a, b) = (deliver(b"a\n"), deliver(b"b\n"));
        let name = |p: &std::path::Path| p.file_name().unwrap().to_str().unwrap().to_string();
        fs::write(dir.path().join(UIDLIST_NAME), list(&name(&a), &name(&b))).unwrap();
        (dir, md, a, b)
    }

    #[test]
    fn a_dovecot_list_keeps_its_uids() {
        let (dir, md, _, _) = two_messages_and_a_list(|a, b| {
            format!(
                "3 V1700000000 N43 G0123456789abcdef0123456789abcdef\n41 W12 :{a}:2,S\n42 :{b}\n"
            )
        });
        let list = md.sync_uids(&quick()).unwrap();
        assert_eq!(list.uid_validity, 1_700_000_000);
        let uids: Vec<u32> = list.messages.iter().map(|m| m.uid).collect();
        assert_eq!(uids, vec![41, 42]);
        assert_eq!(list.uid_next, 43);
        md.deliver(&Options::default(), &[], &mut &b"c\n"[..])
            .unwrap();
        let list = md.sync_uids(&quick()).unwrap();
        assert_eq!(list.messages.last().unwrap().uid, 43);
        let text = fs::read_to_string(dir.path().join(UIDLIST_NAME)).unwrap();
        assert!(
            text.starts_with("3 V1700000000 N44 G0123456789abcdef0123456789abcdef\n"),
            "{text}"
        );
    }

    #[test]
    fn a_dovecot_list_behind_its_records_keeps_them() {
        // Dovecot's first sync writes `N1` above the UIDs it gave.
        let (_dir, md, a, b) = two_messages_and_a_list(|a, b| {
            format!("3 V1700000000 N1 G0123456789abcdef0123456789abcdef\n1 :{b}\n2 :{a}\n")
        });
        let list = md.sync_uids(&quick()).unwrap();
        let got: Vec<(u32, &std::path::Path)> = list
            .messages
            .iter()
            .map(|m| (m.uid, m.entry.path.as_path()))
            .collect();
        assert_eq!(got, vec![(1, b.as_path()), (2, a.as_path())]);
        assert_eq!(list.uid_next, 3);
        md.deliver(&Options::default(), &[], &mut &b"c\n"[..])
            .unwrap();
        let list = md.sync_uids(&quick()).unwrap();
        assert_eq!(list.messages.last().unwrap().uid, 3);
        assert_eq!(list.uid_next, 4);
    }

    #[test]
    fn new_messages_take_uids_in_delivery_order() {
        // Microseconds of different widths in one second: by value, as
        // Dovecot sorts them, not byte by byte.
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::open(dir.path());
        let names = [
            "1700000001.M5P1Q4.host",
            "1700000000.M150000P1Q3.host",
            "1700000000.M99000P1Q2.host",
            "999999999.M999999P1Q1.host",
            "1700000000.M99000P1Q1.host",
        ];
        fs::create_dir_all(dir.path().join("new")).unwrap();
        for n in names {
            fs::write(dir.path().join("new").join(n), b"x\n").unwrap();
        }
        let list = md.sync_uids(&quick()).unwrap();
        let got = uids_and_names(&list);
        assert_eq!(
            got,
            vec![
                (1, "999999999.M999999P1Q1.host"),
                (2, "1700000000.M99000P1Q1.host"),
                (3, "1700000000.M99000P1Q2.host"),
                (4, "1700000000.M150000P1Q3.host"),
                (5, "1700000001.M5P1Q4.host"),
            ]
        );
    }

    #[test]
    fn sizes_are_kept_in_w_fields() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::open(dir.path());
        let a = md
            .deliver(&Options::default(), &[], &mut &b"a\n"[..])
            .unwrap();
        let b = md
            .deliver(&Options::default(), &[], &mut &b"bb\n"[..])
            .unwrap();
        let name = |p: &std::path::Path| p.file_name().unwrap().to_str().unwrap().to_string();
        let ua = name(&a.path);
        let ub = name(&b.path);
        // Dovecot's fields: W (vsize) and others, kept as they are.
        let text = format!(
            "3 V1700000000 N43 G0123456789abcdef0123456789abcdef\n41 GX W12 :{ua}:2,S\n42 :{ub}\n"
        );
        fs::write(dir.path().join(UIDLIST_NAME), text).unwrap();
        let (_, sizes) = md.sync_uids_with_sizes(&quick()).unwrap();
        let ua = ua.split(':').next().unwrap().to_string();
        assert_eq!(sizes.get(&ua), Some(&12));
        assert_eq!(sizes.len(), 1);
        let learned = HashMap::from([(ub.clone(), 4u64), ("gone".to_string(), 9)]);
        md.remember_sizes(&quick(), &learned).unwrap();
        let text = fs::read_to_string(dir.path().join(UIDLIST_NAME)).unwrap();
        assert!(text.contains(&format!("\n42 W4 :{ub}\n")), "{text}");
        assert!(text.contains(&format!("\n41 GX W12 :{ua}\n")), "{text}");
        assert!(!text.contains("gone"), "{text}");
        // A new message rewrites the list: the fields stay; a removed
        // message's go with it.
        md.deliver(&Options::default(), &[], &mut &b"c\n"[..])
            .unwrap();
        fs::remove_file(&a.path).unwrap();
        let (list, sizes) = md.sync_uids_with_sizes(&quick()).unwrap();
        assert_eq!(list.messages.len(), 2);
        assert_eq!(sizes, HashMap::from([(ub.clone(), 4)]));
        let text = fs::read_to_string(dir.path().join(UIDLIST_NAME)).unwrap();
        assert!(text.contains(&format!("\n42 W4 :{ub}\n")), "{text}");
        assert!(!text.contains("GX"), "{text}");
    }

    /// The list's inode: a rewrite (temporary file and rename) changes it.
    fn list_inode(dir: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(dir.join(UIDLIST_NAME)).unwrap().ino()
    }

    /// Once new/ and cur/ have settled, a full scan stamps the list and
    /// the next readings take the listing from the list alone (shown by
    /// a record edited behind our back, which a scan would not return);
    /// nothing is rewritten while nothing changes; any change in new/ or
    /// cur/ means a full scan again.
    #[test]
    fn a_settled_maildir_is_listed_from_its_list() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::open(dir.path());
        for i in 0..3 {
            md.deliver(&Options::default(), &[], &mut format!("{i}\n").as_bytes())
                .unwrap();
        }
        let first = md.sync_uids(&quick()).unwrap();
        md.set_flags(&first.messages[0].entry, &Flags::new("S"))
            .unwrap();
        // Fresh directories: scanned, no stamp, and no rewrite when
        // nothing changed.
        let scanned = md.sync_uids(&quick()).unwrap();
        let text = fs::read_to_string(dir.path().join(UIDLIST_NAME)).unwrap();
        assert!(!text.lines().next().unwrap().contains(" p"), "{text}");
        let ino = list_inode(dir.path());
        assert_eq!(md.sync_uids(&quick()).unwrap(), scanned);
        assert_eq!(
            list_inode(dir.path()),
            ino,
            "rewritten with nothing changed"
        );
        std::thread::sleep(snapshot::SETTLED + Duration::from_millis(200));
        // Settled: stamped once, then left alone.
        assert_eq!(md.sync_uids(&quick()).unwrap(), scanned);
        let text = fs::read_to_string(dir.path().join(UIDLIST_NAME)).unwrap();
        assert!(text.lines().next().unwrap().contains(" p"), "{text}");
        let ino = list_inode(dir.path());
        for _ in 0..3 {
            assert_eq!(md.sync_uids(&quick()).unwrap(), scanned);
        }
        assert_eq!(
            list_inode(dir.path()),
            ino,
            "rewritten with nothing changed"
        );
        // The list is trusted while the stamp matches ...
        let listed = md.sync_uids(&quick()).unwrap();
        assert_eq!(listed.messages[0].entry.flags.as_str(), "S");
        assert_eq!(listed.messages[0].entry.location, crate::Location::Cur);
        assert_eq!(listed.messages[1].entry.location, crate::Location::New);
        // ... but not once another program rewrote its records under the
        // same header (Dovecot writes unique names without the info
        // part): scanned again, and stamped again.
        let first_name = scanned.messages[0]
            .entry
            .path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        let dovecots = text.replace(
            &format!(":{first_name}\n"),
            &format!("W3 :{}\n", scanned.messages[0].entry.unique),
        );
        assert_ne!(dovecots, text);
        fs::write(dir.path().join(UIDLIST_NAME), &dovecots).unwrap();
        let rescanned = md.sync_uids(&quick()).unwrap();
        assert_eq!(rescanned, scanned);
        assert_eq!(rescanned.messages[0].entry.location, crate::Location::Cur);
        assert_ne!(
            fs::read_to_string(dir.path().join(UIDLIST_NAME)).unwrap(),
            dovecots
        );
        // A change in new/ (a delivery) or cur/ (a flag change) is seen.
        fs::write(dir.path().join(UIDLIST_NAME), &text).unwrap();
        md.deliver(&Options::default(), &[], &mut &b"late\n"[..])
            .unwrap();
        let more = md.sync_uids(&quick()).unwrap();
        assert_eq!(more.messages.len(), 4);
        assert_eq!(more.messages[3].uid, 4);
        md.set_flags(&more.messages[0].entry, &Flags::new("RS"))
            .unwrap();
        let flagged = md.sync_uids(&quick()).unwrap();
        assert_eq!(flagged.messages[0].entry.flags.as_str(), "RS");
        md.remove(&flagged.messages[1].entry).unwrap();
        let uids: Vec<u32> = md
            .sync_uids(&quick())
            .unwrap()
            .messages
            .iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(uids, [1, 3, 4]);
    }

    /// The compact listing read from a stamped list is the one a full
    /// scan gives: names, places, UIDs and sizes (from `,W=` or from the
    /// list's W field).
    #[test]
    fn the_listing_from_the_list_is_the_scans() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::open(dir.path());
        md.deliver(&Options::default(), &[], &mut &b"one\n"[..])
            .unwrap();
        fs::write(dir.path().join("cur/1700000000.M1P1.host:2,S"), "a\nb\n").unwrap();
        md.deliver(&Options::default(), &[], &mut &b"two\n"[..])
            .unwrap();
        md.sync_uids(&quick()).unwrap();
        let learned = HashMap::from([("1700000000.M1P1.host".to_string(), 6u64)]);
        md.remember_sizes(&quick(), &learned).unwrap();
        std::thread::sleep(snapshot::SETTLED + Duration::from_millis(200));
        let scanned = md.listing(&quick()).unwrap();
        let ino = list_inode(dir.path());
        let listed = md.listing(&quick()).unwrap();
        assert_eq!(list_inode(dir.path()), ino, "rewritten");
        assert_eq!(listed, scanned);
        assert_eq!(listed.items.len(), 3);
        let plain = listed
            .items
            .iter()
            .find(|i| listed.name(i) == "1700000000.M1P1.host:2,S")
            .unwrap();
        assert!(plain.cur);
        assert_eq!(plain.crlf_size, Some(6));
        assert_eq!(listed.unique(plain), "1700000000.M1P1.host");
        for item in &listed.items {
            let path = listed.path(dir.path(), item);
            assert!(path.exists(), "{}", path.display());
            let data = fs::read(&path).unwrap();
            let crlf = data.len() + data.iter().filter(|&&b| b == b'\n').count();
            let crlf = crlf as u64;
            assert_eq!(item.crlf_size, Some(crlf), "{}", path.display());
        }
    }

    /// A cur/ name without the info part (or a new/ one with it) cannot
    /// be placed from the list: no stamp, every reading scans.
    #[test]
    fn names_out_of_place_are_never_stamped() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::open(dir.path());
        md.deliver(&Options::default(), &[], &mut &b"x\n"[..])
            .unwrap();
        fs::write(dir.path().join("cur/1700000000.M1P1.host"), "y\n").unwrap();
        std::thread::sleep(snapshot::SETTLED + Duration::from_millis(200));
        let list = md.sync_uids(&quick()).unwrap();
        assert_eq!(list.messages.len(), 2);
        let text = fs::read_to_string(dir.path().join(UIDLIST_NAME)).unwrap();
        assert!(!text.lines().next().unwrap().contains(" p"), "{text}");
        assert_eq!(md.sync_uids(&quick()).unwrap(), list);
    }

    #[test]
    fn concurrent_sessions_agree() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::open(dir.path());
        for i in 0..20 {
            md.deliver(&Options::default(), &[], &mut format!("{i}\n").as_bytes())
                .unwrap();
        }
        let lists: Vec<UidList> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| md.sync_uids(&quick()).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for l in &lists {
            assert_eq!(l, &lists[0]);
        }
        assert_eq!(lists[0].uid_next, 21);
    }
}
