//! imapd's settings, read once from main.cf (with the service's `-o`
//! overrides) in each of its processes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use config::Config;

use login::location::LocationSettings;

/// Which process is loading the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The service process master started: locates mailboxes (opens the tables).
    Service,
    /// The login process: TLS, no tables.
    Login,
    /// The mail process: neither.
    Mail,
}

/// Everything imapd reads from main.cf.
#[derive(Debug)]
pub struct Settings {
    /// The master.cf service name (for anvil and the log).
    pub service: String,
    /// imapd_banner (the greeting's text).
    pub banner: String,
    /// The TLS configuration when a certificate is set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// imapd_tls_wrappermode: TLS from the first byte (IMAPS).
    pub wrapper: bool,
    /// imapd_disable_plaintext_auth.
    pub disable_plaintext: bool,
    /// imapd_sasl_path, relative to the queue directory.
    pub sasl_path: PathBuf,
    /// imapd_idle_timeout (at least the 30 minutes RFC 9051 asks for is advised).
    pub idle: Duration,
    /// imapd_login_timeout.
    pub login_timeout: Duration,
    /// imapd_login_failure_delay.
    pub failure_delay: Duration,
    /// imapd_login_command_limit.
    pub command_limit: u32,
    /// imapd_client_connection_count_limit.
    pub connection_limit: u32,
    /// imapd_max_line_length.
    pub max_line: usize,
    /// imapd_append_size_limit (0: none beyond the parser's).
    pub append_limit: u64,
    /// imapd_quota_storage_limit in bytes (0: no quota).
    pub quota: u64,
    /// imapd_special_use_folders: created at the first login.
    pub special_use: Vec<String>,
    /// mail_owner, whom the login process runs as.
    pub mail_owner: String,
    /// queue_directory, the login process's jail.
    pub queue_directory: PathBuf,
    /// Where mailboxes are.
    pub location: LocationSettings,
}

impl Settings {
    /// Reads the settings.
    ///
    /// # Errors
    /// A certificate or key that does not load, or wrapper mode without one.
    pub fn load(config: &Config, service: &str, role: Role) -> Result<Settings, String> {
        let (tls, wrapper) = login::process::server_tls(config, "imapd", role != Role::Mail)?;
        let int = |name: &str, dflt: u64| u64::try_from(config.int(name)).unwrap_or(dflt);
        Ok(Settings {
            service: if service.is_empty() {
                "imap".to_string()
            } else {
                service.to_string()
            },
            banner: config.str("imapd_banner"),
            tls,
            wrapper,
            disable_plaintext: config.bool("imapd_disable_plaintext_auth"),
            sasl_path: PathBuf::from(config.str("imapd_sasl_path")),
            idle: config.time("imapd_idle_timeout"),
            login_timeout: config.time("imapd_login_timeout"),
            failure_delay: config.time("imapd_login_failure_delay"),
            command_limit: u32::try_from(int("imapd_login_command_limit", 20)).unwrap_or(20),
            connection_limit: u32::try_from(int("imapd_client_connection_count_limit", 10))
                .unwrap_or(10),
            max_line: usize::try_from(int("imapd_max_line_length", 65_536)).unwrap_or(65_536),
            append_limit: int("imapd_append_size_limit", 0),
            quota: config.size("imapd_quota_storage_limit"),
            special_use: config
                .str("imapd_special_use_folders")
                .split([',', ' ', '\t'])
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            mail_owner: config.str("mail_owner"),
            queue_directory: PathBuf::from(config.str("queue_directory")),
            location: LocationSettings::load(config, role == Role::Service),
        })
    }

    /// The capabilities after login (QUOTA when a quota is set).
    pub fn capabilities(&self) -> String {
        let mut c = super::login::CAPABILITIES.to_string();
        if self.quota > 0 {
            c.push_str(" QUOTA QUOTA=RES-STORAGE");
        }
        c
    }

    /// The parser limits these settings give.
    pub fn limits(&self) -> crate::parse::Limits {
        let mut l = crate::parse::Limits {
            max_line: self.max_line,
            ..crate::parse::Limits::default()
        };
        if self.append_limit > 0 {
            l.max_literal = self.append_limit;
        }
        l
    }
}
