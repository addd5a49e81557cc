//! The per-process answer cache: (name, type) to the answer (records or a
//! negative answer) until its TTL runs out. Temporary failures are never
//! cached. Bounded: when full it is emptied, which costs a few repeated
//! queries and nothing else.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_proto::rr::{RData, RecordType};

use crate::Error;

type Entry = (Instant, Result<Vec<RData>, Error>);

/// The cache.
#[derive(Debug)]
pub(crate) struct Cache {
    limit: usize,
    map: Mutex<HashMap<(String, RecordType), Entry>>,
}

impl Cache {
    pub(crate) fn new(limit: usize) -> Cache {
        Cache {
            limit,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// A live entry.
    pub(crate) fn get(&self, name: &str, rtype: RecordType) -> Option<Result<Vec<RData>, Error>> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let key = (name.to_string(), rtype);
        match map.get(&key) {
            Some((until, r)) if *until > Instant::now() => Some(r.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Keeps an answer for `ttl` seconds.
    pub(crate) fn put(
        &self,
        name: String,
        rtype: RecordType,
        answer: Result<Vec<RData>, Error>,
        ttl: u32,
    ) {
        let Some(until) = Instant::now().checked_add(Duration::from_secs(u64::from(ttl))) else {
            return;
        };
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.limit {
            map.clear();
        }
        map.insert((name, rtype), (until, answer));
    }
}
