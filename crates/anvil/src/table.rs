//! The counts: connection count and rate, message rate and AUTH rate per
//! (service, client), with the maxima for the status report. Time is passed in, so tests drive it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Most (service, client) pairs kept.
pub(crate) const MAX_ENTRIES: usize = 100_000;

/// Longest key kept (`service:client`), in bytes.
pub(crate) const MAX_KEY: usize = 300;

/// A pair whose counts did not change for this long has its connection
/// count cleared: a server that died without saying Disconnect must not
/// lock a client out for ever.
pub(crate) const STALE: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy)]
struct Entry {
    count: u32,
    rate: u32,
    /// MAIL FROM commands in this window.
    mail: u32,
    /// AUTH commands in this window.
    auth: u32,
    window_start: Instant,
    last_event: Instant,
}

/// A maximum and when and for whom it was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Max {
    pub(crate) value: u32,
    pub(crate) key: String,
    pub(crate) at: jiff::Timestamp,
}

/// A counted event other than a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// MAIL FROM.
    Message,
    /// AUTH.
    Auth,
}

/// The table of pairs.
#[derive(Debug)]
pub(crate) struct Table {
    entries: HashMap<String, Entry>,
    unit: Duration,
    limit: usize,
    pub(crate) max_rate: Option<Max>,
    pub(crate) max_count: Option<Max>,
    pub(crate) max_mail: Option<Max>,
    pub(crate) max_auth: Option<Max>,
    pub(crate) max_size: Option<(usize, jiff::Timestamp)>,
    pub(crate) full_warned: bool,
}

impl Entry {
    fn new(now: Instant) -> Entry {
        Entry {
            count: 0,
            rate: 0,
            mail: 0,
            auth: 0,
            window_start: now,
            last_event: now,
        }
    }

    /// Starts a new window when the old one is over: every rate is zero.
    fn roll(&mut self, unit: Duration, now: Instant) {
        if now.saturating_duration_since(self.window_start) >= unit {
            self.window_start = now;
            self.rate = 0;
            self.mail = 0;
            self.auth = 0;
        }
    }
}

/// `service:client`, cut to [`MAX_KEY`] bytes.
pub(crate) fn key(service: &str, client: &str) -> String {
    let mut k = format!("{service}:{client}");
    if k.len() > MAX_KEY {
        let mut cut = MAX_KEY;
        while !k.is_char_boundary(cut) {
            cut -= 1;
        }
        k.truncate(cut);
    }
    k
}

impl Table {
    pub(crate) fn new(unit: Duration) -> Table {
        Table::with_limit(unit, MAX_ENTRIES)
    }

    pub(crate) fn with_limit(unit: Duration, limit: usize) -> Table {
        Table {
            entries: HashMap::new(),
            unit,
            limit,
            max_rate: None,
            max_count: None,
            max_mail: None,
            max_auth: None,
            max_size: None,
            full_warned: false,
        }
    }

    /// Pairs held now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// A new connection: returns (count, rate).
    pub(crate) fn connect(&mut self, key: &str, now: Instant) -> (u32, u32) {
        if !self.entries.contains_key(key) && self.entries.len() >= self.limit {
            self.sweep(now);
            if self.entries.len() >= self.limit && !self.evict_idle() {
                if !self.full_warned {
                    self.full_warned = true;
                    maillog::warning!("anvil table full ({} entries)", self.entries.len());
                }
                return (1, 1);
            }
        }
        let unit = self.unit;
        let e = self
            .entries
            .entry(key.to_string())
            .or_insert(Entry::new(now));
        e.last_event = now;
        e.roll(unit, now);
        e.count = e.count.saturating_add(1);
        e.rate = e.rate.saturating_add(1);
        let (count, rate) = (e.count, e.rate);
        let stamp = jiff::Timestamp::now();
        if self.max_rate.as_ref().is_none_or(|m| rate > m.value) {
            self.max_rate = Some(Max {
                value: rate,
                key: key.to_string(),
                at: stamp,
            });
        }
        if self.max_count.as_ref().is_none_or(|m| count > m.value) {
            self.max_count = Some(Max {
                value: count,
                key: key.to_string(),
                at: stamp,
            });
        }
        let size = self.entries.len();
        if self.max_size.is_none_or(|(m, _)| size > m) {
            self.max_size = Some((size, stamp));
        }
        (count, rate)
    }

    /// A message or an AUTH from the pair: returns (count, that event's
    /// rate). A pair not yet known (no Connect was sent) starts with no
    /// connections; a full table answers as for a new pair.
    pub(crate) fn event(&mut self, key: &str, what: Event, now: Instant) -> (u32, u32) {
        if !self.entries.contains_key(key) && self.entries.len() >= self.limit {
            self.sweep(now);
            if self.entries.len() >= self.limit && !self.evict_idle() {
                return (0, 1);
            }
        }
        let unit = self.unit;
        let e = self
            .entries
            .entry(key.to_string())
            .or_insert(Entry::new(now));
        e.last_event = now;
        e.roll(unit, now);
        let (n, max) = match what {
            Event::Message => (&mut e.mail, &mut self.max_mail),
            Event::Auth => (&mut e.auth, &mut self.max_auth),
        };
        *n = n.saturating_add(1);
        let out = (e.count, *n);
        if max.as_ref().is_none_or(|m| out.1 > m.value) {
            *max = Some(Max {
                value: out.1,
                key: key.to_string(),
                at: jiff::Timestamp::now(),
            });
        }
        out
    }

    /// A connection ended.
    pub(crate) fn disconnect(&mut self, key: &str, now: Instant) -> (u32, u32) {
        let unit = self.unit;
        let Some(e) = self.entries.get_mut(key) else {
            return (0, 0);
        };
        e.count = e.count.saturating_sub(1);
        e.last_event = now;
        let expired = now.saturating_duration_since(e.window_start) >= unit;
        if expired {
            e.roll(unit, now);
        }
        let out = (e.count, e.rate);
        if e.count == 0 && expired {
            self.entries.remove(key);
        }
        out
    }

    /// The counts, unchanged.
    pub(crate) fn lookup(&self, key: &str, now: Instant) -> (u32, u32) {
        match self.entries.get(key) {
            None => (0, 0),
            Some(e) if now.saturating_duration_since(e.window_start) >= self.unit => (e.count, 0),
            Some(e) => (e.count, e.rate),
        }
    }

    /// Ends expired windows: resets rates, forgets idle pairs.
    pub(crate) fn sweep(&mut self, now: Instant) {
        let unit = self.unit;
        self.entries.retain(|_, e| {
            if e.count > 0 && now.saturating_duration_since(e.last_event) >= STALE {
                e.count = 0;
            }
            if now.saturating_duration_since(e.window_start) >= unit {
                if e.count == 0 {
                    return false;
                }
                e.roll(unit, now);
            }
            true
        });
    }

    /// Drops the idle pair whose window started first; false when every
    /// pair has connections.
    fn evict_idle(&mut self) -> bool {
        let victim = self
            .entries
            .iter()
            .filter(|(_, e)| e.count == 0)
            .min_by_key(|(_, e)| e.window_start)
            .map(|(k, _)| k.clone());
        match victim {
            Some(k) => {
                self.entries.remove(&k);
                true
            }
            None => false,
        }
    }

    /// The report lines (Postfix's anvil_status_dump), then the maxima
    /// start again.
    pub(crate) fn status_lines(&mut self) -> Vec<String> {
        let secs = self.unit.as_secs();
        let mut out = Vec::new();
        if let Some(m) = self.max_rate.take().filter(|m| m.value > 0) {
            out.push(format!(
                "statistics: max connection rate {}/{secs}s for ({}) at {}",
                m.value,
                m.key,
                when(m.at)
            ));
        }
        if let Some(m) = self.max_count.take().filter(|m| m.value > 0) {
            out.push(format!(
                "statistics: max connection count {} for ({}) at {}",
                m.value,
                m.key,
                when(m.at)
            ));
        }
        if let Some(m) = self.max_mail.take().filter(|m| m.value > 0) {
            out.push(format!(
                "statistics: max message rate {}/{secs}s for ({}) at {}",
                m.value,
                m.key,
                when(m.at)
            ));
        }
        if let Some(m) = self.max_auth.take().filter(|m| m.value > 0) {
            out.push(format!(
                "statistics: max auth rate {}/{secs}s for ({}) at {}",
                m.value,
                m.key,
                when(m.at)
            ));
        }
        if let Some((size, at)) = self.max_size.take().filter(|(s, _)| *s > 0) {
            out.push(format!("statistics: max cache size {size} at {}", when(at)));
        }
        self.full_warned = false;
        out
    }
}

/// ctime's `Mon dd hh:mm:ss` in local time, as Postfix prints it.
fn when(t: jiff::Timestamp) -> String {
    let z = t.to_zoned_datetime(maillog::time_zone());
    z.strftime("%b %e %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_rates() {
        let t0 = Instant::now();
        let mut t = Table::new(Duration::from_secs(60));
        let k = key("smtp", "192.0.2.1");
        assert_eq!(t.connect(&k, t0), (1, 1));
        assert_eq!(t.connect(&k, t0 + Duration::from_secs(1)), (2, 2));
        assert_eq!(t.disconnect(&k, t0 + Duration::from_secs(2)), (1, 2));
        assert_eq!(t.connect(&k, t0 + Duration::from_secs(3)), (2, 3));
        assert_eq!(t.lookup(&k, t0 + Duration::from_secs(4)), (2, 3));
        // Another pair is separate.
        assert_eq!(t.connect(&key("submission", "192.0.2.1"), t0), (1, 1));
        assert_eq!(t.connect(&key("smtp", "192.0.2.2"), t0), (1, 1));
        // A new window: the rate starts again, the count stays.
        let later = t0 + Duration::from_secs(61);
        assert_eq!(t.lookup(&k, later), (2, 0));
        assert_eq!(t.connect(&k, later), (3, 1));
        // Disconnects never go below zero; unknown pairs are (0, 0).
        assert_eq!(t.disconnect(&key("smtp", "198.51.100.1"), later), (0, 0));
    }

    #[test]
    fn message_and_auth_rates_per_window() {
        let t0 = Instant::now();
        let mut t = Table::new(Duration::from_secs(60));
        let k = key("smtp", "192.0.2.1");
        // Without a Connect first, the pair starts at no connections.
        assert_eq!(t.event(&k, Event::Message, t0), (0, 1));
        assert_eq!(t.connect(&k, t0), (1, 1));
        assert_eq!(t.event(&k, Event::Message, t0), (1, 2));
        assert_eq!(t.event(&k, Event::Auth, t0), (1, 1));
        assert_eq!(t.event(&k, Event::Auth, t0), (1, 2));
        assert_eq!(
            t.event(&key("smtp", "192.0.2.2"), Event::Message, t0),
            (0, 1)
        );
        // A new window starts every rate again.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(t.event(&k, Event::Message, later), (1, 1));
        assert_eq!(t.event(&k, Event::Auth, later), (1, 1));
        let lines = t.status_lines();
        assert!(
            lines
                .iter()
                .any(|l| l
                    .starts_with("statistics: max message rate 2/60s for (smtp:192.0.2.1) at ")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("statistics: max auth rate 2/60s for (smtp:192.0.2.1) at ")),
            "{lines:?}"
        );
    }

    #[test]
    fn idle_pairs_are_forgotten_when_their_window_ends() {
        let t0 = Instant::now();
        let mut t = Table::new(Duration::from_secs(60));
        for i in 0..100 {
            let k = key("smtp", &format!("10.0.0.{i}"));
            t.connect(&k, t0);
            t.disconnect(&k, t0);
        }
        let busy = key("smtp", "10.0.1.1");
        t.connect(&busy, t0);
        assert_eq!(t.len(), 101);
        t.sweep(t0 + Duration::from_secs(30));
        assert_eq!(t.len(), 101, "windows still open");
        t.sweep(t0 + Duration::from_secs(60));
        assert_eq!(t.len(), 1, "only the pair with a connection stays");
        assert_eq!(t.lookup(&busy, t0 + Duration::from_secs(60)), (1, 0));
        // A count nobody released goes stale after an hour.
        t.sweep(t0 + STALE + Duration::from_secs(61));
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn the_table_is_bounded() {
        let t0 = Instant::now();
        let mut t = Table::with_limit(Duration::from_secs(60), 10);
        for i in 0..10 {
            t.connect(&key("smtp", &format!("10.0.0.{i}")), t0);
        }
        // Full of busy pairs: a newcomer is answered as new, not stored.
        assert_eq!(t.connect(&key("smtp", "10.0.0.99"), t0), (1, 1));
        assert_eq!(t.len(), 10);
        // An idle pair makes room.
        t.disconnect(&key("smtp", "10.0.0.3"), t0);
        assert_eq!(t.connect(&key("smtp", "10.0.0.99"), t0), (1, 1));
        assert_eq!(t.connect(&key("smtp", "10.0.0.99"), t0), (2, 2));
        assert_eq!(t.len(), 10);
        // Keys are bounded too.
        assert_eq!(key("smtp", &"x".repeat(10_000)).len(), MAX_KEY);
    }

    #[test]
    fn status_report_like_postfix() {
        let t0 = Instant::now();
        let mut t = Table::new(Duration::from_secs(60));
        let k = key("smtp", "127.0.0.1");
        t.connect(&k, t0);
        t.connect(&k, t0);
        t.connect(&key("smtp", "127.0.0.2"), t0);
        let lines = t.status_lines();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[0].starts_with("statistics: max connection rate 2/60s for (smtp:127.0.0.1) at "),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("statistics: max connection count 2 for (smtp:127.0.0.1) at ")
        );
        assert!(lines[2].starts_with("statistics: max cache size 2 at "));
        // "at Nov 23 14:55:00": 15 characters.
        let at = lines[0].rsplit(" at ").next().unwrap();
        assert_eq!(at.len(), 15, "{at}");
        assert!(t.status_lines().is_empty(), "maxima start again");
    }
}
