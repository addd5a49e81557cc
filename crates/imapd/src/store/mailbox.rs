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

use mailstore::lock::LockOptions;
use mailstore::maildir::{self, Location};
use mailstore::{Flags, Maildir};

use super::index::{Cache, Index, IndexLock, Record};
use super::keywords::Keywords;

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// UID.
    pub uid: u32,
    /// IMAP flags and keywords (without \Recent).
    pub flags: Vec<String>,
    /// Maildir flag letters.
    pub letters: String,
    /// MODSEQ.
    pub modseq: u64,
    /// RFC822.SIZE.
    pub size: u64,
    /// Internal date, Unix time.
    pub date: i64,
    /// \Recent in this session.
    pub recent: bool,
    /// The unique part of the file name.
    pub unique: String,
    /// The file when last seen.
    pub path: PathBuf,
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
        }
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
    pub fn scan(&mut self, claim_new: bool) -> Result<Vec<Msg>, String> {
        let dir = self.md.path().to_path_buf();
        if !dir.join("cur").is_dir() {
            maildir::create(&dir).map_err(err)?;
        }
        let list = self.md.sync_uids(&self.lock).map_err(err)?;
        self.keywords = Keywords::load(&dir);
        let _lock = IndexLock::take(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let stored = Index::load(&dir);
        let mut changed = false;
        let mut ix = match stored {
            Some(ix) if ix.uid_validity == list.uid_validity => ix,
            other => {
                changed = true;
                Index::fresh(
                    list.uid_validity,
                    other.map_or(self.highest_modseq, |o| o.highest_modseq) + 1,
                )
            }
        };
        let mut msgs = Vec::with_capacity(list.messages.len());
        let mut live = std::collections::HashSet::with_capacity(list.messages.len());
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
            live.insert(ue.uid);
            let letters = entry.flags.as_str().to_string();
            let rec = match ix.records.get(&ue.uid) {
                Some(r) if r.letters == letters => r.clone(),
                Some(r) => {
                    let mut r = r.clone();
                    r.letters = letters.clone();
                    r.modseq = ix.bump();
                    ix.records.insert(ue.uid, r.clone());
                    changed = true;
                    r
                }
                None => {
                    let size = match entry.crlf_size {
                        Some(s) => s,
                        None => entry
                            .open()
                            .ok()
                            .and_then(|f| mailstore::pop3::crlf_size(f).ok())
                            .unwrap_or(0),
                    };
                    let date = fs::metadata(&entry.path)
                        .ok()
                        .and_then(|m| m.modified().ok())
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
                    let r = Record {
                        modseq: ix.bump(),
                        size,
                        date,
                        letters: letters.clone(),
                    };
                    ix.records.insert(ue.uid, r.clone());
                    changed = true;
                    r
                }
            };
            msgs.push(Msg {
                uid: ue.uid,
                flags: self.keywords.flags_of(&letters),
                letters,
                modseq: rec.modseq,
                size: rec.size,
                date: rec.date,
                recent,
                unique: entry.unique.clone(),
                path: entry.path.clone(),
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
        if changed {
            ix.save(&dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        self.uid_validity = list.uid_validity;
        self.uid_next = list.uid_next;
        self.highest_modseq = ix.highest_modseq;
        self.expunged = ix.expunged;
        self.cache.compact(&|u| live.contains(&u));
        Ok(msgs)
    }

    /// Finds a message's file again after another session renamed it.
    fn locate(&self, m: &Msg) -> Option<PathBuf> {
        if m.path.exists() {
            return Some(m.path.clone());
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
        let path = self.locate(m)?;
        let mut data = Vec::new();
        fs::File::open(path).ok()?.read_to_end(&mut data).ok()?;
        Some(crate::structure::to_crlf(&data).into_owned())
    }

    /// Gives a message new flag letters (a rename; MODSEQ follows at the
    /// next scan). False when the message is gone.
    pub fn set_letters(&self, m: &Msg, letters: &str) -> bool {
        let Some(path) = self.locate(m) else {
            return false;
        };
        let entry = mailstore::Entry {
            path,
            location: Location::Cur,
            unique: m.unique.clone(),
            flags: Flags::new(&m.letters),
            size: None,
            crlf_size: None,
        };
        self.md.set_flags(&entry, &Flags::new(letters)).is_ok()
    }

    /// Removes a message's file.
    pub fn remove(&self, m: &Msg) {
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
        fs::rename(&delivered.path, &target).map_err(err)?;
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
        let path = self.locate(m).ok_or("message expunged")?;
        let data = fs::read(&path).map_err(err)?;
        to.append(&data, letters, Some(m.date))
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
        let first = mb.scan(true).unwrap();
        assert_eq!(first.len(), 3);
        assert!(first.iter().all(|m| m.recent));
        assert_eq!(first[0].size, "Subject: 0\r\n\r\nx\r\n".len() as u64);
        let h = mb.highest_modseq;
        let mut other = Mailbox::open(dir.path(), quick());
        let seen = other.scan(true).unwrap();
        assert!(seen.iter().all(|m| !m.recent));
        assert!(mb.set_letters(&first[1], "Sa"));
        mb.remove(&first[2]);
        let second = mb.scan(true).unwrap();
        assert_eq!(second.len(), 2);
        assert_eq!(second[1].flags, vec!["\\Seen".to_string()]);
        assert!(second[1].modseq > h && mb.highest_modseq > second[1].modseq);
        assert_eq!(mb.expunged.last().map(|e| e.0), Some(first[2].uid));
        assert_eq!(second[0].modseq, first[0].modseq);
        let uid = mb
            .append(b"Subject: a\r\n\r\nb\r\n", "F", Some(1_000_000_000))
            .unwrap();
        let third = mb.scan(true).unwrap();
        let m = third.iter().find(|m| m.unique == uid).unwrap();
        assert_eq!(
            (m.date, m.size, m.flags.clone()),
            (1_000_000_000, 17, vec!["\\Flagged".to_string()])
        );
        assert_eq!(mb.read(m).unwrap(), b"Subject: a\r\n\r\nb\r\n");
    }
}
