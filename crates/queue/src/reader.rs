//! Opening and reading queue files, marking recipients done.
//!
//! [`QueueFile::open`] checks a file completely (complete mark, layout,
//! limits, checksums, state bytes, end marker) before returning it; the
//! content is checked as it is streamed ([`ContentReader`]). A file that
//! fails is reported as [`Error::Malformed`] with queue, id, path and
//! offset; [`QueueFile::open_or_quarantine`] also moves it to corrupt/.
//! Nothing here logs.

use crate::error::Error;
use crate::error::Problem;
use crate::format::{self, ContentReader, Envelope, Fault, Layout, Recipient, RecipientState};
use crate::id::QueueId;
use crate::name::{Queue, queue_path};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The owner execute bit: the complete mark.
const MODE_COMPLETE_BIT: u32 = 0o100;

/// An open, checked queue file.
#[derive(Debug)]
pub struct QueueFile {
    file: File,
    queue: Queue,
    id: QueueId,
    path: PathBuf,
    layout: Layout,
    envelope: Envelope,
    states: Vec<RecipientState>,
    writable: bool,
    meta: std::fs::Metadata,
}

impl QueueFile {
    /// Opens message `id` in `queue` for reading and marking recipients
    /// done (qmgr, delivery agents).
    ///
    /// # Errors
    /// [`Error::Incomplete`] when the file is not marked complete,
    /// [`Error::Malformed`] when it is damaged, [`Error::Io`] when it cannot
    /// be opened or read (for example it is gone: see
    /// [`Error::is_not_found`]).
    pub fn open(queue_dir: &Path, queue: Queue, id: &QueueId) -> Result<QueueFile, Error> {
        QueueFile::open_with(queue_dir, queue, id, true)
    }

    /// A second handle on the same open file (a duplicated descriptor,
    /// sharing its lock) with the same parsed envelope: for marking
    /// recipients done while the content is read through the first,
    /// without opening and parsing the file again.
    ///
    /// # Errors
    /// [`Error::Io`] when the descriptor cannot be duplicated.
    pub fn try_clone(&self) -> Result<QueueFile, Error> {
        Ok(QueueFile {
            file: self.file.try_clone().map_err(Error::io(&self.path))?,
            queue: self.queue,
            id: self.id,
            path: self.path.clone(),
            layout: self.layout,
            envelope: self.envelope.clone(),
            states: self.states.clone(),
            writable: self.writable,
            meta: self.meta.clone(),
        })
    }

    /// The same open file after its caller renamed it into queue `to`
    /// (an open descriptor survives a rename): qmgr opens a new message
    /// once, in incoming/, and goes on using it in active/.
    pub fn moved(mut self, queue_dir: &Path, to: Queue) -> QueueFile {
        self.path = queue_path(queue_dir, to, &self.id);
        self.queue = to;
        self
    }

    /// Opens message `id` in `queue` read-only (postcat, showq).
    ///
    /// # Errors
    /// As [`QueueFile::open`].
    pub fn open_read_only(
        queue_dir: &Path,
        queue: Queue,
        id: &QueueId,
    ) -> Result<QueueFile, Error> {
        QueueFile::open_with(queue_dir, queue, id, false)
    }

    /// Opens like [`QueueFile::open`]; a malformed file is moved to
    /// corrupt/ and reported as [`Error::Quarantined`] (or
    /// [`Error::QuarantineFailed`]), for the daemon to log as a warning.
    ///
    /// # Errors
    /// As [`QueueFile::open`], with malformed files wrapped as above.
    pub fn open_or_quarantine(
        queue_dir: &Path,
        queue: Queue,
        id: &QueueId,
    ) -> Result<QueueFile, Error> {
        match QueueFile::open(queue_dir, queue, id) {
            Err(e) if e.is_corrupt() => Err(match crate::ops::quarantine(queue_dir, queue, id) {
                Ok(()) => Error::Quarantined { cause: Box::new(e) },
                Err(failed) => Error::QuarantineFailed {
                    cause: Box::new(e),
                    error: Box::new(failed),
                },
            }),
            other => other,
        }
    }

    fn open_with(
        queue_dir: &Path,
        queue: Queue,
        id: &QueueId,
        writable: bool,
    ) -> Result<QueueFile, Error> {
        let path = queue_path(queue_dir, queue, id);
        // O_NONBLOCK: a fifo planted in the queue must not hang the daemon.
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(&path);
        let malformed = |offset, problem| Error::Malformed {
            queue,
            id: *id,
            path: path.clone(),
            offset,
            problem,
        };
        let file = match file {
            Ok(f) => f,
            // A symbolic link (ELOOP under O_NOFOLLOW) or a directory in
            // the queue is as damaged as a bad file: it goes to corrupt/.
            Err(e) if matches!(e.raw_os_error(), Some(nix::libc::ELOOP | nix::libc::EISDIR)) => {
                return Err(malformed(0, Problem::NotRegularFile));
            }
            Err(e) => return Err(Error::Io { path, source: e }),
        };
        let meta = file.metadata().map_err(Error::io(&path))?;
        if !meta.file_type().is_file() {
            return Err(malformed(0, Problem::NotRegularFile));
        }
        if meta.mode() & MODE_COMPLETE_BIT == 0 {
            return Err(Error::Incomplete { queue, id: *id });
        }
        let parsed = match format::parse(&file, meta.size()) {
            Ok(p) => p,
            Err(Fault::Bad { offset, problem }) => return Err(malformed(offset, problem)),
            Err(Fault::Io(source)) => return Err(Error::Io { path, source }),
        };
        Ok(QueueFile {
            file,
            queue,
            id: *id,
            path,
            layout: parsed.layout,
            envelope: parsed.envelope,
            states: parsed.states,
            writable,
            meta,
        })
    }

    /// The queue id.
    pub fn id(&self) -> &QueueId {
        &self.id
    }

    /// The queue the file was opened in.
    pub fn queue(&self) -> Queue {
        self.queue
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's status when it was opened: the owner uid tells pickup
    /// who submitted a maildrop file; the times help scheduling.
    pub fn metadata(&self) -> &std::fs::Metadata {
        &self.meta
    }

    /// The envelope.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// Each recipient with its index and state, in file order.
    pub fn recipients(&self) -> impl Iterator<Item = (usize, &Recipient, RecipientState)> {
        self.envelope
            .recipients
            .iter()
            .zip(self.states.iter().copied())
            .enumerate()
            .map(|(i, (r, s))| (i, r, s))
    }

    /// The state of recipient `index`, if there is one.
    pub fn recipient_state(&self, index: usize) -> Option<RecipientState> {
        self.states.get(index).copied()
    }

    /// How many recipients are still pending.
    pub fn pending(&self) -> usize {
        self.states
            .iter()
            .filter(|s| **s == RecipientState::Pending)
            .count()
    }

    /// Marks recipient `index` done: one byte written in place, then
    /// fdatasync, so the mark survives a crash and the recipient is never
    /// delivered again.
    ///
    /// # Errors
    /// [`Error::ReadOnly`], [`Error::NoSuchRecipient`], or [`Error::Io`]
    /// when the write or the sync fails (then the recipient may still be
    /// pending on disk and the caller must treat it as not done).
    pub fn mark_done(&mut self, index: usize) -> Result<(), Error> {
        self.write_done_mark(index)?;
        self.sync_marks()
    }

    /// As [`QueueFile::mark_done`] without the fdatasync: the mark is in
    /// the file (every process reading it sees it, and it survives the
    /// death of any process) but not yet on disk. Whoever acts on it must
    /// first make it durable with [`QueueFile::sync_marks`] on any handle
    /// of the file: a delivery agent writes its marks before it answers,
    /// and qmgr syncs them once for the whole request before it treats a
    /// recipient as done, while the agent is already free for the next
    /// delivery.
    ///
    /// # Errors
    /// [`Error::ReadOnly`], [`Error::NoSuchRecipient`], or [`Error::Io`]
    /// when the write fails.
    pub fn write_done_mark(&mut self, index: usize) -> Result<(), Error> {
        if !self.writable {
            return Err(Error::ReadOnly { id: self.id });
        }
        if index >= self.states.len() {
            return Err(Error::NoSuchRecipient {
                id: self.id,
                index,
                count: self.states.len(),
            });
        }
        let offset = format::state_offset(&self.layout, index);
        self.file
            .write_all_at(&[RecipientState::Done.to_byte()], offset)
            .map_err(Error::io(&self.path))?;
        if let Some(s) = self.states.get_mut(index) {
            *s = RecipientState::Done;
        }
        Ok(())
    }

    /// Makes every mark written to this file durable (fdatasync), through
    /// this handle or any other, in this process or another. Works on a
    /// file opened read-only too.
    ///
    /// # Errors
    /// [`Error::Io`] when the sync fails: marks written since the last
    /// successful sync may then not be on disk.
    pub fn sync_marks(&self) -> Result<(), Error> {
        self.file.sync_data().map_err(Error::io(&self.path))
    }

    /// Rereads the recipient states from the file (another process, such
    /// as a delivery agent, may have marked recipients done).
    ///
    /// # Errors
    /// [`Error::Malformed`] for a bad state byte, [`Error::Io`] otherwise.
    pub fn reload_states(&mut self) -> Result<(), Error> {
        let mut bytes = vec![0u8; self.states.len()];
        self.file
            .read_exact_at(&mut bytes, self.layout.state_offset())
            .map_err(Error::io(&self.path))?;
        let mut states = Vec::with_capacity(bytes.len());
        for (i, b) in bytes.into_iter().enumerate() {
            match format::state_from_byte(b) {
                Some(s) => states.push(s),
                None => {
                    return Err(Error::Malformed {
                        queue: self.queue,
                        id: self.id,
                        path: self.path.clone(),
                        offset: format::state_offset(&self.layout, i),
                        problem: Problem::BadRecipientState(b),
                    });
                }
            }
        }
        self.states = states;
        Ok(())
    }

    /// Takes a shared lock on the file (flock), waiting for it: a delivery
    /// in progress holds one, so that postsuper can tell.
    ///
    /// # Errors
    /// [`Error::Io`] when locking fails.
    pub fn lock_shared(&self) -> Result<(), Error> {
        self.file.lock_shared().map_err(Error::io(&self.path))
    }

    /// Tries to take an exclusive lock on the file (flock) without
    /// waiting: false when someone else holds a lock (postsuper leaves a
    /// message being delivered alone).
    ///
    /// # Errors
    /// [`Error::Io`] when locking fails for another reason.
    pub fn try_lock_exclusive(&self) -> Result<bool, Error> {
        match self.file.try_lock() {
            Ok(()) => Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::Io {
                path: self.path.clone(),
                source: e,
            }),
        }
    }

    /// Offset of the content section in the file.
    pub fn content_offset(&self) -> u64 {
        self.layout.content_offset()
    }

    /// Length of the content in bytes (the message size).
    pub fn content_len(&self) -> u64 {
        self.layout.content_len
    }

    /// A reader that streams the content from the start. See
    /// [`ContentReader`]: read to the end before trusting the content.
    pub fn content(&self) -> ContentReader<'_> {
        ContentReader::new(&self.file, &self.layout)
    }
}

impl Error {
    /// True for an I/O error saying the file does not exist (an expected
    /// race: another process moved or removed it).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tests::sample_envelope;
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;

    fn queue_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        crate::layout::create_or_repair(dir.path(), None, None).unwrap();
        dir
    }

    fn write_message(q: &Path, rcpts: usize, content: &[u8]) -> QueueId {
        let mut w = crate::enter(q).unwrap();
        w.write_all(content).unwrap();
        *w.finish(&sample_envelope(rcpts)).unwrap().id()
    }

    #[test]
    fn round_trip_envelope_recipients_content() {
        let q = queue_dir();
        let id = write_message(q.path(), 3, b"Subject: x\n\nhello\n");
        let qf = QueueFile::open(q.path(), Queue::Incoming, &id).unwrap();
        assert_eq!(qf.envelope(), &sample_envelope(3));
        let states: Vec<_> = qf
            .recipients()
            .map(|(i, r, s)| (i, r.address.clone(), s))
            .collect();
        assert_eq!(states.len(), 3);
        assert_eq!(
            states[1],
            (1, "rcpt1@example.net".to_string(), RecipientState::Pending)
        );
        let mut c = String::new();
        qf.content().read_to_string(&mut c).unwrap();
        assert_eq!(c, "Subject: x\n\nhello\n");
        assert_eq!(qf.content_len(), 18);
        assert_eq!(qf.metadata().uid(), nix::unistd::geteuid().as_raw());
    }

    #[test]
    fn a_clone_marks_the_same_file() {
        let q = queue_dir();
        let id = write_message(q.path(), 2, b"body\n");
        let qf = QueueFile::open(q.path(), Queue::Incoming, &id).unwrap();
        let mut marker = qf.try_clone().unwrap();
        drop(qf);
        marker.mark_done(1).unwrap();
        assert_eq!(
            marker.envelope().sender,
            QueueFile::open_read_only(q.path(), Queue::Incoming, &id)
                .unwrap()
                .envelope()
                .sender
        );
        let back = QueueFile::open_read_only(q.path(), Queue::Incoming, &id).unwrap();
        assert_eq!(back.recipient_state(0), Some(RecipientState::Pending));
        assert_eq!(back.recipient_state(1), Some(RecipientState::Done));
    }

    #[test]
    fn a_moved_file_is_marked_where_it_went() {
        let q = queue_dir();
        let id = write_message(q.path(), 1, b"body\n");
        let qf = QueueFile::open(q.path(), Queue::Incoming, &id).unwrap();
        crate::rename_unsynced(q.path(), &id, Queue::Incoming, Queue::Active).unwrap();
        let mut qf = qf.moved(q.path(), Queue::Active);
        assert_eq!(qf.queue(), Queue::Active);
        qf.mark_done(0).unwrap();
        let back = QueueFile::open_read_only(q.path(), Queue::Active, &id).unwrap();
        assert_eq!(back.recipient_state(0), Some(RecipientState::Done));
    }

    #[test]
    fn mark_done_survives_reopen() {
        let q = queue_dir();
        let id = write_message(q.path(), 3, b"body\n");
        let mut qf = QueueFile::open(q.path(), Queue::Incoming, &id).unwrap();
        qf.mark_done(1).unwrap();
        assert!(matches!(
            qf.mark_done(3),
            Err(Error::NoSuchRecipient { .. })
        ));
        drop(qf);
        let qf = QueueFile::open_read_only(q.path(), Queue::Incoming, &id).unwrap();
        assert_eq!(qf.recipient_state(0), Some(RecipientState::Pending));
        assert_eq!(qf.recipient_state(1), Some(RecipientState::Done));
        assert_eq!(qf.pending(), 2);
        let mut ro = qf;
        assert!(matches!(ro.mark_done(0), Err(Error::ReadOnly { .. })));
    }

    #[test]
    fn reload_sees_other_process_marks() {
        let q = queue_dir();
        let id = write_message(q.path(), 2, b"body\n");
        let mut a = QueueFile::open(q.path(), Queue::Incoming, &id).unwrap();
        let mut b = QueueFile::open(q.path(), Queue::Incoming, &id).unwrap();
        b.mark_done(0).unwrap();
        assert_eq!(a.recipient_state(0), Some(RecipientState::Pending));
        a.reload_states().unwrap();
        assert_eq!(a.recipient_state(0), Some(RecipientState::Done));
    }

    #[test]
    fn streams_twenty_megabytes() {
        let q = queue_dir();
        let mut w = crate::enter(q.path()).unwrap();
        let block: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
        for _ in 0..320 {
            w.write_all(&block).unwrap();
        }
        let id = *w.finish(&sample_envelope(1)).unwrap().id();
        let qf = QueueFile::open(q.path(), Queue::Incoming, &id).unwrap();
        assert_eq!(qf.content_len(), 320 * 65536);
        let mut r = qf.content();
        let mut buf = vec![0u8; 65536];
        let twice = [block.as_slice(), block.as_slice()].concat();
        let mut total = 0u64;
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            // Reads need not align with blocks: compare against the
            // pattern at the matching phase.
            let off = (total % 65536) as usize;
            assert!(buf[..n] == twice[off..off + n], "differs at {total}");
            total += n as u64;
        }
        assert_eq!(total, 320 * 65536);
    }

    #[test]
    fn unmarked_file_is_incomplete_not_corrupt() {
        let q = queue_dir();
        let id = write_message(q.path(), 1, b"x\n");
        let path = queue_path(q.path(), Queue::Incoming, &id);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = QueueFile::open(q.path(), Queue::Incoming, &id).unwrap_err();
        assert!(matches!(e, Error::Incomplete { .. }), "{e}");
        assert!(!e.is_corrupt());
    }

    #[test]
    fn every_truncation_on_disk_is_rejected_and_quarantined() {
        let q = queue_dir();
        let id = write_message(q.path(), 2, b"Subject: t\n\nshort body\n");
        let path = queue_path(q.path(), Queue::Incoming, &id);
        let good = std::fs::read(&path).unwrap();
        for cut in 0..good.len() {
            std::fs::write(&path, &good[..cut]).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
            let e = QueueFile::open(q.path(), Queue::Incoming, &id).unwrap_err();
            assert!(e.is_corrupt(), "cut {cut}: {e}");
        }
        // Flipped bytes: rejected at open, or by the content checksum.
        for at in 0..good.len() {
            let mut m = good.clone();
            m[at] ^= 0xff;
            std::fs::write(&path, &m).unwrap();
            match QueueFile::open(q.path(), Queue::Incoming, &id) {
                Err(e) => assert!(e.is_corrupt(), "flip at {at}: {e}"),
                Ok(qf) => {
                    let mut c = Vec::new();
                    assert!(
                        qf.content().read_to_end(&mut c).is_err(),
                        "flip at {at} accepted"
                    );
                }
            }
        }
        let e = QueueFile::open_or_quarantine(q.path(), Queue::Incoming, &id).unwrap_err();
        assert!(matches!(e, Error::Quarantined { .. }), "{e}");
        assert!(queue_path(q.path(), Queue::Corrupt, &id).exists());
        assert!(!path.exists());
    }

    #[test]
    fn shared_lock_keeps_exclusive_out() {
        let q = queue_dir();
        let id = write_message(q.path(), 1, b"x\n");
        let a = QueueFile::open(q.path(), Queue::Incoming, &id).unwrap();
        let b = QueueFile::open_read_only(q.path(), Queue::Incoming, &id).unwrap();
        a.lock_shared().unwrap();
        assert!(!b.try_lock_exclusive().unwrap());
        drop(a);
        assert!(b.try_lock_exclusive().unwrap());
    }

    #[test]
    fn handles_can_move_between_threads() {
        fn send<T: Send>() {}
        send::<QueueFile>();
        send::<ContentReader<'static>>();
        send::<crate::QueueWriter>();
    }

    #[test]
    fn fifo_symlink_and_directory_are_corrupt() {
        let q = queue_dir();
        let id = QueueId::parse("0000000000B").unwrap();
        let path = queue_path(q.path(), Queue::Active, &id);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o700)).unwrap();
        let e = QueueFile::open(q.path(), Queue::Active, &id).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Malformed {
                    problem: Problem::NotRegularFile,
                    ..
                }
            ),
            "{e}"
        );
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &path).unwrap();
        let e = QueueFile::open(q.path(), Queue::Active, &id).unwrap_err();
        assert!(e.is_corrupt(), "{e}");
        let e = QueueFile::open_or_quarantine(q.path(), Queue::Active, &id).unwrap_err();
        assert!(matches!(e, Error::Quarantined { .. }), "{e}");
        // The link itself moved; its target is untouched.
        let moved = queue_path(q.path(), Queue::Corrupt, &id);
        assert!(
            std::fs::symlink_metadata(&moved)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        std::fs::remove_file(&moved).unwrap();
        std::fs::create_dir(&path).unwrap();
        let e = QueueFile::open(q.path(), Queue::Active, &id).unwrap_err();
        assert!(e.is_corrupt(), "{e}");
    }
}
