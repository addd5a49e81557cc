//! Per-message status logs: bounce/<id>, defer/<id> and trace/<id>.
//!
//! The bounce daemon appends one [`Record`] per recipient result (a
//! permanent failure to bounce/, a temporary one to defer/, a success the
//! sender asked to hear of to trace/); it reads them back to build a
//! delivery status notification. showq reads defer/<id> to tell mailq why a
//! recipient is still queued. This module is the one definition of the file
//! format, so both sides agree.
//!
//! # Synopsis
//!
//! ```text
//! status_log::append(queue_dir, Queue::Defer, &id, &record)?;   // one write + fsync
//! let log = status_log::read(queue_dir, Queue::Defer, &id)?;    // Option<StatusLog>
//! let last = log.latest();                                      // last record per recipient
//! status_log::remove(queue_dir, Queue::Bounce, &id)?;
//! ```
//!
//! # Format
//!
//! A log is a text file of records, one line each, in the order they were
//! appended. A record is tab-separated `name=value` fields, first
//! `recipient=`, then `original=`, `orcpt=` (absent when there is no DSN
//! ORCPT), `status=` (enhanced status code), `action=`, `relay=`,
//! `reason=` and `time=` (seconds since the epoch), ending with a newline:
//!
//! ```text
//! recipient=bob@example.org<TAB>original=bob<TAB>status=4.4.1<TAB>action=delayed<TAB>relay=none<TAB>reason=connect to x: Connection refused<TAB>time=1795000000
//! ```
//!
//! In values, `%`, `=`, every byte below 0x20 and 0x7f are written as
//! `%XX` (two upper-case hex digits), so a value never holds a tab, a
//! newline or an `=`, and a field name is found only where a field starts.
//!
//! Why this shape: each record is appended with a single write(2) on a file
//! opened with `O_APPEND` and fsynced before the daemon answers, so
//! concurrent writers never interleave inside a record and an acknowledged
//! record survives a crash. A crash or a full disk can still leave a torn
//! last line; the next record then starts on that same line. Because `=`
//! is escaped in values, the reader finds the start of the next record at
//! the last `recipient=` of a line and keeps it; the torn part is dropped
//! and counted in [`StatusLog::skipped`].
//!
//! A defer record for a recipient logically replaces the older ones:
//! readers take the last record per recipient ([`StatusLog::latest`]).
//!
//! # Diagnostics
//!
//! Logs are untrusted input: a line that does not parse is skipped and
//! counted, never a panic; a file larger than [`MAX_LOG_SIZE`] or a record
//! longer than [`MAX_RECORD_LEN`] is an [`Error::Io`] with
//! `InvalidData`. Nothing here logs.

use crate::error::Error;
use crate::id::QueueId;
use crate::name::{Queue, queue_file_dir, queue_path};
use crate::ops::make_subdir;
use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Largest log file a reader accepts.
pub const MAX_LOG_SIZE: u64 = 64 * 1024 * 1024;

/// Longest record a writer produces (one line, escapes included).
pub const MAX_RECORD_LEN: usize = 256 * 1024;

/// Mode of a new log file.
const LOG_MODE: u32 = 0o600;

/// One recipient's result.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// The recipient address.
    pub recipient: String,
    /// The original recipient (before rewriting and aliasing).
    pub original: String,
    /// DSN ORCPT, when the client gave one.
    pub dsn_orcpt: Option<String>,
    /// Enhanced status code (`5.1.1`, `4.4.1`, `2.0.0`).
    pub status: String,
    /// DSN action: `failed`, `delayed`, `delivered`, `relayed`, `expanded`.
    pub action: String,
    /// relay= of the delivery attempt (`local`, `none`, `host[addr]:port`).
    pub relay: String,
    /// The reason text.
    pub reason: String,
    /// When the record was made, seconds since the epoch.
    pub time: u64,
}

/// The records of one log, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusLog {
    /// Records that parsed.
    pub records: Vec<Record>,
    /// Lines (or torn parts of lines) that did not parse.
    pub skipped: usize,
}

impl StatusLog {
    /// The last record of each recipient, in the order recipients first
    /// appear: a newer defer record replaces an older one.
    pub fn latest(&self) -> Vec<&Record> {
        let mut order: Vec<&str> = Vec::new();
        let mut last: std::collections::HashMap<&str, &Record> = std::collections::HashMap::new();
        for r in &self.records {
            if last.insert(r.recipient.as_str(), r).is_none() {
                order.push(r.recipient.as_str());
            }
        }
        order.iter().filter_map(|a| last.get(a).copied()).collect()
    }

    /// The reason of the last record for `recipient`, if any.
    pub fn reason_for(&self, recipient: &str) -> Option<&str> {
        self.records
            .iter()
            .rev()
            .find(|r| r.recipient == recipient)
            .map(|r| r.reason.as_str())
    }
}

fn check_log_queue(log: Queue) -> Result<(), Error> {
    match log {
        Queue::Bounce | Queue::Defer | Queue::Trace => Ok(()),
        other => Err(Error::BadQueueName {
            text: other.as_str().to_string(),
        }),
    }
}

/// Appends `record` to the log `log` (bounce, defer or trace) of message
/// `id`: creates the file (and its hashed subdirectory) when missing, writes
/// the record with one write(2) in append mode, and fsyncs the file (and the
/// directory when the file is new) before returning.
///
/// # Errors
/// [`Error::BadQueueName`] when `log` is not a log queue, [`Error::Io`]
/// (`InvalidData` for a record over [`MAX_RECORD_LEN`]) when the record
/// cannot be written completely; the record may then be torn, which
/// readers tolerate.
pub fn append(queue_dir: &Path, log: Queue, id: &QueueId, record: &Record) -> Result<(), Error> {
    check_log_queue(log)?;
    let line = encode(record);
    let path = queue_path(queue_dir, log, id);
    if line.len() > MAX_RECORD_LEN {
        return Err(Error::Io {
            path,
            source: io::Error::new(io::ErrorKind::InvalidData, "status record too long"),
        });
    }
    let dir = queue_file_dir(queue_dir, log, id);
    let open = || {
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(LOG_MODE)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
    };
    let existed = path.exists();
    let mut file = match open() {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound && log.is_hashed() => {
            make_subdir(&dir)?;
            open().map_err(Error::io(&path))?
        }
        Err(e) => return Err(Error::Io { path, source: e }),
    };
    let n = file.write(line.as_bytes()).map_err(Error::io(&path))?;
    if n != line.len() {
        return Err(Error::Io {
            path,
            source: io::Error::new(io::ErrorKind::WriteZero, "short write of status record"),
        });
    }
    file.sync_data().map_err(Error::io(&path))?;
    if !existed {
        crate::fsync_dir(&dir)?;
    }
    Ok(())
}

/// Reads the log `log` of message `id`; `None` when there is none.
///
/// # Errors
/// [`Error::BadQueueName`] when `log` is not a log queue, [`Error::Io`]
/// when the file cannot be read or is larger than [`MAX_LOG_SIZE`].
pub fn read(queue_dir: &Path, log: Queue, id: &QueueId) -> Result<Option<StatusLog>, Error> {
    check_log_queue(log)?;
    let path = queue_path(queue_dir, log, id);
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Io { path, source: e }),
    };
    let meta = file.metadata().map_err(Error::io(&path))?;
    if !meta.file_type().is_file() {
        return Err(Error::Io {
            path,
            source: io::Error::new(io::ErrorKind::InvalidData, "not a regular file"),
        });
    }
    let mut bytes = Vec::new();
    file.take(MAX_LOG_SIZE.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(Error::io(&path))?;
    if bytes.len() as u64 > MAX_LOG_SIZE {
        return Err(Error::Io {
            path,
            source: io::Error::new(io::ErrorKind::InvalidData, "status log too large"),
        });
    }
    Ok(Some(parse(&bytes)))
}

/// Removes the log `log` of message `id`; no log is no error.
///
/// # Errors
/// [`Error::BadQueueName`], or [`Error::Io`] when the file exists but
/// cannot be removed.
pub fn remove(queue_dir: &Path, log: Queue, id: &QueueId) -> Result<(), Error> {
    check_log_queue(log)?;
    let path = queue_path(queue_dir, log, id);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io { path, source: e }),
    }
}

/// Encodes one record as a log line, newline included.
pub fn encode(r: &Record) -> String {
    let mut out = String::with_capacity(128);
    let mut field = |name: &str, value: &str| {
        if !out.is_empty() {
            out.push('\t');
        }
        out.push_str(name);
        out.push('=');
        escape_into(value, &mut out);
    };
    field("recipient", &r.recipient);
    field("original", &r.original);
    if let Some(o) = &r.dsn_orcpt {
        field("orcpt", o);
    }
    field("status", &r.status);
    field("action", &r.action);
    field("relay", &r.relay);
    field("reason", &r.reason);
    field("time", &r.time.to_string());
    out.push('\n');
    out
}

fn escape_into(value: &str, out: &mut String) {
    for ch in value.chars() {
        match ch {
            '%' | '=' | '\u{7f}' | '\u{0}'..='\u{1f}' => {
                out.push_str(&format!("%{:02X}", ch as u32));
            }
            c => out.push(c),
        }
    }
}

fn unescape(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = value.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Parses a whole log. Bad lines are skipped and counted; a line holding
/// a torn record followed by a complete one yields the complete one.
pub fn parse(bytes: &[u8]) -> StatusLog {
    let text = String::from_utf8_lossy(bytes);
    let mut log = StatusLog::default();
    let mut lines: Vec<&str> = text.split('\n').collect();
    // A last line without a newline is a record still being written or torn.
    if let Some(last) = lines.pop()
        && !last.is_empty()
    {
        log.skipped += 1;
    }
    for line in lines {
        if line.is_empty() {
            continue;
        }
        match parse_line(line) {
            Some(r) => log.records.push(r),
            None => {
                log.skipped += 1;
                // Salvage a record that starts after a torn one.
                if let Some(at) = line.rfind("recipient=").filter(|&at| at > 0)
                    && let Some(r) = line.get(at..).and_then(parse_line)
                {
                    log.records.push(r);
                }
            }
        }
    }
    log
}

/// Parses one line (without its newline) as a record.
pub fn parse_line(line: &str) -> Option<Record> {
    let mut r = Record::default();
    let mut seen = [false; 8];
    for (i, field) in line.split('\t').enumerate() {
        let (name, value) = field.split_once('=')?;
        let value = unescape(value)?;
        let slot = match name {
            "recipient" => 0,
            "original" => 1,
            "orcpt" => 2,
            "status" => 3,
            "action" => 4,
            "relay" => 5,
            "reason" => 6,
            "time" => 7,
            _ => continue,
        };
        if (i == 0) != (slot == 0) {
            return None;
        }
        let seen_slot = seen.get_mut(slot)?;
        if *seen_slot {
            return None;
        }
        *seen_slot = true;
        match slot {
            0 => r.recipient = value,
            1 => r.original = value,
            2 => r.dsn_orcpt = Some(value),
            3 => r.status = value,
            4 => r.action = value,
            5 => r.relay = value,
            6 => r.reason = value,
            _ => r.time = value.parse().ok()?,
        }
    }
    // Every field but orcpt is required.
    let required = seen.iter().enumerate().all(|(i, s)| *s || i == 2);
    required.then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(rcpt: &str, reason: &str) -> Record {
        Record {
            recipient: rcpt.into(),
            original: rcpt.into(),
            dsn_orcpt: None,
            status: "4.4.1".into(),
            action: "delayed".into(),
            relay: "none".into(),
            reason: reason.into(),
            time: 1_795_000_000,
        }
    }

    fn qdir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        crate::layout::create_or_repair(d.path(), None, None).unwrap();
        d
    }

    #[test]
    fn encode_parse_round_trip_with_hostile_text() {
        let mut r = rec("a=b%c@example.org", "tab\there\nnewline = 100% \u{7f} ünï");
        r.dsn_orcpt = Some("rfc822;x@y".into());
        let line = encode(&r);
        assert_eq!(line.matches('\n').count(), 1);
        assert_eq!(line.matches('\t').count(), 7);
        assert_eq!(parse_line(line.trim_end_matches('\n')), Some(r.clone()));
        assert_eq!(parse(line.as_bytes()).records, vec![r]);
    }

    #[test]
    fn append_read_latest_remove() {
        let q = qdir();
        let id = QueueId::parse("0000000000B").unwrap();
        assert_eq!(read(q.path(), Queue::Defer, &id).unwrap(), None);
        append(q.path(), Queue::Defer, &id, &rec("a@x", "first")).unwrap();
        append(q.path(), Queue::Defer, &id, &rec("b@x", "other")).unwrap();
        append(q.path(), Queue::Defer, &id, &rec("a@x", "second")).unwrap();
        let log = read(q.path(), Queue::Defer, &id).unwrap().unwrap();
        assert_eq!(log.records.len(), 3);
        let latest: Vec<_> = log
            .latest()
            .iter()
            .map(|r| (r.recipient.as_str(), r.reason.as_str()))
            .collect();
        assert_eq!(latest, vec![("a@x", "second"), ("b@x", "other")]);
        assert_eq!(log.reason_for("a@x"), Some("second"));
        assert_eq!(log.reason_for("c@x"), None);
        assert!(queue_path(q.path(), Queue::Defer, &id).exists());
        remove(q.path(), Queue::Defer, &id).unwrap();
        remove(q.path(), Queue::Defer, &id).unwrap();
        assert_eq!(read(q.path(), Queue::Defer, &id).unwrap(), None);
        assert!(append(q.path(), Queue::Active, &id, &rec("a", "b")).is_err());
    }

    #[test]
    fn torn_and_garbage_lines_are_skipped_not_fatal() {
        let good = encode(&rec("a@x", "ok"));
        let torn = &good[..good.len() / 2];
        let next = encode(&rec("b@x", "after torn"));
        let mut text = b"garbage\n\x00\x01\xff\n".to_vec();
        text.extend_from_slice(format!("{torn}{next}recipient=%zz\n{good}partial").as_bytes());
        let log = parse(&text);
        let who: Vec<_> = log.records.iter().map(|r| r.recipient.as_str()).collect();
        assert_eq!(who, vec!["b@x", "a@x"]);
        assert_eq!(log.skipped, 5);
        // Arbitrary bytes never panic.
        for n in 0..good.len() {
            let _ = parse(&good.as_bytes()[..n]);
        }
        let _ = parse(&[0xff, b'=', b'\t', b'%', b'\n']);
    }
}
