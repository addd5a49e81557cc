//! The parameters qmgr reads, once at startup, and the per-transport
//! limits looked up (and cached) as transports appear.

use std::collections::HashMap;
use std::time::Duration;

use config::Config;

/// Most deliveries in flight at once, whatever the limits say (each is a
/// worker thread blocked on an agent).
pub(crate) const MAX_IN_FLIGHT: usize = 256;

/// Queue manager settings.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    /// qmgr_message_active_limit (capped by the descriptors we may open).
    pub(crate) active_limit: usize,
    /// minimal_backoff_time.
    pub(crate) min_backoff: Duration,
    /// maximal_backoff_time.
    pub(crate) max_backoff: Duration,
    /// maximal_queue_lifetime.
    pub(crate) max_lifetime: Duration,
    /// bounce_queue_lifetime (for the null sender).
    pub(crate) bounce_lifetime: Duration,
    /// delay_warning_time (zero: off).
    pub(crate) delay_warning: Duration,
    /// queue_run_delay.
    pub(crate) queue_run_delay: Duration,
    /// ipc_timeout: how long a delivery agent may take to answer.
    pub(crate) agent_timeout: Duration,
    /// qmgr_ipc_timeout: how long trivial-rewrite and bounce may take.
    pub(crate) ipc_timeout: Duration,
    /// defer_transports.
    pub(crate) defer_transports: Vec<String>,
    /// soft_bounce: permanent failures are deferred instead.
    pub(crate) soft_bounce: bool,
    /// default_process_limit: most deliveries in flight per transport.
    pub(crate) transport_limit: usize,
    concurrency: HashMap<String, usize>,
    recipients: HashMap<String, usize>,
    default_concurrency: usize,
    default_recipients: usize,
}

fn count(v: i64) -> usize {
    usize::try_from(v).unwrap_or(0)
}

impl Params {
    /// Reads main.cf (with master.cf -o overrides).
    pub(crate) fn load(config: &Config, fd_limit: usize) -> Params {
        let words = |name: &str| {
            config
                .str(name)
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let mut p = Params {
            active_limit: count(config.int("qmgr_message_active_limit"))
                .clamp(1, fd_limit.saturating_sub(2 * MAX_IN_FLIGHT + 64).max(16)),
            min_backoff: config.time("minimal_backoff_time"),
            max_backoff: config.time("maximal_backoff_time"),
            max_lifetime: config.time("maximal_queue_lifetime"),
            bounce_lifetime: config.time("bounce_queue_lifetime"),
            delay_warning: config.time("delay_warning_time"),
            queue_run_delay: config.time("queue_run_delay").max(Duration::from_secs(1)),
            agent_timeout: config.time("ipc_timeout").max(Duration::from_secs(1)),
            ipc_timeout: config.time("qmgr_ipc_timeout").max(Duration::from_secs(1)),
            defer_transports: words("defer_transports"),
            soft_bounce: config.bool("soft_bounce"),
            transport_limit: count(config.int("default_process_limit")).clamp(1, MAX_IN_FLIGHT),
            concurrency: HashMap::new(),
            recipients: HashMap::new(),
            default_concurrency: count(config.int("default_destination_concurrency_limit")),
            default_recipients: count(config.int("default_destination_recipient_limit")),
        };
        if p.max_backoff < p.min_backoff {
            maillog::warning!(
                "maximal_backoff_time is smaller than minimal_backoff_time: using {}s",
                p.min_backoff.as_secs()
            );
            p.max_backoff = p.min_backoff;
        }
        p
    }

    /// `<transport>_destination_concurrency_limit`, else the default;
    /// 0 means no limit.
    pub(crate) fn concurrency(&mut self, config: &Config, transport: &str) -> usize {
        let d = self.default_concurrency;
        let v = *self
            .concurrency
            .entry(transport.to_string())
            .or_insert_with(|| {
                per_transport(config, transport, "_destination_concurrency_limit", d)
            });
        if v == 0 { usize::MAX } else { v }
    }

    /// `<transport>_destination_recipient_limit`, else the default; 0 means
    /// no limit.
    pub(crate) fn recipient_limit(&mut self, config: &Config, transport: &str) -> usize {
        let d = self.default_recipients;
        let v = *self
            .recipients
            .entry(transport.to_string())
            .or_insert_with(|| per_transport(config, transport, "_destination_recipient_limit", d));
        if v == 0 { usize::MAX } else { v }
    }

    /// The queue lifetime for a sender.
    pub(crate) fn lifetime(&self, sender: &str) -> Duration {
        if sender.is_empty() {
            self.bounce_lifetime
        } else {
            self.max_lifetime
        }
    }

    /// Postfix's back-off: the message's age, between the minimal and
    /// maximal back-off times (so the interval doubles as the message ages).
    pub(crate) fn backoff(&self, age: Duration) -> Duration {
        age.clamp(self.min_backoff, self.max_backoff)
    }
}

fn per_transport(config: &Config, transport: &str, suffix: &str, default: usize) -> usize {
    let name = format!("{transport}{suffix}");
    match config.get(&name) {
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) => n,
            Err(_) => {
                maillog::warning!("{name}: bad value {v:?}: using {default}");
                default
            }
        },
        None => default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(text: &str) -> (Params, Config) {
        let dir = tempfile::tempdir().unwrap();
        let c = Config::from_text(dir.path(), text).unwrap();
        (Params::load(&c, 4096), c)
    }

    #[test]
    fn defaults_and_per_transport_limits() {
        let (mut p, c) = params(
            "relay_destination_concurrency_limit = 3\nsmtp_destination_recipient_limit = 0\n",
        );
        assert_eq!(p.min_backoff, Duration::from_secs(300));
        assert_eq!(p.max_backoff, Duration::from_secs(4000));
        assert_eq!(p.max_lifetime, Duration::from_secs(5 * 86400));
        assert_eq!(p.queue_run_delay, Duration::from_secs(300));
        assert_eq!(p.delay_warning, Duration::ZERO);
        assert_eq!(p.concurrency(&c, "local"), 2);
        assert_eq!(p.recipient_limit(&c, "local"), 1);
        assert_eq!(p.concurrency(&c, "virtual"), 20);
        assert_eq!(p.recipient_limit(&c, "virtual"), 50);
        assert_eq!(p.concurrency(&c, "relay"), 3);
        assert_eq!(p.concurrency(&c, "mypipe"), 20);
        assert_eq!(p.recipient_limit(&c, "smtp"), usize::MAX);
        assert_eq!(p.active_limit, 4096 - 2 * MAX_IN_FLIGHT - 64);
    }

    #[test]
    fn backoff_doubles_with_age_within_bounds() {
        let (p, _) = params("minimal_backoff_time = 10s\nmaximal_backoff_time = 100s\n");
        assert_eq!(p.backoff(Duration::from_secs(1)), Duration::from_secs(10));
        assert_eq!(p.backoff(Duration::from_secs(40)), Duration::from_secs(40));
        assert_eq!(
            p.backoff(Duration::from_secs(4000)),
            Duration::from_secs(100)
        );
        let (q, _) = params("minimal_backoff_time = 10s\nmaximal_backoff_time = 5s\n");
        assert_eq!(q.max_backoff, Duration::from_secs(10));
        assert_eq!(q.lifetime(""), q.bounce_lifetime);
    }
}
