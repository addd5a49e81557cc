//! A Maildir's messages as a reader lists them, compactly: one string
//! holding every file name and, per message, its UID, where its name is,
//! whether it is in cur/ and its CRLF size when known (`,W=` in the name,
//! else the list's `W` field). POP3 opens a mailbox of 10,000 messages at
//! every login; this form costs two allocations instead of three per
//! message.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{UidEntry, UidList};
use crate::maildir::{Entry, Location};

/// One message of a [`Listing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    /// The UID.
    pub uid: u32,
    /// The size with CRLF line ends, when the name or the list has it.
    pub crlf_size: Option<u64>,
    /// In cur/ (else new/).
    pub cur: bool,
    start: u32,
    end: u32,
}

/// The messages of a maildir by ascending UID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// UIDVALIDITY.
    pub uid_validity: u32,
    /// UIDNEXT.
    pub uid_next: u32,
    /// The messages.
    pub items: Vec<Item>,
    names: String,
}

impl Listing {
    /// An empty listing.
    pub(super) fn new(uid_validity: u32, uid_next: u32, capacity: usize) -> Listing {
        Listing {
            uid_validity,
            uid_next,
            items: Vec::with_capacity(capacity),
            names: String::with_capacity(capacity * 48),
        }
    }

    /// Adds a message; false when the names outgrow the index type.
    pub(super) fn push(&mut self, uid: u32, name: &str, cur: bool, crlf_size: Option<u64>) -> bool {
        let (Ok(start), Ok(end)) = (
            u32::try_from(self.names.len()),
            u32::try_from(self.names.len() + name.len()),
        ) else {
            return false;
        };
        self.names.push_str(name);
        self.items.push(Item {
            uid,
            crlf_size,
            cur,
            start,
            end,
        });
        true
    }

    /// The file name of an item.
    pub fn name(&self, item: &Item) -> &str {
        self.names
            .get(item.start as usize..item.end as usize)
            .unwrap_or_default()
    }

    /// The unique part of an item's name (before the info part).
    pub fn unique<'a>(&'a self, item: &Item) -> &'a str {
        let name = self.name(item);
        name.split(':').next().unwrap_or(name)
    }

    /// The path of an item in the maildir at `root`.
    pub fn path(&self, root: &Path, item: &Item) -> PathBuf {
        let dir = if item.cur {
            Location::Cur
        } else {
            Location::New
        };
        root.join(dir.dir()).join(self.name(item))
    }

    /// A full scan's result in this form (`sizes`: the list's W fields).
    pub(super) fn from_uid_list(list: &UidList, sizes: &HashMap<String, u64>) -> Listing {
        let mut out = Listing::new(list.uid_validity, list.uid_next, list.messages.len());
        for m in &list.messages {
            let name = m.entry.path.file_name().and_then(|n| n.to_str());
            let size = m
                .entry
                .crlf_size
                .or_else(|| sizes.get(&m.entry.unique).copied());
            out.push(
                m.uid,
                name.unwrap_or(&m.entry.unique),
                m.entry.location == Location::Cur,
                size,
            );
        }
        out
    }

    /// As a [`UidList`] with the sizes of messages without `,W=` (what
    /// [`crate::Maildir::sync_uids_with_sizes`] returns).
    pub(super) fn into_uid_list(self, root: &Path) -> Option<(UidList, HashMap<String, u64>)> {
        let new_dir = root.join(Location::New.dir());
        let cur_dir = root.join(Location::Cur.dir());
        let mut messages = Vec::with_capacity(self.items.len());
        let mut sizes = HashMap::new();
        for item in &self.items {
            let (dir, location) = if item.cur {
                (&cur_dir, Location::Cur)
            } else {
                (&new_dir, Location::New)
            };
            let entry = Entry::parse(dir, location, self.name(item))?;
            if entry.crlf_size.is_none()
                && let Some(size) = item.crlf_size
            {
                sizes.insert(entry.unique.clone(), size);
            }
            messages.push(UidEntry {
                uid: item.uid,
                entry,
            });
        }
        Some((
            UidList {
                uid_validity: self.uid_validity,
                uid_next: self.uid_next,
                messages,
            },
            sizes,
        ))
    }
}

/// The `,W=<n>` field of a unique name (the first one), as
/// [`Entry`]'s parse reads it.
pub(super) fn name_crlf_size(unique: &str) -> Option<u64> {
    unique
        .split(',')
        .skip(1)
        .find_map(|f| f.strip_prefix("W="))
        .and_then(|s| s.parse().ok())
}
