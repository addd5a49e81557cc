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

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

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

struct State {
    opts: Options,
    file: Option<std::fs::File>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// Sets where this process logs. Call once, before chroot when logging to syslog.
pub fn init(opts: Options) {
    let file = opts.maillog_file.as_ref().and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    if let Ok(mut g) = STATE.lock() {
        *g = Some(State { opts, file });
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

/// Writes one line. Use the macros instead.
pub fn write(sev: Severity, args: fmt::Arguments<'_>) {
    let prefix = match sev {
        Severity::Info => "",
        Severity::Warning => "warning: ",
        Severity::Error => "error: ",
        Severity::Fatal => "fatal: ",
        Severity::Panic => "panic: ",
    };
    let Ok(mut g) = STATE.lock() else { return };
    let pid = std::process::id();
    match g.as_mut() {
        Some(st) => {
            let tag = format!("{}/{}[{}]", st.opts.syslog_name, st.opts.program, pid);
            if let Some(f) = st.file.as_mut() {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let _ = writeln!(f, "{now} localhost {tag}: {prefix}{args}");
            }
            if st.opts.stderr || st.file.is_none() {
                let _ = writeln!(std::io::stderr(), "{tag}: {prefix}{args}");
            }
        }
        None => {
            let _ = writeln!(std::io::stderr(), "postfix: {prefix}{args}");
        }
    }
}

/// Makes untrusted text safe to log: non-printable bytes become `?`, and
/// the result is cut at `max` characters.
pub fn printable(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
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
macro_rules! fatal { ($($a:tt)*) => {{ $crate::write($crate::Severity::Fatal, format_args!($($a)*)); ::std::process::exit(1) }} }
