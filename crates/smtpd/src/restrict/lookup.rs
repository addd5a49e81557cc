//! check_*_access: the keys looked up for each check, and what a table
//! value means (Postfix's check_table_result).

use super::*;

/// Why a check_*_access table gave no answer.
pub(super) enum TableError {
    /// It could not be opened (a configuration error: Postfix's
    /// DICT_ERR_CONFIG, 451 4.3.5).
    Unusable,
    /// The lookup failed for now (DICT_ERR_RETRY, 451 4.3.0).
    Retry,
}

impl<'r, 'f> Eval<'r, 'f> {
    /// check_{client,helo,sender,recipient}_access.
    pub(super) fn access(&mut self, check: Check, idx: usize, def_acl: Option<Check>) -> Status {
        let f = self.f;
        let r = self.r;
        let (name, class, keys, routed) = match check {
            Check::Client => {
                let mut keys = Vec::new();
                keys.extend(access::domain_keys(f.client_name, r.parent_style));
                keys.extend(access::addr_keys(&f.client_addr.to_string()));
                (self.namaddr(), "Client host", keys, false)
            }
            Check::Etrn => {
                let Some(d) = self.etrn.clone() else {
                    return Status::Dunno;
                };
                let keys = access::domain_keys(&d, r.parent_style);
                (d, "Etrn command", keys, false)
            }
            Check::Helo => {
                let Some(h) = f.helo else {
                    return Status::Dunno;
                };
                (
                    h.to_string(),
                    "Helo command",
                    access::domain_keys(h, r.parent_style),
                    false,
                )
            }
            Check::Sender | Check::Recipient => {
                let (addr, class) = if check == Check::Sender {
                    (f.sender, "Sender address")
                } else {
                    (f.recipient, "Recipient address")
                };
                let Some(addr) = addr else {
                    return Status::Dunno;
                };
                if addr.is_empty() {
                    (
                        String::new(),
                        class,
                        vec![(r.null_key.clone(), false)],
                        false,
                    )
                } else {
                    let res = match self.resolve_or_retry(addr) {
                        Ok(x) => x,
                        Err(s) => return s,
                    };
                    let routed = check == Check::Recipient
                        && !r.allow_untrusted_routing
                        && res.flags & flags::ROUTED != 0;
                    (
                        addr.to_string(),
                        class,
                        access::mail_keys(&res.address, &r.delimiters, r.parent_style),
                        routed,
                    )
                }
            }
        };
        let value = match self.table_find(idx, &keys) {
            Ok(Some(v)) => v,
            Ok(None) => return Status::Dunno,
            Err(TableError::Unusable) => {
                return self.table_result(
                    "451 4.3.5 Server configuration error",
                    &name,
                    class,
                    def_acl,
                );
            }
            // As Postfix's check_access: a lookup that failed for now (a
            // database down) is a temporary lookup failure.
            Err(TableError::Retry) => return self.dict_retry(&name),
        };
        let s = self.table_result(&value, &name, class, def_acl);
        if routed && s == Status::Permit {
            Status::Dunno
        } else {
            s
        }
    }

    pub(super) fn table_find(
        &self,
        idx: usize,
        keys: &[Key],
    ) -> Result<Option<String>, TableError> {
        let Some((spec, t)) = self.r.tables.get(idx) else {
            return Err(TableError::Unusable);
        };
        let Ok(t) = t else {
            return Err(TableError::Unusable);
        };
        for (key, partial) in keys {
            if *partial && t.is_pattern() {
                continue;
            }
            match t.lookup(key) {
                Ok(Some(v)) => return Ok(Some(v)),
                Ok(None) => {}
                Err(e) => {
                    maillog::warning!("{spec}: table lookup problem: {e}");
                    return Err(TableError::Retry);
                }
            }
        }
        Ok(None)
    }

    /// What a table value means (Postfix's check_table_result).
    pub(super) fn table_result(
        &mut self,
        value: &str,
        name: &str,
        class: &str,
        def_acl: Option<Check>,
    ) -> Status {
        let c = self.r.codes.clone();
        let fix = |dsn: &str| dsn_fix(dsn, class);
        let or = |t: &str, d: &str| {
            if t.is_empty() {
                d.to_string()
            } else {
                t.to_string()
            }
        };
        match access::parse_action(value) {
            Action::Permit => Status::Permit,
            Action::Dunno => Status::Dunno,
            Action::Reject { dsn, text } => self.reject(
                c.map_reject,
                &fix(&dsn),
                format!("<{name}>: {class} rejected: {}", or(&text, "Access denied")),
            ),
            Action::Defer { dsn, text } => self.reject(
                c.map_defer,
                &fix(&dsn),
                format!("<{name}>: {class} rejected: {}", or(&text, "Access denied")),
            ),
            Action::Code { code, dsn, text } => self.reject(
                code,
                &fix(&dsn),
                format!("<{name}>: {class} rejected: {text}"),
            ),
            Action::DeferIfPermit { dsn, text } => {
                if self.defer_if_permit.is_none() {
                    self.defer_if_permit = Some(make_reply(
                        c.map_defer,
                        &fix(&dsn),
                        format!(
                            "<{name}>: {class} rejected: {}",
                            or(&text, "Service unavailable")
                        ),
                    ));
                }
                Status::Dunno
            }
            Action::DeferIfReject { dsn, text } => {
                if self.defer_if_reject.is_none() {
                    self.defer_if_reject = Some(make_reply(
                        c.map_defer,
                        &fix(&dsn),
                        format!(
                            "<{name}>: {class} rejected: {}",
                            or(&text, "Service unavailable")
                        ),
                    ));
                }
                Status::Dunno
            }
            Action::Hold(text) => {
                if self.hold.is_none() {
                    self.hold = Some(format!(
                        "<{name}>: {class} {}",
                        or(&text, "triggers HOLD action")
                    ));
                }
                Status::Dunno
            }
            Action::Discard(text) => {
                self.discard = Some(format!(
                    "<{name}>: {class} {}",
                    or(&text, "triggers DISCARD action")
                ));
                Status::Permit
            }
            Action::Log { warn, text } => {
                let what = if warn { "warn" } else { "info" };
                maillog::info!(
                    "NOQUEUE: {what}: {} from {}: {}; from=<{}> to=<{}>",
                    self.stage,
                    self.namaddr(),
                    maillog::printable(&text, 200),
                    maillog::printable(self.f.sender.unwrap_or_default(), 100),
                    maillog::printable(self.f.recipient.unwrap_or_default(), 100)
                );
                Status::Dunno
            }
            Action::Filter(text) => {
                self.log_action("filter", name, class, &format!("FILTER {text}"));
                self.actions.filter = Some(text);
                Status::Dunno
            }
            Action::Redirect(text) => {
                self.log_action("redirect", name, class, &format!("REDIRECT {text}"));
                self.actions.redirect = Some(text);
                Status::Dunno
            }
            Action::Bcc(text) => {
                self.log_action("bcc", name, class, &format!("BCC {text}"));
                if !self.actions.bcc.contains(&text) {
                    self.actions.bcc.push(text);
                }
                Status::Dunno
            }
            Action::Prepend(text) => {
                self.actions.prepend.push(text);
                Status::Dunno
            }
            Action::Unsupported(what) => {
                maillog::warning!("access table action {what} is not supported; ignored");
                Status::Dunno
            }
            Action::Restrictions(list) => {
                if self.recursion > MAX_RECURSION {
                    maillog::warning!("access table entry {list} causes unreasonable recursion");
                    return self.server_error();
                }
                let names: Vec<String> = self.r.classes.iter().map(|(n, _)| n.clone()).collect();
                match parse_list(&list, def_acl, None, &names) {
                    Ok(rules) => self.rules(
                        &rules,
                        Frame {
                            name,
                            class: class_static(class),
                            def_acl,
                        },
                    ),
                    Err(e) => {
                        maillog::warning!("access table entry \"{list}\": {e}");
                        self.server_error()
                    }
                }
            }
        }
    }

    /// Postfix's log line for FILTER, REDIRECT and BCC:
    /// `NOQUEUE: filter: RCPT from host[addr]: <name>: Class triggers FILTER x; from=<> to=<>`.
    fn log_action(&self, what: &str, name: &str, class: &str, action: &str) {
        maillog::info!(
            "NOQUEUE: {what}: {} from {}: <{}>: {class} triggers {}; from=<{}> to=<{}>",
            self.stage,
            self.namaddr(),
            maillog::printable(name, 100),
            maillog::printable(action, 200),
            maillog::printable(self.f.sender.unwrap_or_default(), 100),
            maillog::printable(self.f.recipient.unwrap_or_default(), 100)
        );
    }
}
