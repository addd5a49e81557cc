//! An indexed (hash:) table rewritten in place through a descriptor: for
//! a daemon that keeps its own table up to date from inside a chroot
//! jail (verify's address_verify_map), where the table's path no longer
//! exists. The file is opened before the jail; each write truncates it,
//! writes the whole index and syncs it. Only the file is kept open, never
//! its directory: a directory descriptor from outside the jail would let
//! a subverted process climb out of it (fchdir).
//!
//! A reader that comes during a rewrite (postmap -s), or a crash in the
//! middle of one, sees an empty or partial index (the index's header is
//! written last): this is for caches that may lose entries, not for
//! tables an administrator writes (those use [`crate::hash::write_index`],
//! which renames a complete file into place).

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::Path;

use crate::Error;

/// Replaces the contents of the index file open as `file` (for reading
/// and writing) with `entries`; `name` is for messages.
///
/// # Errors
///
/// [`Error::Io`] naming `name`, when the file cannot be truncated,
/// written or synced.
pub fn rewrite_index(file: &File, name: &Path, entries: &[(String, String)]) -> Result<(), Error> {
    let written = (|| -> std::io::Result<()> {
        file.set_len(0)?;
        let mut f = file.try_clone()?;
        f.seek(SeekFrom::Start(0))?;
        let mut maker = cdb2::CDBMake::new(f)?;
        for (k, v) in entries {
            maker.add(k.as_bytes(), v.as_bytes())?;
        }
        maker.finish()?;
        file.sync_data()
    })();
    written.map_err(|e| Error::io(name, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewritten_index_reads_back_and_replaces_the_old_one() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("cache.db");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .unwrap();
        let e = |k: &str, v: &str| (k.to_string(), v.to_string());
        let many: Vec<_> = (0..200)
            .map(|i| e(&format!("k{i}"), "long value"))
            .collect();
        rewrite_index(&file, &path, &many).unwrap();
        rewrite_index(&file, &path, &[e("a", "3")]).unwrap();
        let got = crate::hash::read_all(&path).unwrap();
        assert_eq!(got, vec![e("a", "3")]);
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no other file is made");
    }
}
