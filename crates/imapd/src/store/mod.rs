//! The mail store as the mail process sees it: a user's Maildir with its
//! Maildir++ folders (`.Sent`, `.Lists.rust`; names in modified UTF-7 on
//! disk, as Dovecot keeps them), the hierarchy delimiter `.`, the
//! `subscriptions` file and the special-use folders.
//!
//! - [`mailbox`], one mailbox (messages, flags, sync, APPEND, COPY);
//! - [`index`], the per-mailbox index and cache files;
//! - [`keywords`], dovecot-keywords.
//!
//! An mbox user (mail_spool_directory, or a mailbox path without a
//! trailing `/`) has an INBOX only ([`mbox`]); the subscriptions file then
//! sits in the mbox's index directory.

pub mod index;
pub mod keywords;
pub mod mailbox;
pub mod mbox;
pub mod view;

use std::fs;
use std::path::{Path, PathBuf};

use mailstore::Maildir;
use mailstore::lock::LockOptions;

use crate::response::mutf7;
use mailbox::Mailbox;

/// The hierarchy delimiter.
pub const DELIMITER: char = '.';

/// The subscriptions file's name (Dovecot's).
pub const SUBSCRIPTIONS_NAME: &str = "subscriptions";

/// Special-use attributes by folder name (RFC 6154).
pub fn special_use(name: &str) -> Option<&'static str> {
    match name {
        "Drafts" => Some("\\Drafts"),
        "Sent" | "Sent Messages" | "Sent Items" => Some("\\Sent"),
        "Trash" | "Deleted Messages" => Some("\\Trash"),
        "Junk" | "Spam" => Some("\\Junk"),
        "Archive" => Some("\\Archive"),
        _ => None,
    }
}

/// Why a folder operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// No such mailbox (NONEXISTENT).
    NotFound,
    /// It exists already (ALREADYEXISTS).
    Exists,
    /// Not allowed for this name (INBOX, bad characters).
    Refused(&'static str),
    /// A file system failure (logged; SERVERBUG).
    Io(String),
}

/// A user's store.
#[derive(Debug, Clone)]
pub struct Store {
    root: Maildir,
    lock: LockOptions,
    mbox: Option<(PathBuf, mailstore::mbox::Options)>,
}

/// Is `name` the INBOX (case-insensitive)?
pub fn is_inbox(name: &str) -> bool {
    name.eq_ignore_ascii_case("INBOX")
}

impl Store {
    /// The store whose INBOX is the Maildir at `root`.
    pub fn new(root: &Path, lock: LockOptions) -> Store {
        Store {
            root: Maildir::open(root),
            lock,
            mbox: None,
        }
    }

    /// The store of an mbox user: the mbox at `path` is the INBOX, its
    /// index and the subscriptions are kept in `index_dir`.
    pub fn new_mbox(
        path: &Path,
        index_dir: &Path,
        lock: LockOptions,
        options: mailstore::mbox::Options,
    ) -> Store {
        Store {
            root: Maildir::open(index_dir),
            lock,
            mbox: Some((path.to_path_buf(), options)),
        }
    }

    /// Where an mbox's index directory goes: beside it when that can be
    /// made, else in the home directory of the user we run as.
    pub fn mbox_index_dir(path: &Path) -> Option<PathBuf> {
        let name = path.file_name()?.to_string_lossy().into_owned();
        let beside = path.with_file_name(format!("{name}.imapd"));
        if fs::create_dir_all(&beside).is_ok() {
            return Some(beside);
        }
        let me = nix::unistd::User::from_uid(nix::unistd::geteuid()).ok()??;
        let home = me.dir.join(".imapd").join(name);
        fs::create_dir_all(&home).ok()?;
        Some(home)
    }

    /// The INBOX's directory.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    fn disk_name(name: &str) -> Result<String, StoreError> {
        let enc = mutf7::encode(name);
        if name.is_empty()
            || name.starts_with(DELIMITER)
            || name.ends_with(DELIMITER)
            || name.contains("..")
            || name.contains('/')
            || name.chars().any(char::is_control)
            || enc.len() > 200
        {
            return Err(StoreError::Refused("Invalid mailbox name"));
        }
        Ok(enc)
    }

    /// The maildir directory of mailbox `name`.
    ///
    /// # Errors
    /// A name that cannot be a folder.
    pub fn dir_of(&self, name: &str) -> Result<PathBuf, StoreError> {
        if is_inbox(name) {
            return Ok(self.root.path().to_path_buf());
        }
        let disk = Store::disk_name(name)?;
        self.root
            .folder(&disk)
            .map(|m| m.path().to_path_buf())
            .map_err(|_| StoreError::Refused("Invalid mailbox name"))
    }

    /// Every mailbox: INBOX first, then the folders by name.
    pub fn list(&self) -> Vec<String> {
        let mut out = vec!["INBOX".to_string()];
        if self.mbox.is_some() {
            return out;
        }
        if let Ok(folders) = self.root.folders() {
            for f in folders {
                if let Some(n) = mutf7::decode(f.as_bytes())
                    && !is_inbox(&n)
                {
                    out.push(n);
                }
            }
        }
        out
    }

    /// Does mailbox `name` exist?
    pub fn exists(&self, name: &str) -> bool {
        if self.mbox.is_some() {
            return is_inbox(name);
        }
        self.dir_of(name).is_ok_and(|d| d.join("cur").is_dir())
    }

    /// Opens mailbox `name`.
    ///
    /// # Errors
    /// NotFound.
    pub fn open(&self, name: &str) -> Result<Mailbox, StoreError> {
        if !is_inbox(name) && !self.exists(name) {
            return Err(StoreError::NotFound);
        }
        if let Some((path, options)) = &self.mbox {
            return Ok(Mailbox::open_mbox(
                path,
                self.root.path(),
                self.lock.clone(),
                options.clone(),
            ));
        }
        Ok(Mailbox::open(&self.dir_of(name)?, self.lock.clone()))
    }

    /// CREATE.
    ///
    /// # Errors
    /// Exists, Refused, Io.
    pub fn create(&self, name: &str) -> Result<(), StoreError> {
        let name = name.trim_end_matches(DELIMITER);
        if self.mbox.is_some() && !is_inbox(name) {
            return Err(StoreError::Refused("An mbox has no folders."));
        }
        if is_inbox(name) || self.exists(name) {
            return Err(StoreError::Exists);
        }
        let disk = Store::disk_name(name)?;
        match self.root.create_folder(&disk) {
            Ok(_) => Ok(()),
            Err(mailstore::Error::FolderExists { .. }) => Err(StoreError::Exists),
            Err(e) => Err(StoreError::Io(e.to_string())),
        }
    }

    /// DELETE (the folder's sub-folders stay, as RFC 9051 allows).
    ///
    /// # Errors
    /// Refused for INBOX, NotFound, Io.
    pub fn delete(&self, name: &str) -> Result<(), StoreError> {
        if is_inbox(name) {
            return Err(StoreError::Refused("INBOX can't be deleted."));
        }
        if !self.exists(name) {
            return Err(StoreError::NotFound);
        }
        let disk = Store::disk_name(name)?;
        self.root
            .delete_folder(&disk)
            .map_err(|e| StoreError::Io(e.to_string()))?;
        let _ = self.set_subscribed(name, false);
        Ok(())
    }

    /// RENAME, with the folder's sub-folders. Renaming INBOX moves its
    /// messages into the new folder and leaves INBOX empty (RFC 9051).
    ///
    /// # Errors
    /// NotFound, Exists, Refused, Io.
    pub fn rename(&self, from: &str, to: &str) -> Result<(), StoreError> {
        if !self.exists(from) {
            return Err(StoreError::NotFound);
        }
        if self.mbox.is_some() {
            return Err(StoreError::Refused("An mbox has no folders."));
        }
        if is_inbox(to) || self.exists(to) {
            return Err(StoreError::Exists);
        }
        let new_disk = Store::disk_name(to)?;
        if is_inbox(from) {
            let target = self
                .root
                .create_folder(&new_disk)
                .map_err(|e| StoreError::Io(e.to_string()))?;
            for sub in ["cur", "new"] {
                let dir = self.root.path().join(sub);
                for item in fs::read_dir(&dir).into_iter().flatten().flatten() {
                    let _ = fs::rename(
                        item.path(),
                        target.path().join("cur").join(item.file_name()),
                    );
                }
            }
            return Ok(());
        }
        let old_disk = Store::disk_name(from)?;
        let children: Vec<String> = self
            .list()
            .into_iter()
            .filter(|n| n.starts_with(&format!("{from}{DELIMITER}")))
            .collect();
        self.root
            .rename_folder(&old_disk, &new_disk)
            .map_err(|e| StoreError::Io(e.to_string()))?;
        for child in children {
            let rest = &child[from.len()..];
            if let (Ok(o), Ok(n)) = (
                Store::disk_name(&child),
                Store::disk_name(&format!("{to}{rest}")),
            ) {
                let _ = self.root.rename_folder(&o, &n);
            }
        }
        let subs = self.subscriptions();
        if subs.iter().any(|s| s == from) {
            let _ = self.set_subscribed(from, false);
            let _ = self.set_subscribed(to, true);
        }
        Ok(())
    }

    /// The subscribed names. Dovecot's file: one name per line (version 1)
    /// or, after a `V\t2` line and an empty line, names with the hierarchy
    /// delimiter written as a tab (version 2); both are read.
    pub fn subscriptions(&self) -> Vec<String> {
        let Ok(text) = fs::read_to_string(self.root.path().join(SUBSCRIPTIONS_NAME)) else {
            return Vec::new();
        };
        let mut lines = text.lines().peekable();
        let v2 = lines.peek().is_some_and(|l| l.starts_with("V\t"));
        if v2 {
            lines.next();
        }
        lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                if v2 {
                    l.replace('\t', &DELIMITER.to_string())
                } else {
                    l.to_string()
                }
            })
            .collect()
    }

    /// SUBSCRIBE / UNSUBSCRIBE (the file is rewritten in version 1 form).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn set_subscribed(&self, name: &str, on: bool) -> std::io::Result<()> {
        let mut subs = self.subscriptions();
        let had = subs.iter().any(|s| s == name);
        if had == on {
            return Ok(());
        }
        if on {
            subs.push(name.to_string());
        } else {
            subs.retain(|s| s != name);
        }
        let mut text = String::new();
        for s in subs {
            text.push_str(&s);
            text.push('\n');
        }
        index::write_atomic(&self.root.path().join(SUBSCRIPTIONS_NAME), text.as_bytes())
    }

    /// Creates and subscribes the special-use folders that are missing
    /// (the first login).
    pub fn ensure_special_use(&self, names: &[String]) {
        if self.mbox.is_some() {
            return;
        }
        if !self.root.path().join("cur").is_dir()
            && let Err(e) = mailstore::maildir::create(self.root.path())
        {
            maillog::warning!("{}: {e}", self.root.path().display());
            return;
        }
        for n in names {
            if !self.exists(n) {
                match self.create(n) {
                    Ok(()) => {
                        let _ = self.set_subscribed(n, true);
                    }
                    Err(e) => maillog::warning!("create {n}: {e:?}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(
            dir.path(),
            LockOptions {
                attempts: 10,
                delay: Duration::from_millis(10),
                stale_after: Duration::from_secs(60),
            },
        );
        (dir, s)
    }

    #[test]
    fn folders_and_subscriptions() {
        let (dir, s) = store();
        s.ensure_special_use(&["Sent".into(), "Trash".into()]);
        assert!(dir.path().join(".Sent/cur").is_dir());
        s.create("Entwürfe").unwrap();
        assert!(dir.path().join(".Entw&APw-rfe/maildirfolder").exists());
        s.create("a.b").unwrap();
        assert_eq!(s.create("a.b"), Err(StoreError::Exists));
        assert_eq!(s.list(), vec!["INBOX", "Entwürfe", "Sent", "Trash", "a.b"]);
        s.rename("a", "c").unwrap_err();
        s.create("a").unwrap();
        s.set_subscribed("a", true).unwrap();
        s.rename("a", "c").unwrap();
        assert_eq!(
            s.list(),
            vec!["INBOX", "Entwürfe", "Sent", "Trash", "c", "c.b"]
        );
        assert_eq!(s.subscriptions(), vec!["Sent", "Trash", "c"]);
        assert_eq!(
            s.delete("INBOX"),
            Err(StoreError::Refused("INBOX can't be deleted."))
        );
        s.delete("c").unwrap();
        assert_eq!(s.subscriptions(), vec!["Sent", "Trash"]);
        // Dovecot's version 2 file.
        fs::write(
            dir.path().join(SUBSCRIPTIONS_NAME),
            "V\t2\n\nLists\trust\nSent\n",
        )
        .unwrap();
        assert_eq!(s.subscriptions(), vec!["Lists.rust", "Sent"]);
    }
}
