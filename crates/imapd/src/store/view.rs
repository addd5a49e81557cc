//! A selected mailbox's messages in sequence order, as a session sees
//! them ([`View`]), built lazily when they come from a version 5 index:
//! a new session's SELECT of an unchanged maildir reads the index's head
//! (UIDs, flags) and answers from it, and a message becomes a [`Msg`]
//! (with its MODSEQ, size, date and file from the index's tail) only when
//! a command touches it, 64 at a time. SELECT of 10,000 messages thus
//! allocates no message, and a FETCH of ten of them builds one or two
//! chunks.

use std::cell::{OnceCell, RefCell};
use std::path::Path;
use std::rc::Rc;

use super::index::RawIndex;
use super::keywords::Keywords;
use super::mailbox::{FlagSets, Msg, SharedPath, SharedStr};

/// Messages built at a time.
const CHUNK: usize = 64;

/// Where the messages not built yet come from.
#[derive(Debug)]
pub struct Lazy {
    raw: Rc<RawIndex>,
    dir: Rc<Path>,
    keywords: Keywords,
    sets: RefCell<FlagSets>,
}

impl Lazy {
    /// Messages from `raw`, the maildir at `dir` with `keywords`.
    pub fn new(raw: Rc<RawIndex>, dir: &Path, keywords: Keywords) -> Lazy {
        Lazy {
            raw,
            dir: Rc::from(dir),
            keywords,
            sets: RefCell::default(),
        }
    }

    /// Message `i` (None past the end). A damaged tail gives messages
    /// without size, date or file (and marks the index damaged, so the
    /// next scan lists the maildir).
    fn msg(&self, i: usize) -> Option<Msg> {
        let r = self.raw.record(i)?;
        let (letters, flags) = self.sets.borrow_mut().of_mask(&self.keywords, r.mask);
        let (modseq, size, date, unique, path) = match self.raw.tail() {
            Some(t) => {
                let (size, date) = t.size_date(i);
                let (a, b) = t.file_at(i).unwrap_or_default();
                (
                    t.modseq(i),
                    size,
                    date,
                    // "cur/" or "new/", then the unique name up to ':'.
                    SharedStr::before_colon(&t.buf, a + 4, b),
                    SharedPath::under(&self.dir, &t.buf, a, b),
                )
            }
            None => {
                maillog::warning!(
                    "{}: damaged index: the maildir is listed again",
                    self.dir.display()
                );
                (0, None, None, SharedStr::default(), SharedPath::default())
            }
        };
        Some(Msg {
            uid: r.uid,
            flags,
            letters,
            modseq,
            size,
            date,
            recent: false,
            unique,
            path,
            offset: 0,
        })
    }
}

/// The messages of a selected mailbox in sequence order.
#[derive(Debug, Clone, Default)]
pub struct View {
    len: usize,
    lazy: Option<Rc<Lazy>>,
    chunks: Vec<OnceCell<Vec<Msg>>>,
}

impl From<Vec<Msg>> for View {
    fn from(v: Vec<Msg>) -> View {
        let len = v.len();
        let mut chunks = Vec::with_capacity(len.div_ceil(CHUNK));
        let mut it = v.into_iter();
        loop {
            let c: Vec<Msg> = it.by_ref().take(CHUNK).collect();
            if c.is_empty() {
                break;
            }
            chunks.push(OnceCell::from(c));
        }
        View {
            len,
            lazy: None,
            chunks,
        }
    }
}

impl PartialEq for View {
    fn eq(&self, other: &View) -> bool {
        self.len == other.len && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl View {
    /// The messages of `lazy`'s index, none built yet.
    pub fn lazy(lazy: Lazy) -> View {
        let len = lazy.raw.len();
        View {
            len,
            lazy: Some(Rc::new(lazy)),
            chunks: (0..len.div_ceil(CHUNK)).map(|_| OnceCell::new()).collect(),
        }
    }

    /// How many messages.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True without messages.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn chunk(&self, c: usize) -> Option<&Vec<Msg>> {
        let cell = self.chunks.get(c)?;
        Some(cell.get_or_init(|| {
            let start = c * CHUNK;
            let end = (start + CHUNK).min(self.len);
            match &self.lazy {
                Some(l) => (start..end).filter_map(|i| l.msg(i)).collect(),
                None => Vec::new(),
            }
        }))
    }

    /// Message `i` (from 0).
    pub fn get(&self, i: usize) -> Option<&Msg> {
        self.chunk(i / CHUNK)?.get(i % CHUNK)
    }

    /// Message `i`, to change.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut Msg> {
        self.chunk(i / CHUNK)?;
        self.chunks
            .get_mut(i / CHUNK)?
            .get_mut()?
            .get_mut(i % CHUNK)
    }

    /// The last message.
    pub fn last(&self) -> Option<&Msg> {
        self.get(self.len.checked_sub(1)?)
    }

    /// The messages in order.
    pub fn iter(&self) -> impl Iterator<Item = &Msg> + '_ {
        (0..self.len).filter_map(|i| self.get(i))
    }

    /// The messages in order, to change (all built).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Msg> + '_ {
        for c in 0..self.chunks.len() {
            self.chunk(c);
        }
        self.chunks
            .iter_mut()
            .filter_map(OnceCell::get_mut)
            .flat_map(|c| c.iter_mut())
    }

    /// All the messages, built, as a vector.
    pub fn into_vec(self) -> Vec<Msg> {
        for c in 0..self.chunks.len() {
            self.chunk(c);
        }
        self.chunks
            .into_iter()
            .filter_map(OnceCell::into_inner)
            .flatten()
            .collect()
    }

    /// Message `i`'s UID, without building it.
    pub fn uid(&self, i: usize) -> Option<u32> {
        if i >= self.len {
            return None;
        }
        match (
            self.chunks.get(i / CHUNK).and_then(OnceCell::get),
            &self.lazy,
        ) {
            (Some(c), _) => c.get(i % CHUNK).map(|m| m.uid),
            (None, Some(l)) => l.raw.record(i).map(|r| r.uid),
            (None, None) => None,
        }
    }

    /// The highest UID (0 when empty).
    pub fn last_uid(&self) -> u32 {
        self.len
            .checked_sub(1)
            .and_then(|i| self.uid(i))
            .unwrap_or(0)
    }

    /// How many are \Recent (a message not built yet is not: a view from
    /// the index claims nothing).
    pub fn recent_count(&self) -> usize {
        self.chunks
            .iter()
            .filter_map(OnceCell::get)
            .flatten()
            .filter(|m| m.recent)
            .count()
    }

    /// The first message without \Seen (from 0), without building those
    /// not built yet (their flag letters are in the index).
    pub fn first_unseen(&self) -> Option<usize> {
        let seen = super::index::letter_mask("S");
        (0..self.len).find(|&i| {
            match (
                self.chunks.get(i / CHUNK).and_then(OnceCell::get),
                &self.lazy,
            ) {
                (Some(c), _) => c
                    .get(i % CHUNK)
                    .is_some_and(|m| !m.flags.iter().any(|f| f == "\\Seen")),
                (None, Some(l)) => l.raw.record(i).is_some_and(|r| r.mask & seen == 0),
                (None, None) => false,
            }
        })
    }

    /// How many chunks of messages have been built (tests).
    #[cfg(test)]
    pub fn built_chunks(&self) -> usize {
        self.chunks.iter().filter(|c| c.get().is_some()).count()
    }

    /// No message \Recent any more (only those built can be).
    pub fn clear_recent(&mut self) {
        for c in self.chunks.iter_mut().filter_map(OnceCell::get_mut) {
            c.iter_mut().for_each(|m| m.recent = false);
        }
    }
}
