//! `postfix check`: configuration, queue layout, commands.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use config::Config;

/// Problems found; an empty list means the instance can start.
pub(crate) fn check(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    let dir = config.config_dir().to_path_buf();
    let entries = match config::master_cf::load(&dir.join("master.cf")) {
        Ok(e) => e,
        Err(e) => return vec![e.to_string()],
    };
    // Settings no program reads yet: one warning each, not a failure.
    for w in config.unsupported_warnings(&entries) {
        maillog::warning!("{w}");
    }
    problems.extend(crate::check_restrictions::check(config, &entries));
    let qdir = PathBuf::from(config.str("queue_directory"));
    match ownership(config) {
        Ok((owner, gid)) => match queue::layout::create_or_repair(&qdir, owner, gid) {
            Ok(repairs) => {
                for r in repairs {
                    maillog::info!("{r}");
                }
            }
            Err(e) => problems.push(format!("queue directory {}: {e}", qdir.display())),
        },
        Err(e) => problems.push(e),
    }
    let ddir = PathBuf::from(config.str("daemon_directory"));
    for e in &entries {
        let path = ddir.join(&e.command);
        if !is_executable(&path) {
            if let Some(why) = config::master_cf::not_built(&e.command) {
                maillog::warning!(
                    "{}, line {}: service {}: program {} {why}; service skipped",
                    dir.join("master.cf").display(),
                    e.line,
                    e.name,
                    e.command
                );
                continue;
            }
            problems.push(format!(
                "{}, line {}: service {}: command not found or not executable: {}",
                dir.join("master.cf").display(),
                e.line,
                e.name,
                path.display()
            ));
        }
    }
    let master = ddir.join("master");
    if !is_executable(&master) {
        problems.push(format!(
            "master not found or not executable: {}",
            master.display()
        ));
    }
    problems
}

/// Queue owner (uid, gid of mail_owner) and setgid_group's gid.
type Ownership = (Option<(u32, u32)>, Option<u32>);

/// Queue owner (mail_owner) and setgid_group when root; nothing otherwise.
pub(crate) fn ownership(config: &Config) -> Result<Ownership, String> {
    if !privsep::is_root() {
        return Ok((None, None));
    }
    let owner = config.str("mail_owner");
    let account = match privsep::lookup_user(&owner) {
        Ok(Some(a)) => a,
        Ok(None) => {
            return Err(format!(
                "mail_owner {owner} does not exist; create the account with: \
                 groupadd -r postdrop; useradd -r -d /nonexistent -s /usr/sbin/nologin -U {owner}"
            ));
        }
        Err(e) => return Err(format!("look up mail_owner {owner}: {e}")),
    };
    let group = config.str("setgid_group");
    let gid = privsep::lookup_group(&group).ok().flatten();
    if gid.is_none() {
        maillog::warning!(
            "setgid_group {group} does not exist; create it with: groupadd -r {group}"
        );
    }
    Ok((Some((account.uid, account.gid)), gid))
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
