//! Dropping privilege: look up mail_owner, chroot, setgid, setuid, clear
//! capabilities. Everything that must happen before the jail (opening the
//! log socket, reading passwd) happens before [`drop_privileges`].
//!
//! CONTRACT (other crates build against these; keep them):
//!
//! ```text
//! privsep::is_root() -> bool
//! privsep::lookup_user(name: &str) -> Result<Option<privsep::Account>, Error>
//! privsep::lookup_group(name: &str) -> Result<Option<u32 /*gid*/>, Error>
//! privsep::drop_privileges(account: &Account, chroot: Option<&Path>) -> Result<PrivDropped, Error>
//!     chroot (if Some), chdir("/"), setgroups([gid]), setgid, setuid,
//!     no_new_privs, and verifies that CapEff is empty afterwards.
//! ```
//!
//! Added API: [`check_mail_owner`] and [`check_setgid_group`] (master's
//! start-up checks, with messages that say how to create a missing
//! account), [`enter_chroot`] (chroot=y services that keep running as
//! root; it refuses a jail that is not root's or is writable by others,
//! see [`check_chroot_dir`]), [`invoking_user`], [`unprivileged`] (the development instance),
//! [`memory::trim_heap`] (free heap pages back to the system), [`lean_main!`]
//! (C's `main` for sendmail and postdrop, see [`entry`]).
//!
//! # Security
//!
//! [`drop_privileges`] returns a [`PrivDropped`] only after it checked the
//! result: real, effective and saved ids are the target's, the only group
//! is the target's, the effective, permitted, inheritable and ambient
//! capability sets are empty, no_new_privs is set, `setuid(0)` fails, and
//! `/` is the jail. Call it before starting threads: capability sets are
//! per thread (set-id calls are applied to all threads by the C library).

pub mod entry;
pub mod memory;
pub mod setgid;

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use caps::CapSet;
use nix::errno::Errno;
use nix::unistd::{Gid, Uid};

/// A system account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

/// What the check after dropping privilege found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verify {
    /// Real, effective or saved uid is not the target.
    Uid {
        /// Real, effective, saved.
        got: [u32; 3],
        /// The target uid.
        want: u32,
    },
    /// Real, effective or saved gid is not the target.
    Gid {
        /// Real, effective, saved.
        got: [u32; 3],
        /// The target gid.
        want: u32,
    },
    /// Supplementary groups other than the target's group remain.
    Groups {
        /// The groups found.
        got: Vec<u32>,
    },
    /// A capability set is not empty.
    Capabilities {
        /// Effective, Permitted, Inheritable or Ambient.
        set: &'static str,
        /// How many capabilities it still holds.
        count: usize,
    },
    /// no_new_privs is not set.
    NoNewPrivs,
    /// `setuid(0)` or `setgid(0)` succeeded: privilege can be regained.
    Regained {
        /// `setuid` or `setgid`.
        call: &'static str,
    },
    /// `/` is not the directory asked for as the jail.
    RootDir {
        /// The jail.
        dir: PathBuf,
    },
}

impl fmt::Display for Verify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verify::Uid { got, want } => write!(
                f,
                "uid is real {} effective {} saved {}, want {want}",
                got[0], got[1], got[2]
            ),
            Verify::Gid { got, want } => write!(
                f,
                "gid is real {} effective {} saved {}, want {want}",
                got[0], got[1], got[2]
            ),
            Verify::Groups { got } => write!(f, "supplementary groups remain: {got:?}"),
            Verify::Capabilities { set, count } => {
                write!(f, "{count} capabilities remain in the {set} set")
            }
            Verify::NoNewPrivs => f.write_str("no_new_privs is not set"),
            Verify::Regained { call } => write!(f, "{call}(0) succeeded after dropping privilege"),
            Verify::RootDir { dir } => write!(f, "/ is not {}", dir.display()),
        }
    }
}

/// Errors from privilege operations.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed.
    Sys {
        /// What was being done.
        op: &'static str,
        /// The errno.
        errno: Errno,
    },
    /// A capability operation failed.
    Caps {
        /// What was being done.
        op: &'static str,
        /// The cause.
        source: caps::errors::CapsError,
    },
    /// The mail_owner account does not exist.
    MissingMailOwner {
        /// The mail_owner value.
        name: String,
    },
    /// The mail_owner account has uid 0 or gid 0.
    PrivilegedMailOwner {
        /// The account.
        account: Account,
    },
    /// The setgid_group group does not exist.
    MissingSetgidGroup {
        /// The setgid_group value.
        name: String,
    },
    /// The setgid_group group has gid 0.
    PrivilegedSetgidGroup {
        /// The setgid_group value.
        name: String,
    },
    /// setgid_group has the same gid as mail_owner's group; postdrop's
    /// maildrop protection would then mean nothing.
    SetgidGroupIsMailOwnerGroup {
        /// The setgid_group value.
        name: String,
        /// The shared gid.
        gid: u32,
        /// The mail_owner account.
        owner: String,
    },
    /// Dropping privilege to uid 0 or gid 0 makes no sense and is refused.
    TargetIsPrivileged {
        /// The account asked for.
        account: Account,
    },
    /// The operation needs root and this process is not root.
    NotRoot {
        /// `chroot` or `setuid`.
        op: &'static str,
        /// This process's effective uid.
        euid: u32,
        /// The uid asked for (for `setuid`).
        want: u32,
    },
    /// The chroot directory is not owned by root or is writable by group
    /// or others: whoever can write it can plant files in the jail of a
    /// process that may still be root there.
    UnsafeChroot {
        /// The directory.
        dir: PathBuf,
        /// Its owner.
        uid: u32,
        /// Its permission bits.
        mode: u32,
    },
    /// The check after dropping privilege failed; the process must exit.
    Verify(Verify),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sys { op, errno } => write!(f, "{op}: {}", errno.desc()),
            Error::Caps { op, source } => write!(f, "{op}: {source}"),
            Error::MissingMailOwner { name } => write!(
                f,
                "mail_owner account {name} does not exist; create it with: \
                 useradd -r -d /nonexistent -s /usr/sbin/nologin -U {name}"
            ),
            Error::PrivilegedMailOwner { account } => write!(
                f,
                "mail_owner account {} has privileged user ID {} or group ID {}; \
                 use an unprivileged account such as one created with: \
                 useradd -r -d /nonexistent -s /usr/sbin/nologin -U postfix",
                account.name, account.uid, account.gid
            ),
            Error::MissingSetgidGroup { name } => write!(
                f,
                "setgid_group {name} does not exist; create it with: groupadd -r {name}"
            ),
            Error::PrivilegedSetgidGroup { name } => {
                write!(f, "setgid_group {name} has privileged group ID 0")
            }
            Error::SetgidGroupIsMailOwnerGroup { name, gid, owner } => write!(
                f,
                "setgid_group {name} has the same group ID {gid} as mail_owner {owner}"
            ),
            Error::TargetIsPrivileged { account } => write!(
                f,
                "refusing to drop privilege to {} (uid {}, gid {}): a privileged id",
                account.name, account.uid, account.gid
            ),
            Error::NotRoot { op, euid, want } => write!(
                f,
                "{op} to uid {want}: not running as root (effective uid {euid})"
            ),
            Error::UnsafeChroot { dir, uid, mode } => write!(
                f,
                "refusing to chroot to {}: owned by uid {uid} with mode {:04o}; \
                 it must be owned by root and not writable by group or others",
                dir.display(),
                mode & 0o7777
            ),
            Error::Verify(v) => write!(f, "privilege drop check failed: {v}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Caps { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<Verify> for Error {
    fn from(v: Verify) -> Error {
        Error::Verify(v)
    }
}

fn sys(op: &'static str) -> impl Fn(Errno) -> Error {
    move |errno| Error::Sys { op, errno }
}

fn capserr(op: &'static str) -> impl Fn(caps::errors::CapsError) -> Error {
    move |source| Error::Caps { op, source }
}

/// Proof that this process gave up its privilege (or never had it).
/// Only [`drop_privileges`] (after its checks) and [`unprivileged`] make
/// one; a daemon serves only with one in hand.
#[derive(Debug)]
pub struct PrivDropped(());

/// True when the effective uid is 0.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Looks up a user by name.
///
/// # Errors
/// The passwd lookup failed.
pub fn lookup_user(name: &str) -> Result<Option<Account>, Error> {
    let u = nix::unistd::User::from_name(name).map_err(sys("getpwnam"))?;
    Ok(u.map(|u| Account {
        name: u.name,
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
    }))
}

/// Looks up a group id by name.
///
/// # Errors
/// The group lookup failed.
pub fn lookup_group(name: &str) -> Result<Option<u32>, Error> {
    let g = nix::unistd::Group::from_name(name).map_err(sys("getgrnam"))?;
    Ok(g.map(|g| g.gid.as_raw()))
}

/// The account this process runs as (effective uid, effective gid), for
/// the development instance. The name is the uid in digits when passwd
/// does not know it.
///
/// # Errors
/// The passwd lookup failed.
pub fn invoking_user() -> Result<Account, Error> {
    let uid = nix::unistd::geteuid();
    let gid = nix::unistd::getegid();
    let name = nix::unistd::User::from_uid(uid)
        .map_err(sys("getpwuid"))?
        .map_or_else(|| uid.to_string(), |u| u.name);
    Ok(Account {
        name,
        uid: uid.as_raw(),
        gid: gid.as_raw(),
    })
}

/// Looks up mail_owner for master's start-up check, as Postfix does:
/// the account must exist and must have neither uid 0 nor gid 0.
///
/// # Errors
/// [`Error::MissingMailOwner`] (its message says how to create the
/// account), [`Error::PrivilegedMailOwner`], or a failed lookup.
pub fn check_mail_owner(name: &str) -> Result<Account, Error> {
    let account = lookup_user(name)?.ok_or_else(|| Error::MissingMailOwner {
        name: name.to_owned(),
    })?;
    if account.uid == 0 || account.gid == 0 {
        return Err(Error::PrivilegedMailOwner { account });
    }
    Ok(account)
}

/// Looks up setgid_group (the group postdrop and postqueue run as): it
/// must exist, must not be gid 0, and must differ from mail_owner's group.
/// Returns its gid.
///
/// # Errors
/// [`Error::MissingSetgidGroup`] (its message says how to create it),
/// [`Error::PrivilegedSetgidGroup`], [`Error::SetgidGroupIsMailOwnerGroup`],
/// or a failed lookup.
pub fn check_setgid_group(name: &str, mail_owner: &Account) -> Result<u32, Error> {
    let gid = lookup_group(name)?.ok_or_else(|| Error::MissingSetgidGroup {
        name: name.to_owned(),
    })?;
    if gid == 0 {
        return Err(Error::PrivilegedSetgidGroup {
            name: name.to_owned(),
        });
    }
    if gid == mail_owner.gid {
        return Err(Error::SetgidGroupIsMailOwnerGroup {
            name: name.to_owned(),
            gid,
            owner: mail_owner.name.clone(),
        });
    }
    Ok(gid)
}

/// Device and inode of a directory, to recognise it as `/` after chroot.
fn dir_id(path: &Path) -> Result<(u64, u64), Error> {
    let meta = std::fs::metadata(path).map_err(|e| Error::Sys {
        op: "stat chroot directory",
        errno: e
            .raw_os_error()
            .map_or(Errno::UnknownErrno, Errno::from_raw),
    })?;
    Ok((meta.dev(), meta.ino()))
}

/// Checks a jail before [`enter_chroot`] uses it: owned by root and not
/// writable by group or others (what `postfix check` asks of
/// queue_directory).
///
/// # Errors
/// [`Error::UnsafeChroot`], or the directory cannot be examined.
pub fn check_chroot_dir(dir: &Path) -> Result<(), Error> {
    let meta = std::fs::metadata(dir).map_err(|e| Error::Sys {
        op: "stat chroot directory",
        errno: e
            .raw_os_error()
            .map_or(Errno::UnknownErrno, Errno::from_raw),
    })?;
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(Error::UnsafeChroot {
            dir: dir.to_path_buf(),
            uid: meta.uid(),
            mode: meta.mode(),
        });
    }
    Ok(())
}

/// Chroots to `dir` and changes to the new `/`, for services that stay
/// root inside the jail (chroot=y, unpriv=n). Checks `dir` first
/// ([`check_chroot_dir`]) and verifies that `/` is `dir` afterwards.
///
/// # Errors
/// Not root, an unsafe jail, chroot or chdir failed, or `/` is not `dir`
/// afterwards.
pub fn enter_chroot(dir: &Path) -> Result<(), Error> {
    if !is_root() {
        return Err(Error::NotRoot {
            op: "chroot",
            euid: nix::unistd::geteuid().as_raw(),
            want: 0,
        });
    }
    check_chroot_dir(dir)?;
    let want = dir_id(dir)?;
    nix::unistd::chroot(dir).map_err(sys("chroot"))?;
    nix::unistd::chdir("/").map_err(sys("chdir"))?;
    if dir_id(Path::new("/"))? != want {
        return Err(Verify::RootDir {
            dir: dir.to_path_buf(),
        }
        .into());
    }
    Ok(())
}

/// Chroots (when asked) and becomes `account` for good: setgroups to its
/// one group, real, effective and saved gid and uid, no_new_privs, all
/// capability sets cleared; then checks all of that (see the crate docs)
/// before it hands out the proof.
///
/// As root, `account` must not have uid 0 or gid 0. Not as root (the
/// development instance), it may only make permanent the uid the process
/// already runs as, and cannot chroot.
///
/// # Errors
/// Any step or check failed; the caller must not go on serving, and
/// should exit (with `fatal`).
pub fn drop_privileges(account: &Account, chroot: Option<&Path>) -> Result<PrivDropped, Error> {
    if account.uid == 0 || account.gid == 0 {
        return Err(Error::TargetIsPrivileged {
            account: account.clone(),
        });
    }
    let uid = Uid::from_raw(account.uid);
    let gid = Gid::from_raw(account.gid);
    let was_root = is_root();
    if was_root {
        if let Some(dir) = chroot {
            enter_chroot(dir)?;
        }
        // Drop the bounding set while CAP_SETPCAP is still held, so that
        // nothing executed later can get capabilities back from file
        // capabilities. Best effort: no_new_privs below has the same
        // effect, and a container may lack CAP_SETPCAP.
        let _ = caps::clear(None, CapSet::Bounding);
        nix::unistd::setgroups(&[gid]).map_err(sys("setgroups"))?;
    } else {
        let euid = nix::unistd::geteuid();
        if let Some(_dir) = chroot {
            return Err(Error::NotRoot {
                op: "chroot",
                euid: euid.as_raw(),
                want: account.uid,
            });
        }
        if euid != uid {
            return Err(Error::NotRoot {
                op: "setuid",
                euid: euid.as_raw(),
                want: account.uid,
            });
        }
    }
    nix::unistd::setresgid(gid, gid, gid).map_err(sys("setresgid"))?;
    nix::unistd::setresuid(uid, uid, uid).map_err(sys("setresuid"))?;
    nix::sys::prctl::set_no_new_privs().map_err(sys("prctl(PR_SET_NO_NEW_PRIVS)"))?;
    clear_capabilities()?;
    verify(account, chroot, was_root)?;
    Ok(PrivDropped(()))
}

/// Empties the ambient, inheritable, effective and permitted sets of the
/// calling thread. After setresuid away from 0 the kernel has already
/// cleared effective and permitted, but not inheritable.
fn clear_capabilities() -> Result<(), Error> {
    // PR_CAP_AMBIENT is missing on kernels before 4.3; nothing to clear there.
    if caps::runtime::ambient_set_supported().is_ok() {
        caps::clear(None, CapSet::Ambient).map_err(capserr("clear ambient capabilities"))?;
    }
    caps::clear(None, CapSet::Inheritable).map_err(capserr("clear inheritable capabilities"))?;
    caps::clear(None, CapSet::Effective).map_err(capserr("clear effective capabilities"))?;
    caps::clear(None, CapSet::Permitted).map_err(capserr("clear permitted capabilities"))?;
    Ok(())
}

/// The checks behind [`PrivDropped`].
fn verify(account: &Account, chroot: Option<&Path>, was_root: bool) -> Result<(), Error> {
    let r = nix::unistd::getresuid().map_err(sys("getresuid"))?;
    let got = [r.real.as_raw(), r.effective.as_raw(), r.saved.as_raw()];
    if got.iter().any(|&id| id != account.uid) {
        return Err(Verify::Uid {
            got,
            want: account.uid,
        }
        .into());
    }
    let g = nix::unistd::getresgid().map_err(sys("getresgid"))?;
    let got = [g.real.as_raw(), g.effective.as_raw(), g.saved.as_raw()];
    if got.iter().any(|&id| id != account.gid) {
        return Err(Verify::Gid {
            got,
            want: account.gid,
        }
        .into());
    }
    if was_root {
        let groups: Vec<u32> = nix::unistd::getgroups()
            .map_err(sys("getgroups"))?
            .iter()
            .map(|g| g.as_raw())
            .collect();
        if groups.iter().any(|&g| g != account.gid) {
            return Err(Verify::Groups { got: groups }.into());
        }
    }
    let mut sets = vec![
        ("Effective", CapSet::Effective),
        ("Permitted", CapSet::Permitted),
        ("Inheritable", CapSet::Inheritable),
    ];
    if caps::runtime::ambient_set_supported().is_ok() {
        sets.push(("Ambient", CapSet::Ambient));
    }
    for (name, set) in sets {
        let held = caps::read(None, set).map_err(capserr("read capabilities"))?;
        if !held.is_empty() {
            return Err(Verify::Capabilities {
                set: name,
                count: held.len(),
            }
            .into());
        }
    }
    if !nix::sys::prctl::get_no_new_privs().map_err(sys("prctl(PR_GET_NO_NEW_PRIVS)"))? {
        return Err(Verify::NoNewPrivs.into());
    }
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(Verify::Regained { call: "setuid" }.into());
    }
    if nix::unistd::setgid(Gid::from_raw(0)).is_ok() {
        return Err(Verify::Regained { call: "setgid" }.into());
    }
    if let Some(dir) = chroot {
        // `/` was checked against `dir` right after chroot; check again
        // that nothing moved us out of the jail since.
        let root = dir_id(Path::new("/"))?;
        let cwd = dir_id(Path::new("."))?;
        if root != cwd {
            return Err(Verify::RootDir {
                dir: dir.to_path_buf(),
            }
            .into());
        }
    }
    Ok(())
}

/// For a process that never had privilege (the development instance).
pub fn unprivileged() -> PrivDropped {
    PrivDropped(())
}

#[cfg(test)]
mod tests;
