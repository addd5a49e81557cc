//! Forced expiration (`postsuper -e` / `-f`): a mark on a queue file
//! that tells qmgr to return the message to its sender the next time it
//! takes it, instead of trying to deliver it (Postfix's
//! MAIL_QUEUE_STAT_EXPIRE).
//!
//! Postfix uses the group-execute bit; here that bit already says "a
//! delay warning was sent" (qmgr's WARNED bit), so the mark is the sticky
//! bit, which Linux ignores on a regular file and does not clear when the
//! file is written (the set-id bits would be cleared by qmgr's done
//! marks). A mode bit survives moves between queues, like the others.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::{Error, Queue, QueueId, queue_path};

/// The mode bit of a force-expired queue file.
pub const FORCE_EXPIRE_BIT: u32 = 0o1000;

/// The owner-execute bit: the file is complete (only such files expire).
const COMPLETE_BIT: u32 = 0o100;

/// True when a queue file's mode carries the mark.
pub fn is_force_expired(mode: u32) -> bool {
    mode & FORCE_EXPIRE_BIT != 0
}

/// Marks message `id` in queue `q` for expiration; false when it was
/// marked already or is not complete (Postfix's postexpire).
///
/// # Errors
/// [`Error::Io`] when the file cannot be examined or changed (a missing
/// file: [`Error::is_not_found`]).
pub fn force_expire(queue_dir: &Path, q: Queue, id: &QueueId) -> Result<bool, Error> {
    let path = queue_path(queue_dir, q, id);
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    let meta = std::fs::symlink_metadata(&path).map_err(io)?;
    if !meta.file_type().is_file() {
        return Ok(false);
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & COMPLETE_BIT == 0 || is_force_expired(mode) {
        return Ok(false);
    }
    std::fs::set_permissions(
        &path,
        std::fs::Permissions::from_mode(mode | FORCE_EXPIRE_BIT),
    )
    .map_err(io)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_files_are_marked_once() {
        let d = tempfile::tempdir().unwrap();
        crate::layout::create_or_repair(d.path(), None, None).unwrap();
        let mut w = crate::enter(d.path()).unwrap();
        std::io::Write::write_all(&mut w, b"x\n").unwrap();
        let env = crate::Envelope::new("a", std::time::SystemTime::now());
        let id = *w.finish(&env).unwrap().id();
        assert!(force_expire(d.path(), Queue::Incoming, &id).unwrap());
        assert!(!force_expire(d.path(), Queue::Incoming, &id).unwrap());
        let mode = std::fs::metadata(queue_path(d.path(), Queue::Incoming, &id))
            .unwrap()
            .permissions()
            .mode();
        assert!(is_force_expired(mode));
        assert_eq!(mode & 0o777, 0o700);
        let other = QueueId::parse("0000000000B").unwrap();
        assert!(
            force_expire(d.path(), Queue::Incoming, &other)
                .unwrap_err()
                .is_not_found()
        );
    }
}
