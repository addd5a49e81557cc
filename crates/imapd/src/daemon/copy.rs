//! Commands that add or remove messages: APPEND (APPENDUID), COPY and
//! MOVE (COPYUID), EXPUNGE and UID EXPUNGE.

use std::collections::HashSet;

use super::mail::Session;
use crate::parse::{DateTime, SeqSet};
use crate::response::encode::seq_set;
use crate::response::{Status, status};
use crate::store::StoreError;

impl Session<'_> {
    /// APPEND.
    pub fn append(
        &mut self,
        tag: &str,
        name: &[u8],
        flags: &[String],
        date: Option<DateTime>,
        message: &[u8],
    ) {
        let t = Some(tag);
        let Some(n) = self.decode(name) else {
            status(
                &mut self.out,
                t,
                Status::No,
                Some("CANNOT"),
                "Invalid mailbox name.",
            );
            return;
        };
        if self.over_quota(message.len() as u64) {
            status(
                &mut self.out,
                t,
                Status::No,
                Some("OVERQUOTA"),
                "Quota exceeded.",
            );
            return;
        }
        let Some(mut mb) = self.open_target(t, &n) else {
            return;
        };
        let flags: Vec<String> = flags
            .iter()
            .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
            .cloned()
            .collect();
        let result = mb
            .keywords
            .letters_of(&flags, "")
            .map_err(|e| e.to_string())
            .and_then(|l| mb.append(message, &l, date.map(|d| d.to_unix())))
            .and_then(|unique| {
                let msgs = mb.scan(false)?;
                msgs.iter()
                    .find(|m| m.unique == unique)
                    .map(|m| m.uid)
                    .ok_or_else(|| "appended message vanished".to_string())
            });
        match result {
            Ok(uid) => {
                let code = format!("APPENDUID {} {uid}", mb.uid_validity);
                status(
                    &mut self.out,
                    t,
                    Status::Ok,
                    Some(&code),
                    "Append completed.",
                );
            }
            Err(e) => {
                maillog::warning!("{}: append to {n}: {e}", self.user);
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

    /// The mailbox that APPEND, COPY or MOVE puts messages into; None
    /// when it cannot be opened, the client answered (TRYCREATE when it
    /// does not exist).
    fn open_target(&mut self, t: Option<&str>, n: &str) -> Option<crate::store::mailbox::Mailbox> {
        match self.store.open(n) {
            Ok(m) => Some(m),
            Err(StoreError::NotFound) => {
                status(
                    &mut self.out,
                    t,
                    Status::No,
                    Some("TRYCREATE"),
                    "Mailbox doesn't exist.",
                );
                None
            }
            Err(_) => {
                status(
                    &mut self.out,
                    t,
                    Status::No,
                    Some("CANNOT"),
                    "Invalid mailbox name.",
                );
                None
            }
        }
    }

    /// COPY and MOVE (and their UID forms).
    pub fn copy(&mut self, tag: &str, uid: bool, set: &SeqSet, name: &[u8], moving: bool) {
        let t = Some(tag);
        if !uid && !self.seqs_valid(set) {
            status(&mut self.out, t, Status::Bad, None, "Invalid messageset");
            return;
        }
        let Some(n) = self.decode(name) else {
            status(
                &mut self.out,
                t,
                Status::No,
                Some("CANNOT"),
                "Invalid mailbox name.",
            );
            return;
        };
        if moving && self.sel.as_ref().is_some_and(|s| s.read_only) {
            status(
                &mut self.out,
                t,
                Status::No,
                Some("READ-ONLY"),
                "Mailbox is read-only.",
            );
            return;
        }
        let Some(mut target) = self.open_target(t, &n) else {
            return;
        };
        let idx = self.resolve(uid, set);
        if !moving && self.s.quota > 0 {
            self.fill(Some(&idx), true, false);
            let more: u64 = idx
                .iter()
                .filter_map(|&i| self.sel.as_ref().and_then(|s| s.view.get(i)))
                .filter_map(|m| m.size)
                .sum();
            // A MOVE within the store adds nothing; a COPY does.
            if self.over_quota(more) {
                status(
                    &mut self.out,
                    t,
                    Status::No,
                    Some("OVERQUOTA"),
                    "Quota exceeded.",
                );
                return;
            }
        }
        let Some(sel) = &self.sel else { return };
        let mut pairs: Vec<(u32, String)> = Vec::new();
        for &i in &idx {
            let Some(m) = sel.view.get(i) else { continue };
            let letters = match target.keywords.letters_of(&m.flags, "") {
                Ok(l) => l,
                Err(e) => {
                    maillog::warning!("{}: keywords: {e}", self.user);
                    String::new()
                }
            };
            match sel.mb.copy_to(m, &target, &letters) {
                Ok(u) => pairs.push((m.uid, u)),
                Err(e) => maillog::warning!("{}: copy uid {} to {n}: {e}", self.user, m.uid),
            }
        }
        if pairs.len() < idx.len() && !moving {
            status(
                &mut self.out,
                t,
                Status::No,
                Some("EXPUNGEISSUED"),
                "Some of the messages no longer exist.",
            );
            return;
        }
        let code = match target.scan(false) {
            Ok(msgs) => {
                let mut src = Vec::new();
                let mut dst = Vec::new();
                for (s, u) in &pairs {
                    if let Some(m) = msgs.iter().find(|m| &m.unique == u) {
                        src.push(*s);
                        dst.push(m.uid);
                    }
                }
                (!src.is_empty()).then(|| {
                    format!(
                        "COPYUID {} {} {}",
                        target.uid_validity,
                        crate::response::encode::seq_list(&src),
                        crate::response::encode::seq_list(&dst)
                    )
                })
            }
            Err(e) => {
                maillog::warning!("{}: {n}: {e}", self.user);
                None
            }
        };
        if !moving {
            status(
                &mut self.out,
                t,
                Status::Ok,
                code.as_deref(),
                "Copy completed.",
            );
            return;
        }
        status(
            &mut self.out,
            None,
            Status::Ok,
            code.as_deref(),
            "Moved UIDs.",
        );
        let moved: HashSet<u32> = pairs.iter().map(|(s, _)| *s).collect();
        if let Some(sel) = &self.sel {
            let doomed: Vec<&crate::store::mailbox::Msg> =
                sel.view.iter().filter(|m| moved.contains(&m.uid)).collect();
            sel.mb.remove_many(&doomed);
        }
        self.refresh(true, &HashSet::new(), true);
        status(&mut self.out, t, Status::Ok, None, "Move completed.");
    }

    /// EXPUNGE and UID EXPUNGE.
    pub fn expunge(&mut self, tag: &str, uids: Option<SeqSet>) {
        let t = Some(tag);
        let Some(sel) = &self.sel else { return };
        if sel.read_only {
            status(
                &mut self.out,
                t,
                Status::No,
                Some("READ-ONLY"),
                "Mailbox is read-only.",
            );
            return;
        }
        let max = sel.view.last_uid();
        let ranges = uids.as_ref().map(|s| s.ranges(max));
        let doomed: Vec<&crate::store::mailbox::Msg> = sel
            .view
            .iter()
            .filter(|m| {
                ranges
                    .as_ref()
                    .is_none_or(|r| r.iter().any(|&(a, b)| m.uid >= a && m.uid <= b))
                    && m.flags.iter().any(|f| f == "\\Deleted")
            })
            .collect();
        sel.mb.remove_many(&doomed);
        self.refresh(true, &HashSet::new(), true);
        let _ = seq_set;
        status(&mut self.out, t, Status::Ok, None, "Expunge completed.");
    }
}
