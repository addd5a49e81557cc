//! The queue manager proper: the in-memory active queue, the scans that
//! feed it, the per-destination queues, and the main loop.
//!
//! One thread owns all state. It scans incoming/ (on triggers), deferred/
//! (every queue_run_delay, or at once on a flush trigger) and, at startup,
//! active/; resolves each pending recipient through trivial-rewrite; groups
//! recipients by (transport, nexthop) into delivery requests of at most
//! `<transport>_destination_recipient_limit` recipients; and hands
//! requests to the worker pool while each destination has fewer than
//! `<transport>_destination_concurrency_limit` in flight. Workers report
//! back; when a message has no request left, a worker finishes it.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use config::Config;
use ipc::multi::MultiServer;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use proto::deliver;
use proto::rewrite::flags;
use queue::{Queue, QueueFile, QueueId, RecipientState};

use crate::params::{MAX_IN_FLIGHT, Params};
use crate::resolver::Resolver;
use crate::window::{Policy, Window};
use crate::work::{
    Delivery, Done, Env, Finish, How, MAYBE_DELIVERED_BIT, MsgInfo, Outcome, Pool, SharedFile,
    Site, WARNED_BIT, Work, set_mode_bit,
};

/// The waker's token (the skeleton uses the low ones).
const WAKER: Token = Token(1 << 20);

/// How long to wait before looking at active/ again after a message could
/// not be taken in (trivial-rewrite down, file still locked by an agent).
const ACTIVE_RETRY: Duration = Duration::from_secs(10);

/// How soon to look at incoming/ again when a file was held back because
/// its maildrop source still exists (pickup also wakes qmgr after it
/// removes a maildrop file).
const MAILDROP_RECHECK: Duration = Duration::from_secs(1);

/// Age after which a file in incoming/ without its complete mark is taken
/// as abandoned by a cleanup that died (as postsuper -s does).
const INCOMPLETE_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// The envelope attribute in which cleanup keeps the maildrop file a
/// message came from (set by pickup).
const MAILDROP_ID: &str = "maildrop_id";

/// The request attribute that tells agents a recipient may already have
/// been delivered.
fn delivery_maybe() -> &'static str {
    "maybe_delivered"
}

/// Most trigger bytes read per wake-up.
const TRIGGER_MAX: usize = 1024;

/// An active message.
#[derive(Debug)]
struct Active {
    info: Arc<MsgInfo>,
    file: SharedFile,
    /// Delivery requests queued or in flight.
    jobs: usize,
    /// Latest reason of each deferred recipient.
    reasons: HashMap<u32, (String, String)>,
    warned: bool,
}

/// One destination's queue.
#[derive(Debug)]
struct Dest {
    queue: VecDeque<Delivery>,
    in_flight: usize,
    /// Agent deliveries: the transport's policy and this destination's
    /// window. Built-in deliveries (error, retry): none, no limit.
    sched: Option<(Policy, Window)>,
    /// Dead: until when, and the reason its mail is deferred with.
    dead: Option<(Instant, String)>,
}

impl Dest {
    fn limit(&self) -> usize {
        self.sched.as_ref().map_or(usize::MAX, |(_, w)| w.allowed())
    }
}

/// What the triggers asked for.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Wanted {
    /// Scan incoming/.
    pub(crate) incoming: bool,
    /// Scan deferred/.
    pub(crate) deferred: bool,
    /// Ignore retry times in deferred/.
    pub(crate) flush: bool,
}

/// Reads trigger bytes: `I` and `W` (master's wake-up) scan incoming/;
/// `D` scans deferred/ for files whose retry time has come; `F` (flush,
/// `postqueue -f`) scans deferred/ ignoring retry times; `A` (scan all)
/// does both scans, ignoring retry times. Unknown bytes are ignored.
pub(crate) fn parse_triggers(bytes: &[u8], w: &mut Wanted) {
    for b in bytes {
        match b {
            b'I' | b'W' => w.incoming = true,
            b'D' => w.deferred = true,
            b'F' => {
                w.deferred = true;
                w.flush = true;
            }
            b'A' => {
                w.incoming = true;
                w.deferred = true;
                w.flush = true;
            }
            _ => {}
        }
    }
}

/// The queue manager.
pub(crate) struct Manager {
    queue_dir: PathBuf,
    config: Config,
    params: Params,
    pool: Pool,
    done: Receiver<Done>,
    resolver: Resolver,
    messages: HashMap<QueueId, Active>,
    dests: HashMap<(String, String), Dest>,
    transport_in_flight: HashMap<String, usize>,
    wanted: Wanted,
    /// Loads in this round come from a flush: defer_transports deliver.
    flushing: bool,
    incoming_left: bool,
    next_deferred_scan: Instant,
    active_rescan: Option<Instant>,
    /// When to look at incoming/ again (files held back for their
    /// maildrop source).
    incoming_rescan: Option<Instant>,
    /// Address verification probes in memory, and
    /// address_verify_pending_request_limit: a probe beyond it is
    /// deferred without a delivery attempt (Postfix's qmgr_vrfy_pend_count).
    probes: usize,
    /// Messages done this round, for one worker at its end.
    finishing: Vec<Finish>,
    probe_limit: usize,
}

impl Manager {
    /// Sets up state, the worker pool and the resolver client.
    pub(crate) fn new(config: Config, params: Params, waker: Arc<Waker>) -> Manager {
        let queue_dir = PathBuf::from(".");
        let (tx, rx) = std::sync::mpsc::channel();
        let env = Arc::new(Env {
            queue_dir: queue_dir.clone(),
            params: params.clone(),
            verify: crate::probe::Settings::load(&config),
            kept: crate::kept::Kept::default(),
        });
        let probe_limit = usize::try_from(config.int("address_verify_pending_request_limit"))
            .unwrap_or(usize::MAX);
        Manager {
            resolver: Resolver::new(queue_dir.clone(), params.ipc_timeout),
            queue_dir,
            config,
            params,
            pool: Pool::new(env, tx, waker),
            done: rx,
            messages: HashMap::new(),
            dests: HashMap::new(),
            transport_in_flight: HashMap::new(),
            wanted: Wanted {
                incoming: true,
                deferred: false,
                flush: false,
            },
            flushing: false,
            incoming_left: false,
            next_deferred_scan: Instant::now(),
            active_rescan: Some(Instant::now()),
            incoming_rescan: None,
            probes: 0,
            finishing: Vec::new(),
            probe_limit,
        }
    }

    /// Notes trigger bytes.
    pub(crate) fn trigger(&mut self, bytes: &[u8]) {
        parse_triggers(bytes, &mut self.wanted);
    }

    /// One round: reports, scans, timers, dispatch. Returns how long the
    /// loop may sleep.
    pub(crate) fn round(&mut self) -> Duration {
        while let Ok(d) = self.done.try_recv() {
            // A worker sends Released, then Delivered for each delivery
            // of its work (the last one says so), or Finished.
            if !matches!(
                d,
                Done::Released { .. }
                    | Done::Delivered { last: false, .. }
                    | Done::Finished { last: false, .. }
            ) {
                self.pool.completed();
            }
            self.on_done(d);
        }
        let now = Instant::now();
        if self.active_rescan.is_some_and(|t| t <= now) {
            self.active_rescan = None;
            self.scan_active();
        }
        self.flushing = self.wanted.flush;
        if self.flushing {
            self.flush_dead();
        }
        if self.wanted.deferred || now >= self.next_deferred_scan {
            let flush = self.wanted.flush;
            self.wanted.deferred = false;
            self.wanted.flush = false;
            self.next_deferred_scan = now + self.params.queue_run_delay;
            self.scan_deferred(flush);
        }
        if self.incoming_rescan.is_some_and(|t| t <= now) {
            self.incoming_rescan = None;
            self.wanted.incoming = true;
        }
        if self.wanted.incoming || (self.incoming_left && self.has_room()) {
            self.wanted.incoming = false;
            self.scan_incoming();
        }
        self.flushing = false;
        self.dispatch();
        self.submit_finishes();
        let mut next = self.next_deferred_scan;
        if let Some(t) = self.active_rescan {
            next = next.min(t);
        }
        if let Some(t) = self.incoming_rescan {
            next = next.min(t);
        }
        if let Some(t) = self.next_revival() {
            next = next.min(t);
        }
        next.saturating_duration_since(Instant::now())
    }

    fn has_room(&self) -> bool {
        self.messages.len() < self.params.active_limit
    }

    fn on_done(&mut self, d: Done) {
        match d {
            Done::Released { dest, site } => {
                if let Some(t) = self.transport_in_flight.get_mut(&dest.0) {
                    *t = t.saturating_sub(1);
                }
                if let Some(q) = self.dests.get_mut(&dest) {
                    q.in_flight = q.in_flight.saturating_sub(1);
                    feedback(&dest, q, &site, self.params.min_backoff);
                }
            }
            Done::Delivered { id, pending, .. } => {
                let Some(m) = self.messages.get_mut(&id) else {
                    return;
                };
                for (i, dsn, text) in pending {
                    m.reasons.insert(i, (dsn, text));
                }
                m.jobs = m.jobs.saturating_sub(1);
                if m.jobs == 0 {
                    self.finish(&id);
                }
            }
            Done::Finished { id, outcome, .. } => {
                if self
                    .messages
                    .remove(&id)
                    .is_some_and(|m| crate::probe::is_mta_probe(&m.info))
                {
                    self.probes = self.probes.saturating_sub(1);
                }
                if outcome == Outcome::Kept {
                    self.retry_active_later(self.params.min_backoff);
                }
            }
        }
    }

    fn retry_active_later(&mut self, after: Duration) {
        let t = Instant::now() + after;
        self.active_rescan = Some(self.active_rescan.map_or(t, |old| old.min(t)));
    }

    /// Queues the message's finish for the end of the round.
    fn finish(&mut self, id: &QueueId) {
        let Some(m) = self.messages.get(id) else {
            return;
        };
        self.finishing.push(Finish {
            msg: Arc::clone(&m.info),
            file: Arc::clone(&m.file),
            reasons: m.reasons.clone(),
            warned: m.warned,
        });
    }

    /// Hands the round's finishes to one worker.
    fn submit_finishes(&mut self) {
        if !self.finishing.is_empty() {
            self.pool
                .submit(Work::Finish(std::mem::take(&mut self.finishing)));
        }
    }

    /// Takes complete files from incoming/ into active/.
    fn scan_incoming(&mut self) {
        self.incoming_left = false;
        let ids = match queue::list(&self.queue_dir, Queue::Incoming) {
            Ok(ids) => ids,
            Err(e) => {
                maillog::warning!("scan incoming: {e}");
                return;
            }
        };
        for id in ids {
            if !self.has_room() {
                self.incoming_left = true;
                break;
            }
            // A file without its complete mark is still being written,
            // or was left by a cleanup that died (it never answered, so
            // its client still has the message): removed after a day.
            match queue::incomplete_age(&self.queue_dir, Queue::Incoming, &id) {
                Ok(None) => {}
                Ok(Some(age)) if age > INCOMPLETE_MAX_AGE => {
                    match queue::remove(&self.queue_dir, Queue::Incoming, &id) {
                        Ok(()) => maillog::warning!("{id}: removed incomplete queue file"),
                        Err(e) if e.is_not_found() => {}
                        Err(e) => maillog::warning!("{id}: remove incomplete file: {e}"),
                    }
                    continue;
                }
                _ => continue,
            }
            // Opened once: looked at here, then used in active/ (an open
            // file survives the rename). A file that does not open (a
            // damaged one) is taken as before and quarantined by load.
            let opened = QueueFile::open(&self.queue_dir, Queue::Incoming, &id).ok();
            // pickup has not yet removed the maildrop file this came
            // from: were pickup killed now, it would send it again, and
            // cleanup finds the copy only while it is still in incoming/.
            if self.maildrop_source_exists(opened.as_ref()) {
                self.incoming_rescan = Some(Instant::now() + MAILDROP_RECHECK);
                continue;
            }
            if self.move_to_active(&id, Queue::Incoming) {
                let opened = opened.map(|qf| qf.moved(&self.queue_dir, Queue::Active));
                self.load_opened(id, false, opened);
            }
        }
    }

    /// True when the message in incoming/ came from a maildrop file that
    /// still exists (cleanup stored pickup's `maildrop_id`).
    fn maildrop_source_exists(&self, qf: Option<&QueueFile>) -> bool {
        let Some(qf) = qf else {
            return false;
        };
        let Some(source) = qf
            .envelope()
            .attribute(MAILDROP_ID)
            .and_then(|m| QueueId::parse(m).ok())
        else {
            return false;
        };
        queue::queue_path(&self.queue_dir, Queue::Maildrop, &source).exists()
    }

    /// Takes files whose retry time has come (all with `flush`) from deferred/.
    fn scan_deferred(&mut self, flush: bool) {
        let ids = match queue::list(&self.queue_dir, Queue::Deferred) {
            Ok(ids) => ids,
            Err(e) => {
                maillog::warning!("scan deferred: {e}");
                return;
            }
        };
        let now = SystemTime::now();
        for id in ids {
            if !self.has_room() {
                break;
            }
            if !flush {
                let path = queue::queue_path(&self.queue_dir, Queue::Deferred, &id);
                match std::fs::metadata(&path).and_then(|m| m.modified()) {
                    Ok(t) if t > now => continue,
                    Ok(_) => {}
                    Err(_) => continue,
                }
            }
            if self.move_to_active(&id, Queue::Deferred) {
                // The defer log is rebuilt by this attempt; a force-expired
                // message makes none, and is returned with its reasons.
                let expired =
                    std::fs::metadata(queue::queue_path(&self.queue_dir, Queue::Active, &id))
                        .is_ok_and(|m| queue::expire::is_force_expired(m.mode()));
                if !expired {
                    let _ = queue::remove(&self.queue_dir, Queue::Defer, &id);
                }
                self.load(id, false);
            }
        }
    }

    /// Takes back what active/ holds and is not in memory (after a crash,
    /// or a failed earlier attempt).
    fn scan_active(&mut self) {
        let ids = match queue::list(&self.queue_dir, Queue::Active) {
            Ok(ids) => ids,
            Err(e) => {
                maillog::warning!("scan active: {e}");
                return;
            }
        };
        for id in ids {
            if self.messages.contains_key(&id) {
                continue;
            }
            if !self.has_room() {
                self.retry_active_later(ACTIVE_RETRY);
                break;
            }
            // A delivery agent of the previous qmgr may still hold the file.
            if let Ok(probe) = QueueFile::open_read_only(&self.queue_dir, Queue::Active, &id)
                && matches!(probe.try_lock_exclusive(), Ok(false))
            {
                self.retry_active_later(ACTIVE_RETRY);
                continue;
            }
            self.load(id, true);
        }
    }

    fn move_to_active(&mut self, id: &QueueId, from: Queue) -> bool {
        match queue::rename_unsynced(&self.queue_dir, id, from, Queue::Active) {
            Ok(()) => true,
            Err(e) if e.is_not_found() => false,
            Err(e) => {
                maillog::warning!("{id}: move from {} to active: {e}", from.as_str());
                false
            }
        }
    }

    /// Reads an active message, resolves its pending recipients and
    /// queues its delivery requests. `retaken`: found in active/ without
    /// being in memory (a qmgr restart): an agent may have delivered
    /// without marking, so the message is flagged maybe-delivered.
    fn load(&mut self, id: QueueId, retaken: bool) {
        self.load_opened(id, retaken, None);
    }

    /// [`Manager::load`] with the file already open in active/, if it is.
    fn load_opened(&mut self, id: QueueId, retaken: bool, opened: Option<QueueFile>) {
        if self.messages.contains_key(&id) {
            return;
        }
        let opened = match opened {
            Some(qf) => Ok(qf),
            None => QueueFile::open_or_quarantine(&self.queue_dir, Queue::Active, &id),
        };
        let qf = match opened {
            Ok(qf) => qf,
            Err(e) if e.is_not_found() => return,
            Err(e) => {
                maillog::warning!("{id}: {e}");
                return;
            }
        };
        let env = qf.envelope();
        let mut maybe = qf.metadata().mode() & MAYBE_DELIVERED_BIT != 0;
        if retaken && !maybe {
            if let Err(e) = set_mode_bit(&self.queue_dir, &id, MAYBE_DELIVERED_BIT) {
                maillog::warning!("{id}: cannot flag the message: {e}");
            }
            maybe = true;
        }
        let mut attrs = attributes(env);
        // Never a submitter's value: only qmgr says so.
        attrs.retain(|(k, _)| k != delivery_maybe());
        if maybe {
            attrs.push((delivery_maybe().to_string(), "1".to_string()));
        }
        let info = Arc::new(MsgInfo {
            id,
            sender: env.sender.clone(),
            arrival: env.arrival(),
            active_at: SystemTime::now(),
            attributes: attrs,
            force_expired: queue::expire::is_force_expired(qf.metadata().mode()),
        });
        let warned = qf.metadata().mode() & WARNED_BIT != 0;
        maillog::info!(
            "{id}: from=<{}>, size={}, nrcpt={} (queue active)",
            maillog::printable(&info.sender, 300),
            qf.content_len(),
            env.recipients.len()
        );
        // A force-expired message gets no delivery: finish() returns it.
        let pending: Vec<(u32, queue::Recipient)> = qf
            .recipients()
            .filter(|(_, _, s)| *s == RecipientState::Pending && !info.force_expired)
            .filter_map(|(i, r, _)| u32::try_from(i).ok().map(|i| (i, r.clone())))
            .collect();
        let file: SharedFile = Arc::new(Mutex::new(qf));
        let probe = crate::probe::is_mta_probe(&info);
        let too_many = probe && self.probes >= self.probe_limit;
        let mut groups: Vec<((String, String, How), Vec<deliver::Recipient>)> = Vec::new();
        for (index, r) in pending {
            let route = match crate::probe::resolve(&mut self.resolver, &info, &r.address) {
                Ok(route) => route,
                Err(e) => {
                    maillog::warning!("{id}: problem talking to service rewrite: {e}");
                    self.retry_active_later(ACTIVE_RETRY);
                    return;
                }
            };
            let (transport, nexthop) =
                crate::filter::route(&info.attributes, route.transport, route.nexthop);
            let (transport, nexthop, how) = if too_many {
                let text = "4.3.2 Too many address verification requests".to_string();
                ("retry".into(), text.clone(), How::Defer(text))
            } else {
                self.how(transport, nexthop, route.flags)
            };
            let rcpt = deliver::Recipient {
                index,
                address: route.recipient,
                original: if r.original.is_empty() {
                    r.address.clone()
                } else {
                    r.original.clone()
                },
                dsn_orcpt: r.dsn_orcpt.clone(),
                dsn_notify: r.dsn_notify,
            };
            let key = (transport, nexthop, how);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, list)) => list.push(rcpt),
                None => groups.push((key, vec![rcpt])),
            }
        }
        let mut jobs = 0usize;
        for ((transport, nexthop, how), list) in groups {
            let limit = if how == How::Agent {
                self.params.recipient_limit(&self.config, &transport)
            } else {
                usize::MAX
            };
            let dest_key = (transport.clone(), nexthop.clone());
            if !self.dests.contains_key(&dest_key) {
                let sched = if how == How::Agent {
                    let p = self.params.policy(&self.config, &transport);
                    Some((p, Window::new(&p)))
                } else {
                    None
                };
                self.dests.insert(
                    dest_key.clone(),
                    Dest {
                        queue: VecDeque::new(),
                        in_flight: 0,
                        sched,
                        dead: None,
                    },
                );
            }
            for chunk in list.chunks(limit.max(1)) {
                let d = Delivery {
                    msg: Arc::clone(&info),
                    file: Arc::clone(&file),
                    transport: transport.clone(),
                    nexthop: nexthop.clone(),
                    recipients: chunk.to_vec(),
                    how: how.clone(),
                };
                if let Some(dest) = self.dests.get_mut(&dest_key) {
                    dest.queue.push_back(d);
                    jobs += 1;
                }
            }
        }
        if probe {
            self.probes += 1;
        }
        self.messages.insert(
            id,
            Active {
                info,
                file,
                jobs,
                reasons: HashMap::new(),
                warned,
            },
        );
        if jobs == 0 {
            self.finish(&id);
        }
    }

    /// The built-in transports: resolver failures and `retry` defer,
    /// bad addresses and `error` bounce, defer_transports defer (except
    /// in a flush, as with Postfix's `sendmail -q`).
    fn how(&self, transport: String, nexthop: String, f: u32) -> (String, String, How) {
        if f & flags::DEFER != 0 {
            let text = "4.3.0 address resolver failure".to_string();
            return ("retry".into(), text.clone(), How::Defer(text));
        }
        if f & flags::ERROR != 0 {
            let text = "5.1.3 bad address syntax".to_string();
            return ("error".into(), text.clone(), How::Bounce(text));
        }
        match transport.as_str() {
            "error" => ("error".into(), nexthop.clone(), How::Bounce(nexthop)),
            "retry" => ("retry".into(), nexthop.clone(), How::Defer(nexthop)),
            t if !self.flushing && self.params.defer_transports.iter().any(|d| d == t) => {
                let text = "4.3.2 deferred transport".to_string();
                (transport, text.clone(), How::Defer(text))
            }
            _ => (transport, nexthop, How::Agent),
        }
    }

    /// Starts every delivery the limits allow; a dead destination's
    /// queued mail is deferred with its reason, without a delivery attempt.
    fn dispatch(&mut self) {
        let now = Instant::now();
        let mut idle = Vec::new();
        for (key, dest) in &mut self.dests {
            if dest.dead.as_ref().is_some_and(|(until, _)| *until <= now) {
                dest.dead = None;
                let busy = dest.in_flight;
                if let Some((p, w)) = &mut dest.sched {
                    w.revive(p, busy);
                    debug_window(key, p, w);
                }
            }
            if let Some((_, reason)) = &dest.dead {
                while let Some(mut d) = dest.queue.pop_front() {
                    d.how = How::Defer(reason.clone());
                    *self.transport_in_flight.entry(key.0.clone()).or_insert(0) += 1;
                    dest.in_flight += 1;
                    self.pool.submit(Work::Deliver(vec![d]));
                }
                continue;
            }
            let process_limit = self.params.process_limit(&key.0);
            let batch_limit = self.params.batch_limit(&self.config, &key.0);
            while dest.in_flight < dest.limit() && self.pool.busy() < MAX_IN_FLIGHT {
                let used = self.transport_in_flight.entry(key.0.clone()).or_insert(0);
                if *used >= process_limit {
                    break;
                }
                let Some(d) = dest.queue.pop_front() else {
                    break;
                };
                // What else waits for this destination goes along, up to
                // <transport>_delivery_batch_limit messages a request.
                let mut batch = vec![d];
                while batch.len() < batch_limit
                    && batch.iter().all(|d| d.how == How::Agent)
                    && let Some(next) = dest.queue.pop_front()
                {
                    if next.how != How::Agent {
                        dest.queue.push_front(next);
                        break;
                    }
                    batch.push(next);
                }
                *used += 1;
                dest.in_flight += 1;
                self.pool.submit(Work::Deliver(batch));
            }
            if dest.queue.is_empty() && dest.in_flight == 0 && dest.dead.is_none() {
                idle.push(key.clone());
            }
        }
        for k in idle {
            self.dests.remove(&k);
        }
    }

    /// A flush (Postfix's flush-dead request) brings every dead
    /// destination back at once.
    fn flush_dead(&mut self) {
        for (key, dest) in &mut self.dests {
            if dest.dead.take().is_some()
                && let Some((p, w)) = &mut dest.sched
            {
                w.revive(p, dest.in_flight);
                debug_window(key, p, w);
            }
        }
    }

    /// When the next dead destination comes back.
    fn next_revival(&self) -> Option<Instant> {
        self.dests
            .values()
            .filter_map(|d| d.dead.as_ref().map(|(t, _)| *t))
            .min()
    }
}

/// Applies a delivery's site status to its destination's window; a
/// destination that dies stays dead for `backoff`, or until a delivery
/// still in flight gets through.
fn feedback(key: &(String, String), dest: &mut Dest, site: &Site, backoff: Duration) {
    // As Postfix's busy_refcount: the delivery that just ended still counts.
    let busy = dest.in_flight + 1;
    let Some((p, w)) = &mut dest.sched else {
        return;
    };
    match site {
        Site::Unknown => return,
        Site::Up => {
            // A delivery that got through brings a dead destination back
            // at once (Postfix's unthrottle of a dead queue).
            dest.dead = None;
            w.success(p, busy);
        }
        Site::Down(dsn, text) => {
            if w.failure(p) {
                let reason = format!("{dsn} delivery temporarily suspended: {text}");
                dest.dead = Some((Instant::now() + backoff, reason));
            }
        }
    }
    debug_window(key, p, w);
}

/// destination_concurrency_feedback_debug's line.
fn debug_window(key: &(String, String), p: &Policy, w: &Window) {
    if p.debug {
        let limit = if p.limit == usize::MAX { 0 } else { p.limit };
        maillog::info!(
            "qmgr_queue_feedback: queue {}:{}: limit {limit} {w}",
            key.0,
            key.1
        );
    }
}

/// The message attributes passed to delivery agents.
fn attributes(env: &queue::Envelope) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = env
        .attributes
        .iter()
        .map(|a| (a.name.clone(), a.value.clone()))
        .collect();
    if let Some(e) = &env.dsn_envid {
        out.push(("dsn_envid".into(), e.clone()));
    }
    if let Some(r) = env.dsn_ret {
        out.push(("dsn_ret".into(), r.as_str().into()));
    }
    out
}

/// How triggers arrive: a fifo (read directly) or a unix socket (accept).
pub(crate) enum TriggerSource {
    /// A fifo, duplicated from the inherited listener.
    Fifo(File),
    /// A socket listener: accepted through the skeleton.
    Socket,
}

/// First token of trigger connections that sent nothing yet.
const FIRST_TRIGGER_CLIENT: usize = 1 << 16;

/// Most trigger connections kept waiting for their bytes.
const MAX_TRIGGER_CLIENTS: usize = 64;

/// The main loop: never returns; exits when master goes away.
pub(crate) fn run(mut server: MultiServer, sources: Vec<TriggerSource>, params: Params) -> ! {
    let Ok(mut poll) = Poll::new() else {
        maillog::fatal!("epoll: cannot create")
    };
    if let Err(e) = server.register(poll.registry(), 0) {
        maillog::fatal!("register listeners: {e}");
    }
    let waker = match Waker::new(poll.registry(), WAKER) {
        Ok(w) => Arc::new(w),
        Err(e) => maillog::fatal!("waker: {e}"),
    };
    let config = server.context().config.clone();
    let mut mgr = Manager::new(config, params, waker);
    let mut events = Events::with_capacity(64);
    let mut waiting: HashMap<usize, ipc::Stream> = HashMap::new();
    let mut next_client = FIRST_TRIGGER_CLIENT;
    loop {
        let wait = mgr.round();
        if let Err(e) = poll.poll(&mut events, Some(wait))
            && e.kind() != ErrorKind::Interrupted
        {
            maillog::fatal!("poll: {e}");
        }
        for ev in events.iter() {
            let tok = ev.token();
            if tok == WAKER {
                continue;
            }
            if server.is_status(tok) {
                // master went away (stop, reload): in-flight recipients
                // stay pending in their queue files and are retried.
                std::process::exit(0);
            }
            if let Some(s) = waiting.get_mut(&tok.0) {
                if read_stream(s, &mut mgr) == TriggerRead::Done {
                    let fd = s.as_raw_fd();
                    let _ = poll.registry().deregister(&mut SourceFd(&fd));
                    waiting.remove(&tok.0);
                    server.client_done();
                }
                continue;
            }
            let Some(i) = server.listener_index(tok) else {
                continue;
            };
            match sources.get(i) {
                Some(TriggerSource::Fifo(f)) => {
                    read_fifo(f, &mut mgr);
                    // master counts this process as used (not a bad
                    // startup should it die later).
                    server.request_served();
                }
                Some(TriggerSource::Socket) => {
                    while let Ok(Some(mut s)) = server.accept(i) {
                        if read_stream(&mut s, &mut mgr) == TriggerRead::Waiting
                            && waiting.len() < MAX_TRIGGER_CLIENTS
                        {
                            let fd = s.as_raw_fd();
                            let t = Token(next_client);
                            next_client = next_client.wrapping_add(1).max(FIRST_TRIGGER_CLIENT);
                            if poll
                                .registry()
                                .register(&mut SourceFd(&fd), t, Interest::READABLE)
                                .is_ok()
                            {
                                waiting.insert(t.0, s);
                                continue;
                            }
                        }
                        server.client_done();
                    }
                }
                None => {}
            }
        }
    }
}

/// What reading a trigger connection gave.
#[derive(Debug, PartialEq, Eq)]
enum TriggerRead {
    /// Bytes, or the end: the connection is done.
    Done,
    /// Nothing yet.
    Waiting,
}

/// Reads a trigger client's bytes without blocking.
fn read_stream(s: &mut ipc::Stream, mgr: &mut Manager) -> TriggerRead {
    let mut buf = [0u8; TRIGGER_MAX];
    loop {
        match s.read(&mut buf) {
            Ok(n) => {
                mgr.trigger(buf.get(..n).unwrap_or(&[]));
                return TriggerRead::Done;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return TriggerRead::Waiting,
            Err(_) => return TriggerRead::Done,
        }
    }
}

fn read_fifo(mut f: &File, mgr: &mut Manager) {
    let mut buf = [0u8; TRIGGER_MAX];
    loop {
        match f.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => mgr.trigger(buf.get(..n).unwrap_or(&[])),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_failures_kill_a_destination_and_a_success_revives_it() {
        let p = Policy {
            limit: 20,
            initial: 2,
            cohort_limit: 1.0,
            ..Policy::default()
        };
        let mut d = Dest {
            queue: VecDeque::new(),
            in_flight: 1,
            sched: Some((p, Window::new(&p))),
            dead: None,
        };
        let key = ("smtp".to_string(), "[mx]".to_string());
        let down = Site::Down("4.4.1".into(), "connect to mx: Connection refused".into());
        let backoff = Duration::from_secs(300);
        feedback(&key, &mut d, &down, backoff);
        assert!(d.dead.is_none());
        assert_eq!(d.limit(), 1);
        d.in_flight = 0;
        feedback(&key, &mut d, &down, backoff);
        let (until, reason) = d.dead.clone().unwrap();
        assert_eq!(
            reason,
            "4.4.1 delivery temporarily suspended: connect to mx: Connection refused"
        );
        assert!(until > Instant::now() + Duration::from_secs(290));
        assert_eq!(d.limit(), 0);
        // No feedback from built-in deliveries; a success revives.
        feedback(&key, &mut d, &Site::Unknown, backoff);
        assert!(d.dead.is_some());
        feedback(&key, &mut d, &Site::Up, backoff);
        assert!(d.dead.is_none());
        assert_eq!(d.limit(), 1, "the delivery that got through");
    }

    #[test]
    fn trigger_bytes() {
        let mut w = Wanted::default();
        parse_triggers(b"W", &mut w);
        assert!(w.incoming && !w.deferred && !w.flush);
        let mut w = Wanted::default();
        parse_triggers(b"D", &mut w);
        assert!(!w.incoming && w.deferred && !w.flush);
        let mut w = Wanted::default();
        parse_triggers(b"F", &mut w);
        assert!(w.deferred && w.flush);
        let mut w = Wanted::default();
        parse_triggers(b"FADI", &mut w);
        assert!(w.incoming && w.deferred && w.flush);
        let mut w = Wanted::default();
        parse_triggers(b"xyz\0", &mut w);
        assert!(!w.incoming && !w.deferred);
    }
}
