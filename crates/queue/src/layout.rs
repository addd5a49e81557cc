//! The queue directory tree, from spool-layout/queue-dirs.
//!
//! The list of directories, with owner, group, mode and whether they are
//! hashed, lives in one plain text file at the top of the source tree,
//! embedded here at compile time. [`create_or_repair`] makes the tree match
//! it (`postfix check`, `postfix start`); [`entries`] gives the list to
//! anyone who needs it.

use crate::error::Error;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// The text of spool-layout/queue-dirs.
pub const SPOOL_LAYOUT: &str = include_str!("../../../spool-layout/queue-dirs");

/// Who owns a queue directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// root.
    Root,
    /// The mail_owner account.
    MailOwner,
}

/// Which group a queue directory has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// The owner's primary group.
    Owner,
    /// The setgid_group (postdrop).
    SetgidGroup,
}

/// One directory of the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirSpec {
    /// Name relative to queue_directory; "." for queue_directory itself.
    pub name: &'static str,
    /// Owner.
    pub owner: Owner,
    /// Group.
    pub group: Group,
    /// Permission bits, including setgid and sticky.
    pub mode: u32,
    /// Queue files live in one level of hashed subdirectories.
    pub hashed: bool,
}

fn parse_line(line: &'static str) -> Result<Option<DirSpec>, &'static str> {
    let line = line.split('#').next().unwrap_or("").trim();
    if line.is_empty() {
        return Ok(None);
    }
    let f: Vec<&'static str> = line.split_whitespace().collect();
    let [name, owner, group, mode, hashed] = f.as_slice() else {
        return Err("expected 5 fields: name owner group mode hashed");
    };
    let owner = match *owner {
        "root" => Owner::Root,
        "mail_owner" => Owner::MailOwner,
        _ => return Err("owner must be root or mail_owner"),
    };
    let group = match *group {
        "-" => Group::Owner,
        "setgid_group" => Group::SetgidGroup,
        _ => return Err("group must be - or setgid_group"),
    };
    let mode = u32::from_str_radix(mode, 8).map_err(|_| "mode must be octal")?;
    if mode > 0o7777 {
        return Err("mode out of range");
    }
    let hashed = match *hashed {
        "y" => true,
        "n" => false,
        _ => return Err("hashed must be y or n"),
    };
    if name.contains('/') || name.is_empty() || *name == ".." {
        return Err("name must be one path component");
    }
    Ok(Some(DirSpec {
        name,
        owner,
        group,
        mode,
        hashed,
    }))
}

fn parse(text: &'static str) -> Result<Vec<DirSpec>, Error> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match parse_line(line) {
            Ok(Some(spec)) => out.push(spec),
            Ok(None) => {}
            Err(problem) => {
                return Err(Error::Layout {
                    line: i + 1,
                    problem,
                });
            }
        }
    }
    Ok(out)
}

static ENTRIES: LazyLock<Result<Vec<DirSpec>, (usize, &'static str)>> = LazyLock::new(|| {
    parse(SPOOL_LAYOUT).map_err(|e| match e {
        Error::Layout { line, problem } => (line, problem),
        _ => (0, "unexpected error"),
    })
});

/// Every directory of the layout, in file order.
///
/// # Errors
/// [`Error::Layout`] if the embedded file is bad (a unit test prevents it).
pub fn entries() -> Result<&'static [DirSpec], Error> {
    match &*ENTRIES {
        Ok(v) => Ok(v),
        Err((line, problem)) => Err(Error::Layout {
            line: *line,
            problem,
        }),
    }
}

/// Whether the directory `name` is hashed.
pub(crate) fn is_hashed(name: &str) -> bool {
    entries()
        .map(|e| e.iter().any(|d| d.name == name && d.hashed))
        .unwrap_or(false)
}

/// Creates every directory spool-layout/ lists and repairs owner and mode.
///
/// `owner` is mail_owner's (uid, gid) when running as root; `None` means
/// not root: directories are created and modes fixed, nothing is chowned.
/// `setgid_gid` is the setgid_group's gid (the owner's gid if `None`).
/// Existing hashed subdirectories are repaired like their queue. Returns one
/// line per repair made, for `postfix check` to log.
///
/// # Errors
/// [`Error::NotADirectory`] when a queue path is a file or a symbolic link,
/// [`Error::Io`] when a directory cannot be created, chowned or chmodded.
pub fn create_or_repair(
    queue_dir: &Path,
    owner: Option<(u32, u32)>,
    setgid_gid: Option<u32>,
) -> Result<Vec<String>, Error> {
    let mut lines = Vec::new();
    for spec in entries()? {
        let path = if spec.name == "." {
            queue_dir.to_path_buf()
        } else {
            queue_dir.join(spec.name)
        };
        let want = owner.map(|(uid, gid)| match (spec.owner, spec.group) {
            (Owner::Root, _) => (0, 0),
            (Owner::MailOwner, Group::Owner) => (uid, gid),
            (Owner::MailOwner, Group::SetgidGroup) => (uid, setgid_gid.unwrap_or(gid)),
        });
        repair_dir(&path, spec.mode, want, true, &mut lines)?;
        if spec.hashed {
            for sub in subdirs(&path)? {
                repair_dir(&sub, spec.mode, want, false, &mut lines)?;
            }
        }
    }
    Ok(lines)
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(Error::io(dir))? {
        let entry = entry.map_err(Error::io(dir))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

fn repair_dir(
    path: &Path,
    mode: u32,
    owner: Option<(u32, u32)>,
    create: bool,
    lines: &mut Vec<String>,
) -> Result<(), Error> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(mode & 0o777)
                .create(path)
                .map_err(Error::io(path))?;
            lines.push(format!("created directory {}", path.display()));
            std::fs::symlink_metadata(path).map_err(Error::io(path))?
        }
        Err(e) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source: e,
            });
        }
    };
    if !meta.file_type().is_dir() {
        return Err(Error::NotADirectory {
            path: path.to_path_buf(),
        });
    }
    if let Some((uid, gid)) = owner
        && (meta.uid(), meta.gid()) != (uid, gid)
    {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(Error::io(path))?;
        lines.push(format!(
            "fixed owner of {}: {}:{} -> {}:{}",
            path.display(),
            meta.uid(),
            meta.gid(),
            uid,
            gid
        ));
    }
    // Re-read: a chown may clear set-id bits.
    let have = std::fs::symlink_metadata(path)
        .map_err(Error::io(path))?
        .mode()
        & 0o7777;
    if have != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(Error::io(path))?;
        lines.push(format!(
            "fixed mode of {}: {:04o} -> {:04o}",
            path.display(),
            have,
            mode
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::Queue;

    fn mode_of(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn embedded_layout_parses_and_lists_every_queue() {
        let e = entries().unwrap();
        for q in Queue::ALL {
            assert!(e.iter().any(|d| d.name == q.as_str()), "{q} missing");
        }
        for name in [".", "public", "private", "pid"] {
            assert!(e.iter().any(|d| d.name == name), "{name} missing");
        }
        let get = |n: &str| *e.iter().find(|d| d.name == n).unwrap();
        assert_eq!(get("maildrop").mode, 0o1730);
        assert_eq!(get("maildrop").group, Group::SetgidGroup);
        assert_eq!(get("public").mode, 0o2710);
        assert_eq!(get("private").mode, 0o700);
        assert_eq!(get("pid").owner, Owner::Root);
        assert_eq!(get("pid").mode, 0o755);
        assert!(get("deferred").hashed);
        assert!(!get("active").hashed);
    }

    #[test]
    fn bad_lines_are_named() {
        assert!(matches!(
            parse("a b c\n"),
            Err(Error::Layout { line: 1, .. })
        ));
        assert!(matches!(
            parse("# c\nx root - 0799 n\n"),
            Err(Error::Layout { line: 2, .. })
        ));
        assert!(matches!(
            parse("../x root - 0700 n\n"),
            Err(Error::Layout { line: 1, .. })
        ));
    }

    #[test]
    fn creates_then_repairs_modes_without_owner() {
        let q = tempfile::tempdir().unwrap();
        let made = create_or_repair(q.path(), None, None).unwrap();
        assert!(
            made.iter().filter(|l| l.starts_with("created")).count() >= 14,
            "{made:?}"
        );
        assert_eq!(mode_of(&q.path().join("maildrop")), 0o1730);
        assert_eq!(mode_of(&q.path().join("public")), 0o2710);
        assert_eq!(mode_of(&q.path().join("active")), 0o700);
        assert_eq!(
            create_or_repair(q.path(), None, None).unwrap(),
            Vec::<String>::new()
        );

        std::fs::set_permissions(
            q.path().join("active"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        std::fs::remove_dir(q.path().join("hold")).unwrap();
        std::fs::create_dir(q.path().join("deferred/x")).unwrap();
        std::fs::set_permissions(
            q.path().join("deferred/x"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let fixed = create_or_repair(q.path(), None, None).unwrap();
        assert_eq!(fixed.len(), 3, "{fixed:?}");
        assert!(
            fixed
                .iter()
                .any(|l| l.contains("active") && l.contains("0777 -> 0700"))
        );
        assert!(
            fixed
                .iter()
                .any(|l| l.starts_with("created") && l.ends_with("hold"))
        );
        assert_eq!(mode_of(&q.path().join("deferred/x")), 0o700);
    }

    #[test]
    fn a_file_in_place_of_a_directory_is_an_error() {
        let q = tempfile::tempdir().unwrap();
        std::fs::write(q.path().join("active"), b"").unwrap();
        let e = create_or_repair(q.path(), None, None).unwrap_err();
        assert!(matches!(e, Error::NotADirectory { .. }), "{e}");
        std::fs::remove_file(q.path().join("active")).unwrap();
        std::os::unix::fs::symlink("/tmp", q.path().join("active")).unwrap();
        assert!(create_or_repair(q.path(), None, None).is_err());
    }

    #[test]
    fn as_root_chowns_to_mail_owner_and_setgid_group() {
        if !nix::unistd::geteuid().is_root() {
            testkit::skip("needs root because it chowns directories to another uid");
            return;
        }
        // Ids that need no account: chown takes any number.
        let (uid, gid, sgid) = (54_321u32, 54_322u32, 54_323u32);
        let q = tempfile::tempdir().unwrap();
        create_or_repair(q.path(), Some((uid, gid)), Some(sgid)).unwrap();
        let own = |n: &str| {
            let m = std::fs::metadata(q.path().join(n)).unwrap();
            (m.uid(), m.gid())
        };
        assert_eq!(own("active"), (uid, gid));
        assert_eq!(own("maildrop"), (uid, sgid));
        assert_eq!(own("public"), (uid, sgid));
        assert_eq!(own("pid"), (0, 0));
        assert_eq!(own("."), (0, 0));
        assert_eq!(mode_of(&q.path().join("public")), 0o2710);
        assert_eq!(mode_of(&q.path().join("maildrop")), 0o1730);

        std::os::unix::fs::lchown(q.path().join("incoming"), Some(0), Some(0)).unwrap();
        let fixed = create_or_repair(q.path(), Some((uid, gid)), Some(sgid)).unwrap();
        assert_eq!(fixed.len(), 1, "{fixed:?}");
        assert!(fixed[0].contains("0:0 -> 54321:54322"), "{fixed:?}");
        assert_eq!(own("incoming"), (uid, gid));
    }
}
