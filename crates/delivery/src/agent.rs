//! The request loop of a delivery agent (Postfix's deliver_request.c):
//! one [`Request`] per connection, one [`Reply`] with a status for every
//! recipient.
//!
//! [`serve`] validates the queue name and id, opens the queue file
//! (read-write when it can, as Postfix's agents do), takes a shared lock
//! on it for the whole request (a restarted qmgr waits for it), delivers
//! nothing if the qmgr that sent the request has gone meanwhile
//! (`sender_gone`: the next qmgr may have taken the message back) and
//! reads its Delivered-To headers once; then it calls the agent for each
//! recipient. After a successful delivery the agent marks the recipient
//! done in the queue file itself, before it answers: when qmgr dies before
//! recording the answer, the next qmgr does not deliver again. The mark
//! is written, not synced: qmgr makes the request's marks durable with
//! one fdatasync before it acts on the answer (and before it removes the
//! file), while this agent already takes the next request; it skips that
//! when every delivery is one a retry flagged maybe_delivered finds again
//! ([`Outcome::stored`]) and the message has no recipient left. Bounces
//! stay for qmgr to mark (the bounce log record must come first). The agent delivers, logs its `to=` lines
//! with [`Message::log`] and returns an [`Outcome`]. When the queue file
//! cannot be used every recipient is deferred (qmgr decides what to do
//! with a damaged file); nothing is ever reported delivered that was not
//! read to its end (the queue reader checks the content checksum there).
//!
//! A batch of requests ([`proto::deliver::Request::batched`]) is read at
//! once. [`serve_turn`] (local, virtual) delivers it with group commit
//! ([`handle_batch`], [`crate::commit`]): the Maildir `new/` directories
//! are synced once for the batch, and only then are the delivered
//! recipients marked done, their `to=` lines written and the replies
//! sent, one per request, in one write. [`serve`] and [`serve_all`]
//! deliver a batch one request after the other.

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
    /// A retry with `maybe_delivered` finds this delivery's copy
    /// ([`Outcome::stored`], [`proto::deliver::Status::findable`]).
    pub findable: bool,
}

impl Outcome {
    /// Success, dsn 2.0.0.
    pub fn sent(text: impl Into<String>) -> Outcome {
        Outcome {
            action: Action::Delivered,
            dsn: "2.0.0".into(),
            text: text.into(),
            expanded: 0,
            findable: false,
        }
    }

    /// Success into a Maildir or mbox that [`crate::dedupe`] searches on
    /// a retry flagged `maybe_delivered`.
    pub fn stored(text: impl Into<String>) -> Outcome {
        Outcome {
            findable: true,
            ..Outcome::sent(text)
        }
    }

    /// Temporary failure.
    pub fn defer(dsn: &str, text: impl Into<String>) -> Outcome {
        Outcome {
            action: Action::Deferred,
            dsn: dsn.into(),
            text: text.into(),
            expanded: 0,
            findable: false,
        }
    }

    /// Permanent failure.
    pub fn bounce(dsn: &str, text: impl Into<String>) -> Outcome {
        Outcome {
            action: Action::Bounced,
            dsn: dsn.into(),
            text: text.into(),
            expanded: 0,
            findable: false,
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
        let delays = [
            before,
            Duration::ZERO,
            setup.min(during),
            during.saturating_sub(setup),
        ];
        let delay = before.saturating_add(during);
        if crate::commit::batch_open() {
            // Written at the batch's commit (see crate::commit).
            let held = crate::commit::HeldLine {
                queue_id: self.request.queue_id.clone(),
                to: to.to_string(),
                orig_to: orig_to.to_string(),
                relay: relay.to_string(),
                delay,
                delays,
                dsn: outcome.dsn.clone(),
                action: outcome.action,
                text: outcome.text.clone(),
                verify_only: self.verify_only(),
            };
            if let Some(line) = crate::commit::hold_line(held) {
                line.log();
            }
            return;
        }
        let line = Line {
            queue_id: &self.request.queue_id,
            to,
            orig_to,
            relay,
            delay,
            delays,
            dsn: &outcome.dsn,
            action: outcome.action,
            text: &outcome.text,
        };
        let word = crate::verify_only::status_word(self.verify_only(), outcome.action);
        maillog::info!("{}", line.render_as(word));
    }
}

/// Reads one request (or one batch of them) from `stream`, delivers,
/// answers. `deliver` is called once per recipient; it logs what it did
/// and returns the recipient's outcome. `relay` names the agent in lines
/// logged here.
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
/// recipient it does not report is deferred. The requests of a batch are
/// delivered one after the other, each answered as a request alone would
/// be.
pub fn serve_all(
    stream: &mut ipc::Stream,
    relay: &str,
    deliver: &mut dyn FnMut(&Message<'_>, &[Recipient], Report<'_>),
) {
    if let ipc::Stream::Unix(s) = stream {
        let _ = s.set_read_timeout(Some(proto::IPC_TIMEOUT));
        let _ = s.set_write_timeout(Some(proto::IPC_TIMEOUT));
    }
    let requests = match recv_batch(stream) {
        Ok(r) => r,
        Err(e) => {
            maillog::warning!("read delivery request: {e}");
            return;
        }
    };
    answer_all(Path::new("."), stream, &requests, relay, deliver);
}

/// The part of [`serve_all`] after the requests are read: each is
/// delivered unless its sender has gone ([`sender_gone`]), and all are
/// answered.
fn answer_all(
    queue_dir: &Path,
    stream: &mut ipc::Stream,
    requests: &[Request],
    relay: &str,
    deliver: &mut dyn FnMut(&Message<'_>, &[Recipient], Report<'_>),
) {
    let mut replies = Vec::with_capacity(requests.len());
    for r in requests {
        match prepare(queue_dir, r, relay) {
            Ok(p) if sender_gone(stream, r) => drop(p),
            Ok(p) => replies.push(deliver_prepared(p, r, relay, true, deliver).reply),
            Err(reply) => replies.push(reply),
        }
    }
    // With the sender gone there is no one to answer.
    if replies.len() == requests.len() {
        send_replies(stream, requests, &replies);
    }
}

/// True when the qmgr that sent `request` on `stream` has closed its
/// end, checked after the request's queue file is locked. A request can
/// outlive its sender: qmgr writes it into a connection that master's
/// listener holds until an agent process starts, and qmgr may be killed
/// meanwhile. The next qmgr takes the message back from active/ unless an
/// agent holds its lock, so an agent that finds the sender gone after
/// locking must not deliver (the new qmgr may already have handed the
/// message to another agent); one that finds it there locked first, and
/// the next qmgr (started only after this one's end was closed) waits.
fn sender_gone(stream: &ipc::Stream, request: &Request) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::empty())];
    let gone = matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
        && fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR));
    if gone {
        maillog::info!(
            "{}: the queue manager that asked for this delivery has gone; left to the next one",
            maillog::printable(&request.queue_id, 40)
        );
    }
    gone
}

/// Reads a request and the rest of its batch ([`Request::batched`]).
///
/// # Errors
/// As [`proto::recv`]; a batch larger than
/// [`proto::deliver::BATCH_LIMIT`] is refused before its rest is read.
fn recv_batch(stream: &mut ipc::Stream) -> Result<Vec<Request>, String> {
    let first: Request = proto::recv(stream).map_err(|e| e.to_string())?;
    if first.batched > proto::deliver::BATCH_LIMIT {
        return Err(format!(
            "batch of {} requests exceeds {}",
            first.batched,
            proto::deliver::BATCH_LIMIT
        ));
    }
    let mut all = Vec::with_capacity(first.batched as usize + 1);
    let rest = first.batched;
    all.push(first);
    for _ in 0..rest {
        all.push(proto::recv(stream).map_err(|e| e.to_string())?);
    }
    Ok(all)
}

/// Sends the replies of a batch in one write, in the order of the
/// requests. False when that failed (the connection is of no more use).
fn send_replies(stream: &mut ipc::Stream, requests: &[Request], replies: &[Reply]) -> bool {
    let mut out = Vec::new();
    for reply in replies {
        // Writing into memory fails only for a reply beyond MAX_FRAME.
        if let Err(e) = proto::send(&mut out, reply) {
            maillog::warning!("encode delivery status: {e}");
            return false;
        }
    }
    if let Err(e) = std::io::Write::write_all(stream, &out) {
        let id = requests.first().map_or("", |r| r.queue_id.as_str());
        maillog::warning!("{}: send delivery status: {e}", maillog::printable(id, 40));
        return false;
    }
    true
}

/// One request of a connection that may carry several (under
/// [`ipc::daemon::Daemon::request_server`]): reads it (the first waits up
/// to ipc_timeout, a later one up to [`proto::deliver::NEXT_REQUEST_WAIT`]
/// and ends quietly at EOF), delivers as [`serve`] does and answers. A
/// batch ([`Request::batched`]) is one turn: its Maildir deliveries are
/// made durable together ([`handle_batch`]). The reply says
/// [`Reply::more`] unless `turn.last` or `retiring()` (called after the
/// delivery, before the reply: for example a changed table) says this
/// process stops. `None` when no request came, else whether the
/// connection stays open.
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
    let requests = match recv_batch(stream) {
        Ok(r) => r,
        Err(e) => {
            if turn.first {
                maillog::warning!("read delivery request: {e}");
            }
            return None;
        }
    };
    let Some(mut replies) = deliver_batch(Path::new("."), &requests, relay, Some(stream), deliver)
    else {
        return Some(false);
    };
    let more = !turn.last && !retiring();
    for reply in &mut replies {
        reply.more = more;
    }
    if !send_replies(stream, &requests, &replies) {
        return Some(false);
    }
    Some(more)
}

/// Delivers a batch of requests (one alone is a batch of one) against
/// `queue_dir`, as [`handle`] does each, with one difference: the
/// Maildir directories written into are synced once for the batch
/// ([`crate::commit`]), and only then are delivered recipients marked
/// done and their `to=` lines written. A recipient whose directory sync
/// failed is deferred; the others keep their outcomes. One reply per
/// request, in order.
pub fn handle_batch(
    queue_dir: &Path,
    requests: &[Request],
    relay: &str,
    deliver: &mut dyn FnMut(&Message<'_>, &Recipient) -> Outcome,
) -> Vec<Reply> {
    deliver_batch(queue_dir, requests, relay, None, deliver).unwrap_or_default()
}

/// [`handle_batch`] for the requests read from `sender`: once the batch's
/// queue files are locked, nothing is delivered and there are no replies
/// if the sender has gone ([`sender_gone`]).
fn deliver_batch(
    queue_dir: &Path,
    requests: &[Request],
    relay: &str,
    sender: Option<&ipc::Stream>,
    deliver: &mut dyn FnMut(&Message<'_>, &Recipient) -> Outcome,
) -> Option<Vec<Reply>> {
    // Every queue file of the batch is locked before the first delivery:
    // a qmgr restarted while the batch runs must not take back a message
    // this agent has yet to deliver (it would deliver it a second time,
    // without maybe_delivered on this side).
    let prepared: Vec<Result<Prepared, Reply>> = requests
        .iter()
        .map(|r| prepare(queue_dir, r, relay))
        .collect();
    if let (Some(stream), Some(first)) = (sender, requests.first())
        && sender_gone(stream, first)
    {
        return None;
    }
    let batch = crate::commit::Batch::begin();
    let mut handled: Vec<Handled> = Vec::with_capacity(requests.len());
    for (pos, (request, p)) in requests.iter().zip(prepared).enumerate() {
        let p = match p {
            Ok(p) => p,
            Err(reply) => {
                handled.push(Handled::alone(reply));
                continue;
            }
        };
        handled.push(deliver_prepared(
            p,
            request,
            relay,
            false,
            &mut |msg, rcpts, report| {
                for rcpt in rcpts {
                    batch.set_current((pos, rcpt.index));
                    report(rcpt, deliver(msg, rcpt), "");
                }
            },
        ));
    }
    let failed = batch.commit();
    let replies = handled
        .into_iter()
        .enumerate()
        .map(|(pos, mut h)| {
            for st in &mut h.reply.statuses {
                if let Some(text) = failed.get(&(pos, st.index)) {
                    st.action = Action::Deferred;
                    st.dsn = "4.3.0".into();
                    st.text = maillog::printable(text, STATUS_TEXT_LIMIT);
                } else if st.action == Action::Delivered
                    && let Some(m) = h.marker.as_mut()
                {
                    mark_done(m, st.index);
                }
            }
            // The queue file (and its lock) goes now, after the marks.
            h.reply
        })
        .collect();
    Some(replies)
}

/// The part of [`serve_all`] without the socket.
pub fn handle_all(
    queue_dir: &Path,
    request: &Request,
    relay: &str,
    deliver: &mut dyn FnMut(&Message<'_>, &[Recipient], Report<'_>),
) -> Reply {
    match prepare(queue_dir, request, relay) {
        Ok(p) => deliver_prepared(p, request, relay, true, deliver).reply,
        Err(reply) => reply,
    }
}

/// A handled request: the reply, and the handle its marks go through
/// (with the queue file's lock, held until this is dropped).
struct Handled {
    reply: Reply,
    marker: Option<QueueFile>,
    _file: Option<QueueFile>,
}

impl Handled {
    /// A request answered without its queue file.
    fn alone(reply: Reply) -> Handled {
        Handled {
            reply,
            marker: None,
            _file: None,
        }
    }
}

/// A request's queue file, open, read for its Delivered-To headers and
/// locked (shared): a qmgr restarted meanwhile does not take the message
/// back while this agent may still deliver it.
struct Prepared {
    file: QueueFile,
    delivered_to: HashSet<String>,
    received: Instant,
    received_wall: SystemTime,
}

/// Opens and locks a request's queue file; a request that cannot be
/// delivered is answered (every recipient deferred) instead.
fn prepare(queue_dir: &Path, request: &Request, relay: &str) -> Result<Prepared, Reply> {
    let received = Instant::now();
    let received_wall = SystemTime::now();
    let alone = |text: &str| defer_all(request, relay, "4.3.0", text, received, received_wall);
    let file = match open(queue_dir, request) {
        Ok(f) => f,
        Err(text) => {
            maillog::warning!("{}", maillog::printable(&text, 300));
            return Err(alone(&text));
        }
    };
    let delivered_to = match crate::headers::delivered_to(&mut file.content()) {
        Ok(set) => set,
        Err(e) => return Err(alone(&format!("queue file read error: {e}"))),
    };
    // Held until the reply is sent (the file is closed after that).
    if let Err(e) = file.lock_shared() {
        let text = format!("{}: cannot lock queue file: {e}", file.id());
        maillog::warning!("{}", maillog::printable(&text, 300));
        return Err(alone(&text));
    }
    Ok(Prepared {
        file,
        delivered_to,
        received,
        received_wall,
    })
}

/// Delivers a prepared request; `mark_now`: each delivered recipient is
/// marked done as soon as it is reported (else the caller marks, through
/// [`Handled::marker`]).
fn deliver_prepared(
    p: Prepared,
    request: &Request,
    relay: &str,
    mark_now: bool,
    deliver: &mut dyn FnMut(&Message<'_>, &[Recipient], Report<'_>),
) -> Handled {
    let Prepared {
        file,
        delivered_to,
        received,
        received_wall,
    } = p;
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
            if mark_now
                && o.action == Action::Delivered
                && let Some(m) = marker.as_mut()
            {
                mark_done(m, rcpt.index);
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
    Handled {
        reply: Reply {
            statuses,
            more: false,
        },
        marker,
        _file: Some(file),
    }
}

/// Marks a delivered recipient done in the queue file (pwrite; qmgr
/// syncs it, see the module text). A file we could only open read-only,
/// or a failed write, leaves the mark to qmgr as before: the window for a
/// duplicate after a qmgr crash is then open again, which is worth a
/// warning only for a real failure.
fn mark_done(file: &mut QueueFile, index: u32) {
    match file.write_done_mark(index as usize) {
        Ok(()) => {}
        Err(queue::Error::ReadOnly { .. }) => {}
        Err(e) => maillog::warning!("{}: cannot mark recipient {index} done: {e}", file.id()),
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
        findable: o.findable && o.action == Action::Delivered,
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
            batched: 0,
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

    /// A request qmgr wrote into a connection, and that qmgr's end:
    /// open, or closed (as when it was killed before an agent took the
    /// connection).
    fn sent_request(
        req: &Request,
        close: bool,
    ) -> (ipc::Stream, Option<std::os::unix::net::UnixStream>) {
        let (ours, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        proto::send(&mut theirs, req).unwrap();
        let theirs = if close { None } else { Some(theirs) };
        (ipc::Stream::Unix(ours), theirs)
    }

    #[test]
    fn a_request_whose_qmgr_has_gone_is_not_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let id = enqueue(dir.path(), "Subject: x\n\nbody\n");
        let req = request(&id, &["a@example.org"]);
        let qid = QueueId::parse(&id).unwrap();
        // One agent at a time (serve_turn's batch, serve_all's requests).
        for close in [true, false] {
            let (mut stream, theirs) = sent_request(&req, close);
            let requests = recv_batch(&mut stream).unwrap();
            let mut calls = 0;
            let replies = deliver_batch(
                dir.path(),
                &requests,
                "test",
                Some(&stream),
                &mut |_msg, _rcpt| {
                    calls += 1;
                    Outcome::defer("4.0.0", "later")
                },
            );
            assert_eq!(replies.is_none(), close);
            assert_eq!(calls, usize::from(!close));

            let (mut stream, theirs_too) = sent_request(&req, close);
            let requests = recv_batch(&mut stream).unwrap();
            let mut calls = 0;
            answer_all(
                dir.path(),
                &mut stream,
                &requests,
                "smtp",
                &mut |_msg, _rcpts, _report| {
                    calls += 1;
                },
            );
            assert_eq!(calls, usize::from(!close));
            if let Some(mut theirs) = theirs_too {
                let reply: Reply = proto::recv(&mut theirs).unwrap();
                assert_eq!(reply.statuses[0].action, Action::Deferred);
            }
            drop(theirs);
        }
        // Nothing was marked, and no lock is left behind.
        let qf = QueueFile::open_read_only(dir.path(), Queue::Active, &qid).unwrap();
        assert_eq!(qf.recipient_state(0), Some(queue::RecipientState::Pending));
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
    fn a_batch_syncs_once_then_marks_and_keeps_each_outcome_apart() {
        let dir = tempfile::tempdir().unwrap();
        let md = dir.path().join("Maildir");
        let ids: Vec<String> = (0..3)
            .map(|_| enqueue_n(dir.path(), "Subject: x\n\nbody\n", 2))
            .collect();
        let mut requests: Vec<Request> = ids
            .iter()
            .map(|id| request(id, &["a@example.org", "b@example.org"]))
            .collect();
        requests.insert(1, request("ABCDEF123", &["c@example.org"]));
        requests[0].batched = 3;
        let qid = |i: usize| QueueId::parse(&ids[i]).unwrap();
        let replies = handle_batch(dir.path(), &requests, "test", &mut |msg, rcpt| {
            // Nothing of the batch is marked before its commit.
            let probe = QueueFile::open_read_only(dir.path(), Queue::Active, &qid(0)).unwrap();
            assert_eq!(
                probe.recipient_state(0),
                Some(queue::RecipientState::Pending)
            );
            // Every message of the batch is locked from the first delivery on.
            let last = QueueFile::open_read_only(dir.path(), Queue::Active, &qid(2)).unwrap();
            assert!(!last.try_lock_exclusive().unwrap());
            let o = if msg.queue_id() == ids[2] && rcpt.index == 1 {
                Outcome::bounce("5.1.1", "no")
            } else {
                crate::commit::maildir_deliver(
                    &md,
                    &mailstore::maildir::Options::default(),
                    &[],
                    &mut msg.content(),
                )
                .map(|_| Outcome::sent("delivered to maildir"))
                .unwrap()
            };
            msg.log(&rcpt.address, &rcpt.original, "test", &o);
            o
        });
        assert_eq!(replies.len(), 4);
        assert_eq!(replies[1].statuses[0].action, Action::Deferred);
        for (r, id) in [(&replies[0], 0), (&replies[2], 1), (&replies[3], 2)] {
            let qf = QueueFile::open_read_only(dir.path(), Queue::Active, &qid(id)).unwrap();
            assert_eq!(r.statuses[0].action, Action::Delivered);
            assert_eq!(qf.recipient_state(0), Some(queue::RecipientState::Done));
            if id == 2 {
                assert_eq!(r.statuses[1].action, Action::Bounced);
                assert_eq!(qf.recipient_state(1), Some(queue::RecipientState::Pending));
            } else {
                assert_eq!(r.statuses[1].action, Action::Delivered);
                assert_eq!(qf.recipient_state(1), Some(queue::RecipientState::Done));
            }
            assert!(qf.try_lock_exclusive().unwrap());
        }
        assert_eq!(std::fs::read_dir(md.join("new")).unwrap().count(), 5);
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
