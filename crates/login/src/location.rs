//! Where a user's mail is: the rules local and virtual deliver by
//! (virtual_mailbox_maps under virtual_mailbox_base for virtual users;
//! home_mailbox or mail_spool_directory for system users), and whom the
//! mail process runs as. Used by pop3d's and imapd's privileged service
//! process after a verified login, never by the login process itself.

use std::path::{Component, Path, PathBuf};

use mailstore::lock::LockOptions;
use mailstore::mbox::{self, DotlockPolicy};
use tables::{AddressSearch, Maps};

/// What the location rules need from main.cf.
pub struct LocationSettings {
    virtual_base: PathBuf,
    mailbox_maps: Result<Maps, String>,
    uid_maps: Result<Maps, String>,
    gid_maps: Result<Maps, String>,
    home_mailbox: String,
    spool: PathBuf,
    delimiters: String,
    lock: LockOptions,
    mbox_dotlock: bool,
    mbox_fcntl: bool,
}

impl std::fmt::Debug for LocationSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocationSettings").finish_non_exhaustive()
    }
}

/// A user's mailbox and whom to run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The Maildir or mbox.
    pub path: PathBuf,
    /// A Maildir (the path ended in `/`).
    pub maildir: bool,
    /// The uid and gid the mail process runs as.
    pub uid: u32,
    /// See `uid`.
    pub gid: u32,
}

impl Target {
    /// Makes the mail process the mailbox owner (uid, gid; root only: a
    /// development instance runs as one user throughout). `user` names it
    /// in the log.
    ///
    /// # Errors
    /// The switch failed: the process must not serve.
    pub fn become_owner(&self, user: &str) -> Result<(), String> {
        if !privsep::is_root() {
            return Ok(());
        }
        let account = privsep::Account {
            name: user.to_string(),
            uid: self.uid,
            gid: self.gid,
        };
        privsep::drop_privileges(&account, None)
            .map(|_| ())
            .map_err(|e| format!("{user}: mail process: become uid {}: {e}", self.uid))
    }
}

impl LocationSettings {
    /// The lock waits (deliver_lock_attempts, deliver_lock_delay, stale_lock_time).
    pub fn lock_options(&self) -> LockOptions {
        self.lock.clone()
    }

    /// Reads the settings and opens the tables.
    pub fn load(config: &config::Config, open_tables: bool) -> LocationSettings {
        let open = |name: &str| {
            if !open_tables {
                return Err(format!("{name}: not opened in this process"));
            }
            Maps::open(&config.str(name), tables::Flags::default())
                .map_err(|e| format!("{name}: {e}"))
        };
        let locks = config.str("virtual_mailbox_lock").to_lowercase();
        LocationSettings {
            virtual_base: PathBuf::from(config.str("virtual_mailbox_base")),
            mailbox_maps: open("virtual_mailbox_maps"),
            uid_maps: open("virtual_uid_maps"),
            gid_maps: open("virtual_gid_maps"),
            home_mailbox: config.str("home_mailbox"),
            spool: PathBuf::from(config.str("mail_spool_directory")),
            delimiters: config.str("recipient_delimiter"),
            lock: LockOptions {
                attempts: u32::try_from(config.int("deliver_lock_attempts")).unwrap_or(20),
                delay: config.time("deliver_lock_delay"),
                stale_after: config.time("stale_lock_time"),
            },
            mbox_dotlock: locks.contains("dotlock"),
            mbox_fcntl: locks.contains("fcntl"),
        }
    }

    fn lookup(
        &self,
        maps: &Result<Maps, String>,
        name: &str,
        user: &str,
    ) -> Result<Option<String>, String> {
        let maps = maps.as_ref().map_err(Clone::clone)?;
        if maps.is_empty() {
            return Ok(None);
        }
        let search = AddressSearch {
            delimiters: &self.delimiters,
            local_domain: false,
            propagate_extension: false,
        };
        tables::find_address(maps, user, &search)
            .map(|f| f.map(|f| f.value.trim().to_string()))
            .map_err(|e| format!("{name} lookup for {user}: {e}"))
    }

    /// Finds `user`'s mailbox: a virtual user when virtual_mailbox_maps
    /// knows the name, else a system account. Ok(None): no such mailbox.
    ///
    /// # Errors
    /// Table errors and bad table results (configuration errors).
    pub fn locate(&self, user: &str) -> Result<Option<Target>, String> {
        let root = nix::unistd::geteuid().is_root();
        let (my_uid, my_gid) = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        if user.contains('@') {
            let Some(result) = self.lookup(&self.mailbox_maps, "virtual_mailbox_maps", user)?
            else {
                return Ok(None);
            };
            let rel = Path::new(result.trim_start_matches('/'));
            if result.is_empty() || rel.components().any(|c| matches!(c, Component::ParentDir)) {
                return Err(format!(
                    "bad mailbox path {result} for {user} in virtual_mailbox_maps"
                ));
            }
            let (uid, gid) = if root {
                let num = |maps, name| -> Result<u32, String> {
                    self.lookup(maps, name, user)?
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| format!("{user}: no numeric result in {name}"))
                };
                (
                    num(&self.uid_maps, "virtual_uid_maps")?,
                    num(&self.gid_maps, "virtual_gid_maps")?,
                )
            } else {
                (my_uid, my_gid)
            };
            return Ok(Some(Target {
                path: self.virtual_base.join(rel),
                maildir: result.ends_with('/'),
                uid,
                gid,
            }));
        }
        let Ok(Some(pw)) = nix::unistd::User::from_name(user) else {
            return Ok(None);
        };
        let (path, maildir) = if self.home_mailbox.is_empty() {
            (self.spool.join(&pw.name), false)
        } else {
            (
                pw.dir.join(self.home_mailbox.trim_start_matches('/')),
                self.home_mailbox.ends_with('/'),
            )
        };
        let (uid, gid) = if root {
            (pw.uid.as_raw(), pw.gid.as_raw())
        } else {
            (my_uid, my_gid)
        };
        Ok(Some(Target {
            path,
            maildir,
            uid,
            gid,
        }))
    }

    /// How to lock an mbox (virtual_mailbox_lock).
    pub fn mbox_options(&self) -> mbox::Options {
        mbox::Options {
            dotlock: if self.mbox_dotlock {
                DotlockPolicy::MayFail
            } else {
                DotlockPolicy::Off
            },
            fcntl: self.mbox_fcntl,
            lock: self.lock.clone(),
            ..mbox::Options::default()
        }
    }
}
