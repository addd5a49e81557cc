//! Logging in Postfix's line shapes:
//! `postfix/smtpd[4242]: 3F2A1C0B7: client=host[192.0.2.1]`, with
//! `warning: `, `error: `, `fatal: ` and `panic: ` prefixes, to syslog
//! (facility mail) or to maillog_file when set.
//!
//! CONTRACT (other crates build against these; keep them):
//!
//! ```text
//! maillog::init(opts: maillog::Options)   // once per process, before logging
//! maillog::info!(fmt, ...)   maillog::warning!(...)   maillog::error!(...)
//! maillog::fatal!(...) -> !  // logs "fatal: ..." and exits 1
//! maillog::printable(text: &str, max: usize) -> String  // for untrusted text
//! ```
//!
//! Added API: [`init`] takes anything that converts into a [`Setup`], so
//! `init(Options { .. })` keeps working and `init(Setup::new(opts)
//! .hostname(..).facility(..))` sets the rest; [`try_init`] reports a
//! maillog_file that cannot be opened; [`set_program`] renames the program
//! while keeping the open destinations (after fork, after chroot);
//! [`bug!`] logs `panic: ` and aborts; [`parse_file_permissions`]; [`verbose!`] logs when
//! [`set_verbose`] raised the level (a daemon's `-v`); [`printable_bytes`].
//!
//! # Destinations
//!
//! - maillog_file set: each record is appended to that file as
//!   `Nov 23 12:11:53 myhostname postfix/smtpd[4242]: text`, the shape
//!   Postfix's postlogd writes (local time, `%b %d %H:%M:%S`, first label
//!   of the host name), so pflogsumm and friends read it. The file is
//!   opened at init, in append mode, so it still works after chroot and is
//!   shared by all processes; each record is one write(2) call, so records
//!   of concurrent processes never interleave. `/dev/stdout` and
//!   `/dev/stderr` mean the process's own descriptors; other paths must be
//!   regular files, not symbolic links, with one link. A new file is
//!   created with maillog_file_permissions ([`Setup::file_permissions`],
//!   0600 unless set); a set-gid program never creates it
//!   ([`Setup::create_file`]: it appends when the file exists and logs to
//!   syslog otherwise); with [`Setup::file_prefixes`] the path must start
//!   with one of maillog_file_prefixes (Postfix checks that in every
//!   program; here the callers that pass them). The day has a
//!   leading zero as in postlogd's records (`Nov 03`), where syslogd
//!   writes `Nov  3`; pflogsumm reads both, but its `-d today` matches
//!   only the second form on days 1 to 9 (as with Postfix's own file).
//! - otherwise syslog: RFC 3164 datagrams such as
//!   `<22>Nov 23 12:11:53 postfix/smtpd[4242]: text` on `/dev/log`
//!   (facility from syslog_facility, default mail; severity info 6,
//!   warning 4, error 3, fatal and panic 2), connected at init, before
//!   chroot, and reconnected after an error. Without a syslogd the records
//!   are dropped, unless stderr copies were asked for.
//! - `stderr: true` also copies each record to stderr as
//!   `postconf: warning: text`, the shape of a Postfix command run from a
//!   terminal.
//! - before [`init`], records go to stderr under the executable's name.
//!
//! Every record is one line: control characters in the text become `?`
//! and the text is cut at [`TEXT_LIMIT`] bytes. Text from clients, headers
//! or files should additionally go through [`printable`] with a short cut.
//!
//! # Example
//!
//! ```no_run
//! maillog::init(maillog::Setup::new(maillog::Options::new("smtpd", "postfix"))
//!     .maillog_file("/var/log/postfix.log")
//!     .hostname("mail.example.org"));
//! maillog::info!("{}: client={}", "3F2A1C0B7", maillog::printable("host[192.0.2.1]", 100));
//! maillog::warning!("hostname {} does not resolve", "example.net");
//! ```

mod file;
mod line;
mod syslog;

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};

use jiff::Timestamp;
use jiff::tz::TimeZone;

pub use file::{DEFAULT_FILE_PERMISSIONS, parse_file_permissions};
pub use line::{TEXT_LIMIT, printable, printable_bytes};
pub use syslog::{DEFAULT_SOCKET, Facility};

use line::CleanText;
use syslog::SyslogSocket;

/// Where and under which name a process logs.
#[derive(Debug, Clone)]
pub struct Options {
    /// syslog_name, normally `postfix`.
    pub syslog_name: String,
    /// The program name: `smtpd`, `master`, `postconf`.
    pub program: String,
    /// maillog_file; `None` logs to syslog.
    pub maillog_file: Option<PathBuf>,
    /// Also copy each line to stderr (commands run by a user do this).
    pub stderr: bool,
}

impl Options {
    /// Options for `program` logging as `syslog_name/program` to syslog,
    /// without stderr copies.
    pub fn new(program: &str, syslog_name: &str) -> Options {
        Options {
            syslog_name: syslog_name.to_owned(),
            program: program.to_owned(),
            maillog_file: None,
            stderr: false,
        }
    }
}

/// Everything [`init`] needs: the [`Options`] plus the host name for
/// maillog_file records, the syslog facility and the syslog socket path.
/// Built from `Options` with `Setup::new` or `From`, then adjusted with the
/// builder methods.
#[derive(Debug, Clone)]
pub struct Setup {
    options: Options,
    hostname: Option<String>,
    facility: Facility,
    syslog_socket: PathBuf,
    file: file::FilePolicy,
}

impl Setup {
    /// Defaults: the system host name, facility mail, `/dev/log`.
    pub fn new(options: Options) -> Setup {
        Setup {
            options,
            hostname: None,
            facility: Facility::Mail,
            syslog_socket: PathBuf::from(DEFAULT_SOCKET),
            file: file::FilePolicy::default(),
        }
    }

    /// The mode a new maillog_file is created with
    /// (maillog_file_permissions, see [`parse_file_permissions`]); 0600
    /// unless set.
    #[must_use]
    pub fn file_permissions(mut self, mode: u32) -> Setup {
        self.file.mode = mode;
        self
    }

    /// maillog_file_prefixes: maillog_file must start with one of these
    /// (comma or space separated), or [`try_init`] fails with
    /// [`Error::BadPrefix`]. Not checked unless set.
    #[must_use]
    pub fn file_prefixes(mut self, list: &str) -> Setup {
        self.file.prefixes = Some(
            list.split([',', ' ', '\t', '\n'])
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
        );
        self
    }

    /// Whether a missing maillog_file may be created (the default). A
    /// set-gid program run by a user passes false: it appends to the file
    /// only when it exists, and logs to syslog otherwise, as Postfix's
    /// set-gid programs never create it (they log through postlogd).
    #[must_use]
    pub fn create_file(mut self, create: bool) -> Setup {
        self.file.create = create;
        self
    }

    /// Logs to this file (maillog_file) instead of syslog.
    #[must_use]
    pub fn maillog_file(mut self, path: impl Into<PathBuf>) -> Setup {
        self.options.maillog_file = Some(path.into());
        self
    }

    /// Logs to syslog instead of maillog_file (the fallback when the file
    /// cannot be opened).
    #[must_use]
    pub fn without_maillog_file(mut self) -> Setup {
        self.options.maillog_file = None;
        self
    }

    /// Copies each record to stderr too.
    #[must_use]
    pub fn stderr(mut self, on: bool) -> Setup {
        self.options.stderr = on;
        self
    }

    /// The host name in maillog_file records (myhostname); only its first
    /// label is written.
    #[must_use]
    pub fn hostname(mut self, name: &str) -> Setup {
        self.hostname = Some(name.to_owned());
        self
    }

    /// The syslog facility (syslog_facility).
    #[must_use]
    pub fn facility(mut self, facility: Facility) -> Setup {
        self.facility = facility;
        self
    }

    /// The syslog socket; `/dev/log` unless a test says otherwise.
    #[must_use]
    pub fn syslog_socket(mut self, path: impl Into<PathBuf>) -> Setup {
        self.syslog_socket = path.into();
        self
    }
}

impl From<Options> for Setup {
    fn from(options: Options) -> Setup {
        Setup::new(options)
    }
}

/// Errors from setting up logging.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// maillog_file could not be opened for appending.
    OpenMaillog {
        /// The maillog_file path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// maillog_file does not start with any of maillog_file_prefixes.
    BadPrefix {
        /// The maillog_file path.
        path: PathBuf,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::OpenMaillog { path, source } => {
                write!(f, "open maillog_file {}: {source}", path.display())
            }
            // Postfix's text (maillog_client.c).
            Error::BadPrefix { path } => write!(
                f,
                "maillog_file value '{}' does not match any prefix in maillog_file_prefixes",
                path.display()
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::OpenMaillog { source, .. } => Some(source),
            Error::BadPrefix { .. } => None,
        }
    }
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Normal operation.
    Info,
    /// Something is wrong but work goes on.
    Warning,
    /// An error; the operation failed.
    Error,
    /// The process exits.
    Fatal,
    /// A bug.
    Panic,
}

impl Severity {
    /// The text between `program[pid]: ` and the message.
    pub fn prefix(self) -> &'static str {
        match self {
            Severity::Info => "",
            Severity::Warning => "warning: ",
            Severity::Error => "error: ",
            Severity::Fatal => "fatal: ",
            Severity::Panic => "panic: ",
        }
    }

    /// The syslog severity, as Postfix maps them: info 6, warning 4,
    /// error 3, fatal and panic 2 (crit).
    pub fn syslog_level(self) -> u8 {
        match self {
            Severity::Info => 6,
            Severity::Warning => 4,
            Severity::Error => 3,
            Severity::Fatal | Severity::Panic => 2,
        }
    }
}

/// Where records go.
#[derive(Debug)]
enum Sink {
    File(File),
    Syslog(SyslogSocket),
    /// maillog_file could not be opened; stderr only.
    Nowhere,
}

/// One process's logging state: names, time zone and open destinations.
#[derive(Debug)]
struct Logger {
    /// `postfix/smtpd`
    tag: String,
    /// `smtpd`, for stderr copies.
    program: String,
    /// First label of the host name.
    hostname: String,
    facility: Facility,
    /// Loaded at init, because /etc/localtime is not there after chroot.
    tz: TimeZone,
    sink: Sink,
    stderr: bool,
}

/// Loads the local time zone. A set-uid or set-gid process does not trust
/// TZ from its caller (Postfix scrubs it for the same reason). Without TZ
/// the zone is /etc/localtime, read directly: jiff's own lookup walks the
/// whole of /usr/share/zoneinfo to name the zone (about 60 system calls
/// and 90 KiB kept in every process start), and the name is not needed.
fn local_time_zone() -> TimeZone {
    use nix::unistd::{getegid, geteuid, getgid, getuid};
    let trusted = getuid() == geteuid() && getgid() == getegid();
    if trusted && std::env::var_os("TZ").is_some_and(|tz| !tz.is_empty()) {
        return TimeZone::try_system().unwrap_or(TimeZone::UTC);
    }
    std::fs::read("/etc/localtime")
        .ok()
        .and_then(|data| TimeZone::tzif("localtime", &data).ok())
        .unwrap_or(TimeZone::UTC)
}

/// The local time zone, as this process loaded it at [`init`] (before
/// any chroot hid /etc/localtime), or loaded now when nothing called
/// [`init`]: for Date headers and queue listings, in the same zone as
/// the log.
pub fn time_zone() -> TimeZone {
    with_logger(|state| state.as_ref().map(|l| l.tz.clone())).unwrap_or_else(local_time_zone)
}

fn system_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

fn make_tag(syslog_name: &str, program: &str) -> String {
    let tag = format!("{syslog_name}/{program}");
    printable(&tag, 128).replace([' ', ':', '[', ']'], "?")
}

impl Logger {
    fn open(setup: &Setup) -> Result<Logger, Error> {
        let file = match &setup.options.maillog_file {
            Some(path) => setup.file.open(path)?,
            None => None,
        };
        let sink = match file {
            Some(f) => Sink::File(f),
            None => Sink::Syslog(SyslogSocket::open(&setup.syslog_socket)),
        };
        Ok(Logger::new(setup, sink))
    }

    fn new(setup: &Setup, sink: Sink) -> Logger {
        let opts = &setup.options;
        let hostname = match &setup.hostname {
            Some(h) => h.clone(),
            None => system_hostname(),
        };
        Logger {
            tag: make_tag(&opts.syslog_name, &opts.program),
            program: make_tag_part(&opts.program),
            hostname: line::first_label(&hostname),
            facility: setup.facility,
            tz: local_time_zone(),
            sink,
            stderr: opts.stderr,
        }
    }

    fn rename(&mut self, syslog_name: Option<&str>, program: &str) {
        let syslog_name = match syslog_name {
            Some(name) => name.to_owned(),
            None => self
                .tag
                .split_once('/')
                .map_or_else(|| "postfix".to_owned(), |(name, _)| name.to_owned()),
        };
        self.tag = make_tag(&syslog_name, program);
        self.program = make_tag_part(program);
    }

    /// `Nov 23 12:11:53 host postfix/smtpd[4242]: warning: text\n`
    fn file_record(&self, sev: Severity, text: &str, now: Timestamp, pid: u32) -> Vec<u8> {
        let dt = line::civil(&self.tz, now);
        format!(
            "{} {} {}[{pid}]: {}{text}\n",
            line::file_stamp(&dt),
            self.hostname,
            self.tag,
            sev.prefix()
        )
        .into_bytes()
    }

    /// `<20>Nov 23 12:11:53 postfix/smtpd[4242]: warning: text`
    fn syslog_record(&self, sev: Severity, text: &str, now: Timestamp, pid: u32) -> Vec<u8> {
        let dt = line::civil(&self.tz, now);
        format!(
            "<{}>{} {}[{pid}]: {}{text}",
            self.facility.priority(sev.syslog_level()),
            line::syslog_stamp(&dt),
            self.tag,
            sev.prefix()
        )
        .into_bytes()
    }

    fn log(&mut self, sev: Severity, text: &str) {
        let now = Timestamp::now();
        let pid = pid();
        match &self.sink {
            Sink::File(_) => {
                let record = self.file_record(sev, text, now, pid);
                if let Sink::File(file) = &mut self.sink {
                    // One write call per record. A failing log file cannot
                    // be reported anywhere better than stderr.
                    if let Err(e) = file.write_all(&record) {
                        let msg = format!("write maillog_file: {e}");
                        stderr_record(&self.program, Severity::Warning, &msg);
                    }
                }
            }
            Sink::Syslog(_) => {
                let record = self.syslog_record(sev, text, now, pid);
                if let Sink::Syslog(sock) = &mut self.sink {
                    // No syslogd: dropped, like syslog(3) does.
                    let _ = sock.send(&record);
                }
            }
            Sink::Nowhere => {}
        }
        if self.stderr || matches!(self.sink, Sink::Nowhere) {
            stderr_record(&self.program, sev, text);
        }
    }
}

fn make_tag_part(program: &str) -> String {
    printable(program, 64).replace([' ', ':', '[', ']'], "?")
}

/// `postconf: warning: text`, written with one call.
fn stderr_record(program: &str, sev: Severity, text: &str) {
    let record = format!("{program}: {}{text}\n", sev.prefix());
    let _ = io::stderr().write_all(record.as_bytes());
}

/// The name used before [`init`]: the executable's base name.
fn fallback_program() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| {
            Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .map(|n| make_tag_part(&n))
        .unwrap_or_else(|| "postfix".to_owned())
}

/// This process's id for log lines, asked of the kernel once (it was a
/// getpid call per line: 13 a message in `scripts/bench smtp`); 0 until
/// then. A child of fork() forgets it (the handler below), so a forked
/// process that logs asks again.
static PID: AtomicU32 = AtomicU32::new(0);
static PID_ATFORK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

extern "C" fn forget_pid() {
    PID.store(0, Ordering::Relaxed);
}

/// The process id, cached (see [`PID`]).
fn pid() -> u32 {
    let cached = PID.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    let registered = *PID_ATFORK.get_or_init(|| {
        // SAFETY: pthread_atfork only records the handler; the handler
        // runs in the child right after fork() and does nothing but an
        // atomic store, which is async-signal-safe. A failure to register
        // (ENOMEM) leaves the pid uncached.
        #[allow(unsafe_code)]
        let rc = unsafe { nix::libc::pthread_atfork(None, None, Some(forget_pid)) };
        rc == 0
    });
    let pid = std::process::id();
    if registered {
        PID.store(pid, Ordering::Relaxed);
    }
    pid
}

static LOGGER: Mutex<Option<Logger>> = Mutex::new(None);
static VERBOSE: AtomicU32 = AtomicU32::new(0);

fn with_logger<R>(f: impl FnOnce(&mut Option<Logger>) -> R) -> R {
    // A panic while logging must not silence the process for good.
    let mut guard = LOGGER.lock().unwrap_or_else(PoisonError::into_inner);
    f(&mut guard)
}

/// Sets where this process logs; call before chroot, as early as the
/// configuration is known. May be called again (a new program name, new
/// settings after reload); the old destinations are closed.
///
/// Never fails: when maillog_file cannot be opened it says so on stderr
/// and logs to stderr only. Use [`try_init`] to treat that as fatal.
pub fn init(setup: impl Into<Setup>) {
    let setup = setup.into();
    if let Err(e) = try_init(setup.clone()) {
        let logger = Logger::new(&setup, Sink::Nowhere);
        stderr_record(
            &logger.program,
            Severity::Warning,
            &format!("{e}; logging to stderr"),
        );
        with_logger(|state| *state = Some(logger));
    }
}

/// Like [`init`], but reports a maillog_file that cannot be opened, and
/// then leaves the previous settings in place.
///
/// # Errors
/// [`Error::OpenMaillog`] when maillog_file cannot be opened for append.
pub fn try_init(setup: impl Into<Setup>) -> Result<(), Error> {
    let logger = Logger::open(&setup.into())?;
    with_logger(|state| *state = Some(logger));
    Ok(())
}

/// Changes the program name (and, when given, syslog_name) of records
/// from now on, keeping the destinations that are open: for a child
/// after fork, or after chroot when nothing can be opened again. Does
/// nothing before [`init`].
pub fn set_program(program: &str, syslog_name: Option<&str>) {
    with_logger(|state| {
        if let Some(logger) = state.as_mut() {
            logger.rename(syslog_name, program);
        }
    });
}

/// Sets the verbose level (the number of `-v` options); [`verbose!`]
/// logs only when it is above zero.
pub fn set_verbose(level: u32) {
    VERBOSE.store(level, Ordering::Relaxed);
}

/// The verbose level set by [`set_verbose`].
pub fn verbose_level() -> u32 {
    VERBOSE.load(Ordering::Relaxed)
}

/// Writes one line. Use the macros instead.
pub fn write(sev: Severity, args: fmt::Arguments<'_>) {
    let text = CleanText::format(args, TEXT_LIMIT);
    with_logger(|state| match state.as_mut() {
        Some(logger) => logger.log(sev, &text),
        None => stderr_record(&fallback_program(), sev, &text),
    });
}

/// Logs `fatal: ...` and exits with status 1. Use [`fatal!`].
pub fn fatal_exit(args: fmt::Arguments<'_>) -> ! {
    write(Severity::Fatal, args);
    std::process::exit(1)
}

/// Logs `panic: ...` and aborts (a core dump where enabled). For bugs
/// only, never for bad input. Use [`bug!`].
pub fn panic_abort(args: fmt::Arguments<'_>) -> ! {
    write(Severity::Panic, args);
    std::process::abort()
}

/// Logs an informational line.
#[macro_export]
macro_rules! info { ($($a:tt)*) => { $crate::write($crate::Severity::Info, format_args!($($a)*)) } }
/// Logs a `warning: ` line.
#[macro_export]
macro_rules! warning { ($($a:tt)*) => { $crate::write($crate::Severity::Warning, format_args!($($a)*)) } }
/// Logs an `error: ` line.
#[macro_export]
macro_rules! error { ($($a:tt)*) => { $crate::write($crate::Severity::Error, format_args!($($a)*)) } }
/// Logs a `fatal: ` line and exits with status 1.
#[macro_export]
macro_rules! fatal { ($($a:tt)*) => { $crate::fatal_exit(format_args!($($a)*)) } }
/// Logs a `panic: ` line and aborts: for bugs (a broken invariant), never
/// for bad input.
#[macro_export]
macro_rules! bug { ($($a:tt)*) => { $crate::panic_abort(format_args!($($a)*)) } }
/// Logs an informational line when the verbose level is above zero.
#[macro_export]
macro_rules! verbose {
    ($($a:tt)*) => {
        if $crate::verbose_level() > 0 {
            $crate::write($crate::Severity::Info, format_args!($($a)*))
        }
    }
}

#[cfg(test)]
mod tests;
