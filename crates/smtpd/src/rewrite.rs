//! local_header_rewrite_clients: which SMTP clients get the local rewrite
//! context (cleanup appends `@$myorigin` to bare addresses and adds the
//! missing Date, Message-Id and From headers, as for local mail), as
//! Postfix's smtpd_check_rewrite decides at MAIL FROM. The others get the
//! remote context.
//!
//! Understood: `permit_inet_interfaces` (the client is on this host: a
//! loopback address, or the address it connected to), `permit_mynetworks`,
//! `permit_sasl_authenticated` and `static:all`. Other entries (client
//! certificate checks, `check_address_map`) match no client and are logged
//! once at start.

use crate::settings::{in_network, parse_networks};
use config::Config;
use std::net::IpAddr;

/// The parsed local_header_rewrite_clients.
#[derive(Debug, Clone, Default)]
pub struct LocalClients {
    all: bool,
    inet_interfaces: bool,
    mynetworks: Option<Vec<(IpAddr, u8)>>,
    sasl: bool,
}

impl LocalClients {
    /// Reads local_header_rewrite_clients (and mynetworks when named).
    pub fn from_config(cfg: &Config) -> LocalClients {
        let mut out = LocalClients::default();
        let value = cfg.str("local_header_rewrite_clients");
        for word in value
            .split([',', ' ', '\t', '\n'])
            .filter(|w| !w.is_empty())
        {
            match word.to_ascii_lowercase().as_str() {
                "permit_inet_interfaces" => out.inet_interfaces = true,
                "permit_mynetworks" => {
                    out.mynetworks = Some(parse_networks(&cfg.str("mynetworks")))
                }
                "permit_sasl_authenticated" => out.sasl = true,
                "static:all" | "permit" => out.all = true,
                other => maillog::warning!(
                    "local_header_rewrite_clients: {} is not supported here; it matches no client",
                    maillog::printable(other, 100)
                ),
            }
        }
        out
    }

    /// True when a client at `addr`, connected to `local`, authenticated
    /// or not, gets the local rewrite context.
    pub fn matches(&self, addr: IpAddr, local: Option<IpAddr>, authenticated: bool) -> bool {
        self.all
            || (self.sasl && authenticated)
            || (self.inet_interfaces && (addr.is_loopback() || Some(addr) == local))
            || self
                .mynetworks
                .as_ref()
                .is_some_and(|nets| nets.iter().any(|(net, bits)| in_network(addr, *net, *bits)))
    }

    /// The rewrite_context attribute for cleanup.
    pub fn context(
        &self,
        addr: IpAddr,
        local: Option<IpAddr>,
        authenticated: bool,
    ) -> &'static str {
        if self.matches(addr, local, authenticated) {
            "local"
        } else {
            "remote"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clients(value: &str) -> LocalClients {
        let cfg = Config::from_text(
            std::path::Path::new("/nonexistent"),
            &format!("mynetworks = 192.0.2.0/24\nlocal_header_rewrite_clients = {value}\n"),
        )
        .unwrap();
        LocalClients::from_config(&cfg)
    }

    #[test]
    fn postfix_default_is_this_host_only() {
        let d = clients("permit_inet_interfaces");
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let far: IpAddr = "198.51.100.7".parse().unwrap();
        let me: IpAddr = "203.0.113.1".parse().unwrap();
        assert_eq!(d.context(lo, Some(lo), false), "local");
        assert_eq!(d.context("::1".parse().unwrap(), None, false), "local");
        assert_eq!(d.context(far, Some(me), false), "remote");
        assert_eq!(d.context(me, Some(me), false), "local");
        let n = clients("permit_mynetworks, permit_sasl_authenticated");
        assert_eq!(
            n.context("192.0.2.9".parse().unwrap(), None, false),
            "local"
        );
        assert_eq!(n.context(far, None, true), "local");
        assert_eq!(n.context(lo, None, false), "remote");
        assert_eq!(clients("").context(lo, None, false), "remote");
        assert_eq!(clients("static:all").context(far, None, false), "local");
    }
}
