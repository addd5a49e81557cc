//! What auth reads from main.cf, checked once at startup (before any
//! client is served: a bad `auth_passdb` is fatal, as master then throttles
//! the service and the log says why).

use std::path::Path;
use std::time::Duration;

use auth::limiter::LimiterConfig;
use auth::sasl::Mechanism;
use auth::{PassDb, Source};

/// The largest delay after repeated failures from one client.
pub(crate) const MAX_FAILURE_DELAY: Duration = Duration::from_secs(15);
/// The window `auth_failure_limit` counts failures in.
pub(crate) const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Most client addresses the limiter remembers.
pub(crate) const MAX_TRACKED_CLIENTS: usize = 10_000;

/// The daemon's settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The password databases, in lookup order.
    pub(crate) passdb: PassDb,
    /// Failure delays and the per-client rate limit.
    pub(crate) limiter: LimiterConfig,
    /// Most connections served at once.
    pub(crate) client_limit: usize,
    /// The mechanisms offered, in MECH order.
    pub(crate) mechanisms: Vec<Mechanism>,
}

impl Settings {
    /// Reads auth_passdb, auth_failure_delay, auth_failure_limit and
    /// auth_client_limit.
    ///
    /// # Errors
    /// A message naming the parameter when auth_passdb does not parse.
    pub(crate) fn from_config(cfg: &config::Config) -> Result<Settings, String> {
        let spec = cfg.str("auth_passdb");
        let passdb = PassDb::from_spec(&spec).map_err(|e| e.to_string())?;
        let passdb = usable(passdb, privsep::is_root());
        let base = cfg.time("auth_failure_delay");
        let limiter = LimiterConfig {
            base_delay: base,
            max_delay: MAX_FAILURE_DELAY.max(base),
            max_attempts: usize::try_from(cfg.int("auth_failure_limit"))
                .unwrap_or(1)
                .max(1),
            window: FAILURE_WINDOW,
            max_clients: MAX_TRACKED_CLIENTS,
        };
        let client_limit = usize::try_from(cfg.int("auth_client_limit"))
            .unwrap_or(1)
            .max(1);
        // APOP (private: pop3d only) when a passwd-file can hold the
        // cleartext passwords it needs.
        let mut mechanisms = vec![Mechanism::Plain, Mechanism::Login];
        if passdb.apop_capable() {
            mechanisms.push(Mechanism::Apop);
        }
        Ok(Settings {
            passdb,
            limiter,
            client_limit,
            mechanisms,
        })
    }
}

/// usable - warns about sources that cannot work, and drops the system
/// users when we are not root and cannot read the shadow file (the
/// development instance): otherwise every unknown user of the passwd-file
/// would be a temporary failure.
fn usable(passdb: PassDb, root: bool) -> PassDb {
    let mut keep = Vec::new();
    for source in passdb.sources() {
        match source {
            Source::PasswdFile(path) if !path.exists() => {
                maillog::warning!(
                    "auth_passdb: passwd-file {}: file not found; logins through it fail temporarily until it exists",
                    path.display()
                );
                keep.push(source.clone());
            }
            Source::Shadow { shadow, .. } if !root && !readable(shadow) => {
                maillog::warning!(
                    "auth_passdb: {} is not readable without root privilege: system users cannot log in",
                    shadow.display()
                );
            }
            _ => keep.push(source.clone()),
        }
    }
    if keep.is_empty() {
        // Nothing usable: keep the list, so that every attempt is a logged
        // temporary failure rather than a silent "wrong password".
        return passdb;
    }
    PassDb::from_sources(keep)
}

fn readable(path: &Path) -> bool {
    std::fs::File::open(path).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn config(main_cf: &str) -> (tempfile::TempDir, config::Config) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.cf"), main_cf).unwrap();
        let cfg = config::Config::load(dir.path()).unwrap();
        (dir, cfg)
    }

    #[test]
    fn defaults() {
        let (dir, cfg) = config("");
        let s = Settings::from_config(&cfg).unwrap();
        assert_eq!(s.limiter.base_delay, Duration::from_secs(1));
        assert_eq!(s.limiter.max_delay, MAX_FAILURE_DELAY);
        assert_eq!(s.limiter.max_attempts, 10);
        assert_eq!(s.client_limit, 256);
        assert_eq!(
            s.mechanisms,
            [Mechanism::Plain, Mechanism::Login, Mechanism::Apop]
        );
        // passwd-file:${config_directory}/passwd first: beside main.cf.
        assert_eq!(
            s.passdb.sources().first(),
            Some(&Source::PasswdFile(dir.path().join("passwd")))
        );
    }

    #[test]
    fn explicit_settings_and_errors() {
        let (dir, _) = config("");
        let pw = dir.path().join("passwd");
        std::fs::write(&pw, "u:{PLAIN}p\n").unwrap();
        let (_d, cfg) = config(&format!(
            "auth_passdb = passwd-file:{}\nauth_failure_delay = 0\nauth_failure_limit = 3\nauth_client_limit = 5\n",
            pw.display()
        ));
        let s = Settings::from_config(&cfg).unwrap();
        assert_eq!(s.passdb.sources(), [Source::PasswdFile(pw)]);
        assert_eq!(s.limiter.base_delay, Duration::ZERO);
        assert_eq!(s.limiter.max_attempts, 3);
        assert_eq!(s.client_limit, 5);
        let (_d, cfg) = config("auth_passdb = ldap:/x\n");
        assert!(
            Settings::from_config(&cfg)
                .unwrap_err()
                .contains("auth_passdb")
        );
    }

    #[test]
    fn unreadable_shadow_dropped_only_when_not_root() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("passwd");
        let shadow = Source::Shadow {
            shadow: dir.path().join("no-such-shadow"),
            passwd: PathBuf::from("/etc/passwd"),
        };
        let db = PassDb::from_sources(vec![Source::PasswdFile(pw.clone()), shadow.clone()]);
        assert_eq!(
            usable(db.clone(), false).sources(),
            [Source::PasswdFile(pw)]
        );
        assert_eq!(usable(db, true).sources().len(), 2);
        let only = PassDb::from_sources(vec![shadow]);
        assert_eq!(usable(only.clone(), false), only);
    }
}
