//! SELECT, EXAMINE, CLOSE, UNSELECT, and keeping the session's view of
//! the selected mailbox in step with the store: the diff that becomes
//! EXISTS, EXPUNGE (or VANISHED with QRESYNC) and FETCH FLAGS responses.

use std::collections::{HashMap, HashSet};

use super::mail::{Selected, Session};
use crate::parse::{SelectParams, SeqSet};
use crate::response::data;
use crate::response::{Status, status};
use crate::store::StoreError;
use crate::store::mailbox::Msg;

/// The flags every mailbox admits.
const SYSTEM_FLAGS: [&str; 5] = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"];

impl Session<'_> {
    /// The messages a set names: indices into the view, ascending.
    pub fn resolve(&self, uid: bool, set: &SeqSet) -> Vec<usize> {
        let Some(sel) = &self.sel else {
            return Vec::new();
        };
        let n = sel.view.len();
        if matches!(set, SeqSet::Saved) {
            let saved: HashSet<u32> = self.saved.iter().copied().collect();
            return (0..n)
                .filter(|&i| sel.view.uid(i).is_some_and(|u| saved.contains(&u)))
                .collect();
        }
        if uid {
            let max = sel.view.last_uid();
            let ranges = set.ranges(max);
            // UIDs read without building the messages (a view from the
            // index builds them when a command touches them).
            (0..n)
                .filter(|&i| {
                    sel.view
                        .uid(i)
                        .is_some_and(|u| ranges.iter().any(|&(a, b)| u >= a && u <= b))
                })
                .collect()
        } else {
            let max = u32::try_from(n).unwrap_or(u32::MAX);
            let mut out = Vec::new();
            for (a, b) in set.ranges(max) {
                for s in a.max(1)..=b.min(max) {
                    out.push(s as usize - 1);
                }
            }
            out.sort_unstable();
            out.dedup();
            out
        }
    }

    /// Is every sequence number in `set` within the mailbox (a non-UID set
    /// naming a message that does not exist is BAD)?
    pub fn seqs_valid(&self, set: &SeqSet) -> bool {
        let n = self.sel.as_ref().map_or(0, |s| s.view.len());
        match set {
            SeqSet::Ranges(r) => r.iter().all(|(a, b)| {
                let ok = |x: &crate::parse::SeqNum| match x {
                    crate::parse::SeqNum::Value(v) => (*v as usize) <= n,
                    crate::parse::SeqNum::Star => n > 0,
                };
                ok(a) && ok(b)
            }),
            _ => true,
        }
    }

    /// The permanent flags line's list: system flags, keywords, `\*`.
    fn flag_lists(&self) -> (Vec<String>, Vec<String>) {
        let Some(sel) = &self.sel else {
            return (vec![], vec![]);
        };
        let mut flags: Vec<String> = SYSTEM_FLAGS.iter().map(|s| s.to_string()).collect();
        flags.extend(sel.mb.keywords.names());
        let mut perm = flags.clone();
        if sel.mb.keywords.names().len() < crate::store::keywords::MAX_KEYWORDS {
            perm.push("\\*".to_string());
        }
        (flags, perm)
    }

    /// SELECT and EXAMINE.
    pub fn select(&mut self, tag: &str, name: &[u8], p: SelectParams, examine: bool) {
        let t = Some(tag);
        let previous = self.sel.take();
        if previous.is_some() && (self.rev2 || self.qresync) {
            status(
                &mut self.out,
                None,
                Status::Ok,
                Some("CLOSED"),
                "Previous mailbox closed.",
            );
        }
        let Some(name) = self.decode(name) else {
            status(
                &mut self.out,
                t,
                Status::No,
                Some("CANNOT"),
                "Invalid mailbox name.",
            );
            return;
        };
        if p.condstore {
            self.condstore = true;
        }
        if p.qresync.is_some() && !self.qresync {
            status(&mut self.out, t, Status::Bad, None, "QRESYNC not enabled.");
            return;
        }
        // The mailbox selected again: its parsed index is kept (a scan
        // of an unchanged mailbox then parses nothing), and when nothing
        // changed since the view was last brought up to date, the view
        // too (what a scan from the index would give: the same messages
        // and flags, none \Recent).
        let again = previous.filter(|p| p.name == name);
        if let Some(prev) = again.as_ref()
            && prev.parked.is_none()
            && !prev.held_expunges
            && prev.read_only == examine
            && prev.mb.stamp() == prev.stamp
        {
            if let Some(mut prev) = again {
                prev.view.clear_recent();
                self.sel = Some(prev);
                self.selected(t, &name, p, examine);
            }
            return;
        }
        let again = again.map(|p| p.mb);
        let mut mb = match self.store.open(&name) {
            Ok(m) => again.unwrap_or(m),
            Err(StoreError::NotFound) => {
                status(
                    &mut self.out,
                    t,
                    Status::No,
                    Some("NONEXISTENT"),
                    "Mailbox doesn't exist.",
                );
                return;
            }
            Err(e) => {
                status(
                    &mut self.out,
                    t,
                    Status::No,
                    Some("CANNOT"),
                    &format!("{e:?}"),
                );
                return;
            }
        };
        let view = match mb.scan(!examine) {
            Ok(v) => v,
            Err(e) => {
                maillog::warning!("{}: select {name}: {e}", self.user);
                status(
                    &mut self.out,
                    t,
                    Status::No,
                    Some("SERVERBUG"),
                    "Internal error occurred.",
                );
                return;
            }
        };
        let stamp = mb.stamp();
        self.sel = Some(Selected {
            name: name.clone(),
            mb,
            view,
            read_only: examine,
            stamp,
            parked: None,
            held_expunges: false,
        });
        self.selected(t, &name, p, examine);
    }

    /// SELECT's and EXAMINE's responses for the mailbox just selected.
    fn selected(&mut self, t: Option<&str>, name: &str, p: SelectParams, examine: bool) {
        let (flags, perm) = self.flag_lists();
        let Some(sel) = &self.sel else { return };
        data::flags(&mut self.out, &flags);
        status(
            &mut self.out,
            None,
            Status::Ok,
            Some(&format!(
                "PERMANENTFLAGS ({})",
                if examine {
                    String::new()
                } else {
                    perm.join(" ")
                }
            )),
            "Flags permitted.",
        );
        data::exists(
            &mut self.out,
            u32::try_from(sel.view.len()).unwrap_or(u32::MAX),
        );
        if !self.rev2 {
            let recent = sel.view.recent_count();
            self.out
                .extend_from_slice(format!("* {recent} RECENT\r\n").as_bytes());
            if let Some(i) = sel.view.first_unseen() {
                status(
                    &mut self.out,
                    None,
                    Status::Ok,
                    Some(&format!("UNSEEN {}", i + 1)),
                    "First unseen.",
                );
            }
        }
        status(
            &mut self.out,
            None,
            Status::Ok,
            Some(&format!("UIDVALIDITY {}", sel.mb.uid_validity)),
            "UIDs valid",
        );
        status(
            &mut self.out,
            None,
            Status::Ok,
            Some(&format!("UIDNEXT {}", sel.mb.uid_next)),
            "Predicted next UID",
        );
        status(
            &mut self.out,
            None,
            Status::Ok,
            Some(&format!("HIGHESTMODSEQ {}", sel.mb.highest_modseq)),
            "Highest",
        );
        if self.rev2 {
            data::list(
                &mut self.out,
                "LIST",
                &[],
                Some('.'),
                name,
                self.utf8,
                false,
            );
        }
        if let Some(q) = p.qresync
            && q.uidvalidity == sel.mb.uid_validity
        {
            let known = q.known_uids.as_ref();
            let max = sel.mb.uid_next;
            let gone: Vec<u32> = sel
                .mb
                .expunged
                .iter()
                .filter(|(u, m)| *m > q.modseq && known.is_none_or(|k| k.contains(*u, max)))
                .map(|(u, _)| *u)
                .collect();
            data::vanished(&mut self.out, true, &gone);
            let changed: Vec<(usize, Msg)> = sel
                .view
                .iter()
                .enumerate()
                .filter(|(_, m)| m.modseq > q.modseq)
                .map(|(i, m)| (i, m.clone()))
                .collect();
            for (i, m) in changed {
                self.flag_fetch(i, &m, true);
            }
        }
        let code = if examine { "READ-ONLY" } else { "READ-WRITE" };
        status(
            &mut self.out,
            t,
            Status::Ok,
            Some(code),
            if examine {
                "Examine completed."
            } else {
                "Select completed."
            },
        );
    }

    /// `* n FETCH (UID u FLAGS (...) MODSEQ (m))` for one message.
    pub fn flag_fetch(&mut self, i: usize, m: &Msg, with_uid: bool) {
        let mut line = format!("* {} FETCH (", i + 1).into_bytes();
        if with_uid || self.qresync {
            line.extend_from_slice(format!("UID {} ", m.uid).as_bytes());
        }
        line.extend_from_slice(b"FLAGS ");
        crate::response::fetch::flag_list(&mut line, &m.flags, m.recent && !self.rev2);
        if self.condstore {
            line.extend_from_slice(format!(" MODSEQ ({})", m.modseq).as_bytes());
        }
        line.extend_from_slice(b")\r\n");
        self.out.extend_from_slice(&line);
    }

    /// CLOSE (expunging \Deleted messages silently unless read-only) and UNSELECT.
    pub fn close(&mut self, tag: &str, expunge: bool) {
        if let Some(sel) = self.sel.take()
            && expunge
            && !sel.read_only
        {
            let doomed: Vec<&Msg> = sel
                .view
                .iter()
                .filter(|m| m.flags.iter().any(|f| f == "\\Deleted"))
                .collect();
            sel.mb.remove_many(&doomed);
        }
        status(
            &mut self.out,
            Some(tag),
            Status::Ok,
            None,
            if expunge {
                "Close completed."
            } else {
                "Unselect completed."
            },
        );
    }

    /// Rescans the selected mailbox (when something changed, or `force`)
    /// and reports the differences; the UIDs in `quiet` are updated
    /// without a FETCH (the command reports them itself).
    pub fn refresh(&mut self, expunges: bool, quiet: &HashSet<u32>, force: bool) {
        let Some(sel) = &mut self.sel else { return };
        let now = sel.mb.stamp();
        if !force && now == sel.stamp && !(expunges && sel.held_expunges) {
            return;
        }
        let new = match sel.mb.scan(!sel.read_only) {
            Ok(v) => v,
            Err(e) => {
                maillog::warning!("{}: {}: {e}", self.user, sel.name);
                return;
            }
        };
        // The times from before the scan: a change made while it ran is
        // seen at the next look.
        sel.stamp = now;
        if sel.parked() {
            sel.unpark_with(new.clone());
        }
        let by_uid: HashMap<u32, &Msg> = new.iter().map(|m| (m.uid, m)).collect();
        let mut old = std::mem::take(&mut sel.view).into_vec();
        let mut out = Vec::new();
        // Expunges, from the highest sequence number down.
        if expunges {
            let mut vanished = Vec::new();
            for i in (0..old.len()).rev() {
                let uid = old.get(i).map_or(0, |m| m.uid);
                if !by_uid.contains_key(&uid) {
                    if self.qresync {
                        vanished.push(uid);
                    } else {
                        data::expunge(&mut out, u32::try_from(i + 1).unwrap_or(0));
                    }
                    old.remove(i);
                }
            }
            data::vanished(&mut out, false, &vanished);
            sel.held_expunges = false;
        } else if old.iter().any(|m| !by_uid.contains_key(&m.uid)) {
            // Reported at the next command that allows it, even when
            // nothing else changes until then.
            sel.held_expunges = true;
        }
        let mut changed = Vec::new();
        for (i, m) in old.iter_mut().enumerate() {
            if let Some(n) = by_uid.get(&m.uid) {
                let recent = m.recent;
                let differs = n.flags != m.flags;
                *m = (*n).clone();
                m.recent = recent || n.recent;
                if differs && !quiet.contains(&m.uid) {
                    changed.push((i, m.clone()));
                }
            }
        }
        let last = old.last().map_or(0, |m| m.uid);
        let before = old.len();
        old.extend(new.into_vec().into_iter().filter(|m| m.uid > last));
        let added = old.len() > before;
        let recent = old.iter().filter(|m| m.recent).count();
        sel.view = old.into();
        let count = sel.view.len();
        self.out.extend_from_slice(&out);
        for (i, m) in changed {
            self.flag_fetch(i, &m, false);
        }
        if added {
            data::exists(&mut self.out, u32::try_from(count).unwrap_or(u32::MAX));
            if !self.rev2 {
                self.out
                    .extend_from_slice(format!("* {recent} RECENT\r\n").as_bytes());
            }
        }
    }
}
