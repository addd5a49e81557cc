//! Group commit for a batch of delivery requests (see
//! [`proto::deliver::Request::batched`]).
//!
//! A Maildir delivery is three flushes in a row: the message file, the
//! `new/` directory that names it, and (in qmgr) the done mark in the
//! queue file. For a batch of messages to one destination, local and
//! virtual only write each message file into `tmp/` ([`maildir_deliver`],
//! [`maildir::write_pending`]); the agent's request loop
//! ([`crate::agent`]) then, in [`Batch::commit`], starts the writeback of
//! every file at once, fsyncs them from a few threads together, links
//! each into `new/` (with the rights it was written with), syncs each
//! distinct `new/` once for the whole batch, and only after that marks
//! the recipients done, writes their `to=` lines (held here meanwhile,
//! [`hold_line`]) and answers. Written together and synced together, the
//! files of a batch share a journal commit and the disk's cache flushes
//! instead of taking their own each. A file whose sync or link fails, or
//! a directory whose sync fails, turns the deliveries concerned into
//! deferrals (their lines say so); the batch's other recipients keep
//! their outcomes.
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

/// A message file written into `tmp/`, to be synced and linked at the
/// commit with the rights it was written with.
#[derive(Debug)]
struct PendingFile {
    file: maildir::Pending,
    ids: crate::privs::Ids,
    /// As [`Dir::users`].
    user: (Key, usize),
}

/// Most message files a batch leaves pending; further deliveries of the
/// batch are synced and linked at once (each still syncs `new/` with the
/// batch). Each pending file holds three descriptors.
const PENDING_MAX: usize = 64;

#[derive(Debug, Default)]
struct State {
    current: Key,
    pending: Vec<PendingFile>,
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

    /// Syncs and links every pending file, syncs every directory once,
    /// then writes the held lines; returns the recipients whose
    /// deliveries are not durable, with the reason (they are to be
    /// deferred).
    pub(crate) fn commit(self) -> HashMap<Key, String> {
        settle(BATCH.with(|b| b.borrow_mut().take()).unwrap_or_default())
    }
}

/// [`Batch::commit`]'s work.
fn settle(mut state: State) -> HashMap<Key, String> {
    let mut failed: HashMap<Key, String> = HashMap::new();
    let mut failed_lines: HashMap<usize, String> = HashMap::new();
    let pending = std::mem::take(&mut state.pending);
    for p in &pending {
        p.file.start_writeback();
    }
    let synced = sync_together(&pending);
    // Files written as the same user one after the other (a batch to one
    // mailbox) are finished under one switch of ids.
    let mut as_user: Option<(crate::privs::Ids, crate::privs::AsUser)> = None;
    for (p, synced) in pending.into_iter().zip(synced) {
        let maildir = p.file.maildir().to_path_buf();
        let finished = match (synced, switch_user(&mut as_user, p.ids)) {
            (Ok(()), Ok(())) => p
                .file
                .finish_synced()
                .and_then(|(_, new_dir)| add_dir(&mut state, new_dir, maildir.join("new"), p.user)),
            (Err(e), _) => {
                p.file.discard();
                Err(e)
            }
            (_, Err(e)) => {
                p.file.discard();
                Err(mailstore::Error::io("set user id", &maildir, e.into()))
            }
        };
        if let Err(err) = finished {
            let text = not_durable(&maildir, &err);
            failed.insert(p.user.0, text.clone());
            failed_lines.insert(p.user.1, text);
        }
    }
    drop(as_user);
    for dir in &state.dirs {
        if let Err(e) = dir.file.sync_all() {
            let text = not_durable(&dir.path, &mailstore::Error::io("fsync", &dir.path, e));
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

/// Threads that fsync a batch's files together (the committing thread
/// included). Concurrent fsyncs share the disk's cache flushes and a
/// journal's commits, where fsyncs in a row each wait for their own: 20
/// files of 2 KB took 3-4 ms this way against 6.5-9.4 ms in a row on
/// ext4 without a journal, 5-6 against 12-16 with one (docs/BENCH.md).
const SYNC_THREADS: usize = 4;

/// Fsyncs every pending file, SYNC_THREADS at a time; each file's result
/// in order. No rights are needed (the files are open), and the threads
/// end before the committing thread switches ids again.
fn sync_together(pending: &[PendingFile]) -> Vec<mailstore::Result<()>> {
    let threads = SYNC_THREADS.min(pending.len()).max(1);
    let share = |first: usize| -> Vec<(usize, mailstore::Result<()>)> {
        (first..pending.len())
            .step_by(threads)
            .filter_map(|i| pending.get(i).map(|p| (i, p.file.sync())))
            .collect()
    };
    let mut results: Vec<Option<mailstore::Result<()>>> = pending.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads)
            .filter_map(|first| {
                std::thread::Builder::new()
                    .name("sync".into())
                    .spawn_scoped(scope, move || share(first))
                    .ok()
            })
            .collect();
        let mut done = share(0);
        for helper in helpers {
            done.extend(helper.join().unwrap_or_default());
        }
        for (i, r) in done {
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(r);
            }
        }
    });
    // The share of a helper that could not start or that panicked.
    results
        .into_iter()
        .zip(pending)
        .map(|(r, p)| r.unwrap_or_else(|| p.file.sync()))
        .collect()
}

/// Why deliveries into `maildir` are deferred (logged here, once).
fn not_durable(maildir: &Path, err: &mailstore::Error) -> String {
    let text = format!("cannot update maildir {}. {err}", maildir.display());
    maillog::warning!("{}", maillog::printable(&text, 300));
    text
}

/// Acts as `ids` from here on, keeping `current` when it is already
/// theirs; on an error the process is root again.
fn switch_user(
    current: &mut Option<(crate::privs::Ids, crate::privs::AsUser)>,
    ids: crate::privs::Ids,
) -> Result<(), nix::Error> {
    if current.as_ref().is_some_and(|(now, _)| *now == ids) {
        return Ok(());
    }
    // Back to root before the next user.
    *current = None;
    *current = Some((ids, crate::privs::become_user(ids)?));
    Ok(())
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(state) = BATCH.with(|b| b.borrow_mut().take()) {
            settle(state);
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
    let room = BATCH.with(|b| {
        b.borrow()
            .as_ref()
            .is_some_and(|s| s.pending.len() < PENDING_MAX)
    });
    if room {
        let file = maildir::write_pending(dir, options, prepend, content)?;
        let delivered = file.delivered();
        let ids = crate::privs::Ids {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        };
        BATCH.with(|b| {
            if let Some(s) = b.borrow_mut().as_mut() {
                let user = (s.current, s.lines.len());
                s.pending.push(PendingFile { file, ids, user });
            }
        });
        return Ok(delivered);
    }
    let (delivered, new_dir) = maildir::deliver_unsynced(dir, options, prepend, content)?;
    BATCH.with(|b| match b.borrow_mut().as_mut() {
        Some(s) => {
            let user = (s.current, s.lines.len());
            add_dir(s, new_dir, dir.join("new"), user)
        }
        None => Ok(()),
    })?;
    Ok(delivered)
}

/// Adds `new_dir` to the directories the commit syncs (once each), with
/// the recipient that named a message in it.
///
/// # Errors
///
/// A directory that cannot be told apart from the others (no fstat) is
/// synced now; this is its error.
fn add_dir(
    s: &mut State,
    new_dir: File,
    path: PathBuf,
    user: (Key, usize),
) -> mailstore::Result<()> {
    let meta = match new_dir.metadata() {
        Ok(m) => m,
        Err(_) => {
            // Not worth a second path: sync it now.
            return new_dir
                .sync_all()
                .map_err(|e| mailstore::Error::io("fsync", &path, e));
        }
    };
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
    Ok(())
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
    fn a_file_that_cannot_be_linked_at_the_commit_is_deferred() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (good, gone) = (dir.path().join("good"), dir.path().join("gone"));
        let batch = Batch::begin();
        for (pos, md) in [&good, &gone].into_iter().enumerate() {
            batch.set_current((pos, 0));
            maildir_deliver(md, &maildir::Options::default(), &[], &mut &b"x\n"[..])
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(hold_line(line("r@example.org")).is_none());
        }
        // new/ goes away between the write and the commit.
        std::fs::remove_dir(gone.join("new")).unwrap_or_else(|e| panic!("{e}"));
        let failed = batch.commit();
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(failed[&(1, 0)].contains("cannot update maildir"));
        assert_eq!(
            std::fs::read_dir(gone.join("tmp")).map(|d| d.count()).ok(),
            Some(0)
        );
        assert_eq!(
            std::fs::read_dir(good.join("new")).map(|d| d.count()).ok(),
            Some(1)
        );
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
            let users: Vec<_> = s.pending.iter().map(|p| p.user).collect();
            assert_eq!(users, vec![((0, 0), 0), ((1, 0), 1), ((2, 0), 2)]);
            assert_eq!(s.lines.len(), 3);
        });
        // Written into tmp/, named in new/ only by the commit.
        let count = |d: &Path, sub: &str| std::fs::read_dir(d.join(sub)).map(|d| d.count()).ok();
        assert_eq!(count(&a, "new"), Some(0));
        assert_eq!(count(&a, "tmp"), Some(2));
        assert!(batch.commit().is_empty());
        assert_eq!(count(&a, "tmp"), Some(0));
        assert_eq!(count(&b, "new"), Some(1));
        assert!(!batch_open());
        assert_eq!(
            std::fs::read_dir(a.join("new")).map(|d| d.count()).ok(),
            Some(2)
        );
    }
}
