//! A small cache of recent answers from a lookup service, for its clients:
//! Postfix's rewrite_clnt and resolve_clnt keep the last answer in every
//! client process, so that a run of messages with the same sender or
//! recipient asks trivial-rewrite once. Ours are long-lived multi-client
//! processes, so the cache holds up to a fixed number of answers (it is
//! emptied when full) and each answer expires after a fixed time: a
//! change that trivial-rewrite makes (its tables changed, `postfix reload`)
//! reaches every client within that time even without a restart.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Answers kept by one [`Recent`] before it is emptied.
pub const CAPACITY: usize = 1024;

/// How long an answer is used.
pub const LIFETIME: Duration = Duration::from_secs(10);

/// Recent answers, shared by the threads of a process.
#[derive(Debug)]
pub struct Recent<K, V> {
    map: Mutex<HashMap<K, (Instant, V)>>,
    lifetime: Duration,
}

impl<K: Eq + Hash, V: Clone> Recent<K, V> {
    /// An empty cache whose answers live for [`LIFETIME`].
    pub fn new() -> Recent<K, V> {
        Recent::with_lifetime(LIFETIME)
    }

    /// An empty cache whose answers live for `lifetime`.
    pub fn with_lifetime(lifetime: Duration) -> Recent<K, V> {
        Recent {
            map: Mutex::new(HashMap::new()),
            lifetime,
        }
    }

    /// The answer for `key`, when one younger than the lifetime is kept.
    pub fn get(&self, key: &K) -> Option<V> {
        let map = self.map.lock().ok()?;
        let (at, v) = map.get(key)?;
        (at.elapsed() < self.lifetime).then(|| v.clone())
    }

    /// Keeps `value` as the answer for `key`.
    pub fn put(&self, key: K, value: V) {
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= CAPACITY {
                map.clear();
            }
            map.insert(key, (Instant::now(), value));
        }
    }
}

impl<K: Eq + Hash, V: Clone> Default for Recent<K, V> {
    fn default() -> Self {
        Recent::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_kept_until_they_expire() {
        let c: Recent<String, u32> = Recent::with_lifetime(Duration::from_millis(50));
        assert_eq!(c.get(&"a".to_string()), None);
        c.put("a".into(), 1);
        assert_eq!(c.get(&"a".to_string()), Some(1));
        assert_eq!(c.get(&"b".to_string()), None);
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(c.get(&"a".to_string()), None, "expired");
    }

    #[test]
    fn a_full_cache_is_emptied() {
        let c: Recent<usize, usize> = Recent::new();
        for i in 0..CAPACITY {
            c.put(i, i);
        }
        assert_eq!(c.get(&0), Some(0));
        c.put(CAPACITY, 7);
        assert_eq!(c.get(&0), None);
        assert_eq!(c.get(&CAPACITY), Some(7));
    }
}
