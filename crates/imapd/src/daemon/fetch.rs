//! FETCH, STORE, SEARCH, SORT and THREAD over the selected mailbox.
//! FETCH of FLAGS, UID, MODSEQ, INTERNALDATE, RFC822.SIZE, ENVELOPE, BODY
//! and BODYSTRUCTURE comes from the index and cache without opening the
//! message (the first such FETCH fills the cache); everything else reads
//! and parses it.

use std::collections::HashSet;

use super::mail::{Selected, Session};
use crate::parse::{
    FetchAttr, SearchKey, SearchReturn, SeqSet, SortCriterion, StoreMode, ThreadAlgorithm,
};
use crate::response::date::{date_of, internal_date};
use crate::response::fetch::{FetchInput, fetch_response, flag_list, implies_seen};
use crate::response::{Status, data, status};
use crate::search::{Candidate, Context, charset_supported, matches, needs_message, prepare};
use crate::store::index::Cached;
use crate::store::mailbox::Msg;
use crate::structure::{PartRef, parse};

/// A flag change made by rename: view index, UID, letters, new path.
type Renamed = (usize, u32, String, std::path::PathBuf);

/// Items served from the index and cache alone.
fn cacheable(a: &FetchAttr) -> bool {
    matches!(
        a,
        FetchAttr::Flags
            | FetchAttr::Uid
            | FetchAttr::ModSeq
            | FetchAttr::InternalDate
            | FetchAttr::Rfc822Size
            | FetchAttr::Envelope
            | FetchAttr::Body
            | FetchAttr::BodyStructure
    )
}

/// ENVELOPE, BODYSTRUCTURE and BODY of a message, for the cache.
fn structure_of(raw: &[u8]) -> Cached {
    let msg = parse(raw);
    let mut c = Cached::default();
    match &msg {
        Some(m) => {
            crate::structure::envelope::envelope(&mut c.envelope, PartRef::root(m), false);
            crate::structure::bodystructure::body_structure(
                &mut c.bodystructure,
                PartRef::root(m),
                true,
                false,
            );
            crate::structure::bodystructure::body_structure(
                &mut c.body,
                PartRef::root(m),
                false,
                false,
            );
        }
        None => {
            c.envelope = crate::structure::envelope::EMPTY_ENVELOPE.to_vec();
            let plain = format!(
                "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" {} {})",
                raw.len(),
                crate::structure::count_lines(raw)
            );
            c.bodystructure = plain.clone().into_bytes();
            c.body = plain.into_bytes();
        }
    }
    c
}

/// How many files a FETCH must read before it reads ahead.
const READ_AHEAD_FROM: usize = 32;

/// Asks the kernel to read `files` into the page cache, in order
/// (POSIX_FADV_WILLNEED starts the reads without waiting for them).
fn read_ahead(files: &[std::path::PathBuf]) {
    use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
    for path in files {
        if let Ok(f) = std::fs::File::open(path) {
            let _ = posix_fadvise(&f, 0, 0, PosixFadviseAdvice::POSIX_FADV_WILLNEED);
        }
    }
}

/// A buffer for [`fmt_u64`].
fn itoa_buf() -> [u8; 20] {
    [0u8; 20]
}

/// The decimal digits of `n`, in `buf` (no allocation per number).
fn fmt_u64(buf: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        if let Some(b) = buf.get_mut(at) {
            *b = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    buf.get(at..).unwrap_or_default()
}

fn has_size(key: &SearchKey) -> bool {
    match key {
        SearchKey::Larger(_) | SearchKey::Smaller(_) => true,
        SearchKey::And(v) => v.iter().any(has_size),
        SearchKey::Not(k) => has_size(k),
        SearchKey::Or(a, b) => has_size(a) || has_size(b),
        _ => false,
    }
}

fn has_internal_date(key: &SearchKey) -> bool {
    match key {
        SearchKey::Before(_) | SearchKey::On(_) | SearchKey::Since(_) => true,
        SearchKey::And(v) => v.iter().any(has_internal_date),
        SearchKey::Not(k) => has_internal_date(k),
        SearchKey::Or(a, b) => has_internal_date(a) || has_internal_date(b),
        _ => false,
    }
}

fn has_modseq(key: &SearchKey) -> bool {
    match key {
        SearchKey::ModSeq(_) => true,
        SearchKey::And(v) => v.iter().any(has_modseq),
        SearchKey::Not(k) => has_modseq(k),
        SearchKey::Or(a, b) => has_modseq(a) || has_modseq(b),
        _ => false,
    }
}

impl Session<'_> {
    /// Learns the sizes (`sizes`) and internal dates (`dates`) not known
    /// yet of the selected messages at `idx` (None: all of them); see
    /// [`crate::store::mailbox::Mailbox::fill`].
    pub fn fill(&mut self, idx: Option<&[usize]>, sizes: bool, dates: bool) {
        let Some(sel) = &mut self.sel else { return };
        let unknown = |m: &Msg| (sizes && m.size.is_none()) || (dates && m.date.is_none());
        match idx {
            None => {
                if sel.view.iter().any(unknown) {
                    sel.mb.fill(sel.view.iter_mut(), sizes, dates);
                }
            }
            Some(idx) => {
                let mut some: Vec<Msg> = idx
                    .iter()
                    .filter_map(|&i| sel.view.get(i))
                    .filter(|m| unknown(m))
                    .cloned()
                    .collect();
                if some.is_empty() {
                    return;
                }
                sel.mb.fill(some.iter_mut(), sizes, dates);
                let by_uid: std::collections::HashMap<u32, &Msg> =
                    some.iter().map(|m| (m.uid, m)).collect();
                for &i in idx {
                    if let Some(m) = sel.view.get_mut(i)
                        && let Some(n) = by_uid.get(&m.uid)
                    {
                        m.size = n.size;
                        m.date = n.date;
                    }
                }
            }
        }
    }

    /// The files of the messages at `idx` whose cache entry `attrs`
    /// need and the cache lacks (Maildir only).
    fn uncached_files(&mut self, attrs: &[FetchAttr], idx: &[usize]) -> Vec<std::path::PathBuf> {
        let needs_cache = attrs.iter().any(|a| {
            matches!(
                a,
                FetchAttr::Envelope | FetchAttr::Body | FetchAttr::BodyStructure
            )
        });
        let Some(sel) = self
            .sel
            .as_mut()
            .filter(|s| needs_cache && s.mb.mbox.is_none())
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for &i in idx {
            if let Some(m) = sel.view.get(i)
                && sel.mb.cache.get(m.uid).is_none()
            {
                out.push(m.path.path().into_owned());
            }
        }
        out
    }

    fn read_msg(&self, m: &Msg) -> Option<Vec<u8>> {
        self.sel.as_ref()?.mb.read(m)
    }

    /// One FETCH response from the index and cache, written straight
    /// into the output (no copy of the message's state); FLAGS added for
    /// a message in `seen` (an implied \Seen).
    fn fetch_cached(&mut self, i: usize, attrs: &[FetchAttr], seen: &HashSet<u32>, with_uid: bool) {
        let needs_cache = attrs.iter().any(|a| {
            matches!(
                a,
                FetchAttr::Envelope | FetchAttr::Body | FetchAttr::BodyStructure
            )
        });
        let Some(sel) = &mut self.sel else {
            return;
        };
        let Some(m) = sel.view.get(i) else {
            return;
        };
        if needs_cache && sel.mb.cache.get(m.uid).is_none() {
            let Some(raw) = sel.mb.read(m) else {
                return;
            };
            let c = structure_of(&raw);
            sel.mb.cache.put(m.uid, c);
        }
        let cached = if needs_cache {
            sel.mb.cache.get(m.uid)
        } else {
            None
        };
        let out = &mut self.out;
        let mut num = itoa_buf();
        out.extend_from_slice(b"* ");
        out.extend_from_slice(fmt_u64(&mut num, (i + 1) as u64));
        out.extend_from_slice(b" FETCH (");
        let first = out.len();
        let sep = |out: &mut Vec<u8>| {
            if out.len() > first {
                out.push(b' ');
            }
        };
        if with_uid && !attrs.contains(&FetchAttr::Uid) {
            out.extend_from_slice(b"UID ");
            out.extend_from_slice(fmt_u64(&mut num, u64::from(m.uid)));
        }
        let flags_asked = attrs.contains(&FetchAttr::Flags);
        for a in attrs {
            sep(out);
            match a {
                FetchAttr::Uid => {
                    out.extend_from_slice(b"UID ");
                    out.extend_from_slice(fmt_u64(&mut num, u64::from(m.uid)));
                }
                FetchAttr::Flags => {
                    out.extend_from_slice(b"FLAGS ");
                    flag_list(out, &m.flags, m.recent && !self.rev2);
                }
                FetchAttr::ModSeq => {
                    out.extend_from_slice(b"MODSEQ (");
                    out.extend_from_slice(fmt_u64(&mut num, m.modseq));
                    out.push(b')');
                }
                FetchAttr::InternalDate => out.extend_from_slice(
                    format!(
                        "INTERNALDATE \"{}\"",
                        internal_date(m.date.unwrap_or(0), self.zone)
                    )
                    .as_bytes(),
                ),
                FetchAttr::Rfc822Size => {
                    out.extend_from_slice(b"RFC822.SIZE ");
                    out.extend_from_slice(fmt_u64(&mut num, m.size.unwrap_or(0)));
                }
                FetchAttr::Envelope => {
                    out.extend_from_slice(b"ENVELOPE ");
                    out.extend_from_slice(cached.map_or(&b""[..], |c| c.envelope));
                }
                FetchAttr::BodyStructure => {
                    out.extend_from_slice(b"BODYSTRUCTURE ");
                    out.extend_from_slice(cached.map_or(&b""[..], |c| c.bodystructure));
                }
                FetchAttr::Body => {
                    out.extend_from_slice(b"BODY ");
                    out.extend_from_slice(cached.map_or(&b""[..], |c| c.body));
                }
                _ => {}
            }
        }
        if !flags_asked && seen.contains(&m.uid) {
            sep(out);
            out.extend_from_slice(b"FLAGS ");
            flag_list(out, &m.flags, m.recent && !self.rev2);
        }
        out.extend_from_slice(b")\r\n");
    }

    /// This session's own flag changes in a Maildir (view index, new
    /// letters): the renames, and, when `clean`, their record in the
    /// index and the view without a rescan ([`crate::store::mailbox::Mailbox::store_letters`]).
    /// Returns the UIDs renamed and whether they were recorded (else the
    /// caller rescans).
    fn rename_own(&mut self, planned: &[(usize, String)], clean: bool) -> (Vec<u32>, bool) {
        if planned.is_empty() {
            return (Vec::new(), true);
        }
        let Some(sel) = &mut self.sel else {
            return (Vec::new(), false);
        };
        let Selected { view, mb, .. } = sel;
        let plan: Vec<(usize, &Msg, String)> = planned
            .iter()
            .filter_map(|(i, l)| view.get(*i).map(|m| (*i, m, l.clone())))
            .collect();
        let refs: Vec<(&Msg, String)> = plan.iter().map(|(_, m, l)| (*m, l.clone())).collect();
        let (paths, recorded) = mb.store_letters(&refs, clean);
        let renamed: Vec<Renamed> = plan
            .iter()
            .zip(paths)
            .filter_map(|((i, m, l), p)| p.map(|p| (*i, m.uid, l.clone(), p)))
            .collect();
        let uids: Vec<u32> = renamed.iter().map(|r| r.1).collect();
        let Ok((modseqs, after)) = recorded else {
            return (uids, false);
        };
        for ((i, _, letters, path), (_, modseq)) in renamed.iter().zip(modseqs.iter()) {
            if let Some(m) = sel.view.get_mut(*i) {
                m.flags = sel.mb.keywords.flags_of(letters).into();
                m.letters = (&**letters).into();
                m.path = path.clone().into();
                m.modseq = *modseq;
            }
        }
        // new/ as it was before: a delivery meanwhile still shows.
        let mut stamp = after;
        if let (Some(s0), Some(b0)) = (stamp.first_mut(), sel.stamp.first()) {
            *s0 = *b0;
        }
        sel.stamp = stamp;
        let all = modseqs.len() == renamed.len();
        (uids, all)
    }

    /// FETCH and UID FETCH.
    pub fn fetch(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SeqSet,
        mut attrs: Vec<FetchAttr>,
        changed_since: Option<u64>,
        vanished: bool,
    ) {
        let t = Some(tag);
        if !uid && !self.seqs_valid(set) {
            status(&mut self.out, t, Status::Bad, None, "Invalid messageset");
            return;
        }
        if changed_since.is_some() {
            self.condstore = true;
            if !attrs.contains(&FetchAttr::ModSeq) {
                attrs.push(FetchAttr::ModSeq);
            }
        }
        if attrs.contains(&FetchAttr::ModSeq) {
            self.condstore = true;
        }
        let mut idx = self.resolve(uid, set);
        if let Some(cs) = changed_since {
            if vanished
                && uid
                && self.qresync
                && let Some(sel) = &self.sel
            {
                {
                    let max = sel.mb.uid_next;
                    let gone: Vec<u32> = sel
                        .mb
                        .expunged
                        .iter()
                        .filter(|(u, m)| *m > cs && set.contains(*u, max))
                        .map(|(u, _)| *u)
                        .collect();
                    data::vanished(&mut self.out, true, &gone);
                }
            }
            let view = self.sel.as_ref().map(|s| &s.view);
            idx.retain(|&i| view.and_then(|v| v.get(i)).is_some_and(|m| m.modseq > cs));
        }
        // Implied \Seen first, so the responses show it.
        let mut seen_set = HashSet::new();
        let mut planned: Vec<(usize, String)> = Vec::new();
        let mut clean = false;
        if implies_seen(&attrs)
            && let Some(sel) = &self.sel
            && !sel.read_only
        {
            clean = sel.mb.mbox.is_none() && sel.mb.stamp() == sel.stamp;
            for &i in &idx {
                let Some(m) = sel.view.get(i) else { continue };
                if m.letters.contains('S') {
                    continue;
                }
                let letters = mailstore::Flags::new(&format!("{}S", m.letters))
                    .as_str()
                    .to_string();
                if sel.mb.mbox.is_some() {
                    if sel.mb.set_letters(m, &letters) {
                        seen_set.insert(m.uid);
                    }
                } else {
                    planned.push((i, letters));
                }
            }
        }
        let (renamed, own) = self.rename_own(&planned, clean);
        seen_set.extend(renamed);
        let recorded = seen_set.is_empty() || (clean && own);
        if !recorded {
            self.refresh(false, &seen_set, true);
        }
        let all_cacheable = attrs.iter().all(cacheable) && !self.utf8;
        let sizes = all_cacheable && attrs.contains(&FetchAttr::Rfc822Size);
        let dates = attrs.contains(&FetchAttr::InternalDate);
        if sizes || dates {
            self.fill(Some(&idx), sizes, dates);
        }
        if all_cacheable {
            let ahead = self.uncached_files(&attrs, &idx);
            std::thread::scope(|scope| {
                // The files the cache lacks are read ahead by a second
                // thread (asking the kernel for their pages): a first
                // FETCH of ENVELOPE or BODYSTRUCTURE on a cold mailbox
                // then waits on the disk for many files at once rather
                // than for one after the other.
                if ahead.len() >= READ_AHEAD_FROM {
                    scope.spawn(move || read_ahead(&ahead));
                }
                for i in idx {
                    self.fetch_cached(i, &attrs, &seen_set, uid);
                }
            });
            if let Some(sel) = &mut self.sel {
                sel.mb.cache.flush();
            }
            status(&mut self.out, t, Status::Ok, None, "Fetch completed.");
            return;
        }
        // Implied \Seen shows as FLAGS even when not asked for.
        let mut with_flags = attrs.clone();
        if !with_flags.contains(&FetchAttr::Flags) {
            with_flags.push(FetchAttr::Flags);
        }
        let parse_needed = crate::response::fetch::needs_parse(&attrs);
        let (mut scratch, mut raw) = (Vec::new(), Vec::new());
        for i in idx {
            let Some(sel) = self.sel.as_ref() else { break };
            let Some(m) = sel.view.get(i) else { continue };
            if !sel.mb.read_into(m, &mut scratch, &mut raw) {
                continue;
            }
            self.fetched += 1;
            let a = if seen_set.contains(&m.uid) {
                &with_flags
            } else {
                &attrs
            };
            let msg = if parse_needed { parse(&raw) } else { None };
            let input = FetchInput {
                seq: u32::try_from(i + 1).unwrap_or(u32::MAX),
                uid: m.uid,
                flags: &m.flags,
                recent: m.recent && !self.rev2,
                internal_date: m.date.unwrap_or(0),
                zone_minutes: self.zone,
                modseq: m.modseq,
                raw: &raw,
                msg: msg.as_ref(),
                utf8: self.utf8,
            };
            if fetch_response(&mut self.out, a, &input, uid).is_err() {
                status(
                    &mut self.out,
                    t,
                    Status::No,
                    Some("UNKNOWN-CTE"),
                    "Unknown Content-Transfer-Encoding.",
                );
                return;
            }
            // Sent as it grows: a FETCH of every body is not held whole.
            if self.flush_large().is_err() {
                return;
            }
        }
        status(&mut self.out, t, Status::Ok, None, "Fetch completed.");
    }

    /// STORE and UID STORE.
    #[allow(clippy::too_many_arguments)]
    pub fn store_flags(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SeqSet,
        unchanged_since: Option<u64>,
        mode: StoreMode,
        silent: bool,
        flags: &[String],
    ) {
        let t = Some(tag);
        if !uid && !self.seqs_valid(set) {
            status(&mut self.out, t, Status::Bad, None, "Invalid messageset");
            return;
        }
        if self.sel.as_ref().is_some_and(|s| s.read_only) {
            status(
                &mut self.out,
                t,
                Status::No,
                Some("READ-ONLY"),
                "Mailbox is read-only.",
            );
            return;
        }
        if unchanged_since.is_some() {
            self.condstore = true;
        }
        let idx = self.resolve(uid, set);
        let mut touched = HashSet::new();
        let mut modified = Vec::new();
        // Nothing changed since the last look: record our own changes
        // without listing the mailbox again (Maildir only).
        let clean = self
            .sel
            .as_ref()
            .is_some_and(|s| s.mb.mbox.is_none() && s.mb.stamp() == s.stamp);
        let mut planned: Vec<(usize, String)> = Vec::new();
        if let Some(sel) = &mut self.sel {
            let flags: Vec<String> = flags
                .iter()
                .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
                .cloned()
                .collect();
            for &i in &idx {
                let Some(m) = sel.view.get(i) else { continue };
                if unchanged_since.is_some_and(|u| m.modseq > u) {
                    modified.push(if uid {
                        m.uid
                    } else {
                        u32::try_from(i + 1).unwrap_or(0)
                    });
                    continue;
                }
                let mut want: Vec<String> = match mode {
                    StoreMode::Replace => flags.clone(),
                    StoreMode::Add => {
                        let mut v = m.flags.to_vec();
                        v.extend(flags.iter().cloned());
                        v
                    }
                    StoreMode::Remove => m
                        .flags
                        .iter()
                        .filter(|f| !flags.iter().any(|x| x.eq_ignore_ascii_case(f)))
                        .cloned()
                        .collect(),
                };
                want.dedup();
                let letters = match sel.mb.keywords.letters_of(&want, &m.letters) {
                    Ok(l) => l,
                    Err(e) => {
                        maillog::warning!("{}: keywords: {e}", self.user);
                        continue;
                    }
                };
                if *letters != *m.letters {
                    if sel.mb.mbox.is_some() {
                        sel.mb.set_letters(m, &letters);
                    } else {
                        planned.push((i, letters));
                    }
                }
                touched.insert(m.uid);
            }
        }
        let (_, own) = self.rename_own(&planned, clean);
        let recorded = clean && own;
        if !recorded {
            self.refresh(false, &touched, true);
        }
        if !silent || self.condstore {
            let rows: Vec<(usize, Msg)> = idx
                .iter()
                .filter_map(|&i| {
                    self.sel
                        .as_ref()
                        .and_then(|s| s.view.get(i))
                        .map(|m| (i, m.clone()))
                })
                .filter(|(_, m)| touched.contains(&m.uid))
                .collect();
            for (i, m) in rows {
                if silent {
                    self.out.extend_from_slice(
                        format!(
                            "* {} FETCH ({}MODSEQ ({}))\r\n",
                            i + 1,
                            if uid {
                                format!("UID {} ", m.uid)
                            } else {
                                String::new()
                            },
                            m.modseq
                        )
                        .as_bytes(),
                    );
                } else {
                    self.flag_fetch(i, &m, uid);
                }
            }
        }
        if modified.is_empty() {
            status(&mut self.out, t, Status::Ok, None, "Store completed.");
        } else {
            let code = format!("MODIFIED {}", crate::response::encode::seq_set(&modified));
            status(
                &mut self.out,
                t,
                Status::Ok,
                Some(&code),
                "Conditional store failed.",
            );
        }
    }

    /// The messages matching `key`: (view index, message), in order.
    fn matching(&mut self, key: &SearchKey) -> Vec<(usize, Msg)> {
        let (sizes, dates) = (has_size(key), has_internal_date(key));
        if sizes || dates {
            self.fill(None, sizes, dates);
        }
        let Some(sel) = &self.sel else {
            return Vec::new();
        };
        let ctx = Context {
            max_seq: u32::try_from(sel.view.len()).unwrap_or(u32::MAX),
            max_uid: sel.view.last_uid(),
            saved: &self.saved,
        };
        let key = prepare(key, &ctx);
        let needs = needs_message(&key);
        let Some(sel) = &self.sel else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for (i, m) in sel.view.iter().enumerate() {
            let raw = if needs {
                sel.mb.read(m).unwrap_or_default()
            } else {
                Vec::new()
            };
            let msg = if needs { parse(&raw) } else { None };
            let c = Candidate {
                seq: u32::try_from(i + 1).unwrap_or(u32::MAX),
                uid: m.uid,
                flags: &m.flags,
                recent: m.recent,
                internal_date: date_of(m.date.unwrap_or(0), self.zone),
                size: m.size.unwrap_or(0),
                modseq: m.modseq,
                raw: &raw,
                msg: msg.as_ref(),
            };
            if matches(&key, &c, &ctx) {
                found.push((i, m.clone()));
            }
        }
        found
    }

    /// SEARCH and UID SEARCH (ESEARCH with RETURN, SEARCHRES's SAVE).
    pub fn search(
        &mut self,
        tag: &str,
        uid: bool,
        ret: Option<Vec<SearchReturn>>,
        charset: Option<String>,
        key: SearchKey,
    ) {
        let t = Some(tag);
        if charset.as_deref().is_some_and(|c| !charset_supported(c)) {
            status(
                &mut self.out,
                t,
                Status::No,
                Some("BADCHARSET (UTF-8 US-ASCII)"),
                "Unsupported charset.",
            );
            return;
        }
        let found = self.matching(&key);
        let nums: Vec<u32> = found
            .iter()
            .map(|(i, m)| {
                if uid {
                    m.uid
                } else {
                    u32::try_from(i + 1).unwrap_or(0)
                }
            })
            .collect();
        let modseq =
            has_modseq(&key).then(|| found.iter().map(|(_, m)| m.modseq).max().unwrap_or(0));
        if has_modseq(&key) {
            self.condstore = true;
        }
        match ret {
            Some(r) => {
                if r.contains(&SearchReturn::Save) {
                    self.saved = found.iter().map(|(_, m)| m.uid).collect();
                }
                if !(r.len() == 1 && r[0] == SearchReturn::Save) {
                    data::esearch(&mut self.out, tag, uid, &r, &nums, modseq);
                }
            }
            // IMAP4rev2 has no SEARCH response: ESEARCH ALL instead.
            None if self.rev2 => data::esearch(&mut self.out, tag, uid, &[], &nums, modseq),
            None => data::search(&mut self.out, "SEARCH", &nums, modseq),
        }
        status(&mut self.out, t, Status::Ok, None, "Search completed.");
    }

    /// SORT and UID SORT.
    pub fn sort(
        &mut self,
        tag: &str,
        uid: bool,
        criteria: &[SortCriterion],
        charset: &str,
        key: SearchKey,
    ) {
        let t = Some(tag);
        if !charset_supported(charset) {
            status(
                &mut self.out,
                t,
                Status::No,
                Some("BADCHARSET (UTF-8 US-ASCII)"),
                "Unsupported charset.",
            );
            return;
        }
        let sizes = criteria
            .iter()
            .any(|c| c.key == crate::parse::SortKey::Size);
        let dates = criteria.iter().any(|c| {
            matches!(
                c.key,
                crate::parse::SortKey::Arrival | crate::parse::SortKey::Date
            )
        });
        if sizes || dates {
            self.fill(None, sizes, dates);
        }
        let found = self.matching(&key);
        let mut infos = Vec::with_capacity(found.len());
        for (i, m) in &found {
            let raw = self.read_msg(m).unwrap_or_default();
            let msg = parse(&raw);
            infos.push(crate::search::sort::sort_info(
                msg.as_ref(),
                u32::try_from(i + 1).unwrap_or(0),
                m.uid,
                m.date.unwrap_or(0),
                m.size.unwrap_or(0),
            ));
        }
        crate::search::sort::sort(criteria, &mut infos);
        let nums: Vec<u32> = infos
            .iter()
            .map(|s| if uid { s.uid } else { s.seq })
            .collect();
        data::search(&mut self.out, "SORT", &nums, None);
        status(&mut self.out, t, Status::Ok, None, "Sort completed.");
    }

    /// THREAD and UID THREAD.
    pub fn thread(
        &mut self,
        tag: &str,
        uid: bool,
        algorithm: ThreadAlgorithm,
        charset: &str,
        key: SearchKey,
    ) {
        let t = Some(tag);
        if !charset_supported(charset) {
            status(
                &mut self.out,
                t,
                Status::No,
                Some("BADCHARSET (UTF-8 US-ASCII)"),
                "Unsupported charset.",
            );
            return;
        }
        // A message without a Date header is placed by its internal date.
        self.fill(None, false, true);
        let found = self.matching(&key);
        let mut infos = Vec::with_capacity(found.len());
        for (i, m) in &found {
            let raw = self.read_msg(m).unwrap_or_default();
            let msg = parse(&raw);
            let seq = u32::try_from(i + 1).unwrap_or(0);
            infos.push(crate::thread::thread_info(
                msg.as_ref(),
                if uid { m.uid } else { seq },
                seq,
                m.date.unwrap_or(0),
            ));
        }
        let forest = match algorithm {
            ThreadAlgorithm::OrderedSubject => {
                crate::thread::orderedsubject::ordered_subject(&infos)
            }
            ThreadAlgorithm::References => crate::thread::references::references(&infos),
        };
        self.out.extend_from_slice(
            format!("* THREAD {}", forest.format())
                .trim_end()
                .as_bytes(),
        );
        self.out.extend_from_slice(b"\r\n");
        status(&mut self.out, t, Status::Ok, None, "Thread completed.");
    }
}
