//! mynetworks as Postfix computes it when main.cf does not set it: the
//! loopback networks plus, by mynetworks_style, this machine's own
//! addresses (`host`), its interfaces' subnets (`subnet`) or their
//! class A/B/C networks (`class`). `postconf -d` prints it and smtpd's
//! permit_mynetworks uses it.

use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

/// The mynetworks value computed from mynetworks_style on this machine,
/// once per process and style (as Postfix computes it once at process
/// start): every parameter whose default names $mynetworks expands it,
/// and each computation asks the kernel for the interface list.
pub fn from_style(style: &str) -> String {
    static COMPUTED: Mutex<Option<(String, String)>> = Mutex::new(None);
    let mut computed = COMPUTED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((s, value)) = computed.as_ref()
        && s == style
    {
        return value.clone();
    }
    let value = compute(style);
    *computed = Some((style.to_string(), value.clone()));
    value
}

fn compute(style: &str) -> String {
    let mut out: Vec<String> = vec![
        "127.0.0.0/8".into(),
        "[::ffff:127.0.0.0]/104".into(),
        "[::1]/128".into(),
    ];
    let style = style.trim().to_ascii_lowercase();
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return out.join(" ");
    };
    for ifa in addrs {
        let (Some(addr), netmask) = (ifa.address, ifa.netmask) else {
            continue;
        };
        let (ip, plen) = if let Some(s) = addr.as_sockaddr_in() {
            let m = netmask
                .as_ref()
                .and_then(|m| m.as_sockaddr_in())
                .map(|m| u32::from(m.ip()).count_ones() as u8)
                .unwrap_or(32);
            (IpAddr::V4(s.ip()), m)
        } else if let Some(s) = addr.as_sockaddr_in6() {
            let m = netmask
                .as_ref()
                .and_then(|m| m.as_sockaddr_in6())
                .map(|m| u128::from(m.ip()).count_ones() as u8)
                .unwrap_or(128);
            (IpAddr::V6(s.ip()), m)
        } else {
            continue;
        };
        if ip.is_loopback() {
            continue;
        }
        let prefix = match (style.as_str(), ip) {
            ("subnet", _) => plen,
            ("class", IpAddr::V4(v4)) => match v4.octets()[0] {
                0..=127 => 8,
                128..=191 => 16,
                192..=223 => 24,
                _ => 32,
            },
            ("class", IpAddr::V6(_)) => plen,
            _ => {
                if ip.is_ipv4() {
                    32
                } else {
                    128
                }
            }
        };
        let net = mask(ip, prefix);
        let item = match net {
            IpAddr::V4(v4) => format!("{v4}/{prefix}"),
            IpAddr::V6(v6) => format!("[{v6}]/{prefix}"),
        };
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out.join(" ")
}

/// `addr` with all but the first `prefix` bits cleared.
pub fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix.min(32)))
            };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix.min(128)))
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_start_with_loopback_and_host_adds_single_addresses() {
        for style in ["host", "subnet", "class", "HOST "] {
            let v = from_style(style);
            assert!(
                v.starts_with("127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128"),
                "{style}: {v}"
            );
        }
        for item in from_style("host").split(' ').skip(3) {
            assert!(item.ends_with("/32") || item.ends_with("/128"), "{item}");
        }
    }

    #[test]
    fn masks() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(mask(ip("192.0.2.77"), 24), ip("192.0.2.0"));
        assert_eq!(mask(ip("192.0.2.77"), 0), ip("0.0.0.0"));
        assert_eq!(mask(ip("2001:db8::1"), 32), ip("2001:db8::"));
    }
}
