//! Which version of a file a table was read from: device, inode, size and
//! modification time, compared to notice a replaced or edited file.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The identity of one version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileIdent {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileIdent {
    /// The identity of the file now at `path`.
    pub(crate) fn of(path: &Path) -> std::io::Result<FileIdent> {
        let m = fs::metadata(path)?;
        Ok(FileIdent {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
        })
    }
}

/// True when both files exist and `derived` was modified before `source`
/// (an index that postmap has not rebuilt since the last edit).
pub(crate) fn is_older(derived: &Path, source: &Path) -> bool {
    let mtime = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    match (mtime(derived), mtime(source)) {
        (Some(d), Some(s)) => d < s,
        _ => false,
    }
}
