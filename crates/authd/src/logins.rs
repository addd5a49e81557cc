//! Finished logins waiting for the master's REQUEST (Dovecot's
//! auth-master hand-off): a successful AUTH without `nologin` is kept,
//! keyed by its connection's cookie and request id, with the login
//! process's pid, until the privileged process asks for it once, or for
//! [`KEEP`] at most. A login process can thus hand over only a user the
//! auth service did authenticate for it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a finished login waits for its REQUEST.
pub(crate) const KEEP: Duration = Duration::from_secs(60);
/// Most finished logins kept (the oldest go first when full).
pub(crate) const MAX_KEPT: usize = 4096;

#[derive(Debug)]
struct Login {
    pid: u32,
    user: String,
    at: Instant,
}

/// The logins waiting for a REQUEST.
#[derive(Debug, Default)]
pub(crate) struct Logins {
    kept: HashMap<(String, u32), Login>,
}

impl Logins {
    /// Remembers that the connection with `cookie`, whose peer is `pid`,
    /// authenticated `user` with request `id`.
    pub(crate) fn insert(&mut self, cookie: &str, id: u32, pid: u32, user: &str, now: Instant) {
        self.kept
            .retain(|_, l| now.saturating_duration_since(l.at) < KEEP);
        if self.kept.len() >= MAX_KEPT
            && let Some(oldest) = self
                .kept
                .iter()
                .min_by_key(|(_, l)| l.at)
                .map(|(k, _)| k.clone())
        {
            self.kept.remove(&oldest);
        }
        self.kept.insert(
            (cookie.to_string(), id),
            Login {
                pid,
                user: user.to_string(),
                at: now,
            },
        );
    }

    /// How long until the first kept login expires (expired ones are
    /// dropped); None when none is kept. While one is, the process must
    /// not exit: the REQUEST for it would reach a new auth process, which
    /// does not know it, and the login would be refused.
    pub(crate) fn waiting(&mut self, now: Instant) -> Option<Duration> {
        self.kept
            .retain(|_, l| now.saturating_duration_since(l.at) < KEEP);
        self.kept
            .values()
            .map(|l| KEEP.saturating_sub(now.saturating_duration_since(l.at)))
            .min()
    }

    /// The user of a kept login, which is then forgotten; None when there
    /// is no such login, it expired, or the pid does not match.
    pub(crate) fn take(&mut self, cookie: &str, id: u32, pid: u32, now: Instant) -> Option<String> {
        let login = self.kept.remove(&(cookie.to_string(), id))?;
        (login.pid == pid && now.saturating_duration_since(login.at) < KEEP).then_some(login.user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_with_matching_pid_and_in_time() {
        let t = Instant::now();
        let mut l = Logins::default();
        l.insert("c1", 1, 100, "alice", t);
        l.insert("c1", 2, 100, "bob", t);
        l.insert("c2", 1, 200, "carol", t);
        assert_eq!(l.take("c1", 1, 100, t).as_deref(), Some("alice"));
        assert_eq!(l.take("c1", 1, 100, t), None, "asked twice");
        assert_eq!(l.take("c1", 2, 999, t), None, "another pid");
        assert_eq!(l.take("c1", 2, 100, t), None, "gone after a wrong ask");
        assert_eq!(l.take("c9", 1, 200, t), None, "another cookie");
        assert_eq!(l.take("c2", 1, 200, t + KEEP), None, "expired");
        for i in 0..(MAX_KEPT as u32 + 10) {
            l.insert("c", i, 1, "u", t + Duration::from_millis(u64::from(i)));
        }
        assert!(l.kept.len() <= MAX_KEPT);
        assert_eq!(
            l.take("c", 0, 1, t + Duration::from_secs(5)),
            None,
            "oldest dropped"
        );
        assert!(
            l.take("c", MAX_KEPT as u32 + 9, 1, t + Duration::from_secs(5))
                .is_some()
        );
    }

    /// A kept login holds the process until it is asked for or expires.
    #[test]
    fn waiting_until_asked_for_or_expired() {
        let t = Instant::now();
        let mut l = Logins::default();
        assert_eq!(l.waiting(t), None);
        l.insert("c1", 1, 100, "alice", t);
        l.insert("c1", 2, 100, "bob", t + Duration::from_secs(10));
        assert_eq!(
            l.waiting(t + Duration::from_secs(1)),
            Some(KEEP - Duration::from_secs(1))
        );
        assert!(l.take("c1", 1, 100, t).is_some());
        assert_eq!(l.waiting(t + Duration::from_secs(10)), Some(KEEP));
        assert_eq!(
            l.waiting(t + Duration::from_secs(10) + KEEP),
            None,
            "expired"
        );
    }
}
