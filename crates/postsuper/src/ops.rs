//! The operations: delete, hold, release, requeue; structure check; purge.

use crate::Action;
use queue::{Queue, QueueId, status_log};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Temporary files and incomplete queue files older than this are dead.
const DEAD_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Applies `action` to each name (a queue id or `ALL`) in `queues`;
/// returns how many messages it affected.
pub(crate) fn apply(qdir: &Path, action: Action, names: &[String], queues: &[Queue]) -> usize {
    let mut count = 0;
    for name in names {
        if name == "ALL" {
            // List first, act after: a message moved into a queue still to
            // be listed must not be seen twice.
            let mut all = Vec::new();
            for &q in queues {
                match queue::list(qdir, q) {
                    Ok(ids) => all.extend(ids.into_iter().map(|id| (q, id))),
                    Err(e) => maillog::warning!("{e}"),
                }
            }
            for (q, id) in all {
                count += usize::from(act(qdir, action, q, &id));
            }
            continue;
        }
        let id = match QueueId::parse(name) {
            Ok(id) => id,
            Err(e) => {
                maillog::warning!("{e}");
                continue;
            }
        };
        for &q in queues {
            let path = queue::queue_path(qdir, q, &id);
            if std::fs::symlink_metadata(&path).is_ok() {
                count += usize::from(act(qdir, action, q, &id));
                break;
            }
        }
    }
    count
}

/// Does one action on one message; true when it was done.
fn act(qdir: &Path, action: Action, from: Queue, id: &QueueId) -> bool {
    let result = match action {
        Action::Delete => queue::remove(qdir, from, id).map(|()| {
            for log in [Queue::Bounce, Queue::Defer, Queue::Trace] {
                if let Err(e) = status_log::remove(qdir, log, id) {
                    maillog::warning!("{id}: {e}");
                }
            }
            "removed"
        }),
        Action::Hold if from == Queue::Hold => return false,
        Action::Hold => queue::rename(qdir, id, from, Queue::Hold).map(|()| "placed on hold"),
        Action::Release if from != Queue::Hold => return false,
        Action::Release => queue::rename(qdir, id, Queue::Hold, Queue::Deferred).map(|()| {
            touch(qdir, Queue::Deferred, id);
            "released from hold"
        }),
        // Maildrop files are not messages qmgr returns (Postfix skips them).
        Action::Expire if from == Queue::Maildrop => return false,
        Action::Expire => match queue::expire::force_expire(qdir, from, id) {
            Ok(true) => Ok("expired"),
            Ok(false) => return false,
            Err(e) => Err(e),
        },
        Action::Requeue => queue::rename(qdir, id, from, Queue::Incoming).map(|()| {
            touch(qdir, Queue::Incoming, id);
            "requeued"
        }),
    };
    match result {
        Ok(what) => {
            maillog::info!("{id}: {what}");
            true
        }
        // Another process moved or removed it first.
        Err(e) if e.is_not_found() => false,
        Err(e) => {
            maillog::warning!("{id}: {e}");
            false
        }
    }
}

/// Sets a queue file's time stamp to now: qmgr takes the modification time
/// of a deferred file as the time of its next attempt.
fn touch(qdir: &Path, q: Queue, id: &QueueId) {
    let path = queue::queue_path(qdir, q, id);
    if let Ok(f) = std::fs::File::open(&path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

/// The structure check: repairs the layout, then puts misplaced files of
/// hashed queues where they belong.
pub(crate) fn structure(
    qdir: &Path,
    owner: Option<(u32, u32)>,
    setgid: Option<u32>,
) -> Result<(), String> {
    let fixed = queue::layout::create_or_repair(qdir, owner, setgid).map_err(|e| e.to_string())?;
    for line in fixed {
        maillog::warning!("{line}");
    }
    for q in Queue::ALL {
        if !q.is_hashed() {
            continue;
        }
        let scan = match queue::scan(qdir, q) {
            Ok(s) => s,
            Err(e) => {
                maillog::warning!("{e}");
                continue;
            }
        };
        // Ids found at the top of a hashed queue are misplaced too.
        let top = scan
            .ids
            .iter()
            .map(|id| q.dir(qdir).join(id.as_str()))
            .filter(|p| std::fs::symlink_metadata(p).is_ok());
        for path in top.chain(scan.others) {
            place(qdir, q, &path, owner);
        }
    }
    Ok(())
}

/// Moves `path` in queue `q` to where its id says it belongs.
fn place(qdir: &Path, q: Queue, path: &Path, owner: Option<(u32, u32)>) {
    let Some(id) = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| QueueId::parse(n).ok())
    else {
        return;
    };
    let want = queue::queue_path(qdir, q, &id);
    if want == path {
        return;
    }
    if std::fs::symlink_metadata(&want).is_ok() {
        maillog::warning!("{}: not moved: {} exists", path.display(), want.display());
        return;
    }
    let dir = queue::queue_file_dir(qdir, q, &id);
    if !dir.is_dir() {
        if let Err(e) = std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            maillog::warning!("mkdir {}: {e}", dir.display());
            return;
        }
        if let Some((uid, gid)) = owner {
            let _ = std::os::unix::fs::lchown(&dir, Some(uid), Some(gid));
        }
    }
    match std::fs::rename(path, &want) {
        Ok(()) => maillog::warning!(
            "moved misplaced file {} to {}",
            path.display(),
            want.display()
        ),
        Err(e) => maillog::warning!("rename {}: {e}", path.display()),
    }
}

/// Removes temporary files and incomplete queue files of dead writers.
pub(crate) fn purge(qdir: &Path) {
    let mut n = 0;
    for q in [Queue::Maildrop, Queue::Incoming] {
        let Ok(scan) = queue::scan(qdir, q) else {
            continue;
        };
        for path in &scan.others {
            let is_tmp = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(".tmp."));
            let old = std::fs::symlink_metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > DEAD_AFTER);
            if is_tmp && old && std::fs::remove_file(path).is_ok() {
                n += 1;
            }
        }
        for id in &scan.ids {
            if let Ok(Some(age)) = queue::incomplete_age(qdir, q, id)
                && age > DEAD_AFTER
                && queue::remove(qdir, q, id).is_ok()
            {
                n += 1;
            }
        }
    }
    if n > 0 {
        maillog::info!(
            "Deleted: {n} temporary file{}",
            if n == 1 { "" } else { "s" }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn enter(q: &Path) -> QueueId {
        let mut w = queue::enter(q).unwrap();
        w.write_all(b"x\n").unwrap();
        let mut env = queue::Envelope::new("a@x", SystemTime::now());
        env.add_recipient("b@y");
        *w.finish(&env).unwrap().id()
    }

    #[test]
    fn hold_release_requeue_delete() {
        let q = tempfile::tempdir().unwrap();
        queue::layout::create_or_repair(q.path(), None, None).unwrap();
        let a = enter(q.path());
        let b = enter(q.path());
        let ids = vec![a.as_str().to_string()];
        assert_eq!(
            apply(q.path(), Action::Hold, &ids, Action::Hold.default_queues()),
            1
        );
        assert!(queue::queue_path(q.path(), Queue::Hold, &a).exists());
        assert_eq!(
            apply(q.path(), Action::Hold, &ids, Action::Hold.default_queues()),
            0
        );
        assert_eq!(
            apply(
                q.path(),
                Action::Release,
                &ids,
                Action::Release.default_queues()
            ),
            1
        );
        assert!(queue::queue_path(q.path(), Queue::Deferred, &a).exists());
        assert_eq!(
            apply(
                q.path(),
                Action::Requeue,
                &ids,
                Action::Requeue.default_queues()
            ),
            1
        );
        assert!(queue::queue_path(q.path(), Queue::Incoming, &a).exists());
        let rec = status_log::Record::default();
        status_log::append(q.path(), Queue::Defer, &a, &rec).unwrap();
        let all = vec!["ALL".to_string()];
        assert_eq!(apply(q.path(), Action::Delete, &all, &[Queue::Deferred]), 0);
        assert_eq!(
            apply(
                q.path(),
                Action::Delete,
                &all,
                Action::Delete.default_queues()
            ),
            2
        );
        assert!(queue::list(q.path(), Queue::Incoming).unwrap().is_empty());
        assert!(
            status_log::read(q.path(), Queue::Defer, &a)
                .unwrap()
                .is_none()
        );
        let _ = b;
        assert_eq!(
            apply(q.path(), Action::Delete, &["../etc".into()], &[Queue::Hold]),
            0
        );
    }

    #[test]
    fn structure_moves_misplaced_files() {
        let q = tempfile::tempdir().unwrap();
        queue::layout::create_or_repair(q.path(), None, None).unwrap();
        let a = enter(q.path());
        // Put it at the top of deferred/ and another in a wrong subdirectory.
        std::fs::rename(
            queue::queue_path(q.path(), Queue::Incoming, &a),
            q.path().join("deferred").join(a.as_str()),
        )
        .unwrap();
        let b = enter(q.path());
        let right = queue::queue_file_dir(q.path(), Queue::Deferred, &b);
        let wrong = if right.ends_with("0") { "1" } else { "0" };
        let wrong_dir = q.path().join("deferred").join(wrong);
        std::fs::create_dir_all(&wrong_dir).unwrap();
        std::fs::rename(
            queue::queue_path(q.path(), Queue::Incoming, &b),
            wrong_dir.join(b.as_str()),
        )
        .unwrap();
        std::fs::remove_dir(q.path().join("hold")).unwrap();
        structure(q.path(), None, None).unwrap();
        assert!(q.path().join("hold").is_dir());
        let mut ids = queue::list(q.path(), Queue::Deferred).unwrap();
        ids.sort();
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(ids, want);
        assert!(queue::queue_path(q.path(), Queue::Deferred, &a).exists());
        assert!(queue::queue_path(q.path(), Queue::Deferred, &b).exists());
    }
}
