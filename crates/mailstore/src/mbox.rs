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
mod tests {
    use super::*;
    use crate::maildir::tests::{Failing, Pattern};
    use proptest::prelude::*;
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::sync::Arc;
    use std::time::Duration;

    fn quick() -> Options {
        Options {
            lock: LockOptions {
                attempts: 200,
                delay: Duration::from_millis(50),
                stale_after: Duration::from_secs(300),
            },
            time: Some(UNIX_EPOCH + Duration::from_secs(1_763_900_000)),
            utc_offset: Some(0),
            ..Options::default()
        }
    }

    /// Every message of the mbox at `path`, un-quoted.
    fn read_all(path: &Path, quoting: Quoting) -> Vec<(MboxMessage, Vec<u8>)> {
        let file = open_for_reading(path).unwrap();
        let list: Vec<MboxMessage> = messages(&file, quoting).map(|m| m.unwrap()).collect();
        list.into_iter()
            .map(|m| {
                let mut body = Vec::new();
                open_message(&file, &m, quoting)
                    .unwrap()
                    .read_to_end(&mut body)
                    .unwrap();
                assert_eq!(body.len() as u64, m.unquoted_length());
                (m, body)
            })
            .collect()
    }

    #[test]
    fn asctime_matches_libc() {
        assert_eq!(asctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(asctime(1_763_900_000), "Sun Nov 23 12:13:20 2025");
        assert_eq!(asctime(951_782_400), "Tue Feb 29 00:00:00 2000");
        assert_eq!(asctime(4_102_444_800), "Fri Jan  1 00:00:00 2100");
        assert_eq!(asctime(-1), "Wed Dec 31 23:59:59 1969");
        let t = UNIX_EPOCH + Duration::from_secs(1_763_900_000);
        assert_eq!(
            from_line("", t, 0),
            "From MAILER-DAEMON  Sun Nov 23 12:13:20 2025\n"
        );
        assert_eq!(
            from_line("a b@x", t, 3600),
            "From a_b@x  Sun Nov 23 13:13:20 2025\n"
        );
    }

    #[test]
    fn delivers_with_from_quoting_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bob");
        let first = b"Subject: one\n\nFrom the top\n>From already\nnot From here\nFrom";
        let d = deliver(
            &path,
            &quick(),
            "alice@example.org",
            &[
                "Return-Path: <alice@example.org>",
                "Delivered-To: bob@example.org",
            ],
            &mut &first[..],
        )
        .unwrap();
        assert_eq!(d.offset, 0);
        let second = b"Subject: two\n\nbody\n";
        let d2 = deliver(&path, &quick(), "", &[], &mut &second[..]).unwrap();
        let text = fs::read(&path).unwrap();
        assert_eq!(d2.offset, d.size);
        assert_eq!(text.len() as u64, d.size + d2.size);
        let expected = "From alice@example.org  Sun Nov 23 12:13:20 2025\n\
             Return-Path: <alice@example.org>\n\
             Delivered-To: bob@example.org\n\
             Subject: one\n\n>From the top\n>From already\nnot From here\nFrom\n\n\
             From MAILER-DAEMON  Sun Nov 23 12:13:20 2025\n\
             Subject: two\n\nbody\n\n";
        assert_eq!(String::from_utf8(text).unwrap(), expected);
        let all = read_all(&path, Quoting::Mboxo);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].0.sender(), b"alice@example.org");
        assert_eq!(all[0].0.from_offset, 0);
        assert_eq!(
            all[0].1,
            b"Return-Path: <alice@example.org>\nDelivered-To: bob@example.org\n\
              Subject: one\n\nFrom the top\nFrom already\nnot From here\nFrom\n"
        );
        assert_eq!(all[0].0.lines, 8);
        assert_eq!(all[0].0.quoted_lines, 2);
        assert_eq!(all[1].0.sender(), b"MAILER-DAEMON");
        assert_eq!(all[1].0.from_offset, d2.offset);
        assert_eq!(all[1].1, second);
        assert_eq!(all[1].0.lines, 3);
        // No lock file is left.
        assert!(!dir.path().join("bob.lock").exists());
        let mode = fs::metadata(&path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
    }

    #[test]
    fn reader_handles_long_lines_and_junk() {
        let mut text = b"junk before\n\n".to_vec();
        text.extend_from_slice(b"From ");
        text.extend(std::iter::repeat_n(b'x', 3 * LINE_PIECE_LIMIT));
        text.extend_from_slice(b"\nSubject: a\n\n");
        let long = vec![b'y'; 5 * LINE_PIECE_LIMIT + 3];
        text.extend_from_slice(&long);
        text.extend_from_slice(b"\nFrom inside a long line is no separator\n\nFrom b  date\nx\n\n");
        let all: Vec<MboxMessage> = messages(&text[..], Quoting::Mboxo)
            .map(|m| m.unwrap())
            .collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].from_line.len(), FROM_LINE_LIMIT);
        let mut first = Vec::new();
        open_message(io::Cursor::new(&text), &all[0], Quoting::Mboxo)
            .unwrap()
            .read_to_end(&mut first)
            .unwrap();
        let mut expected = b"Subject: a\n\n".to_vec();
        expected.extend_from_slice(&long);
        expected.extend_from_slice(b"\nFrom inside a long line is no separator\n");
        assert_eq!(first, expected);
        assert_eq!(all[1].sender(), b"b");
        assert_eq!(all[1].length, 2);
        assert!(messages(&b""[..], Quoting::Mboxo).next().is_none());
    }

    #[test]
    fn mailbox_without_closing_blank_line_is_padded() {
        let dir = tempfile::tempdir().unwrap();
        for (old, pad) in [
            (&b"From x  d\nbody"[..], &b"\n\n"[..]),
            (b"From x  d\nbody\n", b"\n"),
            (b"From x  d\nbody\n\n", b""),
            (b"\n", b""),
            (b"x", b"\n\n"),
        ] {
            let path = dir.path().join("bob");
            fs::write(&path, old).unwrap();
            deliver(&path, &quick(), "a@b", &[], &mut &b"new\n"[..]).unwrap();
            let text = fs::read(&path).unwrap();
            let mut want = old.to_vec();
            want.extend_from_slice(pad);
            want.extend_from_slice(b"From a@b  Sun Nov 23 12:13:20 2025\nnew\n\n");
            assert_eq!(text, want);
            let all = read_all(&path, Quoting::Mboxo);
            assert_eq!(all.last().unwrap().1, b"new\n");
            fs::remove_file(&path).unwrap();
        }
    }

    #[test]
    fn failing_source_leaves_mbox_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bob");
        deliver(
            &path,
            &quick(),
            "a@b",
            &[],
            &mut &b"Subject: kept\n\nok\n"[..],
        )
        .unwrap();
        let before = fs::read(&path).unwrap();
        let err = deliver(&path, &quick(), "a@b", &[], &mut Failing { good: 300_000 }).unwrap_err();
        assert!(matches!(err, Error::Source { .. }), "{err}");
        assert!(err.is_temporary());
        assert_eq!(fs::read(&path).unwrap(), before);
        assert!(!dir.path().join("bob.lock").exists());
        // A new mailbox that fails stays empty.
        let fresh = dir.path().join("carol");
        deliver(&fresh, &quick(), "a@b", &[], &mut Failing { good: 10 }).unwrap_err();
        assert_eq!(fs::read(&fresh).unwrap(), b"");
    }

    #[test]
    fn size_limit_truncates_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bob");
        deliver(&path, &quick(), "a@b", &[], &mut &b"small\n"[..]).unwrap();
        let before = fs::read(&path).unwrap();
        let options = Options {
            size_limit: Some(50_000),
            ..quick()
        };
        let err = deliver(
            &path,
            &options,
            "a@b",
            &[],
            &mut Pattern {
                len: 60_000,
                pos: 0,
            },
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::SizeLimit { limit: 50_000, .. }),
            "{err}"
        );
        assert!(!err.is_temporary());
        assert_eq!(fs::read(&path).unwrap(), before);
        deliver(
            &path,
            &options,
            "a@b",
            &[],
            &mut Pattern {
                len: 40_000,
                pos: 0,
            },
        )
        .unwrap();
    }

    #[test]
    fn symlink_and_other_non_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"precious\n").unwrap();
        let link = dir.path().join("bob");
        symlink(&target, &link).unwrap();
        let err = deliver(&link, &quick(), "a@b", &[], &mut &b"x\n"[..]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::NotRegularFile {
                    kind: FileKind::Symlink,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.status(), "5.2.0");
        assert_eq!(fs::read(&target).unwrap(), b"precious\n");
        // A dangling symlink is not followed to create a file either.
        let dangling = dir.path().join("carol");
        symlink(dir.path().join("elsewhere"), &dangling).unwrap();
        assert!(deliver(&dangling, &quick(), "a@b", &[], &mut &b"x\n"[..]).is_err());
        assert!(!dir.path().join("elsewhere").exists());
        // A directory.
        let sub = dir.path().join("dave");
        fs::create_dir(&sub).unwrap();
        let err = deliver(&sub, &quick(), "a@b", &[], &mut &b"x\n"[..]).unwrap_err();
        assert!(
            matches!(err, Error::NotRegularFile { .. } | Error::Io { .. }),
            "{err}"
        );
        // A FIFO.
        let fifo = dir.path().join("erin");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = deliver(&fifo, &quick(), "a@b", &[], &mut &b"x\n"[..]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::NotRegularFile {
                    kind: FileKind::Fifo,
                    ..
                }
            ),
            "{err}"
        );
        // A hard-linked mailbox.
        let hard = dir.path().join("frank");
        fs::hard_link(&target, &hard).unwrap();
        let err = deliver(&hard, &quick(), "a@b", &[], &mut &b"x\n"[..]).unwrap_err();
        assert!(matches!(err, Error::HardLinked { links: 2, .. }), "{err}");
        assert_eq!(fs::read(&target).unwrap(), b"precious\n");
        // Reading refuses a symlink too.
        assert!(matches!(
            lock(&link, &quick()),
            Err(Error::NotRegularFile {
                kind: FileKind::Symlink,
                ..
            })
        ));
        assert!(matches!(
            open_for_reading(&link),
            Err(Error::NotRegularFile {
                kind: FileKind::Symlink,
                ..
            })
        ));
    }

    #[test]
    fn new_mailbox_gets_owner_as_root() {
        if !nix::unistd::geteuid().is_root() {
            println!("skipped: needs root because it gives a new mailbox to another uid");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nobody");
        let options = Options {
            owner: Some((65534, 65534)),
            expected_owner: Some(65534),
            ..quick()
        };
        deliver(&path, &options, "a@b", &[], &mut &b"x\n"[..]).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
        // The second delivery finds it owned as expected.
        deliver(&path, &options, "a@b", &[], &mut &b"y\n"[..]).unwrap();
        assert_eq!(read_all(&path, Quoting::Mboxo).len(), 2);
    }

    #[test]
    fn wrong_owner_is_deferred() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bob");
        fs::write(&path, b"").unwrap();
        let me = nix::unistd::geteuid().as_raw();
        let options = Options {
            expected_owner: Some(me.wrapping_add(1)),
            ..quick()
        };
        let err = deliver(&path, &options, "a@b", &[], &mut &b"x\n"[..]).unwrap_err();
        assert!(matches!(err, Error::WrongOwner { .. }));
        assert!(err.is_temporary());
        let options = Options {
            expected_owner: Some(me),
            ..quick()
        };
        deliver(&path, &options, "a@b", &[], &mut &b"x\n"[..]).unwrap();
    }

    #[test]
    fn stale_dotlock_is_broken_fresh_one_waits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bob");
        let lock = dir.path().join("bob.lock");
        fs::write(&lock, b"").unwrap();
        let short = Options {
            lock: LockOptions {
                attempts: 3,
                delay: Duration::from_millis(20),
                stale_after: Duration::from_secs(300),
            },
            ..quick()
        };
        let err = deliver(&path, &short, "a@b", &[], &mut &b"x\n"[..]).unwrap_err();
        assert!(matches!(err, Error::Locked { .. }), "{err}");
        assert_eq!(err.status(), "4.2.0");
        assert!(lock.exists());
        assert_eq!(fs::read(&path).ok().unwrap_or_default(), b"");
        File::options()
            .write(true)
            .open(&lock)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(600))
            .unwrap();
        deliver(&path, &short, "a@b", &[], &mut &b"x\n"[..]).unwrap();
        assert!(!lock.exists());
        assert_eq!(read_all(&path, Quoting::Mboxo).len(), 1);
    }

    #[test]
    fn mailbox_replaced_while_waiting_gets_the_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bob");
        fs::write(&path, b"From a  d\nold\n\n").unwrap();
        let holder = File::options().read(true).write(true).open(&path).unwrap();
        crate::lock::fcntl_lock(&holder, &path, &LockOptions::default()).unwrap();
        let options = Options {
            dotlock: DotlockPolicy::Off,
            ..quick()
        };
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || deliver(&path, &options, "a@b", &[], &mut &b"x\n"[..]))
        };
        std::thread::sleep(Duration::from_millis(150));
        // An MUA rewrites the mailbox by rename, then unlocks.
        let fresh = dir.path().join("bob.new");
        fs::write(&fresh, b"From a  d\nrewritten\n\n").unwrap();
        fs::rename(&fresh, &path).unwrap();
        drop(holder);
        writer.join().unwrap().unwrap();
        let all = read_all(&path, Quoting::Mboxo);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].1, b"rewritten\n");
        assert_eq!(all[1].1, b"x\n");
    }

    #[test]
    fn foreign_fcntl_lock_is_respected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bob");
        let holder = File::create(&path).unwrap();
        crate::lock::fcntl_lock(&holder, &path, &LockOptions::default()).unwrap();
        let short = Options {
            lock: LockOptions {
                attempts: 2,
                delay: Duration::from_millis(20),
                stale_after: Duration::from_secs(300),
            },
            ..quick()
        };
        let err = deliver(&path, &short, "a@b", &[], &mut &b"x\n"[..]).unwrap_err();
        assert!(matches!(err, Error::Locked { .. }), "{err}");
        // The dotlock taken before the fcntl lock was released.
        assert!(!dir.path().join("bob.lock").exists());
        drop(holder);
        deliver(&path, &short, "a@b", &[], &mut &b"x\n"[..]).unwrap();
    }

    /// A body that identifies its writer and message on every line and is
    /// large enough to need many write() calls.
    fn tagged_body(writer: &str, n: usize) -> Vec<u8> {
        let mut body = format!("Subject: {writer} {n}\n\n").into_bytes();
        let lines = if n.is_multiple_of(5) { 4000 } else { 20 };
        for i in 0..lines {
            body.extend_from_slice(format!("{writer} {n} line {i}\n").as_bytes());
            if i % 7 == 0 {
                body.extend_from_slice(format!("From {writer} {n} {i}\n").as_bytes());
            }
        }
        body
    }

    fn check_tagged(path: &Path, writers: &[String], per_writer: usize) {
        let all = read_all(path, Quoting::Mboxo);
        assert_eq!(all.len(), writers.len() * per_writer);
        let mut seen = std::collections::HashSet::new();
        for (_, body) in &all {
            let text = String::from_utf8(body.clone()).unwrap();
            let subject = text
                .lines()
                .next()
                .unwrap()
                .strip_prefix("Subject: ")
                .unwrap();
            let (w, n) = subject.split_once(' ').unwrap();
            let n: usize = n.parse().unwrap();
            assert_eq!(body, &tagged_body(w, n), "message {subject} damaged");
            assert!(seen.insert((w.to_string(), n)), "{subject} twice");
        }
    }

    #[test]
    fn concurrent_threads_never_interleave() {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let writers: Vec<String> = (0..4).map(|t| format!("t{t}")).collect();
        let handles: Vec<_> = writers
            .iter()
            .cloned()
            .map(|w| {
                let dir = Arc::clone(&dir);
                std::thread::spawn(move || {
                    let path = dir.path().join("bob");
                    for n in 0..15 {
                        let body = tagged_body(&w, n);
                        deliver(&path, &quick(), "a@b", &[], &mut &body[..]).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        check_tagged(&dir.path().join("bob"), &writers, 15);
    }

    #[test]
    fn locked_reader_removes_messages_and_blocks_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bob");
        assert!(matches!(lock(&path, &quick()), Err(Error::NotFound { .. })));
        for n in 0..6 {
            let body = tagged_body("w", n);
            deliver(&path, &quick(), "a@b", &[], &mut &body[..]).unwrap();
        }
        let mut held = lock(&path, &quick()).unwrap();
        let list = held.messages().unwrap();
        assert_eq!(list.len(), 6);
        let mut third = Vec::new();
        held.open_message(&list[2])
            .unwrap()
            .read_to_end(&mut third)
            .unwrap();
        assert_eq!(third, tagged_body("w", 2));
        // A delivery meanwhile waits and then defers.
        let short = Options {
            lock: LockOptions {
                attempts: 2,
                delay: Duration::from_millis(20),
                stale_after: Duration::from_secs(300),
            },
            ..quick()
        };
        let err = deliver(&path, &short, "a@b", &[], &mut &b"x\n"[..]).unwrap_err();
        assert!(matches!(err, Error::Locked { .. }));
        // Remove the first, two middle ones and the last.
        let doomed: Vec<u64> = [0, 2, 3, 5].iter().map(|&i| list[i].from_offset).collect();
        held.remove_messages(&doomed).unwrap();
        held.remove_messages(&[]).unwrap();
        drop(held);
        assert!(!dir.path().join("bob.lock").exists());
        let left = read_all(&path, Quoting::Mboxo);
        assert_eq!(left.len(), 2);
        assert_eq!(left[0].1, tagged_body("w", 1));
        assert_eq!(left[1].1, tagged_body("w", 4));
        deliver(&path, &short, "a@b", &[], &mut &b"x\n"[..]).unwrap();
        assert_eq!(read_all(&path, Quoting::Mboxo).len(), 3);
    }

    const CHILD_ENV: &str = "MAILSTORE_TEST_CHILD_MBOX";

    /// Runs only as a child of concurrent_processes_never_interleave.
    #[test]
    fn child_writer() {
        let (Ok(path), Ok(name)) = (
            std::env::var(CHILD_ENV),
            std::env::var("MAILSTORE_TEST_WRITER"),
        ) else {
            return;
        };
        for n in 0..15 {
            let body = tagged_body(&name, n);
            deliver(Path::new(&path), &quick(), "a@b", &[], &mut &body[..]).unwrap();
        }
    }

    #[test]
    fn concurrent_processes_never_interleave() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bob");
        let exe = std::env::current_exe().unwrap();
        let writers: Vec<String> = (0..3).map(|p| format!("p{p}")).collect();
        let children: Vec<_> = writers
            .iter()
            .map(|w| {
                std::process::Command::new(&exe)
                    .args(["--exact", "mbox::tests::child_writer", "--test-threads=1"])
                    .env(CHILD_ENV, &path)
                    .env("MAILSTORE_TEST_WRITER", w)
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
        check_tagged(&path, &writers, 15);
    }

    /// Lines that exercise quoting: From_ look-alikes, `>` runs, blanks.
    fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
        let line = prop_oneof![
            Just(b"From x".to_vec()),
            Just(b"From ".to_vec()),
            Just(b">From y".to_vec()),
            Just(b">>From z".to_vec()),
            Just(b"From".to_vec()),
            Just(b">".to_vec()),
            Just(Vec::new()),
            Just(b"\r".to_vec()),
            proptest::collection::vec(any::<u8>().prop_filter("no LF", |b| *b != b'\n'), 0..40),
        ];
        (proptest::collection::vec(line, 0..30), any::<bool>()).prop_map(|(lines, end)| {
            let mut body = lines.join(&b'\n');
            if end && !body.is_empty() {
                body.push(b'\n');
            }
            body
        })
    }

    /// What a message reads back as: the last line ended.
    fn normalized(body: &[u8]) -> Vec<u8> {
        let mut v = body.to_vec();
        if !v.is_empty() && v.last() != Some(&b'\n') {
            v.push(b'\n');
        }
        v
    }

    fn mboxo_safe(body: &[u8]) -> bool {
        !body.split(|&b| b == b'\n').any(|l| {
            let rest = l.iter().skip_while(|&&b| b == b'>');
            l.first() == Some(&b'>') && rest.copied().collect::<Vec<u8>>().starts_with(b"From ")
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn reader_never_panics_and_stays_in_bounds(
            text in proptest::collection::vec(
                prop_oneof![
                    Just(b"From a  d\n".to_vec()),
                    Just(b"\n".to_vec()),
                    Just(b">From b\n".to_vec()),
                    Just(b"\r\n".to_vec()),
                    proptest::collection::vec(any::<u8>(), 0..30),
                ],
                0..40,
            ).prop_map(|parts| parts.concat())
        ) {
            for quoting in [Quoting::Mboxo, Quoting::Mboxrd] {
                let mut previous_end = 0u64;
                for m in messages(&text[..], quoting) {
                    let m = m.unwrap();
                    prop_assert!(m.from_offset >= previous_end);
                    prop_assert!(m.offset > m.from_offset);
                    let end = m.offset + m.length;
                    prop_assert!(end <= text.len() as u64);
                    previous_end = end;
                    let mut body = Vec::new();
                    open_message(io::Cursor::new(&text), &m, quoting)
                        .unwrap()
                        .read_to_end(&mut body)
                        .unwrap();
                    prop_assert_eq!(body.len() as u64, m.unquoted_length());
                }
            }
        }

        #[test]
        fn mboxrd_round_trips_any_body(bodies in proptest::collection::vec(body_strategy(), 1..4)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("bob");
            let options = Options { quoting: Quoting::Mboxrd, ..quick() };
            for body in &bodies {
                deliver(&path, &options, "a@b", &["Delivered-To: bob@x"], &mut &body[..]).unwrap();
            }
            let all = read_all(&path, Quoting::Mboxrd);
            prop_assert_eq!(all.len(), bodies.len());
            for ((_, got), body) in all.iter().zip(&bodies) {
                let mut want = b"Delivered-To: bob@x\n".to_vec();
                want.extend_from_slice(&normalized(body));
                prop_assert_eq!(got, &want);
            }
        }

        #[test]
        fn mboxo_round_trips_bodies_without_quoted_lines(
            bodies in proptest::collection::vec(body_strategy().prop_filter("mboxo-safe", |b| mboxo_safe(b)), 1..4)
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("bob");
            for body in &bodies {
                deliver(&path, &quick(), "a@b", &[], &mut &body[..]).unwrap();
            }
            let all = read_all(&path, Quoting::Mboxo);
            prop_assert_eq!(all.len(), bodies.len());
            for ((_, got), body) in all.iter().zip(&bodies) {
                prop_assert_eq!(got, &normalized(body));
            }
        }
    }
}
