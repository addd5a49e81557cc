//! master.cf: one service per entry, the eight columns with Postfix's
//! meanings and defaults.

use crate::Error;
use std::path::Path;

/// The type column.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceType {
    /// A TCP listener; the service name is `[host:]port`.
    Inet,
    /// A Unix-domain stream socket under public/ or private/.
    Unix,
    /// A named pipe (wake-up fifo) under public/ or private/.
    Fifo,
    /// A Unix-domain socket that receives file descriptors.
    Pass,
}

/// One master.cf entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Service name (`smtp`, `127.0.0.1:10025`, `cleanup`).
    pub name: String,
    /// Type column.
    pub kind: ServiceType,
    /// Private column: the socket lives in private/ (default y).
    pub private: bool,
    /// Unpriv column: run as mail_owner (default y).
    pub unpriv: bool,
    /// Chroot column: chroot to queue_directory (default y in this skeleton; Postfix 3 says n).
    pub chroot: bool,
    /// Wakeup column in seconds, 0 for none; a trailing `?` sets `wakeup_if_used`.
    pub wakeup: u32,
    /// True when the wakeup column ended in `?`.
    pub wakeup_if_used: bool,
    /// Maxproc column; `-` means default_process_limit.
    pub maxproc: u32,
    /// The program name (first word of the command column).
    pub command: String,
    /// Remaining command words, `-o name=value` included as given.
    pub args: Vec<String>,
    /// The line the entry starts on, for diagnostics.
    pub line: usize,
}

impl Service {
    /// The `-o name=value` overrides in the command column.
    pub fn overrides(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut it = self.args.iter();
        while let Some(a) = it.next() {
            if a == "-o" {
                if let Some(kv) = it.next() {
                    if let Some((k, v)) = kv.split_once('=') {
                        out.push((k.to_string(), v.to_string()));
                    }
                }
            }
        }
        out
    }
}

/// Reads master.cf.
///
/// # Errors
/// The file cannot be read or an entry is malformed (the error names the line).
pub fn load(path: &Path) -> Result<Vec<Service>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut entries: Vec<(usize, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, e)) = entries.last_mut() {
                e.push(' ');
                e.push_str(line.trim());
                continue;
            }
        }
        entries.push((n + 1, line.to_string()));
    }
    let mut out = Vec::new();
    for (line, e) in entries {
        let w: Vec<&str> = e.split_whitespace().collect();
        let bad = |message: String| Error::Syntax {
            path: path.to_path_buf(),
            line,
            message,
        };
        if w.len() < 8 {
            return Err(bad("expected 8 or more fields".into()));
        }
        let flag = |s: &str, d: bool| match s {
            "-" => Ok(d),
            "y" => Ok(true),
            "n" => Ok(false),
            _ => Err(bad(format!("bad boolean field value: \"{s}\""))),
        };
        let kind = match w[1] {
            "inet" => ServiceType::Inet,
            "unix" => ServiceType::Unix,
            "fifo" => ServiceType::Fifo,
            "pass" => ServiceType::Pass,
            t => return Err(bad(format!("bad transport type: {t}"))),
        };
        let wake = w[5].trim_end_matches('?');
        out.push(Service {
            name: w[0].to_string(),
            kind,
            private: flag(w[2], true)?,
            unpriv: flag(w[3], true)?,
            chroot: flag(w[4], false)?,
            wakeup: if wake == "-" {
                0
            } else {
                wake.parse()
                    .map_err(|_| bad(format!("bad wakeup time: {}", w[5])))?
            },
            wakeup_if_used: w[5].ends_with('?'),
            maxproc: if w[6] == "-" {
                100
            } else {
                w[6].parse()
                    .map_err(|_| bad(format!("bad maxproc: {}", w[6])))?
            },
            command: w[7].to_string(),
            args: w[8..].iter().map(|s| s.to_string()).collect(),
            line,
        });
    }
    Ok(out)
}
