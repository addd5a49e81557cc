//! The address verification cache (Postfix's verify.c with dict_cache):
//! address → status, when it was last probed, when its status was last
//! updated, and the delivery agent's text. The rules are Postfix's:
//!
//! - A query for an address with no entry, or whose entry expired
//!   (address_verify_positive_expire_time for a deliverable address,
//!   address_verify_negative_expire_time for the rest) and has no probe
//!   in flight, answers "unknown: Address verification in progress".
//! - A probe is sent when the status needs a refresh
//!   (address_verify_positive_refresh_time / _negative_refresh_time
//!   since the last update) and no probe went out in the last
//!   [`PROBE_TTL`] seconds; the entry then records the probe time, so
//!   the next queries wait for it instead of sending more. With
//!   address_verify_negative_cache = no, an address that was never
//!   deliverable is not stored (each query probes again), and its expired
//!   entry is removed.
//! - A probe result replaces the entry, except that a failure does not
//!   overwrite a deliverable status before it expires (one lost probe
//!   must not make a good address bad).
//! - Every address_verify_cache_cleanup_interval the expired entries
//!   without a probe in flight are dropped.
//!
//! Entries are kept in memory and, when address_verify_map names a table,
//! in that indexed table (`btree:`, `hash:` or `lmdb:` *path*: the file
//! *path*`.db`, readable with `postmap -s`), as `status:probed:updated:text`
//! with Postfix's status numbers, rewritten whole at most once a second
//! after a change and when verify exits. Keys are the lowercased address
//! with `:` replaced by `_`, as Postfix does.

use std::collections::HashMap;
use std::fs::File;

use proto::verify::Status;

/// Seconds after which a probe without an answer counts as lost
/// (Postfix's PROBE_TTL).
pub(crate) const PROBE_TTL: u64 = 1000;

/// What the query answers while a probe is out.
pub(crate) const IN_PROGRESS: &str = "Address verification in progress";

/// Most bytes of an address used as a key.
pub(crate) const MAX_ADDRESS: usize = 1000;

/// Most bytes of a reason kept.
const MAX_REASON: usize = 1000;

/// The cache's time limits and policy, in seconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    /// address_verify_positive_expire_time.
    pub(crate) pos_expire: u64,
    /// address_verify_positive_refresh_time.
    pub(crate) pos_refresh: u64,
    /// address_verify_negative_expire_time.
    pub(crate) neg_expire: u64,
    /// address_verify_negative_refresh_time.
    pub(crate) neg_refresh: u64,
    /// address_verify_negative_cache.
    pub(crate) neg_cache: bool,
}

/// One cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The status.
    pub(crate) status: Status,
    /// When the last probe went out (0: none in flight).
    pub(crate) probed: u64,
    /// When the status was last set by a probe (0: never).
    pub(crate) updated: u64,
    /// The text.
    pub(crate) text: String,
}

impl Entry {
    /// The table value: `status:probed:updated:text`.
    pub(crate) fn format(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.status.code(),
            self.probed,
            self.updated,
            self.text
        )
    }

    /// Parses a table value; None when malformed (treated as absent).
    pub(crate) fn parse(value: &str) -> Option<Entry> {
        let mut it = value.splitn(4, ':');
        let status = Status::from_code(it.next()?.parse().ok()?)?;
        let probed = it.next()?.parse().ok()?;
        let updated = it.next()?.parse().ok()?;
        let text = it.next()?.to_string();
        Some(Entry {
            status,
            probed,
            updated,
            text,
        })
    }

    fn expired(&self, p: &Policy, now: u64) -> bool {
        let limit = if self.status == Status::Deliverable {
            p.pos_expire
        } else {
            p.neg_expire
        };
        self.updated.saturating_add(limit) < now
    }

    fn refresh_needed(&self, p: &Policy, now: u64) -> bool {
        let limit = if self.status == Status::Deliverable {
            p.pos_refresh
        } else {
            p.neg_refresh
        };
        self.updated.saturating_add(limit) < now
    }
}

/// The answer to a query, and whether to send a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The status to report.
    pub(crate) status: Status,
    /// Its text.
    pub(crate) text: String,
    /// Send a probe for the address now.
    pub(crate) probe: bool,
}

/// Where the entries are kept on disk.
#[derive(Debug)]
pub(crate) struct Store {
    /// The table's name for messages (`btree:/var/lib/postfix/verify_cache`).
    pub(crate) name: String,
    /// The index file (`verify_cache.db`), opened for reading and writing
    /// before any chroot and rewritten in place (never its directory:
    /// see `tables::hash_at`).
    pub(crate) file: File,
    /// Its path, for messages.
    pub(crate) path: std::path::PathBuf,
}

/// The cache.
#[derive(Debug)]
pub(crate) struct Cache {
    entries: HashMap<String, Entry>,
    policy: Policy,
    store: Option<Store>,
    dirty: bool,
}

/// The key for an address.
pub(crate) fn key(address: &str) -> String {
    let cut = address.get(..MAX_ADDRESS).unwrap_or(address);
    cut.to_lowercase().replace(':', "_")
}

impl Cache {
    /// A cache with these entries (read from the table) and this store.
    pub(crate) fn new(policy: Policy, store: Option<Store>, rows: Vec<(String, String)>) -> Cache {
        let entries = rows
            .into_iter()
            .filter_map(|(k, v)| Entry::parse(&v).map(|e| (k, e)))
            .collect();
        Cache {
            entries,
            policy,
            store,
            dirty: false,
        }
    }

    /// Number of entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Answers a query for `address` at time `now` (seconds since the
    /// epoch), updating the entry when a probe is to go out.
    pub(crate) fn query(&mut self, address: &str, now: u64) -> Answer {
        let k = key(address);
        let p = self.policy;
        let found = self.entries.get(&k).cloned();
        let mut cur = match &found {
            Some(e) if !(now.saturating_sub(e.probed) > PROBE_TTL && e.expired(&p, now)) => {
                e.clone()
            }
            _ => {
                if found.is_some() && !p.neg_cache {
                    self.entries.remove(&k);
                    self.dirty = true;
                }
                Entry {
                    status: Status::Unknown,
                    probed: 0,
                    updated: 0,
                    text: IN_PROGRESS.to_string(),
                }
            }
        };
        let answer = Answer {
            status: cur.status,
            text: cur.text.clone(),
            probe: false,
        };
        if now.saturating_sub(cur.probed) > PROBE_TTL && cur.refresh_needed(&p, now) {
            if cur.updated != 0 || p.neg_cache {
                cur.probed = now;
                self.entries.insert(k, cur);
                self.dirty = true;
            }
            return Answer {
                probe: true,
                ..answer
            };
        }
        answer
    }

    /// A probe that [`Cache::query`] asked for could not be sent: the
    /// next query asks again instead of waiting [`PROBE_TTL`] for it.
    pub(crate) fn probe_not_sent(&mut self, address: &str) {
        let k = key(address);
        match self.entries.get_mut(&k) {
            Some(e) if e.updated == 0 => {
                self.entries.remove(&k);
            }
            Some(e) => e.probed = 0,
            None => return,
        }
        self.dirty = true;
    }

    /// Records a probe's result.
    pub(crate) fn update(&mut self, address: &str, status: Status, reason: &str, now: u64) {
        let k = key(address);
        let keep_good = status != Status::Deliverable
            && self
                .entries
                .get(&k)
                .is_some_and(|e| e.status == Status::Deliverable);
        if keep_good {
            return;
        }
        let text = maillog::printable(reason, MAX_REASON).replace(['\n', '\r'], " ");
        self.entries.insert(
            k,
            Entry {
                status,
                probed: 0,
                updated: now,
                text,
            },
        );
        self.dirty = true;
    }

    /// Drops the expired entries without a probe in flight; returns
    /// (retained, dropped).
    pub(crate) fn cleanup(&mut self, now: u64) -> (usize, usize) {
        let p = self.policy;
        let before = self.entries.len();
        self.entries
            .retain(|_, e| now.saturating_sub(e.probed) < PROBE_TTL || !e.expired(&p, now));
        let dropped = before - self.entries.len();
        if dropped > 0 {
            self.dirty = true;
        }
        (self.entries.len(), dropped)
    }

    /// The table's name, for log lines (`internal:verify` in memory).
    pub(crate) fn name(&self) -> &str {
        self.store.as_ref().map_or("internal:verify", |s| &s.name)
    }

    /// Writes the table when something changed since the last save;
    /// true when it wrote.
    pub(crate) fn save(&mut self) -> bool {
        if !self.dirty {
            return false;
        }
        let Some(store) = &self.store else {
            self.dirty = false;
            return false;
        };
        let mut rows: Vec<(String, String)> = self
            .entries
            .iter()
            .map(|(k, e)| (k.clone(), e.format()))
            .collect();
        rows.sort();
        match tables::hash_at::rewrite_index(&store.file, &store.path, &rows) {
            Ok(()) => self.dirty = false,
            Err(e) => maillog::warning!("{}: cannot update: {e}", store.name),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86400;

    fn policy(neg_cache: bool) -> Policy {
        Policy {
            pos_expire: 31 * DAY,
            pos_refresh: 7 * DAY,
            neg_expire: 3 * DAY,
            neg_refresh: 3 * 3600,
            neg_cache,
        }
    }

    #[test]
    fn first_query_probes_once_and_waits_for_the_result() {
        let mut c = Cache::new(policy(true), None, Vec::new());
        let now = 1_700_000_000;
        let a = c.query("Bob@Example.org", now);
        assert_eq!(
            (a.status, a.text.as_str(), a.probe),
            (Status::Unknown, IN_PROGRESS, true)
        );
        let a = c.query("bob@example.org", now + 5);
        assert_eq!((a.status, a.probe), (Status::Unknown, false));
        c.update(
            "bob@example.org",
            Status::Undeliverable,
            "unknown user: \"bob\"",
            now + 6,
        );
        let a = c.query("bob@example.org", now + 7);
        assert_eq!((a.status, a.probe), (Status::Undeliverable, false));
        assert_eq!(a.text, "unknown user: \"bob\"");
        // After the negative refresh time: the old answer and a new probe.
        let a = c.query("bob@example.org", now + 4 * 3600);
        assert_eq!((a.status, a.probe), (Status::Undeliverable, true));
        // A probe that could not be sent is asked for again at once.
        c.probe_not_sent("bob@example.org");
        assert!(c.query("bob@example.org", now + 4 * 3600 + 1).probe);
        // A lost probe is sent again after PROBE_TTL, and not before.
        assert!(!c.query("bob@example.org", now + 4 * 3600 + 10).probe);
        assert!(
            c.query("bob@example.org", now + 4 * 3600 + PROBE_TTL + 2)
                .probe
        );
    }

    #[test]
    fn a_failure_does_not_overwrite_a_good_status() {
        let mut c = Cache::new(policy(true), None, Vec::new());
        c.update("a@b", Status::Deliverable, "delivers to mailbox", 100);
        c.update("a@b", Status::Deferred, "connection refused", 200);
        let a = c.query("a@b", 300);
        assert_eq!((a.status, a.probe), (Status::Deliverable, false));
        // Expired: unknown again, and probed.
        let a = c.query("a@b", 100 + 31 * DAY + 1);
        assert_eq!((a.status, a.probe), (Status::Unknown, true));
    }

    #[test]
    fn without_negative_caching_unknown_addresses_are_not_stored() {
        let mut c = Cache::new(policy(false), None, Vec::new());
        assert!(c.query("x@y", 1_700_000_000).probe);
        assert!(c.query("x@y", 1_700_000_001).probe);
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn entries_round_trip_and_cleanup_drops_expired_ones() {
        let e = Entry {
            status: Status::Undeliverable,
            probed: 0,
            updated: 5,
            text: "host said: 550 5.1.1 no: such user".into(),
        };
        assert_eq!(Entry::parse(&e.format()), Some(e.clone()));
        assert_eq!(Entry::parse("9:0:0:x"), None);
        assert_eq!(Entry::parse("garbage"), None);
        let rows = vec![
            ("old@x".to_string(), e.format()),
            ("bad@x".to_string(), "nonsense".to_string()),
        ];
        let mut c = Cache::new(policy(true), None, rows);
        assert_eq!(c.len(), 1);
        c.update("new@x", Status::Deliverable, "ok", 4 * DAY);
        assert_eq!(c.cleanup(4 * DAY), (1, 1));
        assert_eq!(key("A:B@[IPv6:1::2]"), "a_b@[ipv6_1__2]");
    }

    #[test]
    fn the_table_is_written_and_read_back() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("verify_cache.db");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .unwrap();
        let store = Store {
            name: "btree:x".into(),
            file,
            path,
        };
        let mut c = Cache::new(policy(true), Some(store), Vec::new());
        c.update("a@b", Status::Deliverable, "delivers to mailbox", 100);
        assert!(c.save());
        assert!(!c.save());
        let rows = tables::hash::read_all(&d.path().join("verify_cache.db")).unwrap();
        assert_eq!(
            rows,
            vec![("a@b".to_string(), "0:0:100:delivers to mailbox".to_string())]
        );
    }
}
