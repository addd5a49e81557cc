//! Restrictions that ask trivial-rewrite, DNS or the recipient tables:
//! relay authorization, unknown domains, RBLs, unlisted recipients.

use super::*;

impl<'r, 'f> Eval<'r, 'f> {
    /// Rewrites (local context) and resolves through trivial-rewrite.
    pub(super) fn resolve(&self, addr: &str) -> Result<Resolved, String> {
        self.r
            .rewrite
            .resolve(&self.r.queue_dir, self.f.sender.unwrap_or_default(), addr)
    }

    /// resolve(), with failures as Postfix's reject_dict_retry.
    pub(super) fn resolve_or_retry(&mut self, addr: &str) -> Result<Resolved, Status> {
        if let Some((_, r)) = self.resolved.iter().find(|(a, _)| a == addr) {
            return Ok(r.clone());
        }
        match self.resolve(addr) {
            Ok(r) if r.flags & flags::DEFER != 0 => Err(self.dict_retry(addr)),
            Ok(r) => {
                self.resolved.push((addr.to_string(), r.clone()));
                Ok(r)
            }
            Err(e) => {
                maillog::warning!(
                    "resolve {}: {}: {e}",
                    maillog::printable(addr, 100),
                    proto::rewrite::SERVICE
                );
                Err(self.dict_retry(addr))
            }
        }
    }

    /// Permit when the recipient is ours or in relay_domains, not routed.
    pub(super) fn permit_auth_destination(&mut self, rcpt: &str) -> Status {
        let res = match self.resolve_or_retry(rcpt) {
            Ok(r) => r,
            Err(s) => return s,
        };
        if !res.address.contains('@') {
            return Status::Permit;
        }
        if !self.r.allow_untrusted_routing && res.flags & flags::ROUTED != 0 {
            return Status::Dunno;
        }
        match res.class {
            AddressClass::Local
            | AddressClass::Alias
            | AddressClass::Virtual
            | AddressClass::Relay => Status::Permit,
            AddressClass::Default => Status::Dunno,
        }
    }

    pub(super) fn unknown_address(&mut self, addr: &str, class: &str, dsn: &str) -> Status {
        let res = match self.resolve_or_retry(addr) {
            Ok(r) => r,
            Err(s) => return s,
        };
        let Some(domain) = res
            .address
            .rfind('@')
            .and_then(|i| res.address.get(i + 1..))
        else {
            return Status::Dunno;
        };
        if res.flags & flags::FINAL != 0
            || res.class != AddressClass::Default && res.class != AddressClass::Relay
        {
            return Status::Dunno;
        }
        if domain.starts_with('[') && domain.ends_with(']') {
            return Status::Dunno;
        }
        let mut retry = None;
        for t in [dns::Type::MX, dns::Type::A, dns::Type::AAAA] {
            match self.r.resolver.lookup(domain, t) {
                Ok(_) => return Status::Dunno,
                Err(e) if e.is_temporary() => retry = Some(e.to_string()),
                Err(_) => {}
            }
        }
        if let Some(why) = retry {
            maillog::warning!("{domain}: MX or address lookup error: {why}");
            if self.defer_if_permit.is_none() {
                self.defer_if_permit = Some(make_reply(
                    450,
                    dsn,
                    format!("<{addr}>: {class} rejected: Domain not found"),
                ));
            }
            return Status::Dunno;
        }
        let code = self.r.codes.unknown_addr;
        self.reject(
            code,
            dsn,
            format!("<{addr}>: {class} rejected: Domain not found"),
        )
    }

    pub(super) fn rbl_client(&mut self, spec: &str) -> Status {
        let Some(listed) = rbl::lookup(&self.r.resolver, spec, self.f.client_addr) else {
            return Status::Dunno;
        };
        let domain = spec.split('=').next().unwrap_or(spec);
        let text = rbl::expand_reply(
            &self.r.default_rbl_reply,
            self.r.codes.rbl,
            "Client host",
            &self.f.client_addr.to_string(),
            domain,
            &listed.reason,
        );
        let ok = text.len() > 4
            && matches!(text.as_bytes().first(), Some(b'4' | b'5'))
            && text
                .as_bytes()
                .get(1..3)
                .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
            && text.as_bytes().get(3) == Some(&b' ');
        if !ok {
            maillog::warning!("rbl response code configuration error: {text}");
            return self.reject(450, "4.7.1", "Service unavailable".into());
        }
        let code: u16 = text.get(..3).and_then(|c| c.parse().ok()).unwrap_or(554);
        let rest = text.get(4..).unwrap_or_default();
        let (dsn, msg) = match rest.split_once(' ') {
            Some((d, m)) if access::is_dsn(d) => (d.to_string(), m.to_string()),
            _ => ("4.7.1".to_string(), rest.to_string()),
        };
        self.reject(code, &dsn_fix(&dsn, "Client host"), msg)
    }

    /// reject_unlisted_recipient (Postfix's check_rcpt_maps).
    pub(super) fn unlisted_recipient(&mut self, fr: Frame<'_>) -> Status {
        let Some(rcpt) = self.f.recipient else {
            return Status::Dunno;
        };
        let res = match self.resolve_or_retry(rcpt) {
            Ok(r) => r,
            Err(s) => return s,
        };
        if !res.address.contains('@') || res.flags & flags::ROUTED != 0 {
            return Status::Dunno;
        }
        let m = &self.r.rcpt_maps;
        let delims = self.r.delimiters.clone();
        let search = |local: bool| tables::AddressSearch {
            delimiters: &delims,
            local_domain: local,
            propagate_extension: false,
        };
        let found_in = |maps: &Result<tables::Maps, String>, local: bool| -> Result<bool, ()> {
            match maps {
                Ok(mp) => tables::find_address(mp, &res.address, &search(local))
                    .map(|f| f.is_some())
                    .map_err(|_| ()),
                Err(_) => Err(()),
            }
        };
        let is_local = res.class == AddressClass::Local;
        for maps in [&m.virtual_alias, &m.canonical] {
            match found_in(maps, is_local) {
                Ok(true) => return Status::Dunno,
                Ok(false) => {}
                Err(()) => return self.dict_retry(rcpt),
            }
        }
        let c = &self.r.codes;
        let (code, table, known) = match res.class {
            AddressClass::Local => {
                if m.local.is_empty() {
                    return Status::Dunno;
                }
                match self.local_known(&res.address) {
                    Ok(k) => (c.local_rcpt, "local recipient table", k),
                    Err(()) => return self.dict_retry(rcpt),
                }
            }
            AddressClass::Virtual => match found_in(&m.virtual_mailbox, false) {
                Ok(k) => (c.virt_mailbox, "virtual mailbox table", k),
                Err(()) => return self.dict_retry(rcpt),
            },
            AddressClass::Alias => (c.virt_alias, "virtual alias table", false),
            AddressClass::Relay => {
                if m.relay.as_ref().is_ok_and(|r| r.is_empty()) {
                    return Status::Dunno;
                }
                match found_in(&m.relay, false) {
                    Ok(k) => (c.relay_rcpt, "relay recipient table", k),
                    Err(()) => return self.dict_retry(rcpt),
                }
            }
            AddressClass::Default => return Status::Dunno,
        };
        if known {
            return Status::Dunno;
        }
        let text = if m.show_table {
            format!("User unknown in {table}")
        } else {
            "User unknown".to_string()
        };
        self.reject(
            code,
            "5.1.1",
            format!("<{rcpt}>: {} rejected: {text}", fr.class),
        )
    }

    /// The local class: local_recipient_maps, unix:passwd.byname from the
    /// snapshot taken before chroot.
    pub(super) fn local_known(&self, addr: &str) -> Result<bool, ()> {
        let m = &self.r.rcpt_maps;
        let search = tables::AddressSearch {
            delimiters: &self.r.delimiters,
            local_domain: true,
            propagate_extension: false,
        };
        let local = addr.rfind('@').and_then(|i| addr.get(..i)).unwrap_or(addr);
        let local = local.to_lowercase();
        let base = address::split_extension(&local, &self.r.delimiters)
            .map(|e| e.base.to_string())
            .unwrap_or_else(|| local.clone());
        for t in &m.local {
            let Ok(t) = t else { return Err(()) };
            if m.local_passwd
                && t.spec() == "unix:passwd.byname"
                && let Some(users) = &m.local_users
            {
                if users.contains(&local) || users.contains(&base) {
                    return Ok(true);
                }
                continue;
            }
            match tables::find_address(std::slice::from_ref(t), addr, &search) {
                Ok(Some(_)) => return Ok(true),
                Ok(None) => {}
                Err(_) => return Err(()),
            }
        }
        Ok(false)
    }
}
