//! The cleanup conversation for the current message: Begin at the first
//! recipient, content, End (after smtpd_end_of_data_restrictions) or
//! Abort, and cleanup's replies.

use super::*;

impl Conn {
    /// Opens the cleanup conversation at the first accepted recipient.
    pub(super) fn open_cleanup(
        &mut self,
        registry: &Registry,
        shared: &Shared,
    ) -> Result<(), Reply> {
        if self.cleanup.is_some() {
            return Ok(());
        }
        let Some(txn) = self.txn.as_ref() else {
            return Ok(());
        };
        let mut c = match CleanupClient::connect(&shared.queue_dir) {
            Ok(c) => c,
            Err(e) => {
                maillog::warning!("connect to {}: {e}", proto::cleanup::SERVICE);
                return Err(Reply::new(
                    451,
                    Some("4.3.0"),
                    "Error: queue file write error",
                ));
            }
        };
        if let Err(e) = registry.register(
            c.socket(),
            self.cleanup_token,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            maillog::warning!("register cleanup socket: {e}");
            return Err(Reply::new(
                451,
                Some("4.3.0"),
                "Error: queue file write error",
            ));
        }
        let begin = self.begin_request(txn, &shared.settings);
        c.send(&Request::Begin(begin));
        self.cleanup = Some(c);
        self.flush_actions();
        Ok(())
    }

    pub(super) fn begin_request(&self, txn: &Txn, s: &Settings) -> Begin {
        let mut a: Vec<(String, String)> = vec![
            ("client_name".into(), self.peer.name.clone()),
            ("client_address".into(), self.peer.addr.to_string()),
            ("protocol".into(), self.session.protocol().into()),
            (
                "rewrite_context".into(),
                s.local_rewrite
                    .context(
                        self.peer.addr,
                        self.peer.local,
                        self.session.authenticated().is_some(),
                    )
                    .into(),
            ),
        ];
        if let Some(h) = self.session.helo_name() {
            a.push(("helo_name".into(), h.to_string()));
        }
        if let Some(u) = self.session.authenticated() {
            a.push(("sasl_username".into(), u.to_string()));
        }
        a.push(("client_port".into(), self.peer.port.to_string()));
        let tls = self.tls.as_ref().and_then(|t| t.info());
        if let Some(info) = &tls {
            // For the milters' {tls_version}, {cipher}, {cipher_bits}.
            a.push(("tls_version".into(), info.protocol.clone()));
            a.push(("tls_cipher".into(), info.cipher.clone()));
            a.push(("tls_cipher_bits".into(), info.bits.to_string()));
        }
        if let Some(info) = tls.filter(|_| s.tls_received_header) {
            a.push(("tls".into(), info.received_clause()));
        }
        if let Some(e) = &txn.params.envid {
            a.push(("dsn_envid".into(), e.clone()));
        }
        if let Some(r) = txn.params.ret {
            let v = match r {
                Ret::Full => "FULL",
                Ret::Hdrs => "HDRS",
            };
            a.push(("dsn_ret".into(), v.into()));
        }
        if txn.params.smtputf8 {
            a.push(("smtputf8".into(), "yes".into()));
        }
        if let Some(b) = txn.params.body {
            let v = match b {
                Body::SevenBit => "7BIT",
                Body::EightBitMime => "8BITMIME",
                Body::BinaryMime => "BINARYMIME",
            };
            a.push(("body".into(), v.into()));
        }
        let mut flags = if txn.hold {
            proto::cleanup::flags::HOLD
        } else {
            0
        };
        if self.session.authenticated().is_some() {
            a.push(("sasl_method".into(), self.sasl_method()));
        }
        if let Some(l) = self.peer.local {
            a.push(("server_address".into(), l.to_string()));
        }
        s.filters.begin(&mut a, &mut flags);
        Begin {
            flags,
            sender: txn.sender.clone(),
            full_name: None,
            attributes: a,
        }
    }

    /// Flushes to and reads from cleanup; true on progress.
    pub(super) fn cleanup_round(&mut self, shared: &Shared) -> bool {
        let Some(c) = self.cleanup.as_mut() else {
            return false;
        };
        let mut progress = c.flush();
        let replies = c.read_replies();
        let broken = c.is_broken();
        for r in replies {
            progress = true;
            self.cleanup_reply(r, shared);
        }
        if broken && self.cleanup.is_some() {
            // cleanup went away without answering.
            if let Some(t) = self.txn.as_mut()
                && t.failed.is_none()
            {
                t.failed = Some(Reply::new(
                    451,
                    Some("4.3.0"),
                    "Error: queue file write error",
                ));
            }
            self.cleanup = None;
            if self.wait == Wait::Queued {
                self.finish_message(shared);
            }
            progress = true;
        }
        progress
    }

    pub(super) fn cleanup_reply(&mut self, r: CleanupReply, shared: &Shared) {
        match r {
            CleanupReply::Started { queue_id } => {
                let qid = maillog::printable(&queue_id, 30);
                let mut line = format!("{qid}: client={}", self.namaddr);
                if let Some(u) = self.session.authenticated() {
                    line.push_str(&format!(
                        ", sasl_method={}, sasl_username={}",
                        self.sasl_method(),
                        maillog::printable(u, 100)
                    ));
                }
                maillog::info!("{line}");
                if let Some(t) = self.txn.as_mut() {
                    t.queue_id = Some(queue_id);
                }
            }
            CleanupReply::Queued { queue_id } => {
                if let Some(t) = self.txn.as_mut() {
                    t.queue_id = Some(queue_id);
                }
                self.cleanup = None;
                self.finish_message(shared);
            }
            CleanupReply::Discarded { reason: _ } => {
                if let Some(t) = self.txn.as_mut() {
                    t.discard = true;
                }
                self.cleanup = None;
                self.finish_message(shared);
            }
            CleanupReply::Rejected { status, text, code } => {
                let enhanced = enhanced_static(&status);
                let reply = if code != 0 {
                    // A milter's own reply, passed on as it was.
                    Reply::new(code, Some(enhanced), text)
                } else if status == "5.3.4" {
                    Reply::new(552, Some(enhanced), format!("Error: {text}"))
                } else if status.starts_with('4') {
                    Reply::new(451, Some(enhanced), format!("Error: {text}"))
                } else {
                    Reply::new(550, Some(enhanced), text)
                };
                if let Some(t) = self.txn.as_mut() {
                    t.failed = Some(reply);
                }
                self.cleanup = None;
                if self.wait == Wait::Queued {
                    self.finish_message(shared);
                }
            }
        }
    }

    pub(super) fn sasl_method(&self) -> String {
        self.sasl
            .as_ref()
            .map(|s| s.mechanism().to_string())
            .unwrap_or_else(|| "PLAIN".into())
    }

    /// The final dot (or BDAT LAST): smtpd_end_of_data_restrictions when
    /// there are any, then cleanup's End.
    pub(super) fn end_message(&mut self, registry: &Registry, shared: &Shared, size: u64) {
        let _ = registry;
        let discard = self.txn.as_ref().is_some_and(|t| t.discard);
        let failed = self.txn.as_ref().is_some_and(|t| t.failed.is_some());
        if !discard && !failed && self.cleanup.is_some() && shared.restrictions.has_end_of_data() {
            let facts = self.facts_owned(None, None, Stage::Data);
            let r = Arc::clone(&shared.restrictions);
            self.wait = Wait::Worker;
            shared.pool.run(self.key, move || {
                Answer::EndOfData(r.at_end_of_data(&facts.borrow(), size))
            });
            return;
        }
        self.finish_end(shared);
    }

    /// Ends the message with cleanup, or aborts it when it was refused.
    pub(super) fn finish_end(&mut self, shared: &Shared) {
        let discard = self.txn.as_ref().is_some_and(|t| t.discard);
        let failed = self.txn.as_ref().is_some_and(|t| t.failed.is_some());
        self.wait = Wait::Queued;
        if discard || failed || self.cleanup.is_none() {
            self.abort_cleanup();
            self.finish_message(shared);
            return;
        }
        if let Some(c) = self.cleanup.as_mut() {
            c.send(&Request::End);
        }
    }

    /// The message is done (queued, discarded or failed): answer the session.
    pub(super) fn finish_message(&mut self, shared: &Shared) {
        if self.wait != Wait::Queued {
            return;
        }
        self.wait = Wait::None;
        let txn = self.txn.take().unwrap_or_default();
        let result = if let Some(r) = txn.failed {
            Err(r)
        } else if let Some(q) = txn.queue_id {
            Ok(q)
        } else if txn.discard {
            Ok("NOQUEUE".to_string())
        } else {
            Err(Reply::new(
                451,
                Some("4.3.0"),
                "Error: queue file write error",
            ))
        };
        let acts = self.session.message_queued(result);
        for a in acts {
            // Only replies (and Close) come back here.
            match a {
                Action::Reply(r) => self.send(&r),
                Action::Close => self.closing = true,
                Action::ErrorSleep => {
                    self.sleep_until = Some(Instant::now() + shared.settings.error_sleep);
                }
                other => self.deferred.push_back(other),
            }
        }
    }

    pub(super) fn abort_cleanup(&mut self) {
        if let Some(mut c) = self.cleanup.take() {
            c.send(&Request::Abort);
            c.flush();
        }
    }
}
