//! An mbox INBOX (mail_spool_directory, or a virtual user's mailbox
//! without a trailing `/`): read with the locks deliveries take, never
//! rewritten for flags. UIDs come from a content key (the From_ line and
//! header, as pop3d's mbox UIDLs) kept in `imapd.uids`; flags and
//! keywords are kept in the index only (not in Status/X-Status headers,
//! which other mbox readers would have to agree on and which would mean
//! rewriting the mailbox on every flag change). Those files live in a
//! directory beside the mbox (`<mbox>.imapd/`), or in the user's home
//! when the spool directory is not writable. EXPUNGE rewrites the mbox in
//! place under the locks (mailstore's remove_messages).

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use mailstore::lock::LockOptions;
use mailstore::mbox::{self, MboxMessage};

use super::index::write_atomic;
use super::mailbox::Found;

/// The UID map's file name in the index directory.
pub const UIDS_NAME: &str = "imapd.uids";
/// Flags for messages APPENDed but not yet given a UID.
const PENDING_NAME: &str = "imapd.pending";
/// Header bytes read for a message's key.
const KEY_HEADER_LIMIT: u64 = 64 * 1024;

/// Where the mbox is and how to lock it.
#[derive(Debug, Clone)]
pub struct MboxSource {
    /// The mbox file.
    pub path: PathBuf,
    /// Locking.
    pub options: mbox::Options,
}

/// Unix time of the date in a From_ line (`sender Mon Dec  4 10:00:00 2023`).
fn from_line_date(line: &[u8]) -> Option<i64> {
    let text = String::from_utf8_lossy(line);
    let f: Vec<&str> = text.split_whitespace().collect();
    let n = f.len();
    if n < 5 {
        return None;
    }
    let mon = *f.get(n - 4)?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == mon)?;
    let day: u8 = f.get(n - 3)?.parse().ok()?;
    let year: i64 = f.get(n - 1)?.parse().ok()?;
    let hms: Vec<i64> = f
        .get(n - 2)?
        .split(':')
        .filter_map(|x| x.parse().ok())
        .collect();
    let (h, mi, s) = (
        *hms.first()?,
        *hms.get(1)?,
        hms.get(2).copied().unwrap_or(0),
    );
    let days = crate::response::date::days_from_civil(year, u8::try_from(month + 1).ok()?, day);
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

impl MboxSource {
    /// Every message with its content key, in file order.
    fn keyed(&self) -> Result<Vec<(MboxMessage, String)>, String> {
        let locked = match mbox::lock(&self.path, &self.options) {
            Ok(l) => l,
            Err(mailstore::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e.to_string()),
        };
        let msgs = locked.messages().map_err(|e| e.to_string())?;
        let mut seen: HashMap<String, u32> = HashMap::new();
        let mut out = Vec::with_capacity(msgs.len());
        for m in msgs {
            let header = locked
                .open_message(&m)
                .ok()
                .and_then(|r| mailstore::pop3::read_header(r, KEY_HEADER_LIMIT).ok())
                .unwrap_or_default();
            let base = mailstore::pop3::content_uidl(&m.from_line, &header);
            let n = seen.entry(base.clone()).or_insert(0);
            *n += 1;
            let key = if *n == 1 { base } else { format!("{base}-{n}") };
            out.push((m, key));
        }
        Ok(out)
    }

    /// The messages with UIDs (the UID map in `dir` kept up to date).
    ///
    /// # Errors
    /// The mbox cannot be locked or read, or the map not written.
    pub fn list(
        &self,
        dir: &Path,
        _lock: &LockOptions,
        claim_new: bool,
    ) -> Result<(u32, u32, Vec<Found>), String> {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let keyed = self.keyed()?;
        let (mut validity, mut next, mut map) = read_uids(dir);
        if validity == 0 {
            validity = u32::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_secs()),
            )
            .unwrap_or(1);
        }
        let pending = read_pending(dir);
        let mut found = Vec::with_capacity(keyed.len());
        let mut changed = map.len() != keyed.len();
        let mut used = HashMap::with_capacity(keyed.len());
        for (m, key) in keyed {
            let (uid, new) = match map.get(&key) {
                Some(&u) => (u, false),
                None => {
                    let u = next;
                    next = next.saturating_add(1);
                    changed = true;
                    (u, true)
                }
            };
            used.insert(key.clone(), uid);
            found.push(Found {
                uid,
                letters: if new {
                    pending.get(&key).cloned()
                } else {
                    None
                },
                recent: new && claim_new,
                size: Some(m.unquoted_length() + m.lines),
                date: from_line_date(&m.from_line),
                unique: key,
                path: self.path.clone(),
                offset: m.from_offset,
            });
        }
        map = used;
        if changed {
            let mut text = format!("V{validity} N{next}\n");
            let mut rows: Vec<(&String, &u32)> = map.iter().collect();
            rows.sort_by_key(|(_, u)| **u);
            for (k, u) in rows {
                text.push_str(&format!("{u} {k}\n"));
            }
            write_atomic(&dir.join(UIDS_NAME), text.as_bytes()).map_err(|e| e.to_string())?;
            if !pending.is_empty() {
                let _ = fs::remove_file(dir.join(PENDING_NAME));
            }
        }
        found.sort_by_key(|f| f.uid);
        Ok((validity, next, found))
    }

    /// The message whose From_ line is at `offset`, un-quoted.
    pub fn read(&self, offset: u64) -> Option<Vec<u8>> {
        let locked = mbox::lock(&self.path, &self.options).ok()?;
        let m = locked
            .messages()
            .ok()?
            .into_iter()
            .find(|m| m.from_offset == offset)?;
        let mut data = Vec::new();
        locked.open_message(&m).ok()?.read_to_end(&mut data).ok()?;
        Some(data)
    }

    /// Removes the messages at `offsets` (EXPUNGE).
    pub fn remove(&self, offsets: &[u64], what: &str) {
        match mbox::lock(&self.path, &self.options) {
            Ok(mut l) => {
                if let Err(e) = l.remove_messages(offsets) {
                    maillog::warning!("{}: expunge {what}: {e}", self.path.display());
                }
            }
            Err(e) => maillog::warning!("{}: {e}", self.path.display()),
        }
    }

    /// Appends a message; returns its key.
    ///
    /// # Errors
    /// Delivery errors.
    pub fn append(&self, data: &[u8]) -> Result<String, String> {
        let lf: Vec<u8> = String::from_utf8_lossy(data)
            .replace("\r\n", "\n")
            .into_bytes();
        let d = mbox::deliver(
            &self.path,
            &self.options,
            "MAILER-DAEMON",
            &[],
            &mut &lf[..],
        )
        .map_err(|e| e.to_string())?;
        self.keyed()?
            .into_iter()
            .find(|(m, _)| m.from_offset == d.offset)
            .map(|(_, k)| k)
            .ok_or_else(|| "appended message not found".to_string())
    }

    /// Remembers the flags an APPENDed message gets with its UID.
    pub fn pending_letters(&self, dir: &Path, key: &str, letters: &str) {
        if letters.is_empty() {
            return;
        }
        let mut text = fs::read_to_string(dir.join(PENDING_NAME)).unwrap_or_default();
        text.push_str(&format!("{key} {letters}\n"));
        let _ = write_atomic(&dir.join(PENDING_NAME), text.as_bytes());
    }
}

fn read_uids(dir: &Path) -> (u32, u32, HashMap<String, u32>) {
    let Ok(text) = fs::read_to_string(dir.join(UIDS_NAME)) else {
        return (0, 1, HashMap::new());
    };
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap_or_default().split(' ').collect();
    let v = head
        .first()
        .and_then(|x| x.strip_prefix('V'))
        .and_then(|x| x.parse().ok());
    let n = head
        .get(1)
        .and_then(|x| x.strip_prefix('N'))
        .and_then(|x| x.parse().ok());
    let (Some(v), Some(n)) = (v, n) else {
        return (0, 1, HashMap::new());
    };
    let mut map = HashMap::new();
    for l in lines {
        if let Some((u, k)) = l.split_once(' ')
            && let Ok(u) = u.parse::<u32>()
            && u < n
        {
            map.insert(k.to_string(), u);
        }
    }
    (v, n, map)
}

fn read_pending(dir: &Path) -> HashMap<String, String> {
    fs::read_to_string(dir.join(PENDING_NAME))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::mailbox::Mailbox;
    use std::time::Duration;

    #[test]
    fn an_mbox_inbox_keeps_uids_and_flags_in_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("carol");
        fs::write(
            &path,
            "From a@b Mon Dec  4 10:00:00 2023\nSubject: one\n\nx\n\nFrom a@b Mon Dec  4 11:00:00 2023\nSubject: two\n\n>From y\n\n",
        )
        .unwrap();
        let lock = LockOptions {
            attempts: 10,
            delay: Duration::from_millis(10),
            stale_after: Duration::from_secs(60),
        };
        let opts = mbox::Options::default();
        let ix = dir.path().join("carol.imapd");
        let mut mb = Mailbox::open_mbox(&path, &ix, lock.clone(), opts.clone());
        let msgs = mb.scan(true).unwrap().into_vec();
        assert_eq!(msgs.iter().map(|m| m.uid).collect::<Vec<_>>(), vec![1, 2]);
        assert!(msgs[0].recent);
        assert_eq!(msgs[0].date, Some(1_701_684_000));
        assert_eq!(
            mb.read(&msgs[1]).unwrap(),
            b"Subject: two\r\n\r\nFrom y\r\n"
        );
        assert!(mb.set_letters(&msgs[1], "FS"));
        let uid = mb
            .append(b"Subject: three\r\n\r\nz\r\n", "R", None)
            .unwrap();
        let mut again = Mailbox::open_mbox(&path, &ix, lock, opts);
        let msgs = again.scan(true).unwrap().into_vec();
        assert_eq!(msgs.len(), 3);
        assert!(!msgs[0].recent);
        assert_eq!(msgs[1].flags.to_vec(), vec!["\\Flagged", "\\Seen"]);
        assert_eq!(
            (msgs[2].uid, msgs[2].unique.as_str(), msgs[2].flags.to_vec()),
            (3, uid.as_str(), vec!["\\Answered".to_string()])
        );
        again.remove(&msgs[0]);
        let msgs = again.scan(false).unwrap().into_vec();
        assert_eq!(msgs.iter().map(|m| m.uid).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(msgs[0].flags.to_vec(), vec!["\\Flagged", "\\Seen"]);
    }
}
