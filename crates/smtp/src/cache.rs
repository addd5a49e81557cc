//! The connection cache (Postfix's smtp_connection_cache_*, without the
//! scache daemon): after a delivery, the session with the server stays
//! open in this smtp process, and the next delivery to the same nexthop
//! that this process handles uses it again after an `RSET` instead of a
//! new connection, greeting and EHLO (and STARTTLS and AUTH).
//!
//! Sessions are kept for nexthops listed in
//! smtp_connection_cache_destinations, or for every nexthop when
//! smtp_connection_cache_on_demand is on (Postfix keeps them there only
//! while the queue manager reports a backlog for the destination; ours
//! has no such signal, so every destination counts as one with a
//! backlog). A kept session is closed (QUIT) when it has been idle for
//! smtp_connection_cache_time_limit (a thread checks each second), when it
//! is older than smtp_connection_reuse_time_limit, or when it has been used
//! smtp_connection_reuse_count_limit times (0: no limit). Sessions are
//! never shared between processes: there is no scache(8) daemon, so each
//! smtp process reuses only its own connections.

use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use crate::conn::Conn;
use crate::nexthop::Server;
use crate::session::Features;

/// The cache settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct Policy {
    /// smtp_connection_cache_on_demand.
    pub(crate) on_demand: bool,
    /// smtp_connection_cache_destinations (lower case).
    pub(crate) destinations: Vec<String>,
    /// smtp_connection_cache_time_limit.
    pub(crate) idle_limit: Duration,
    /// smtp_connection_reuse_time_limit.
    pub(crate) age_limit: Duration,
    /// smtp_connection_reuse_count_limit (0: none).
    pub(crate) count_limit: u32,
}

impl Policy {
    /// Whether sessions for `nexthop` are kept.
    pub(crate) fn wants(&self, nexthop: &str) -> bool {
        self.on_demand
            || self
                .destinations
                .iter()
                .any(|d| d.eq_ignore_ascii_case(nexthop.trim()))
    }
}

/// One kept session.
pub(crate) struct Kept {
    pub(crate) conn: Conn,
    pub(crate) features: Features,
    pub(crate) server: Server,
    /// When the connection was made.
    pub(crate) born: Instant,
    /// How many transactions it has carried.
    pub(crate) uses: u32,
}

struct Entry {
    /// The nexthop and its lookup key (nexthop, TLS level).
    key: String,
    kept: Kept,
    since: Instant,
    idle_limit: Duration,
}

static CACHE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
static REAPER: Once = Once::new();

/// Takes the session kept for `key`, if any (it leaves the cache).
pub(crate) fn take(key: &str) -> Option<Kept> {
    let mut cache = CACHE.lock().ok()?;
    let i = cache.iter().position(|e| e.key == key)?;
    let e = cache.swap_remove(i);
    if e.since.elapsed() > e.idle_limit {
        drop(cache);
        close(e.kept);
        return None;
    }
    Some(e.kept)
}

/// Keeps a session for `key` unless `policy` says it is worn out.
pub(crate) fn store(policy: &Policy, key: String, kept: Kept) {
    if kept.born.elapsed() >= policy.age_limit
        || (policy.count_limit > 0 && kept.uses >= policy.count_limit)
    {
        close(kept);
        return;
    }
    let Ok(mut cache) = CACHE.lock() else {
        return;
    };
    // One session per key: an older one is closed.
    let old = cache
        .iter()
        .position(|e| e.key == key)
        .map(|i| cache.swap_remove(i));
    cache.push(Entry {
        key,
        kept,
        since: Instant::now(),
        idle_limit: policy.idle_limit,
    });
    drop(cache);
    if let Some(old) = old {
        close(old.kept);
    }
    REAPER.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("scache".into())
            .spawn(reap);
    });
}

/// Closes idle sessions past their time limit, each second.
fn reap() {
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let expired: Vec<Entry> = match CACHE.lock() {
            Ok(mut cache) => {
                let (old, keep): (Vec<Entry>, Vec<Entry>) = cache
                    .drain(..)
                    .partition(|e| e.since.elapsed() > e.idle_limit);
                *cache = keep;
                old
            }
            Err(_) => return,
        };
        for e in expired {
            close(e.kept);
        }
    }
}

/// QUIT without waiting for the answer.
fn close(mut kept: Kept) {
    kept.conn.set_timeout(Duration::from_secs(2));
    let _ = kept.conn.send(b"QUIT\r\n");
}
