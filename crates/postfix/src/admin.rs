//! `postfix flush`, `postfix set-permissions` and `postfix
//! upgrade-configuration`, as Postfix's postfix-script and post-install
//! do them for this suite.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use config::Config;

/// The master.cf this suite ships: the source of entries that
/// upgrade-configuration adds.
const SHIPPED_MASTER_CF: &str = include_str!("../../../etc-postfix/master.cf");

/// Services Postfix's post-install adds to an old master.cf when missing
/// (those this suite builds).
const UPGRADE_SERVICES: &[(&str, &str)] = &[
    ("flush", "unix"),
    ("trace", "unix"),
    ("anvil", "unix"),
    ("discard", "unix"),
    ("retry", "unix"),
    ("verify", "unix"),
];

/// `postfix flush`: postqueue -f.
pub(crate) fn flush(config: &Config) -> ! {
    use std::os::unix::process::CommandExt;
    let postqueue = PathBuf::from(config.str("command_directory")).join("postqueue");
    let e = std::process::Command::new(&postqueue)
        .arg("-c")
        .arg(config.config_dir())
        .arg("-f")
        .exec();
    maillog::fatal!("{}: {e}", postqueue.display())
}

/// `postfix set-permissions`: the queue tree's owners and modes, and the
/// set-gid bits of postdrop and postqueue (group setgid_group).
pub(crate) fn set_permissions(config: &Config) {
    let qdir = PathBuf::from(config.str("queue_directory"));
    let (owner, gid) = match crate::check::ownership(config) {
        Ok(o) => o,
        Err(e) => maillog::fatal!("{e}"),
    };
    match queue::layout::create_or_repair(&qdir, owner, gid) {
        Ok(repairs) => {
            for r in repairs {
                maillog::info!("{r}");
            }
        }
        Err(e) => maillog::fatal!("queue directory {}: {e}", qdir.display()),
    }
    let Some(gid) = gid else {
        return;
    };
    let cdir = PathBuf::from(config.str("command_directory"));
    for prog in ["postdrop", "postqueue"] {
        let path = cdir.join(prog);
        if !path.is_file() {
            continue;
        }
        let set = std::os::unix::fs::chown(&path, Some(0), Some(gid)).and_then(|()| {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o2755))
        });
        if let Err(e) = set {
            maillog::fatal!("{}: {e}", path.display());
        }
    }
}

/// `postfix upgrade-configuration`: appends to master.cf the shipped
/// entries of [`UPGRADE_SERVICES`] it lacks (commented out in the shipped
/// file: added commented out, for the administrator to enable).
pub(crate) fn upgrade_configuration(config: &Config) {
    let path = config.config_dir().join("master.cf");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => maillog::fatal!("{}: {e}", path.display()),
    };
    let have = |name: &str, kind: &str| {
        text.lines().any(|l| {
            let mut f = l.trim_start_matches('#').split_whitespace();
            f.next() == Some(name) && f.next() == Some(kind)
        })
    };
    let mut add = String::new();
    for (name, kind) in UPGRADE_SERVICES {
        if have(name, kind) {
            continue;
        }
        if let Some(entry) = shipped_entry(name, kind) {
            maillog::info!("adding {name} service to {}", path.display());
            add.push_str(&entry);
        }
    }
    if add.is_empty() {
        return;
    }
    let mut new = text;
    if !new.is_empty() && !new.ends_with('\n') {
        new.push('\n');
    }
    new.push_str(&add);
    let tmp = path.with_extension("cf.tmp");
    let written = std::fs::write(&tmp, new)
        .and_then(|()| {
            let mode = std::fs::metadata(&path)?.permissions().mode();
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        })
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        maillog::fatal!("{}: {e}", path.display());
    }
}

/// The shipped entry for `name`/`kind` with its continuation lines.
fn shipped_entry(name: &str, kind: &str) -> Option<String> {
    let mut out = String::new();
    let mut inside = false;
    for line in SHIPPED_MASTER_CF.lines() {
        let starts = !line.starts_with([' ', '\t']);
        if starts {
            if inside {
                break;
            }
            let mut f = line.trim_start_matches('#').split_whitespace();
            inside = f.next() == Some(name) && f.next() == Some(kind);
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_entries_are_found() {
        assert!(shipped_entry("flush", "unix").is_some_and(|e| e.starts_with("flush")));
        assert!(shipped_entry("verify", "unix").is_some_and(|e| e.starts_with("verify ")));
        assert_eq!(shipped_entry("nosuch", "unix"), None);
    }
}
