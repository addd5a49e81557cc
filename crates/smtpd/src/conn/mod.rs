//! One SMTP client connection in the event loop: the non-blocking socket,
//! TLS when STARTTLS or wrapper mode asks, the protocol core's
//! [`Session`], and the cleanup conversation for the current message.
//!
//! A connection holds no big buffers while idle: the input and output
//! vectors are freed whenever they run empty, the line reader keeps only
//! a partial line, and TLS state exists only after STARTTLS. Reading from
//! the client stops while the session waits for an answer (a worker, or
//! cleanup's `Queued`), while replies pile up unread by the client, and
//! while cleanup has [`BACKLOG_LIMIT`] bytes to take: so a connection's
//! memory is bounded whatever the client sends.
//!
//! Split by concern: this file holds the state and the event-loop entry
//! points (start, drive, timers, the actions of the session); `output`
//! the socket and TLS, `checks` the restriction checks and their log
//! lines, `message` the cleanup conversation, `auth` SMTP AUTH.

use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use proto::cleanup::{Begin, RecipientSpec, Reply as CleanupReply, Request};

use crate::cleanup_client::{BACKLOG_LIMIT, CleanupClient};
use crate::command::{Body, MailParams, Ret};
use crate::reply::Reply;
use crate::restrict::{Facts, Restrictions, Verdict};
use crate::session::{Action, AuthStep, Session};
use crate::settings::Settings;
use crate::workers::Pool;

mod actions;
mod auth;
mod checks;
mod message;
mod output;

/// Most unprocessed client input held per connection.
const INPUT_LIMIT: usize = 16 * 1024;
/// Stop reading the client while this much output waits for it.
const OUTPUT_LIMIT: usize = 64 * 1024;
/// Rounds of [`Conn::drive`] before other connections get their turn.
const DRIVE_ROUNDS: usize = 64;
/// Bytes handed to the session per call (bounds the actions per round).
const FEED_CHUNK: usize = 8 * 1024;

/// What the process shares with every connection.
#[derive(Debug)]
pub struct Shared {
    /// The settings.
    pub settings: Arc<Settings>,
    /// The restrictions, used on worker threads.
    pub restrictions: Arc<Restrictions>,
    /// The worker pool.
    pub pool: Pool<Answer>,
    /// The queue directory (`.`: the daemon runs in it).
    pub queue_dir: PathBuf,
}

/// A worker's answer for a connection.
#[derive(Debug)]
pub enum Answer {
    /// The connect-time check: the client's name when it was looked up;
    /// no refusal lets the client in; a reply refuses it, closing the
    /// connection when the flag is true (anvil limits).
    Connect {
        /// The name found in DNS (`unknown` when none).
        name: Option<String>,
        /// The refusal, if any.
        refusal: Option<(Reply, bool)>,
    },
    /// HELO/EHLO restrictions.
    Helo(Verdict),
    /// MAIL restrictions.
    Sender(Verdict),
    /// RCPT restrictions.
    Rcpt(Verdict),
    /// DATA restrictions.
    Data(Verdict),
    /// MAIL refused by smtpd_client_message_rate_limit (not a restriction:
    /// anvil's warning is the log line).
    MessageRate(Reply),
    /// smtpd_end_of_data_restrictions, after the final dot.
    EndOfData(Verdict),
    /// ETRN: the reply (restrictions, then the flush service's answer);
    /// true when smtpd_etrn_restrictions refused (logged as a reject).
    Etrn(Reply, bool),
    /// VRFY: the recipient restrictions' reply for the address, or 252.
    Verify(Reply),
    /// A SASL step, with the exchange handed back.
    Auth(AuthStep, Box<crate::sasl::Exchange>),
}

/// What the connection waits for before it reads on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Nothing.
    None,
    /// A worker's answer.
    Worker,
    /// cleanup's answer to End.
    Queued,
}

/// The current mail transaction.
#[derive(Debug, Default)]
struct Txn {
    sender: String,
    params: MailParams,
    first_rcpt: Option<String>,
    nrcpt: usize,
    hold: bool,
    discard: bool,
    queue_id: Option<String>,
    /// cleanup refused or failed: the reply for the end of data.
    failed: Option<Reply>,
    /// The recipient being checked.
    checking: Option<String>,
    /// FILTER, REDIRECT, BCC, PREPEND actions not yet handed to cleanup.
    actions: crate::restrict::Actions,
    /// This transaction's number in the process (policy `instance`).
    number: u64,
}

/// The client's identity.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Reverse name, `unknown` when none.
    pub name: String,
    /// Address.
    pub addr: IpAddr,
    /// Our local address.
    pub local: Option<IpAddr>,
    /// The client's port (milters' {client_port}).
    pub port: u16,
}

impl Peer {
    /// `name[addr]`, as Postfix logs a client.
    pub fn namaddr(&self) -> String {
        format!("{}[{}]", self.name, self.addr)
    }
}

/// One client connection.
#[derive(Debug)]
pub struct Conn {
    /// Unique key of this connection (for worker answers).
    pub key: u64,
    sock: TcpStream,
    cleanup_token: Token,
    peer: Peer,
    namaddr: String,
    session: Session,
    tls: Option<Box<tls::Session>>,
    /// Plaintext from the client not yet used by the session.
    input: Vec<u8>,
    /// Ciphertext read but not yet taken by TLS.
    cipher_in: Vec<u8>,
    /// Bytes for the client socket.
    output: Vec<u8>,
    readable: bool,
    /// An event said the client hung up or the socket failed: read until
    /// the end, not only until a short read.
    hup: bool,
    writable: bool,
    eof: bool,
    dead: bool,
    closing: bool,
    wait: Wait,
    /// Actions left over when an error sleep began.
    deferred: std::collections::VecDeque<Action>,
    sleep_until: Option<Instant>,
    last_active: Instant,
    txn: Option<Txn>,
    cleanup: Option<CleanupClient>,
    greeted: bool,
    sasl: Option<Box<crate::sasl::Exchange>>,
}

impl Conn {
    /// A new connection; call [`Conn::start`] next.
    pub fn new(
        key: u64,
        sock: TcpStream,
        cleanup_token: Token,
        peer: Peer,
        settings: &Settings,
    ) -> Conn {
        let namaddr = peer.namaddr();
        Conn {
            key,
            sock,
            cleanup_token,
            peer,
            namaddr,
            session: Session::with_config(std::sync::Arc::clone(&settings.session)),
            tls: None,
            input: Vec::new(),
            cipher_in: Vec::new(),
            output: Vec::new(),
            readable: false,
            hup: false,
            // A new socket can take the greeting.
            writable: true,
            eof: false,
            dead: false,
            closing: false,
            wait: Wait::None,
            deferred: std::collections::VecDeque::new(),
            sleep_until: None,
            last_active: Instant::now(),
            txn: None,
            cleanup: None,
            greeted: false,
            sasl: None,
        }
    }

    /// The client socket, to register.
    pub fn socket(&mut self) -> &mut TcpStream {
        &mut self.sock
    }

    /// Logs the connect and starts the connect-time checks (or greets).
    pub fn start(&mut self, shared: &Shared) {
        let s = &shared.settings;
        let lookup = s.peername_lookup && !self.peer.addr.is_loopback();
        if !lookup {
            maillog::info!("connect from {}", self.namaddr);
        }
        let anvil = s.anvil.clone().filter(|_| !s.limit_exempt(self.peer.addr));
        let need_check = lookup || anvil.is_some() || !shared.restrictions.delay_reject();
        if !need_check {
            self.greet(s);
            return;
        }
        let r = Arc::clone(&shared.restrictions);
        let settings = Arc::clone(&shared.settings);
        let mut peer = self.peer.clone();
        self.wait = Wait::Worker;
        shared.pool.run(self.key, move || {
            let name = lookup.then(|| crate::settings::peer_name(&settings.resolver, peer.addr));
            if let Some(n) = &name {
                peer.name = n.clone();
            }
            if let Some(service) = anvil
                && let Some(refusal) = crate::anvil::connect(&settings, &service, &peer)
            {
                return Answer::Connect {
                    name,
                    refusal: Some((refusal, true)),
                };
            }
            let f = Facts {
                client_name: &peer.name,
                client_addr: peer.addr,
                helo: None,
                sender: None,
                recipient: None,
                sasl_username: None,
                tls: false,
                session: None,
            };
            let refusal = match r.at_connect(&f) {
                Verdict::Reject(reply) => Some((reply, false)),
                _ => None,
            };
            Answer::Connect { name, refusal }
        });
    }

    fn greet(&mut self, s: &Settings) {
        self.greeted = true;
        if s.wrapper_mode
            && let Some(cfg) = &s.tls
        {
            match tls::Session::new(Arc::clone(cfg)) {
                Ok(t) => self.tls = Some(Box::new(t)),
                Err(e) => {
                    maillog::warning!("TLS session for {}: {e}", self.namaddr);
                    self.dead = true;
                    return;
                }
            }
        }
        let g = self.session.greeting();
        self.send(&g);
    }

    /// An event on the client socket: readable, writable, and whether it
    /// also said hang-up or error.
    pub fn client_event(&mut self, readable: bool, writable: bool, hup: bool) {
        self.readable |= readable || hup;
        self.writable |= writable;
        self.hup |= hup;
    }

    /// True once the connection is finished and can be dropped.
    pub fn finished(&self) -> bool {
        self.dead || (self.closing && self.output.is_empty())
    }

    /// When the loop must call [`Conn::timer`] next.
    pub fn deadline(&self, s: &Settings) -> Instant {
        let idle = self.last_active + self.idle_limit(s);
        match self.sleep_until {
            Some(t) => t.min(idle),
            None => idle,
        }
    }

    /// smtpd_starttls_timeout during a TLS handshake, else smtpd_timeout.
    fn idle_limit(&self, s: &Settings) -> std::time::Duration {
        if self.tls.as_ref().is_some_and(|t| t.is_handshaking()) {
            s.starttls_timeout
        } else {
            s.timeout
        }
    }

    /// A timer ran out: end an error sleep, or time the client out.
    pub fn timer(&mut self, now: Instant, s: &Settings) {
        if let Some(t) = self.sleep_until
            && t <= now
        {
            self.sleep_until = None;
        }
        if self.closing && now >= self.last_active + self.idle_limit(s) {
            // The last words were never read: give up on this client.
            self.dead = true;
            return;
        }
        let waiting = self.wait != Wait::None;
        if waiting {
            // Not the client's fault: the idle clock starts again after.
            self.last_active = now;
        }
        if !waiting && !self.closing && now >= self.last_active + self.idle_limit(s) {
            if self.tls.as_ref().is_some_and(|t| t.is_handshaking()) {
                // Nothing can be said in the clear inside a handshake.
                maillog::info!("timeout in TLS handshake from {}", self.namaddr);
                maillog::info!(
                    "timeout after {} from {}",
                    self.session.last_command(),
                    self.namaddr
                );
                self.abort_cleanup();
                self.dead = true;
                return;
            }
            maillog::info!(
                "timeout after {} from {}",
                self.session.last_command(),
                self.namaddr
            );
            self.abort_cleanup();
            let r = Reply::new(
                421,
                Some("4.4.2"),
                format!("{} Error: timeout exceeded", s.hostname),
            );
            self.send(&r);
            self.closing = true;
        }
    }

    /// The server is stopping: say 421 and close.
    pub fn shutdown(&mut self) {
        self.abort_cleanup();
        if !self.closing && !self.dead {
            let r = self.session.shutdown_reply();
            self.send(&r);
            self.closing = true;
        }
        self.flush_output();
    }

    /// Logs the disconnect; the connection is being dropped.
    pub fn close(&mut self, registry: &Registry) {
        self.abort_cleanup();
        if let Some(c) = self.cleanup.as_mut() {
            let _ = registry.deregister(c.socket());
        }
        let _ = registry.deregister(&mut self.sock);
        maillog::info!(
            "disconnect from {} {}",
            self.namaddr,
            self.session.command_counts()
        );
    }

    /// The client's address and the connection's key for anvil's disconnect.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Runs the connection as far as it can go without blocking, or for
    /// a fair share of rounds; true when it could go on (the loop must
    /// call again: edge-triggered events will not say so).
    pub fn drive(&mut self, registry: &Registry, shared: &Shared, buf: &mut [u8]) -> bool {
        let mut more = false;
        for round in 0..DRIVE_ROUNDS {
            let mut progress = false;
            if !self.output.is_empty() && self.writable {
                progress |= self.flush_output();
            }
            progress |= self.cleanup_round(shared);
            if self.dead {
                break;
            }
            if self.wait == Wait::None && self.sleep_until.is_none() && self.greeted {
                while self.sleep_until.is_none()
                    && self.wait == Wait::None
                    && let Some(a) = self.deferred.pop_front()
                {
                    self.perform(a, registry, shared);
                    progress = true;
                }
            }
            if self.can_feed() {
                progress |= self.feed(registry, shared);
            }
            // Plaintext TLS could not hand over while the input was full.
            if self.tls.is_some() && self.input.len() < INPUT_LIMIT && !self.dead && self.pump_tls()
            {
                progress = true;
            }
            if self.may_read() && self.read_socket(buf) {
                progress = true;
            }
            if !progress {
                break;
            }
            more = round + 1 == DRIVE_ROUNDS;
        }
        if !self.output.is_empty() && self.writable {
            self.flush_output();
        }
        // A client may send everything and shut down its side at once:
        // it is lost only when nothing it sent is left to answer.
        if self.eof
            && !self.closing
            && !self.dead
            && self.input.is_empty()
            && self.cipher_in.is_empty()
            && self.wait == Wait::None
            && self.deferred.is_empty()
            && self.sleep_until.is_none()
        {
            self.lost();
        }
        more && !self.finished()
    }

    fn can_feed(&self) -> bool {
        self.greeted
            && self.wait == Wait::None
            && self.sleep_until.is_none()
            && self.deferred.is_empty()
            && !self.closing
            && !self.dead
            && self.tls.as_ref().is_none_or(|t| !t.is_handshaking())
            && self.output.len() < OUTPUT_LIMIT
            && self.cleanup_backlog() < BACKLOG_LIMIT
    }

    /// Gives input to the session; true if anything happened.
    fn feed(&mut self, registry: &Registry, shared: &Shared) -> bool {
        let n = self.input.len().min(FEED_CHUNK);
        let (used, actions) = self.session.receive(self.input.get(..n).unwrap_or(&[]));
        self.input.drain(..used.min(n));
        if self.input.is_empty() && self.input.capacity() > 1024 {
            self.input = Vec::new();
        }
        let progress = used > 0 || !actions.is_empty();
        self.perform_all(actions, registry, shared);
        progress
    }

    fn perform_all(&mut self, actions: Vec<Action>, registry: &Registry, shared: &Shared) {
        let mut it = actions.into_iter();
        while let Some(a) = it.next() {
            let sleep = a == Action::ErrorSleep;
            self.perform(a, registry, shared);
            if sleep {
                self.deferred.extend(it);
                return;
            }
        }
    }

    /// The client went away without QUIT.
    fn lost(&mut self) {
        maillog::info!(
            "lost connection after {} from {}",
            self.session.last_command(),
            self.namaddr
        );
        self.abort_cleanup();
        self.dead = true;
    }

    fn perform(&mut self, action: Action, registry: &Registry, shared: &Shared) {
        match action {
            Action::Reply(r) => self.send(&r),
            Action::StartTls => self.start_tls(&shared.settings),
            Action::BeginMessage { sender, params } => {
                static TRANSACTIONS: std::sync::atomic::AtomicU64 =
                    std::sync::atomic::AtomicU64::new(0);
                self.txn = Some(Txn {
                    sender: sender.address.to_internal(),
                    params,
                    number: TRANSACTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                    ..Txn::default()
                });
            }
            Action::CheckHelo { name } => {
                self.check(shared, registry, Stage::Helo, Some(name), None);
            }
            Action::CheckSender { sender, params: _ } => {
                let addr = sender.address.to_internal();
                self.check(shared, registry, Stage::Sender, None, Some(addr));
            }
            Action::CheckRecipient {
                recipient,
                params: _,
            } => {
                let addr = recipient.address.to_internal();
                if let Some(t) = self.txn.as_mut() {
                    t.checking = Some(addr.clone());
                }
                self.check(shared, registry, Stage::Rcpt, None, Some(addr));
            }
            Action::CheckData => self.check(shared, registry, Stage::Data, None, None),
            Action::AddRecipient { recipient, params } => {
                let addr = recipient.address.to_internal();
                if let Some(t) = self.txn.as_mut() {
                    t.nrcpt += 1;
                    if t.first_rcpt.is_none() {
                        t.first_rcpt = Some(addr.clone());
                    }
                }
                if let Some(c) = self.cleanup.as_mut() {
                    let notify = params.notify.map_or(0, |n| {
                        use proto::deliver::notify as nf;
                        if n.never {
                            nf::NEVER
                        } else {
                            (if n.success { nf::SUCCESS } else { 0 })
                                | (if n.failure { nf::FAILURE } else { 0 })
                                | (if n.delay { nf::DELAY } else { 0 })
                        }
                    });
                    c.send(&Request::Recipient(RecipientSpec {
                        address: addr,
                        orcpt: params.orcpt.map(|(t, a)| format!("{t};{a}")),
                        notify,
                    }));
                }
            }
            Action::Content(bytes) => {
                self.send_prepend();
                if let Some(c) = self.cleanup.as_mut() {
                    c.send(&Request::Content(bytes));
                }
            }
            Action::EndMessage { size } => self.end_message(registry, shared, size),
            Action::AbortMessage => {
                self.abort_cleanup();
                self.txn = None;
            }
            Action::Verify(text) => self.verify(shared, text),
            Action::Etrn(domain) => self.etrn(shared, domain),
            Action::Auth { mechanism, initial } => self.auth_begin(shared, mechanism, initial),
            Action::AuthResponse(line) => self.auth_continue(shared, line),
            Action::ErrorSleep => {
                self.sleep_until = Some(Instant::now() + shared.settings.error_sleep);
            }
            Action::NonSmtpCommand(text) => {
                maillog::warning!("non-SMTP command from {}: {text}", self.namaddr);
            }
            Action::Close => {
                self.abort_cleanup();
                self.closing = true;
            }
        }
    }

    fn start_tls(&mut self, s: &Settings) {
        let Some(cfg) = s.tls.as_ref() else {
            self.closing = true;
            return;
        };
        match tls::start_tls(Arc::clone(cfg), &mut self.input) {
            Ok(st) => {
                if st.discarded > 0 {
                    maillog::info!(
                        "discarding {} bytes of plaintext pipelined after STARTTLS from {}",
                        st.discarded,
                        self.namaddr
                    );
                }
                self.tls = Some(Box::new(st.session));
            }
            Err(e) => {
                maillog::warning!("cannot start TLS for {}: {e}", self.namaddr);
                self.closing = true;
            }
        }
    }

    /// A cleanup socket event: the next drive round reads the socket
    /// (it is read only after an event, not on every round).
    pub fn cleanup_event(&mut self) {
        if let Some(c) = self.cleanup.as_mut() {
            c.mark_readable();
        }
    }
}

/// Maps cleanup's enhanced status to one of the codes a [`Reply`] holds.
fn enhanced_static(status: &str) -> &'static str {
    const KNOWN: [&str; 15] = [
        "5.3.4", "5.7.1", "5.4.0", "5.1.0", "5.1.7", "5.1.3", "5.6.0", "4.3.0", "4.5.3", "4.3.5",
        "5.3.0", "5.5.0", // Milter replies (issue 15).
        "4.7.1", "4.7.0", "5.7.0",
    ];
    KNOWN
        .into_iter()
        .find(|k| *k == status)
        .unwrap_or(if status.starts_with('4') {
            "4.3.0"
        } else {
            "5.3.0"
        })
}

/// Restriction stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Helo,
    Sender,
    Rcpt,
    Data,
}

/// [`Facts`] with owned strings, to send to a worker.
#[derive(Debug)]
struct OwnedFacts {
    client_name: String,
    client_addr: IpAddr,
    helo: Option<String>,
    sender: Option<String>,
    recipient: Option<String>,
    sasl_username: Option<String>,
    tls: bool,
    session: crate::restrict::policy::SessionInfo,
}

impl OwnedFacts {
    fn borrow(&self) -> Facts<'_> {
        Facts {
            client_name: &self.client_name,
            client_addr: self.client_addr,
            helo: self.helo.as_deref(),
            sender: self.sender.as_deref(),
            recipient: self.recipient.as_deref(),
            sasl_username: self.sasl_username.as_deref(),
            tls: self.tls,
            session: Some(&self.session),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_status_codes_and_names() {
        assert_eq!(enhanced_static("5.3.4"), "5.3.4");
        assert_eq!(enhanced_static("4.9.9"), "4.3.0");
        assert_eq!(enhanced_static("5.9.9"), "5.3.0");
        let p = Peer {
            name: "mail.example".into(),
            addr: "2001:db8::1".parse().unwrap(),
            local: None,
            port: 0,
        };
        assert_eq!(p.namaddr(), "mail.example[2001:db8::1]");
        let f = OwnedFacts {
            client_name: "unknown".into(),
            client_addr: "192.0.2.1".parse().unwrap(),
            helo: Some("h".into()),
            sender: Some(String::new()),
            recipient: None,
            sasl_username: None,
            tls: true,
            session: Default::default(),
        };
        let b = f.borrow();
        assert_eq!((b.helo, b.sender, b.tls), (Some("h"), Some(""), true));
    }
}
