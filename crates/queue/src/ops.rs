//! Moving, removing and listing queue files; directory fsync.
//!
//! These are Postfix's mail_queue_rename, mail_queue_remove and scan_dir in
//! one place. Paths always come from [`crate::queue_path`]; names read from
//! a directory pass [`QueueId::parse`] before they are used.

use crate::error::Error;
use crate::id::QueueId;
use crate::name::{Queue, queue_file_dir, queue_path};
use std::fs::File;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// Mode of hashed subdirectories, made on demand (as the queue's own).
const SUBDIR_MODE: u32 = 0o700;

/// Fsyncs a directory, making renames and new entries in it durable.
///
/// # Errors
/// [`Error::Io`] when the directory cannot be opened or synced.
pub fn fsync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(dir))
}

/// Moves message `id` from queue `from` to queue `to` (rename plus fsync of
/// both directories, so the move survives a crash). The message keeps its
/// id: rename keeps the inode. A hashed subdirectory is made when missing.
///
/// # Errors
/// [`Error::Io`]; when the source is gone [`Error::is_not_found`] is true
/// (an expected race with another process).
pub fn rename(queue_dir: &Path, id: &QueueId, from: Queue, to: Queue) -> Result<(), Error> {
    move_file(queue_dir, id, from, to)?;
    fsync_dir(&queue_file_dir(queue_dir, to, id))?;
    let src_dir = queue_file_dir(queue_dir, from, id);
    if src_dir != queue_file_dir(queue_dir, to, id) {
        fsync_dir(&src_dir)?;
    }
    Ok(())
}

/// [`rename`] without the directory fsyncs, for qmgr's own moves
/// (incoming or deferred to active, active to deferred), as Postfix makes
/// them: after an operating system crash that lost the move, the file is
/// found in its old queue and handled again, and the recipients it has
/// delivered are marked done inside it (fsynced by the delivery agent), so
/// nothing is lost and nothing is delivered twice. Moves that carry an
/// administrator's decision (hold, release, requeue) use [`rename`].
///
/// # Errors
/// As [`rename`].
pub fn rename_unsynced(
    queue_dir: &Path,
    id: &QueueId,
    from: Queue,
    to: Queue,
) -> Result<(), Error> {
    move_file(queue_dir, id, from, to)
}

/// The rename itself, making a hashed subdirectory when missing.
fn move_file(queue_dir: &Path, id: &QueueId, from: Queue, to: Queue) -> Result<(), Error> {
    let src = queue_path(queue_dir, from, id);
    let dst_dir = queue_file_dir(queue_dir, to, id);
    let dst = dst_dir.join(id.as_str());
    match std::fs::rename(&src, &dst) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound && to.is_hashed() && !dst_dir.exists() => {
            make_subdir(&dst_dir)?;
            std::fs::rename(&src, &dst).map_err(Error::io(&src))?;
        }
        Err(e) => {
            return Err(Error::Io {
                path: src,
                source: e,
            });
        }
    }
    Ok(())
}

/// Makes a hashed subdirectory of a queue (mode SUBDIR_MODE) unless it
/// exists, and fsyncs its parent so the new entry survives a crash.
pub(crate) fn make_subdir(dir: &Path) -> Result<(), Error> {
    match std::fs::DirBuilder::new().mode(SUBDIR_MODE).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                source: e,
            });
        }
    }
    match dir.parent() {
        Some(parent) => fsync_dir(parent),
        None => Ok(()),
    }
}

/// Moves a malformed file from `from` to corrupt/. Logs nothing: the caller
/// logs the error that made it call this.
///
/// # Errors
/// As [`rename`].
pub fn quarantine(queue_dir: &Path, from: Queue, id: &QueueId) -> Result<(), Error> {
    rename(queue_dir, id, from, Queue::Corrupt)
}

/// Removes message `id` from `queue` (all recipients done, or postsuper -d).
///
/// # Errors
/// [`Error::Io`]; [`Error::is_not_found`] when already gone.
pub fn remove(queue_dir: &Path, queue: Queue, id: &QueueId) -> Result<(), Error> {
    let path = queue_path(queue_dir, queue, id);
    std::fs::remove_file(&path).map_err(Error::io(path))
}

/// How long message `id` in `queue` has gone without its complete mark:
/// `None` when it is complete, else the time since it was last written.
/// A writer that died leaves such a file; qmgr and postsuper remove it once
/// it is older than any live writer could be.
///
/// # Errors
/// [`Error::Io`] when the file cannot be examined.
pub fn incomplete_age(
    queue_dir: &Path,
    queue: Queue,
    id: &QueueId,
) -> Result<Option<std::time::Duration>, Error> {
    use std::os::unix::fs::MetadataExt;
    let path = queue_path(queue_dir, queue, id);
    let meta = std::fs::symlink_metadata(&path).map_err(Error::io(&path))?;
    if meta.mode() & 0o100 != 0 {
        return Ok(None);
    }
    let modified = meta.modified().map_err(Error::io(&path))?;
    Ok(Some(modified.elapsed().unwrap_or_default()))
}

/// What a queue directory holds.
#[derive(Debug, Default)]
pub struct Scan {
    /// Valid queue ids, sorted (that is, by arrival time).
    pub ids: Vec<QueueId>,
    /// Entries that are not queue ids (temporary files of writers at work
    /// or dead, strays): for recovery and `postfix check` to judge.
    pub others: Vec<PathBuf>,
}

/// Lists `queue`, descending into hashed subdirectories.
///
/// # Errors
/// [`Error::Io`] when the directory cannot be read.
pub fn scan(queue_dir: &Path, queue: Queue) -> Result<Scan, Error> {
    let dir = queue.dir(queue_dir);
    let mut out = Scan::default();
    for entry in std::fs::read_dir(&dir).map_err(Error::io(&dir))? {
        let entry = entry.map_err(Error::io(&dir))?;
        let name = entry.file_name();
        let Some(text) = name.to_str() else {
            out.others.push(entry.path());
            continue;
        };
        if let Ok(id) = QueueId::parse(text) {
            out.ids.push(id);
        } else if queue.is_hashed() && is_subdir_name(text) && entry.path().is_dir() {
            scan_subdir(&entry.path(), text, &mut out)?;
        } else {
            out.others.push(entry.path());
        }
    }
    out.ids.sort_unstable();
    Ok(out)
}

fn is_subdir_name(text: &str) -> bool {
    text.len() == 1 && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn scan_subdir(dir: &Path, hash: &str, out: &mut Scan) -> Result<(), Error> {
    for entry in std::fs::read_dir(dir).map_err(Error::io(dir))? {
        let entry = entry.map_err(Error::io(dir))?;
        match entry.file_name().to_str().map(QueueId::parse) {
            // A file in the wrong subdirectory would not be found by path.
            Some(Ok(id)) if id.hash_char().to_string() == hash => out.ids.push(id),
            _ => out.others.push(entry.path()),
        }
    }
    Ok(())
}

/// The queue ids in `queue`, sorted by arrival time.
///
/// # Errors
/// As [`scan`].
pub fn list(queue_dir: &Path, queue: Queue) -> Result<Vec<QueueId>, Error> {
    scan(queue_dir, queue).map(|s| s.ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tests::sample_envelope;
    use crate::reader::QueueFile;
    use std::io::Write;

    fn new_message(q: &Path) -> QueueId {
        let mut w = crate::enter(q).unwrap();
        w.write_all(b"hi\n").unwrap();
        *w.finish(&sample_envelope(1)).unwrap().id()
    }

    #[test]
    fn moves_through_queues_keep_the_id() {
        let q = tempfile::tempdir().unwrap();
        crate::layout::create_or_repair(q.path(), None, None).unwrap();
        let id = new_message(q.path());
        rename(q.path(), &id, Queue::Incoming, Queue::Active).unwrap();
        rename(q.path(), &id, Queue::Active, Queue::Deferred).unwrap();
        assert!(queue_path(q.path(), Queue::Deferred, &id).exists());
        assert_eq!(list(q.path(), Queue::Deferred).unwrap(), vec![id]);
        let qf = QueueFile::open(q.path(), Queue::Deferred, &id).unwrap();
        assert_eq!(qf.envelope().recipients.len(), 1);
        rename(q.path(), &id, Queue::Deferred, Queue::Hold).unwrap();
        assert!(list(q.path(), Queue::Deferred).unwrap().is_empty());
        assert_eq!(incomplete_age(q.path(), Queue::Hold, &id).unwrap(), None);
        let e = rename(q.path(), &id, Queue::Deferred, Queue::Active).unwrap_err();
        assert!(e.is_not_found());
        remove(q.path(), Queue::Hold, &id).unwrap();
        assert!(list(q.path(), Queue::Hold).unwrap().is_empty());
    }

    #[test]
    fn unfinished_file_has_an_incomplete_age() {
        let q = tempfile::tempdir().unwrap();
        crate::layout::create_or_repair(q.path(), None, None).unwrap();
        let w = crate::enter(q.path()).unwrap();
        let age = incomplete_age(q.path(), Queue::Incoming, w.id()).unwrap();
        assert!(age.is_some_and(|a| a.as_secs() < 60));
    }

    #[test]
    fn scan_sorts_ids_and_reports_strays() {
        let q = tempfile::tempdir().unwrap();
        crate::layout::create_or_repair(q.path(), None, None).unwrap();
        let a = new_message(q.path());
        let b = new_message(q.path());
        std::fs::write(q.path().join("incoming/.tmp.1.2"), b"").unwrap();
        std::fs::write(q.path().join("incoming/garbage"), b"").unwrap();
        let s = scan(q.path(), Queue::Incoming).unwrap();
        assert_eq!(s.ids, vec![a, b]);
        assert_eq!(s.others.len(), 2);
    }
}
