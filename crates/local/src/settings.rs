//! What local reads from main.cf once at start, and the accounts it
//! delivers as.

use std::path::PathBuf;
use std::time::Duration;

use delivery::privs::Ids;
use tables::Maps;

use crate::aliases::AliasMaps;

/// A system account as local uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Account {
    /// Login name.
    pub(crate) name: String,
    /// User and group ids.
    pub(crate) ids: Ids,
    /// Home directory (None for a user known only from local_recipient_maps).
    pub(crate) home: Option<PathBuf>,
    /// Login shell.
    pub(crate) shell: String,
}

impl Account {
    /// Looks a user up in the passwd database.
    pub(crate) fn lookup(name: &str) -> Option<Account> {
        if name.is_empty() || name.len() > 256 || name.contains(['/', '\0']) {
            return None;
        }
        let u = nix::unistd::User::from_name(name).ok().flatten()?;
        Some(Account {
            name: u.name,
            ids: Ids {
                uid: u.uid.as_raw(),
                gid: u.gid.as_raw(),
            },
            home: Some(u.dir),
            shell: u.shell.display().to_string(),
        })
    }

    /// Looks a user up by uid in the passwd database.
    pub(crate) fn by_uid(uid: u32) -> Option<Account> {
        let u = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()?;
        Account::lookup(&u.name)
    }

    /// The account local runs as (the development instance's user).
    pub(crate) fn myself(name: &str) -> Account {
        Account {
            name: name.to_string(),
            ids: Ids {
                uid: nix::unistd::geteuid().as_raw(),
                gid: nix::unistd::getegid().as_raw(),
            },
            home: None,
            shell: "/bin/sh".into(),
        }
    }
}

/// Settings.
pub(crate) struct Settings {
    pub(crate) alias_maps: Result<AliasMaps, String>,
    pub(crate) recipient_maps: Result<Maps, String>,
    pub(crate) delimiters: String,
    pub(crate) myorigin: String,
    pub(crate) local_domains: Vec<String>,
    pub(crate) home_mailbox: String,
    pub(crate) spool_dir: PathBuf,
    pub(crate) mailbox_command: String,
    pub(crate) size_limit: Option<u64>,
    pub(crate) dotlock: bool,
    pub(crate) fcntl: bool,
    pub(crate) forward_path: String,
    pub(crate) default_privs: Account,
    pub(crate) commands_allowed: Vec<String>,
    pub(crate) files_allowed: Vec<String>,
    pub(crate) prepend_delivered: Vec<String>,
    pub(crate) original_to: bool,
    pub(crate) time_limit: Duration,
    pub(crate) shell: String,
    pub(crate) exec_dir: String,
    pub(crate) export_env: String,
    pub(crate) luser_relay: String,
    /// deliver_lock_attempts, deliver_lock_delay, stale_lock_time.
    pub(crate) lock: mailstore::lock::LockOptions,
}

fn list(v: &str) -> Vec<String> {
    v.split([' ', ',', '\t', '\n'])
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase)
        .collect()
}

impl Settings {
    /// Reads main.cf; `default_privs` was looked up before.
    pub(crate) fn load(config: &config::Config, default_privs: Account) -> Settings {
        let flags = tables::Flags::default();
        let alias_list = config.str("alias_maps");
        let alias_maps = AliasMaps::open(&alias_list).map_err(|e| format!("alias_maps: {e}"));
        // Only a non-root instance uses local_recipient_maps (root needs a
        // passwd entry to switch to). proxy: only changes who opens a
        // table; alias_maps entries were searched already.
        let recipient_maps = if delivery::privs::can_switch() {
            Ok(Maps::default())
        } else {
            let aliases = tables::split_list(&alias_list);
            let rcpt = config.str("local_recipient_maps");
            let rcpt: Vec<&str> = tables::split_list(&rcpt)
                .into_iter()
                .filter(|s| !aliases.contains(s))
                .map(|s| s.strip_prefix("proxy:").unwrap_or(s))
                .collect();
            Maps::open(&rcpt.join(" "), flags).map_err(|e| format!("local_recipient_maps: {e}"))
        };
        let mut local_domains: Vec<String> = list(&config.str("mydestination"))
            .into_iter()
            .filter(|d| !d.contains([':', '/']))
            .collect();
        local_domains.push(config.str("myhostname").to_lowercase());
        local_domains.push("localhost".into());
        let locks = list(&config.str("mailbox_delivery_lock"));
        let limit = config.size("mailbox_size_limit");
        let raw = |n: &str| config.raw(n).unwrap_or_default();
        Settings {
            alias_maps,
            recipient_maps,
            delimiters: config.str("recipient_delimiter"),
            myorigin: config.str("myorigin"),
            local_domains,
            home_mailbox: config.str("home_mailbox"),
            spool_dir: PathBuf::from(config.str("mail_spool_directory")),
            // Not subject to $name expansion (shell syntax), as in Postfix.
            mailbox_command: raw("mailbox_command"),
            size_limit: (limit > 0).then_some(limit),
            dotlock: locks.iter().any(|l| l == "dotlock"),
            fcntl: locks.iter().any(|l| l == "fcntl"),
            forward_path: raw("forward_path"),
            default_privs,
            commands_allowed: list(&config.str("allow_mail_to_commands")),
            files_allowed: list(&config.str("allow_mail_to_files")),
            prepend_delivered: list(&config.str("prepend_delivered_header")),
            original_to: config.bool("enable_original_recipient"),
            time_limit: config.time("command_time_limit"),
            shell: config.str("local_command_shell"),
            exec_dir: raw("command_execution_directory"),
            export_env: config.str("export_environment"),
            luser_relay: raw("luser_relay"),
            lock: mailstore::lock::LockOptions {
                attempts: u32::try_from(config.int("deliver_lock_attempts")).unwrap_or(20),
                delay: config.time("deliver_lock_delay"),
                stale_after: config.time("stale_lock_time"),
            },
        }
    }

    /// True when `domain` is one of ours (mydestination, myhostname, localhost).
    pub(crate) fn is_local_domain(&self, domain: &str) -> bool {
        let d = domain.trim_end_matches('.').to_lowercase();
        self.local_domains.contains(&d)
    }

    /// True when any table changed since start (the process then exits
    /// after the request, so master starts one with the new tables).
    pub(crate) fn tables_changed(&self) -> bool {
        self.alias_maps.as_ref().is_ok_and(AliasMaps::changed)
            || self.recipient_maps.as_ref().is_ok_and(Maps::changed)
    }
}
