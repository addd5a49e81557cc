//! The worker threads: each takes one piece of work at a time, does the
//! blocking part (a delivery request to an agent and the status records
//! that follow, or finishing a message), and reports back to the main
//! loop through a channel and a mio waker.
//!
//! Why threads: a delivery is a blocking request/reply on a Unix socket
//! that may take seconds; a small pool of threads (grown on demand up to
//! [`crate::params::MAX_IN_FLIGHT`], never shrunk) keeps many in flight at
//! once with plain blocking I/O, while the main loop stays free to take
//! triggers and schedule. Each message's queue file is shared behind a
//! mutex, held only for the pwrite + fdatasync of a done mark.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use ipc::work_queue::WorkQueue;
use mio::Waker;
use proto::bounce::{self, Entry, Log};
use proto::deliver::{self, Action, Recipient, Status};
use queue::{Queue, QueueFile, QueueId, RecipientState};

use crate::params::Params;

/// A queue file shared between the main loop and the workers.
pub(crate) type SharedFile = Arc<Mutex<QueueFile>>;

/// The mode bit that says a delay warning was sent for a message (group
/// execute on the queue file: the queue file format is immutable apart
/// from the done marks, and a mode bit survives moves between queues).
pub(crate) const WARNED_BIT: u32 = 0o010;

/// The mode bit that says recipients of a message may have been delivered
/// without being marked done (other execute): an agent died or timed out
/// after it got a request, or qmgr took the file back from active/ after a
/// restart. Every later request for the message then carries
/// `maybe_delivered=1`, and local and virtual look for an earlier copy
/// before they write one.
pub(crate) const MAYBE_DELIVERED_BIT: u32 = 0o001;

/// Sets `bit` in the mode of message `id` in active/.
pub(crate) fn set_mode_bit(
    queue_dir: &std::path::Path,
    id: &QueueId,
    bit: u32,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let path = queue::queue_path(queue_dir, Queue::Active, id);
    let m = std::fs::metadata(&path)?;
    let mode = m.permissions().mode() & 0o7777;
    if mode & bit == bit {
        return Ok(());
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode | bit))
}

/// What does not change while a message is active.
#[derive(Debug)]
pub(crate) struct MsgInfo {
    /// Queue id.
    pub(crate) id: QueueId,
    /// Envelope sender (empty for `<>`).
    pub(crate) sender: String,
    /// Arrival time.
    pub(crate) arrival: SystemTime,
    /// When the message entered the active queue.
    pub(crate) active_at: SystemTime,
    /// Attributes for delivery requests.
    pub(crate) attributes: Vec<(String, String)>,
    /// `postsuper -e`/`-f` marked it: return it without delivering.
    pub(crate) force_expired: bool,
}

/// How a delivery is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum How {
    /// A request to `private/<transport>`.
    Agent,
    /// The built-in `error` transport: bounce with this text.
    Bounce(String),
    /// The built-in `retry` transport (and defer_transports, resolver
    /// failures): defer with this text.
    Defer(String),
}

/// One delivery request.
#[derive(Debug)]
pub(crate) struct Delivery {
    /// The message.
    pub(crate) msg: Arc<MsgInfo>,
    /// Its queue file.
    pub(crate) file: SharedFile,
    /// Transport.
    pub(crate) transport: String,
    /// Next hop.
    pub(crate) nexthop: String,
    /// Recipients.
    pub(crate) recipients: Vec<Recipient>,
    /// How.
    pub(crate) how: How,
}

/// The end of a message's pass through the active queue.
#[derive(Debug)]
pub(crate) struct Finish {
    /// The message.
    pub(crate) msg: Arc<MsgInfo>,
    /// Its queue file.
    pub(crate) file: SharedFile,
    /// Latest (dsn, text) of each deferred recipient, by index.
    pub(crate) reasons: HashMap<u32, (String, String)>,
    /// A delay warning was already sent.
    pub(crate) warned: bool,
}

/// Work for a thread.
#[derive(Debug)]
pub(crate) enum Work {
    /// Deliver: one request, or a batch of requests to one destination
    /// (same transport and next hop, all [`How::Agent`]) sent at once on
    /// one agent connection (see proto::deliver's batches).
    Deliver(Vec<Delivery>),
    /// Finish messages, one after the other: the messages a round of
    /// the main loop found done (a batch's replies finish many at once;
    /// a thread each would only add threads, each with its stack and
    /// malloc arena, for work of some tens of microseconds a message).
    Finish(Vec<Finish>),
}

/// What became of a message after [`Finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Removed from the queue.
    Removed,
    /// Moved to deferred/.
    Deferred,
    /// Left in active/ (a file operation failed): look again later.
    Kept,
}

/// What a delivery says about its destination (Postfix's site status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Site {
    /// Not an agent delivery, or the agent failed: no feedback.
    Unknown,
    /// The agent worked through the destination (whatever the recipients'
    /// fates): positive feedback.
    Up,
    /// No server of the destination could be reached (every recipient
    /// deferred with relay=none): negative feedback, with that reason
    /// (dsn, text).
    Down(String, String),
}

/// The site status of an agent's statuses.
pub(crate) fn site_status(statuses: &[Status]) -> Site {
    match statuses.first() {
        Some(first)
            if statuses
                .iter()
                .all(|s| s.action == Action::Deferred && s.relay == "none") =>
        {
            Site::Down(first.dsn.clone(), first.text.clone())
        }
        Some(_) => Site::Up,
        None => Site::Unknown,
    }
}

/// A report to the main loop.
#[derive(Debug)]
pub(crate) enum Done {
    /// The agent answered (or no agent was needed): the destination has
    /// a delivery fewer in flight. [`Done::Delivered`] follows for the
    /// message once the answer is recorded (the agent's done marks made
    /// durable first).
    Released {
        /// (transport, nexthop).
        dest: (String, String),
        /// What the delivery says about the destination.
        site: Site,
    },
    /// A delivery ended; these recipients are still pending (index, dsn, text).
    Delivered {
        /// The message.
        id: QueueId,
        /// Recipients not done.
        pending: Vec<(u32, String, String)>,
        /// The last report of its [`Work`] (a batch reports each delivery).
        last: bool,
    },
    /// A message left the active queue (or stays in active/).
    Finished {
        /// The message.
        id: QueueId,
        /// Where it went.
        outcome: Outcome,
        /// The last report of its [`Work`].
        last: bool,
    },
}

/// What the workers share.
#[derive(Debug)]
pub(crate) struct Env {
    /// The queue directory (`.` under the daemon skeleton).
    pub(crate) queue_dir: PathBuf,
    /// Settings.
    pub(crate) params: Params,
    /// Where address verification probe results go.
    pub(crate) verify: crate::probe::Settings,
    /// Agent connections kept for the next request.
    pub(crate) kept: crate::kept::Kept,
}

/// The worker threads.
pub(crate) struct Pool {
    queue: Arc<WorkQueue<Work>>,
    done: Sender<Done>,
    waker: Arc<Waker>,
    env: Arc<Env>,
    threads: usize,
    busy: usize,
}

impl Pool {
    /// An empty pool; threads start as work arrives.
    pub(crate) fn new(env: Arc<Env>, done: Sender<Done>, waker: Arc<Waker>) -> Pool {
        Pool {
            queue: Arc::new(WorkQueue::default()),
            done,
            waker,
            env,
            threads: 0,
            busy: 0,
        }
    }

    /// Work in progress.
    pub(crate) fn busy(&self) -> usize {
        self.busy
    }

    /// Hands out work, starting a thread when no idle one is left for
    /// it. (Counting the work not yet reported back instead started a
    /// thread for each of a batch's Finish items: the main loop learns
    /// late that they are done, and the threads each kept their own
    /// stack and malloc arena.)
    pub(crate) fn submit(&mut self, work: Work) {
        self.busy = self.busy.saturating_add(1);
        if self.queue.push(work) {
            let queue = Arc::clone(&self.queue);
            let done = self.done.clone();
            let waker = Arc::clone(&self.waker);
            let env = Arc::clone(&self.env);
            match std::thread::Builder::new()
                .name("delivery".into())
                .spawn(move || worker(&queue, &done, &waker, &env))
            {
                Ok(_) => self.threads += 1,
                Err(e) if self.threads == 0 => maillog::fatal!("cannot start a worker thread: {e}"),
                Err(e) => maillog::warning!("cannot start a worker thread: {e}"),
            }
        }
    }

    /// A report came back.
    pub(crate) fn completed(&mut self) {
        self.busy = self.busy.saturating_sub(1);
    }
}

impl Drop for Pool {
    /// The threads finish the work queued, then end.
    fn drop(&mut self) {
        self.queue.close();
    }
}

fn worker(queue: &WorkQueue<Work>, done: &Sender<Done>, waker: &Waker, env: &Env) {
    while let Some(work) = queue.next() {
        let release = |dest: (String, String), site: Site| {
            if done.send(Done::Released { dest, site }).is_ok() {
                let _ = waker.wake();
            }
        };
        let reports = match work {
            Work::Deliver(ds) => deliver(ds, env, release),
            Work::Finish(fs) => {
                let n = fs.len();
                fs.into_iter()
                    .enumerate()
                    .map(|(i, f)| finish(f, env, i + 1 == n))
                    .collect()
            }
        };
        for report in reports {
            if done.send(report).is_err() {
                return;
            }
        }
        let _ = waker.wake();
    }
}

/// A transport name safe to join to `private/`: Postfix service names.
pub(crate) fn valid_transport(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Runs one delivery (or a batch of them, one agent connection and one
/// destination slot for all) and records every status. `release` frees
/// the destination's slot as soon as the agent has answered: the agent
/// wrote its done marks before that answer, and they are made durable
/// here (one fdatasync for each request's queue file, unless
/// [`marks_need_sync`] says a crash cannot repeat these deliveries)
/// before any status is recorded, so nothing acts on a mark that is not
/// on disk, while the destination's next delivery need not wait for this
/// sync. A failure of
/// one request of a batch (its queue file, its recipients) touches only
/// that request's statuses; a lost connection defers every request not
/// answered yet.
fn deliver(
    ds: Vec<Delivery>,
    env: &Env,
    release: impl FnOnce((String, String), Site),
) -> Vec<Done> {
    let started = SystemTime::now();
    let Some(first) = ds.first() else {
        return Vec::new();
    };
    let dest = (first.transport.clone(), first.nexthop.clone());
    let answers: Vec<Result<Vec<Status>, (String, bool)>> =
        if ds.iter().all(|d| matches!(d.how, How::Agent)) {
            call_agent(&ds, env)
        } else {
            ds.iter().map(|_| Err((String::new(), false))).collect()
        };
    let mut site = Site::Unknown;
    let answered: Vec<Status> = answers
        .iter()
        .filter_map(|a| a.as_ref().ok())
        .flatten()
        .cloned()
        .collect();
    if !answered.is_empty() {
        site = site_status(&answered);
    }
    let mut all = Vec::with_capacity(ds.len());
    for (d, answer) in ds.into_iter().zip(answers) {
        let statuses = match &d.how {
            How::Agent => match answer {
                Ok(s) => s,
                Err((reason, sent)) => {
                    // The agent had the request: it may have delivered.
                    if sent
                        && let Err(e) = set_mode_bit(&env.queue_dir, &d.msg.id, MAYBE_DELIVERED_BIT)
                    {
                        maillog::warning!("{}: cannot flag the message: {e}", d.msg.id);
                    }
                    let text = format!("delivery temporarily suspended: {reason}");
                    uniform(&d, Action::Deferred, "4.3.0", &text, true, started)
                }
            },
            How::Bounce(text) => {
                let (dsn, text) = split_dsn(text, "5.0.0");
                uniform(&d, Action::Bounced, &dsn, &text, true, started)
            }
            How::Defer(text) => {
                let (dsn, text) = split_dsn(text, "4.0.0");
                uniform(&d, Action::Deferred, &dsn, &text, true, started)
            }
        };
        all.push((d, statuses));
    }
    release(dest, site);
    let n = all.len();
    all.into_iter()
        .enumerate()
        .map(|(i, (d, statuses))| {
            if matches!(d.how, How::Agent) && marks_need_sync(&statuses, || all_done(&d.file)) {
                sync_agent_marks(&d.file, &d.msg.id);
            }
            let pending = if crate::probe::is_probe(&d.msg) {
                crate::probe::settle(&d, statuses, env)
            } else {
                record(&d, statuses, env)
            };
            Done::Delivered {
                id: d.msg.id,
                pending,
                last: i + 1 == n,
            }
        })
        .collect()
}

/// Whether the done marks an agent wrote for these statuses must be made
/// durable before they are acted on: yes when it delivered anything,
/// unless every delivery is one a retry finds again ([`Status::findable`])
/// and `finished()` says the message has no recipient left (it is about
/// to be removed). A crash (of the machine: a killed process loses no
/// written mark) before the removal reaches the disk then leaves the file
/// in active/, which the next qmgr takes back with maybe_delivered, and
/// local or virtual find the copy instead of writing a second: the
/// fdatasync, a flush of the disk's cache for every message, buys
/// nothing there. `finish_inner` syncs them after all if the file stays.
fn marks_need_sync(statuses: &[Status], finished: impl FnOnce() -> bool) -> bool {
    let mut delivered = statuses
        .iter()
        .filter(|s| s.action == Action::Delivered)
        .peekable();
    delivered.peek().is_some() && !(delivered.all(|s| s.findable) && finished())
}

/// True when every recipient of the file is marked done (the agent's
/// marks read back).
fn all_done(file: &SharedFile) -> bool {
    let mut qf = file.lock().unwrap_or_else(PoisonError::into_inner);
    qf.reload_states().is_ok() && qf.recipients().all(|(_, _, s)| s == RecipientState::Done)
}

/// Makes the done marks a delivery agent wrote durable (see
/// [`queue::QueueFile::write_done_mark`]). A failure is logged: the
/// marks stay in the file and are written back by the kernel, as after
/// an agent's own failed sync before.
fn sync_agent_marks(file: &SharedFile, id: &QueueId) {
    let qf = file.lock().unwrap_or_else(PoisonError::into_inner);
    if let Err(e) = qf.sync_marks() {
        maillog::warning!("{id}: cannot sync the delivery agent's done marks: {e}");
    }
}

/// The same status for every recipient, logged here (the agent did not).
fn uniform(
    d: &Delivery,
    action: Action,
    dsn: &str,
    text: &str,
    log: bool,
    started: SystemTime,
) -> Vec<Status> {
    d.recipients
        .iter()
        .map(|r| {
            if log {
                let status = crate::probe::status_word(&d.msg, action);
                log_status(&d.msg, r, "none", started, dsn, status, text);
            }
            Status {
                index: r.index,
                action,
                dsn: dsn.to_string(),
                relay: "none".to_string(),
                text: text.to_string(),
                expanded: 0,
                findable: false,
            }
        })
        .collect()
}

/// A leading enhanced status code (`5.1.1 text`), else the default.
pub(crate) fn split_dsn(text: &str, default: &str) -> (String, String) {
    if let Some((code, rest)) = text.split_once(' ') {
        let parts: Vec<&str> = code.split('.').collect();
        if parts.len() == 3
            && matches!(parts.first(), Some(&("2" | "4" | "5")))
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
        {
            return (code.to_string(), rest.to_string());
        }
    }
    (default.to_string(), text.to_string())
}

/// Sends the requests (several at once as a batch, the first saying how
/// many follow) and reads one reply for each; recipients the agent did
/// not answer for are deferred. An error says whether the request was
/// (maybe) received by the agent.
fn call_agent(ds: &[Delivery], env: &Env) -> Vec<Result<Vec<Status>, (String, bool)>> {
    let mut out: Vec<Result<Vec<Status>, (String, bool)>> = Vec::with_capacity(ds.len());
    let err = match call_agent_inner(ds, env, &mut out) {
        Ok(()) => return out,
        Err(AgentError::Before(t)) => (t, false),
        Err(AgentError::After(t)) => (t, true),
    };
    while out.len() < ds.len() {
        out.push(Err(err.clone()));
    }
    out
}

/// Where a request failed.
enum AgentError {
    /// Before it was sent.
    Before(String),
    /// After it was (maybe) sent.
    After(String),
}

/// Pushes the statuses of each request answered onto `out`, in order; an
/// error is for the requests not answered.
fn call_agent_inner(
    ds: &[Delivery],
    env: &Env,
    out: &mut Vec<Result<Vec<Status>, (String, bool)>>,
) -> Result<(), AgentError> {
    use AgentError::{After, Before};
    let Some(first) = ds.first() else {
        return Ok(());
    };
    if !valid_transport(&first.transport) {
        return Err(Before(format!(
            "invalid transport name: {}",
            maillog::printable(&first.transport, 100)
        )));
    }
    let service = format!("private/{}", first.transport);
    let turn = env.kept.begin(&service);
    let mut s = match turn.take() {
        Some(s) => s,
        None => {
            let s = proto::connect(&env.queue_dir, &service).map_err(|e| {
                Before(match e {
                    proto::Error::Connect { source, .. } => {
                        format!("connect to transport {service}: {}", io_text(&source))
                    }
                    other => other.to_string(),
                })
            })?;
            let timeout = Some(env.params.agent_timeout);
            s.set_read_timeout(timeout)
                .map_err(|e| Before(e.to_string()))?;
            s.set_write_timeout(timeout)
                .map_err(|e| Before(e.to_string()))?;
            s
        }
    };
    // The whole batch in one write.
    let mut frames = Vec::new();
    let batched = u32::try_from(ds.len().saturating_sub(1)).unwrap_or(u32::MAX);
    for (i, d) in ds.iter().enumerate() {
        let request = deliver::Request {
            queue_name: Queue::Active.as_str().to_string(),
            queue_id: d.msg.id.to_string(),
            sender: d.msg.sender.clone(),
            nexthop: d.nexthop.clone(),
            arrival_secs: secs(d.msg.arrival),
            arrival_micros: d
                .msg
                .arrival
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|t| t.subsec_micros())
                .unwrap_or(0),
            recipients: d.recipients.clone(),
            attributes: d.msg.attributes.clone(),
            batched: if i == 0 { batched } else { 0 },
        };
        proto::send(&mut frames, &request)
            .map_err(|e| Before(format!("cannot encode request: {}", proto_text(&e))))?;
    }
    // A partly written request may have been read: count it as sent.
    std::io::Write::write_all(&mut s, &frames).map_err(|e| {
        After(format!(
            "lost connection with {service}: {}",
            proto_text(&proto::Error::Io(e))
        ))
    })?;
    let mut more = false;
    for d in ds {
        let reply: deliver::Reply = match proto::recv(&mut s) {
            Ok(r) => r,
            Err(proto::Error::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(After("unknown mail transport error".to_string()));
            }
            Err(e) => {
                return Err(After(format!(
                    "lost connection with {service}: {}",
                    proto_text(&e)
                )));
            }
        };
        more = reply.more;
        out.push(Ok(statuses_for(d, &reply)));
    }
    if more {
        turn.keep(s, env.params.process_limit(&first.transport));
    }
    Ok(())
}

/// The agent's status for each recipient of `d`; one it did not answer
/// for is deferred (and logged here).
fn statuses_for(d: &Delivery, reply: &deliver::Reply) -> Vec<Status> {
    let started = SystemTime::now();
    let mut out = Vec::with_capacity(d.recipients.len());
    for r in &d.recipients {
        match reply.statuses.iter().find(|st| st.index == r.index) {
            Some(st) => out.push(st.clone()),
            None => {
                let text = "delivery temporarily suspended: unknown mail transport error";
                log_status(&d.msg, r, "none", started, "4.3.0", "deferred", text);
                out.push(Status {
                    index: r.index,
                    action: Action::Deferred,
                    dsn: "4.3.0".to_string(),
                    relay: "none".to_string(),
                    text: text.to_string(),
                    expanded: 0,
                    findable: false,
                });
            }
        }
    }
    out
}

/// An OS error as Postfix prints it (`No such file or directory`, without
/// Rust's ` (os error 2)`).
fn io_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}

fn proto_text(e: &proto::Error) -> String {
    match e {
        proto::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            "timeout".to_string()
        }
        proto::Error::Io(io) => io_text(io),
        other => other.to_string(),
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Records each status: done marks after a delivery or a safely logged
/// bounce; defer log records for the rest. Returns what is still pending.
fn record(d: &Delivery, statuses: Vec<Status>, env: &Env) -> Vec<(u32, String, String)> {
    let mut pending = Vec::new();
    for mut st in statuses {
        let Some(r) = d.recipients.iter().find(|r| r.index == st.index) else {
            continue;
        };
        if st.action == Action::Bounced && env.params.soft_bounce {
            st.action = Action::Deferred;
            if st.dsn.starts_with('5') {
                st.dsn.replace_range(..1, "4");
            }
        }
        let entry = |action: &str| Entry {
            recipient: r.address.clone(),
            original: r.original.clone(),
            dsn_orcpt: r.dsn_orcpt.clone(),
            dsn: st.dsn.clone(),
            action: action.to_string(),
            relay: st.relay.clone(),
            text: st.text.clone(),
        };
        match st.action {
            Action::Delivered => {
                if r.dsn_notify & deliver::notify::SUCCESS != 0 {
                    let _ = append(env, Log::Trace, &d.msg.id, entry("delivered"));
                }
                if let Err(e) = mark_done(&d.file, r.index) {
                    pending.push((r.index, "4.3.0".to_string(), e));
                }
            }
            Action::Bounced => match append(env, Log::Bounce, &d.msg.id, entry("failed")) {
                Ok(()) => {
                    if let Err(e) = mark_done(&d.file, r.index) {
                        pending.push((r.index, "4.3.0".to_string(), e));
                    }
                }
                Err(e) => {
                    maillog::warning!(
                        "{}: bounce log for {}: {e}",
                        d.msg.id,
                        maillog::printable(&r.address, 200)
                    );
                    pending.push((
                        r.index,
                        "4.3.0".to_string(),
                        format!("bounce service failure: {e}"),
                    ));
                }
            },
            Action::Deferred => {
                if let Err(e) = append(env, Log::Defer, &d.msg.id, entry("deferred")) {
                    maillog::warning!(
                        "{}: defer log for {}: {e}",
                        d.msg.id,
                        maillog::printable(&r.address, 200)
                    );
                }
                pending.push((r.index, st.dsn.clone(), st.text.clone()));
            }
        }
    }
    pending
}

/// Marks a recipient done (pwrite + fdatasync), unless the delivery agent
/// already did: agents mark delivered recipients before they reply, and
/// [`deliver`] syncs those marks before it records anything, so a done
/// byte read back here is already durable and a second write and
/// fdatasync would only cost time.
pub(crate) fn mark_done(file: &SharedFile, index: u32) -> Result<(), String> {
    let mut qf = file.lock().unwrap_or_else(PoisonError::into_inner);
    let id = *qf.id();
    if qf.reload_states().is_ok()
        && qf.recipient_state(index as usize) == Some(RecipientState::Done)
    {
        return Ok(());
    }
    qf.mark_done(index as usize).map_err(|e| {
        maillog::warning!("{id}: cannot mark recipient {index} done: {e}");
        format!("cannot update queue file: {e}")
    })
}

/// Appends a record to a message's bounce, defer or trace log.
pub(crate) fn append(env: &Env, log: Log, id: &QueueId, entry: Entry) -> Result<(), String> {
    let service = match log {
        Log::Defer => bounce::DEFER_SERVICE,
        _ => bounce::SERVICE,
    };
    let request = bounce::Request::Append {
        log,
        queue_id: id.to_string(),
        entry,
    };
    ask_bounce(env, service, &request)
}

fn ask_bounce(env: &Env, service: &str, request: &bounce::Request) -> Result<(), String> {
    let mut s = proto::connect(&env.queue_dir, service).map_err(|e| e.to_string())?;
    let t = Some(env.params.ipc_timeout);
    s.set_read_timeout(t).map_err(|e| e.to_string())?;
    s.set_write_timeout(t).map_err(|e| e.to_string())?;
    proto::send(&mut s, request).map_err(|e| e.to_string())?;
    match proto::recv(&mut s).map_err(|e| e.to_string())? {
        bounce::Reply::Ok { .. } => Ok(()),
        bounce::Reply::Failed { reason } => Err(reason),
    }
}

/// Postfix's delay formatting: two significant digits, at most two
/// decimals, trailing zeros dropped.
pub(crate) fn format_delay(d: Duration) -> String {
    let x = d.as_secs_f64();
    let text = if x >= 10.0 {
        return format!("{}", d.as_secs());
    } else if x >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    };
    let t = text.trim_end_matches('0').trim_end_matches('.');
    if t.is_empty() {
        "0".to_string()
    } else {
        t.to_string()
    }
}

fn since(later: SystemTime, earlier: SystemTime) -> Duration {
    later.duration_since(earlier).unwrap_or_default()
}

/// Logs a recipient status line in Postfix's shape.
pub(crate) fn log_status(
    msg: &MsgInfo,
    r: &Recipient,
    relay: &str,
    started: SystemTime,
    dsn: &str,
    status: &str,
    text: &str,
) {
    let now = SystemTime::now();
    let orig = if !r.original.is_empty() && r.original != r.address {
        format!(", orig_to=<{}>", maillog::printable(&r.original, 300))
    } else {
        String::new()
    };
    maillog::info!(
        "{}: to=<{}>{orig}, relay={relay}, delay={}, delays={}/{}/0/{}, dsn={dsn}, status={status} ({})",
        msg.id,
        maillog::printable(&r.address, 300),
        format_delay(since(now, msg.arrival)),
        format_delay(since(msg.active_at, msg.arrival)),
        format_delay(since(started, msg.active_at)),
        format_delay(since(now, started)),
        maillog::printable(text, 500),
    );
}

/// Ends a message's pass: expire, warn, flush bounces, remove or defer.
fn finish(f: Finish, env: &Env, last: bool) -> Done {
    let id = f.msg.id;
    let outcome = finish_inner(&f, env);
    Done::Finished { id, outcome, last }
}

fn finish_inner(f: &Finish, env: &Env) -> Outcome {
    let id = f.msg.id;
    let p = &env.params;
    let now = SystemTime::now();
    let age = since(now, f.msg.arrival);
    let pending: Vec<(u32, queue::Recipient)> = {
        let qf = f.file.lock().unwrap_or_else(PoisonError::into_inner);
        qf.recipients()
            .filter(|(_, _, s)| *s == RecipientState::Pending)
            .filter_map(|(i, r, _)| u32::try_from(i).ok().map(|i| (i, r.clone())))
            .collect()
    };
    if !pending.is_empty() {
        if f.msg.force_expired || age >= p.lifetime(&f.msg.sender) {
            expire(f, env, &pending);
        } else if !p.delay_warning.is_zero()
            && age >= p.delay_warning
            && !f.msg.sender.is_empty()
            && !f.warned
        {
            warn_delay(f, env);
        }
    }
    let still = f
        .file
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pending();
    if still > 0 {
        return defer_message(f, env, age);
    }
    let log_exists = |q: Queue| queue::queue_path(&env.queue_dir, q, &id).exists();
    // Every agent working on the message has answered: no bounce or trace
    // log appears after this look, so only one seen here needs removing.
    let bounce_log = log_exists(Queue::Bounce);
    let trace_log = log_exists(Queue::Trace);
    if bounce_log || trace_log {
        let request = bounce::Request::Flush {
            queue_name: Queue::Active.as_str().to_string(),
            queue_id: id.to_string(),
            sender: f.msg.sender.clone(),
        };
        if let Err(e) = ask_bounce(env, bounce::SERVICE, &request) {
            maillog::warning!("{id}: bounce notification failed: {e}: trying again later");
            // The file stays: its marks must be durable (marks_need_sync).
            sync_agent_marks(&f.file, &id);
            return defer_message(f, env, age);
        }
    }
    match queue::remove(&env.queue_dir, Queue::Active, &id) {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => {
            maillog::warning!("{id}: remove: {e}");
            sync_agent_marks(&f.file, &id);
            return Outcome::Kept;
        }
    }
    let logs = [
        (Queue::Defer, true),
        (Queue::Bounce, bounce_log),
        (Queue::Trace, trace_log),
    ];
    for (q, _) in logs.into_iter().filter(|(_, maybe)| *maybe) {
        match queue::remove(&env.queue_dir, q, &id) {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => maillog::warning!("{id}: remove {} log: {e}", q.as_str()),
        }
    }
    maillog::info!("{id}: removed");
    Outcome::Removed
}

/// maximal_queue_lifetime passed: bounce every pending recipient.
fn expire(f: &Finish, env: &Env, pending: &[(u32, queue::Recipient)]) {
    let id = f.msg.id;
    let forced = f
        .msg
        .force_expired
        .then(|| crate::forced::delay_reasons(env, &id));
    maillog::info!(
        "{id}: from=<{}>, status={}, returned to sender",
        maillog::printable(&f.msg.sender, 300),
        if forced.is_some() {
            "force-expired"
        } else {
            "expired"
        }
    );
    for (i, r) in pending {
        let last = f
            .reasons
            .get(i)
            .map(|(_, t)| t.as_str())
            .unwrap_or("delivery temporarily suspended");
        let (dsn, text) = match &forced {
            Some(reasons) => crate::forced::reason(reasons, r),
            None => ("4.4.7".to_string(), format!("message expired: {last}")),
        };
        let entry = Entry {
            recipient: r.address.clone(),
            original: r.original.clone(),
            dsn_orcpt: r.dsn_orcpt.clone(),
            dsn,
            action: "failed".to_string(),
            relay: "none".to_string(),
            text,
        };
        match append(env, Log::Bounce, &id, entry) {
            Ok(()) => {
                let _ = mark_done(&f.file, *i);
            }
            Err(e) => maillog::warning!(
                "{id}: bounce log for {}: {e}",
                maillog::printable(&r.address, 200)
            ),
        }
    }
}

/// Sends the delay warning once and marks the queue file.
fn warn_delay(f: &Finish, env: &Env) {
    let id = f.msg.id;
    let request = bounce::Request::Warn {
        queue_name: Queue::Active.as_str().to_string(),
        queue_id: id.to_string(),
        sender: f.msg.sender.clone(),
    };
    match ask_bounce(env, bounce::DEFER_SERVICE, &request) {
        Ok(()) => {
            use std::os::unix::fs::PermissionsExt;
            let path = queue::queue_path(&env.queue_dir, Queue::Active, &id);
            let done = std::fs::metadata(&path).and_then(|m| {
                std::fs::set_permissions(
                    &path,
                    std::fs::Permissions::from_mode((m.permissions().mode() & 0o7777) | WARNED_BIT),
                )
            });
            if let Err(e) = done {
                maillog::warning!("{id}: cannot record the delay warning: {e}");
            }
        }
        Err(e) => maillog::warning!("{id}: delay warning failed: {e}"),
    }
}

/// Moves the message to deferred/ with its next retry time as mtime.
fn defer_message(f: &Finish, env: &Env, age: Duration) -> Outcome {
    let id = f.msg.id;
    let delay = env.params.backoff(age);
    let when = SystemTime::now() + delay;
    let path = queue::queue_path(&env.queue_dir, Queue::Active, &id);
    let times = std::fs::FileTimes::new()
        .set_accessed(when)
        .set_modified(when);
    if let Err(e) = std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|file| file.set_times(times))
    {
        maillog::warning!("{id}: cannot set the retry time: {e}");
    }
    match queue::rename_unsynced(&env.queue_dir, &id, Queue::Active, Queue::Deferred) {
        Ok(()) => Outcome::Deferred,
        Err(e) if e.is_not_found() => Outcome::Removed,
        Err(e) => {
            maillog::warning!("{id}: move to deferred: {e}");
            Outcome::Kept
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_down_only_when_no_server_answered() {
        let st = |action, relay: &str| Status {
            index: 0,
            action,
            dsn: "4.4.1".into(),
            relay: relay.into(),
            text: "connect to x: Connection refused".into(),
            expanded: 0,
            findable: false,
        };
        let down = site_status(&[st(Action::Deferred, "none"), st(Action::Deferred, "none")]);
        assert_eq!(
            down,
            Site::Down("4.4.1".into(), "connect to x: Connection refused".into())
        );
        assert_eq!(
            site_status(&[st(Action::Deferred, "mx[1.2.3.4]:25")]),
            Site::Up
        );
        assert_eq!(
            site_status(&[st(Action::Deferred, "none"), st(Action::Delivered, "none")]),
            Site::Up
        );
        assert_eq!(site_status(&[]), Site::Unknown);
    }

    #[test]
    fn marks_unsynced_only_when_a_retry_finds_every_copy_of_a_finished_message() {
        let st = |action, findable| Status {
            index: 0,
            action,
            dsn: "2.0.0".into(),
            relay: "local".into(),
            text: "delivered to maildir".into(),
            expanded: 0,
            findable,
        };
        let never = || -> bool { panic!("not asked") };
        // Nothing delivered: no agent mark to sync.
        assert!(!marks_need_sync(&[st(Action::Deferred, false)], never));
        // A delivery a retry cannot find (a command, smtp): synced.
        assert!(marks_need_sync(&[st(Action::Delivered, false)], never));
        assert!(marks_need_sync(
            &[st(Action::Delivered, true), st(Action::Delivered, false)],
            never
        ));
        // Every copy findable: unsynced only when the message is done.
        assert!(!marks_need_sync(&[st(Action::Delivered, true)], || true));
        assert!(marks_need_sync(&[st(Action::Delivered, true)], || false));
        assert!(!marks_need_sync(
            &[st(Action::Delivered, true), st(Action::Bounced, false)],
            || true
        ));
    }

    #[test]
    fn transport_names_are_validated() {
        assert!(valid_transport("local"));
        assert!(valid_transport("my-pipe_2.x"));
        assert!(!valid_transport(""));
        assert!(!valid_transport("../etc"));
        assert!(!valid_transport("a/b"));
        assert!(!valid_transport(".hidden"));
        assert!(!valid_transport(&"x".repeat(101)));
    }

    #[test]
    fn os_errors_read_like_postfix() {
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(io_text(&e), "No such file or directory");
    }

    #[test]
    fn dsn_prefixes_are_split() {
        assert_eq!(
            split_dsn("5.1.1 User unknown", "5.0.0"),
            ("5.1.1".into(), "User unknown".into())
        );
        assert_eq!(
            split_dsn("User unknown", "5.0.0"),
            ("5.0.0".into(), "User unknown".into())
        );
        assert_eq!(split_dsn("4.3.0 x", "5.0.0"), ("4.3.0".into(), "x".into()));
        assert_eq!(split_dsn("1.2.3 x", "5.0.0").0, "5.0.0");
    }

    #[test]
    fn delays_are_formatted_like_postfix() {
        assert_eq!(format_delay(Duration::from_millis(120)), "0.12");
        assert_eq!(format_delay(Duration::from_millis(3)), "0");
        assert_eq!(format_delay(Duration::from_millis(10)), "0.01");
        assert_eq!(format_delay(Duration::from_millis(1230)), "1.2");
        assert_eq!(format_delay(Duration::from_millis(2000)), "2");
        assert_eq!(format_delay(Duration::from_secs(1234)), "1234");
    }
}
