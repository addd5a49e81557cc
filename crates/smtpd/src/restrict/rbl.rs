//! reject_rbl_client: DNS block lists (Postfix's reject_rbl_addr).
//!
//! The client address is reversed (IPv4 octets; IPv6 nibbles) and the
//! list's domain appended: `2.0.0.127.zen.example`. An A record means
//! listed, unless the list was named as `domain=pattern` and no answer
//! matches the pattern (each octet a number, or `[n;m..k]` ranges). The TXT
//! record, if any, becomes `$rbl_reason`. No answer (timeout, SERVFAIL)
//! gives the client the benefit of the doubt, with a warning, as Postfix.
//! The reply comes from default_rbl_reply with `$rbl_code`
//! (maps_rbl_reject_code), `$rbl_class`, `$rbl_what`, `$rbl_domain`,
//! `$rbl_reason` / `$rbl_txt` and `${rbl_reason?text}`.

use std::net::IpAddr;

use dns::Resolver;

/// Longest TXT text kept (Postfix's RBL_TXT_LIMIT).
const TXT_LIMIT: usize = 500;

/// A listing found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// The TXT text, maybe empty.
    pub(crate) reason: String,
}

/// The DNS name to ask for `addr` in `domain`.
pub(crate) fn query_name(addr: IpAddr, domain: &str) -> String {
    match addr {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.{domain}", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::new();
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s.push_str(domain);
            s
        }
    }
}

/// Looks `addr` up in the list `spec` (`domain` or `domain=pattern`).
pub(crate) fn lookup(resolver: &Resolver, spec: &str, addr: IpAddr) -> Option<Listed> {
    let (domain, pattern) = match spec.split_once('=') {
        Some((d, p)) => (d, Some(p)),
        None => (spec, None),
    };
    let addr = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
        a => a,
    };
    let name = query_name(addr, domain);
    let found: Vec<String> = match resolver.a(&name) {
        Ok(a) => a.iter().map(|a| a.to_string()).collect(),
        Err(e) if e.is_temporary() => {
            maillog::warning!("{name}: RBL lookup error: {e}");
            return None;
        }
        Err(_) => return None,
    };
    if found.is_empty() {
        return None;
    }
    if let Some(p) = pattern
        && !found.iter().any(|a| ip_match(p, a))
    {
        return None;
    }
    let reason = match resolver.txt(&name) {
        Ok(t) => {
            let mut s = t.join(" / ");
            if s.len() > TXT_LIMIT {
                let mut cut = TXT_LIMIT;
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                s.truncate(cut);
            }
            s
        }
        _ => String::new(),
    };
    Some(Listed { reason })
}

/// Postfix's ip_match: each of four octets is a number or `[a;b..c]`.
pub(crate) fn ip_match(pattern: &str, addr: &str) -> bool {
    let pats = split_octets(pattern);
    let octs: Vec<&str> = addr.split('.').collect();
    if pats.len() != 4 || octs.len() != 4 {
        return false;
    }
    pats.iter().zip(octs).all(|(p, o)| {
        let Ok(v) = o.parse::<u8>() else { return false };
        octet_match(p, v)
    })
}

fn split_octets(p: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for c in p.chars() {
        match c {
            '[' => {
                depth += 1;
                cur.push(c);
            }
            ']' => {
                depth -= 1;
                cur.push(c);
            }
            '.' if depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn octet_match(p: &str, v: u8) -> bool {
    if let Some(inner) = p.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        return inner.split(';').any(|alt| match alt.split_once("..") {
            Some((a, b)) => match (a.parse::<u8>(), b.parse::<u8>()) {
                (Ok(a), Ok(b)) => a <= v && v <= b,
                _ => false,
            },
            None => alt.parse::<u8>() == Ok(v),
        });
    }
    p.parse::<u8>() == Ok(v)
}

/// Expands the reply template (default_rbl_reply).
pub(crate) fn expand_reply(
    template: &str,
    code: u16,
    class: &str,
    what: &str,
    domain: &str,
    reason: &str,
) -> String {
    let value = |name: &str| -> Option<String> {
        Some(match name {
            "rbl_code" => code.to_string(),
            "rbl_class" => class.to_string(),
            "rbl_what" => what.to_string(),
            "rbl_domain" => domain.to_string(),
            "rbl_reason" | "rbl_txt" => reason.to_string(),
            _ => return None,
        })
    };
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(rest.get(..i).unwrap_or_default());
        let after = rest.get(i + 1..).unwrap_or_default();
        if let Some(body) = after.strip_prefix('{').or_else(|| after.strip_prefix('(')) {
            let close = if after.starts_with('{') { '}' } else { ')' };
            let Some(end) = body.find(close) else {
                out.push_str(after);
                rest = "";
                break;
            };
            let inner = body.get(..end).unwrap_or_default();
            rest = body.get(end + 1..).unwrap_or_default();
            if let Some((name, text)) = inner.split_once('?') {
                if value(name).is_some_and(|v| !v.is_empty()) {
                    out.push_str(text.replace("$rbl_reason", reason).as_str());
                }
            } else if let Some((name, text)) = inner.split_once(':') {
                if value(name).is_none_or(|v| v.is_empty()) {
                    out.push_str(text);
                }
            } else {
                out.push_str(&value(inner).unwrap_or_default());
            }
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            let name = after.get(..len).unwrap_or_default();
            out.push_str(&value(name).unwrap_or_default());
            rest = after.get(len..).unwrap_or_default();
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_names() {
        assert_eq!(
            query_name("192.0.2.1".parse().unwrap(), "zen.example"),
            "1.2.0.192.zen.example"
        );
        let q = query_name("2001:db8::1".parse().unwrap(), "v6.example");
        assert!(q.starts_with("1.0.0.0.0.0.0.0"), "{q}");
        assert!(q.ends_with("8.b.d.0.1.0.0.2.v6.example"), "{q}");
    }

    #[test]
    fn reply_filters() {
        assert!(ip_match("127.0.0.2", "127.0.0.2"));
        assert!(!ip_match("127.0.0.2", "127.0.0.3"));
        assert!(ip_match("127.0.0.[2..11]", "127.0.0.10"));
        assert!(ip_match("127.0.0.[2;4;8..9]", "127.0.0.4"));
        assert!(!ip_match("127.0.0.[2;4;8..9]", "127.0.0.5"));
    }

    #[test]
    fn default_reply_expands_like_postfix() {
        let t = "$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked using $rbl_domain${rbl_reason?; $rbl_reason}";
        assert_eq!(
            expand_reply(t, 554, "Client host", "192.0.2.1", "rbl.test", "listed"),
            "554 Service unavailable; Client host [192.0.2.1] blocked using rbl.test; listed"
        );
        assert_eq!(
            expand_reply(t, 554, "Client host", "192.0.2.1", "rbl.test", ""),
            "554 Service unavailable; Client host [192.0.2.1] blocked using rbl.test"
        );
    }
}
