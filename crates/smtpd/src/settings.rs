//! smtpd's settings from main.cf (with master.cf `-o` overrides): the
//! protocol core's [`session::Config`], the TLS configuration, timeouts,
//! SASL and anvil limits.
//!
//! Everything that reads files (certificates, keys) happens here, before
//! the jail; a bad certificate path is an error naming the file.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use config::Config;

use crate::line::BareNewline;
use crate::session;

/// smtpd_tls_security_level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsLevel {
    /// No STARTTLS.
    None,
    /// STARTTLS offered.
    May,
    /// STARTTLS required before mail commands.
    Encrypt,
}

/// Everything the server reads from the configuration.
#[derive(Clone)]
pub struct Settings {
    /// smtpd_milters, content_filter, receive_override_options.
    pub filters: crate::filters::FilterSettings,
    /// The protocol core's settings, shared by every connection.
    pub session: std::sync::Arc<session::Config>,
    /// myhostname.
    pub hostname: String,
    /// The master.cf service name (`smtp`, `submission`), for anvil and logs.
    pub service: String,
    /// smtpd_tls_security_level.
    pub tls_level: TlsLevel,
    /// smtpd_tls_wrappermode: TLS from the first byte (port 465).
    pub wrapper_mode: bool,
    /// The loaded certificate, when TLS is on.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// smtpd_tls_received_header: the protocol and cipher go into the
    /// Received header (Postfix's default: no).
    pub tls_received_header: bool,
    /// smtpd_timeout.
    pub timeout: Duration,
    /// smtpd_starttls_timeout (the handshake).
    pub starttls_timeout: Duration,
    /// smtpd_error_sleep_time.
    pub error_sleep: Duration,
    /// smtpd_sasl_auth_enable with a dovecot socket: its path.
    pub sasl_path: Option<PathBuf>,
    /// smtpd_client_connection_count_limit (0: off).
    pub connection_count_limit: u32,
    /// smtpd_client_connection_rate_limit (0: off).
    pub connection_rate_limit: u32,
    /// smtpd_client_message_rate_limit (0: off): MAIL FROM per client and
    /// anvil_rate_time_unit.
    pub message_rate_limit: u32,
    /// smtpd_client_auth_rate_limit (0: off): AUTH per client and
    /// anvil_rate_time_unit.
    pub auth_rate_limit: u32,
    /// smtpd_client_event_limit_exceptions (parsed networks).
    pub limit_exceptions: Vec<(IpAddr, u8)>,
    /// The anvil service (`private/anvil`), when a limit is set.
    pub anvil: Option<String>,
    /// The fast flush service for ETRN (`public/$flush_service_name`).
    pub flush_service: String,
    /// smtpd_peername_lookup (yes): look up the client's name in DNS.
    pub peername_lookup: bool,
    /// The nameservers (resolv.conf is read before the jail).
    pub resolver: std::sync::Arc<dns::Resolver>,
    /// local_header_rewrite_clients: who gets rewrite_context=local.
    pub local_rewrite: crate::rewrite::LocalClients,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("service", &self.service)
            .field("tls_level", &self.tls_level)
            .field("wrapper_mode", &self.wrapper_mode)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Reads the settings of service `service`.
    ///
    /// # Errors
    /// A certificate or key cannot be loaded (the message names the file),
    /// or a value is unusable (named with its parameter).
    pub fn from_config(cfg: &Config, service: &str) -> Result<Settings, String> {
        let hostname = cfg.str("myhostname");
        let wrapper_mode = cfg.bool("smtpd_tls_wrappermode");
        let tls_level = match cfg.str("smtpd_tls_security_level").trim() {
            "" | "none" => {
                if cfg.bool("smtpd_enforce_tls") {
                    TlsLevel::Encrypt
                } else if cfg.bool("smtpd_use_tls") {
                    TlsLevel::May
                } else {
                    TlsLevel::None
                }
            }
            "may" => TlsLevel::May,
            "encrypt" => TlsLevel::Encrypt,
            other => {
                return Err(format!(
                    "invalid smtpd_tls_security_level value: \"{other}\" (use none, may or encrypt)"
                ));
            }
        };
        let tls = if tls_level != TlsLevel::None || wrapper_mode {
            // Postfix's enforce_tls: the mandatory_* TLS settings apply.
            Some(load_tls(
                cfg,
                tls_level == TlsLevel::Encrypt || wrapper_mode,
            )?)
        } else {
            None
        };
        let sasl_enabled = cfg.bool("smtpd_sasl_auth_enable");
        let sasl_path = if sasl_enabled {
            let kind = cfg.str("smtpd_sasl_type");
            if kind != "dovecot" {
                return Err(format!(
                    "unsupported SASL server implementation: {kind} (smtpd_sasl_type; use dovecot)"
                ));
            }
            Some(PathBuf::from(cfg.str("smtpd_sasl_path")))
        } else {
            None
        };
        let tls_on = tls.is_some();
        let session = std::sync::Arc::new(session::Config {
            hostname: hostname.clone(),
            banner: cfg.str("smtpd_banner"),
            line_length_limit: usize::try_from(cfg.int("line_length_limit"))
                .unwrap_or(crate::line::DEFAULT_LINE_LENGTH_LIMIT),
            bare_newline: BareNewline::from_param(&cfg.str("smtpd_forbid_bare_newline")),
            bare_newline_reject_code: u16::try_from(
                cfg.int("smtpd_forbid_bare_newline_reject_code"),
            )
            .unwrap_or(550),
            message_size_limit: cfg.size("message_size_limit"),
            disable_vrfy_command: cfg.bool("disable_vrfy_command"),
            helo_required: cfg.bool("smtpd_helo_required"),
            tls_offered: tls_on && !wrapper_mode && tls_level != TlsLevel::None,
            tls_required: tls_level == TlsLevel::Encrypt && !wrapper_mode,
            auth_enabled: sasl_enabled,
            tls_auth_only: cfg.bool("smtpd_tls_auth_only"),
            auth_required: false,
            forbid_unauth_pipelining: cfg.bool("smtpd_forbid_unauth_pipelining"),
            soft_error_limit: u32::try_from(cfg.int("smtpd_soft_error_limit")).unwrap_or(10),
            hard_error_limit: u32::try_from(cfg.int("smtpd_hard_error_limit")).unwrap_or(20),
            recipient_limit: usize::try_from(cfg.int("smtpd_recipient_limit")).unwrap_or(1000),
            junk_command_limit: u32::try_from(cfg.int("smtpd_junk_command_limit")).unwrap_or(100),
            sasl_security: session::SaslSecurity::parse(&cfg.str("smtpd_sasl_security_options")),
            sasl_tls_security: session::SaslSecurity::parse(
                &cfg.str("smtpd_sasl_tls_security_options"),
            ),
            forbidden_commands: cfg
                .str("smtpd_forbidden_commands")
                .split([',', ' ', '\t', '\n'])
                .filter(|w| {
                    !w.is_empty() && !w.contains(':') && !w.contains('{') && !w.contains('}')
                })
                .map(str::to_string)
                .collect(),
            stage_checks: true,
        });
        let count = u32::try_from(cfg.int("smtpd_client_connection_count_limit")).unwrap_or(0);
        let rate = u32::try_from(cfg.int("smtpd_client_connection_rate_limit")).unwrap_or(0);
        let message_rate = u32::try_from(cfg.int("smtpd_client_message_rate_limit")).unwrap_or(0);
        let auth_rate = u32::try_from(cfg.int("smtpd_client_auth_rate_limit")).unwrap_or(0);
        let anvil = (count > 0 || rate > 0 || message_rate > 0 || auth_rate > 0)
            .then(|| format!("private/{}", cfg.str("anvil_service_name")));
        Ok(Settings {
            filters: crate::filters::FilterSettings::from_config(cfg),
            session,
            hostname,
            service: service.to_string(),
            tls_level,
            tls_received_header: cfg.bool("smtpd_tls_received_header"),
            wrapper_mode,
            tls,
            timeout: cfg.time("smtpd_timeout"),
            starttls_timeout: cfg.time("smtpd_starttls_timeout"),
            error_sleep: cfg.time("smtpd_error_sleep_time"),
            sasl_path,
            connection_count_limit: count,
            connection_rate_limit: rate,
            message_rate_limit: message_rate,
            auth_rate_limit: auth_rate,
            limit_exceptions: parse_networks(&cfg.str("smtpd_client_event_limit_exceptions")),
            anvil,
            flush_service: format!("public/{}", cfg.str("flush_service_name")),
            peername_lookup: cfg.bool("smtpd_peername_lookup"),
            resolver: std::sync::Arc::new(dns::Resolver::from_system()),
            local_rewrite: crate::rewrite::LocalClients::from_config(cfg),
        })
    }

    /// True when `addr` is exempt from the connection limits.
    pub fn limit_exempt(&self, addr: IpAddr) -> bool {
        self.limit_exceptions
            .iter()
            .any(|(net, bits)| in_network(addr, *net, *bits))
    }
}

/// load_tls - the certificate named by smtpd_tls_cert_file / key_file /
/// chain_files, offering what smtpd_tls_(mandatory_)protocols, _ciphers
/// and _exclude_ciphers allow.
fn load_tls(cfg: &Config, mandatory: bool) -> Result<Arc<rustls::ServerConfig>, String> {
    let policy = tls::Policy::from_params("smtpd", mandatory, |name| cfg.str(name))?;
    for w in &policy.warnings {
        maillog::warning!("{w}");
    }
    let cert = PathBuf::from(cfg.str("smtpd_tls_cert_file"));
    let key = PathBuf::from(cfg.str("smtpd_tls_key_file"));
    let chains: Vec<PathBuf> = cfg
        .str("smtpd_tls_chain_files")
        .split([',', ' ', '\t', '\n'])
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect();
    tls::ServerConfig::load_with_policy(&cert, &key, &chains, &policy).map_err(|e| match e {
        tls::Error::NoCertificate => "TLS is on (smtpd_tls_security_level or \
             smtpd_tls_wrappermode) but no certificate is configured: set \
             smtpd_tls_cert_file and smtpd_tls_key_file, or smtpd_tls_chain_files"
            .to_string(),
        other => format!("cannot load the TLS certificate: {other}"),
    })
}

/// Parses a list of networks and addresses (`127.0.0.0/8 [::1]/128 192.0.2.1`);
/// table lookups and names are skipped.
pub fn parse_networks(text: &str) -> Vec<(IpAddr, u8)> {
    let mut out = Vec::new();
    for word in text.split([',', ' ', '\t', '\n']).filter(|s| !s.is_empty()) {
        let (addr, bits) = match word.split_once('/') {
            Some((a, b)) => (a, b.parse::<u8>().ok()),
            None => (word, None),
        };
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        let Ok(ip) = addr.parse::<IpAddr>() else {
            continue;
        };
        let max = if ip.is_ipv4() { 32 } else { 128 };
        out.push((ip, bits.unwrap_or(max).min(max)));
    }
    out
}

/// The client's name as Postfix finds it: the PTR name of its address,
/// kept only when that name's A/AAAA records lead back to the address;
/// `unknown` otherwise (also when DNS does not answer). Loopback clients
/// are `localhost` without a lookup.
pub fn peer_name(resolver: &dns::Resolver, addr: IpAddr) -> String {
    if addr.is_loopback() {
        return "localhost".into();
    }
    let Ok(names) = resolver.ptr(addr) else {
        return "unknown".into();
    };
    for name in names.iter().take(4) {
        if name.is_empty() || name.len() > 255 {
            continue;
        }
        if let Ok(addrs) = resolver.addresses(name, addr.is_ipv4(), addr.is_ipv6())
            && addrs.contains(&addr)
        {
            return name.clone();
        }
    }
    "unknown".into()
}

/// The in-addr.arpa / ip6.arpa name of an address.
pub use dns::reverse_name;

/// True when `addr` lies in `net/bits` (an IPv4-mapped IPv6 address counts as IPv4).
pub fn in_network(addr: IpAddr, net: IpAddr, bits: u8) -> bool {
    let addr = match addr {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(bits.min(32)))
                .unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(bits.min(128)))
                .unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
#[path = "settings_tls_tests.rs"]
mod tls_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.cf"), text).unwrap();
        let cfg = Config::load(dir.path()).unwrap();
        (dir, cfg)
    }

    #[test]
    fn defaults_and_overrides() {
        let (_d, mut cfg) = config("myhostname = mx.example\n");
        let s = Settings::from_config(&cfg, "smtp").unwrap();
        assert_eq!(s.session.hostname, "mx.example");
        assert_eq!(s.session.banner, "mx.example ESMTP Postfix");
        assert_eq!(s.tls_level, TlsLevel::None);
        assert!(!s.session.tls_offered && s.tls.is_none());
        assert_eq!(s.timeout, Duration::from_secs(300));
        assert_eq!(s.connection_count_limit, 50);
        cfg.set_override("smtpd_tls_security_level", "bogus");
        assert!(Settings::from_config(&cfg, "smtp").is_err());
    }

    #[test]
    fn bad_certificate_path_names_the_file() {
        let (_d, cfg) =
            config("smtpd_tls_security_level = may\nsmtpd_tls_cert_file = /nonexistent/cert.pem\n");
        let e = Settings::from_config(&cfg, "smtp").unwrap_err();
        assert!(e.contains("/nonexistent/cert.pem"), "{e}");
        let (_d, cfg) = config("smtpd_tls_wrappermode = yes\n");
        let e = Settings::from_config(&cfg, "smtps").unwrap_err();
        assert!(e.contains("smtpd_tls_cert_file"), "{e}");
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("192.0.2.10".parse().unwrap()),
            "10.2.0.192.in-addr.arpa"
        );
        let six = reverse_name("2001:db8::1".parse().unwrap());
        assert!(six.starts_with("1.0.0.0.0.0.0.0.") && six.ends_with(".8.b.d.0.1.0.0.2.ip6.arpa"));
        let r = dns::Resolver::new(dns::ResolvConf::parse("nameserver 127.0.0.1\n"));
        assert_eq!(peer_name(&r, "127.0.0.1".parse().unwrap()), "localhost");
    }

    #[test]
    fn peer_names_through_the_dns_crate() {
        use dns::testserver::Rec;
        let s = dns::testserver::start(vec![
            (
                "10.2.0.192.in-addr.arpa".into(),
                Rec::Ptr("good.test.".into()),
            ),
            ("good.test".into(), Rec::A("192.0.2.10".into())),
            (
                "11.2.0.192.in-addr.arpa".into(),
                Rec::Ptr("liar.test.".into()),
            ),
            ("liar.test".into(), Rec::A("192.0.2.99".into())),
        ]);
        let r = dns::Resolver::new(dns::ResolvConf::parse(&s.resolv_conf()));
        assert_eq!(peer_name(&r, "192.0.2.10".parse().unwrap()), "good.test");
        // The name does not lead back to the address; no PTR at all.
        assert_eq!(peer_name(&r, "192.0.2.11".parse().unwrap()), "unknown");
        assert_eq!(peer_name(&r, "192.0.2.12".parse().unwrap()), "unknown");
    }

    #[test]
    fn networks() {
        let n = parse_networks("127.0.0.0/8 [::1]/128, 192.0.2.7 hash:/x");
        assert_eq!(n.len(), 3);
        let has = |a: &str| {
            n.iter()
                .any(|(net, b)| in_network(a.parse().unwrap(), *net, *b))
        };
        assert!(has("127.1.2.3") && has("::1") && has("192.0.2.7") && has("::ffff:127.0.0.1"));
        assert!(!has("192.0.2.8") && !has("10.0.0.1"));
        assert!(in_network(
            "10.1.1.1".parse().unwrap(),
            "0.0.0.0".parse().unwrap(),
            0
        ));
    }
}
