//! The configuration trivial-rewrite works from: main.cf values read once
//! at startup (before the jail, as the tables live outside it), the domain
//! lists of the address classes and the local interface addresses.

use std::net::IpAddr;

use config::Config;
use tables::Maps;
use tables::domains::{DomainList, Style};

/// Why the configuration could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum Error {
    /// A table named by a parameter could not be opened.
    Table {
        /// The parameter.
        param: &'static str,
        /// The cause.
        source: tables::Error,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Table { param, source } => write!(f, "{param}: {source}"),
        }
    }
}

impl std::error::Error for Error {}

/// Everything the rewriter and the resolver read.
#[derive(Debug)]
pub(crate) struct Settings {
    /// myhostname.
    pub(crate) myhostname: String,
    /// myorigin.
    pub(crate) myorigin: String,
    /// mydomain.
    pub(crate) mydomain: String,
    /// remote_header_rewrite_domain (origin and domain of the remote context).
    pub(crate) remote_domain: String,
    /// append_at_myorigin.
    pub(crate) append_at_myorigin: bool,
    /// append_dot_mydomain.
    pub(crate) append_dot_mydomain: bool,
    /// swap_bangpath.
    pub(crate) swap_bangpath: bool,
    /// allow_percent_hack.
    pub(crate) percent_hack: bool,
    /// resolve_dequoted_address.
    pub(crate) resolve_dequoted: bool,
    /// resolve_null_domain.
    pub(crate) resolve_null_domain: bool,
    /// allow_min_user.
    pub(crate) allow_min_user: bool,
    /// empty_address_recipient.
    pub(crate) empty_address_recipient: String,
    /// recipient_delimiter.
    pub(crate) recipient_delimiter: String,
    /// mydestination.
    pub(crate) mydestination: DomainList,
    /// inet_interfaces and proxy_interfaces, as addresses.
    pub(crate) own_addresses: Vec<IpAddr>,
    /// virtual_alias_domains.
    pub(crate) virtual_alias_domains: DomainList,
    /// virtual_mailbox_domains.
    pub(crate) virtual_mailbox_domains: DomainList,
    /// relay_domains.
    pub(crate) relay_domains: DomainList,
    /// local_transport.
    pub(crate) local_transport: String,
    /// virtual_transport.
    pub(crate) virtual_transport: String,
    /// relay_transport.
    pub(crate) relay_transport: String,
    /// default_transport.
    pub(crate) default_transport: String,
    /// relayhost.
    pub(crate) relayhost: String,
    /// sender_dependent_relayhost_maps.
    pub(crate) sender_relayhost_maps: Maps,
    /// empty_address_relayhost_maps_lookup_key.
    pub(crate) empty_sender_relayhost_key: String,
    /// sender_dependent_default_transport_maps.
    pub(crate) sender_default_transport_maps: Maps,
    /// transport_maps.
    pub(crate) transport_maps: Maps,
    /// transport_maps is listed in parent_domain_matches_subdomains.
    pub(crate) transport_parent_style: bool,
    /// relocated_maps.
    pub(crate) relocated_maps: Maps,
    /// relocated_prefix_enable.
    pub(crate) relocated_prefix: bool,
}

/// True when `param` is in parent_domain_matches_subdomains.
fn parent_style(config: &Config, param: &str) -> bool {
    tables::split_list(&config.str("parent_domain_matches_subdomains")).contains(&param)
}

fn maps(config: &Config, param: &'static str) -> Result<Maps, Error> {
    Maps::open(&config.str(param), tables::Flags::default())
        .map_err(|source| Error::Table { param, source })
}

impl Settings {
    /// Reads the configuration and opens the tables and lists.
    ///
    /// # Errors
    /// A table cannot be opened.
    pub(crate) fn load(config: &Config) -> Result<Settings, Error> {
        let domain_list = |param: &'static str, style| {
            DomainList::parse(param, &config.str(param), style)
                .map_err(|source| Error::Table { param, source })
        };
        let relay_style = Style::Domain {
            parent: parent_style(config, "relay_domains"),
        };
        let mut own = interface_addresses(&config.str("inet_interfaces"));
        own.extend(interface_addresses(&config.str("proxy_interfaces")));
        Ok(Settings {
            myhostname: config.str("myhostname"),
            myorigin: config.str("myorigin"),
            mydomain: config.str("mydomain"),
            remote_domain: config.str("remote_header_rewrite_domain"),
            append_at_myorigin: config.bool("append_at_myorigin"),
            append_dot_mydomain: config.bool("append_dot_mydomain"),
            swap_bangpath: config.bool("swap_bangpath"),
            percent_hack: config.bool("allow_percent_hack"),
            resolve_dequoted: config.bool("resolve_dequoted_address"),
            resolve_null_domain: config.bool("resolve_null_domain"),
            allow_min_user: config.bool("allow_min_user"),
            empty_address_recipient: config.str("empty_address_recipient"),
            recipient_delimiter: config.str("recipient_delimiter"),
            mydestination: domain_list("mydestination", Style::Exact)?,
            own_addresses: own,
            virtual_alias_domains: domain_list("virtual_alias_domains", Style::Exact)?,
            virtual_mailbox_domains: domain_list("virtual_mailbox_domains", Style::Exact)?,
            relay_domains: domain_list("relay_domains", relay_style)?,
            local_transport: config.str("local_transport"),
            virtual_transport: config.str("virtual_transport"),
            relay_transport: config.str("relay_transport"),
            default_transport: config.str("default_transport"),
            relayhost: config.str("relayhost"),
            sender_relayhost_maps: maps(config, "sender_dependent_relayhost_maps")?,
            empty_sender_relayhost_key: config.str("empty_address_relayhost_maps_lookup_key"),
            sender_default_transport_maps: maps(config, "sender_dependent_default_transport_maps")?,
            transport_maps: maps(config, "transport_maps")?,
            transport_parent_style: parent_style(config, "transport_maps"),
            relocated_maps: maps(config, "relocated_maps")?,
            relocated_prefix: config.bool("relocated_prefix_enable"),
        })
    }

    /// True when any table file changed since it was opened (the daemon
    /// then exits when idle, and master starts a fresh one).
    pub(crate) fn tables_changed(&self) -> bool {
        self.transport_maps.changed()
            || self.relocated_maps.changed()
            || self.sender_relayhost_maps.changed()
            || self.sender_default_transport_maps.changed()
    }
}

/// The addresses an inet_interfaces-style value names: `all` is every
/// interface address, `loopback-only` the loopback addresses; otherwise
/// addresses and host names (resolved now, before the jail).
pub(crate) fn interface_addresses(value: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for word in tables::split_list(value) {
        match word.to_lowercase().as_str() {
            "all" => out.extend(all_interfaces()),
            "loopback-only" => {
                out.push(IpAddr::from([127, 0, 0, 1]));
                out.push(IpAddr::from(std::net::Ipv6Addr::LOCALHOST));
            }
            w => {
                let bare = w.trim_start_matches('[').trim_end_matches(']');
                if let Ok(ip) = bare.parse::<IpAddr>() {
                    out.push(ip);
                } else {
                    use std::net::ToSocketAddrs;
                    match (bare, 0u16).to_socket_addrs() {
                        Ok(addrs) => out.extend(addrs.map(|a| a.ip())),
                        Err(e) => maillog::warning!("interface {w}: {e}"),
                    }
                }
            }
        }
    }
    out
}

fn all_interfaces() -> Vec<IpAddr> {
    let mut out = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            let Some(sa) = a.address else { continue };
            if let Some(v4) = sa.as_sockaddr_in() {
                out.push(IpAddr::V4(v4.ip()));
            } else if let Some(v6) = sa.as_sockaddr_in6() {
                out.push(IpAddr::V6(v6.ip()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_are_parsed() {
        let a = interface_addresses("loopback-only, 192.0.2.1 [::2]");
        assert!(a.contains(&IpAddr::from([127, 0, 0, 1])));
        assert!(a.contains(&IpAddr::from([192, 0, 2, 1])));
        assert!(a.contains(&"::2".parse::<IpAddr>().unwrap()));
        assert!(interface_addresses("all").contains(&IpAddr::from([127, 0, 0, 1])));
    }
}
