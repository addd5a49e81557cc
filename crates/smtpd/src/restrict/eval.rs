//! Evaluating restriction lists (Postfix's generic_checks): the stages,
//! the generic restrictions and the reject bookkeeping (warn_if_reject,
//! defer_if_permit, defer_if_reject, soft_bounce).

use super::*;

impl<'r, 'f> Eval<'r, 'f> {
    pub(super) fn new(r: &'r Restrictions, f: &'f Facts<'f>, stage: &'static str) -> Eval<'r, 'f> {
        Eval {
            r,
            f,
            stage,
            recursion: 0,
            warn_if_reject: 0,
            defer_if_permit: None,
            defer_if_reject: None,
            hold: None,
            discard: None,
            actions: Actions::default(),
            resolved: Vec::new(),
            etrn: None,
            size: None,
        }
    }

    pub(super) fn namaddr(&self) -> String {
        format!("{}[{}]", self.f.client_name, self.f.client_addr)
    }

    pub(super) fn client(&mut self) -> Status {
        let name = self.namaddr();
        self.list(
            0,
            Frame {
                name: &name,
                class: "Client host",
                def_acl: Some(Check::Client),
            },
        )
    }

    pub(super) fn helo(&mut self) -> Status {
        let name = self.f.helo.unwrap_or_default().to_string();
        self.list(
            1,
            Frame {
                name: &name,
                class: "Helo command",
                def_acl: Some(Check::Helo),
            },
        )
    }

    pub(super) fn sender(&mut self) -> Status {
        let name = self.f.sender.unwrap_or_default().to_string();
        self.list(
            2,
            Frame {
                name: &name,
                class: "Sender address",
                def_acl: Some(Check::Sender),
            },
        )
    }

    pub(super) fn rcpt(&mut self) -> Status {
        if self.r.delay_reject {
            for stage in [Self::client, Self::helo, Self::sender] {
                let s = stage(self);
                if matches!(s, Status::Reject(_)) {
                    return s;
                }
            }
        }
        let name = self.f.recipient.unwrap_or_default().to_string();
        let frame = Frame {
            name: &name,
            class: "Recipient address",
            def_acl: Some(Check::Recipient),
        };
        for idx in [3, 4] {
            let s = self.list(idx, frame);
            if matches!(s, Status::Reject(_)) {
                return s;
            }
        }
        let s = self.finish_defer_if_permit(Status::Dunno);
        if matches!(s, Status::Reject(_)) {
            return s;
        }
        if self.r.reject_unlisted_recipient && self.discard.is_none() {
            let s = self.unlisted_recipient(frame);
            if matches!(s, Status::Reject(_)) {
                return s;
            }
        }
        Status::Dunno
    }

    /// Turns a permit into the deferral that defer_if_permit recorded.
    pub(super) fn finish_defer_if_permit(&mut self, s: Status) -> Status {
        match (&s, self.defer_if_permit.take()) {
            (Status::Reject(_), _) | (_, None) => s,
            (_, Some(reply)) => Status::Reject(reply),
        }
    }

    pub(super) fn verdict(&self, s: Status) -> Verdict {
        match s {
            Status::Reject(r) => Verdict::Reject(r),
            _ => {
                let a = &self.actions;
                let extra = a.filter.is_some()
                    || a.redirect.is_some()
                    || !a.bcc.is_empty()
                    || !a.prepend.is_empty();
                match (&self.discard, &self.hold) {
                    (Some(d), _) => Verdict::Discard(d.clone()),
                    (None, hold) if extra => Verdict::Actions(Box::new(Actions {
                        hold: hold.clone(),
                        ..a.clone()
                    })),
                    (None, Some(h)) => Verdict::Hold(h.clone()),
                    (None, None) => Verdict::Ok,
                }
            }
        }
    }

    /// Evaluates main.cf list `idx` (Postfix's generic_checks).
    pub(super) fn list(&mut self, idx: usize, frame: Frame<'_>) -> Status {
        let r = self.r;
        let Some(rules) = r.lists.get(idx) else {
            return Status::Dunno;
        };
        self.rules(rules, frame)
    }

    pub(super) fn rules(&mut self, rules: &[Rule], frame: Frame<'_>) -> Status {
        self.recursion += 1;
        let mut status = Status::Dunno;
        for rule in rules {
            if self.discard.is_some() {
                break;
            }
            if *rule == Rule::WarnIfReject {
                if self.warn_if_reject == 0 {
                    self.warn_if_reject = self.recursion;
                }
                continue;
            }
            status = self.apply(rule, frame);
            if self.warn_if_reject >= self.recursion {
                self.warn_if_reject = 0;
            }
            if status != Status::Dunno {
                break;
            }
        }
        self.recursion -= 1;
        status
    }

    /// Postfix's smtpd_check_reject: soft_bounce, defer_if_reject,
    /// warn_if_reject, and the DSN class made to agree with the code.
    pub(super) fn reject(&mut self, code: u16, dsn: &str, text: String) -> Status {
        let mut code = code;
        if self.r.soft_bounce && code >= 500 {
            code -= 100;
        }
        let mut reply = make_reply(code, dsn, text);
        if code >= 500
            && let Some(d) = &self.defer_if_reject
        {
            reply = d.clone();
        }
        if self.warn_if_reject > 0 {
            let size = self.size.map(|n| format!(" size={n}")).unwrap_or_default();
            maillog::info!(
                "NOQUEUE: reject_warning: {} from {}: {}; from=<{}> to=<{}> helo=<{}>{size}",
                self.stage,
                self.namaddr(),
                reply.to_string().trim_end(),
                maillog::printable(self.f.sender.unwrap_or_default(), 100),
                maillog::printable(self.f.recipient.unwrap_or_default(), 100),
                maillog::printable(self.f.helo.unwrap_or_default(), 100)
            );
            return Status::Dunno;
        }
        Status::Reject(reply)
    }

    pub(super) fn server_error(&mut self) -> Status {
        Status::Reject(make_reply(
            451,
            "4.3.5",
            "Server configuration error".into(),
        ))
    }

    pub(super) fn dict_retry(&mut self, name: &str) -> Status {
        Status::Reject(make_reply(
            451,
            "4.3.0",
            format!("<{name}>: Temporary lookup failure"),
        ))
    }

    pub(super) fn apply(&mut self, rule: &Rule, fr: Frame<'_>) -> Status {
        let f = self.f;
        let c = self.r.codes.clone();
        match rule {
            Rule::Permit => Status::Permit,
            Rule::Reject => self.reject(
                c.reject,
                "5.7.1",
                format!("<{}>: {} rejected: Access denied", fr.name, fr.class),
            ),
            Rule::Defer => self.reject(
                c.defer,
                "4.3.2",
                format!("<{}>: {} rejected: Try again later", fr.name, fr.class),
            ),
            Rule::DeferIfPermit => {
                if self.defer_if_permit.is_none() {
                    self.defer_if_permit = Some(make_reply(
                        450,
                        "4.7.0",
                        format!(
                            "<{}>: {} rejected: defer_if_permit requested",
                            fr.name, fr.class
                        ),
                    ));
                }
                Status::Dunno
            }
            Rule::DeferIfReject => {
                if self.defer_if_reject.is_none() {
                    self.defer_if_reject = Some(make_reply(
                        450,
                        "4.7.0",
                        format!(
                            "<{}>: {} rejected: defer_if_reject requested",
                            fr.name, fr.class
                        ),
                    ));
                }
                Status::Dunno
            }
            Rule::WarnIfReject | Rule::RejectUnauthPipelining => Status::Dunno,
            Rule::RejectPlaintextSession => {
                if f.tls {
                    Status::Dunno
                } else {
                    self.reject(
                        c.plaintext,
                        "4.7.1",
                        "Session encryption is required".into(),
                    )
                }
            }
            Rule::PermitMynetworks => {
                if self.r.in_mynetworks(f.client_addr) {
                    Status::Permit
                } else {
                    Status::Dunno
                }
            }
            Rule::PermitSaslAuthenticated => {
                if f.sasl_username.is_some_and(|u| !u.is_empty()) {
                    Status::Permit
                } else {
                    Status::Dunno
                }
            }
            Rule::RejectUnknownClientHostname => {
                if f.client_name.eq_ignore_ascii_case("unknown") {
                    self.reject(
                        c.unknown_client,
                        "4.7.25",
                        format!(
                            "Client host rejected: cannot find your hostname, [{}]",
                            f.client_addr
                        ),
                    )
                } else {
                    Status::Dunno
                }
            }
            Rule::RejectRblClient(domain) => self.rbl_client(domain),
            Rule::RejectInvalidHeloHostname => match f.helo {
                None => Status::Dunno,
                Some(h) if h.starts_with('[') => self.invalid_hostaddr(h),
                Some(h) => {
                    let t = truncate_dot(h);
                    if valid_hostname(t) || valid_hostaddr(t) {
                        Status::Dunno
                    } else {
                        self.reject(
                            c.bad_name,
                            "5.5.2",
                            format!("<{h}>: Helo command rejected: Invalid name"),
                        )
                    }
                }
            },
            Rule::RejectNonFqdnHeloHostname => match f.helo {
                None => Status::Dunno,
                Some(h) if h.starts_with('[') => self.invalid_hostaddr(h),
                Some(h) => {
                    let t = truncate_dot(h);
                    if valid_hostname(t) && t.contains('.') {
                        Status::Dunno
                    } else {
                        self.reject(
                            c.non_fqdn,
                            "5.5.2",
                            format!("<{h}>: Helo command rejected: need fully-qualified hostname"),
                        )
                    }
                }
            },
            Rule::RejectUnverified(which) => self.unverified(*which),
            Rule::RejectNonFqdnSender => match f.sender {
                Some(s) if !s.is_empty() => self.non_fqdn_address(s, "Sender address"),
                _ => Status::Dunno,
            },
            Rule::RejectNonFqdnRecipient => match f.recipient {
                Some(r) if !r.is_empty() => self.non_fqdn_address(r, "Recipient address"),
                _ => Status::Dunno,
            },
            Rule::RejectUnknownSenderDomain => match f.sender {
                Some(s) if !s.is_empty() => self.unknown_address(s, "Sender address", "4.1.8"),
                _ => Status::Dunno,
            },
            Rule::RejectUnknownRecipientDomain => match f.recipient {
                Some(r) => self.unknown_address(r, "Recipient address", "4.1.2"),
                None => Status::Dunno,
            },
            Rule::RejectUnauthDestination | Rule::DeferUnauthDestination => {
                let Some(rcpt) = f.recipient else {
                    return Status::Dunno;
                };
                match self.permit_auth_destination(rcpt) {
                    Status::Permit => Status::Dunno,
                    Status::Reject(r) => Status::Reject(r),
                    Status::Dunno => {
                        let (code, dsn) = if *rule == Rule::RejectUnauthDestination {
                            (c.relay, "5.7.1")
                        } else {
                            // Postfix: relay_domains_reject_code - 100 (454).
                            (c.relay.saturating_sub(100), "4.7.1")
                        };
                        self.reject(code, dsn, format!("<{rcpt}>: Relay access denied"))
                    }
                }
            }
            Rule::PermitAuthDestination => match f.recipient {
                Some(rcpt) => self.permit_auth_destination(rcpt),
                None => Status::Dunno,
            },
            Rule::RejectUnlistedRecipient => {
                if f.recipient.is_some() {
                    self.unlisted_recipient(fr)
                } else {
                    Status::Dunno
                }
            }
            Rule::Access(check, idx) => self.access(*check, *idx, fr.def_acl),
            Rule::Policy(arg) => self.policy(arg, fr),
            Rule::ConfigError => {
                maillog::warning!(
                    "{}: {}",
                    self.namaddr(),
                    self.r.broken.as_deref().unwrap_or("configuration error")
                );
                self.server_error()
            }
            Rule::Class(idx) => {
                let r = self.r;
                let Some((_, rules)) = r.classes.get(*idx) else {
                    return self.server_error();
                };
                if self.recursion > MAX_RECURSION {
                    maillog::warning!("restriction classes nest too deeply");
                    return self.server_error();
                }
                self.rules(rules, fr)
            }
        }
    }

    pub(super) fn invalid_hostaddr(&mut self, h: &str) -> Status {
        let inner = h
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .unwrap_or(h);
        if valid_hostaddr(inner) {
            Status::Dunno
        } else {
            let code = self.r.codes.bad_name;
            self.reject(
                code,
                "5.5.2",
                format!("<{h}>: Helo command rejected: invalid ip address"),
            )
        }
    }

    pub(super) fn non_fqdn_address(&mut self, addr: &str, class: &str) -> Status {
        let domain = addr
            .rfind('@')
            .and_then(|i| addr.get(i + 1..))
            .unwrap_or("");
        if domain.starts_with('[') && domain.ends_with(']') {
            return Status::Dunno;
        }
        let d = truncate_dot(domain);
        if !d.is_empty() && valid_hostname(d) && d.contains('.') {
            return Status::Dunno;
        }
        let code = self.r.codes.non_fqdn;
        self.reject(
            code,
            "4.5.2",
            format!("<{addr}>: {class} rejected: need fully-qualified address"),
        )
    }
}
