//! Mailbox commands: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE,
//! LIST (LIST-EXTENDED, LIST-STATUS, SPECIAL-USE, CHILDREN), LSUB and
//! STATUS (STATUS=SIZE, CONDSTORE's HIGHESTMODSEQ).

use std::collections::BTreeSet;

use super::mail::Session;
use crate::list;
use crate::parse::{ListOptions, StatusItem};
use crate::response::{Status, data, status};
use crate::store::{DELIMITER, StoreError, special_use};

impl Session<'_> {
    fn store_error(&mut self, tag: &str, e: StoreError) {
        let t = Some(tag);
        match e {
            StoreError::NotFound => status(
                &mut self.out,
                t,
                Status::No,
                Some("NONEXISTENT"),
                "Mailbox doesn't exist.",
            ),
            StoreError::Exists => status(
                &mut self.out,
                t,
                Status::No,
                Some("ALREADYEXISTS"),
                "Mailbox already exists.",
            ),
            StoreError::Refused(why) => status(&mut self.out, t, Status::No, Some("CANNOT"), why),
            StoreError::Io(why) => {
                maillog::warning!("{}: {why}", self.user);
                status(
                    &mut self.out,
                    t,
                    Status::No,
                    Some("SERVERBUG"),
                    "Internal error occurred.",
                );
            }
        }
    }

    fn name_or_no(&mut self, tag: &str, name: &[u8]) -> Option<String> {
        let n = self.decode(name);
        if n.is_none() {
            status(
                &mut self.out,
                Some(tag),
                Status::No,
                Some("CANNOT"),
                "Invalid mailbox name.",
            );
        }
        n
    }

    /// CREATE.
    pub fn create(&mut self, tag: &str, name: &[u8]) {
        let Some(n) = self.name_or_no(tag, name) else {
            return;
        };
        match self.store.create(&n) {
            Ok(()) => status(
                &mut self.out,
                Some(tag),
                Status::Ok,
                None,
                "Create completed.",
            ),
            Err(e) => self.store_error(tag, e),
        }
    }

    /// DELETE.
    pub fn delete(&mut self, tag: &str, name: &[u8]) {
        let Some(n) = self.name_or_no(tag, name) else {
            return;
        };
        if self.sel.as_ref().is_some_and(|s| s.name == n) {
            self.sel = None;
        }
        match self.store.delete(&n) {
            Ok(()) => status(
                &mut self.out,
                Some(tag),
                Status::Ok,
                None,
                "Delete completed.",
            ),
            Err(e) => self.store_error(tag, e),
        }
    }

    /// RENAME.
    pub fn rename(&mut self, tag: &str, from: &[u8], to: &[u8]) {
        let Some(a) = self.name_or_no(tag, from) else {
            return;
        };
        let Some(b) = self.name_or_no(tag, to) else {
            return;
        };
        match self.store.rename(&a, &b) {
            Ok(()) => status(
                &mut self.out,
                Some(tag),
                Status::Ok,
                None,
                "Rename completed.",
            ),
            Err(e) => self.store_error(tag, e),
        }
    }

    /// SUBSCRIBE and UNSUBSCRIBE.
    pub fn subscribe(&mut self, tag: &str, name: &[u8], on: bool) {
        let Some(n) = self.name_or_no(tag, name) else {
            return;
        };
        if on && !self.store.exists(&n) {
            status(
                &mut self.out,
                Some(tag),
                Status::No,
                Some("NONEXISTENT"),
                "Mailbox doesn't exist.",
            );
            return;
        }
        match self.store.set_subscribed(&n, on) {
            Ok(()) => status(
                &mut self.out,
                Some(tag),
                Status::Ok,
                None,
                if on {
                    "Subscribe completed."
                } else {
                    "Unsubscribe completed."
                },
            ),
            Err(e) => self.store_error(tag, StoreError::Io(e.to_string())),
        }
    }

    /// LIST and LSUB.
    pub fn list(
        &mut self,
        tag: &str,
        reference: &[u8],
        patterns: &[Vec<u8>],
        o: &ListOptions,
        lsub: bool,
    ) {
        let t = Some(tag);
        let Some(reference) = crate::response::decode_mailbox_name(reference, self.utf8) else {
            status(
                &mut self.out,
                t,
                Status::No,
                Some("CANNOT"),
                "Invalid reference.",
            );
            return;
        };
        let pats: Vec<String> = patterns
            .iter()
            .filter_map(|p| crate::response::decode_mailbox_name(p, self.utf8))
            .collect();
        let cmd = if lsub { "LSUB" } else { "LIST" };
        if pats.len() == 1 && pats.first().is_some_and(String::is_empty) && !o.extended {
            data::list(
                &mut self.out,
                cmd,
                &["\\Noselect"],
                Some(DELIMITER),
                "",
                self.utf8,
                false,
            );
            status(
                &mut self.out,
                t,
                Status::Ok,
                None,
                &format!("{cmd} completed."),
            );
            return;
        }
        let existing: BTreeSet<String> = self.store.list().into_iter().collect();
        let subs: BTreeSet<String> = self.store.subscriptions().into_iter().collect();
        let subscribed_only = lsub || o.subscribed;
        // Every name with its parents (which may not exist).
        let mut names: BTreeSet<String> = BTreeSet::new();
        for n in existing.iter().chain(subs.iter()) {
            let mut acc = String::new();
            for (k, part) in n.split(DELIMITER).enumerate() {
                if k > 0 {
                    acc.push(DELIMITER);
                }
                acc.push_str(part);
                names.insert(acc.clone());
            }
        }
        // INBOX is case-insensitive, also as the first level of a pattern.
        let norm = |p: String| -> String {
            match (p.get(..5), p.get(5..)) {
                (Some(h), Some(rest))
                    if h.eq_ignore_ascii_case("INBOX")
                        && (rest.is_empty() || rest.starts_with(DELIMITER)) =>
                {
                    format!("INBOX{rest}")
                }
                _ => p,
            }
        };
        let full: Vec<String> = pats
            .iter()
            .map(|p| norm(list::combine(&reference, p, DELIMITER)))
            .collect();
        let matches = |n: &str| full.iter().any(|p| list::matches(p, n, DELIMITER));
        let mut rows: Vec<(String, Vec<&'static str>, bool)> = Vec::new();
        for n in &names {
            let exists = existing.contains(n);
            let sub = subs.contains(n);
            let has_children = names.iter().any(|c| {
                c.len() > n.len()
                    && c.starts_with(n.as_str())
                    && c[n.len()..].starts_with(DELIMITER)
            });
            let matched = matches(n);
            let mut childinfo = false;
            if subscribed_only && !sub {
                // RECURSIVEMATCH / LSUB: a parent (matching the pattern)
                // of a subscribed mailbox at any depth, which itself need
                // not match (RFC 5258 3.5: `%` lists "Foo" with CHILDINFO
                // for a subscribed "Foo/Bar"; RFC 3501 LSUB likewise).
                let sub_child = subs
                    .iter()
                    .any(|s| s.starts_with(&format!("{n}{DELIMITER}")));
                if matched
                    && ((lsub && sub_child && pats.iter().any(|p| p.ends_with('%')))
                        || (o.recursive_match && sub_child))
                {
                    childinfo = o.recursive_match;
                    let attrs = if lsub { vec!["\\Noselect"] } else { vec![] };
                    rows.push((n.clone(), attrs, childinfo));
                }
                continue;
            }
            if !matched {
                continue;
            }
            if o.special_use && special_use(n).is_none() {
                continue;
            }
            let mut attrs: Vec<&'static str> = Vec::new();
            if !exists {
                attrs.push(if subscribed_only {
                    "\\NonExistent"
                } else {
                    "\\Noselect"
                });
            }
            if !lsub {
                attrs.push(if has_children {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                });
            }
            if (o.return_subscribed || o.subscribed) && sub {
                attrs.push("\\Subscribed");
            }
            if (o.return_special_use || o.special_use || !o.extended)
                && !lsub
                && let Some(u) = special_use(n)
            {
                attrs.push(u);
            }
            if o.recursive_match && o.subscribed {
                childinfo = false;
            }
            rows.push((n.clone(), attrs, childinfo));
        }
        for (n, attrs, childinfo) in rows {
            data::list(
                &mut self.out,
                cmd,
                &attrs,
                Some(DELIMITER),
                &n,
                self.utf8,
                childinfo,
            );
            if let Some(items) = &o.return_status
                && existing.contains(&n)
            {
                self.status_lines(&n, items);
            }
        }
        status(
            &mut self.out,
            t,
            Status::Ok,
            None,
            &format!("{cmd} completed."),
        );
    }

    /// The `* STATUS` line of a mailbox; false when it cannot be opened.
    fn status_lines(&mut self, name: &str, items: &[StatusItem]) -> bool {
        let sizes = items
            .iter()
            .any(|i| matches!(i, StatusItem::Size | StatusItem::DeletedStorage));
        if sizes && self.sel.as_ref().is_some_and(|s| s.name == name) {
            self.fill(None, true, false);
        }
        let msgs = if let Some(sel) = self.sel.as_ref().filter(|s| s.name == name) {
            (
                sel.view.clone(),
                sel.mb.uid_next,
                sel.mb.uid_validity,
                sel.mb.highest_modseq,
            )
        } else {
            let Ok(mut mb) = self.store.open(name) else {
                return false;
            };
            match mb.scan(false) {
                Ok(mut v) => {
                    if sizes {
                        mb.fill(v.iter_mut(), true, false);
                    }
                    (v, mb.uid_next, mb.uid_validity, mb.highest_modseq)
                }
                Err(e) => {
                    maillog::warning!("{}: status {name}: {e}", self.user);
                    return false;
                }
            }
        };
        let (view, next, validity, highest) = msgs;
        let has = |m: &crate::store::mailbox::Msg, f: &str| m.flags.iter().any(|x| x == f);
        let vals: Vec<(StatusItem, u64)> = items
            .iter()
            .map(|i| {
                let v: u64 = match i {
                    StatusItem::Messages => view.len() as u64,
                    StatusItem::Recent => view.iter().filter(|m| m.recent).count() as u64,
                    StatusItem::UidNext => u64::from(next),
                    StatusItem::UidValidity => u64::from(validity),
                    StatusItem::Unseen => view.iter().filter(|m| !has(m, "\\Seen")).count() as u64,
                    StatusItem::Deleted => {
                        view.iter().filter(|m| has(m, "\\Deleted")).count() as u64
                    }
                    StatusItem::Size => view.iter().filter_map(|m| m.size).sum(),
                    StatusItem::HighestModSeq => highest,
                    StatusItem::DeletedStorage => view
                        .iter()
                        .filter(|m| has(m, "\\Deleted"))
                        .filter_map(|m| m.size)
                        .sum(),
                };
                (*i, v)
            })
            .collect();
        data::status(&mut self.out, name, &vals, self.utf8);
        true
    }

    /// STATUS.
    pub fn status_cmd(&mut self, tag: &str, name: &[u8], items: &[StatusItem]) {
        let Some(n) = self.name_or_no(tag, name) else {
            return;
        };
        if items.contains(&StatusItem::HighestModSeq) {
            self.condstore = true;
        }
        if !self.store.exists(&n) {
            status(
                &mut self.out,
                Some(tag),
                Status::No,
                Some("NONEXISTENT"),
                "Mailbox doesn't exist.",
            );
            return;
        }
        if self.status_lines(&n, items) {
            status(
                &mut self.out,
                Some(tag),
                Status::Ok,
                None,
                "Status completed.",
            );
        } else {
            status(
                &mut self.out,
                Some(tag),
                Status::No,
                Some("SERVERBUG"),
                "Internal error occurred.",
            );
        }
    }
}
