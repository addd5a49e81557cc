//! The import journal: which Postfix file was being copied to which of our
//! queue files, so that a rerun after a crash neither loses nor doubles a
//! message.
//!
//! One line per copy begun, written and fsynced before our copy is made
//! complete:
//!
//! ```text
//! begin <postfix file, relative to queue_directory> <inode> <our queue id> <our queue>
//! ```
//!
//! A Postfix file is removed only after our copy is complete and fsynced.
//! On a rerun, a Postfix file that is still there and has a `begin` line
//! with its inode is a copy that may have been finished: if our queue file
//! is there and complete, only the Postfix file's removal is left to do;
//! if it is there but incomplete, or not there, the copy starts over.
//! The journal is emptied when no Postfix file it names is left.

use queue::{Queue, QueueId};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A copy begun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Begun {
    /// Inode of the Postfix file (a new file of the same name is another
    /// message).
    pub inode: u64,
    /// Our queue id.
    pub id: QueueId,
    /// The queue our copy was written to.
    pub queue: Queue,
}

/// The open journal.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    entries: HashMap<String, Begun>,
}

impl Journal {
    /// Opens (creating) the journal at `path` and reads what it holds;
    /// lines that do not parse (a torn last line) are ignored.
    ///
    /// # Errors
    /// The file cannot be opened or read.
    pub fn open(path: &Path) -> std::io::Result<Journal> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(path)?;
        if let Some(dir) = path.parent() {
            queue::fsync_dir(dir).map_err(std::io::Error::other)?;
        }
        let mut text = String::new();
        let mut raw = Vec::new();
        file.read_to_end(&mut raw)?;
        text.push_str(&String::from_utf8_lossy(&raw));
        let mut entries = HashMap::new();
        for line in text.lines() {
            if let Some((name, begun)) = parse_line(line) {
                entries.insert(name, begun);
            }
        }
        Ok(Journal {
            file,
            path: path.to_owned(),
            entries,
        })
    }

    /// The copy begun for `name` with this inode, if any.
    pub fn begun(&self, name: &str, inode: u64) -> Option<Begun> {
        self.entries.get(name).copied().filter(|b| b.inode == inode)
    }

    /// Records (durably) that `name` is being copied to `id` in `queue`.
    ///
    /// # Errors
    /// The journal cannot be written or synced: the copy must not go on.
    pub fn begin(&mut self, name: &str, begun: Begun) -> std::io::Result<()> {
        let line = format!(
            "begin {name} {} {} {}\n",
            begun.inode,
            begun.id,
            begun.queue.as_str()
        );
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()?;
        self.entries.insert(name.to_owned(), begun);
        Ok(())
    }

    /// Empties the journal when none of the Postfix files it names is left
    /// under `queue_dir`.
    ///
    /// # Errors
    /// The journal cannot be truncated.
    pub fn tidy(&mut self, queue_dir: &Path) -> std::io::Result<()> {
        if self.entries.keys().any(|n| queue_dir.join(n).exists()) {
            return Ok(());
        }
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file.sync_all()?;
        self.entries.clear();
        Ok(())
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn parse_line(line: &str) -> Option<(String, Begun)> {
    let mut f = line.split(' ');
    if f.next()? != "begin" {
        return None;
    }
    let name = f.next()?;
    let inode = f.next()?.parse().ok()?;
    let id = QueueId::parse(f.next()?).ok()?;
    let queue = Queue::parse(f.next()?).ok()?;
    if f.next().is_some() || !crate::import::safe_name(name) {
        return None;
    }
    Some((name.to_owned(), Begun { inode, id, queue }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_survive_a_reopen_and_torn_lines_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let id = QueueId::parse("1000000000B").unwrap();
        let mut j = Journal::open(&path).unwrap();
        let b = Begun {
            inode: 42,
            id,
            queue: Queue::Hold,
        };
        j.begin("hold/ABCDEF123", b).unwrap();
        drop(j);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"begin deferred/1/2 7 not-an-id incoming\nbegin ../etc/x 1 ")
            .unwrap();
        let j = Journal::open(&path).unwrap();
        assert_eq!(j.begun("hold/ABCDEF123", 42), Some(b));
        assert_eq!(j.begun("hold/ABCDEF123", 43), None);
        assert_eq!(j.entries.len(), 1);
    }

    #[test]
    fn tidy_empties_only_when_no_named_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("hold")).unwrap();
        std::fs::write(dir.path().join("hold/ABC"), b"x").unwrap();
        let mut j = Journal::open(&dir.path().join("journal")).unwrap();
        let b = Begun {
            inode: 1,
            id: QueueId::parse("1000000000B").unwrap(),
            queue: Queue::Hold,
        };
        j.begin("hold/ABC", b).unwrap();
        j.tidy(dir.path()).unwrap();
        assert!(std::fs::metadata(j.path()).unwrap().len() > 0);
        std::fs::remove_file(dir.path().join("hold/ABC")).unwrap();
        j.tidy(dir.path()).unwrap();
        assert_eq!(std::fs::metadata(j.path()).unwrap().len(), 0);
    }
}
