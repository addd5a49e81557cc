//! A per-client limiter for failed authentication attempts.
//!
//! [`FailureLimiter`] keeps, per client key (usually the IP address), the
//! number of consecutive failures and the times of recent attempts. After
//! each failure the caller waits [`FailureLimiter::record_failure`]'s delay
//! before replying: the first failure costs `base_delay`, each further one
//! doubles it up to `max_delay` (1 s, 2 s, 4 s, 8 s, 15 s with the defaults).
//! Before each attempt the caller asks [`FailureLimiter::check`]; a client
//! over `max_attempts` attempts in `window` is refused until the oldest
//! attempt ages out. Time is passed in, so tests need no sleeping. Memory is
//! bounded by `max_clients`: idle entries are pruned, and at the bound the
//! entry with the oldest activity is evicted.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Limiter settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterConfig {
    /// Delay after the first failure.
    pub base_delay: Duration,
    /// Largest delay after repeated failures.
    pub max_delay: Duration,
    /// Most failed attempts per client in one window.
    pub max_attempts: usize,
    /// The rate-limit window.
    pub window: Duration,
    /// Most clients tracked at once.
    pub max_clients: usize,
}

impl Default for LimiterConfig {
    fn default() -> Self {
        LimiterConfig {
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15),
            max_attempts: 10,
            window: Duration::from_secs(60),
            max_clients: 10_000,
        }
    }
}

/// The answer to [`FailureLimiter::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead and check the password.
    Allow,
    /// Too many failures: refuse without checking; the client may retry after this long.
    Deny {
        /// Time until the oldest counted failure leaves the window.
        retry_after: Duration,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    consecutive: u32,
    failures: VecDeque<Instant>,
    last: Instant,
}

/// Failure delays and rate limits per client.
#[derive(Debug, Clone)]
pub struct FailureLimiter<K: Eq + Hash + Clone> {
    config: LimiterConfig,
    entries: HashMap<K, Entry>,
}

impl<K: Eq + Hash + Clone> FailureLimiter<K> {
    /// A limiter with these settings.
    pub fn new(config: LimiterConfig) -> Self {
        FailureLimiter {
            config,
            entries: HashMap::new(),
        }
    }

    /// May `client` try a password now?
    pub fn check(&mut self, client: &K, now: Instant) -> Decision {
        let window = self.config.window;
        let max = self.config.max_attempts;
        let Some(e) = self.entries.get_mut(client) else {
            return Decision::Allow;
        };
        while e
            .failures
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            e.failures.pop_front();
        }
        if e.failures.len() >= max {
            let oldest = e.failures.front().copied().unwrap_or(now);
            let retry_after = window.saturating_sub(now.saturating_duration_since(oldest));
            return Decision::Deny { retry_after };
        }
        Decision::Allow
    }

    /// Records a failed attempt; returns how long to wait before replying.
    pub fn record_failure(&mut self, client: &K, now: Instant) -> Duration {
        if !self.entries.contains_key(client) {
            self.make_room(now);
        }
        let cap = self.config.max_attempts.max(1);
        let e = self.entries.entry(client.clone()).or_insert(Entry {
            consecutive: 0,
            failures: VecDeque::new(),
            last: now,
        });
        e.consecutive = e.consecutive.saturating_add(1);
        e.last = now;
        if e.failures.len() >= cap {
            e.failures.pop_front();
        }
        e.failures.push_back(now);
        let shift = e.consecutive.saturating_sub(1).min(30);
        let delay = self
            .config
            .base_delay
            .checked_mul(1u32 << shift)
            .unwrap_or(self.config.max_delay);
        delay.min(self.config.max_delay)
    }

    /// Records a successful login: the delay resets (the rate window does not).
    pub fn record_success(&mut self, client: &K, now: Instant) {
        if let Some(e) = self.entries.get_mut(client) {
            e.consecutive = 0;
            e.last = now;
        }
    }

    /// Number of clients tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no client is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// make_room - drops idle entries, then the least recently active one if still full.
    fn make_room(&mut self, now: Instant) {
        if self.entries.len() < self.config.max_clients {
            return;
        }
        let idle = self.config.window.max(self.config.max_delay);
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.last) < idle);
        while self.entries.len() >= self.config.max_clients.max(1) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    self.entries.remove(&k);
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn delay_doubles_to_cap_and_resets() {
        let mut l = FailureLimiter::new(LimiterConfig {
            max_attempts: 100,
            ..LimiterConfig::default()
        });
        let t = Instant::now();
        let c = ip("192.0.2.1");
        let delays: Vec<u64> = (0..7)
            .map(|i| l.record_failure(&c, t + Duration::from_secs(i)).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 15, 15, 15]);
        // Another client is not affected.
        assert_eq!(l.record_failure(&ip("192.0.2.2"), t).as_secs(), 1);
        l.record_success(&c, t);
        assert_eq!(l.record_failure(&c, t).as_secs(), 1);
    }

    #[test]
    fn rate_limit_per_window() {
        let cfg = LimiterConfig {
            max_attempts: 3,
            ..LimiterConfig::default()
        };
        let mut l = FailureLimiter::new(cfg);
        let t0 = Instant::now();
        let c = ip("2001:db8::1");
        for i in 0..3 {
            let t = t0 + Duration::from_secs(i * 10);
            assert_eq!(l.check(&c, t), Decision::Allow);
            l.record_failure(&c, t);
        }
        assert_eq!(
            l.check(&c, t0 + Duration::from_secs(30)),
            Decision::Deny {
                retry_after: Duration::from_secs(30)
            }
        );
        assert_eq!(l.check(&ip("2001:db8::2"), t0), Decision::Allow);
        // The first failure ages out after 60 s.
        assert_eq!(l.check(&c, t0 + Duration::from_secs(60)), Decision::Allow);
    }

    #[test]
    fn bounded_memory() {
        let mut l = FailureLimiter::new(LimiterConfig {
            max_clients: 5,
            ..LimiterConfig::default()
        });
        let t = Instant::now();
        for i in 0..50u32 {
            l.record_failure(&i, t + Duration::from_millis(u64::from(i)));
            assert!(l.len() <= 5);
        }
        // The most recent clients are the ones kept.
        assert_eq!(
            l.record_failure(&49, t + Duration::from_secs(1)).as_secs(),
            2
        );
    }
}
