//! The walk over Postfix's queues and the copy of each message into ours.
//!
//! Postfix and we use the same queue directory names, so Postfix's files
//! sit beside ours: a file is ours when it starts with our queue file
//! magic, and is skipped. A Postfix file without the owner execute bit is
//! one that Postfix never finished (cleanup or postdrop died); it is not a
//! message and is left alone, as Postfix would leave it.
//!
//! Where each message goes:
//!
//! - maildrop/ (postdrop's files, not yet through pickup and cleanup):
//!   into our maildrop/, so that our pickup and cleanup do what Postfix's
//!   would have done (headers, rewriting); the submitter's login name is
//!   kept.
//! - incoming/, active/, deferred/ (through cleanup already): into our
//!   incoming/, with arrival time, sender, recipients still to deliver
//!   (done and cancelled ones are skipped), original recipients, DSN
//!   values and client attributes; qmgr delivers them at once.
//! - hold/: into our hold/; `postsuper -H` releases it.
//!
//! Order of steps per message (crash safety, see [`crate::journal`]):
//! journal line, our copy written, fsynced and marked complete, then the
//! Postfix file and its defer/ and trace/ logs removed.
//!
//! A file that cannot be read as a message, or asks for what we cannot
//! do, is left where it is and reported, and nothing else is done for it.
//! So is a message with a bounce/ log (notices Postfix still owes the
//! sender).

use crate::journal::{Begun, Journal};
use crate::message::{self, ParseError, PostfixMessage, Shape};
use queue::format::DsnRet;
use queue::{Envelope, Queue, QueueFile, Recipient};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Largest Postfix queue file read (far above any message_size_limit in
/// use; a larger one is reported and left).
pub const MAX_FILE: u64 = 1 << 32;

/// Deepest directory level searched (Postfix's hash_queue_depth is 1 or 2).
const MAX_DEPTH: usize = 3;

/// The Postfix queues, their file shape and the queue our copy goes to.
pub const SOURCES: [(Queue, Shape, Queue); 5] = [
    (Queue::Maildrop, Shape::Pickup, Queue::Maildrop),
    (Queue::Incoming, Shape::Queue, Queue::Incoming),
    (Queue::Active, Shape::Queue, Queue::Incoming),
    (Queue::Deferred, Shape::Queue, Queue::Incoming),
    (Queue::Hold, Shape::Queue, Queue::Hold),
];

/// One message moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The Postfix file, relative to queue_directory.
    pub from: String,
    /// Our queue id (none in a dry run).
    pub id: Option<queue::QueueId>,
    /// Our queue.
    pub queue: Queue,
    /// The envelope written.
    pub sender: String,
    /// Recipients written.
    pub recipients: usize,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Report {
    /// Messages moved into our queue.
    pub imported: Vec<Imported>,
    /// Postfix files with nothing left to deliver, removed.
    pub finished: Vec<String>,
    /// Postfix files left in place, and why.
    pub left: Vec<(String, String)>,
}

/// A name Postfix could have made (queue ids and hash directories are
/// `[0-9A-Za-z]`), joined with `/`: safe to join to the queue directory.
pub fn safe_name(rel: &str) -> bool {
    !rel.is_empty()
        && rel
            .split('/')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Imports every Postfix message under `queue_dir`. With `dry_run`, only
/// reads and reports (nothing is written or removed).
pub fn run(queue_dir: &Path, journal: &mut Journal, dry_run: bool) -> Report {
    let mut pass = Pass {
        queue_dir,
        journal,
        logs: log_index(queue_dir),
        dry_run,
        report: Report::default(),
    };
    for (from, shape, to) in SOURCES {
        let mut files = Vec::new();
        walk(
            &from.dir(queue_dir),
            from.as_str(),
            0,
            &mut files,
            &mut pass.report,
        );
        files.sort();
        for rel in files {
            pass.one(&rel, shape, to);
        }
    }
    if !dry_run && let Err(e) = pass.journal.tidy(queue_dir) {
        maillog::warning!("cannot empty {}: {e}", pass.journal.path().display());
    }
    pass.report
}

/// One run over the queues: what every file's import needs.
struct Pass<'a> {
    queue_dir: &'a Path,
    journal: &'a mut Journal,
    /// Postfix's per-message logs, by queue id.
    logs: HashMap<String, Vec<(Queue, PathBuf)>>,
    dry_run: bool,
    report: Report,
}

/// Regular files under `dir` (named `rel` relative to queue_directory),
/// hidden names (our writers' temporary files) skipped.
fn walk(dir: &Path, rel: &str, depth: usize, out: &mut Vec<String>, report: &mut Report) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            report.left.push((
                format!("{rel}/{}", name.to_string_lossy()),
                "not a queue file name".into(),
            ));
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let child = format!("{rel}/{name}");
        match entry.file_type() {
            Ok(t) if t.is_dir() && depth < MAX_DEPTH => {
                walk(&entry.path(), &child, depth + 1, out, report);
            }
            Ok(t) if t.is_file() => {
                if safe_name(&child) {
                    out.push(child);
                } else {
                    report.left.push((child, "not a queue file name".into()));
                }
            }
            Ok(t) if t.is_dir() => {}
            _ => report.left.push((child, "not a regular file".into())),
        }
    }
}

/// Postfix's per-message logs (defer/, trace/, bounce/) by queue id.
fn log_index(queue_dir: &Path) -> HashMap<String, Vec<(Queue, PathBuf)>> {
    let mut index: HashMap<String, Vec<(Queue, PathBuf)>> = HashMap::new();
    for q in [Queue::Defer, Queue::Trace, Queue::Bounce] {
        let mut files = Vec::new();
        let mut ignored = Report::default();
        walk(&q.dir(queue_dir), q.as_str(), 0, &mut files, &mut ignored);
        for rel in files {
            if let Some(id) = rel.rsplit('/').next() {
                index
                    .entry(id.to_owned())
                    .or_default()
                    .push((q, queue_dir.join(&rel)));
            }
        }
    }
    index
}

/// What a first look at a file says.
enum Look {
    /// Our own queue file, or one nobody finished: not for us.
    Skip,
    /// A Postfix file to import: its bytes and inode.
    Postfix(Vec<u8>, u64),
    /// Cannot be read.
    Unreadable(String),
}

fn look(path: &Path) -> Look {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path);
    let mut file = match file {
        Ok(f) => f,
        Err(e) => return Look::Unreadable(format!("cannot open: {e}")),
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return Look::Unreadable(format!("cannot stat: {e}")),
    };
    if !meta.is_file() {
        return Look::Unreadable("not a regular file".into());
    }
    if meta.mode() & 0o100 == 0 {
        return Look::Skip;
    }
    if meta.len() > MAX_FILE {
        return Look::Unreadable(format!("too large ({} bytes)", meta.len()));
    }
    let mut buf = Vec::new();
    if let Err(e) = file.read_to_end(&mut buf) {
        return Look::Unreadable(format!("cannot read: {e}"));
    }
    if buf.starts_with(&queue::format::MAGIC) {
        return Look::Skip;
    }
    Look::Postfix(buf, meta.ino())
}

impl Pass<'_> {
    /// Imports one Postfix file (`rel`, of `shape`) into our queue `to`.
    fn one(&mut self, rel: &str, shape: Shape, to: Queue) {
        let (queue_dir, dry_run) = (self.queue_dir, self.dry_run);
        let report = &mut self.report;
        let path = queue_dir.join(rel);
        let (bytes, inode) = match look(&path) {
            Look::Skip => return,
            Look::Unreadable(why) => {
                report.left.push((rel.to_owned(), why));
                return;
            }
            Look::Postfix(b, i) => (b, i),
        };
        let postfix_id = rel.rsplit('/').next().unwrap_or(rel);
        let my_logs = self
            .logs
            .get(postfix_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if shape == Shape::Queue && my_logs.iter().any(|(q, _)| *q == Queue::Bounce) {
            report.left.push((
                rel.to_owned(),
                "Postfix still owes bounce notices for it (bounce/ log)".into(),
            ));
            return;
        }
        // A copy begun before a crash: finished, or to be made again.
        if let Some(begun) = self.journal.begun(rel, inode)
            && let Some(done) = recover(queue_dir, rel, begun, dry_run)
        {
            if done {
                finish(rel, &path, my_logs, dry_run, report);
                report.imported.push(Imported {
                    from: rel.to_owned(),
                    id: Some(begun.id),
                    queue: begun.queue,
                    sender: String::new(),
                    recipients: 0,
                });
            }
            return;
        }
        let msg = match message::parse(&bytes, shape) {
            Ok(m) => m,
            Err(e) => {
                report.left.push((rel.to_owned(), e.to_string()));
                return;
            }
        };
        if msg.recipients.is_empty() {
            if shape == Shape::Pickup {
                report.left.push((
                    rel.to_owned(),
                    ParseError::Unsafe("it has no recipients".into()).to_string(),
                ));
                return;
            }
            // Every recipient done: what Postfix's qmgr would do next is remove it.
            if !dry_run {
                remove_postfix(&path, my_logs);
                maillog::info!("{rel}: removed (no recipient left to deliver)");
            }
            report.finished.push(rel.to_owned());
            return;
        }
        let owner = std::fs::metadata(&path).map(|m| m.uid()).unwrap_or(0);
        let env = envelope(&msg, shape, owner, postfix_id);
        if dry_run {
            report.imported.push(Imported {
                from: rel.to_owned(),
                id: None,
                queue: to,
                sender: env.sender.clone(),
                recipients: env.recipients.len(),
            });
            return;
        }
        match copy(queue_dir, rel, inode, to, &env, &msg.content, self.journal) {
            Ok(id) => {
                finish(rel, &path, my_logs, false, report);
                maillog::info!(
                    "{id}: imported from Postfix {rel}: from=<{}>, nrcpt={} ({})",
                    env.sender,
                    env.recipients.len(),
                    to.as_str()
                );
                report.imported.push(Imported {
                    from: rel.to_owned(),
                    id: Some(id),
                    queue: to,
                    sender: env.sender,
                    recipients: msg.recipients.len(),
                });
            }
            Err(e) => report
                .left
                .push((rel.to_owned(), format!("not copied: {e}"))),
        }
    }
}

/// A copy the journal says was begun: `Some(true)` when our copy is
/// complete (only the Postfix file is left to remove), `Some(false)` when
/// nothing is to be done now (dry run), `None` to copy again.
fn recover(queue_dir: &Path, rel: &str, begun: Begun, dry_run: bool) -> Option<bool> {
    match QueueFile::open_read_only(queue_dir, begun.queue, &begun.id) {
        Ok(_) => Some(true),
        Err(e) if e.is_not_found() => None,
        Err(e) => {
            maillog::info!(
                "{rel}: the copy begun as {} was not finished ({e}); copying again",
                begun.id
            );
            if dry_run {
                return Some(false);
            }
            let _ = queue::remove(queue_dir, begun.queue, &begun.id);
            None
        }
    }
}

/// Writes our copy: journal line first, then the file (fsynced and
/// complete when this returns).
fn copy(
    queue_dir: &Path,
    rel: &str,
    inode: u64,
    to: Queue,
    env: &Envelope,
    content: &[u8],
    journal: &mut Journal,
) -> Result<queue::QueueId, String> {
    let mut w = queue::enter_queue(queue_dir, to).map_err(|e| e.to_string())?;
    let id = *w.id();
    let begun = Begun {
        inode,
        id,
        queue: to,
    };
    if let Err(e) = journal.begin(rel, begun) {
        let _ = w.abort();
        return Err(format!("journal {}: {e}", journal.path().display()));
    }
    if let Err(e) = w.write_all(content) {
        let _ = w.abort();
        return Err(e.to_string());
    }
    let proof = w.finish(env).map_err(|e| e.to_string())?;
    Ok(*proof.id())
}

/// Removes the Postfix file (our copy is safe) and its logs.
fn finish(rel: &str, path: &Path, logs: &[(Queue, PathBuf)], dry_run: bool, report: &mut Report) {
    if dry_run {
        return;
    }
    if let Err(e) = remove_postfix_file(path) {
        report.left.push((
            rel.to_owned(),
            format!("copied, but cannot be removed: {e}"),
        ));
        return;
    }
    for (_, log) in logs {
        let _ = remove_postfix_file(log);
    }
}

fn remove_postfix(path: &Path, logs: &[(Queue, PathBuf)]) {
    let _ = remove_postfix_file(path);
    for (_, log) in logs {
        let _ = remove_postfix_file(log);
    }
}

fn remove_postfix_file(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent() {
        queue::fsync_dir(dir).map_err(std::io::Error::other)?;
    }
    Ok(())
}

/// Postfix attributes our queue files carry under the same name.
const KEPT_ATTRIBUTES: &[&str] = &[
    "client_name",
    "client_address",
    "client_port",
    "helo_name",
    "protocol_name",
    "sasl_method",
    "sasl_username",
    "rewrite_context",
];

/// Our envelope for a Postfix message.
pub fn envelope(msg: &PostfixMessage, shape: Shape, owner: u32, postfix_id: &str) -> Envelope {
    let mut env = Envelope::new(&msg.sender, msg.arrival.unwrap_or_else(SystemTime::now));
    for r in &msg.recipients {
        env.recipients.push(Recipient {
            address: r.address.clone(),
            original: r.original.clone().unwrap_or_else(|| r.address.clone()),
            dsn_orcpt: r.dsn_orcpt.clone(),
            dsn_notify: r.dsn_notify & 0x0f,
        });
    }
    env.dsn_envid = msg.dsn_envid.clone();
    env.dsn_ret = match msg.dsn_ret {
        Some(1) => Some(DsnRet::Full),
        Some(2) => Some(DsnRet::Headers),
        _ => None,
    };
    for (name, value) in &msg.attributes {
        if KEPT_ATTRIBUTES.contains(&name.as_str()) {
            env.set_attribute(name, value);
        } else if name == "encoding" {
            match value.as_str() {
                "8bit" => env.set_attribute("body", "8BITMIME"),
                "7bit" => env.set_attribute("body", "7BIT"),
                _ => {}
            }
        }
    }
    env.set_attribute("postfix_queue_id", postfix_id);
    match shape {
        Shape::Pickup => {
            // Our pickup believes the login name of a file mail_owner
            // wrote; the Postfix file's owner is the submitter.
            let login = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(owner))
                .ok()
                .flatten()
                .map_or_else(|| owner.to_string(), |u| u.name);
            env.set_attribute("login_name", &login);
            env.set_attribute("rewrite_context", "local");
            if let Some(name) = &msg.full_name {
                env.set_attribute("full_name", name);
            }
        }
        Shape::Queue => {
            if let Some(mid) = message_id(&msg.content) {
                env.set_attribute(queue::format::attr::MESSAGE_ID, &mid);
            }
        }
    }
    env
}

/// The Message-ID header's value, for log lines.
fn message_id(content: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(content.get(..content.len().min(64 * 1024))?);
    for line in text.split('\n') {
        if line.is_empty() {
            return None;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("message-id") {
            let v = value.trim();
            return (!v.is_empty() && v.len() <= 1000).then(|| v.to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests;
