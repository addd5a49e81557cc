//! An indexed (hash:) table written relative to an open directory: for a
//! daemon that keeps its own table up to date from inside a chroot jail
//! (verify's address_verify_map), where the table's path no longer
//! exists. The directory is opened before the jail; each write builds
//! the whole index in a new file beside the old one (`openat`), fsyncs
//! it, renames it over the old one (`renameat`) and fsyncs the directory,
//! as [`crate::hash::write_index`] does by path: readers (postmap -q, -s)
//! see the old table or the new one, never a partial one.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::Mode;

use crate::Error;

/// Writes `entries` as the index `name` in directory `dir` (opened with
/// `File::open` on the directory).
///
/// # Errors
///
/// [`Error::Io`] naming `name`, when a file cannot be created, written,
/// synced or renamed.
pub fn write_index_in(dir: &File, name: &str, entries: &[(String, String)]) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::io(Path::new(name), e);
    let nix_io = |e: nix::Error| io(std::io::Error::from(e));
    let tmp = format!(".{name}.{}.tmp", std::process::id());
    let fd = openat(
        dir.as_fd(),
        tmp.as_str(),
        OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::from_bits_truncate(crate::hash::DB_MODE),
    )
    .map_err(nix_io)?;
    let file = File::from(fd);
    let written = (|| -> std::io::Result<()> {
        let mut maker = cdb2::CDBMake::new(file.try_clone()?)?;
        for (k, v) in entries {
            maker.add(k.as_bytes(), v.as_bytes())?;
        }
        maker.finish()?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = nix::unistd::unlinkat(
            dir.as_fd(),
            tmp.as_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
        return Err(io(e));
    }
    renameat(dir.as_fd(), tmp.as_str(), dir.as_fd(), name).map_err(nix_io)?;
    dir.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_index_reads_back_and_replaces_the_old_one() {
        let d = tempfile::tempdir().unwrap();
        let dir = File::open(d.path()).unwrap();
        let e = |k: &str, v: &str| (k.to_string(), v.to_string());
        write_index_in(&dir, "cache.db", &[e("a", "1"), e("b", "2")]).unwrap();
        write_index_in(&dir, "cache.db", &[e("a", "3")]).unwrap();
        let got = crate::hash::read_all(&d.path().join("cache.db")).unwrap();
        assert_eq!(got, vec![e("a", "3")]);
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left");
    }
}
