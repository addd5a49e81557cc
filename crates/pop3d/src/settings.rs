//! pop3d's settings, read once from main.cf (with the service's `-o`
//! overrides) before the login process is forked.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use config::Config;

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

/// Everything pop3d reads from main.cf.
#[derive(Debug)]
pub struct Settings {
    /// The master.cf service name (for anvil and the log).
    pub service: String,
    /// pop3d_banner (after `+OK `).
    pub banner: String,
    /// mail_name, for the IMPLEMENTATION capability.
    pub implementation: String,
    /// The TLS configuration when a certificate is set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// pop3d_tls_wrappermode: TLS from the first byte (POP3S).
    pub wrapper: bool,
    /// pop3d_disable_plaintext_auth.
    pub disable_plaintext: bool,
    /// pop3d_sasl_path, relative to the queue directory.
    pub sasl_path: PathBuf,
    /// pop3d_idle_timeout.
    pub idle: Duration,
    /// pop3d_login_timeout.
    pub login_timeout: Duration,
    /// pop3d_login_failure_delay.
    pub failure_delay: Duration,
    /// pop3d_login_command_limit.
    pub command_limit: u32,
    /// pop3d_client_connection_count_limit.
    pub connection_limit: u32,
    /// pop3d_expire (empty: not advertised).
    pub expire: String,
    /// pop3d_login_delay (empty: not advertised).
    pub login_delay: String,
    /// pop3d_apop: APOP when the auth service offers it.
    pub apop: bool,
    /// myhostname, for the APOP timestamp.
    pub hostname: String,
    /// mail_owner, whom the login process runs as.
    pub mail_owner: String,
    /// queue_directory, the login process's jail.
    pub queue_directory: PathBuf,
    /// Where mailboxes are.
    pub location: crate::mailbox::LocationSettings,
}

impl Settings {
    /// Reads the settings.
    ///
    /// # Errors
    /// A certificate or key that does not load, or wrapper mode without one.
    pub fn load(config: &Config, service: &str, role: Role) -> Result<Settings, String> {
        let (tls, wrapper) = login::process::server_tls(config, "pop3d", role != Role::Mail)?;
        Ok(Settings {
            service: if service.is_empty() {
                "pop3".to_string()
            } else {
                service.to_string()
            },
            banner: config.str("pop3d_banner"),
            implementation: config.str("mail_name"),
            tls,
            wrapper,
            disable_plaintext: config.bool("pop3d_disable_plaintext_auth"),
            sasl_path: PathBuf::from(config.str("pop3d_sasl_path")),
            idle: config.time("pop3d_idle_timeout"),
            login_timeout: config.time("pop3d_login_timeout"),
            failure_delay: config.time("pop3d_login_failure_delay"),
            command_limit: u32::try_from(config.int("pop3d_login_command_limit")).unwrap_or(20),
            connection_limit: u32::try_from(config.int("pop3d_client_connection_count_limit"))
                .unwrap_or(10),
            expire: config.str("pop3d_expire"),
            login_delay: config.str("pop3d_login_delay"),
            apop: config.bool("pop3d_apop"),
            hostname: config.str("myhostname"),
            mail_owner: config.str("mail_owner"),
            queue_directory: PathBuf::from(config.str("queue_directory")),
            location: crate::mailbox::LocationSettings::load(config, role == Role::Service),
        })
    }
}
