//! The parameters qmgr reads, once at startup, and the per-transport
//! limits looked up (and cached) as transports appear.

use std::collections::HashMap;
use std::time::Duration;

use config::Config;

use crate::window::{Feedback, Policy};

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
    /// default_process_limit: most deliveries in flight per transport
    /// not in master.cf.
    pub(crate) transport_limit: usize,
    /// master.cf maxproc of each unix service (0: no limit).
    maxproc: HashMap<String, usize>,
    concurrency: HashMap<String, usize>,
    policies: HashMap<String, Policy>,
    recipients: HashMap<String, usize>,
    batches: HashMap<String, usize>,
    default_concurrency: usize,
    default_recipients: usize,
    default_batch: usize,
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
            maxproc: load_maxproc(config),
            concurrency: HashMap::new(),
            policies: HashMap::new(),
            recipients: HashMap::new(),
            batches: HashMap::new(),
            default_concurrency: count(config.int("default_destination_concurrency_limit")),
            default_recipients: count(config.int("default_destination_recipient_limit")),
            default_batch: count(config.int("default_delivery_batch_limit")),
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

    /// Most deliveries in flight for a transport: its master.cf maxproc
    /// (0: no limit), else default_process_limit.
    pub(crate) fn process_limit(&self, transport: &str) -> usize {
        match self.maxproc.get(transport) {
            Some(0) => MAX_IN_FLIGHT,
            Some(n) => (*n).min(MAX_IN_FLIGHT),
            None => self.transport_limit,
        }
    }

    /// The transport's window policy: concurrency limit, initial
    /// concurrency, failed cohort limit and feedback (the per-transport
    /// parameter, else the default_ one).
    pub(crate) fn policy(&mut self, config: &Config, transport: &str) -> Policy {
        if let Some(p) = self.policies.get(transport) {
            return *p;
        }
        let limit = self.concurrency(config, transport);
        let initial = per_transport(
            config,
            transport,
            "_initial_destination_concurrency",
            count(config.int("initial_destination_concurrency")).max(1),
        )
        .max(1);
        let cohorts = per_transport(
            config,
            transport,
            "_destination_concurrency_failed_cohort_limit",
            count(config.int("default_destination_concurrency_failed_cohort_limit")),
        );
        let feedback = |which: &str| {
            let default = format!("default_destination_concurrency_{which}_feedback");
            let name = format!("{transport}_destination_concurrency_{which}_feedback");
            let text = config.get(&name).unwrap_or_else(|| config.str(&default));
            Feedback::parse(&text).unwrap_or_else(|e| {
                maillog::warning!("{name}: {e}: using 1");
                Feedback::default()
            })
        };
        let p = Policy {
            limit,
            initial,
            #[allow(clippy::cast_precision_loss)]
            cohort_limit: cohorts as f64,
            positive: feedback("positive"),
            negative: feedback("negative"),
            debug: config.bool("destination_concurrency_feedback_debug"),
        };
        self.policies.insert(transport.to_string(), p);
        p
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

    /// `<transport>_delivery_batch_limit`, else the default: the most
    /// messages (delivery requests) sent to an agent at once for one
    /// destination, between 1 and one more than proto's batch limit.
    pub(crate) fn batch_limit(&mut self, config: &Config, transport: &str) -> usize {
        let d = self.default_batch;
        let v = *self
            .batches
            .entry(transport.to_string())
            .or_insert_with(|| per_transport(config, transport, "_delivery_batch_limit", d));
        v.clamp(1, proto::deliver::BATCH_LIMIT as usize + 1)
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

/// maxproc of each unix service in master.cf (none when it cannot be read:
/// default_process_limit then applies).
fn load_maxproc(config: &Config) -> HashMap<String, usize> {
    let path = config.config_dir().join("master.cf");
    match config::master_cf::load(&path) {
        Ok(services) => services
            .into_iter()
            .filter(|s| s.kind.as_str() == "unix")
            .map(|s| (s.name, usize::try_from(s.maxproc).unwrap_or(usize::MAX)))
            .collect(),
        Err(_) => HashMap::new(),
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
        let smtp = p.policy(&c, "smtp");
        assert_eq!((smtp.limit, smtp.initial, smtp.cohort_limit), (20, 5, 1.0));
        assert_eq!(p.process_limit("smtp"), 100);
    }

    #[test]
    fn per_transport_policy_and_master_cf_maxproc() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("master.cf"),
            "smtp unix - - n - 7 smtp\nrelay unix - - n - 0 smtp\n",
        )
        .unwrap();
        let c = Config::from_text(
            dir.path(),
            "smtp_initial_destination_concurrency = 2\n\
             smtp_destination_concurrency_limit = 3\n\
             smtp_destination_concurrency_failed_cohort_limit = 0\n\
             default_destination_concurrency_positive_feedback = 1/concurrency\n\
             relay_destination_concurrency_negative_feedback = bogus\n",
        )
        .unwrap();
        let mut p = Params::load(&c, 4096);
        let smtp = p.policy(&c, "smtp");
        assert_eq!((smtp.limit, smtp.initial, smtp.cohort_limit), (3, 2, 0.0));
        assert_eq!(smtp.positive, Feedback::parse("1/concurrency").unwrap());
        assert_eq!(p.policy(&c, "relay").negative, Feedback::default());
        assert_eq!(p.process_limit("smtp"), 7);
        assert_eq!(p.process_limit("relay"), MAX_IN_FLIGHT);
        assert_eq!(p.process_limit("other"), 100);
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
