//! Messages postdrop hands over on public/pickup (proto::pickup) instead
//! of leaving them in maildrop/: each on a pooled thread, which gives
//! postdrop the go-ahead, relays the message to cleanup frame by frame as
//! a maildrop file is, and answers with cleanup's verdict.
//!
//! The input is as untrusted as a maildrop file: the submitter's uid is
//! the socket peer's (SO_PEERCRED), and the envelope goes through the same
//! [`Pickup::begin`] as a file's. Nothing is queued unless cleanup says
//! so; when pickup cannot take the message (too many in flight, cleanup
//! unavailable or refusing for now) it answers 4.x.x and postdrop writes
//! the maildrop file after all. Only after the message went to cleanup
//! whole does a failure leave the outcome unknown: then pickup hangs up
//! without an answer and postdrop reports a temporary failure.

use std::io::{Cursor, Read};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use ipc::trigger::Handover;
use ipc::work_queue::WorkQueue;
use proto::cleanup::{RecipientSpec, Reply, Request};
use proto::pickup::NOT_NOW;
use queue::Envelope;
use queue::format::{DsnRet, MAX_FIELD_LEN, MAX_RECIPIENTS};

use crate::scan::{Conversation, Pickup, Started};

/// Most hand-overs served at once; more are answered [`NOT_NOW`].
const MAX_IN_FLIGHT: usize = 64;

/// How long postdrop may take to send its (already complete) message,
/// and to take pickup's answers.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// How long an exit waits for the hand-overs in flight.
const DRAIN_WAIT: Duration = Duration::from_secs(120);

/// How long SIGTERM (postfix stop) waits for them: master sends SIGKILL
/// 5 seconds after SIGTERM.
const STOP_WAIT: Duration = Duration::from_secs(4);

/// Longest sender text in a log line.
const LOG_ADDR_MAX: usize = 500;

/// The hand-overs being served.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    state: Mutex<State>,
    idle: Condvar,
}

#[derive(Debug, Default)]
struct State {
    count: usize,
    /// The process is exiting: take no more.
    closed: bool,
}

impl InFlight {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for one more hand-over, if there is one.
    fn enter(self: &Arc<Self>) -> Option<Slot> {
        let mut st = self.state();
        if st.closed || st.count >= MAX_IN_FLIGHT {
            return None;
        }
        st.count += 1;
        Some(Slot(Arc::clone(self)))
    }

    fn leave(&self) {
        let mut st = self.state();
        st.count = st.count.saturating_sub(1);
        if st.count == 0 {
            self.idle.notify_all();
        }
    }

    /// Takes no more hand-overs and waits (up to [`DRAIN_WAIT`]) until
    /// none is in flight: the process is about to exit, and a postdrop
    /// cut off after its message went to cleanup could not tell whether
    /// it was queued.
    pub(crate) fn drain(&self) {
        self.drain_for(DRAIN_WAIT);
    }

    fn drain_for(&self, wait: Duration) {
        let mut st = self.state();
        st.closed = true;
        let (st, _) = self
            .idle
            .wait_timeout_while(st, wait, |st| st.count > 0)
            .unwrap_or_else(PoisonError::into_inner);
        if st.count > 0 {
            maillog::warning!(
                "exiting with {} hand-overs from postdrop unfinished",
                st.count
            );
        }
    }
}

/// One hand-over's place in [`InFlight`], given back when dropped (also
/// when its thread panics or cannot be started).
struct Slot(Arc<InFlight>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// SIGTERM (postfix stop) lets the hand-overs in flight finish (for up
/// to [`STOP_WAIT`]) before the process exits; new ones are answered
/// [`NOT_NOW`] meanwhile. Call before any other thread starts: SIGTERM is
/// blocked in this thread, and so in every thread started after it.
pub(crate) fn stop_on_sigterm(flight: &Arc<InFlight>) {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    if let Err(e) = set.thread_block() {
        maillog::warning!("block SIGTERM: {e}");
        return;
    }
    let flight = Arc::clone(flight);
    let spawned = std::thread::Builder::new()
        .name("sigterm".into())
        .spawn(move || {
            if set.wait().is_ok() {
                flight.drain_for(STOP_WAIT);
                std::process::exit(0);
            }
        });
    if let Err(e) = spawned {
        maillog::warning!("SIGTERM thread: {e}");
        let _ = set.thread_unblock();
    }
}

/// The hand-overs waiting for a thread: an idle thread takes the next
/// one (ipc's [`WorkQueue`], as cleanup's clients), and a thread is
/// started only when none is idle, so a steady flow of submissions starts
/// none. [`InFlight`] bounds the threads too (at most
/// [`MAX_IN_FLIGHT`] hand-overs, queued or served).
pub(crate) struct Handovers {
    pickup: Arc<Pickup>,
    flight: Arc<InFlight>,
    queue: Arc<WorkQueue<(Slot, Handover)>>,
}

impl Handovers {
    pub(crate) fn new(pickup: Arc<Pickup>, flight: Arc<InFlight>) -> Handovers {
        Handovers {
            pickup,
            flight,
            queue: Arc::new(WorkQueue::default()),
        }
    }

    /// Queues one hand-over for a thread (or answers [`NOT_NOW`]).
    pub(crate) fn serve(&self, h: Handover) {
        let Some(slot) = self.flight.enter() else {
            not_now(h.stream, "too many local submissions in flight");
            return;
        };
        if !self.queue.push((slot, h)) {
            return;
        }
        let (pickup, queue) = (Arc::clone(&self.pickup), Arc::clone(&self.queue));
        let spawned = std::thread::Builder::new()
            .name("handover".into())
            .spawn(move || {
                while let Some((_slot, h)) = queue.next() {
                    pickup.take_handover(&h.stream, h.read_ahead);
                }
            });
        if let Err(e) = spawned {
            maillog::warning!("postdrop hand-over: cannot start a thread: {e}");
            // Dropped before its go-ahead: postdrop writes the maildrop
            // file.
            drop(self.queue.try_next());
        }
    }
}

/// Answers "not now": postdrop keeps the message in maildrop/.
fn not_now(mut stream: UnixStream, why: &str) {
    maillog::verbose!("postdrop hand-over refused: {why}");
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let _ = proto::send(&mut stream, &reply_not_now(why));
}

fn reply_not_now(why: &str) -> Reply {
    Reply::Rejected {
        status: NOT_NOW.to_owned(),
        text: why.to_owned(),
        code: 0,
    }
}

impl Pickup {
    /// Relays one message from postdrop to cleanup and answers postdrop.
    fn take_handover(&self, stream: &UnixStream, read_ahead: Vec<u8>) {
        let uid = match nix::sys::socket::getsockopt(
            stream,
            nix::sys::socket::sockopt::PeerCredentials,
        ) {
            Ok(c) => c.uid(),
            Err(e) => {
                maillog::warning!("public/pickup: peer credentials: {e}");
                return;
            }
        };
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
        let mut answer = stream;
        // postdrop sends the message only after this; one that gave up
        // waiting (and wrote a maildrop file) has sent nothing but the mark.
        if let Err(e) = proto::send(&mut answer, &proto::pickup::go_ahead()) {
            maillog::verbose!("uid={uid}: postdrop went away before the go-ahead: {e}");
            return;
        }
        let mut input = Cursor::new(read_ahead).chain(stream);
        if let Some(reply) = self.relay(&mut input, uid)
            && let Err(e) = proto::send(&mut answer, &reply)
        {
            maillog::warning!("uid={uid}: cannot answer postdrop: {e}");
        }
    }

    /// The relay proper; `None`: hang up without an answer (the outcome
    /// is unknown, or postdrop sent nonsense).
    fn relay<R: Read>(&self, input: &mut R, uid: u32) -> Option<Reply> {
        let env = match proto::recv(input) {
            Ok(Request::Begin(b)) => envelope(&b)?,
            Ok(_) => {
                maillog::warning!("uid={uid}: postdrop hand-over does not start with Begin");
                return None;
            }
            // A postdrop that stopped waiting for the go-ahead.
            Err(proto::Error::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                maillog::verbose!("uid={uid}: postdrop hand-over: nothing sent");
                return None;
            }
            Err(e) => {
                maillog::warning!("uid={uid}: postdrop hand-over: {e}");
                return None;
            }
        };
        let begin = self.begin(&env, uid);
        let mut conv = match Conversation::start(self.queue_dir(), &begin) {
            Ok(Started::Yes(c)) => c,
            Ok(Started::Rejected(status, text)) => {
                return Some(self.verdict(&format!("uid={uid}"), status, text));
            }
            Err(e) => {
                maillog::warning!("{}: {e}", proto::cleanup::SERVICE);
                return Some(reply_not_now("cleanup is not available"));
            }
        };
        maillog::info!(
            "{}: uid={uid} from=<{}>",
            conv.queue_id,
            maillog::printable(&begin.sender, LOG_ADDR_MAX)
        );
        let sent = relay_parts(input, &mut conv);
        let what = conv.queue_id.clone();
        match sent {
            Ok(()) => {}
            Err(Cut::Postdrop(e)) => {
                maillog::warning!("{what}: postdrop hand-over: {e}");
                conv.abort();
                return None;
            }
            Err(Cut::Cleanup(e)) => {
                return match conv.last_word() {
                    Some(Reply::Rejected { status, text, .. }) => {
                        Some(self.verdict(&what, status, text))
                    }
                    _ => {
                        maillog::warning!("{what}: {}: {e}", proto::cleanup::SERVICE);
                        Some(reply_not_now("cleanup went away"))
                    }
                };
            }
        }
        match conv.answer() {
            Ok(Reply::Rejected { status, text, .. }) => Some(self.verdict(&what, status, text)),
            Ok(r @ (Reply::Queued { .. } | Reply::Discarded { .. })) => Some(r),
            Ok(Reply::Started { .. }) => {
                maillog::warning!("{what}: unexpected reply from cleanup");
                None
            }
            Err(e) => {
                maillog::warning!(
                    "{what}: {}: {e}; postdrop is told the outcome is unknown",
                    proto::cleanup::SERVICE
                );
                None
            }
        }
    }

    /// cleanup refused: for good (logged as for a maildrop file) or for
    /// now (postdrop keeps the message in maildrop/).
    fn verdict(&self, what: &str, status: String, text: String) -> Reply {
        let shown = maillog::printable(&text, 200);
        let code = maillog::printable(&status, 20);
        if code.starts_with('5') {
            maillog::warning!("{what}: rejected: {code} {shown}");
            Reply::Rejected {
                status,
                text,
                code: 0,
            }
        } else {
            maillog::warning!("{what}: cleanup: {code} {shown}; left to the maildrop queue");
            reply_not_now(&shown)
        }
    }
}

/// Why relaying stopped before `End` reached cleanup.
enum Cut {
    Postdrop(proto::Error),
    Cleanup(proto::Error),
}

/// Recipients, content and `End` from postdrop to cleanup.
fn relay_parts<R: Read>(input: &mut R, conv: &mut Conversation) -> Result<(), Cut> {
    let mut recipients = 0usize;
    let mut in_content = false;
    loop {
        let req = match proto::recv(input).map_err(Cut::Postdrop)? {
            Request::Recipient(r) if !in_content => {
                recipients += 1;
                let orcpt_len = r.orcpt.as_ref().map_or(0, String::len);
                if recipients > MAX_RECIPIENTS as usize
                    || r.address.len() > MAX_FIELD_LEN
                    || orcpt_len > MAX_FIELD_LEN
                {
                    return Err(Cut::Postdrop(bad("recipient list or address too long")));
                }
                Request::Recipient(RecipientSpec {
                    address: r.address,
                    orcpt: r.orcpt,
                    notify: r.notify & 0x0f,
                })
            }
            Request::Content(bytes) => {
                in_content = true;
                Request::Content(bytes)
            }
            Request::End => {
                conv.send(&Request::End).map_err(Cut::Cleanup)?;
                return Ok(());
            }
            _ => return Err(Cut::Postdrop(bad("unexpected request"))),
        };
        conv.send(&req).map_err(Cut::Cleanup)?;
    }
}

fn bad(what: &str) -> proto::Error {
    proto::Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, what))
}

/// The envelope postdrop's `Begin` describes, with what a maildrop file
/// could say and nothing more; `None` for a field over the queue format's
/// limits.
fn envelope(b: &proto::cleanup::Begin) -> Option<Envelope> {
    let long = |s: &str| s.len() > MAX_FIELD_LEN;
    if long(&b.sender) || b.full_name.as_deref().is_some_and(long) {
        maillog::warning!("postdrop hand-over: sender or full name too long");
        return None;
    }
    let mut env = Envelope::new(&b.sender, SystemTime::now());
    env.set_attribute("flags", &b.flags.to_string());
    if let Some(name) = &b.full_name {
        env.set_attribute("full_name", name);
    }
    for (name, value) in &b.attributes {
        if long(value) {
            continue;
        }
        match name.as_str() {
            "login_name" | "body" => env.set_attribute(name, value),
            "dsn_envid" if value.len() <= 100 => env.dsn_envid = Some(value.clone()),
            "dsn_ret" => env.dsn_ret = DsnRet::parse(value),
            _ => {}
        }
    }
    Some(env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::cleanup::Begin;

    #[test]
    fn the_mark_is_the_trigger_servers() {
        assert_eq!(proto::pickup::HANDOVER, ipc::trigger::HANDOVER);
        assert_ne!(proto::pickup::HANDOVER, ipc::trigger::WAKEUP);
    }

    fn begin(sender: &str, attrs: &[(&str, &str)]) -> Begin {
        Begin {
            flags: u32::MAX,
            sender: sender.into(),
            full_name: Some("A".into()),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn envelope_takes_what_a_maildrop_file_could_say() {
        let b = begin(
            "alice",
            &[
                ("login_name", "bob"),
                ("body", "8BITMIME"),
                ("dsn_envid", "x1"),
                ("dsn_ret", "HDRS"),
                ("content_filter", "smtp:evil"),
                ("maildrop_retry", "1"),
                ("uid", "0"),
            ],
        );
        let env = envelope(&b).expect("an envelope");
        assert_eq!(env.sender, "alice");
        assert_eq!(env.attribute("login_name"), Some("bob"));
        assert_eq!(env.attribute("body"), Some("8BITMIME"));
        assert_eq!(env.attribute("full_name"), Some("A"));
        assert_eq!(env.dsn_envid.as_deref(), Some("x1"));
        assert_eq!(env.dsn_ret, Some(DsnRet::Headers));
        for name in ["content_filter", "maildrop_retry", "uid"] {
            assert_eq!(env.attribute(name), None, "{name}");
        }
        // The flags are masked later, by Pickup::begin, as a file's are.
        assert_eq!(env.attribute("flags"), Some(u32::MAX.to_string().as_str()));
        let long = "x".repeat(MAX_FIELD_LEN + 1);
        assert!(envelope(&begin(&long, &[])).is_none());
    }

    #[test]
    fn in_flight_is_bounded_and_closes_on_drain() {
        let f = Arc::new(InFlight::default());
        let slots: Vec<Slot> = (0..MAX_IN_FLIGHT).map_while(|_| f.enter()).collect();
        assert_eq!(slots.len(), MAX_IN_FLIGHT);
        assert!(f.enter().is_none(), "one more than the bound");
        drop(slots);
        assert_eq!(f.state().count, 0, "each slot given back when dropped");
        f.drain_for(Duration::from_millis(10));
        assert!(f.enter().is_none(), "no hand-over after the drain began");
    }
}
