//! Editing main.cf in place, as `postconf -e`, `-X` and `-#` do.
//!
//! The text is rewritten line by line: comments, blank lines and other
//! definitions are copied unchanged; a definition of an edited name is
//! replaced (with its continuation lines), removed or commented out; names
//! not found are appended. The new file is written to `main.cf.tmp` under an
//! exclusive lock, fsynced, and renamed over main.cf, so a reader sees the
//! old or the new file, never a mix.

use config::main_cf::{is_blank_or_comment, split_nameval};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// What to do with one parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// Set to this value.
    Set(String),
    /// Delete the definition.
    Remove,
    /// Comment the definition out.
    Comment,
}

/// Applies `changes` to main.cf text, returning the new text.
pub(crate) fn apply(text: &str, changes: &BTreeMap<String, Change>) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut found: BTreeMap<&str, bool> = changes.keys().map(|k| (k.as_str(), false)).collect();
    // The change applying to the logical line being copied, if any.
    let mut current: Option<&Change> = None;
    for line in text.split_inclusive('\n') {
        if is_blank_or_comment(line) {
            out.push_str(line);
            continue;
        }
        if line.starts_with(|c: char| c.is_ascii_whitespace()) {
            match current {
                None => out.push_str(line),
                Some(Change::Comment) => {
                    out.push('#');
                    out.push_str(line);
                }
                Some(_) => {}
            }
            continue;
        }
        let name = split_nameval(line).ok().map(|(n, _)| n);
        current = name.and_then(|n| changes.get(n));
        match (name, current) {
            (Some(n), Some(change)) => {
                if let Some(f) = found.get_mut(n) {
                    *f = true;
                }
                match change {
                    Change::Set(v) => out.push_str(&definition(n, v)),
                    Change::Remove => {}
                    Change::Comment => {
                        out.push('#');
                        out.push_str(line);
                    }
                }
            }
            _ => out.push_str(line),
        }
        if !line.ends_with('\n') && current.is_some_and(|c| matches!(c, Change::Comment)) {
            out.push('\n');
        }
    }
    for (name, change) in changes {
        if let Change::Set(v) = change
            && !found.get(name.as_str()).copied().unwrap_or(false)
        {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&definition(name, v));
        }
    }
    out
}

/// One `name = value` line (`name =` for an empty value).
fn definition(name: &str, value: &str) -> String {
    if value.is_empty() {
        format!("{name} =\n")
    } else {
        format!("{name} = {value}\n")
    }
}

/// Replaces `path` with `text` atomically: write `path.tmp` under an
/// exclusive lock, fsync, rename, fsync the directory. The new file keeps
/// the old one's permission bits (0644 for a new file).
///
/// # Errors
/// Any I/O failure, with the file it concerns in the message.
pub(crate) fn replace_file(path: &Path, text: &str) -> Result<(), String> {
    let tmp = path.with_extension("cf.tmp");
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    let file = lock_tmp(&tmp, mode)?;
    let io = |what: &str, e: std::io::Error| format!("{what} {}: {e}", tmp.display());
    file.set_len(0).map_err(|e| io("truncate", e))?;
    let mut w = &file;
    w.write_all(text.as_bytes()).map_err(|e| io("write", e))?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| io("chmod", e))?;
    file.sync_all().map_err(|e| io("fsync", e))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| format!("rename {} to {}: {e}", tmp.display(), path.display()))?;
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            // Best effort: the rename itself already happened.
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Opens and exclusively locks the temporary file, retrying when another
/// postconf renamed it away while we waited for the lock (Postfix's
/// edit_file_open does the same).
fn lock_tmp(tmp: &Path, mode: u32) -> Result<File, String> {
    for _ in 0..100 {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(mode)
            .open(tmp)
            .map_err(|e| format!("open {}: {e}", tmp.display()))?;
        file.lock()
            .map_err(|e| format!("lock {}: {e}", tmp.display()))?;
        let held = file
            .metadata()
            .map_err(|e| format!("fstat {}: {e}", tmp.display()))?;
        match std::fs::metadata(tmp) {
            Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => return Ok(file),
            _ => continue,
        }
    }
    Err(format!("lock {}: file keeps being replaced", tmp.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(list: &[(&str, Change)]) -> BTreeMap<String, Change> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    const TEXT: &str = "# Global settings\n\
myhostname = old.example\n\
\n\
mydestination = a,\n    b,\n  # comment inside\n    c\n\
relayhost =\n";

    #[test]
    fn set_replaces_with_continuations_and_keeps_comments() {
        let out = apply(
            TEXT,
            &changes(&[("mydestination", Change::Set("x, y".into()))]),
        );
        assert_eq!(
            out,
            "# Global settings\nmyhostname = old.example\n\nmydestination = x, y\n  # comment inside\nrelayhost =\n"
        );
    }

    #[test]
    fn set_appends_when_missing() {
        let out = apply(
            "a = b",
            &changes(&[
                ("new", Change::Set("1".into())),
                ("a", Change::Set("c".into())),
            ]),
        );
        assert_eq!(out, "a = c\nnew = 1\n");
        assert_eq!(
            apply("", &changes(&[("n", Change::Set("v".into()))])),
            "n = v\n"
        );
    }

    #[test]
    fn remove_and_comment() {
        let out = apply(TEXT, &changes(&[("mydestination", Change::Remove)]));
        assert_eq!(
            out,
            "# Global settings\nmyhostname = old.example\n\n  # comment inside\nrelayhost =\n"
        );
        let out = apply(TEXT, &changes(&[("mydestination", Change::Comment)]));
        assert!(
            out.contains("#mydestination = a,\n#    b,\n  # comment inside\n#    c\n"),
            "{out}"
        );
        assert_eq!(
            apply("x = 1\n", &changes(&[("nope", Change::Remove)])),
            "x = 1\n"
        );
    }

    #[test]
    fn replace_file_is_atomic_and_keeps_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("main.cf");
        std::fs::write(&path, "a = 1\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        replace_file(&path, "a = 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a = 2\n");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert!(!dir.path().join("main.cf.tmp").exists());
    }
}
