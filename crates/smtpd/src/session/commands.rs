//! Command execution: what each SMTP command does to the session once
//! the command table allowed it (HELO/EHLO, STARTTLS, AUTH, MAIL, RCPT,
//! DATA, BDAT, RSET, NOOP, VRFY, ETRN, QUIT), and the start of a message's
//! content.

use super::*;

impl Session {
    pub(super) fn execute(&mut self, cmd: Command, out: &mut Vec<Action>) {
        match cmd {
            Command::Helo(name) => self.helo_command(name, false, out),
            Command::Ehlo(name) => self.helo_command(name, true, out),
            Command::StartTls => {
                if !self.cfg.tls_offered {
                    self.error_reply(
                        Reply::new(502, Some("5.5.1"), "Error: command not implemented"),
                        out,
                    );
                } else if self.tls {
                    self.error_reply(
                        Reply::new(554, Some("5.5.1"), "Error: TLS already active"),
                        out,
                    );
                } else {
                    self.end_transaction(out);
                    out.push(Action::Reply(Reply::new(
                        220,
                        Some("2.0.0"),
                        "Ready to start TLS",
                    )));
                    // CVE-2011-0411: nothing sent before the handshake may
                    // be read as a command inside TLS.
                    let _ = self.lines.take_buffered();
                    out.push(Action::StartTls);
                    self.pending = Pending::Tls;
                }
            }
            Command::Auth { mechanism, initial } => {
                if !self.auth_offered() {
                    self.error_reply(bad_sequence("authentication not enabled"), out);
                } else if self.authenticated.is_some() {
                    self.error_reply(bad_sequence("already authenticated"), out);
                } else if self.in_transaction() {
                    self.error_reply(bad_sequence("MAIL transaction in progress"), out);
                } else if self.helo.is_none() {
                    self.error_reply(bad_sequence("send HELO/EHLO first"), out);
                } else if !self.security().allows(&mechanism) {
                    let m = maillog::printable(&mechanism, 60);
                    self.error_reply(
                        Reply::new(
                            535,
                            Some("5.7.8"),
                            format!(
                                "Error: authentication failed: Invalid authentication mechanism: '{m}'"
                            ),
                        ),
                        out,
                    );
                } else {
                    out.push(Action::Auth { mechanism, initial });
                    self.pending = Pending::AuthAnswer;
                }
            }
            Command::Mail { path, params } => {
                if self.in_transaction() {
                    self.error_reply(bad_sequence("nested MAIL command"), out);
                } else if params.size.is_some_and(|s| {
                    self.cfg.message_size_limit > 0 && s > self.cfg.message_size_limit
                }) {
                    self.error_reply(
                        Reply::new(552, Some("5.3.4"), "Message size exceeds fixed limit"),
                        out,
                    );
                } else if self.cfg.stage_checks {
                    out.push(Action::CheckSender {
                        sender: path.clone(),
                        params: params.clone(),
                    });
                    self.pending = Pending::Sender(path, params);
                } else {
                    self.begin_message(path, params, out);
                }
            }
            Command::Rcpt { path, params } => {
                if !matches!(self.state, State::Mail | State::Rcpt) {
                    self.error_reply(bad_sequence("need MAIL command"), out);
                } else if self.recipients >= self.cfg.recipient_limit {
                    out.push(Action::Reply(Reply::new(
                        452,
                        Some("4.5.3"),
                        "Error: too many recipients",
                    )));
                } else {
                    out.push(Action::CheckRecipient {
                        recipient: path.clone(),
                        params: params.clone(),
                    });
                    self.pending = Pending::Recipient(path, params);
                }
            }
            Command::Data => {
                if self.state == State::Bdat {
                    self.error_reply(bad_sequence("DATA after BDAT"), out);
                } else if self.state == State::Mail {
                    self.error_reply(
                        Reply::new(554, Some("5.5.1"), "Error: no valid recipients"),
                        out,
                    );
                } else if self.state != State::Rcpt {
                    self.error_reply(bad_sequence("need RCPT command"), out);
                } else if self.cfg.stage_checks {
                    out.push(Action::CheckData);
                    self.pending = Pending::DataCheck(None);
                } else {
                    self.start_data(out);
                }
            }
            Command::Bdat { size, last } => {
                if self.state == State::Mail {
                    self.skip_chunk(
                        size,
                        Reply::new(554, Some("5.5.1"), "Error: no valid recipients"),
                    );
                } else if !matches!(self.state, State::Rcpt | State::Bdat) {
                    self.skip_chunk(size, bad_sequence("need RCPT command"));
                } else if self.state == State::Rcpt && self.cfg.stage_checks {
                    out.push(Action::CheckData);
                    self.pending = Pending::DataCheck(Some((size, last)));
                } else {
                    self.start_chunk(size, last, out);
                }
            }
            Command::Rset => {
                self.end_transaction(out);
                out.push(Action::Reply(ok("2.0.0")));
            }
            Command::Noop => out.push(Action::Reply(ok("2.0.0"))),
            Command::Quit => {
                self.end_transaction(out);
                out.push(Action::Reply(Reply::new(221, Some("2.0.0"), "Bye")));
                self.close(out);
            }
            Command::Vrfy(text) => {
                if self.cfg.disable_vrfy_command {
                    self.error_reply(
                        Reply::new(502, Some("5.5.1"), "VRFY command is disabled"),
                        out,
                    );
                } else {
                    out.push(Action::Verify(text));
                    self.pending = Pending::Answer;
                }
            }
            Command::Etrn(domain) => {
                if self.helo.is_none() {
                    self.error_reply(bad_sequence("send HELO/EHLO first"), out);
                } else if self.in_transaction() {
                    self.error_reply(bad_sequence("MAIL transaction in progress"), out);
                } else {
                    // RFC 1985's `@domain` and `#queue` forms name the domain.
                    let d = domain
                        .strip_prefix(['@', '#'])
                        .unwrap_or(&domain)
                        .to_string();
                    if etrn_domain_ok(&d) {
                        out.push(Action::Etrn(d));
                        self.pending = Pending::Answer;
                    } else {
                        self.error_reply(
                            Reply::new(501, None, "Error: invalid parameter syntax"),
                            out,
                        );
                    }
                }
            }
        }
    }

    pub(super) fn helo_command(&mut self, name: String, esmtp: bool, out: &mut Vec<Action>) {
        self.end_transaction(out);
        if self.cfg.stage_checks {
            out.push(Action::CheckHelo { name: name.clone() });
            self.pending = Pending::Helo(name, esmtp);
        } else {
            self.greeted(name, esmtp, out);
        }
    }

    pub(super) fn greeted(&mut self, name: String, esmtp: bool, out: &mut Vec<Action>) {
        self.helo = Some(name);
        self.esmtp = esmtp;
        self.state = State::Greeted;
        let reply = if esmtp {
            self.ehlo_reply()
        } else {
            Reply::new(250, None, self.cfg.hostname.clone())
        };
        out.push(Action::Reply(reply));
    }

    pub(super) fn begin_message(
        &mut self,
        sender: address::Path,
        params: MailParams,
        out: &mut Vec<Action>,
    ) {
        self.state = State::Mail;
        self.recipients = 0;
        out.push(Action::BeginMessage { sender, params });
        out.push(Action::Reply(ok("2.1.0")));
    }

    pub(super) fn start_data(&mut self, out: &mut Vec<Action>) {
        self.state = State::Data;
        self.data = Some(DataDecoder::new(
            self.cfg.bare_newline,
            self.cfg.message_size_limit,
        ));
        out.push(Action::Reply(Reply::new(
            354,
            None,
            "End data with <CR><LF>.<CR><LF>",
        )));
    }

    pub(super) fn start_chunk(&mut self, size: u64, last: bool, out: &mut Vec<Action>) {
        if self.state == State::Rcpt {
            self.bdat = Some(BdatDecoder::new(self.cfg.message_size_limit));
            self.state = State::Bdat;
        }
        self.bdat_chunk = (size, last);
        if let Some(dec) = self.bdat.as_mut() {
            dec.begin_chunk(size, last);
        }
        if size == 0 {
            let _ = self.content(&[], out);
        }
    }
}
