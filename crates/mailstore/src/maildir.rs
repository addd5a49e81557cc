//! Maildir delivery and reading, with Maildir++ folders.
//!
//! Delivery follows the Maildir specification (cr.yp.to/proto/maildir.html)
//! as Postfix's local does: the message is written to `tmp/` under a name
//! unique to this host, process and instant, fsynced, hard-linked into
//! `new/` (falling back to rename where hard links are not supported), and
//! `new/` itself is fsynced, so a message that [`deliver`] reported is on
//! disk. The final name also carries the file's device and inode
//! (`V<dev>I<ino>`, as Postfix does) and, for readers, its size (`,S=<n>`,
//! Maildir++), so pop3d and imapd need no stat.
//!
//! Names look like `1763900000.M123456P4242Q7V803I1a2b.host,S=1234`; in the
//! host name `/` becomes `\057`, `:` becomes `\072` and `,` `\054`.
//!
//! Reading: [`Maildir::list`] gives every message in `new/` and `cur/` with
//! its flags (the `:2,FLAGS` suffix); [`Maildir::move_to_cur`] and
//! [`Maildir::set_flags`] rename. Folders are Maildir++ (`.Name/` beside
//! `cur/`, with a `maildirfolder` file); their names are the raw Maildir++
//! names, IMAP's modified UTF-7 is the IMAP server's business.

use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::stream::{LimitedWriter, copy_content, effective_limit, write_prepend};

/// How a Maildir delivery is done.
#[derive(Debug, Clone)]
pub struct Options {
    /// Largest message file in bytes, prepended lines included
    /// (mailbox_size_limit, which Postfix applies to each Maildir file);
    /// None or Some(0) for no limit.
    pub size_limit: Option<u64>,
    /// Append `,S=<size>,W=<size with CRLF line ends>` to the name
    /// (Maildir++; Dovecot and Courier read them, pop3d and imapd too).
    pub size_in_name: bool,
    /// Create the maildir and its tmp/, new/ and cur/ (mode 0700) when missing.
    pub create: bool,
    /// A tag naming this delivery (`[A-Za-z0-9_]`, at most 64 bytes; the
    /// delivery agents use queue id and recipient index): it goes into
    /// the name as `X<tag>` after the inode, so that [`find_tagged`] can
    /// tell whether a retried delivery already happened. Other text is
    /// left out of the name.
    pub tag: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            size_limit: None,
            size_in_name: true,
            create: true,
            tag: None,
        }
    }
}

/// A delivered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Its final path in `new/`.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

/// Delivers one message into the maildir at `dir`: the `prepend` lines
/// (each without line end, e.g. `Delivered-To: bob@example.org`), then the
/// content, streamed from `content`.
///
/// # Errors
///
/// [`Error::SizeLimit`] past `size_limit`, [`Error::Source`] when `content`
/// fails, [`Error::BadPrependLine`], [`Error::Io`] for the file system.
/// On any error the file in `tmp/` is removed.
pub fn deliver(
    dir: &Path,
    options: &Options,
    prepend: &[&str],
    content: &mut dyn Read,
) -> Result<Delivered> {
    let (delivered, new_dir) = deliver_unsynced(dir, options, prepend, content)?;
    new_dir
        .sync_all()
        .map_err(|e| Error::io("fsync", &dir.join("new"), e))?;
    Ok(delivered)
}

/// As [`deliver`], without the last step: the message file is written,
/// fsynced and linked into `new/`, but `new/` itself is not fsynced. The
/// caller gets `new/` open and must fsync it (once for any number of
/// deliveries into it: group commit) before it reports any of them
/// delivered; until then a crash may lose the name.
///
/// # Errors
///
/// As [`deliver`].
pub fn deliver_unsynced(
    dir: &Path,
    options: &Options,
    prepend: &[&str],
    content: &mut dyn Read,
) -> Result<(Delivered, File)> {
    write_pending(dir, options, prepend, content)?.finish()
}

/// A message written into `tmp/`, neither durable nor named in `new/`
/// yet ([`write_pending`]). A batch writes all its messages first, starts
/// their writeback together ([`Pending::start_writeback`]), then syncs
/// them, several at once ([`Pending::sync`]: concurrent fsyncs share the
/// disk's cache flushes and a journal's commits), and links each
/// ([`Pending::finish_synced`]); [`Pending::finish`] does both for one.
/// Dropped unfinished, the file stays in `tmp/`, where readers never look
/// (a crash leaves such files too; mail clients remove old ones).
#[derive(Debug)]
pub struct Pending {
    file: File,
    tmp_dir: File,
    new_dir: File,
    tmp_name: String,
    final_name: String,
    maildir: PathBuf,
    size: u64,
}

/// Writes one message into `tmp/` of the maildir at `dir` (created when
/// [`Options::create`] says so), as [`deliver`] does, and stops there.
/// `tmp/` and `new/` are opened now, with the caller's rights: finishing
/// links the file between those two directories, whatever their names
/// point to by then. Finish it with the same rights (the directories'
/// write permission is checked at the link).
///
/// # Errors
///
/// As [`deliver`]; on any error the file in `tmp/` is removed.
pub fn write_pending(
    dir: &Path,
    options: &Options,
    prepend: &[&str],
    content: &mut dyn Read,
) -> Result<Pending> {
    use nix::fcntl::OFlag;
    let (tmp_dir, new_dir) = open_tmp_new(dir, options.create)?;
    let unique = UniqueName::new();
    let tmp_name = unique.tmp_name();
    let tmp = dir.join("tmp").join(&tmp_name);
    let file = nix::fcntl::openat(
        &tmp_dir,
        tmp_name.as_str(),
        OFlag::O_WRONLY
            | OFlag::O_CREAT
            | OFlag::O_EXCL
            | OFlag::O_NOFOLLOW
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .map(File::from)
    .map_err(|e| Error::io("create", &tmp, e.into()))?;
    let written = write_file(&file, &tmp, options, prepend, content).and_then(|sizes| {
        let meta = file.metadata().map_err(|e| Error::io("fstat", &tmp, e))?;
        Ok((sizes, meta))
    });
    let ((size, crlf_size), meta) = match written {
        Ok(w) => w,
        Err(e) => {
            let _ = unlink_at(&tmp_dir, &tmp_name);
            return Err(e);
        }
    };
    let sizes = options.size_in_name.then_some((size, crlf_size));
    let tag = options.tag.as_deref().filter(|t| valid_tag(t));
    let final_name = unique.final_name(meta.dev(), meta.ino(), tag, sizes);
    Ok(Pending {
        file,
        tmp_dir,
        new_dir,
        tmp_name,
        final_name,
        maildir: dir.to_path_buf(),
        size,
    })
}

impl Pending {
    /// Starts writing the file's blocks without waiting for them, so that
    /// the syncs of a batch find them written or on their way. Linux
    /// starts writeback of a file's dirty pages on POSIX_FADV_DONTNEED
    /// (pages under writeback are not dropped); a failure only costs time.
    pub fn start_writeback(&self) {
        let _ = nix::fcntl::posix_fadvise(
            &self.file,
            0,
            0,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        );
    }

    /// Fsyncs the file and links it into `new/` (by rename where hard
    /// links are not supported); `new/` itself is not fsynced: it is
    /// returned open for that, as [`deliver_unsynced`] does.
    ///
    /// # Errors
    ///
    /// The sync or the link failed; the file in `tmp/` is removed then.
    pub fn finish(self) -> Result<(Delivered, File)> {
        match self.sync() {
            Ok(()) => self.finish_synced(),
            Err(e) => {
                self.discard();
                Err(e)
            }
        }
    }

    /// Fsyncs the file: the first half of [`Pending::finish`], for a batch
    /// that syncs its files from several threads at once (concurrent
    /// fsyncs share the disk's cache flushes) and then finishes each with
    /// [`Pending::finish_synced`]. Needs no rights: the file is open.
    ///
    /// # Errors
    ///
    /// The sync failed (the file is left in `tmp/`: discard it).
    pub fn sync(&self) -> Result<()> {
        self.file.sync_all().map_err(|e| {
            let tmp = self.maildir.join("tmp").join(&self.tmp_name);
            Error::io("fsync", &tmp, e)
        })
    }

    /// Links a file that [`Pending::sync`] made durable into `new/`, as
    /// [`Pending::finish`] does after its sync (a second fsync would cost
    /// another flush of the disk's cache for nothing).
    ///
    /// # Errors
    ///
    /// The link failed; the file in `tmp/` is removed then.
    pub fn finish_synced(self) -> Result<(Delivered, File)> {
        let delivered = self.delivered();
        if let Err(e) = self.link(&delivered.path) {
            let _ = unlink_at(&self.tmp_dir, &self.tmp_name);
            return Err(e);
        }
        Ok((delivered, self.new_dir))
    }

    /// Removes the file from `tmp/`: the message is not delivered.
    pub fn discard(self) {
        let _ = unlink_at(&self.tmp_dir, &self.tmp_name);
    }

    /// What [`Pending::finish`] will report: the path in `new/`, the size.
    pub fn delivered(&self) -> Delivered {
        Delivered {
            path: self.maildir.join("new").join(&self.final_name),
            size: self.size,
        }
    }

    /// The maildir it goes to.
    pub fn maildir(&self) -> &Path {
        &self.maildir
    }

    /// Moves tmp/x to new/y without ever replacing an existing message.
    fn link(&self, target: &Path) -> Result<()> {
        let (from, to) = (self.tmp_name.as_str(), self.final_name.as_str());
        match nix::unistd::linkat(
            &self.tmp_dir,
            from,
            &self.new_dir,
            to,
            nix::fcntl::AtFlags::empty(),
        ) {
            Ok(()) => {
                let _ = unlink_at(&self.tmp_dir, from);
                Ok(())
            }
            // File systems without hard links (some FUSE and network
            // ones): the name is unique (it holds the inode), so rename is
            // safe.
            Err(
                nix::errno::Errno::EPERM | nix::errno::Errno::ENOTSUP | nix::errno::Errno::EXDEV,
            ) => nix::fcntl::renameat(&self.tmp_dir, from, &self.new_dir, to)
                .map_err(|e| Error::io("rename", target, e.into())),
            Err(e) => Err(Error::io("link", target, e.into())),
        }
    }
}

/// Writes the prepended lines and the content; returns the size and the
/// size with CRLF line ends.
fn write_file(
    file: &File,
    tmp: &Path,
    options: &Options,
    prepend: &[&str],
    content: &mut dyn Read,
) -> Result<(u64, u64)> {
    let room = effective_limit(options.size_limit);
    let mut out = LimitedWriter::new(file, tmp, room, room.unwrap_or(u64::MAX));
    write_prepend(&mut out, prepend)?;
    copy_content(content, &mut out, None)?;
    out.flush()?;
    Ok((out.written(), out.crlf_size()))
}

fn unlink_at(dir: &File, name: &str) -> nix::Result<()> {
    nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir)
}

/// Opens `tmp/` and `new/` of the maildir `dir`; when one is missing and
/// `create` says so, creates the maildir (tmp/, new/ and cur/, as
/// Postfix does when tmp/ or new/ is missing) and opens them again. The
/// usual case, a maildir that exists, costs the two opens only.
fn open_tmp_new(dir: &Path, create_missing: bool) -> Result<(File, File)> {
    let (tmp_path, new_path) = (dir.join("tmp"), dir.join("new"));
    let open_both = || Ok((open_dir(&tmp_path)?, open_dir(&new_path)?));
    match open_both() {
        Err(Error::Io { source, .. })
            if create_missing && source.kind() == io::ErrorKind::NotFound =>
        {
            create(dir)?;
            open_both()
        }
        other => other,
    }
}

/// Opens a directory to fsync it (so a new name in it survives a crash).
fn open_dir(dir: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOCTTY)
        .open(dir)
        .map_err(|e| Error::io("open", dir, e))
}

/// A tag that may go into a name: `[A-Za-z0-9_]`, 1 to 64 bytes.
fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 64
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Looks in `new/` and `cur/` of the maildir `dir` for a message
/// delivered with [`Options::tag`] `tag` (a reader may have moved it to
/// cur/ and added flags; the tag stays). A missing maildir holds none.
/// One directory read each, nothing opened.
///
/// # Errors
///
/// [`Error::Io`] when a directory exists but cannot be read.
pub fn find_tagged(dir: &Path, tag: &str) -> Result<Option<PathBuf>> {
    if !valid_tag(tag) {
        return Ok(None);
    }
    let needle = format!("X{tag}.");
    for sub in [Location::New, Location::Cur] {
        let d = dir.join(sub.dir());
        let entries = match fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("read", &d, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("read", &d, e))?;
            let name = entry.file_name();
            // The tag sits after `I<hex inode>`; the flags after `:`.
            let unique = name
                .to_str()
                .and_then(|n| n.split(':').next())
                .unwrap_or("");
            if unique.contains(&needle) {
                return Ok(Some(entry.path()));
            }
        }
    }
    Ok(None)
}

/// Creates the maildir `dir` (and missing parents) with tmp/, new/ and cur/,
/// each mode 0700. Existing directories are left as they are.
///
/// # Errors
///
/// [`Error::Io`] when a directory cannot be created.
pub fn create(dir: &Path) -> Result<()> {
    for sub in ["tmp", "new", "cur"] {
        let path = dir.join(sub);
        if path.is_dir() {
            continue;
        }
        match DirBuilder::new().recursive(true).mode(0o700).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => {}
            Err(e) => return Err(Error::io("create directory", &path, e)),
        }
    }
    Ok(())
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The parts of a unique Maildir name.
struct UniqueName {
    secs: u64,
    micros: u32,
    pid: u32,
    counter: u64,
}

impl UniqueName {
    fn new() -> UniqueName {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        UniqueName {
            secs: now.as_secs(),
            micros: now.subsec_micros(),
            pid: std::process::id(),
            counter: COUNTER.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// `secs.M<usec>P<pid>Q<n>.host`: unique among this host's processes.
    fn tmp_name(&self) -> String {
        format!(
            "{}.M{}P{}Q{}.{}",
            self.secs,
            self.micros,
            self.pid,
            self.counter,
            hostname_for_names()
        )
    }

    /// The name in new/: adds the device and inode, and the sizes.
    fn final_name(
        &self,
        dev: u64,
        ino: u64,
        tag: Option<&str>,
        sizes: Option<(u64, u64)>,
    ) -> String {
        let tag = tag.map(|t| format!("X{t}")).unwrap_or_default();
        let mut name = format!(
            "{}.M{}P{}Q{}V{:x}I{:x}{tag}.{}",
            self.secs,
            self.micros,
            self.pid,
            self.counter,
            dev,
            ino,
            hostname_for_names()
        );
        if let Some((size, crlf_size)) = sizes {
            name.push_str(&format!(",S={size},W={crlf_size}"));
        }
        name
    }
}

/// This host's name with `/`, `:` and `,` escaped as octal, for Maildir
/// and lock file names.
pub(crate) fn hostname_for_names() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let raw = nix::unistd::gethostname()
            .ok()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        escape_hostname(&raw)
    })
}

fn escape_hostname(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '/' => out.push_str("\\057"),
            ':' => out.push_str("\\072"),
            ',' => out.push_str("\\054"),
            c if c.is_control() || c.is_whitespace() => out.push('_'),
            c => out.push(c),
        }
    }
    if out.is_empty() {
        out.push_str("localhost");
    }
    out
}

/// Where a message sits in a maildir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// `new/`: delivered, not yet seen by a reader.
    New,
    /// `cur/`: seen by a reader; has flags.
    Cur,
}

impl Location {
    pub(crate) fn dir(self) -> &'static str {
        match self {
            Location::New => "new",
            Location::Cur => "cur",
        }
    }
}

/// Maildir flags: ASCII letters, kept sorted and without repeats, as the
/// specification requires (`D`raft, `F`lagged, `P`assed, `R`eplied,
/// `S`een, `T`rashed; lower case letters are keywords, Dovecot style).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Flags(String);

impl Flags {
    /// Flags from letters in any order; other characters are dropped.
    pub fn new(letters: &str) -> Flags {
        let mut v: Vec<char> = letters.chars().filter(char::is_ascii_alphabetic).collect();
        v.sort_unstable();
        v.dedup();
        Flags(v.into_iter().collect())
    }

    /// True when `flag` is set.
    pub fn contains(&self, flag: char) -> bool {
        self.0.contains(flag)
    }

    /// These flags plus `flag`.
    pub fn with(&self, flag: char) -> Flags {
        let mut s = self.0.clone();
        s.push(flag);
        Flags::new(&s)
    }

    /// These flags less `flag`.
    pub fn without(&self, flag: char) -> Flags {
        Flags(self.0.chars().filter(|&c| c != flag).collect())
    }

    /// The letters, sorted.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One message found in a maildir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its current path.
    pub path: PathBuf,
    /// new/ or cur/.
    pub location: Location,
    /// The unique part of its name (before `:`), stable across flag changes.
    pub unique: String,
    /// Its flags (from `:2,FLAGS`; empty in new/).
    pub flags: Flags,
    /// Its size from `,S=<n>` in the name, when present.
    pub size: Option<u64>,
    /// Its size with CRLF line ends from `,W=<n>` in the name, when
    /// present: the size POP3 LIST and IMAP RFC822.SIZE report.
    pub crlf_size: Option<u64>,
}

impl Entry {
    /// Parses a file name in new/ or cur/; None for names to skip (dot files).
    pub(crate) fn parse(dir: &Path, location: Location, name: &str) -> Option<Entry> {
        if name.starts_with('.') || name.is_empty() {
            return None;
        }
        let (unique, info) = match name.split_once(':') {
            Some((u, i)) => (u, Some(i)),
            None => (name, None),
        };
        let flags = match info.and_then(|i| i.strip_prefix("2,")) {
            Some(f) => Flags::new(f),
            None => Flags::default(),
        };
        let field = |key: &str| -> Option<u64> {
            unique
                .split(',')
                .skip(1)
                .find_map(|f| f.strip_prefix(key))
                .and_then(|s| s.parse().ok())
        };
        let size = field("S=");
        let crlf_size = field("W=");
        Some(Entry {
            path: dir.join(name),
            location,
            unique: unique.to_string(),
            flags,
            size,
            crlf_size,
        })
    }

    /// The size: from the name when it has one, else from stat.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the file went away; [`Error::Io`].
    pub fn size(&self) -> Result<u64> {
        if let Some(size) = self.size {
            return Ok(size);
        }
        fs::metadata(&self.path)
            .map(|m| m.len())
            .map_err(|e| not_found_or_io("stat", &self.path, e))
    }

    /// Opens the message for reading.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when it was moved or expunged meanwhile; [`Error::Io`].
    pub fn open(&self) -> Result<File> {
        OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NOCTTY)
            .open(&self.path)
            .map_err(|e| not_found_or_io("open", &self.path, e))
    }
}

/// Delivery order of two unique names, as Dovecot sorts new messages
/// before it gives them UIDs (maildir-filename.c): the seconds before the
/// first dot as a number, then, when both names have them, the
/// microseconds after `M` in the next part as a number, then the names as
/// bytes. Byte order alone puts `M99000` after `M150000` of the same
/// second.
pub(crate) fn delivery_order(a: &str, b: &str) -> std::cmp::Ordering {
    let (secs_a, rest_a) = leading_number(a);
    let (secs_b, rest_b) = leading_number(b);
    by_value(secs_a, secs_b)
        .then_with(|| match (micros(rest_a), micros(rest_b)) {
            (Some(x), Some(y)) => by_value(x, y),
            _ => std::cmp::Ordering::Equal,
        })
        .then_with(|| a.cmp(b))
}

/// The leading digits of `s` and what follows them.
fn leading_number(s: &str) -> (&str, &str) {
    s.split_at(s.bytes().take_while(u8::is_ascii_digit).count())
}

/// The digits after the first `M` of the part that starts `rest` (after
/// its dot, up to the next dot).
fn micros(rest: &str) -> Option<&str> {
    let part = rest.strip_prefix('.')?.split('.').next()?;
    let (_, after) = part.split_once('M')?;
    Some(leading_number(after).0)
}

/// Two digit strings compared as numbers of any length.
fn by_value(a: &str, b: &str) -> std::cmp::Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn not_found_or_io(op: &'static str, path: &Path, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::NotFound {
        Error::NotFound {
            path: path.to_path_buf(),
        }
    } else {
        Error::io(op, path, e)
    }
}

/// A maildir (the INBOX or a Maildir++ folder) to read and change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maildir {
    root: PathBuf,
}

impl Maildir {
    /// The maildir at `root` (nothing is checked or created).
    pub fn open(root: &Path) -> Maildir {
        Maildir {
            root: root.to_path_buf(),
        }
    }

    /// Its directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Delivers into this maildir; see [`deliver`].
    ///
    /// # Errors
    ///
    /// As [`deliver`].
    pub fn deliver(
        &self,
        options: &Options,
        prepend: &[&str],
        content: &mut dyn Read,
    ) -> Result<Delivered> {
        deliver(&self.root, options, prepend, content)
    }

    /// Every message in new/ and cur/, new/ first, each in delivery order
    /// ([`delivery_order`]).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a directory cannot be read; a missing new/ or cur/
    /// counts as empty.
    pub fn list(&self) -> Result<Vec<Entry>> {
        let mut all = Vec::new();
        for location in [Location::New, Location::Cur] {
            let dir = self.root.join(location.dir());
            let reader = match fs::read_dir(&dir) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("read directory", &dir, e)),
            };
            let mut here = Vec::new();
            for item in reader {
                let item = item.map_err(|e| Error::io("read directory", &dir, e))?;
                let name = item.file_name();
                if let Some(entry) = name.to_str().and_then(|n| Entry::parse(&dir, location, n)) {
                    here.push(entry);
                }
            }
            here.sort_by(|a, b| delivery_order(&a.unique, &b.unique));
            all.extend(here);
        }
        Ok(all)
    }

    /// Moves a message from new/ to cur/ with `flags` (a reader has seen it).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when another session moved it first; [`Error::Io`].
    pub fn move_to_cur(&self, entry: &Entry, flags: &Flags) -> Result<Entry> {
        self.rename_entry(entry, flags)
    }

    /// Sets a message's flags (moving it to cur/ if it is in new/).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when it was moved or expunged; [`Error::Io`].
    pub fn set_flags(&self, entry: &Entry, flags: &Flags) -> Result<Entry> {
        self.rename_entry(entry, flags)
    }

    fn rename_entry(&self, entry: &Entry, flags: &Flags) -> Result<Entry> {
        let dir = self.root.join("cur");
        let name = format!("{}:2,{}", entry.unique, flags);
        let target = dir.join(&name);
        if target != entry.path {
            fs::rename(&entry.path, &target)
                .map_err(|e| not_found_or_io("rename", &entry.path, e))?;
        }
        Ok(Entry {
            path: target,
            location: Location::Cur,
            unique: entry.unique.clone(),
            flags: flags.clone(),
            size: entry.size,
            crlf_size: entry.crlf_size,
        })
    }

    /// Removes a message (expunge).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when it was already gone; [`Error::Io`].
    pub fn remove(&self, entry: &Entry) -> Result<()> {
        fs::remove_file(&entry.path).map_err(|e| not_found_or_io("remove", &entry.path, e))
    }

    /// The Maildir++ folders of this (top-level) maildir, by name
    /// (`Sent`, `Lists.rust`), sorted.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the directory cannot be read.
    pub fn folders(&self) -> Result<Vec<String>> {
        let reader =
            fs::read_dir(&self.root).map_err(|e| Error::io("read directory", &self.root, e))?;
        let mut names = Vec::new();
        for item in reader {
            let item = item.map_err(|e| Error::io("read directory", &self.root, e))?;
            let Some(name) = item.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let Some(folder) = name.strip_prefix('.') else {
                continue;
            };
            if check_folder_name(folder).is_err() {
                continue;
            }
            if item.path().join("cur").is_dir() {
                names.push(folder.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// The Maildir++ folder `name` (`.name/` in this maildir).
    ///
    /// # Errors
    ///
    /// [`Error::BadFolderName`].
    pub fn folder(&self, name: &str) -> Result<Maildir> {
        check_folder_name(name)?;
        Ok(Maildir {
            root: self.root.join(format!(".{name}")),
        })
    }

    /// Creates the Maildir++ folder `name` with tmp/, new/, cur/ and the
    /// `maildirfolder` marker file.
    ///
    /// # Errors
    ///
    /// [`Error::BadFolderName`], [`Error::FolderExists`], [`Error::Io`].
    pub fn create_folder(&self, name: &str) -> Result<Maildir> {
        let folder = self.folder(name)?;
        match DirBuilder::new().mode(0o700).create(&folder.root) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::FolderExists { path: folder.root });
            }
            Err(e) => return Err(Error::io("create directory", &folder.root, e)),
        }
        create(&folder.root)?;
        let marker = folder.root.join("maildirfolder");
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&marker)
            .map_err(|e| Error::io("create", &marker, e))?;
        Ok(folder)
    }

    /// Renames the folder `from` to `to`. Sub-folders (`from.x`) are the
    /// caller's to rename, as IMAP RENAME requires.
    ///
    /// # Errors
    ///
    /// [`Error::BadFolderName`], [`Error::NotFound`], [`Error::FolderExists`], [`Error::Io`].
    pub fn rename_folder(&self, from: &str, to: &str) -> Result<Maildir> {
        let old = self.folder(from)?;
        let new = self.folder(to)?;
        if fs::symlink_metadata(&new.root).is_ok() {
            return Err(Error::FolderExists { path: new.root });
        }
        fs::rename(&old.root, &new.root).map_err(|e| not_found_or_io("rename", &old.root, e))?;
        Ok(new)
    }

    /// Deletes the folder `name` with its messages. Only the folder's own
    /// directory goes; Maildir++ sub-folders are separate directories.
    ///
    /// # Errors
    ///
    /// [`Error::BadFolderName`], [`Error::NotFound`], [`Error::Io`].
    pub fn delete_folder(&self, name: &str) -> Result<()> {
        let folder = self.folder(name)?;
        // Rename first so a concurrent delivery or listing never sees a
        // half-removed folder.
        let doomed = self
            .root
            .join(format!(".{name}.deleted.{}", UniqueName::new().tmp_name()));
        fs::rename(&folder.root, &doomed)
            .map_err(|e| not_found_or_io("rename", &folder.root, e))?;
        fs::remove_dir_all(&doomed).map_err(|e| Error::io("remove", &doomed, e))
    }
}

/// Accepts a Maildir++ folder name: not empty, no leading, trailing or
/// doubled dot, no `/` and no control characters.
fn check_folder_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.starts_with('.')
        || name.ends_with('.')
        || name.contains("..")
        || name.contains(".deleted.")
        || name.len() > 255
        || name.chars().any(|c| c == '/' || c.is_control());
    if bad {
        return Err(Error::BadFolderName {
            name: name.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
