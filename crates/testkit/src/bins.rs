//! Where tests find the workspace's built binaries.
//!
//! Cargo puts them in `target/debug`, found from the running test
//! executable (`target/debug/deps/NAME-HASH`). Tests also run binaries as
//! other users (a development instance run by `nobody`, master's children
//! as `postfix`), which cannot execute anything under a checkout below a
//! directory they may not search, such as /root (mode 0700). Then
//! [`bin_dir`] is instead a directory others can reach,
//! `TMPDIR/testkit-bin-HASH` (owned by the user running the tests, mode
//! 0755), holding hard links to the built executables (copies when a link
//! is impossible), refreshed when cargo rebuilds one.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// `target/debug`: where cargo put the binaries.
pub(crate) fn built_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The directory of the workspace's built binaries: `target/debug` when
/// every user may search the path to it, else a linked copy that they may
/// (see the module comment). Computed once per test process.
pub fn bin_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let built = built_dir();
        if others_can_search(&built) {
            built
        } else {
            reachable_copy(&built)
        }
    })
    .clone()
}

/// True when `dir` and every directory above it grant search (x) to
/// others.
pub(crate) fn others_can_search(dir: &Path) -> bool {
    dir.ancestors()
        .all(|d| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

/// Fills `TMPDIR/testkit-bin-HASH` with links to (or copies of) the
/// executables in `built` and returns it.
fn reachable_copy(built: &Path) -> PathBuf {
    let mut h = DefaultHasher::new();
    built.hash(&mut h);
    nix::unistd::geteuid().as_raw().hash(&mut h);
    let dir = std::env::temp_dir().join(format!("testkit-bin-{:016x}", h.finish()));
    own_dir(&dir);
    assert!(
        others_can_search(&dir),
        "{} is under a checkout other users cannot search, and so is {}: \
         move the checkout (or TMPDIR) below a directory of mode 0755",
        built.display(),
        dir.display()
    );
    for entry in std::fs::read_dir(built).unwrap().flatten() {
        let src = entry.path();
        let Ok(meta) = std::fs::metadata(&src) else {
            continue;
        };
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            sync(&src, &meta, &dir.join(entry.file_name()));
        }
    }
    dir
}

/// Creates `dir` (mode 0755) or checks that the existing one is ours: a
/// real directory owned by us that nobody else may write.
fn own_dir(dir: &Path) {
    match std::fs::DirBuilder::new().mode(0o755).create(dir) {
        Ok(()) => {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => panic!("cannot create {}: {e}", dir.display()),
    }
    let meta = std::fs::symlink_metadata(dir).unwrap();
    assert!(
        meta.is_dir()
            && meta.uid() == nix::unistd::geteuid().as_raw()
            && meta.permissions().mode() & 0o022 == 0,
        "{} is not a directory of ours that only we may write: remove it",
        dir.display()
    );
}

/// Makes `dest` the same file as `src`: a hard link to it when possible
/// and others may execute it, else a copy of mode 0755 with its mtime.
/// Left alone when already so. Replaced atomically (test processes run at
/// once).
fn sync(src: &Path, meta: &std::fs::Metadata, dest: &Path) {
    if let Ok(d) = std::fs::symlink_metadata(dest) {
        let same_inode = (d.dev(), d.ino()) == (meta.dev(), meta.ino());
        let same_copy = d.len() == meta.len()
            && d.mtime() == meta.mtime()
            && d.mtime_nsec() == meta.mtime_nsec();
        if same_inode || same_copy {
            return;
        }
    }
    let name = dest.file_name().unwrap().to_string_lossy();
    let tmp = dest.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let others_may_run = meta.permissions().mode() & 0o005 == 0o005;
    if !(others_may_run && std::fs::hard_link(src, &tmp).is_ok()) {
        std::fs::copy(src, &tmp)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", src.display(), tmp.display()));
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        let f = std::fs::File::options().write(true).open(&tmp).unwrap();
        f.set_modified(meta.modified().unwrap()).unwrap();
    }
    std::fs::rename(&tmp, dest).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_parent_is_not_searchable_by_others() {
        let top = tempfile::tempdir().unwrap();
        let inner = top.path().join("checkout");
        std::fs::create_dir(&inner).unwrap();
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(!others_can_search(&inner));
        std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(others_can_search(&inner));
    }

    #[test]
    fn copy_of_a_private_checkout_is_linked_and_refreshed() {
        let top = tempfile::tempdir().unwrap();
        let built = top.path().join("target/debug");
        std::fs::create_dir_all(&built).unwrap();
        std::fs::write(built.join("prog"), "v1").unwrap();
        std::fs::set_permissions(built.join("prog"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::write(built.join("prog.d"), "deps").unwrap();
        std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let dir = reachable_copy(&built);
        assert!(others_can_search(&dir));
        assert_eq!(std::fs::read_to_string(dir.join("prog")).unwrap(), "v1");
        assert!(!dir.join("prog.d").exists(), "only executables");
        // Rebuilt (a new file): the next run links the new one.
        std::fs::remove_file(built.join("prog")).unwrap();
        std::fs::write(built.join("prog"), "v2").unwrap();
        std::fs::set_permissions(built.join("prog"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        assert_eq!(reachable_copy(&built), dir);
        assert_eq!(std::fs::read_to_string(dir.join("prog")).unwrap(), "v2");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
