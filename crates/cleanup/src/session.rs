//! One client conversation (proto::cleanup): Begin, Recipient..., Content...,
//! End. The queue file is created at Begin (the client logs its id), the
//! content streams through [`Message`] into it, and at End the recipients
//! are rewritten and expanded, the envelope written, the file fsynced, and
//! only with the [`queue::Fsynced`] proof in hand the client hears Queued.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::Path;
use std::time::SystemTime;

use proto::cleanup::{Begin, RecipientSpec, Reply, Request, flags};
use proto::deliver::notify;
use proto::rewrite::Context;
use queue::format::DsnRet;
use queue::{Envelope, Queue, QueueFile, QueueId, QueueWriter, Recipient};

use crate::addr::{Mapper, RewriteClient, Rewriter, Role};
use crate::message::{Failure, Info, Message};
use crate::settings::Settings;
use crate::stamp;

/// The queue directory: the daemon runs in it (or chrooted to it).
const QUEUE_DIR: &str = ".";

/// Most distinct automatic BCC addresses one message gets (from
/// sender_bcc_maps, recipient_bcc_maps and always_bcc together).
const MAX_BCC: usize = 1000;

/// Status and text of a temporary failure (Postfix's CLEANUP_STAT_WRITE).
const WRITE_ERROR: (&str, &str) = ("4.3.0", "queue file write error");

mod milter_step;

/// Serves one client until its message is answered or it goes away.
pub(crate) fn serve<S: Read + Write>(stream: &mut S, settings: &Settings) {
    let mut rw = RewriteClient::new(Path::new(QUEUE_DIR));
    serve_with(stream, settings, &mut rw, Path::new(QUEUE_DIR));
}

/// [`serve`] with a given trivial-rewrite client and queue directory.
pub(crate) fn serve_with<S: Read + Write>(
    stream: &mut S,
    settings: &Settings,
    rewriter: &mut dyn Rewriter,
    queue_dir: &Path,
) {
    let begin = match proto::recv::<_, Request>(stream) {
        Ok(Request::Begin(b)) => b,
        Ok(_) => {
            maillog::warning!("unexpected request before Begin: protocol error");
            return;
        }
        Err(_) => return,
    };
    // Held until this conversation is over (declared first, dropped last):
    // pickup does not send the file again while we may still complete it.
    let _claim = maildrop_claim(&begin, queue_dir);
    // New mail waits while the incoming queue backs up (in_flow_delay);
    // notices from bounce do not.
    if begin.flags & flags::NOTIFICATION == 0 {
        let waited = settings.flow.pause(queue_dir);
        if !waited.is_zero() {
            maillog::verbose!("in_flow_delay: waited {} ms", waited.as_millis());
        }
    }
    let _receiving = settings.flow.receiving();
    let writer = match queue::enter(queue_dir) {
        Ok(w) => w,
        Err(e) => {
            maillog::warning!("create queue file: {e}");
            let _ = reply_error(stream, WRITE_ERROR);
            return;
        }
    };
    let queue_id = writer.id().to_string();
    if proto::send(stream, &Reply::Started { queue_id }).is_err() {
        return;
    }
    let mut s = Session::new(settings, begin, writer, queue_dir);
    if let Some(reply) = s.run(stream, rewriter) {
        let _ = proto::send(stream, &reply);
    }
}

/// For a maildrop file pickup sends: a claim on it (see queue's claim
/// module), so a second pickup waits until this queue file is complete or
/// given up before it sends the file again.
fn maildrop_claim(begin: &Begin, queue_dir: &Path) -> Option<queue::MaildropClaim> {
    if begin.flags & flags::LOCAL_SUBMISSION == 0 {
        return None;
    }
    let id = attr(begin, MAILDROP_ID).and_then(|m| QueueId::parse(m).ok())?;
    match queue::claim_maildrop(queue_dir, &id) {
        Ok(c) => Some(c),
        Err(e) => {
            maillog::verbose!("claim maildrop/{id}: {e}");
            None
        }
    }
}

fn reply_error<W: Write>(w: &mut W, (status, text): (&str, &str)) -> Result<(), proto::Error> {
    proto::send(
        w,
        &Reply::Rejected {
            status: status.to_string(),
            text: text.to_string(),
            code: 0,
        },
    )
}

fn rejected(status: &str, text: &str) -> Reply {
    Reply::Rejected {
        status: status.to_string(),
        text: text.to_string(),
        code: 0,
    }
}

/// The state of one message between Begin and End.
struct Session<'s> {
    settings: &'s Settings,
    begin: Begin,
    queue_dir: &'s Path,
    writer: Option<QueueWriter>,
    queue_id: String,
    arrival: SystemTime,
    context: Context,
    sender: Option<String>,
    recipients: Vec<RecipientSpec>,
    message: Option<Message<'s>>,
    failure: Option<Failure>,
    /// A REDIRECT access action: the only recipient.
    redirect: Option<String>,
    /// The milters for this message, while they have not run.
    milters: Vec<milter::Spec>,
    /// With milters, the processed message waits here (not in the queue
    /// file) until they have seen and changed it.
    held_content: Option<Vec<u8>>,
}

impl<'s> Session<'s> {
    fn new(
        settings: &'s Settings,
        begin: Begin,
        writer: QueueWriter,
        queue_dir: &'s Path,
    ) -> Session<'s> {
        let context = envelope_context(&begin, settings);
        let (milters, milter_failure) = match settings.milters.for_message(&begin) {
            Ok(m) => (m, None),
            Err(e) => (
                Vec::new(),
                Some(Failure::Temporary(format!("milter list: {e}"))),
            ),
        };
        let held_content = (!milters.is_empty()).then(Vec::new);
        Session {
            settings,
            queue_id: writer.id().to_string(),
            begin,
            queue_dir,
            writer: Some(writer),
            arrival: SystemTime::now(),
            context,
            sender: None,
            recipients: Vec::new(),
            message: None,
            failure: milter_failure,
            redirect: None,
            milters,
            held_content,
        }
    }

    fn mapper<'m>(&self, rewriter: &'m mut dyn Rewriter) -> Mapper<'m>
    where
        's: 'm,
    {
        let m = Mapper::new(self.settings, rewriter);
        if self.begin.flags & flags::NO_ADDRESS_MAPS != 0 {
            m.without_maps()
        } else {
            m
        }
    }

    /// Runs the conversation; the reply to send, if any.
    fn run<S: Read + Write>(
        &mut self,
        stream: &mut S,
        rewriter: &mut dyn Rewriter,
    ) -> Option<Reply> {
        let sender = self.begin.sender.clone();
        if sender.len() > address::MAX_ADDRESS_LENGTH {
            self.fail(Failure::Reject {
                status: "5.1.7".into(),
                text: "bad sender address syntax".into(),
            });
        } else {
            match self
                .mapper(rewriter)
                .rewrite(Role::EnvelopeSender, self.context, &sender)
            {
                Ok(s) => self.sender = Some(s),
                Err(e) => {
                    maillog::warning!("{}: sender address rewriting: {e}", self.queue_id);
                    self.fail(Failure::Temporary(e.to_string()));
                }
            }
        }
        loop {
            let req = match proto::recv::<_, Request>(stream) {
                Ok(r) => r,
                // The client went away: nothing was promised, nothing kept.
                Err(_) => return None,
            };
            match req {
                Request::Begin(_) => {
                    maillog::warning!("{}: unexpected Begin: protocol error", self.queue_id);
                    return None;
                }
                Request::Recipient(r) => self.add_recipient(r),
                Request::Content(data) => {
                    self.content(&data, rewriter);
                    if matches!(self.failure, Some(Failure::TooBig)) {
                        maillog::warning!(
                            "{}: message rejected: message file too big",
                            self.queue_id
                        );
                        return Some(rejected("5.3.4", "message file too big"));
                    }
                }
                Request::End => return Some(self.end(rewriter)),
                Request::Abort => return None,
                Request::Attribute(name, value) => self.set_attribute(name, value),
            }
        }
    }

    /// Records a failure and gives up the queue file at once.
    fn fail(&mut self, f: Failure) {
        if let Some(w) = self.writer.take() {
            let _ = w.abort();
        }
        if self.failure.is_none() {
            self.failure = Some(f);
        }
    }

    fn add_recipient(&mut self, r: RecipientSpec) {
        if r.address.len() > address::MAX_ADDRESS_LENGTH
            || r.orcpt
                .as_ref()
                .is_some_and(|o| o.len() > address::MAX_ADDRESS_LENGTH)
        {
            self.fail(Failure::Reject {
                status: "5.1.3".into(),
                text: "bad recipient address syntax".into(),
            });
            return;
        }
        if self.recipients.len() >= queue::format::MAX_RECIPIENTS as usize {
            self.fail(Failure::Reject {
                status: "4.5.3".into(),
                text: "too many recipients".into(),
            });
            return;
        }
        self.recipients.push(r);
    }

    /// The message processor, made at the first content (the recipients
    /// are known by then, for Received's `for <...>`).
    fn ensure_message(&mut self) {
        if self.message.is_none() {
            let info = self.info();
            self.message = Some(Message::new(self.settings, info));
        }
    }

    fn content(&mut self, data: &[u8], rewriter: &mut dyn Rewriter) {
        if self.failure.is_some() {
            return;
        }
        self.ensure_message();
        let mut mapper = self.mapper(rewriter);
        let (Some(msg), Some(w)) = (self.message.as_mut(), self.writer.as_mut()) else {
            return;
        };
        let out: &mut dyn Write = match self.held_content.as_mut() {
            Some(b) => b,
            None => w,
        };
        msg.feed(data, &mut mapper, out);
        if let Some(f) = msg.take_failure() {
            self.fail(f);
        }
    }

    /// End of message: finish the content, the recipients, the file.
    fn end(&mut self, rewriter: &mut dyn Rewriter) -> Reply {
        if self.failure.is_none() {
            self.ensure_message();
            let mut mapper = self.mapper(rewriter);
            if let (Some(msg), Some(w)) = (self.message.as_mut(), self.writer.as_mut()) {
                let out: &mut dyn Write = match self.held_content.as_mut() {
                    Some(b) => b,
                    None => w,
                };
                msg.end(&mut mapper, out);
                if let Some(f) = msg.take_failure() {
                    self.fail(f);
                }
            }
        }
        if let Some(f) = self.failure.take() {
            return self.failure_reply(f);
        }
        if self.message.as_ref().is_some_and(Message::discarded) {
            if let Some(w) = self.writer.take() {
                let _ = w.abort();
            }
            return Reply::Discarded {
                reason: "discarded by content checks".into(),
            };
        }
        if let Some(r) = self.redirect.take() {
            maillog::info!(
                "{}: redirect: to <{}>",
                self.queue_id,
                maillog::printable(&r, 200)
            );
            self.recipients = vec![RecipientSpec {
                address: r,
                orcpt: None,
                notify: 0,
            }];
        }
        if let Some(reply) = self.run_milters() {
            if let Some(w) = self.writer.take() {
                let _ = w.abort();
            }
            return reply;
        }
        let recipients = match self.envelope_recipients(rewriter) {
            Ok(r) => r,
            Err(reply) => {
                if let Some(w) = self.writer.take() {
                    let _ = w.abort();
                }
                return reply;
            }
        };
        self.finish(recipients)
    }

    fn failure_reply(&self, f: Failure) -> Reply {
        match f {
            Failure::Reject { status, text } => rejected(&status, &text),
            Failure::TooBig => rejected("5.3.4", "message file too big"),
            Failure::Write(e) => {
                maillog::warning!("{}: queue file write error: {e}", self.queue_id);
                rejected(WRITE_ERROR.0, WRITE_ERROR.1)
            }
            Failure::Temporary(why) => {
                maillog::warning!("{}: temporary failure: {why}", self.queue_id);
                rejected(WRITE_ERROR.0, WRITE_ERROR.1)
            }
        }
    }

    /// Client recipients plus those from headers (-t), each rewritten,
    /// expanded through virtual_alias_maps and filtered for duplicates.
    fn envelope_recipients(
        &mut self,
        rewriter: &mut dyn Rewriter,
    ) -> Result<Vec<Recipient>, Reply> {
        let mut specs = std::mem::take(&mut self.recipients);
        if let Some(msg) = self.message.as_mut() {
            specs.extend(msg.extracted().into_iter().map(|address| RecipientSpec {
                address,
                orcpt: None,
                notify: 0,
            }));
        }
        let s = self.settings;
        let context = self.context;
        let qid = self.queue_id.clone();
        // Automatic BCC only for new mail from outside: not for bounces and
        // notices, not without address mapping (Postfix's
        // CLEANUP_FLAG_BCC_OK).
        let bcc_ok = self.begin.flags & (flags::NOTIFICATION | flags::NO_ADDRESS_MAPS) == 0;
        let sender = self.sender.clone().unwrap_or_default();
        let mut mapper = self.mapper(rewriter);
        let temporary = |e: crate::addr::Error| {
            maillog::warning!("{qid}: {e} -- message not accepted, try again later");
            rejected(WRITE_ERROR.0, WRITE_ERROR.1)
        };
        let mut bcc: Vec<String> = Vec::new();
        if bcc_ok
            && let Some(b) = mapper
                .bcc_for(&s.sender_bcc, "sender_bcc_maps", &sender)
                .map_err(temporary)?
        {
            bcc.push(b);
        }
        let mut seen: HashSet<(Option<String>, u8, String, String)> = HashSet::new();
        let mut out = Vec::new();
        for spec in specs {
            let given = if spec.address.is_empty() {
                s.empty_address_recipient.clone()
            } else {
                spec.address.clone()
            };
            let rewritten = mapper
                .rewrite(Role::EnvelopeRecipient, context, &given)
                .map_err(temporary)?;
            if bcc_ok
                && let Some(b) = mapper
                    .bcc_for(&s.recipient_bcc, "recipient_bcc_maps", &rewritten)
                    .map_err(temporary)?
                && bcc.len() < MAX_BCC
                && !bcc.contains(&b)
            {
                bcc.push(b);
            }
            let expanded = mapper.expand_virtual(&rewritten).map_err(temporary)?;
            for address in expanded {
                let key = (
                    spec.orcpt.clone(),
                    spec.notify,
                    if s.enable_original_recipient {
                        spec.address.clone()
                    } else {
                        String::new()
                    },
                    address.clone(),
                );
                if seen.contains(&key) {
                    continue;
                }
                if seen.len() < s.duplicate_filter_limit {
                    seen.insert(key);
                }
                if out.len() >= queue::format::MAX_RECIPIENTS as usize {
                    return Err(rejected("4.5.3", "too many recipients"));
                }
                out.push(Recipient {
                    address,
                    original: spec.address.clone(),
                    dsn_orcpt: spec.orcpt.clone(),
                    dsn_notify: spec.notify,
                });
            }
        }
        if out.is_empty() {
            return Err(rejected("5.1.0", "no recipients specified"));
        }
        if bcc_ok && !s.always_bcc.is_empty() && !bcc.contains(&s.always_bcc) {
            bcc.push(s.always_bcc.clone());
        }
        // Each BCC address once, as if given with NOTIFY=NEVER, rewritten in
        // the local context (Postfix's cleanup_addr_bcc).
        for b in bcc {
            let rewritten = mapper
                .rewrite(Role::EnvelopeRecipient, Context::Local, &b)
                .map_err(temporary)?;
            for address in mapper.expand_virtual(&rewritten).map_err(temporary)? {
                let key = (None, notify::NEVER, rewritten.clone(), address.clone());
                if !seen.insert(key) {
                    continue;
                }
                if out.len() >= queue::format::MAX_RECIPIENTS as usize {
                    return Err(rejected("4.5.3", "too many recipients"));
                }
                out.push(Recipient {
                    address,
                    original: rewritten.clone(),
                    dsn_orcpt: None,
                    dsn_notify: notify::NEVER,
                });
            }
        }
        Ok(out)
    }

    /// Writes the envelope, fsyncs, moves to hold/ when asked, answers.
    fn finish(&mut self, recipients: Vec<Recipient>) -> Reply {
        let Some(writer) = self.writer.take() else {
            return rejected(WRITE_ERROR.0, WRITE_ERROR.1);
        };
        if let Some((source, existing)) = self.earlier_copy(writer.id()) {
            // pickup sent this maildrop file before and died before it
            // could remove it: the first copy stands.
            if let Err(e) = writer.abort() {
                maillog::warning!("{}: remove queue file: {e}", self.queue_id);
            }
            maillog::info!(
                "{}: duplicate of maildrop file {source} suppressed: queued as {existing}",
                self.queue_id
            );
            return Reply::Queued {
                queue_id: existing.to_string(),
            };
        }
        let env = self.envelope(recipients);
        let proof = match writer.finish(&env) {
            Ok(p) => p,
            Err(e) => {
                maillog::warning!("{}: queue file write error: {e}", self.queue_id);
                return rejected(WRITE_ERROR.0, WRITE_ERROR.1);
            }
        };
        let id = *proof.id();
        let hold =
            self.begin.flags & flags::HOLD != 0 || self.message.as_ref().is_some_and(Message::held);
        if hold && let Err(e) = queue::rename(self.queue_dir, &id, Queue::Incoming, Queue::Hold) {
            // Not held, but safe: the message stays in incoming/.
            maillog::warning!("{id}: cannot move to hold queue: {e}");
        }
        if !hold && let Err(e) = proto::trigger(self.queue_dir, "public/qmgr") {
            maillog::verbose!("{id}: trigger qmgr: {e}");
        }
        Reply::Queued {
            queue_id: id.to_string(),
        }
    }

    /// For a local submission that pickup marks `maildrop_retry=1` (the
    /// maildrop file may have been sent before): the complete queue file
    /// in incoming/ or hold/ that came from the same maildrop file, if
    /// there is one. qmgr takes no file from incoming/ while its maildrop
    /// file exists, so an earlier copy is still there.
    fn earlier_copy(&self, own: &QueueId) -> Option<(QueueId, QueueId)> {
        let b = &self.begin;
        if b.flags & flags::LOCAL_SUBMISSION == 0 || attr(b, MAILDROP_RETRY) != Some("1") {
            return None;
        }
        let source = attr(b, MAILDROP_ID).and_then(|m| QueueId::parse(m).ok())?;
        let wanted = source.to_string();
        for q in [Queue::Incoming, Queue::Hold] {
            let Ok(ids) = queue::list(self.queue_dir, q) else {
                continue;
            };
            for id in ids.into_iter().filter(|id| id != own) {
                if let Ok(qf) = QueueFile::open_read_only(self.queue_dir, q, &id)
                    && qf.envelope().attribute(MAILDROP_ID) == Some(wanted.as_str())
                {
                    return Some((source, id));
                }
            }
        }
        None
    }

    fn envelope(&self, recipients: Vec<Recipient>) -> Envelope {
        let sender = self.sender.clone().unwrap_or_default();
        let mut env = Envelope::new(&sender, self.arrival);
        env.recipients = recipients;
        for (name, value) in &self.begin.attributes {
            if env.attributes.len() >= queue::format::MAX_ATTRIBUTES / 2
                || name.len() > 256
                || value.len() > queue::format::MAX_FIELD_LEN
            {
                continue;
            }
            match name.as_str() {
                "protocol" => env.set_attribute(queue::format::attr::PROTOCOL_NAME, value),
                // Only this daemon's own flag makes a probe (below).
                proto::deliver::trace::ATTR => {}
                MAILDROP_RETRY => {}
                // Instructions for cleanup itself, not the queue file.
                crate::milters::SMTPD_MILTERS | crate::milters::NO_MILTERS_ATTR => {}
                // The milters' TLS macros only.
                "tls_version" | "tls_cipher" | "tls_cipher_bits" => {}
                "dsn_envid" => env.dsn_envid = Some(value.clone()),
                "dsn_ret" => env.dsn_ret = DsnRet::parse(value),
                _ => env.set_attribute(name, value),
            }
        }
        let ctx = match self.context {
            Context::Local => "local",
            Context::Remote => "remote",
        };
        env.set_attribute(queue::format::attr::REWRITE_CONTEXT, ctx);
        let trace = crate::trace::flags(self.begin.flags);
        if trace != 0 {
            env.set_attribute(proto::deliver::trace::ATTR, &trace.to_string());
        }
        if let Some(mid) = self.message.as_ref().and_then(Message::message_id)
            && mid.len() <= 1000
        {
            env.set_attribute(queue::format::attr::MESSAGE_ID, mid);
        }
        env
    }

    /// What the content processor needs to know.
    fn info(&self) -> Info {
        let b = &self.begin;
        let s = self.settings;
        let client_address = attr(b, "client_address").filter(|a| !a.is_empty());
        let client_name = attr(b, "client_name").unwrap_or("unknown");
        let local = b.flags & flags::LOCAL_SUBMISSION != 0;
        let origin = match client_address {
            Some(a) => format!("{}[{}]", client_name, a),
            None => "local".to_string(),
        };
        let mut log_extra = String::new();
        if let Some(p) = attr(b, "protocol") {
            log_extra.push_str(&format!(" proto={}", maillog::printable(p, 50)));
        }
        if let Some(h) = attr(b, "helo_name") {
            log_extra.push_str(&format!(" helo=<{}>", maillog::printable(h, 100)));
        }
        // Postfix's hdr_rewrite_context: local rules for local clients
        // (local_header_rewrite_clients), remote_header_rewrite_domain for
        // the others, or no header rewriting at all.
        let header_rewrite = if self.context == Context::Local && local_client(b, s) {
            Some(Context::Local)
        } else if !s.remote_header_rewrite_domain.is_empty() {
            Some(Context::Remote)
        } else {
            None
        };
        Info {
            queue_id: self.queue_id.clone(),
            sender: self.sender.clone().unwrap_or_default(),
            flags: b.flags,
            full_name: b.full_name.clone(),
            origin,
            log_extra,
            first_recipient: self.recipients.first().map(|r| r.address.clone()),
            header_rewrite,
            received: self.received(local, client_address, client_name),
            arrival: self.arrival,
        }
    }

    /// Our Received header, in the form of the Postfix program that
    /// would have written it (pickup, smtpd, or an internal client).
    fn received(&self, local: bool, client_address: Option<&str>, client_name: &str) -> String {
        let s = self.settings;
        let b = &self.begin;
        let date = stamp::mail_date(self.arrival);
        let qid = &self.queue_id;
        let clean = |t: &str| maillog::printable(t, 200);
        if local || client_address.is_none() {
            let by = match attr(b, "uid").filter(|_| local) {
                Some(uid) => format!("{}, from userid {}", s.mail_name, clean(uid)),
                None => s.mail_name.clone(),
            };
            return format!("Received: by {} ({by})\n\tid {qid}; {date}", s.myhostname);
        }
        let raw = client_address.unwrap_or_default();
        // Postfix's rfc_addr: an IPv6 address gets the RFC 5321 tag.
        let addr = if raw.parse::<std::net::Ipv6Addr>().is_ok() {
            format!("IPv6:{}", clean(raw))
        } else {
            clean(raw)
        };
        let name = clean(client_name);
        let helo = attr(b, "helo_name")
            .map(clean)
            .unwrap_or_else(|| name.clone());
        let mut r = format!("Received: from {helo} ({name} [{addr}])\n");
        if let Some(tls) = attr(b, "tls").filter(|t| !t.is_empty()) {
            // Postfix's smtpd adds the client certificate line after the
            // cipher; we never ask for one.
            r.push_str(&format!(
                "\t({})\n\t(No client certificate requested)\n",
                clean(tls)
            ));
        }
        let protocol = attr(b, "protocol")
            .map(clean)
            .unwrap_or_else(|| "ESMTP".into());
        r.push_str(&format!(
            "\tby {} ({}) with {protocol} id {qid}",
            s.myhostname, s.mail_name
        ));
        match self.recipients.as_slice() {
            [one] => r.push_str(&format!("\n\tfor <{}>; {date}", clean(&one.address))),
            _ => r.push_str(&format!(";\n\t{date}")),
        }
        r
    }
}

/// True for a client whose headers get local rewriting: local
/// submissions and internal clients (no client address), and network
/// clients that local_header_rewrite_clients names (`static:all`, or a
/// loopback address for permit_inet_interfaces/permit_mynetworks).
fn local_client(b: &Begin, s: &Settings) -> bool {
    let Some(addr) = attr(b, "client_address").filter(|a| !a.is_empty()) else {
        return true;
    };
    let loopback = addr
        .trim_start_matches("IPv6:")
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_loopback());
    b.flags & flags::LOCAL_SUBMISSION != 0
        || s.header_rewrite_all
        || (loopback && s.header_rewrite_loopback)
}

/// The rewrite context for envelope addresses: the client's
/// rewrite_context attribute, else local for local clients and remote
/// for the others.
fn envelope_context(b: &Begin, s: &Settings) -> Context {
    match attr(b, "rewrite_context") {
        Some(c) if c.eq_ignore_ascii_case("remote") => Context::Remote,
        Some(c) if c.eq_ignore_ascii_case("local") => Context::Local,
        _ if local_client(b, s) => Context::Local,
        _ => Context::Remote,
    }
}

/// Begin attribute from pickup: the maildrop file's id (kept in the
/// envelope; qmgr reads it).
pub(crate) const MAILDROP_ID: &str = "maildrop_id";

/// Begin attribute from pickup: `1` when the maildrop file may have been
/// sent before (not kept).
pub(crate) const MAILDROP_RETRY: &str = "maildrop_retry";

/// An attribute of the Begin request.
fn attr<'a>(b: &'a Begin, name: &str) -> Option<&'a str> {
    b.attributes
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::tests::AppendOrigin;
    use crate::settings::tests::settings;
    use std::os::unix::net::UnixStream;

    /// Runs `client` against a session on a socket pair over a fresh queue.
    fn converse(main_cf: &str, client: impl FnOnce(&mut UnixStream, &Path)) {
        let dir = tempfile::tempdir().unwrap();
        queue::layout::create_or_repair(dir.path(), None, None).unwrap();
        let s = settings(main_cf);
        let (mut a, mut b) = UnixStream::pair().unwrap();
        std::thread::scope(|scope| {
            let qdir = dir.path();
            let s = &s;
            scope.spawn(move || serve_with(&mut b, s, &mut AppendOrigin, qdir));
            client(&mut a, qdir);
        });
    }

    fn begin(s: &mut UnixStream, sender: &str) -> String {
        let b = Begin {
            flags: flags::LOCAL_SUBMISSION,
            sender: sender.into(),
            full_name: None,
            attributes: vec![
                ("dsn_envid".into(), "ENV1".into()),
                ("dsn_ret".into(), "hdrs".into()),
            ],
        };
        proto::send(s, &Request::Begin(b)).unwrap();
        match proto::recv(s).unwrap() {
            Reply::Started { queue_id } => queue_id,
            other => panic!("{other:?}"),
        }
    }

    fn rcpt(s: &mut UnixStream, a: &str) {
        let r = RecipientSpec {
            address: a.into(),
            orcpt: Some(format!("rfc822;{a}")),
            notify: 2,
        };
        proto::send(s, &Request::Recipient(r)).unwrap();
    }

    #[test]
    fn queued_file_has_envelope_dsn_and_duplicates_removed() {
        converse("", |s, qdir| {
            let id = begin(s, "alice");
            rcpt(s, "bob");
            rcpt(s, "bob");
            proto::send(s, &Request::Content(b"Subject: x\n\nbody".to_vec())).unwrap();
            proto::send(s, &Request::End).unwrap();
            assert_eq!(
                proto::recv::<_, Reply>(s).unwrap(),
                Reply::Queued {
                    queue_id: id.clone()
                }
            );
            let id = queue::QueueId::parse(&id).unwrap();
            let qf = queue::QueueFile::open_read_only(qdir, Queue::Incoming, &id).unwrap();
            let env = qf.envelope();
            assert_eq!(env.sender, "alice@origin.example");
            assert_eq!(env.recipients.len(), 1);
            assert_eq!(env.recipients[0].address, "bob@origin.example");
            assert_eq!(env.recipients[0].dsn_orcpt.as_deref(), Some("rfc822;bob"));
            assert_eq!(env.recipients[0].dsn_notify, 2);
            assert_eq!(env.dsn_envid.as_deref(), Some("ENV1"));
            assert_eq!(env.dsn_ret, Some(DsnRet::Headers));
            assert!(
                env.attribute("message_id")
                    .is_some_and(|m| m.starts_with('<'))
            );
        });
    }

    /// One message from `sender` to `rcpts` with Begin `flags`: the queued
    /// envelope's recipients as (address, NOTIFY bits).
    fn queued_recipients(
        main_cf: &str,
        flags: u32,
        sender: &str,
        rcpts: &[&str],
    ) -> Vec<(String, u8)> {
        let mut got = Vec::new();
        converse(main_cf, |s, qdir| {
            let b = Begin {
                flags,
                sender: sender.into(),
                full_name: None,
                attributes: Vec::new(),
            };
            proto::send(s, &Request::Begin(b)).unwrap();
            let Reply::Started { queue_id } = proto::recv(s).unwrap() else {
                panic!("not started")
            };
            for r in rcpts {
                rcpt(s, r);
            }
            proto::send(s, &Request::Content(b"Subject: x\n\nbody\n".to_vec())).unwrap();
            proto::send(s, &Request::End).unwrap();
            assert_eq!(
                proto::recv::<_, Reply>(s).unwrap(),
                Reply::Queued {
                    queue_id: queue_id.clone()
                }
            );
            let id = queue::QueueId::parse(&queue_id).unwrap();
            let qf = queue::QueueFile::open_read_only(qdir, Queue::Incoming, &id).unwrap();
            got = qf
                .envelope()
                .recipients
                .iter()
                .map(|r| (r.address.clone(), r.dsn_notify))
                .collect();
        });
        got
    }

    fn addresses(list: &[(String, u8)]) -> Vec<&str> {
        list.iter().map(|(a, _)| a.as_str()).collect()
    }

    #[test]
    fn automatic_bcc_recipients_are_added_once() {
        let never = notify::NEVER;
        // always_bcc: once per message, however many recipients, NOTIFY=NEVER.
        let got = queued_recipients(
            "always_bcc = archive\n",
            flags::LOCAL_SUBMISSION,
            "alice",
            &["bob", "carol", "bob@elsewhere.example"],
        );
        assert_eq!(
            addresses(&got),
            [
                "bob@origin.example",
                "carol@origin.example",
                "bob@elsewhere.example",
                "archive@origin.example"
            ]
        );
        assert_eq!(got[3].1, never);
        // sender_bcc_maps: keyed by the rewritten sender.
        let got = queued_recipients(
            "sender_bcc_maps = inline:{alice@origin.example=sent-copies}\n",
            flags::LOCAL_SUBMISSION,
            "alice",
            &["bob", "carol"],
        );
        assert_eq!(
            addresses(&got),
            [
                "bob@origin.example",
                "carol@origin.example",
                "sent-copies@origin.example"
            ]
        );
        // recipient_bcc_maps: per recipient, each distinct address once;
        // @domain keys match as in Postfix.
        let got = queued_recipients(
            "recipient_bcc_maps = inline:{bob@origin.example=rcopy, @origin.example=rcopy}\n\
             always_bcc = rcopy\n",
            flags::LOCAL_SUBMISSION,
            "alice",
            &["bob", "carol", "dave@elsewhere.example"],
        );
        assert_eq!(
            addresses(&got),
            [
                "bob@origin.example",
                "carol@origin.example",
                "dave@elsewhere.example",
                "rcopy@origin.example"
            ]
        );
        // A recipient who is also the BCC address keeps its own entry.
        let got = queued_recipients("always_bcc = bob\n", 0, "alice", &["bob"]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], ("bob@origin.example".to_string(), never));
    }

    #[test]
    fn no_automatic_bcc_for_notices_or_without_address_mapping() {
        let main_cf = "always_bcc = archive\n\
                       sender_bcc_maps = inline:{alice@origin.example=s}\n\
                       recipient_bcc_maps = inline:{bob@origin.example=r}\n";
        for f in [flags::NOTIFICATION, flags::NO_ADDRESS_MAPS] {
            let got = queued_recipients(main_cf, f, "alice", &["bob"]);
            assert_eq!(addresses(&got), ["bob@origin.example"], "flags {f}");
        }
        // A bounce (null sender) from outside gets them, sender_bcc aside.
        let got = queued_recipients(main_cf, 0, "", &["bob"]);
        assert_eq!(
            addresses(&got),
            [
                "bob@origin.example",
                "r@origin.example",
                "archive@origin.example"
            ]
        );
    }

    /// One message with these Begin attributes into `qdir`; the reply.
    fn submit_with(qdir: &Path, attrs: &[(&str, &str)]) -> (String, Reply) {
        let s = settings("");
        let (mut a, mut b) = UnixStream::pair().unwrap();
        std::thread::scope(|scope| {
            let s = &s;
            scope.spawn(move || serve_with(&mut b, s, &mut AppendOrigin, qdir));
            let begin = Begin {
                flags: flags::LOCAL_SUBMISSION,
                sender: "alice".into(),
                full_name: None,
                attributes: attrs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            };
            proto::send(&mut a, &Request::Begin(begin)).unwrap();
            let Reply::Started { queue_id } = proto::recv(&mut a).unwrap() else {
                panic!("not started")
            };
            rcpt(&mut a, "bob");
            proto::send(&mut a, &Request::Content(b"Subject: x\n\nbody\n".to_vec())).unwrap();
            proto::send(&mut a, &Request::End).unwrap();
            (queue_id, proto::recv(&mut a).unwrap())
        })
    }

    #[test]
    fn a_maildrop_file_is_claimed_until_its_queue_file_is_complete() {
        converse("", |s, qdir| {
            let mut w = queue::enter_queue(qdir, Queue::Maildrop).unwrap();
            w.write_all(b"x\n").unwrap();
            let env = queue::Envelope::new("alice", SystemTime::now());
            let source = *w.finish(&env).unwrap().id();
            let b = Begin {
                flags: flags::LOCAL_SUBMISSION,
                sender: "alice".into(),
                full_name: None,
                attributes: vec![("maildrop_id".into(), source.to_string())],
            };
            proto::send(s, &Request::Begin(b)).unwrap();
            assert!(matches!(proto::recv(s).unwrap(), Reply::Started { .. }));
            assert!(queue::maildrop_claimed(qdir, &source).unwrap());
            rcpt(s, "bob");
            proto::send(s, &Request::Content(b"Subject: x\n\nbody\n".to_vec())).unwrap();
            proto::send(s, &Request::End).unwrap();
            assert!(matches!(proto::recv(s).unwrap(), Reply::Queued { .. }));
            // The conversation ends when the client hangs up.
            s.shutdown(std::net::Shutdown::Write).unwrap();
            let gone = (0..200).any(|_| {
                std::thread::sleep(std::time::Duration::from_millis(10));
                !queue::maildrop_claimed(qdir, &source).unwrap()
            });
            assert!(gone, "claim still held after the conversation");
        });
    }

    #[test]
    fn maildrop_retry_finds_the_earlier_copy() {
        let dir = tempfile::tempdir().unwrap();
        let qdir = dir.path();
        queue::layout::create_or_repair(qdir, None, None).unwrap();
        let maildrop_id = || {
            let w = queue::enter_queue(qdir, Queue::Maildrop).unwrap();
            let id = w.id().to_string();
            w.abort().unwrap();
            id
        };
        let (src, src2) = (maildrop_id(), maildrop_id());
        let (src, src2) = (src.as_str(), src2.as_str());
        // First attempt: queued, the maildrop id kept in the envelope.
        let (first, reply) = submit_with(qdir, &[("maildrop_id", src)]);
        assert_eq!(
            reply,
            Reply::Queued {
                queue_id: first.clone()
            }
        );
        let id = QueueId::parse(&first).unwrap();
        let qf = QueueFile::open_read_only(qdir, Queue::Incoming, &id).unwrap();
        assert_eq!(qf.envelope().attribute("maildrop_id"), Some(src));
        assert_eq!(qf.envelope().attribute("maildrop_retry"), None);
        // pickup died before removing the maildrop file; the retry is
        // answered with the first queue id and writes nothing.
        let retry = [("maildrop_id", src), ("maildrop_retry", "1")];
        let (second, reply) = submit_with(qdir, &retry);
        assert_ne!(second, first);
        assert_eq!(
            reply,
            Reply::Queued {
                queue_id: first.clone()
            }
        );
        assert_eq!(queue::list(qdir, Queue::Incoming).unwrap(), vec![id]);
        // Another maildrop file's retry, and a first attempt that happens
        // to repeat an id, are queued as usual.
        let (third, reply) = submit_with(qdir, &[("maildrop_id", src2), ("maildrop_retry", "1")]);
        assert_eq!(reply, Reply::Queued { queue_id: third });
        let (fourth, reply) = submit_with(qdir, &[("maildrop_id", src)]);
        assert_eq!(reply, Reply::Queued { queue_id: fourth });
        assert_eq!(queue::list(qdir, Queue::Incoming).unwrap().len(), 3);
    }

    #[test]
    fn abort_and_hangup_leave_nothing() {
        converse("", |s, qdir| {
            begin(s, "alice");
            rcpt(s, "bob");
            proto::send(s, &Request::Content(b"Subject: x\n\n".to_vec())).unwrap();
            proto::send(s, &Request::Abort).unwrap();
            // The session ends without an answer.
            assert!(proto::recv::<_, Reply>(s).is_err());
            assert!(queue::list(qdir, Queue::Incoming).unwrap().is_empty());
        });
        converse("", |s, qdir| {
            begin(s, "alice");
            s.shutdown(std::net::Shutdown::Write).unwrap();
            assert!(proto::recv::<_, Reply>(s).is_err());
            assert!(queue::list(qdir, Queue::Incoming).unwrap().is_empty());
        });
    }

    #[test]
    fn absurd_addresses_are_refused() {
        converse("", |s, qdir| {
            begin(s, "alice");
            rcpt(s, &"x".repeat(address::MAX_ADDRESS_LENGTH + 1));
            proto::send(s, &Request::End).unwrap();
            let r: Reply = proto::recv(s).unwrap();
            assert!(
                matches!(r, Reply::Rejected { ref status, .. } if status == "5.1.3"),
                "{r:?}"
            );
            assert!(queue::list(qdir, Queue::Incoming).unwrap().is_empty());
        });
        converse("", |s, _| {
            begin(s, &"y".repeat(address::MAX_ADDRESS_LENGTH + 1));
            rcpt(s, "bob");
            proto::send(s, &Request::End).unwrap();
            let r: Reply = proto::recv(s).unwrap();
            assert!(
                matches!(r, Reply::Rejected { ref status, .. } if status == "5.1.7"),
                "{r:?}"
            );
        });
    }

    #[test]
    fn received_for_network_mail_with_several_recipients() {
        converse("", |s, qdir| {
            let b = Begin {
                flags: 0,
                sender: "a@remote.example".into(),
                full_name: None,
                attributes: vec![
                    ("client_address".into(), "2001:db8::1".into()),
                    ("helo_name".into(), "client.example".into()),
                    ("protocol".into(), "ESMTPS".into()),
                    (
                        "tls".into(),
                        "using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)".into(),
                    ),
                ],
            };
            proto::send(s, &Request::Begin(b)).unwrap();
            let Reply::Started { queue_id } = proto::recv(s).unwrap() else {
                panic!("no Started")
            };
            rcpt(s, "x@origin.example");
            rcpt(s, "y@origin.example");
            proto::send(s, &Request::Content(b"Subject: s\n\nb\n".to_vec())).unwrap();
            proto::send(s, &Request::End).unwrap();
            assert!(matches!(proto::recv(s).unwrap(), Reply::Queued { .. }));
            let id = queue::QueueId::parse(&queue_id).unwrap();
            let qf = queue::QueueFile::open_read_only(qdir, Queue::Incoming, &id).unwrap();
            let mut content = String::new();
            qf.content().read_to_string(&mut content).unwrap();
            let expect = format!(
                "Received: from client.example (unknown [IPv6:2001:db8::1])\n\
                 \t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\n\
                 \t(No client certificate requested)\n\
                 \tby mail.example.org (Postfix) with ESMTPS id {queue_id};\n\t"
            );
            assert!(content.starts_with(&expect), "{content}");
            assert!(content.ends_with("\nSubject: s\n\nb\n"), "{content}");
        });
    }

    #[test]
    fn rewrite_contexts() {
        let s = settings("");
        let b = |flags: u32, attrs: &[(&str, &str)]| Begin {
            flags,
            sender: String::new(),
            full_name: None,
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let remote = b(0, &[("client_address", "192.0.2.1")]);
        let lo = b(0, &[("client_address", "127.0.0.1")]);
        let lo6 = b(0, &[("client_address", "IPv6:::1")]);
        let internal = b(0, &[]);
        let pickup = b(flags::LOCAL_SUBMISSION, &[]);
        assert!(!local_client(&remote, &s));
        assert!(local_client(&lo, &s) && local_client(&lo6, &s));
        assert!(local_client(&internal, &s) && local_client(&pickup, &s));
        assert_eq!(envelope_context(&remote, &s), Context::Remote);
        assert_eq!(envelope_context(&internal, &s), Context::Local);
        let told = b(
            0,
            &[
                ("client_address", "192.0.2.1"),
                ("rewrite_context", "local"),
            ],
        );
        assert_eq!(envelope_context(&told, &s), Context::Local);
        let all = settings("local_header_rewrite_clients = static:all\n");
        assert!(local_client(&remote, &all));
        let none = settings("local_header_rewrite_clients =\n");
        assert!(!local_client(&lo, &none));
    }

    #[test]
    fn protocol_errors_end_the_session() {
        converse("", |s, qdir| {
            proto::send(s, &Request::End).unwrap();
            assert!(proto::recv::<_, Reply>(s).is_err());
            assert!(queue::list(qdir, Queue::Incoming).unwrap().is_empty());
        });
        converse("", |s, qdir| {
            use std::io::Write;
            s.write_all(&[0, 0, 0, 2, 0xff, 0xff]).unwrap();
            assert!(proto::recv::<_, Reply>(s).is_err());
            assert!(queue::list(qdir, Queue::Incoming).unwrap().is_empty());
        });
    }

    /// Only the VERIFY_PROBE flag makes a probe: a client's own
    /// `trace_flags` attribute never reaches the queue file.
    #[test]
    fn trace_flags_come_from_the_probe_flag_only() {
        for (flags, attrs, want) in [
            (flags::LOCAL_SUBMISSION, vec![("trace_flags", "256")], None),
            (
                flags::VERIFY_PROBE | flags::NOTIFICATION,
                vec![],
                Some("256"),
            ),
        ] {
            converse("", |s, qdir| {
                let b = Begin {
                    flags,
                    sender: "".into(),
                    full_name: None,
                    attributes: attrs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                };
                proto::send(s, &Request::Begin(b)).unwrap();
                let Reply::Started { queue_id } = proto::recv(s).unwrap() else {
                    panic!("not started")
                };
                rcpt(s, "bob");
                proto::send(s, &Request::Content(b"\n".to_vec())).unwrap();
                proto::send(s, &Request::End).unwrap();
                assert!(matches!(proto::recv(s).unwrap(), Reply::Queued { .. }));
                let id = queue::QueueId::parse(&queue_id).unwrap();
                let qf = queue::QueueFile::open_read_only(qdir, Queue::Incoming, &id).unwrap();
                assert_eq!(qf.envelope().attribute("trace_flags"), want);
            });
        }
    }
}
