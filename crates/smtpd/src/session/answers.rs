//! The answers from outside that a paused session waits for: the
//! verdicts of the HELO, MAIL, DATA and RCPT restrictions, the queue id
//! from cleanup, VRFY/ETRN and SASL answers, and the end of a STARTTLS
//! handshake. Each resumes the session and returns the actions that follow.

use super::*;

impl Session {
    /// The shell's answer to [`Action::CheckHelo`]: `Ok` greets, `Err`
    /// sends the rejection (counted as an error; the client stays
    /// un-greeted).
    pub fn helo_checked(&mut self, verdict: Result<(), Reply>) -> Vec<Action> {
        let mut out = Vec::new();
        let Pending::Helo(name, esmtp) = std::mem::replace(&mut self.pending, Pending::None) else {
            return out;
        };
        match verdict {
            Ok(()) => self.greeted(name, esmtp, &mut out),
            Err(reply) => self.error_reply(reply, &mut out),
        }
        self.count_junk(&mut out);
        out
    }

    /// The shell's answer to [`Action::CheckSender`]: `Ok` starts the
    /// transaction ([`Action::BeginMessage`], 250), `Err` refuses MAIL.
    pub fn sender_checked(&mut self, verdict: Result<(), Reply>) -> Vec<Action> {
        let mut out = Vec::new();
        let Pending::Sender(sender, params) = std::mem::replace(&mut self.pending, Pending::None)
        else {
            return out;
        };
        match verdict {
            Ok(()) => self.begin_message(sender, params, &mut out),
            Err(reply) => self.error_reply(reply, &mut out),
        }
        out
    }

    /// The shell's answer to [`Action::CheckData`]: `Ok` sends 354 (or
    /// reads the BDAT chunk), `Err` refuses DATA (a refused BDAT chunk is
    /// skipped unread).
    pub fn data_checked(&mut self, verdict: Result<(), Reply>) -> Vec<Action> {
        let mut out = Vec::new();
        let Pending::DataCheck(bdat) = std::mem::replace(&mut self.pending, Pending::None) else {
            return out;
        };
        match (verdict, bdat) {
            (Ok(()), None) => self.start_data(&mut out),
            (Ok(()), Some((size, last))) => self.start_chunk(size, last, &mut out),
            (Err(reply), None) => self.error_reply(reply, &mut out),
            (Err(reply), Some((size, _))) => self.skip_chunk(size, reply),
        }
        out
    }

    /// The shell's answer to [`Action::CheckRecipient`]: `Ok` accepts the
    /// recipient, `Err` sends the rejection (counted as an error).
    pub fn recipient_checked(&mut self, verdict: Result<(), Reply>) -> Vec<Action> {
        let mut out = Vec::new();
        let Pending::Recipient(recipient, params) =
            std::mem::replace(&mut self.pending, Pending::None)
        else {
            return out;
        };
        match verdict {
            Ok(()) => {
                self.recipients += 1;
                self.state = State::Rcpt;
                out.push(Action::AddRecipient { recipient, params });
                out.push(Action::Reply(ok("2.1.5")));
            }
            Err(reply) => self.error_reply(reply, &mut out),
        }
        out
    }

    /// The shell's answer to [`Action::EndMessage`]: the queue id once
    /// cleanup has the message safely on disk, or the reply for a failure.
    pub fn message_queued(&mut self, result: Result<String, Reply>) -> Vec<Action> {
        let mut out = Vec::new();
        if self.pending != Pending::Queued {
            return out;
        }
        self.pending = Pending::None;
        self.data = None;
        self.bdat = None;
        self.recipients = 0;
        self.state = State::Greeted;
        if result.is_ok() {
            // A message received forgives earlier errors (Postfix).
            self.errors = 0;
            self.junk = 0;
        }
        match result {
            Ok(id) if id.is_empty() => out.push(Action::Reply(ok_queued())),
            Ok(id) => out.push(Action::Reply(Reply::new(
                250,
                Some("2.0.0"),
                format!("Ok: queued as {id}"),
            ))),
            Err(reply) => self.error_reply(reply, &mut out),
        }
        out
    }

    /// The shell's reply to [`Action::Verify`] or [`Action::Etrn`].
    pub fn answer(&mut self, reply: Reply) -> Vec<Action> {
        let mut out = Vec::new();
        if self.pending != Pending::Answer {
            return out;
        }
        self.pending = Pending::None;
        if reply.is_error() {
            self.error_reply(reply, &mut out);
        } else {
            out.push(Action::Reply(reply));
        }
        self.count_junk(&mut out);
        out
    }

    /// The shell's step in a SASL exchange started by [`Action::Auth`].
    pub fn auth_step(&mut self, step: AuthStep) -> Vec<Action> {
        let mut out = Vec::new();
        if self.pending != Pending::AuthAnswer {
            return out;
        }
        match step {
            AuthStep::Challenge(text) => {
                out.push(Action::Reply(Reply::new(334, None, text)));
                self.pending = Pending::Auth;
            }
            AuthStep::Success(user) => {
                self.pending = Pending::None;
                self.authenticated = Some(user);
                out.push(Action::Reply(Reply::new(
                    235,
                    Some("2.7.0"),
                    "Authentication successful",
                )));
            }
            AuthStep::Failure(reply) => {
                self.pending = Pending::None;
                self.error_reply(reply, &mut out);
            }
        }
        out
    }

    /// The TLS handshake after [`Action::StartTls`] finished: the session
    /// starts over (RFC 3207: the client must send EHLO again).
    pub fn tls_started(&mut self) {
        if self.pending == Pending::Tls {
            self.pending = Pending::None;
        }
        let _ = self.lines.take_buffered();
        self.tls = true;
        self.helo = None;
        self.esmtp = false;
        self.state = State::Connected;
    }
}
