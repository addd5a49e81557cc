//! A selected mailbox's view while the session is idle ("parked"): only
//! what the client was told and the store cannot say again, the UIDs in
//! sequence order with their flags (as last reported) and \Recent, about
//! 6 bytes a message. Everything else (file names, sizes, dates, MODSEQs,
//! the parsed index, the cache) is dropped and comes back from a scan of
//! the mailbox at the next command ([`Selected::unpark`]), so that an idle
//! session holds neither the mailbox's file names nor its index, which
//! stay on disk and in the page cache that all sessions share (as
//! Dovecot's sessions share its mmapped index).

use std::collections::HashMap;
use std::time::Duration;

use super::mail::Selected;
use crate::store::mailbox::{Msg, SharedPath, SharedStr};
use crate::store::view::View;

/// How long a session waits for input before it parks its view.
pub const PARK_AFTER: Duration = Duration::from_millis(500);

/// Each message's flag set, an index into [`Parked::sets`]: a byte
/// while there are at most 256 distinct sets.
#[derive(Debug)]
enum SetIds {
    Narrow(Vec<u8>),
    Wide(Vec<u16>),
}

impl SetIds {
    fn get(&self, i: usize) -> usize {
        match self {
            SetIds::Narrow(v) => v.get(i).map_or(0, |x| usize::from(*x)),
            SetIds::Wide(v) => v.get(i).map_or(0, |x| usize::from(*x)),
        }
    }
}

/// The parked view.
#[derive(Debug)]
pub struct Parked {
    /// UIDs in sequence order, as runs of consecutive UIDs (first, count).
    runs: Vec<(u32, u32)>,
    /// How many messages.
    count: usize,
    /// Each message's flag set.
    set_of: SetIds,
    /// The distinct (letters, flags) pairs.
    sets: Vec<(
        crate::store::mailbox::Letters,
        crate::store::mailbox::FlagList,
    )>,
    /// The UIDs that are \Recent in this session.
    recent: Vec<u32>,
}

impl Parked {
    /// The parked form of `view`; None when its flag sets do not fit the
    /// compact form (then the view stays as it is).
    fn of(view: &View) -> Option<Parked> {
        let mut sets: Vec<(
            crate::store::mailbox::Letters,
            crate::store::mailbox::FlagList,
        )> = Vec::new();
        let mut ids: Vec<u16> = Vec::with_capacity(view.len());
        let mut known: HashMap<(&str, &[String]), u16> = HashMap::new();
        let mut runs: Vec<(u32, u32)> = Vec::new();
        let mut recent = Vec::new();
        for m in view.iter() {
            let key = (&*m.letters, &m.flags[..]);
            let id = match known.get(&key) {
                Some(id) => *id,
                None => {
                    let id = u16::try_from(sets.len()).ok()?;
                    sets.push((m.letters.clone(), m.flags.clone()));
                    known.insert(key, id);
                    id
                }
            };
            ids.push(id);
            match runs.last_mut() {
                Some((first, n)) if first.checked_add(*n) == Some(m.uid) => *n += 1,
                _ => runs.push((m.uid, 1)),
            }
            if m.recent {
                recent.push(m.uid);
            }
        }
        let set_of = if sets.len() <= 256 {
            SetIds::Narrow(ids.iter().map(|i| u8::try_from(*i).unwrap_or(0)).collect())
        } else {
            SetIds::Wide(ids)
        };
        runs.shrink_to_fit();
        Some(Parked {
            runs,
            count: view.len(),
            set_of,
            sets,
            recent,
        })
    }

    /// The UIDs in sequence order.
    fn uids(&self) -> impl Iterator<Item = u32> + '_ {
        self.runs
            .iter()
            .flat_map(|(first, n)| (0..*n).map(move |k| first.saturating_add(k)))
    }

    /// The view again: each parked message with its parked flags and the
    /// rest from `fresh` (a scan, by UID); one that is gone from the
    /// store keeps its place with no file (its expunge is reported as
    /// usual, at a command's end).
    fn view(self, fresh: Vec<Msg>) -> Vec<Msg> {
        let mut by_uid: HashMap<u32, Msg> = fresh.into_iter().map(|m| (m.uid, m)).collect();
        let mut out = Vec::with_capacity(self.count);
        for (i, uid) in self.uids().enumerate() {
            let (letters, flags) = self
                .sets
                .get(self.set_of.get(i))
                .cloned()
                .unwrap_or_default();
            let recent = self.recent.binary_search(&uid).is_ok();
            let m = match by_uid.remove(&uid) {
                Some(mut m) => {
                    m.letters = letters;
                    m.flags = flags;
                    m.recent = recent;
                    m
                }
                None => Msg {
                    uid,
                    flags,
                    letters,
                    modseq: 0,
                    size: Some(0),
                    date: Some(0),
                    recent,
                    unique: SharedStr::default(),
                    path: SharedPath::default(),
                    offset: 0,
                },
            };
            out.push(m);
        }
        out
    }
}

impl Selected {
    /// True while the view is parked.
    pub fn parked(&self) -> bool {
        self.parked.is_some()
    }

    /// Parks the view (see the module documentation).
    pub fn park(&mut self) {
        if self.parked.is_some() {
            return;
        }
        let Some(p) = Parked::of(&self.view) else {
            return;
        };
        self.view = View::default();
        self.parked = Some(p);
        self.mb.forget();
    }

    /// Brings the parked view back (nothing when it is not parked): the
    /// mailbox is scanned, without claiming new/ (the command's refresh
    /// does that and reports what changed).
    ///
    /// # Errors
    /// The scan failed; the view stays parked.
    pub fn unpark(&mut self) -> Result<(), String> {
        if self.parked.is_none() {
            return Ok(());
        }
        let fresh = self.mb.scan(false)?;
        self.unpark_with(fresh);
        Ok(())
    }

    /// [`Selected::unpark`] with the scan already made.
    pub fn unpark_with(&mut self, fresh: View) {
        if let Some(p) = self.parked.take() {
            self.view = p.view(fresh.into_vec()).into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(uid: u32, letters: &str, recent: bool) -> Msg {
        let flags = if letters.contains('S') {
            vec!["\\Seen".to_string()]
        } else {
            Vec::new()
        };
        Msg {
            uid,
            flags: flags.into(),
            letters: letters.into(),
            modseq: u64::from(uid) + 100,
            size: Some(10),
            date: Some(5),
            recent,
            unique: format!("u{uid}").into(),
            path: std::path::PathBuf::from(format!("/m/cur/u{uid}:2,{letters}")).into(),
            offset: 0,
        }
    }

    /// Parking keeps UIDs, the flags as reported and \Recent; unparking
    /// takes the rest from the scan and keeps an expunged message's place.
    #[test]
    fn park_and_unpark_keep_what_the_client_knows() {
        let view = vec![msg(3, "S", false), msg(7, "", true), msg(9, "S", false)];
        let p = Parked::of(&View::from(view.clone())).unwrap();
        assert_eq!(p.uids().collect::<Vec<_>>(), vec![3, 7, 9]);
        assert_eq!(p.runs, vec![(3, 1), (7, 1), (9, 1)]);
        assert_eq!(p.sets.len(), 2, "two distinct flag sets");
        // Since: 3 got \Flagged elsewhere (reported at the refresh, not
        // here), 7 was expunged, 11 arrived.
        let mut fresh = vec![msg(3, "FS", false), msg(9, "S", false), msg(11, "", false)];
        fresh[0].flags = vec!["\\Flagged".to_string(), "\\Seen".to_string()].into();
        let back = p.view(fresh);
        assert_eq!(
            back.iter().map(|m| m.uid).collect::<Vec<_>>(),
            vec![3, 7, 9]
        );
        assert_eq!(&*back[0].letters, "S", "the flags the client was told");
        assert_eq!(
            &*back[0].path.path(),
            std::path::Path::new("/m/cur/u3:2,FS"),
            "the file now"
        );
        assert!(back[1].recent && back[1].unique.is_empty());
        assert_eq!(back[2], view[2]);
        // Consecutive UIDs are one run; many flag sets need wider ids.
        let many: Vec<Msg> = (1..=600).map(|u| msg(u, &format!("{u}"), false)).collect();
        let p = Parked::of(&View::from(many.clone())).unwrap();
        assert_eq!(p.runs, vec![(1, 600)]);
        assert!(matches!(p.set_of, SetIds::Wide(_)));
        let back = p.view(many.clone());
        assert_eq!(back, many);
    }
}
