//! Writing a new queue file into incoming/ (Postfix's mail_queue_enter and
//! mail_stream_finish).
//!
//! [`enter`] creates the file without a name (O_TMPFILE; where that cannot
//! work, under a temporary name), reads its inode to make the queue id, and
//! links it under that id without replacing anything.
//! The caller streams the content through [`std::io::Write`] (buffered, so a
//! message of any size costs a few large writes and no memory), then calls
//! [`QueueWriter::finish`] with the envelope. `finish` writes the envelope,
//! the recipient states and the end marker, then the header at offset 0,
//! sets the owner execute bit (the complete mark Postfix uses), fsyncs the
//! file and the incoming/ directory, and only then returns [`Fsynced`].
//! cleanup answers its client only with that value in hand.
//!
//! Crash safety: until the header is written the file has no magic; until
//! the execute bit is set no reader takes it as complete; a complete file
//! that is damaged anyway (a crash of the machine between the chmod and the
//! fsync) fails the checksums and goes to corrupt/, it is never delivered.
//! A writer dropped without `finish` removes its file; a killed writer
//! leaves an incomplete file that recovery removes.

use crate::crc::Crc32c;
use crate::error::Error;
use crate::format::{self, Envelope, HEADER_LEN, Layout, RecipientState};
use crate::group_sync::Ticket;
use crate::id::{QueueId, next_time};
use crate::name::{Queue, queue_path};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Write buffer size: large enough that a big message costs few syscalls.
const BUFFER_SIZE: usize = 128 * 1024;
/// How often to retry when a queue id is taken (a dead file with the same
/// time and inode; each retry takes a new time).
const ID_RETRIES: usize = 100;
/// Mode of a queue file while it is written.
const MODE_WRITING: u32 = 0o600;
/// Mode of a complete queue file: the owner execute bit is the mark.
const MODE_COMPLETE: u32 = 0o700;
/// Mode of a complete maildrop file (Postfix's 0744): postdrop writes it as
/// the submitting user, and pickup, running as mail_owner, must read it.
const MODE_COMPLETE_MAILDROP: u32 = 0o744;

/// Proof that a queue file is complete and on stable storage: written,
/// marked complete, and fsynced together with its directory entry. Only
/// [`QueueWriter::finish`] makes one.
#[derive(Debug)]
#[must_use = "a message is accepted only when its Fsynced proof is used"]
pub struct Fsynced {
    id: QueueId,
}

impl Fsynced {
    /// The queue id of the file that is now safe.
    pub fn id(&self) -> &QueueId {
        &self.id
    }
}

/// A queue file being written in incoming/. `Write` appends to the content.
#[derive(Debug)]
pub struct QueueWriter {
    out: Option<BufWriter<File>>,
    id: QueueId,
    path: PathBuf,
    dir: PathBuf,
    /// Drawn when the entry was made: finish() waits for a directory fsync
    /// begun after it (often another message's, made meanwhile).
    ticket: Option<Ticket>,
    content_len: u64,
    crc: Crc32c,
    complete_mode: u32,
}

/// Creates a new queue file in `queue_dir`/incoming and returns its writer
/// (cleanup).
///
/// # Errors
/// [`Error::Io`] when the file cannot be created or linked.
pub fn enter(queue_dir: &Path) -> Result<QueueWriter, Error> {
    enter_queue(queue_dir, Queue::Incoming)
}

/// Creates a new queue file in `queue` (postdrop writes maildrop/ this
/// way) and returns its writer. The queue must not be hashed.
///
/// # Errors
/// [`Error::Io`] when the file cannot be created or linked.
pub fn enter_queue(queue_dir: &Path, queue: Queue) -> Result<QueueWriter, Error> {
    let dir = queue.dir(queue_dir);
    let (file, id, path) = match open_unnamed(&dir).map_err(Error::io(&dir))? {
        Some(file) => {
            let source = proc_fd_path(&file);
            let inode = file.metadata().map_err(Error::io(&dir))?.ino();
            let (id, path) =
                link_under_id(queue_dir, queue, inode, |to| link_proc_fd(&source, to))?;
            (file, id, path)
        }
        None => enter_named(queue_dir, queue, &dir)?,
    };
    let ticket = crate::group_sync::ticket(&dir);
    let mut out = BufWriter::with_capacity(BUFFER_SIZE, file);
    // The header slot stays zero (no magic) until finish() fills it.
    if let Err(e) = out.write_all(&[0u8; HEADER_LEN as usize]) {
        let _ = std::fs::remove_file(&path);
        return Err(Error::Io { path, source: e });
    }
    Ok(QueueWriter {
        out: Some(out),
        id,
        path,
        dir,
        ticket: Some(ticket),
        content_len: 0,
        crc: Crc32c::new(),
        complete_mode: if queue == Queue::Maildrop {
            MODE_COMPLETE_MAILDROP
        } else {
            MODE_COMPLETE
        },
    })
}

/// Opens a file in `dir` that has no name yet (O_TMPFILE): its one
/// directory entry, under its queue id, is then made by a single link, where
/// a named temporary file costs three changes of the directory (create,
/// link, unlink), each a journal update that every writer into incoming/
/// queues behind. None when this cannot work: a file system without
/// O_TMPFILE, or no /proc/self/fd to link through (a chroot without /proc).
fn open_unnamed(dir: &Path) -> io::Result<Option<File>> {
    static PROC_FD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*PROC_FD.get_or_init(|| Path::new("/proc/self/fd").is_dir()) {
        return Ok(None);
    }
    let opened = OpenOptions::new()
        .write(true)
        .mode(MODE_WRITING)
        .custom_flags(nix::libc::O_TMPFILE)
        .open(dir);
    match opened {
        Ok(file) => Ok(Some(file)),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(nix::libc::EOPNOTSUPP | nix::libc::EISDIR | nix::libc::EINVAL)
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The name through which an unnamed file can be linked without
/// privilege (linkat with AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH).
fn proc_fd_path(file: &File) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// Gives the unnamed file behind `source` the name `to`; fails rather than
/// replace an existing one.
fn link_proc_fd(source: &Path, to: &Path) -> io::Result<()> {
    use nix::fcntl::{AT_FDCWD, AtFlags};
    nix::unistd::linkat(AT_FDCWD, source, AT_FDCWD, to, AtFlags::AT_SYMLINK_FOLLOW)
        .map_err(io::Error::from)
}

/// The way without O_TMPFILE: the file is created under a temporary name
/// (a dot file, which never passes QueueId::parse and never shows up in a
/// queue listing), linked under its id, and the temporary name removed.
fn enter_named(
    queue_dir: &Path,
    queue: Queue,
    dir: &Path,
) -> Result<(File, QueueId, PathBuf), Error> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".tmp.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(MODE_WRITING)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(Error::io(&tmp))?;
    let linked = file
        .metadata()
        .map_err(Error::io(&tmp))
        .and_then(|m| link_under_id(queue_dir, queue, m.ino(), |to| std::fs::hard_link(&tmp, to)));
    // The temporary name goes either way; a failure to remove it leaves
    // only a stray dot file for recovery.
    let _ = std::fs::remove_file(&tmp);
    let (id, path) = linked?;
    Ok((file, id, path))
}

/// Links the file of inode `inode` under a fresh queue id with `link`,
/// which must fail rather than replace (as link(2) does).
fn link_under_id(
    queue_dir: &Path,
    queue: Queue,
    inode: u64,
    link: impl Fn(&Path) -> io::Result<()>,
) -> Result<(QueueId, PathBuf), Error> {
    let mut last = None;
    for _ in 0..ID_RETRIES {
        let id = QueueId::new(next_time(), inode);
        let path = queue_path(queue_dir, queue, &id);
        match link(&path) {
            Ok(()) => return Ok((id, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some((path, e)),
            Err(e) => return Err(Error::Io { path, source: e }),
        }
    }
    let (path, source) =
        last.unwrap_or_else(|| (queue.dir(queue_dir), io::ErrorKind::AlreadyExists.into()));
    Err(Error::Io { path, source })
}

impl QueueWriter {
    /// The new message's queue id.
    pub fn id(&self) -> &QueueId {
        &self.id
    }

    /// The file's path in incoming/.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Content bytes written so far.
    pub fn content_len(&self) -> u64 {
        self.content_len
    }

    /// Completes the file with `envelope`; see the module text for the
    /// steps. Every recipient starts pending.
    ///
    /// # Errors
    /// [`Error::TooLarge`] when the envelope exceeds the format's limits,
    /// [`Error::Io`] when a write or fsync fails. On error the file is
    /// removed.
    pub fn finish(mut self, envelope: &Envelope) -> Result<Fsynced, Error> {
        let env = format::encode_envelope(envelope).map_err(|(what, limit)| Error::TooLarge {
            id: self.id,
            what,
            limit,
        })?;
        let layout = Layout {
            nrcpt: envelope.recipients.len() as u32,
            content_len: self.content_len,
            envelope_len: env.len() as u32,
            content_crc: self.crc.finish(),
        };
        let Some(mut out) = self.out.take() else {
            return Err(self.io_error(io::ErrorKind::BrokenPipe.into()));
        };
        let states = vec![RecipientState::Pending.to_byte(); envelope.recipients.len()];
        let written = out
            .write_all(&env)
            .and_then(|()| out.write_all(&states))
            .and_then(|()| out.write_all(&layout.end_marker()))
            .and_then(|()| out.into_inner().map_err(|e| e.into_error()));
        let file = match written {
            Ok(f) => f,
            Err(e) => return Err(self.io_error(e)),
        };
        let done = file
            .write_all_at(&layout.header(&env), 0)
            // Mark complete before the fsync, as Postfix does, so one fsync
            // makes data and mark durable together; the checksums catch a
            // mark that reached the disk without the data.
            .and_then(|()| {
                file.set_permissions(std::fs::Permissions::from_mode(self.complete_mode))
            })
            .and_then(|()| file.sync_all());
        if let Err(e) = done {
            return Err(self.io_error(e));
        }
        // The directory entry made by enter() must be durable too. A
        // directory we may write but not read (maildrop/, mode 1730, as
        // postdrop sees it) cannot be opened to fsync; there the file's
        // fsync, which journaling file systems commit together with the
        // new entry, has to do. Any fsync of the directory begun after
        // this file's entry was made makes the entry durable: threads
        // writing into the same directory share them (group commit), and
        // while this message was received another one's usually ran.
        let synced = match self.ticket.take() {
            Some(t) => t.durable(&self.dir),
            None => crate::ops::fsync_dir(&self.dir),
        };
        match synced {
            Ok(()) => {}
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::PermissionDenied => {}
            Err(e) => {
                self.remove();
                return Err(e);
            }
        }
        // Success: nothing left for Drop to clean up.
        self.path = PathBuf::new();
        Ok(Fsynced { id: self.id })
    }

    /// Gives up on the message and removes its file.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be removed.
    pub fn abort(mut self) -> Result<(), Error> {
        self.out = None;
        let path = std::mem::take(&mut self.path);
        std::fs::remove_file(&path).map_err(Error::io(path))
    }

    fn remove(&mut self) {
        self.out = None;
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
            self.path = PathBuf::new();
        }
    }

    fn io_error(&mut self, source: io::Error) -> Error {
        let path = self.path.clone();
        self.remove();
        Error::Io { path, source }
    }
}

impl Write for QueueWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let out = self.out.as_mut().ok_or(io::ErrorKind::BrokenPipe)?;
        let n = out.write(buf)?;
        let written = buf.get(..n).unwrap_or(&[]);
        self.crc.update(written);
        self.content_len = self.content_len.saturating_add(n as u64);
        if self.content_len > format::MAX_CONTENT_LEN {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "queue file content too large",
            ));
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.out.as_mut() {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for QueueWriter {
    fn drop(&mut self) {
        self.remove();
    }
}

#[cfg(test)]
mod tests;
