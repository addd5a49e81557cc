//! Group commit for a batch of delivery requests (see
//! [`proto::deliver::Request::batched`]).
//!
//! A Maildir delivery is three flushes in a row: the message file, the
//! `new/` directory that names it, and (in qmgr) the done mark in the
//! queue file. For a batch of messages to one destination, local and
//! virtual write, fsync and link each message file as usual, but leave
//! `new/` open here instead of syncing it ([`maildir_deliver`]); the
//! agent's request loop ([`crate::agent`]) then syncs each distinct
//! directory once for the whole batch ([`Batch::commit`]), and only after
//! that marks the recipients done, writes their `to=` lines (held here
//! meanwhile, [`hold_line`]) and answers. A directory whose sync fails
//! turns the deliveries that named a message in it into deferrals (their
//! lines say so); the batch's other recipients keep their outcomes.
//!
//! The state is per thread: a delivery agent delivers on one thread (it
//! switches privileges), and outside a batch every function here does
//! what a single delivery always did (sync now, log now).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mailstore::maildir;
use proto::deliver::Action;

use crate::logline::Line;

/// A recipient in a batch: the request's position and the recipient's
/// index in its queue file.
pub(crate) type Key = (usize, u32);

/// A `to=` line waiting for the batch's commit.
#[derive(Debug)]
pub(crate) struct HeldLine {
    pub(crate) queue_id: String,
    pub(crate) to: String,
    pub(crate) orig_to: String,
    pub(crate) relay: String,
    pub(crate) delay: Duration,
    pub(crate) delays: [Duration; 4],
    pub(crate) dsn: String,
    pub(crate) action: Action,
    pub(crate) text: String,
    pub(crate) verify_only: bool,
}

impl HeldLine {
    /// Writes the line to the log.
    pub(crate) fn log(&self) {
        let line = Line {
            queue_id: &self.queue_id,
            to: &self.to,
            orig_to: &self.orig_to,
            relay: &self.relay,
            delay: self.delay,
            delays: self.delays,
            dsn: &self.dsn,
            action: self.action,
            text: &self.text,
        };
        let word = crate::verify_only::status_word(self.verify_only, self.action);
        maillog::info!("{}", line.render_as(word));
    }
}

/// A `new/` directory to sync, and who named a message in it.
#[derive(Debug)]
struct Dir {
    dev: u64,
    ino: u64,
    path: PathBuf,
    file: File,
    /// The recipients that delivered into it, each with the position in
    /// [`State::lines`] its delivery's line will take.
    users: Vec<(Key, usize)>,
}

#[derive(Debug, Default)]
struct State {
    current: Key,
    dirs: Vec<Dir>,
    lines: Vec<(Key, HeldLine)>,
}

thread_local! {
    static BATCH: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// True while a batch is open on this thread.
pub(crate) fn batch_open() -> bool {
    BATCH.with(|b| b.borrow().is_some())
}

/// An open batch; dropping it without [`Batch::commit`] writes the held
/// lines as they are (a batch is always committed; this is for unwinding).
#[derive(Debug)]
pub(crate) struct Batch(());

impl Batch {
    /// Opens a batch on this thread.
    pub(crate) fn begin() -> Batch {
        BATCH.with(|b| *b.borrow_mut() = Some(State::default()));
        Batch(())
    }

    /// The recipient whose delivery runs now.
    pub(crate) fn set_current(&self, key: Key) {
        BATCH.with(|b| {
            if let Some(s) = b.borrow_mut().as_mut() {
                s.current = key;
            }
        });
    }

    /// Syncs every directory once, then writes the held lines; returns
    /// the recipients whose deliveries are not durable, with the reason
    /// (they are to be deferred).
    pub(crate) fn commit(self) -> HashMap<Key, String> {
        let state = BATCH.with(|b| b.borrow_mut().take()).unwrap_or_default();
        let mut failed: HashMap<Key, String> = HashMap::new();
        let mut failed_lines: HashMap<usize, String> = HashMap::new();
        for dir in &state.dirs {
            if let Err(e) = dir.file.sync_all() {
                let err = mailstore::Error::io("fsync", &dir.path, e);
                let text = format!("cannot update maildir {}. {err}", dir.path.display());
                maillog::warning!("{}", maillog::printable(&text, 300));
                for (key, line) in &dir.users {
                    failed.insert(*key, text.clone());
                    failed_lines.insert(*line, text.clone());
                }
            }
        }
        for (i, (_, mut line)) in state.lines.into_iter().enumerate() {
            if let Some(text) = failed_lines.get(&i)
                && line.action == Action::Delivered
            {
                line.action = Action::Deferred;
                line.dsn = "4.3.0".into();
                line.text = text.clone();
            }
            line.log();
        }
        failed
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(state) = BATCH.with(|b| b.borrow_mut().take()) {
            for (_, line) in state.lines {
                line.log();
            }
        }
    }
}

/// Holds a `to=` line until the batch's commit; gives it back when no
/// batch is open (log it now).
pub(crate) fn hold_line(line: HeldLine) -> Option<HeldLine> {
    BATCH.with(|b| match b.borrow_mut().as_mut() {
        Some(s) => {
            s.lines.push((s.current, line));
            None
        }
        None => Some(line),
    })
}

/// Delivers into the Maildir at `dir` as [`maildir::deliver`] does; in a
/// batch, `new/` is synced by the batch's commit instead, once for every
/// delivery into it (the next `to=` line this recipient logs is the
/// line of this delivery: it says deferred if that sync fails).
///
/// # Errors
///
/// As [`maildir::deliver`].
pub fn maildir_deliver(
    dir: &Path,
    options: &maildir::Options,
    prepend: &[&str],
    content: &mut dyn Read,
) -> mailstore::Result<maildir::Delivered> {
    if !batch_open() {
        return maildir::deliver(dir, options, prepend, content);
    }
    let (delivered, new_dir) = maildir::deliver_unsynced(dir, options, prepend, content)?;
    let path = dir.join("new");
    let meta = match new_dir.metadata() {
        Ok(m) => m,
        Err(_) => {
            // Not worth a second path: sync it now.
            new_dir
                .sync_all()
                .map_err(|e| mailstore::Error::io("fsync", &path, e))?;
            return Ok(delivered);
        }
    };
    BATCH.with(|b| {
        if let Some(s) = b.borrow_mut().as_mut() {
            let user = (s.current, s.lines.len());
            match s
                .dirs
                .iter_mut()
                .find(|d| d.dev == meta.dev() && d.ino == meta.ino())
            {
                Some(d) => d.users.push(user),
                None => s.dirs.push(Dir {
                    dev: meta.dev(),
                    ino: meta.ino(),
                    path,
                    file: new_dir,
                    users: vec![user],
                }),
            }
        }
    });
    Ok(delivered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(to: &str) -> HeldLine {
        HeldLine {
            queue_id: "ABC".into(),
            to: to.into(),
            orig_to: String::new(),
            relay: "local".into(),
            delay: Duration::ZERO,
            delays: [Duration::ZERO; 4],
            dsn: "2.0.0".into(),
            action: Action::Delivered,
            text: "delivered to maildir".into(),
            verify_only: false,
        }
    }

    #[test]
    fn outside_a_batch_lines_are_given_back_and_maildirs_synced() {
        assert!(hold_line(line("a@example.org")).is_some());
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let md = dir.path().join("Maildir");
        let d = maildir_deliver(
            &md,
            &maildir::Options::default(),
            &[],
            &mut &b"Subject: x\n\nbody\n"[..],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(d.path.starts_with(md.join("new")));
    }

    #[test]
    fn a_batch_syncs_each_directory_once_and_holds_lines() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let batch = Batch::begin();
        for (pos, md) in [&a, &b, &a].into_iter().enumerate() {
            batch.set_current((pos, 0));
            maildir_deliver(md, &maildir::Options::default(), &[], &mut &b"x\n"[..])
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(hold_line(line("r@example.org")).is_none());
        }
        BATCH.with(|s| {
            let s = s.borrow();
            let s = s.as_ref().unwrap_or_else(|| panic!("no batch"));
            assert_eq!(s.dirs.len(), 2);
            assert_eq!(s.dirs[0].users, vec![((0, 0), 0), ((2, 0), 2)]);
            assert_eq!(s.lines.len(), 3);
        });
        assert!(batch.commit().is_empty());
        assert!(!batch_open());
        assert_eq!(
            std::fs::read_dir(a.join("new")).map(|d| d.count()).ok(),
            Some(2)
        );
    }
}
