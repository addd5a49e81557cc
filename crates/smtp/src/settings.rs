//! What smtp reads from main.cf (and master.cf's -o) once at start, and
//! what it must read before the chroot (resolv.conf, CA certificates,
//! our own addresses).

use std::net::IpAddr;
use std::time::Duration;

use crate::tls::{self, Level};

/// The name of our internal parameter that names another resolv.conf
/// (tests point it at a DNS server of their own). Not a Postfix
/// parameter; empty means `$MAIL_RESOLV_CONF` or /etc/resolv.conf.
pub(crate) const RESOLV_CONF_PARAM: &str = "smtp_dns_resolv_conf";

/// Our parameter (tests only) that sends the MTA-STS policy fetch to
/// another `host:port` (see `mtasts`).
pub(crate) const STS_CONNECT_PARAM: &str = "smtp_tls_mta_sts_connect";

/// The settings.
pub(crate) struct Settings {
    /// Speak LMTP (the `lmtp` service).
    pub(crate) lmtp: bool,
    pub(crate) myhostname: String,
    pub(crate) helo_name: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) helo_timeout: Duration,
    pub(crate) mail_timeout: Duration,
    pub(crate) rcpt_timeout: Duration,
    pub(crate) data_init_timeout: Duration,
    pub(crate) data_xfer_timeout: Duration,
    pub(crate) data_done_timeout: Duration,
    pub(crate) starttls_timeout: Duration,
    pub(crate) quit_timeout: Duration,
    pub(crate) rset_timeout: Duration,
    /// The connection cache settings.
    pub(crate) cache: crate::cache::Policy,
    pub(crate) skip_5xx_greeting: bool,
    /// smtp_line_length_limit (0: none).
    pub(crate) line_length_limit: usize,
    /// disable_mime_output_conversion: no 8BITMIME downgrade.
    pub(crate) disable_mime_conversion: bool,
    /// smtp_mx_address_limit, smtp_mx_session_limit.
    pub(crate) address_limit: usize,
    pub(crate) session_limit: usize,
    /// inet_protocols.
    pub(crate) ipv4: bool,
    pub(crate) ipv6: bool,
    /// smtp_bind_address, smtp_bind_address6.
    pub(crate) bind4: Option<IpAddr>,
    pub(crate) bind6: Option<IpAddr>,
    /// smtp_fallback_relay.
    pub(crate) fallback_relay: Vec<String>,
    pub(crate) tls_level: Level,
    /// smtp_tls_protocols, smtp_tls_ciphers.
    pub(crate) tls_protocols: String,
    pub(crate) tls_ciphers: String,
    /// smtp_tls_policy_maps: the level per destination.
    pub(crate) tls_policy: Option<Result<tables::Maps, String>>,
    pub(crate) tls: tls::Client,
    /// smtp_sasl_auth_enable: the SASL client, when on.
    pub(crate) sasl: Option<crate::sasl::Client>,
    /// Our addresses, for loop detection.
    pub(crate) own: Vec<IpAddr>,
    pub(crate) resolver: dns::Resolver,
    /// MTA-STS (smtp_tls_mta_sts).
    pub(crate) sts: crate::mtasts::Sts,
    /// The port on which loop detection applies (25; tests change it).
    pub(crate) loop_port: u16,
}

/// What must be read before the chroot.
pub(crate) struct PreJail {
    pub(crate) tls_policy: Option<Result<tables::Maps, String>>,
    pub(crate) sasl: Option<crate::sasl::Client>,
    pub(crate) resolver: dns::Resolver,
    pub(crate) tls: tls::Client,
    pub(crate) own: Vec<IpAddr>,
    pub(crate) sts: crate::mtasts::Sts,
    pub(crate) warnings: Vec<String>,
}

impl PreJail {
    /// Reads resolv.conf, the CA files, our interface addresses and the
    /// SASL password maps.
    pub(crate) fn load(config: &config::Config) -> PreJail {
        let mut warnings = Vec::new();
        let path = config.str(RESOLV_CONF_PARAM);
        let resolver = if path.is_empty() {
            dns::Resolver::from_system()
        } else {
            match dns::Resolver::from_resolv_conf(std::path::Path::new(&path)) {
                Ok(r) => r,
                Err(e) => {
                    warnings.push(format!("{RESOLV_CONF_PARAM} {path}: {e}"));
                    dns::Resolver::from_system()
                }
            }
        };
        let (tls, w) = tls::Client::load(
            &config.str("smtp_tls_CAfile"),
            &config.str("smtp_tls_CApath"),
        );
        warnings.extend(w);
        let own = own_addresses(
            &config.str("inet_interfaces"),
            &config.str("proxy_interfaces"),
        );
        // The maps are opened before the chroot (their files are outside).
        let sasl = config.bool("smtp_sasl_auth_enable").then(|| {
            crate::sasl::Client::load(
                &config.str("smtp_sasl_password_maps"),
                &config.str("smtp_sasl_security_options"),
            )
        });
        if let Some(Err(e)) = sasl.as_ref().map(|c| c.maps.as_ref()) {
            warnings.push(e.clone());
        }
        let policy = config.str("smtp_tls_policy_maps");
        let tls_policy = (!policy.is_empty()).then(|| {
            tables::Maps::open(&policy, tables::Flags::default())
                .map_err(|e| format!("smtp_tls_policy_maps: {e}"))
        });
        if let Some(Err(e)) = &tls_policy {
            warnings.push(e.clone());
        }
        let (sts, w) = crate::mtasts::Sts::new(
            config.bool("smtp_tls_mta_sts"),
            &config.str(STS_CONNECT_PARAM),
            tls.ca_der.clone(),
        );
        warnings.extend(w);
        PreJail {
            tls_policy,
            sasl,
            resolver,
            tls,
            own,
            sts,
            warnings,
        }
    }
}

impl Settings {
    /// Reads the parameters; `lmtp` for the lmtp service.
    pub(crate) fn load(
        config: &config::Config,
        pre: PreJail,
        lmtp: bool,
    ) -> (Settings, Vec<String>) {
        let mut warnings = pre.warnings;
        // lmtp_* when the lmtp service has its own parameter, else smtp_*.
        let p = |name: &str| {
            let l = name.replacen("smtp_", "lmtp_", 1);
            if lmtp && config.get(&l).is_some() {
                l
            } else {
                name.to_string()
            }
        };
        let time = |name: &str| config.time(&p(name));
        let level_text = config.str(&p("smtp_tls_security_level"));
        let tls_level = Level::parse(&level_text).unwrap_or_else(|| {
            warnings.push(format!(
                "{}: unknown TLS security level \"{}\"; using \"may\"",
                p("smtp_tls_security_level"),
                maillog::printable(&level_text, 50)
            ));
            Level::May
        });
        let protocols = config.str("inet_protocols").to_ascii_lowercase();
        let all = protocols.contains("all");
        let bind = |name: &str| {
            let v = config.str(name);
            (!v.is_empty()).then(|| v.parse::<IpAddr>().ok()).flatten()
        };
        let limit = |name: &str| usize::try_from(config.int(&p(name))).unwrap_or(0);
        let s = Settings {
            lmtp,
            myhostname: config.str("myhostname"),
            helo_name: {
                let h = config.str(&p("smtp_helo_name"));
                if h.is_empty() {
                    config.str("myhostname")
                } else {
                    h
                }
            },
            connect_timeout: time("smtp_connect_timeout"),
            helo_timeout: time("smtp_helo_timeout"),
            mail_timeout: time("smtp_mail_timeout"),
            rcpt_timeout: time("smtp_rcpt_timeout"),
            data_init_timeout: time("smtp_data_init_timeout"),
            data_xfer_timeout: time("smtp_data_xfer_timeout"),
            data_done_timeout: time("smtp_data_done_timeout"),
            starttls_timeout: time("smtp_starttls_timeout"),
            quit_timeout: time("smtp_quit_timeout"),
            rset_timeout: time("smtp_rset_timeout"),
            cache: crate::cache::Policy {
                on_demand: config.bool(&p("smtp_connection_cache_on_demand")),
                destinations: config
                    .str(&p("smtp_connection_cache_destinations"))
                    .split([',', ' ', '\t'])
                    .filter(|w| !w.is_empty())
                    .map(str::to_ascii_lowercase)
                    .collect(),
                idle_limit: time("smtp_connection_cache_time_limit"),
                age_limit: time("smtp_connection_reuse_time_limit"),
                count_limit: u32::try_from(config.int(&p("smtp_connection_reuse_count_limit")))
                    .unwrap_or(0),
            },
            skip_5xx_greeting: config.bool(&p("smtp_skip_5xx_greeting")),
            line_length_limit: limit("smtp_line_length_limit"),
            disable_mime_conversion: config.bool("disable_mime_output_conversion"),
            address_limit: limit("smtp_mx_address_limit"),
            session_limit: limit("smtp_mx_session_limit"),
            ipv4: all || protocols.contains("ipv4") || protocols.is_empty(),
            ipv6: all || protocols.contains("ipv6"),
            bind4: bind(&p("smtp_bind_address")),
            bind6: bind(&p("smtp_bind_address6")),
            fallback_relay: config
                .str(&p("smtp_fallback_relay"))
                .split([',', ' ', '\t'])
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect(),
            tls_level,
            tls_protocols: config.str(&p("smtp_tls_protocols")).trim().to_string(),
            tls_ciphers: config.str(&p("smtp_tls_ciphers")).trim().to_string(),
            tls_policy: pre.tls_policy,
            tls: pre.tls,
            sasl: pre.sasl,
            own: pre.own,
            resolver: pre.resolver,
            sts: pre.sts,
            loop_port: 25,
        };
        (s, warnings)
    }

    /// The TLS level for a nexthop (see [`Settings::tls_policy_for`]).
    pub(crate) fn tls_level_for(&self, nexthop: &str) -> Level {
        self.tls_policy_for(nexthop).level
    }

    /// The TLS policy for a nexthop: smtp_tls_policy_maps by the nexthop
    /// as written (`[mail.example]:587`), then by its domain and each
    /// parent domain as `.parent`; else smtp_tls_security_level. A table
    /// that fails, or an unknown level in it, makes the level `encrypt`
    /// (never less security than asked for by mistake). The attributes
    /// after the level: `match=` (names for verify/secure, `:`-separated;
    /// `hostname` and `nexthop` stand for the server's and the nexthop's
    /// names), `protocols=` and `ciphers=` (as smtp_tls_protocols and
    /// smtp_tls_ciphers, for this destination).
    pub(crate) fn tls_policy_for(&self, nexthop: &str) -> tls::Policy {
        // smtp_tls_protocols and smtp_tls_ciphers when set to other than
        // their defaults; a policy entry's attributes win.
        let level_only = |level| tls::Policy {
            level,
            protocols: (self.tls_protocols != ">=TLSv1").then(|| self.tls_protocols.clone()),
            ciphers: (self.tls_ciphers != "medium").then(|| self.tls_ciphers.clone()),
            ..tls::Policy::default()
        };
        let Some(maps) = &self.tls_policy else {
            return level_only(self.tls_level);
        };
        let Ok(maps) = maps else {
            return level_only(Level::Encrypt);
        };
        let host = crate::nexthop::parse(nexthop, 25, self.lmtp)
            .map(|h| h.host)
            .unwrap_or_default();
        let mut keys = vec![nexthop.to_string()];
        if !host.is_empty() {
            keys.push(host.clone());
            let mut rest = host.as_str();
            while let Some((_, parent)) = rest.split_once('.') {
                keys.push(format!(".{parent}"));
                rest = parent;
            }
        }
        for key in keys {
            match maps.lookup(&key) {
                Ok(Some(v)) => {
                    let mut words = v.split_whitespace();
                    let word = words.next().unwrap_or("");
                    let Some(level) = Level::parse(word) else {
                        maillog::warning!(
                            "smtp_tls_policy_maps: {}: unknown level \"{}\"",
                            maillog::printable(&key, 100),
                            maillog::printable(word, 50)
                        );
                        return level_only(Level::Encrypt);
                    };
                    let mut policy = level_only(level);
                    for attr in words {
                        let (name, value) = attr.split_once('=').unwrap_or((attr, ""));
                        match name.to_ascii_lowercase().as_str() {
                            "match" => {
                                policy.matches = value
                                    .split(':')
                                    .filter(|w| !w.is_empty())
                                    .map(str::to_string)
                                    .collect();
                            }
                            "protocols" => policy.protocols = Some(value.to_string()),
                            "ciphers" => policy.ciphers = Some(value.to_string()),
                            _ => maillog::warning!(
                                "smtp_tls_policy_maps: {}: ignoring attribute \"{}\"",
                                maillog::printable(&key, 100),
                                maillog::printable(attr, 50)
                            ),
                        }
                    }
                    return policy;
                }
                Ok(None) => {}
                Err(e) => {
                    maillog::warning!(
                        "smtp_tls_policy_maps lookup for {}: {e}",
                        maillog::printable(&key, 100)
                    );
                    return level_only(Level::Encrypt);
                }
            }
        }
        level_only(self.tls_level)
    }

    /// The local address to connect from, if one is set for the family.
    pub(crate) fn bind_for(&self, addr: std::net::SocketAddr) -> Option<IpAddr> {
        if addr.is_ipv4() {
            self.bind4
        } else {
            self.bind6
        }
    }

    /// Loop detection applies to SMTP on port 25 (as in Postfix).
    pub(crate) fn loop_detect(&self, port: u16) -> bool {
        !self.lmtp && port == self.loop_port
    }
}

/// inet_interfaces and proxy_interfaces as addresses; `all` (or
/// `loopback-only`) from the system's interfaces.
fn own_addresses(inet_interfaces: &str, proxy_interfaces: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let system = || -> Vec<IpAddr> {
        nix::ifaddrs::getifaddrs()
            .map(|it| {
                it.filter_map(|i| i.address)
                    .filter_map(|a| {
                        a.as_sockaddr_in()
                            .map(|s| IpAddr::V4(s.ip()))
                            .or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    for word in inet_interfaces
        .split([',', ' ', '\t'])
        .chain(proxy_interfaces.split([',', ' ', '\t']))
        .filter(|w| !w.is_empty())
    {
        match word.to_ascii_lowercase().as_str() {
            "all" => out.extend(system()),
            "loopback-only" => out.extend(system().into_iter().filter(IpAddr::is_loopback)),
            w => {
                let w = w.trim_start_matches('[').trim_end_matches(']');
                if let Ok(ip) = w.parse::<IpAddr>() {
                    out.push(ip);
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_addresses_from_the_parameters() {
        let a = own_addresses("127.0.0.2, [::1]", "192.0.2.1");
        assert_eq!(
            a,
            vec![
                "127.0.0.2".parse::<IpAddr>().unwrap(),
                "192.0.2.1".parse().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert!(own_addresses("all", "").iter().any(IpAddr::is_loopback));
    }
}
