//! The request loop of a delivery agent (Postfix's deliver_request.c):
//! one [`Request`] per connection, one [`Reply`] with a status for every
//! recipient.
//!
//! [`serve`] validates the queue name and id, opens the queue file
//! (read-write when it can, as Postfix's agents do), takes a shared lock
//! on it for the whole request (a restarted qmgr waits for it) and reads
//! its Delivered-To headers once; then it calls the agent for each
//! recipient. After a successful delivery the agent marks the recipient
//! done in the queue file itself, before it answers: when qmgr dies before
//! recording the answer, the next qmgr does not deliver again. The mark
//! is written, not synced: qmgr makes the request's marks durable with
//! one fdatasync before it acts on the answer (and before it removes the
//! file), while this agent already takes the next request. Bounces
//! stay for qmgr to mark (the bounce log record must come first). The agent delivers, logs its `to=` lines
//! with [`Message::log`] and returns an [`Outcome`]. When the queue file
//! cannot be used every recipient is deferred (qmgr decides what to do
//! with a damaged file); nothing is ever reported delivered that was not
//! read to its end (the queue reader checks the content checksum there).

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proto::deliver::{Action, Recipient, Reply, Request, Status};
use queue::{ContentReader, Queue, QueueFile, QueueId};

use crate::logline::Line;

/// The request attribute by which qmgr says a recipient may already have
/// been delivered (value `1`).
pub const MAYBE_DELIVERED: &str = "maybe_delivered";

/// Longest text returned in a status.
pub const STATUS_TEXT_LIMIT: usize = 1000;

/// What became of one recipient (or of one expanded address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Delivered, deferred or bounced.
    pub action: Action,
    /// Enhanced status code.
    pub dsn: String,
    /// Text for the log and the DSN.
    pub text: String,
    /// Addresses submitted as a new message (alias or .forward expansion).
    pub expanded: u32,
}

impl Outcome {
    /// Success, dsn 2.0.0.
    pub fn sent(text: impl Into<String>) -> Outcome {
        Outcome {
            action: Action::Delivered,
            dsn: "2.0.0".into(),
            text: text.into(),
            expanded: 0,
        }
    }

    /// Temporary failure.
    pub fn defer(dsn: &str, text: impl Into<String>) -> Outcome {
        Outcome {
            action: Action::Deferred,
            dsn: dsn.into(),
            text: text.into(),
            expanded: 0,
        }
    }

    /// Permanent failure.
    pub fn bounce(dsn: &str, text: impl Into<String>) -> Outcome {
        Outcome {
            action: Action::Bounced,
            dsn: dsn.into(),
            text: text.into(),
            expanded: 0,
        }
    }

    /// A failure from the mail store, with `what` in front of its text
    /// (`cannot update mailbox /var/mail/bob for user bob`): deferred or
    /// bounced as [`mailstore::Error::status`] says.
    pub fn store_error(what: &str, err: &mailstore::Error) -> Outcome {
        let text = format!("{what}. {err}");
        if err.is_temporary() {
            Outcome::defer(err.status(), text)
        } else {
            Outcome::bounce(err.status(), text)
        }
    }

    /// Deferred first, then bounced, then delivered: the outcome that
    /// decides for a recipient whose expansion had several results.
    pub fn severity(&self) -> u8 {
        match self.action {
            Action::Delivered => 0,
            Action::Bounced => 1,
            Action::Deferred => 2,
        }
    }
}

/// What an agent sees of the message being delivered.
#[derive(Debug)]
pub struct Message<'a> {
    /// The request.
    pub request: &'a Request,
    /// The queue file, open read-only.
    pub file: &'a QueueFile,
    delivered_to: &'a HashSet<String>,
    received: Instant,
    received_wall: SystemTime,
}

impl Message<'_> {
    /// The content from its start; read it to the end without error
    /// before reporting a success.
    pub fn content(&self) -> ContentReader<'_> {
        self.file.content()
    }

    /// The message size in bytes.
    pub fn size(&self) -> u64 {
        self.file.content_len()
    }

    /// The envelope sender, internal form, "" for the null sender.
    pub fn sender(&self) -> &str {
        &self.request.sender
    }

    /// The queue id.
    pub fn queue_id(&self) -> &str {
        &self.request.queue_id
    }

    /// True when qmgr says this message may already have been delivered
    /// (an agent died during an earlier attempt, or qmgr took the file
    /// back from active/ after a restart): the agent should look for an
    /// earlier copy before it writes one. Only the request counts, never
    /// the queue file's attributes (a submitter could set those).
    pub fn maybe_delivered(&self) -> bool {
        self.request
            .attributes
            .iter()
            .any(|(k, v)| k == MAYBE_DELIVERED && v == "1")
    }

    /// The tag that names this delivery of `rcpt` in a mailbox: queue id
    /// and recipient index (`QUEUEID_3`), for [`mailstore`]'s duplicate
    /// checks. Queue ids are unique, so the tag is too.
    pub fn delivery_tag(&self, rcpt: &Recipient) -> String {
        format!("{}_{}", self.request.queue_id, rcpt.index)
    }

    /// A message attribute from the request (then the queue file).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.request
            .attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .or_else(|| self.file.envelope().attribute(name))
    }

    /// True when the message header has `Delivered-To: address` (a
    /// forwarding loop).
    pub fn has_delivered_to(&self, address: &str) -> bool {
        self.delivered_to
            .contains(&crate::headers::delivered_form(address))
    }

    /// Arrival time.
    pub fn arrival(&self) -> SystemTime {
        // Checked: the values come from a peer.
        Duration::from_secs(self.request.arrival_secs)
            .checked_add(Duration::from_micros(u64::from(
                self.request.arrival_micros,
            )))
            .and_then(|d| UNIX_EPOCH.checked_add(d))
            .unwrap_or(UNIX_EPOCH)
    }

    /// Logs a `to=` line for `to` (orig_to `orig_to`) with this outcome.
    pub fn log(&self, to: &str, orig_to: &str, relay: &str, outcome: &Outcome) {
        self.log_with_setup(to, orig_to, relay, outcome, Duration::ZERO);
    }

    /// As [`Message::log`] for an agent that connects somewhere first:
    /// `setup` (DNS, connect, greeting, HELO, TLS) is the third of the
    /// `delays=a/b/c/d` figures and is not counted again in the fourth.
    pub fn log_with_setup(
        &self,
        to: &str,
        orig_to: &str,
        relay: &str,
        outcome: &Outcome,
        setup: Duration,
    ) {
        let before = self
            .received_wall
            .duration_since(self.arrival())
            .unwrap_or(Duration::ZERO);
        let during = self.received.elapsed();
        let line = Line {
            queue_id: &self.request.queue_id,
            to,
            orig_to,
            relay,
            delay: before.saturating_add(during),
            delays: [
                before,
                Duration::ZERO,
                setup.min(during),
                during.saturating_sub(setup),
            ],
            dsn: &outcome.dsn,
            action: outcome.action,
            text: &outcome.text,
        };
        let word = crate::verify_only::status_word(self.verify_only(), outcome.action);
        maillog::info!("{}", line.render_as(word));
    }
}

/// Reads one request from `stream`, delivers, answers. `deliver` is
/// called once per recipient; it logs what it did and returns the
/// recipient's outcome. `relay` names the agent in lines logged here.
pub fn serve(
    stream: &mut ipc::Stream,
    relay: &str,
    deliver: &mut dyn FnMut(&Message<'_>, &Recipient) -> Outcome,
) {
    serve_all(stream, relay, &mut |msg, rcpts, report| {
        for rcpt in rcpts {
            report(rcpt, deliver(msg, rcpt), "");
        }
    })
}

/// Delivers one request against the queue directory `queue_dir` (the
/// daemon's current directory); the part of [`serve`] without the socket.
pub fn handle(
    queue_dir: &Path,
    request: &Request,
    relay: &str,
    deliver: &mut dyn FnMut(&Message<'_>, &Recipient) -> Outcome,
) -> Reply {
    handle_all(queue_dir, request, relay, &mut |msg, rcpts, report| {
        for rcpt in rcpts {
            report(rcpt, deliver(msg, rcpt), "");
        }
    })
}

/// A reporter handed to a [`serve_all`] agent: called once per recipient
/// as soon as its outcome is known (a delivered recipient is marked done
/// in the queue file right then), with the relay that decided
/// (`host[addr]:port`, for the status and the DSN's Remote-MTA; "" for the
/// agent's own name).
pub type Report<'r> = &'r mut dyn FnMut(&Recipient, Outcome, &str);

/// As [`serve`] for an agent that delivers all recipients of a request
/// at once (smtp, lmtp: one transaction for many recipients). `deliver`
/// reports each recipient's outcome through its third argument; a
/// recipient it does not report is deferred.
pub fn serve_all(
    stream: &mut ipc::Stream,
    relay: &str,
    deliver: &mut dyn FnMut(&Message<'_>, &[Recipient], Report<'_>),
) {
    if let ipc::Stream::Unix(s) = stream {
        let _ = s.set_read_timeout(Some(proto::IPC_TIMEOUT));
        let _ = s.set_write_timeout(Some(proto::IPC_TIMEOUT));
    }
    let request: Request = match proto::recv(stream) {
        Ok(r) => r,
        Err(e) => {
            maillog::warning!("read delivery request: {e}");
            return;
        }
    };
    let reply = handle_all(Path::new("."), &request, relay, deliver);
    if let Err(e) = proto::send(stream, &reply) {
        maillog::warning!(
            "{}: send delivery status: {e}",
            maillog::printable(&request.queue_id, 40)
        );
    }
}

/// One request of a connection that may carry several (under
/// [`ipc::daemon::Daemon::request_server`]): reads it (the first waits up
/// to ipc_timeout, a later one up to [`proto::deliver::NEXT_REQUEST_WAIT`]
/// and ends quietly at EOF), delivers as [`serve`] does and answers. The
/// reply says [`Reply::more`] unless `turn.last` or `retiring()` (called
/// after the delivery, before the reply: for example a changed table)
/// says this process stops. `None` when no request came, else whether
/// the connection stays open.
pub fn serve_turn(
    stream: &mut ipc::Stream,
    relay: &str,
    turn: ipc::single::Turn,
    retiring: &mut dyn FnMut() -> bool,
    deliver: &mut dyn FnMut(&Message<'_>, &Recipient) -> Outcome,
) -> Option<bool> {
    // The first request may take ipc_timeout to come, a later one
    // NEXT_REQUEST_WAIT (set once, at the second).
    if let ipc::Stream::Unix(s) = stream {
        if turn.first {
            let _ = s.set_read_timeout(Some(proto::IPC_TIMEOUT));
            let _ = s.set_write_timeout(Some(proto::IPC_TIMEOUT));
        } else if turn.second {
            let _ = s.set_read_timeout(Some(proto::deliver::NEXT_REQUEST_WAIT));
        }
    }
    let request: Request = match proto::recv(stream) {
        Ok(r) => r,
        Err(e) => {
            if turn.first {
                maillog::warning!("read delivery request: {e}");
            }
            return None;
        }
    };
    let mut reply = handle_all(
        Path::new("."),
        &request,
        relay,
        &mut |msg, rcpts, report| {
            for rcpt in rcpts {
                report(rcpt, deliver(msg, rcpt), "");
            }
        },
    );
    reply.more = !turn.last && !retiring();
    if let Err(e) = proto::send(stream, &reply) {
        maillog::warning!(
            "{}: send delivery status: {e}",
            maillog::printable(&request.queue_id, 40)
        );
        return Some(false);
    }
    Some(reply.more)
}

/// The part of [`serve_all`] without the socket.
pub fn handle_all(
    queue_dir: &Path,
    request: &Request,
    relay: &str,
    deliver: &mut dyn FnMut(&Message<'_>, &[Recipient], Report<'_>),
) -> Reply {
    let received = Instant::now();
    let received_wall = SystemTime::now();
    let file = match open(queue_dir, request) {
        Ok(f) => f,
        Err(text) => {
            maillog::warning!("{}", maillog::printable(&text, 300));
            return defer_all(request, relay, "4.3.0", &text, received, received_wall);
        }
    };
    let delivered_to = match crate::headers::delivered_to(&mut file.content()) {
        Ok(set) => set,
        Err(e) => {
            let text = format!("queue file read error: {e}");
            return defer_all(request, relay, "4.3.0", &text, received, received_wall);
        }
    };
    // Held until the reply is sent (the file is closed after that): a
    // qmgr restarted meanwhile does not take the message back.
    if let Err(e) = file.lock_shared() {
        let text = format!("{}: cannot lock queue file: {e}", file.id());
        maillog::warning!("{}", maillog::printable(&text, 300));
        return defer_all(request, relay, "4.3.0", &text, received, received_wall);
    }
    let mut statuses: Vec<Status> = Vec::with_capacity(request.recipients.len());
    // The agent reads the file through `msg` while outcomes are marked in
    // it: marks go through a second handle on the same file (without one,
    // qmgr marks, as for a read-only file).
    let mut marker = file.try_clone().ok();
    {
        let msg = Message {
            request,
            file: &file,
            delivered_to: &delivered_to,
            received,
            received_wall,
        };
        let mut report = |rcpt: &Recipient, o: Outcome, by: &str| {
            if statuses.iter().any(|s| s.index == rcpt.index) {
                return;
            }
            // Right after the (fsynced) delivery, before the reply.
            if o.action == Action::Delivered
                && let Some(m) = marker.as_mut()
            {
                mark_done(m, rcpt);
            }
            statuses.push(status(rcpt, if by.is_empty() { relay } else { by }, o));
        };
        deliver(&msg, &request.recipients, &mut report);
    }
    for rcpt in &request.recipients {
        if !statuses.iter().any(|s| s.index == rcpt.index) {
            statuses.push(status(
                rcpt,
                relay,
                Outcome::defer("4.3.0", "unknown mail transport error"),
            ));
        }
    }
    Reply {
        statuses,
        more: false,
    }
}

/// Marks a delivered recipient done in the queue file (pwrite; qmgr
/// syncs it, see the module text). A file we could only open read-only,
/// or a failed write, leaves the mark to qmgr as before: the window for a
/// duplicate after a qmgr crash is then open again, which is worth a
/// warning only for a real failure.
fn mark_done(file: &mut QueueFile, rcpt: &Recipient) {
    match file.write_done_mark(rcpt.index as usize) {
        Ok(()) => {}
        Err(queue::Error::ReadOnly { .. }) => {}
        Err(e) => maillog::warning!(
            "{}: cannot mark recipient {} done: {e}",
            file.id(),
            rcpt.index
        ),
    }
}

/// Opens the queue file read-write (to mark recipients done), else
/// read-only (a queue file we may not write: qmgr marks).
fn open(queue_dir: &Path, request: &Request) -> Result<QueueFile, String> {
    let id = QueueId::parse(&request.queue_id)
        .map_err(|e| format!("bad queue id in delivery request: {e}"))?;
    let queue = Queue::parse(&request.queue_name)
        .map_err(|e| format!("bad queue name in delivery request: {e}"))?;
    match QueueFile::open(queue_dir, queue, &id) {
        Ok(f) => Ok(f),
        Err(queue::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            QueueFile::open_read_only(queue_dir, queue, &id)
                .map_err(|e| format!("{id}: cannot open queue file: {e}"))
        }
        Err(e) => Err(format!("{id}: cannot open queue file: {e}")),
    }
}

fn status(rcpt: &Recipient, relay: &str, o: Outcome) -> Status {
    let mut text = o.text;
    if text.len() > STATUS_TEXT_LIMIT {
        text = maillog::printable(&text, STATUS_TEXT_LIMIT);
    }
    Status {
        index: rcpt.index,
        action: o.action,
        dsn: o.dsn,
        relay: relay.to_string(),
        text,
        expanded: o.expanded,
    }
}

fn defer_all(
    request: &Request,
    relay: &str,
    dsn: &str,
    text: &str,
    received: Instant,
    received_wall: SystemTime,
) -> Reply {
    let o = Outcome::defer(dsn, text);
    let statuses = request
        .recipients
        .iter()
        .map(|r| {
            let arrival = UNIX_EPOCH
                .checked_add(Duration::from_secs(request.arrival_secs))
                .unwrap_or(UNIX_EPOCH);
            let before = received_wall
                .duration_since(arrival)
                .unwrap_or(Duration::ZERO);
            let line = Line {
                queue_id: &request.queue_id,
                to: &r.address,
                orig_to: &r.original,
                relay,
                delay: before.saturating_add(received.elapsed()),
                delays: [before, Duration::ZERO, Duration::ZERO, received.elapsed()],
                dsn,
                action: Action::Deferred,
                text,
            };
            let probe =
                proto::deliver::trace::verify_only(proto::deliver::trace::of(&request.attributes));
            let word = crate::verify_only::status_word(probe, Action::Deferred);
            maillog::info!("{}", line.render_as(word));
            status(r, relay, o.clone())
        })
        .collect();
    Reply {
        statuses,
        more: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn request(id: &str, rcpts: &[&str]) -> Request {
        Request {
            queue_name: "active".into(),
            queue_id: id.into(),
            sender: "alice@example.org".into(),
            nexthop: "example.org".into(),
            arrival_secs: 0,
            arrival_micros: 0,
            recipients: rcpts
                .iter()
                .enumerate()
                .map(|(i, a)| Recipient {
                    index: i as u32,
                    address: a.to_string(),
                    original: a.to_string(),
                    dsn_orcpt: None,
                    dsn_notify: 0,
                })
                .collect(),
            attributes: vec![],
        }
    }

    fn enqueue(dir: &Path, text: &str) -> String {
        enqueue_n(dir, text, 1)
    }

    fn enqueue_n(dir: &Path, text: &str, n: usize) -> String {
        queue::layout::create_or_repair(dir, None, None).unwrap();
        let mut w = queue::enter(dir).unwrap();
        w.write_all(text.as_bytes()).unwrap();
        let mut env = queue::Envelope::new("alice@example.org", SystemTime::now());
        for i in 0..n {
            env.add_recipient(&format!("r{i}@example.org"));
        }
        let id = *w.finish(&env).unwrap().id();
        queue::rename(dir, &id, Queue::Incoming, Queue::Active).unwrap();
        id.to_string()
    }

    #[test]
    fn one_status_per_recipient_and_loop_info() {
        let dir = tempfile::tempdir().unwrap();
        let id = enqueue_n(
            dir.path(),
            "Delivered-To: Bob@example.org\nSubject: x\n\nbody\n",
            2,
        );
        let req = request(&id, &["bob@example.org", "carol@example.org"]);
        let reply = handle(dir.path(), &req, "test", &mut |msg, rcpt| {
            let mut body = String::new();
            msg.content().read_to_string(&mut body).unwrap();
            assert!(body.ends_with("body\n"));
            if msg.has_delivered_to(&rcpt.address) {
                Outcome::bounce("5.4.6", "loop")
            } else {
                Outcome::sent("ok")
            }
        });
        assert_eq!(reply.statuses.len(), 2);
        assert_eq!(reply.statuses[0].action, Action::Bounced);
        assert_eq!(reply.statuses[1].action, Action::Delivered);
        assert_eq!(reply.statuses[1].index, 1);
        assert_eq!(reply.statuses[1].relay, "test");
    }

    #[test]
    fn delivered_recipients_are_marked_done_before_the_reply() {
        let dir = tempfile::tempdir().unwrap();
        let id = enqueue_n(dir.path(), "Subject: x\n\nbody\n", 3);
        let req = request(&id, &["a@example.org", "b@example.org", "c@example.org"]);
        let qid = QueueId::parse(&id).unwrap();
        let reply = handle(dir.path(), &req, "test", &mut |_msg, rcpt| {
            // A restarted qmgr sees the file locked while we deliver.
            let probe = QueueFile::open_read_only(dir.path(), Queue::Active, &qid).unwrap();
            assert!(!probe.try_lock_exclusive().unwrap());
            // The recipient delivered before this one is already done.
            if rcpt.index == 1 {
                assert_eq!(probe.recipient_state(0), Some(queue::RecipientState::Done));
            }
            match rcpt.index {
                0 => Outcome::sent("ok"),
                1 => Outcome::bounce("5.1.1", "no"),
                _ => Outcome::defer("4.2.0", "later"),
            }
        });
        assert_eq!(reply.statuses.len(), 3);
        let qf = QueueFile::open_read_only(dir.path(), Queue::Active, &qid).unwrap();
        assert_eq!(qf.recipient_state(0), Some(queue::RecipientState::Done));
        // Bounces are marked by qmgr after the bounce log record.
        assert_eq!(qf.recipient_state(1), Some(queue::RecipientState::Pending));
        assert_eq!(qf.recipient_state(2), Some(queue::RecipientState::Pending));
        // The lock went with the reply.
        assert!(qf.try_lock_exclusive().unwrap());
    }

    #[test]
    fn handle_all_marks_each_delivery_when_reported_and_defers_the_unreported() {
        let dir = tempfile::tempdir().unwrap();
        let id = enqueue_n(dir.path(), "Subject: x\n\nbody\n", 3);
        let req = request(&id, &["a@example.org", "b@example.org", "c@example.org"]);
        let qid = QueueId::parse(&id).unwrap();
        let reply = handle_all(dir.path(), &req, "smtp", &mut |_msg, rcpts, report| {
            assert_eq!(rcpts.len(), 3);
            report(
                &rcpts[0],
                Outcome::sent("250 ok"),
                "mx.example[192.0.2.1]:25",
            );
            let probe = QueueFile::open_read_only(dir.path(), Queue::Active, &qid).unwrap();
            assert_eq!(probe.recipient_state(0), Some(queue::RecipientState::Done));
            report(&rcpts[1], Outcome::bounce("5.1.1", "550 no"), "");
            // A second report for the same recipient is ignored.
            report(&rcpts[0], Outcome::defer("4.0.0", "again"), "");
        });
        assert_eq!(reply.statuses.len(), 3);
        let by = |i: u32| reply.statuses.iter().find(|s| s.index == i).unwrap();
        assert_eq!(by(0).action, Action::Delivered);
        assert_eq!(by(0).relay, "mx.example[192.0.2.1]:25");
        assert_eq!(by(1).action, Action::Bounced);
        assert_eq!(by(1).relay, "smtp");
        assert_eq!(by(2).action, Action::Deferred);
        let qf = QueueFile::open_read_only(dir.path(), Queue::Active, &qid).unwrap();
        assert_eq!(qf.recipient_state(1), Some(queue::RecipientState::Pending));
        assert_eq!(qf.recipient_state(2), Some(queue::RecipientState::Pending));
    }

    #[test]
    fn maybe_delivered_comes_from_the_request_only() {
        let dir = tempfile::tempdir().unwrap();
        let id = enqueue(dir.path(), "Subject: x\n\nbody\n");
        let mut req = request(&id, &["bob@example.org"]);
        let seen = |req: &Request| {
            let mut v = None;
            handle(dir.path(), req, "test", &mut |msg, rcpt| {
                v = Some((msg.maybe_delivered(), msg.delivery_tag(rcpt)));
                Outcome::defer("4.0.0", "x")
            });
            v.unwrap()
        };
        assert_eq!(seen(&req), (false, format!("{id}_0")));
        req.attributes.push((MAYBE_DELIVERED.into(), "1".into()));
        assert!(seen(&req).0);
    }

    #[test]
    fn absurd_arrival_times_do_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let id = enqueue(dir.path(), "Subject: x\n\nbody\n");
        let mut req = request(&id, &["bob@example.org"]);
        req.arrival_secs = u64::MAX;
        req.arrival_micros = u32::MAX;
        let reply = handle(dir.path(), &req, "test", &mut |msg, rcpt| {
            let o = Outcome::sent("ok");
            msg.log(&rcpt.address, &rcpt.original, "test", &o);
            o
        });
        assert_eq!(reply.statuses[0].action, Action::Delivered);
    }

    #[test]
    fn bad_requests_defer_everything() {
        let dir = tempfile::tempdir().unwrap();
        queue::layout::create_or_repair(dir.path(), None, None).unwrap();
        for id in ["../../etc/passwd", "ABCDEF123"] {
            let req = request(id, &["bob@example.org"]);
            let reply = handle(dir.path(), &req, "test", &mut |_, _| Outcome::sent("no"));
            assert_eq!(reply.statuses.len(), 1);
            assert_eq!(reply.statuses[0].action, Action::Deferred);
        }
    }
}
