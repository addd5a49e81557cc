//! Resolving a recipient to transport, nexthop and address class
//! (Postfix's resolve.c and transport.c).
//!
//! The loop strips every local domain off the end of the address (saving
//! the last one), and after each strip undoes routing in what is left:
//! `user%remote` (allow_percent_hack), `remote!user` (swap_bangpath) and a
//! quoted local part holding `@`, `%` or `!` (resolve_dequoted_address) are
//! rewritten to `user@remote` and resolved again. So `user%remote@local`,
//! `remote!user@local` and `"user@remote"@local` resolve to the remote
//! destination, never to local delivery, and smtpd's relay check sees them
//! as remote. The loop ends at a remote domain (classes alias, virtual,
//! relay, default) or when no domain is left (class local, with the saved
//! local domain put back, or `@$myhostname`).
//!
//! Then: the main.cf `transport:nexthop` form sets the nexthop;
//! transport_maps overrides (full address, address without extension,
//! domain and parent domains, `*`); relocated_maps turns the recipient into
//! an `error` delivery with `5.1.6 User has moved to ...`. A table that
//! fails sets DEFER: the client tries again later.

use std::net::IpAddr;

use proto::rewrite::{AddressClass, flags};

use crate::rewrite::{Appends, rewrite_tree, split_at_last};
use crate::settings::Settings;

/// The resolver's answer (the fields of [`proto::rewrite::Reply::Resolved`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// master.cf service.
    pub(crate) transport: String,
    /// Its next hop.
    pub(crate) nexthop: String,
    /// The recipient in internal form.
    pub(crate) recipient: String,
    /// The address class.
    pub(crate) class: AddressClass,
    /// [`proto::rewrite::flags`] bits.
    pub(crate) flags: u32,
    /// Why, for DEFER, ERROR, RELOCATED and the alias class.
    pub(crate) reason: String,
}

impl Resolved {
    fn defer(recipient: &str, reason: String) -> Resolved {
        Resolved {
            transport: "retry".to_string(),
            nexthop: format!("4.3.0 {reason}"),
            recipient: recipient.to_string(),
            class: AddressClass::Default,
            flags: flags::DEFER,
            reason,
        }
    }
}

/// The error transport's text for an unknown user of a virtual alias domain.
pub(crate) const ALIAS_UNKNOWN: &str = "User unknown in virtual alias table";

/// Resolves one recipient.
pub(crate) fn resolve(sender: &str, addr: &str, s: &Settings) -> Resolved {
    let local_ctx = Appends {
        origin: &s.myorigin,
        domain: &s.mydomain,
    };
    let mut cur = addr.to_string();
    let mut saved: Option<String> = None;
    let mut remote = false;
    let limit = addr.len().saturating_add(100);
    let mut rounds = 0usize;
    loop {
        rounds += 1;
        if rounds > limit {
            maillog::warning!(
                "resolve_addr: <{}>: giving up after {rounds} iterations",
                maillog::printable(addr, 100)
            );
            break;
        }
        crate::rewrite::strip_trailing_dot(&mut cur);
        if s.resolve_null_domain && cur.ends_with('@') {
            cur.pop();
        }
        // Strip (and save) @domain if local.
        if let Some(at) = cur.rfind('@') {
            let d = cur.get(at + 1..).unwrap_or("").to_string();
            if !d.is_empty() {
                match resolve_local(&d, s) {
                    Err(e) => {
                        return Resolved::defer(addr, format!("mydestination lookup failure: {e}"));
                    }
                    Ok(false) => {
                        remote = true;
                        break;
                    }
                    Ok(true) => {}
                }
            }
            cur.truncate(at);
            saved = Some(d);
        }
        let quoted = address::needs_quoting(&cur);
        // foo%bar, site!user: rewrite to user@domain and try again.
        if !quoted
            && ((s.swap_bangpath && cur.contains('!')) || (s.percent_hack && cur.contains('%')))
        {
            cur = rewrite_tree(&cur, true, local_ctx, s);
            continue;
        }
        // A quoted local part with routing operators: crack it open.
        if quoted && s.resolve_dequoted {
            let oper = cur
                .rfind('@')
                .or_else(|| s.percent_hack.then(|| cur.rfind('%')).flatten())
                .or_else(|| s.swap_bangpath.then(|| cur.rfind('!')).flatten());
            if let Some(i) = oper {
                if cur.get(i..=i) == Some("%") {
                    cur.replace_range(i..=i, "@");
                }
                cur = rewrite_tree(&cur, true, local_ctx, s);
                continue;
            }
        }
        // An empty local part becomes the local MAILER-DAEMON.
        if cur.is_empty() {
            cur = s.empty_address_recipient.clone();
            continue;
        }
        if saved.is_none() {
            cur = format!("{cur}@{}", s.myhostname);
            continue;
        }
        break;
    }
    if !remote {
        match &saved {
            Some(d) => {
                cur.push('@');
                cur.push_str(d);
            }
            None => {
                cur.push('@');
                cur.push_str(&s.myhostname);
            }
        }
    }
    classify(cur, remote, sender, s)
}

/// Address class, transport and nexthop for a resolved recipient.
fn classify(recipient: String, remote: bool, sender: &str, s: &Settings) -> Resolved {
    let (_, domain) = split_at_last(&recipient);
    let domain = domain.unwrap_or("").to_string();
    let mut out = Resolved {
        transport: String::new(),
        nexthop: String::new(),
        recipient: recipient.clone(),
        class: AddressClass::Default,
        flags: 0,
        reason: String::new(),
    };
    let valid = if domain.starts_with('[') {
        valid_literal(&domain)
    } else {
        valid_hostname(&domain)
    };
    if !valid {
        out.flags |= flags::ERROR;
        out.transport = "error".to_string();
        out.nexthop = "5.1.3 bad address syntax".to_string();
        out.reason = "bad address syntax".to_string();
        return out;
    }
    // A remote destination with routing operators before the domain,
    // whatever swap_bangpath and allow_percent_hack say here: the next hop
    // may honour them (Postfix's resolve.c sets RESOLVE_FLAG_ROUTED only
    // for non-local destinations; a local part such as `a%b` that stays
    // local is delivered here and relays nothing).
    let first_oper = recipient.find(['@', '!', '%']).unwrap_or(recipient.len());
    if remote && recipient.get(first_oper + 1..) != Some(domain.as_str()) {
        out.flags |= flags::ROUTED;
    }
    let fail = |what: &str, e: tables::Error| {
        Resolved::defer(&recipient, format!("{what} lookup failure: {e}"))
    };
    let channel = if remote {
        match s.virtual_alias_domains.matches(&domain) {
            Err(e) => return fail("virtual_alias_domains", e),
            Ok(true) => {
                out.class = AddressClass::Alias;
                out.flags |= flags::FINAL;
                out.reason = ALIAS_UNKNOWN.to_string();
                out.transport = "error".to_string();
                out.nexthop = format!("5.1.1 {ALIAS_UNKNOWN}");
                return relocated(out, s);
            }
            Ok(false) => {}
        }
        match s.virtual_mailbox_domains.matches(&domain) {
            Err(e) => return fail("virtual_mailbox_domains", e),
            Ok(true) => {
                out.class = AddressClass::Virtual;
                out.flags |= flags::FINAL;
                out.nexthop = domain.clone();
                s.virtual_transport.clone()
            }
            Ok(false) => {
                let channel = match s.relay_domains.matches(&domain) {
                    Err(e) => return fail("relay_domains", e),
                    Ok(true) => {
                        out.class = AddressClass::Relay;
                        s.relay_transport.clone()
                    }
                    Ok(false) => {
                        out.class = AddressClass::Default;
                        match sender_lookup(&s.sender_default_transport_maps, sender, "<>", s) {
                            Err(e) => return fail("sender_dependent_default_transport_maps", e),
                            Ok(Some(t)) => t,
                            Ok(None) => s.default_transport.clone(),
                        }
                    }
                };
                let key = s.empty_sender_relayhost_key.as_str();
                out.nexthop = match sender_lookup(&s.sender_relayhost_maps, sender, key, s) {
                    Err(e) => return fail("sender_dependent_relayhost_maps", e),
                    Ok(Some(relay)) => relay,
                    Ok(None) if s.relayhost.is_empty() => domain.clone(),
                    Ok(None) => s.relayhost.clone(),
                };
                channel
            }
        }
    } else {
        out.class = AddressClass::Local;
        out.flags |= flags::FINAL;
        out.nexthop = domain.clone();
        s.local_transport.clone()
    };
    // main.cf transport:nexthop.
    let (transport, hop) = match channel.split_once(':') {
        Some((t, h)) => (t.to_string(), Some(h)),
        None => (channel.clone(), None),
    };
    if let Some(h) = hop.filter(|h| !h.is_empty()) {
        out.nexthop = h.to_string();
    }
    if transport.is_empty() {
        maillog::warning!(
            "null transport is not allowed (class {:?}): check main.cf",
            out.class
        );
        return Resolved::defer(&recipient, "null transport is not allowed".to_string());
    }
    out.transport = transport;
    match transport_lookup(&recipient, &domain, s) {
        Err(e) => return fail("transport_maps", e),
        Ok(Some((t, h))) => update_entry(&mut out, &t, &h, &domain),
        Ok(None) => {}
    }
    relocated(out, s)
}

/// A sender-dependent table (sender_dependent_relayhost_maps,
/// sender_dependent_default_transport_maps): the sender's address, its
/// user@ and @domain keys as Postfix's mail_addr_find; the null sender
/// looks up `empty_key`. `DUNNO` (or an empty result) means no entry, so
/// that the global setting applies.
fn sender_lookup(
    maps: &tables::Maps,
    sender: &str,
    empty_key: &str,
    s: &Settings,
) -> Result<Option<String>, tables::Error> {
    if maps.is_empty() {
        return Ok(None);
    }
    let key = if sender.is_empty() { empty_key } else { sender };
    if key.is_empty() {
        return Ok(None);
    }
    let search = tables::AddressSearch {
        delimiters: &s.recipient_delimiter,
        local_domain: false,
        propagate_extension: false,
    };
    let found = if sender.is_empty() {
        maps.lookup(key)?
    } else {
        tables::find_address(maps, key, &search)?.map(|f| f.value)
    };
    Ok(found
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("DUNNO")))
}

/// relocated_maps, then the leading-dash check.
fn relocated(mut out: Resolved, s: &Settings) -> Resolved {
    if !s.relocated_maps.is_empty() {
        let search = tables::AddressSearch {
            delimiters: &s.recipient_delimiter,
            local_domain: out.class == AddressClass::Local,
            propagate_extension: false,
        };
        match tables::find_address(&s.relocated_maps, &out.recipient, &search) {
            Err(e) => {
                return Resolved::defer(
                    &out.recipient,
                    format!("relocated_maps lookup failure: {e}"),
                );
            }
            Ok(Some(found)) => {
                let text = if s.relocated_prefix {
                    format!("User has moved to {}", found.value)
                } else {
                    found.value
                };
                out.transport = "error".to_string();
                out.nexthop = format!("5.1.6 {text}");
                out.reason = text;
                out.flags |= flags::RELOCATED;
            }
            Ok(None) => {}
        }
    }
    if !s.allow_min_user && out.recipient.starts_with('-') {
        out.flags |= flags::ERROR;
        out.reason = "bad address syntax".to_string();
    }
    out
}

/// Applies a transport table entry: `transport:nexthop`, `transport`,
/// `:nexthop`, or `:` (no change).
fn update_entry(out: &mut Resolved, transport: &str, nexthop: &str, domain: &str) {
    if transport.is_empty() {
        if !nexthop.is_empty() {
            out.nexthop = nexthop.to_string();
        }
        return;
    }
    out.transport = transport.to_string();
    out.nexthop = if !nexthop.is_empty() {
        nexthop.to_string()
    } else if transport != "error" {
        domain.to_string()
    } else {
        "Address is undeliverable".to_string()
    };
}

/// Looks the recipient up in transport_maps: the full address, the address
/// without its extension, the domain and its parents (`.parent`, or
/// `parent` when transport_maps is in parent_domain_matches_subdomains),
/// then `*`. Returns the entry split at its first `:`.
fn transport_lookup(
    recipient: &str,
    domain: &str,
    s: &Settings,
) -> Result<Option<(String, String)>, tables::Error> {
    if s.transport_maps.is_empty() || recipient.is_empty() {
        return Ok(None);
    }
    let key = address::Address::from_internal(recipient).lookup_key();
    let mut keys: Vec<(String, bool)> = vec![(key, false)];
    if let Some((stripped, _)) = address::strip_extension(recipient, &s.recipient_delimiter) {
        keys.push((
            address::Address::from_internal(&stripped).lookup_key(),
            true,
        ));
    }
    let domain = domain.to_lowercase();
    let mut name = domain.as_str();
    loop {
        keys.push((name.to_string(), true));
        let Some(i) = name.get(1..).and_then(|r| r.find('.')).map(|i| i + 1) else {
            break;
        };
        let Some(next) = name.get(i..) else { break };
        name = if s.transport_parent_style {
            next.get(1..).unwrap_or("")
        } else {
            next
        };
        if name.is_empty() {
            break;
        }
    }
    keys.push(("*".to_string(), false));
    for (key, partial) in keys {
        for t in s.transport_maps.iter() {
            if partial && t.is_pattern() {
                continue;
            }
            if let Some(v) = t.lookup(&key)? {
                let v = v.trim();
                return Ok(Some(match v.split_once(':') {
                    Some((t, h)) => (t.trim().to_string(), h.trim().to_string()),
                    None => (v.to_string(), String::new()),
                }));
            }
        }
    }
    Ok(None)
}

/// Whether a domain is ours: mydestination, or an address literal of
/// inet_interfaces or proxy_interfaces (Postfix's resolve_local).
///
/// # Errors
/// A table in mydestination failed.
pub(crate) fn resolve_local(domain: &str, s: &Settings) -> Result<bool, tables::Error> {
    let d = domain.strip_suffix('.').unwrap_or(domain);
    if d.is_empty() || d.ends_with('.') {
        return Ok(false);
    }
    if s.mydestination.matches(d)? {
        return Ok(true);
    }
    if let Some(inner) = d.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let bare = strip_ipv6_tag(inner);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(s.own_addresses.contains(&ip));
        }
    }
    Ok(false)
}

fn strip_ipv6_tag(inner: &str) -> &str {
    match inner.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("ipv6:") => inner.get(5..).unwrap_or(""),
        _ => inner,
    }
}

/// `[192.0.2.1]` or `[IPv6:2001:db8::1]`.
fn valid_literal(d: &str) -> bool {
    let Some(inner) = d.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
        return false;
    };
    let bare = strip_ipv6_tag(inner);
    if bare.len() != inner.len() {
        bare.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        bare.parse::<std::net::Ipv4Addr>().is_ok()
    }
}

/// Postfix's valid_hostname: labels of letters, digits, `-` and `_` (and
/// UTF-8), at most 63 bytes each and 255 in all, no empty label, no label
/// starting or ending with `-`, and not all-numeric.
fn valid_hostname(d: &str) -> bool {
    if d.is_empty() || d.len() > 255 {
        return false;
    }
    let mut numeric = true;
    for label in d.split('.') {
        if label.is_empty() || label.len() > 63 || label.starts_with('-') || label.ends_with('-') {
            return false;
        }
        for c in label.chars() {
            if !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || !c.is_ascii()) {
                return false;
            }
            if !c.is_ascii_digit() {
                numeric = false;
            }
        }
    }
    !numeric
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite::tests::settings;

    fn r(addr: &str, s: &Settings) -> Resolved {
        resolve("sender@example.org", addr, s)
    }

    #[test]
    fn local_class_for_mydestination() {
        let s = settings("");
        let x = r("bob@host.example.com", &s);
        assert_eq!(x.class, AddressClass::Local);
        assert_eq!(x.transport, "local");
        assert_eq!(
            x.nexthop, "host.example.com",
            "local:$myhostname sets the nexthop"
        );
        assert_eq!(x.recipient, "bob@host.example.com");
        assert_eq!(x.flags, flags::FINAL);
        let y = r("Bob@LOCALHOST", &s);
        assert_eq!(y.class, AddressClass::Local);
        assert_eq!(y.recipient, "Bob@LOCALHOST");
        // A bare user gets @myhostname.
        let z = r("bob", &s);
        assert_eq!(z.recipient, "bob@host.example.com");
        assert_eq!(z.class, AddressClass::Local);
        // The empty address is the local MAILER-DAEMON.
        assert_eq!(r("", &s).recipient, "MAILER-DAEMON@host.example.com");
        // One trailing dot is ignored.
        assert_eq!(r("bob@localhost.", &s).class, AddressClass::Local);
    }

    #[test]
    fn interface_literals_are_local() {
        let s = settings("");
        let x = r("bob@[127.0.0.1]", &s);
        assert_eq!(x.class, AddressClass::Local);
        assert_eq!(x.recipient, "bob@[127.0.0.1]");
        assert_eq!(r("bob@[IPv6:::1]", &s).class, AddressClass::Local);
        let remote = r("bob@[192.0.2.7]", &s);
        assert_eq!(remote.class, AddressClass::Default);
        assert_eq!(remote.nexthop, "[192.0.2.7]");
        let proxy = settings("proxy_interfaces = 192.0.2.7");
        assert_eq!(r("bob@[192.0.2.7]", &proxy).class, AddressClass::Local);
        assert_ne!(r("bob@[300.1.1.1]", &s).flags & flags::ERROR, 0);
    }

    #[test]
    fn alias_virtual_relay_and_default_classes() {
        let s = settings(
            "virtual_alias_domains = alias.org\nvirtual_mailbox_domains = inline:{ vmail.org=x }\n\
             relay_domains = relay.org\n",
        );
        let a = r("u@alias.org", &s);
        assert_eq!(a.class, AddressClass::Alias);
        assert_eq!(a.transport, "error");
        assert_eq!(a.nexthop, "5.1.1 User unknown in virtual alias table");
        assert_ne!(a.flags & flags::FINAL, 0);
        let v = r("u@vmail.org", &s);
        assert_eq!(
            (v.class, v.transport.as_str(), v.nexthop.as_str()),
            (AddressClass::Virtual, "virtual", "vmail.org")
        );
        let rl = r("u@sub.relay.org", &s);
        assert_eq!(
            (rl.class, rl.transport.as_str(), rl.nexthop.as_str()),
            (AddressClass::Relay, "relay", "sub.relay.org")
        );
        assert_eq!(rl.flags & flags::FINAL, 0);
        let d = r("u@example.net", &s);
        assert_eq!(
            (d.class, d.transport.as_str(), d.nexthop.as_str()),
            (AddressClass::Default, "smtp", "example.net")
        );
        let rh = settings("relayhost = [smarthost.example]:587");
        let d = r("u@example.net", &rh);
        assert_eq!(d.nexthop, "[smarthost.example]:587");
        assert_eq!(d.recipient, "u@example.net");
    }

    #[test]
    fn sender_dependent_relayhost_and_default_transport() {
        let s = settings(
            "relayhost = [global.example]\n\
             relay_domains = relay.org\n\
             sender_dependent_relayhost_maps = inline:{ {a@one.example=[hop1]:2525}, \
             {@two.example=[hop2]}, {<>=[bounces.example]}, {x@one.example=DUNNO} }\n\
             sender_dependent_default_transport_maps = inline:{ {@two.example=slow:}, \
             {<>=nullsender} }\n\
             transport_maps = inline:{ {routed.net=mapped:} }\n",
        );
        let hop = |sender: &str, rcpt: &str| {
            let x = resolve(sender, rcpt, &s);
            (x.transport, x.nexthop)
        };
        assert_eq!(
            hop("a@one.example", "u@example.net"),
            ("smtp".into(), "[hop1]:2525".into())
        );
        assert_eq!(
            hop("b@two.example", "u@example.net"),
            ("slow".into(), "[hop2]".into())
        );
        assert_eq!(
            hop("", "u@example.net"),
            ("nullsender".into(), "[bounces.example]".into())
        );
        // DUNNO and no entry: the global relayhost.
        assert_eq!(
            hop("x@one.example", "u@example.net"),
            ("smtp".into(), "[global.example]".into())
        );
        assert_eq!(
            hop("c@other.example", "u@example.net"),
            ("smtp".into(), "[global.example]".into())
        );
        // relay_domains: the relay transport, but the sender's relayhost.
        assert_eq!(
            hop("b@two.example", "u@relay.org"),
            ("relay".into(), "[hop2]".into())
        );
        // transport_maps overrules the sender-dependent transport.
        assert_eq!(hop("b@two.example", "u@routed.net").0, "mapped");
        // Local mail is not affected.
        assert_eq!(hop("a@one.example", "bob@localhost").0, "local");
    }

    #[test]
    fn transport_maps_override_with_inheritance() {
        let s = settings(
            "transport_maps = inline:{ {a.org=slow:[mx.a.org]}, {b.org=fast}, {c.org=:[hop.c]}, \
             {.d.org=dsub:}, {user@e.org=special:x}, {*=wild:} }\nrecipient_delimiter = +\n",
        );
        let a = r("u@a.org", &s);
        assert_eq!(
            (a.transport.as_str(), a.nexthop.as_str()),
            ("slow", "[mx.a.org]")
        );
        let b = r("u@b.org", &s);
        assert_eq!(
            (b.transport.as_str(), b.nexthop.as_str()),
            ("fast", "b.org")
        );
        let c = r("u@c.org", &s);
        assert_eq!(
            (c.transport.as_str(), c.nexthop.as_str()),
            ("smtp", "[hop.c]")
        );
        let d = r("u@x.y.d.org", &s);
        assert_eq!(
            (d.transport.as_str(), d.nexthop.as_str()),
            ("dsub", "x.y.d.org")
        );
        let d0 = r("u@d.org", &s);
        assert_eq!(d0.transport, "wild", ".d.org matches subdomains only");
        let e = r("user+tag@e.org", &s);
        assert_eq!((e.transport.as_str(), e.nexthop.as_str()), ("special", "x"));
        let l = r("bob@localhost", &s);
        assert_eq!(
            (l.transport.as_str(), l.nexthop.as_str()),
            ("wild", "localhost")
        );
        let p = settings(
            "transport_maps = inline:{ {d.org=dsub:} }\nparent_domain_matches_subdomains = transport_maps\n",
        );
        assert_eq!(r("u@x.d.org", &p).transport, "dsub");
    }

    #[test]
    fn relocated_users_get_the_error_transport() {
        let s = settings("relocated_maps = inline:{ {gone@localhost=new@example.net} }");
        let x = r("gone@localhost", &s);
        assert_eq!(x.transport, "error");
        assert_eq!(x.nexthop, "5.1.6 User has moved to new@example.net");
        assert_eq!(x.reason, "User has moved to new@example.net");
        assert_ne!(x.flags & flags::RELOCATED, 0);
        assert_eq!(r("other@localhost", &s).flags & flags::RELOCATED, 0);
    }

    #[test]
    fn table_failures_defer() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("t");
        std::fs::write(&db, "a.org x:\n").unwrap();
        tables::hash::build(&db, tables::ParseOptions::default()).unwrap();
        let s = settings(&format!("transport_maps = hash:{}", db.display()));
        assert_eq!(r("u@a.org", &s).transport, "x");
        // A key the table refuses (too long) is a lookup failure: defer.
        let long = format!("{}@a.org", "u".repeat(tables::MAX_KEY_LENGTH + 1));
        let x = r(&long, &s);
        assert_ne!(x.flags & flags::DEFER, 0);
        assert!(x.reason.contains("transport_maps"), "{}", x.reason);
    }

    #[test]
    fn routed_local_parts_resolve_to_the_remote_destination() {
        let s = settings("");
        // user%remote@local: percent hack after stripping the local domain.
        let p = r("user%remote.example@localhost", &s);
        assert_eq!(p.recipient, "user@remote.example");
        assert_eq!(p.class, AddressClass::Default);
        assert_eq!(p.nexthop, "remote.example");
        assert_eq!(p.flags & flags::FINAL, 0);
        // remote!user@local: bang path.
        let b = r("remote.example!user@localhost", &s);
        assert_eq!(b.recipient, "user@remote.example");
        assert_eq!(b.class, AddressClass::Default);
        // "user@remote"@local: quoted local part cracked open.
        let q = r("user@remote.example@localhost", &s);
        assert_eq!(q.recipient, "user@remote.example");
        assert_eq!(q.class, AddressClass::Default);
        // Several local domains are stripped in turn.
        let m = r("user%localhost@host.example.com", &s);
        assert_eq!(m.recipient, "user@localhost");
        assert_eq!(m.class, AddressClass::Local);
        // Routed to a remote domain through a remote domain: ROUTED.
        let rr = r("user%other.example@remote.example", &s);
        assert_eq!(rr.class, AddressClass::Default);
        assert_eq!(rr.nexthop, "remote.example");
        assert_ne!(rr.flags & flags::ROUTED, 0);
        assert_eq!(r("user@remote.example", &s).flags & flags::ROUTED, 0);
    }

    #[test]
    fn routing_is_left_alone_when_disabled() {
        let s =
            settings("allow_percent_hack = no\nswap_bangpath = no\nresolve_dequoted_address = no");
        let p = r("user%remote.example@localhost", &s);
        assert_eq!(p.class, AddressClass::Local);
        assert_eq!(p.recipient, "user%remote.example@localhost");
        assert_eq!(p.flags & flags::ROUTED, 0, "local delivery relays nothing");
        let b = r("remote.example!user@localhost", &s);
        assert_eq!(b.class, AddressClass::Local);
        let q = r("user@remote.example@localhost", &s);
        assert_eq!(q.class, AddressClass::Local);
        assert_eq!(q.recipient, "user@remote.example@localhost");
    }

    #[test]
    fn bad_domains_are_errors() {
        let s = settings("");
        assert_ne!(r("u@", &s).flags & flags::ERROR, 0);
        assert_ne!(r("u@bad..example", &s).flags & flags::ERROR, 0);
        assert_ne!(r("u@1.2.3.4", &s).flags & flags::ERROR, 0);
        assert_ne!(r("-opt@localhost", &s).flags & flags::ERROR, 0);
        let n = settings("resolve_null_domain = yes");
        assert_eq!(r("u@", &n).recipient, "u@host.example.com");
    }

    #[test]
    fn hostname_validation() {
        assert!(valid_hostname("a-b.example"));
        assert!(!valid_hostname("-a.example"));
        assert!(!valid_hostname("a_b c"));
        assert!(!valid_hostname("123.456"));
        assert!(valid_literal("[IPv6:2001:db8::1]"));
        assert!(!valid_literal("[2001:db8::1]"));
    }
}
