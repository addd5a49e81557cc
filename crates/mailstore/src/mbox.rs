//! mbox delivery and reading.
//!
//! Delivery does what Postfix's local does for a mailbox file
//! (local/mailbox.c, global/mbox_open.c, global/mail_copy.c):
//!
//! 1. take the dotlock `<mbox>.lock` (see [`crate::lock`]);
//! 2. open the mailbox with O_NOFOLLOW, creating it (mode 0600) when
//!    missing, and refuse a symlink, a non-regular file or a file with
//!    more than one hard link;
//! 3. take an fcntl write lock on it;
//! 4. append a `From sender  asctime-date` line, the caller's header lines,
//!    the message with body lines starting with `From ` quoted as
//!    `>From `, and a blank line;
//! 5. fsync. On any error the file is truncated back to the size it had,
//!    so a failed delivery never leaves half a message.
//!
//! A size limit (mailbox_size_limit) applies to the whole mailbox after
//! the append, as Postfix's file size resource limit does.
//!
//! Reading: [`Messages`] iterates over the messages of a mailbox (offsets
//! and lengths, with a bounded line buffer); [`MessageReader`] streams one
//! message with `>From ` un-quoted.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, FileKind, Result};
use crate::lock::{DotLock, LockOptions, dotlock, fcntl_lock};
use crate::quote::{Direction, Quoter, Quoting};
use crate::stream::{BUFFER_SIZE, LimitedWriter, copy_content, effective_limit, write_prepend};

/// What to do about the dotlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DotlockPolicy {
    /// Take it; failing to create it (other than "locked") fails delivery.
    Required,
    /// Take it when possible; when it cannot be created (a spool directory
    /// the recipient cannot write) go on with the fcntl lock alone, as
    /// Postfix's MBOX_DOT_LOCK_MAY_FAIL. A lock held by someone else still
    /// waits and then fails.
    MayFail,
    /// Do not use one.
    Off,
}

/// How an mbox delivery is done.
#[derive(Debug, Clone)]
pub struct Options {
    /// Largest mailbox size in bytes after the append (mailbox_size_limit);
    /// None or Some(0) for no limit.
    pub size_limit: Option<u64>,
    /// The dotlock (mailbox_delivery_lock includes `dotlock`).
    pub dotlock: DotlockPolicy,
    /// The fcntl lock (mailbox_delivery_lock includes `fcntl`).
    pub fcntl: bool,
    /// Attempts, delay and stale lock time.
    pub lock: LockOptions,
    /// The quoting convention (Postfix writes [`Quoting::Mboxo`]).
    pub quoting: Quoting,
    /// Mode of a new mailbox file.
    pub create_mode: u32,
    /// Owner (uid, gid) to give a newly created mailbox (a root delivery
    /// into mail_spool_directory); None leaves the creator's.
    pub owner: Option<(u32, u32)>,
    /// Refuse, as a temporary error, a mailbox not owned by this uid
    /// (strict_mailbox_ownership).
    pub expected_owner: Option<u32>,
    /// Time for the From_ line; None is now.
    pub time: Option<SystemTime>,
    /// Offset from UTC in seconds for the From_ line's date; None uses
    /// the local time zone, as Postfix does (see [`crate::localtime`]).
    pub utc_offset: Option<i32>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            size_limit: None,
            dotlock: DotlockPolicy::MayFail,
            fcntl: true,
            lock: LockOptions::default(),
            quoting: Quoting::Mboxo,
            create_mode: 0o600,
            owner: None,
            expected_owner: None,
            time: None,
            utc_offset: None,
        }
    }
}

/// Where a delivered message landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The mailbox.
    pub path: PathBuf,
    /// Offset of its From_ line.
    pub offset: u64,
    /// Bytes appended (From_ line and blank line included).
    pub size: u64,
}

/// Appends one message to the mailbox at `path`, sent by `sender` (empty
/// for the null sender, written as `MAILER-DAEMON`).
///
/// # Errors
///
/// [`Error::Locked`] (temporary), [`Error::NotRegularFile`],
/// [`Error::HardLinked`], [`Error::WrongOwner`], [`Error::SizeLimit`],
/// [`Error::Source`], [`Error::BadPrependLine`], [`Error::Io`]. After an
/// error the mailbox has its former size again.
pub fn deliver(
    path: &Path,
    options: &Options,
    sender: &str,
    prepend: &[&str],
    content: &mut dyn Read,
) -> Result<Delivered> {
    for line in prepend {
        crate::stream::check_prepend_line(line)?;
    }
    let _dotlock = take_dotlock(path, options)?;
    let file = open_and_lock(path, options)?;
    let meta = file.metadata().map_err(|e| Error::io("fstat", path, e))?;
    let original = meta.len();
    let result = append(&file, path, original, options, sender, prepend, content);
    match result {
        Ok(size) => Ok(Delivered {
            path: path.to_path_buf(),
            offset: original,
            size,
        }),
        Err(err) => {
            if let Err(e) = file.set_len(original).and_then(|()| file.sync_all()) {
                return Err(Error::io("truncate after failed delivery", path, e));
            }
            Err(err)
        }
    }
}

/// How often a mailbox that was replaced while we waited for its lock is
/// opened again before giving up (temporarily).
const REOPEN_ATTEMPTS: u32 = 5;

/// Opens the mailbox and takes the fcntl lock, then makes sure the file
/// locked is still the one the name points to: a reader that rewrites the
/// mailbox by rename while we waited would otherwise get our message
/// appended to its unlinked old copy.
fn open_and_lock(path: &Path, options: &Options) -> Result<File> {
    for _ in 0..REOPEN_ATTEMPTS {
        let file = open_mailbox(path, options)?;
        if options.fcntl {
            fcntl_lock(&file, path, &options.lock)?;
        }
        let meta = file.metadata().map_err(|e| Error::io("fstat", path, e))?;
        match std::fs::symlink_metadata(path) {
            Ok(now) if now.dev() == meta.dev() && now.ino() == meta.ino() => return Ok(file),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("lstat", path, e)),
        }
    }
    Err(Error::Locked {
        path: path.to_path_buf(),
    })
}

fn take_dotlock(path: &Path, options: &Options) -> Result<Option<DotLock>> {
    match options.dotlock {
        DotlockPolicy::Off => Ok(None),
        DotlockPolicy::Required => dotlock(path, &options.lock).map(Some),
        DotlockPolicy::MayFail => match dotlock(path, &options.lock) {
            Ok(lock) => Ok(Some(lock)),
            Err(Error::Io { .. }) => Ok(None),
            Err(e) => Err(e),
        },
    }
}

/// Opens (or creates) the mailbox without following a symlink, and checks
/// that it is a single-linked regular file owned as expected.
fn open_mailbox(path: &Path, options: &Options) -> Result<File> {
    // O_NONBLOCK: opening a FIFO for writing must not hang; a regular file
    // ignores it.
    let flags = nix::libc::O_NOFOLLOW | nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK;
    let mut created = false;
    let mut file = None;
    for _ in 0..2 {
        match OpenOptions::new()
            .read(true)
            .append(true)
            .custom_flags(flags)
            .open(path)
        {
            Ok(f) => {
                file = Some(f);
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(open_error(path, e)),
        }
        match OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .mode(options.create_mode)
            .custom_flags(flags)
            .open(path)
        {
            Ok(f) => {
                created = true;
                file = Some(f);
                break;
            }
            // Someone created it meanwhile: open that one.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(open_error(path, e)),
        }
    }
    let Some(file) = file else {
        return Err(Error::io(
            "open",
            path,
            io::Error::from(io::ErrorKind::NotFound),
        ));
    };
    let meta = file.metadata().map_err(|e| Error::io("fstat", path, e))?;
    if !meta.file_type().is_file() {
        return Err(Error::NotRegularFile {
            path: path.to_path_buf(),
            kind: file_kind(&meta.file_type()),
        });
    }
    if meta.nlink() > 1 {
        return Err(Error::HardLinked {
            path: path.to_path_buf(),
            links: meta.nlink(),
        });
    }
    if created && let Some((uid, gid)) = options.owner {
        std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
            .map_err(|e| Error::io("chown", path, e))?;
    } else if let Some(expected) = options.expected_owner
        && meta.uid() != expected
    {
        return Err(Error::WrongOwner {
            path: path.to_path_buf(),
            uid: meta.uid(),
            expected,
        });
    }
    Ok(file)
}

fn open_error(path: &Path, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(code) if code == nix::libc::ELOOP => Error::NotRegularFile {
            path: path.to_path_buf(),
            kind: FileKind::Symlink,
        },
        // O_NONBLOCK on a FIFO with no reader.
        Some(code) if code == nix::libc::ENXIO => Error::NotRegularFile {
            path: path.to_path_buf(),
            kind: FileKind::Fifo,
        },
        _ => Error::io("open", path, e),
    }
}

fn file_kind(t: &std::fs::FileType) -> FileKind {
    if t.is_symlink() {
        FileKind::Symlink
    } else if t.is_dir() {
        FileKind::Directory
    } else if t.is_fifo() {
        FileKind::Fifo
    } else if t.is_socket() {
        FileKind::Socket
    } else if t.is_block_device() || t.is_char_device() {
        FileKind::Device
    } else {
        FileKind::Other
    }
}

/// Writes the From_ line, headers, quoted content and blank line; fsyncs.
fn append(
    file: &File,
    path: &Path,
    original: u64,
    options: &Options,
    sender: &str,
    prepend: &[&str],
    content: &mut dyn Read,
) -> Result<u64> {
    let configured = effective_limit(options.size_limit);
    let room = configured.map(|l| l.saturating_sub(original));
    let limit = configured.unwrap_or(u64::MAX);
    if room == Some(0) {
        return Err(Error::SizeLimit {
            path: path.to_path_buf(),
            limit,
        });
    }
    let mut out = LimitedWriter::new(file, path, room, limit);
    // A mailbox left without its closing blank line by another program
    // would hide our From_ line from readers: end it first.
    out.write(separator_padding(file, path, original)?)?;
    let time = options.time.unwrap_or_else(SystemTime::now);
    let offset = options
        .utc_offset
        .unwrap_or_else(|| crate::localtime::utc_offset(time));
    out.write(from_line(sender, time, offset).as_bytes())?;
    write_prepend(&mut out, prepend)?;
    copy_content(content, &mut out, Some(options.quoting))?;
    out.write(b"\n")?;
    out.flush()?;
    let size = out.written();
    drop(out);
    file.sync_all().map_err(|e| Error::io("fsync", path, e))?;
    Ok(size)
}

/// What must be written before a new message so that the mailbox ends
/// with a blank line: nothing, `\n` or `\n\n`.
fn separator_padding(file: &File, path: &Path, size: u64) -> Result<&'static [u8]> {
    use std::os::unix::fs::FileExt;
    if size == 0 {
        return Ok(b"");
    }
    let mut tail = [0u8; 2];
    let start = size.saturating_sub(2);
    let want = usize::try_from(size - start).unwrap_or(2);
    let buf = tail.get_mut(..want).unwrap_or_default();
    file.read_exact_at(buf, start)
        .map_err(|e| Error::io("read", path, e))?;
    // A file that is a lone "\n" counts as ending with a blank line.
    Ok(match buf {
        [b'\n'] | [b'\n', b'\n'] => b"",
        [.., b'\n'] => b"\n",
        _ => b"\n\n",
    })
}

/// `From sender  Mon Nov 23 12:11:53 2026\n`: Postfix's
/// `"From %s  %.24s\n"` with asctime().
pub fn from_line(sender: &str, time: SystemTime, utc_offset: i32) -> String {
    let secs = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    };
    format!(
        "From {}  {}\n",
        from_line_sender(sender),
        asctime(secs.saturating_add(i64::from(utc_offset)))
    )
}

/// The sender as it may appear in a From_ line: the null sender is
/// MAILER-DAEMON; white space and control characters (which would end the
/// address for a reader) become `_`.
fn from_line_sender(sender: &str) -> String {
    if sender.is_empty() {
        return "MAILER-DAEMON".to_string();
    }
    sender
        .chars()
        .take(1000)
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// asctime() without the newline: `Mon Nov  3 12:11:53 2026`.
pub fn asctime(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let weekday = DAYS
        .get(usize::try_from(days.rem_euclid(7)).unwrap_or(0))
        .copied()
        .unwrap_or("???");
    let month_name = MONTHS
        .get(usize::try_from(month.saturating_sub(1)).unwrap_or(0))
        .copied()
        .unwrap_or("???");
    format!(
        "{weekday} {month_name} {day:>2} {:02}:{:02}:{:02} {year}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil: (year, month 1-12, day 1-31).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era.saturating_mul(400) + i64::from(month <= 2);
    (year, month, day)
}

/// Longest line piece the reader holds at once; longer lines are read in
/// pieces of this size (only a line's start matters for mbox structure).
pub const LINE_PIECE_LIMIT: usize = 8192;

/// Longest From_ line text kept in [`MboxMessage::from_line`].
pub const FROM_LINE_LIMIT: usize = 1000;

/// One message found in an mbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MboxMessage {
    /// Offset of the `From ` line.
    pub from_offset: u64,
    /// The From_ line after `From ` without its line end (sender and
    /// date), cut at [`FROM_LINE_LIMIT`] bytes.
    pub from_line: Vec<u8>,
    /// Offset of the message's first header byte.
    pub offset: u64,
    /// Length in the file (quoted, without the separating blank line).
    pub length: u64,
    /// Lines in the message (LF count).
    pub lines: u64,
    /// Lines whose `>` the reader removes.
    pub quoted_lines: u64,
}

impl MboxMessage {
    /// The message's size as [`MessageReader`] returns it (un-quoted).
    pub fn unquoted_length(&self) -> u64 {
        self.length.saturating_sub(self.quoted_lines)
    }

    /// The envelope sender from the From_ line (up to the first space).
    pub fn sender(&self) -> &[u8] {
        let end = self
            .from_line
            .iter()
            .position(|&b| b == b' ')
            .unwrap_or(self.from_line.len());
        self.from_line.get(..end).unwrap_or_default()
    }
}

/// Reads a line, or a piece of at most `limit` bytes of one, into `buf`.
/// Returns false at end of input.
fn read_piece<R: BufRead>(reader: &mut R, buf: &mut Vec<u8>, limit: usize) -> io::Result<bool> {
    buf.clear();
    loop {
        let available = match reader.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(!buf.is_empty());
        }
        let room = limit.saturating_sub(buf.len());
        let window = available
            .get(..room.min(available.len()))
            .unwrap_or_default();
        let (take, done) = match window.iter().position(|&b| b == b'\n') {
            Some(nl) => (nl + 1, true),
            None => (window.len(), window.len() == room),
        };
        buf.extend_from_slice(window.get(..take).unwrap_or_default());
        reader.consume(take);
        if done {
            return Ok(true);
        }
    }
}

/// The message being collected by [`Messages`].
struct Current {
    message: MboxMessage,
    quoter: Quoter,
}

/// Iterator over the messages of an mbox, by offset and length.
///
/// A message starts at a line beginning with `From ` that is the first
/// line of the file or follows an empty line; it ends before the empty
/// line that precedes the next such line, or at the end of the file.
/// Text before the first From_ line is skipped.
pub struct Messages<R: Read> {
    reader: BufReader<R>,
    quoting: Quoting,
    pos: u64,
    piece: Vec<u8>,
    scratch: Vec<u8>,
    at_line_start: bool,
    previous_blank: bool,
    /// Length of the last complete line, when it was empty (1 or 2: `\r\n`).
    blank_len: u64,
    current: Option<Current>,
    done: bool,
}

/// The messages of `mbox` (read from its current position, taken as offset 0).
pub fn messages<R: Read>(mbox: R, quoting: Quoting) -> Messages<R> {
    Messages {
        reader: BufReader::with_capacity(BUFFER_SIZE, mbox),
        quoting,
        pos: 0,
        piece: Vec::with_capacity(LINE_PIECE_LIMIT),
        scratch: Vec::with_capacity(LINE_PIECE_LIMIT + 8),
        at_line_start: true,
        previous_blank: true,
        blank_len: 0,
        current: None,
        done: false,
    }
}

impl<R: Read> Messages<R> {
    /// Ends the current message at `end` (the start of the next From_
    /// line or the end of the file).
    fn close(&mut self, end: u64) -> Option<MboxMessage> {
        let mut current = self.current.take()?;
        current.quoter.finish(&mut self.scratch);
        let mut msg = current.message;
        msg.quoted_lines = current.quoter.changed();
        let mut end = end;
        if self.previous_blank
            && self.blank_len > 0
            && end.saturating_sub(self.blank_len) >= msg.offset
        {
            end -= self.blank_len;
            msg.lines = msg.lines.saturating_sub(1);
        }
        msg.length = end.saturating_sub(msg.offset);
        Some(msg)
    }

    fn step(&mut self) -> io::Result<Option<MboxMessage>> {
        loop {
            let start = self.pos;
            if !read_piece(&mut self.reader, &mut self.piece, LINE_PIECE_LIMIT)? {
                self.done = true;
                return Ok(self.close(start));
            }
            let len = u64::try_from(self.piece.len()).unwrap_or(u64::MAX);
            self.pos = self.pos.saturating_add(len);
            let line_start = self.at_line_start;
            let ends_line = self.piece.last() == Some(&b'\n');
            self.at_line_start = ends_line;
            if line_start && self.previous_blank && self.piece.starts_with(b"From ") {
                let finished = self.close(start);
                let text = self.piece.get(5..).unwrap_or_default();
                let text = text.strip_suffix(b"\n").unwrap_or(text);
                let text = text.strip_suffix(b"\r").unwrap_or(text);
                let keep = text.len().min(FROM_LINE_LIMIT);
                let mut from_line = text.get(..keep).unwrap_or_default().to_vec();
                // The rest of an overlong From_ line is skipped.
                let mut offset = self.pos;
                if !ends_line {
                    offset = self.skip_rest_of_line()?;
                    from_line.truncate(FROM_LINE_LIMIT);
                }
                self.current = Some(Current {
                    message: MboxMessage {
                        from_offset: start,
                        from_line,
                        offset,
                        length: 0,
                        lines: 0,
                        quoted_lines: 0,
                    },
                    quoter: Quoter::new(self.quoting, Direction::Unquote),
                });
                self.previous_blank = false;
                self.blank_len = 0;
                if finished.is_some() {
                    return Ok(finished);
                }
                continue;
            }
            if let Some(current) = self.current.as_mut() {
                self.scratch.clear();
                current.quoter.feed(&self.piece, &mut self.scratch);
                if ends_line {
                    current.message.lines = current.message.lines.saturating_add(1);
                }
            }
            if ends_line {
                let blank = line_start && (self.piece == b"\n" || self.piece == b"\r\n");
                self.previous_blank = blank;
                self.blank_len = if blank { len } else { 0 };
            } else {
                self.previous_blank = false;
                self.blank_len = 0;
            }
        }
    }

    /// Consumes the remainder of an overlong line; returns the new position.
    fn skip_rest_of_line(&mut self) -> io::Result<u64> {
        loop {
            if !read_piece(&mut self.reader, &mut self.piece, LINE_PIECE_LIMIT)? {
                self.at_line_start = true;
                return Ok(self.pos);
            }
            let len = u64::try_from(self.piece.len()).unwrap_or(u64::MAX);
            self.pos = self.pos.saturating_add(len);
            if self.piece.last() == Some(&b'\n') {
                self.at_line_start = true;
                return Ok(self.pos);
            }
        }
    }
}

impl<R: Read> Iterator for Messages<R> {
    type Item = io::Result<MboxMessage>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(m)) => Some(Ok(m)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Streams one message of an mbox, un-quoting `>From ` lines.
pub struct MessageReader<R: Read> {
    inner: io::Take<R>,
    quoter: Quoter,
    input: Vec<u8>,
    output: Vec<u8>,
    position: usize,
    finished: bool,
}

/// Opens the message `msg` of `mbox` for reading (seeks to it).
///
/// # Errors
///
/// The seek's error.
pub fn open_message<R: Read + Seek>(
    mut mbox: R,
    msg: &MboxMessage,
    quoting: Quoting,
) -> io::Result<MessageReader<R>> {
    mbox.seek(SeekFrom::Start(msg.offset))?;
    Ok(MessageReader {
        inner: mbox.take(msg.length),
        quoter: Quoter::new(quoting, Direction::Unquote),
        input: vec![0u8; BUFFER_SIZE],
        output: Vec::with_capacity(BUFFER_SIZE + 8),
        position: 0,
        finished: false,
    })
}

impl<R: Read> Read for MessageReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.position >= self.output.len() {
            if self.finished {
                return Ok(0);
            }
            self.output.clear();
            self.position = 0;
            let n = self.inner.read(&mut self.input)?;
            if n == 0 {
                self.quoter.finish(&mut self.output);
                self.finished = true;
            } else {
                self.quoter
                    .feed(self.input.get(..n).unwrap_or_default(), &mut self.output);
            }
        }
        let available = self.output.get(self.position..).unwrap_or_default();
        let n = available.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), available.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.position += n;
        Ok(n)
    }
}

/// An mbox held with the same locks a delivery takes, for a reading
/// session that may also remove messages (pop3d, imapd). Deliveries wait
/// (and after their bounded wait defer) while it is held; drop it soon.
pub struct LockedMbox {
    path: PathBuf,
    file: File,
    quoting: Quoting,
    _dotlock: Option<DotLock>,
}

/// Opens and locks an existing mbox for reading and removing messages,
/// taking the dotlock and the fcntl lock as `options` say.
///
/// # Errors
///
/// [`Error::NotFound`] when there is no mailbox (an empty one, for POP3),
/// [`Error::Locked`], [`Error::NotRegularFile`], [`Error::HardLinked`],
/// [`Error::Io`].
pub fn lock(path: &Path, options: &Options) -> Result<LockedMbox> {
    let dotlock = take_dotlock(path, options)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Error::NotFound {
                    path: path.to_path_buf(),
                }
            } else {
                open_error(path, e)
            }
        })?;
    let meta = file.metadata().map_err(|e| Error::io("fstat", path, e))?;
    if !meta.file_type().is_file() {
        return Err(Error::NotRegularFile {
            path: path.to_path_buf(),
            kind: file_kind(&meta.file_type()),
        });
    }
    if meta.nlink() > 1 {
        return Err(Error::HardLinked {
            path: path.to_path_buf(),
            links: meta.nlink(),
        });
    }
    if options.fcntl {
        fcntl_lock(&file, path, &options.lock)?;
    }
    // Replaced by rename while we waited: the caller may simply retry.
    match std::fs::symlink_metadata(path) {
        Ok(now) if now.dev() == meta.dev() && now.ino() == meta.ino() => {}
        _ => {
            return Err(Error::Locked {
                path: path.to_path_buf(),
            });
        }
    }
    Ok(LockedMbox {
        path: path.to_path_buf(),
        file,
        quoting: options.quoting,
        _dotlock: dotlock,
    })
}

impl LockedMbox {
    /// The mailbox path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every message, in file order.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when reading fails.
    pub fn messages(&self) -> Result<Vec<MboxMessage>> {
        let mut file = &self.file;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io("seek", &self.path, e))?;
        messages(file, self.quoting)
            .collect::<io::Result<Vec<_>>>()
            .map_err(|e| Error::io("read", &self.path, e))
    }

    /// Streams one message, un-quoted.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the seek fails.
    pub fn open_message(&self, msg: &MboxMessage) -> Result<MessageReader<&File>> {
        open_message(&self.file, msg, self.quoting).map_err(|e| Error::io("seek", &self.path, e))
    }

    /// Removes the messages whose From_ line starts at one of
    /// `from_offsets` (POP3 DELE at QUIT, IMAP EXPUNGE), by moving the
    /// rest down in place, truncating and fsyncing. The rewrite is in
    /// place because users may not create files in the spool directory; a
    /// crash in the middle can leave a damaged mailbox, as with other
    /// mbox readers that compact in place.
    ///
    /// # Errors
    ///
    /// [`Error::Io`].
    pub fn remove_messages(&mut self, from_offsets: &[u64]) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let all = self.messages()?;
        let end = self
            .file
            .metadata()
            .map_err(|e| Error::io("fstat", &self.path, e))?
            .len();
        let mut doomed: Vec<(u64, u64)> = Vec::new();
        for (i, msg) in all.iter().enumerate() {
            if from_offsets.contains(&msg.from_offset) {
                let next = all.get(i + 1).map_or(end, |m| m.from_offset);
                doomed.push((msg.from_offset, next));
            }
        }
        let Some(&(first, _)) = doomed.first() else {
            return Ok(());
        };
        let mut write = first;
        let mut buf = vec![0u8; BUFFER_SIZE];
        for (k, &(_, stop)) in doomed.iter().enumerate() {
            let keep_end = doomed.get(k + 1).map_or(end, |&(start, _)| start);
            let mut read = stop;
            while read < keep_end {
                let want = usize::try_from(keep_end - read)
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                let chunk = buf.get_mut(..want).unwrap_or_default();
                let n = self
                    .file
                    .read_at(chunk, read)
                    .map_err(|e| Error::io("read", &self.path, e))?;
                if n == 0 {
                    break;
                }
                self.file
                    .write_all_at(chunk.get(..n).unwrap_or_default(), write)
                    .map_err(|e| Error::io("write", &self.path, e))?;
                let n = u64::try_from(n).unwrap_or(u64::MAX);
                read = read.saturating_add(n);
                write = write.saturating_add(n);
            }
        }
        self.file
            .set_len(write)
            .and_then(|()| self.file.sync_all())
            .map_err(|e| Error::io("truncate", &self.path, e))
    }
}

/// Longest part of a line [`find_delivery`] looks at.
const SCAN_LINE_MAX: usize = 1024;

/// Looks through the mbox at `path` for a message delivered to
/// `delivered_to` from queue file `queue_id`: one whose header has
/// `Delivered-To: <delivered_to>` (any case) and a line with
/// `id <queue_id>` followed by `;`, a space or the line end (cleanup's
/// Received header). A retried delivery that may already have been made
/// (the agent died after the fsync) checks this first. A missing mailbox
/// holds none.
///
/// Streaming: one pass, a bounded line buffer, only header lines looked at.
///
/// # Errors
///
/// [`Error::NotRegularFile`], [`Error::Io`].
pub fn find_delivery(path: &Path, delivered_to: &str, queue_id: &str) -> Result<bool> {
    let file = match open_for_reading(path) {
        Ok(f) => f,
        Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    if queue_id.is_empty() || delivered_to.is_empty() {
        return Ok(false);
    }
    let id_token = format!("id {queue_id}");
    let mut reader = BufReader::with_capacity(BUFFER_SIZE, file);
    let mut line = Vec::with_capacity(SCAN_LINE_MAX);
    let mut previous_blank = true;
    let mut in_header = false;
    let (mut seen_to, mut seen_id) = (false, false);
    loop {
        let more = read_line_bounded(&mut reader, &mut line, SCAN_LINE_MAX)
            .map_err(|e| Error::io("read", path, e))?;
        if !more {
            return Ok(false);
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let blank = text.is_empty();
        if previous_blank && text.starts_with(b"From ") {
            in_header = true;
            (seen_to, seen_id) = (false, false);
        } else if in_header {
            if blank {
                in_header = false;
            } else {
                let t = String::from_utf8_lossy(text);
                if let Some((name, value)) = t.split_once(':')
                    && name.eq_ignore_ascii_case("Delivered-To")
                    && value.trim().eq_ignore_ascii_case(delivered_to)
                {
                    seen_to = true;
                }
                if let Some(at) = t.find(&id_token) {
                    let after = t.get(at + id_token.len()..).unwrap_or("");
                    let before_ok =
                        at == 0 || t.get(..at).is_some_and(|b| b.ends_with([' ', '\t']));
                    let after_ok = after.is_empty() || after.starts_with([';', ' ', '\t', '\r']);
                    seen_id |= before_ok && after_ok;
                }
                if seen_to && seen_id {
                    return Ok(true);
                }
            }
        }
        previous_blank = blank;
    }
}

/// Reads one line (up to and including `\n`) keeping at most `max` bytes
/// of it in `line`; false at the end of the input.
fn read_line_bounded<R: BufRead>(r: &mut R, line: &mut Vec<u8>, max: usize) -> io::Result<bool> {
    line.clear();
    let mut any = false;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(any);
        }
        any = true;
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (buf.get(..=i).unwrap_or(buf), true),
            None => (buf, false),
        };
        let n = chunk.len();
        let room = max.saturating_sub(line.len());
        line.extend_from_slice(chunk.get(..room.min(n)).unwrap_or(&[]));
        r.consume(n);
        if done {
            return Ok(true);
        }
    }
}

/// Opens an mbox for reading without following a symlink.
///
/// # Errors
///
/// [`Error::NotRegularFile`] for a symlink or non-regular file, [`Error::Io`].
pub fn open_for_reading(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| open_error(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io("fstat", path, e))?;
    if !meta.file_type().is_file() {
        return Err(Error::NotRegularFile {
            path: path.to_path_buf(),
            kind: file_kind(&meta.file_type()),
        });
    }
    Ok(file)
}

#[cfg(test)]
mod tests;
