//! Restriction checks on worker threads (HELO, MAIL, RCPT, DATA, VRFY,
//! ETRN), their answers, and the reject and action log lines.

use super::*;

impl Conn {
    pub(super) fn facts_owned(
        &self,
        helo: Option<String>,
        addr: Option<String>,
        stage: Stage,
    ) -> OwnedFacts {
        let sender = match stage {
            Stage::Sender => addr.clone(),
            _ => self.txn.as_ref().map(|t| t.sender.clone()),
        };
        OwnedFacts {
            client_name: self.peer.name.clone(),
            client_addr: self.peer.addr,
            helo: helo.or_else(|| self.session.helo_name().map(str::to_string)),
            sender,
            recipient: match stage {
                Stage::Rcpt => addr,
                // At DATA the only recipient, when there is exactly one (Postfix).
                Stage::Data => self
                    .txn
                    .as_ref()
                    .filter(|t| t.nrcpt == 1)
                    .and_then(|t| t.first_rcpt.clone()),
                _ => None,
            },
            sasl_username: self.session.authenticated().map(str::to_string),
            tls: self.session.tls_active(),
            session: self.policy_info(),
        }
    }

    /// What a policy request needs beyond [`Facts`].
    fn policy_info(&self) -> crate::restrict::policy::SessionInfo {
        let t = self.txn.as_ref();
        crate::restrict::policy::SessionInfo {
            protocol_name: self.session.protocol().to_string(),
            queue_id: t.and_then(|t| t.queue_id.clone()).unwrap_or_default(),
            recipient_count: t.map(|t| t.nrcpt).unwrap_or_default(),
            sasl_sender: t.and_then(|t| t.params.auth.clone()).unwrap_or_default(),
            size: t.and_then(|t| t.params.size).unwrap_or_default(),
            server_address: self.peer.local.map(|a| a.to_string()).unwrap_or_default(),
            // Unique per connection and transaction, as Postfix's
            // pid.time.counter.
            instance: format!(
                "{:x}.{:x}.{:x}",
                std::process::id(),
                self.key,
                t.map(|t| t.number).unwrap_or_default()
            ),
            ..Default::default()
        }
    }

    pub(super) fn check(
        &mut self,
        shared: &Shared,
        registry: &Registry,
        stage: Stage,
        helo: Option<String>,
        addr: Option<String>,
    ) {
        let facts = self.facts_owned(helo, addr, stage);
        if let Some(answer) = self.answer_without_lookup(shared, stage, &facts) {
            self.wait = Wait::Worker;
            self.answer(answer, registry, shared);
            return;
        }
        let r = Arc::clone(&shared.restrictions);
        let settings = Arc::clone(&shared.settings);
        let peer = self.peer.clone();
        let queue_dir = shared.queue_dir.clone();
        self.wait = Wait::Worker;
        shared.pool.run(self.key, move || {
            if stage == Stage::Sender
                && let Some(anvil) = &settings.anvil
                && let Some(reply) = crate::anvil::message(&settings, anvil, &peer)
            {
                return Answer::MessageRate(reply);
            }
            let f = facts.borrow();
            match stage {
                Stage::Helo => Answer::Helo(r.at_helo(&f)),
                Stage::Sender => Answer::Sender(r.at_mail(&f)),
                Stage::Rcpt => Answer::Rcpt(settings.filters.check_recipient(
                    r.at_rcpt(&f),
                    &f,
                    &queue_dir,
                )),
                Stage::Data => Answer::Data(r.at_data(&f)),
            }
        });
    }

    /// The verdict at `stage` when it needs no table, DNS, policy or
    /// anvil lookup (HELO and MAIL under smtpd_delay_reject without a
    /// message rate to count, DATA without smtpd_data_restrictions): it
    /// is then given here, in the event loop, which spares a worker's
    /// round trip (two thread wake-ups) a command. None otherwise.
    fn answer_without_lookup(
        &self,
        shared: &Shared,
        stage: Stage,
        facts: &OwnedFacts,
    ) -> Option<Answer> {
        let r = &shared.restrictions;
        let counted = shared.settings.anvil.is_some()
            && crate::anvil::counts_messages(&shared.settings, &self.peer);
        match stage {
            Stage::Helo if r.helo_mail_without_lookup() => {
                Some(Answer::Helo(r.at_helo(&facts.borrow())))
            }
            Stage::Sender if r.helo_mail_without_lookup() && !counted => {
                Some(Answer::Sender(r.at_mail(&facts.borrow())))
            }
            Stage::Data if r.data_without_lookup() => {
                Some(Answer::Data(r.at_data(&facts.borrow())))
            }
            _ => None,
        }
    }

    /// VRFY runs the recipient restrictions on the address, as Postfix
    /// does, and answers 252 when they pass.
    pub(super) fn verify(&mut self, shared: &Shared, text: String) {
        let addr = address::parse_path(&text)
            .map(|p| p.address.to_internal())
            .unwrap_or_else(|_| text.trim_matches(['<', '>']).to_string());
        let mut facts = self.facts_owned(None, Some(addr.clone()), Stage::Rcpt);
        facts.sender = None;
        let r = Arc::clone(&shared.restrictions);
        self.wait = Wait::Worker;
        shared.pool.run(self.key, move || {
            let f = facts.borrow();
            match r.at_rcpt(&f) {
                Verdict::Reject(reply) => Answer::Verify(reply),
                _ => Answer::Verify(Reply::new(252, Some("2.0.0"), addr)),
            }
        });
    }

    /// ETRN: smtpd_etrn_restrictions, then the flush service delivers the
    /// deferred mail for that domain only (Postfix's etrn_cmd replies).
    pub(super) fn etrn(&mut self, shared: &Shared, domain: String) {
        let facts = self.facts_owned(None, None, Stage::Helo);
        let r = Arc::clone(&shared.restrictions);
        let settings = Arc::clone(&shared.settings);
        let queue_dir = shared.queue_dir.clone();
        let namaddr = self.namaddr.clone();
        self.wait = Wait::Worker;
        shared.pool.run(self.key, move || {
            if let Verdict::Reject(reply) = r.at_etrn(&facts.borrow(), &domain) {
                return Answer::Etrn(reply, true);
            }
            let shown = maillog::printable(&domain, 100);
            let reply = match proto::flush::send_site(&queue_dir, &settings.flush_service, &domain)
            {
                Ok(proto::flush::Reply::Ok) => Reply::new(250, None, "Queuing started"),
                Ok(proto::flush::Reply::Deny) => {
                    maillog::warning!("reject: ETRN {shown}... from {namaddr}");
                    Reply::new(459, None, format!("<{shown}>: service unavailable"))
                }
                Ok(proto::flush::Reply::Bad) => {
                    maillog::warning!("bad ETRN {shown}... from {namaddr}");
                    Reply::new(458, None, "Unable to queue messages")
                }
                Ok(proto::flush::Reply::Fail) | Err(_) => {
                    maillog::warning!("unable to talk to fast flush service");
                    Reply::new(458, None, "Unable to queue messages")
                }
            };
            Answer::Etrn(reply, false)
        });
    }

    /// A worker's answer arrived.
    pub fn answer(&mut self, answer: Answer, registry: &Registry, shared: &Shared) {
        if self.wait != Wait::Worker {
            return;
        }
        self.wait = Wait::None;
        let acts = match answer {
            Answer::Connect { name, refusal } => {
                if let Some(n) = name {
                    self.peer.name = n;
                    self.namaddr = self.peer.namaddr();
                    maillog::info!("connect from {}", self.namaddr);
                }
                match refusal {
                    None => self.greet(&shared.settings),
                    Some((reply, close)) => self.refuse(&reply, close),
                }
                Vec::new()
            }
            Answer::Helo(v) => {
                let v = self.verdict("HELO", v, None);
                self.session.helo_checked(v)
            }
            Answer::Sender(v) => {
                let v = self.verdict("MAIL", v, None);
                self.session.sender_checked(v)
            }
            Answer::Data(v) => {
                let v = self.verdict("DATA", v, None);
                self.session.data_checked(v)
            }
            Answer::MessageRate(reply) => self.session.sender_checked(Err(reply)),
            Answer::Etrn(reply, refused) => {
                if refused {
                    self.log_reject("ETRN", &reply, None);
                }
                self.session.answer(reply)
            }
            Answer::EndOfData(v) => {
                let rcpt = self
                    .txn
                    .as_ref()
                    .filter(|t| t.nrcpt == 1)
                    .and_then(|t| t.first_rcpt.clone());
                if let Err(reply) = self.verdict("END-OF-MESSAGE", v, rcpt.as_deref())
                    && let Some(t) = self.txn.as_mut()
                {
                    // Nothing may be queued: the cleanup stream is aborted.
                    t.failed = Some(reply);
                }
                self.finish_end(shared);
                Vec::new()
            }
            Answer::Rcpt(v) => {
                let rcpt = self.txn.as_mut().and_then(|t| t.checking.take());
                let mut v = self.verdict("RCPT", v, rcpt.as_deref());
                if v.is_ok() && !self.txn.as_ref().is_some_and(|t| t.discard) {
                    v = self.open_cleanup(registry, shared);
                }
                self.session.recipient_checked(v)
            }
            Answer::Verify(reply) => self.session.answer(reply),
            Answer::Auth(step, ex) => {
                self.sasl = Some(ex);
                self.session.auth_step(step)
            }
        };
        self.perform_all(acts, registry, shared);
    }

    /// The connect-time check refused the client: its reply instead of the
    /// greeting, then hang up (anvil) or answer 503 to every command.
    pub(super) fn refuse(&mut self, reply: &Reply, close: bool) {
        self.greeted = true;
        self.send(reply);
        if close {
            self.closing = true;
        } else {
            self.log_reject("CONNECT", reply, None);
            let who = self.namaddr.clone();
            self.session.deny_access(&who);
        }
    }

    /// Turns a verdict into the session's answer, logging rejections and
    /// noting HOLD and DISCARD on the transaction.
    pub(super) fn verdict(
        &mut self,
        cmd: &str,
        v: Verdict,
        rcpt: Option<&str>,
    ) -> Result<(), Reply> {
        match v {
            Verdict::Ok => Ok(()),
            Verdict::Reject(reply) => {
                self.log_reject(cmd, &reply, rcpt);
                Err(reply)
            }
            Verdict::Hold(reason) => {
                self.log_action("hold", cmd, &reason, rcpt);
                if let Some(t) = self.txn.as_mut() {
                    t.hold = true;
                }
                Ok(())
            }
            Verdict::Discard(reason) => {
                self.log_action("discard", cmd, &reason, rcpt);
                if let Some(t) = self.txn.as_mut() {
                    t.discard = true;
                }
                Ok(())
            }
            Verdict::Actions(a) => {
                if let Some(reason) = &a.hold {
                    self.log_action("hold", cmd, reason, rcpt);
                    if let Some(t) = self.txn.as_mut() {
                        t.hold = true;
                    }
                }
                self.note_actions(*a);
                Ok(())
            }
        }
    }

    pub(super) fn log_tail(&self, rcpt: Option<&str>) -> String {
        let mut tail = String::new();
        if let Some(t) = &self.txn {
            tail.push_str(&format!(" from=<{}>", maillog::printable(&t.sender, 300)));
        }
        if let Some(r) = rcpt {
            tail.push_str(&format!(" to=<{}>", maillog::printable(r, 300)));
        }
        tail.push_str(&format!(" proto={}", self.session.protocol()));
        if let Some(h) = self.session.helo_name() {
            tail.push_str(&format!(" helo=<{}>", maillog::printable(h, 100)));
        }
        tail
    }

    pub(super) fn queue_label(&self) -> String {
        self.txn
            .as_ref()
            .and_then(|t| t.queue_id.clone())
            .unwrap_or_else(|| "NOQUEUE".into())
    }

    pub(super) fn log_reject(&self, cmd: &str, reply: &Reply, rcpt: Option<&str>) {
        let text = reply.to_string();
        maillog::info!(
            "{}: reject: {cmd} from {}: {};{}",
            self.queue_label(),
            self.namaddr,
            maillog::printable(text.trim_end(), 300),
            self.log_tail(rcpt)
        );
    }

    pub(super) fn log_action(&self, what: &str, cmd: &str, reason: &str, rcpt: Option<&str>) {
        maillog::info!(
            "{}: {what}: {cmd} from {}: {};{}",
            self.queue_label(),
            self.namaddr,
            maillog::printable(reason, 300),
            self.log_tail(rcpt)
        );
    }
}
