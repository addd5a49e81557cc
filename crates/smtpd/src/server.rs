//! The event loop: one thread runs mio over the listeners master handed
//! down (ipc's multi-server skeleton: status pipe, max_use, max_idle), a
//! signalfd for SIGTERM, a waker for worker answers, and every client and
//! cleanup socket. Per-connection timers (smtpd_timeout, error sleeps)
//! live in a heap keyed by deadline.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use ipc::multi::MultiServer;
use ipc::signals::Signals;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};

use crate::conn::{Answer, Conn, Peer, Shared};
use crate::limit::SessionLimit;
use crate::restrict::Restrictions;
use crate::settings::Settings;
use crate::workers::Pool;

const WAKER: Token = Token(0);
const SIGNALS: Token = Token(1);
const FIRST_SKELETON: usize = 2;
/// Client tokens start here: client `CONN_BASE + 2 * slot`, its cleanup socket `+ 1`.
const CONN_BASE: usize = 1 << 16;

/// Clients accepted in a row, with more still waiting, that make a burst:
/// the process then reports itself busy to master, which starts another
/// smtpd to accept beside it, until the listener runs dry (a steady load
/// of many sessions takes a client or two at a time and keeps one
/// process; a burst of thousands of connections is taken by several in
/// parallel, each greeted within milliseconds).
const BURST_ACCEPTS: usize = 32;
/// Worker threads for blocking checks.
const WORKERS: usize = 8;
/// Bits of a connection key that hold its slot.
const SLOT_BITS: u32 = 24;
/// Shared read buffer size.
const READ_BUFFER: usize = 16 * 1024;

struct Slot {
    conn: Conn,
    timer_at: Instant,
}

struct Server {
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    next_key: u64,
    shared: Shared,
    buf: Vec<u8>,
    /// Connections that stopped for fairness with work left: (slot, key).
    ready: Vec<(usize, u64)>,
    /// maxproc across the service's processes ([`crate::limit`]).
    limit: Option<SessionLimit>,
    /// Clients wait in the backlog for a free session slot.
    blocked: bool,
}

/// How often a process at the session limit looks for a slot another
/// process freed.
const LIMIT_RETRY: Duration = Duration::from_millis(200);

/// Serves clients until master stops the process (SIGTERM), goes away,
/// or max_use / max_idle end it. Call with the signals already blocked
/// (before any thread starts).
pub fn run(
    mut skeleton: MultiServer,
    settings: Settings,
    restrictions: Restrictions,
    signals: Signals,
    limit: Option<SessionLimit>,
) -> ! {
    let mut poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => maillog::fatal!("epoll: {e}"),
    };
    let waker = match Waker::new(poll.registry(), WAKER) {
        Ok(w) => Arc::new(w),
        Err(e) => maillog::fatal!("mio waker: {e}"),
    };
    let sig_fd = signals.as_fd_raw();
    if let Err(e) = poll
        .registry()
        .register(&mut SourceFd(&sig_fd), SIGNALS, Interest::READABLE)
    {
        maillog::fatal!("register signals: {e}");
    }
    if let Err(e) = skeleton.register(poll.registry(), FIRST_SKELETON) {
        maillog::fatal!("register listeners: {e}");
    }
    let (pool, answers) = match Pool::new(WORKERS, waker) {
        Ok(p) => p,
        Err(e) => maillog::fatal!("start worker threads: {e}"),
    };
    let mut srv = Server {
        slots: Vec::new(),
        free: Vec::new(),
        timers: BinaryHeap::new(),
        next_key: 1,
        shared: Shared {
            settings: Arc::new(settings),
            restrictions: Arc::new(restrictions),
            pool,
            queue_dir: ".".into(),
        },
        buf: vec![0u8; READ_BUFFER],
        ready: Vec::new(),
        limit,
        blocked: false,
    };
    let mut events = Events::with_capacity(256);
    loop {
        if skeleton.should_exit() {
            std::process::exit(0);
        }
        let timeout = if !srv.ready.is_empty() {
            Some(Duration::ZERO)
        } else if srv.blocked {
            Some(
                srv.poll_timeout(skeleton.timeout())
                    .map_or(LIMIT_RETRY, |t| t.min(LIMIT_RETRY)),
            )
        } else {
            srv.poll_timeout(skeleton.timeout())
        };
        if let Err(e) = poll.poll(&mut events, timeout)
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            maillog::fatal!("epoll: {e}");
        }
        let registry = poll.registry();
        let mut stop = false;
        for ev in events.iter() {
            let t = ev.token();
            if t == WAKER {
                continue;
            }
            if t == SIGNALS {
                if !signals.pending().is_empty() {
                    stop = true;
                }
                continue;
            }
            if skeleton.is_status(t) {
                stop = true;
                continue;
            }
            if let Some(i) = skeleton.listener_index(t) {
                srv.accept_all(&mut skeleton, i, registry);
                continue;
            }
            let Some(n) = t.0.checked_sub(CONN_BASE) else {
                continue;
            };
            let slot = n / 2;
            if let Some(Some(s)) = srv.slots.get_mut(slot) {
                if n % 2 == 0 {
                    s.conn.client_event(
                        ev.is_readable(),
                        ev.is_writable() || ev.is_error(),
                        ev.is_read_closed() || ev.is_error(),
                    );
                } else {
                    s.conn.cleanup_event();
                }
                srv.drive(slot, registry, &mut skeleton);
            }
        }
        if stop {
            srv.shutdown(registry);
        }
        srv.answers(&answers, registry, &mut skeleton);
        srv.expire(registry, &mut skeleton);
        if srv.blocked {
            // A slot may have come free here or in another process.
            srv.blocked = false;
            for i in 0..skeleton.context().args.nsock {
                srv.accept_all(&mut skeleton, i, registry);
            }
        }
        for (slot, key) in std::mem::take(&mut srv.ready) {
            if srv
                .slots
                .get(slot)
                .is_some_and(|s| s.as_ref().is_some_and(|s| s.conn.key == key))
            {
                srv.drive(slot, registry, &mut skeleton);
            }
        }
    }
}

impl Server {
    fn poll_timeout(&self, skeleton: Option<Duration>) -> Option<Duration> {
        let timer = self
            .timers
            .peek()
            .map(|Reverse((t, _, _))| t.saturating_duration_since(Instant::now()));
        match (timer, skeleton) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn accept_all(&mut self, skeleton: &mut MultiServer, i: usize, registry: &Registry) {
        // BURST_ACCEPTS clients in a row with more waiting: a burst, in
        // which master may start another smtpd to accept beside this one
        // (until the listener runs dry).
        let mut taken = 0usize;
        // As Postfix's multi_server: max_use ends the process only once it
        // is idle; while it has clients it goes on accepting.
        while skeleton.accepting() || skeleton.clients() > 0 {
            // At maxproc sessions the client waits in the backlog.
            let session = match self.limit.as_mut().map(SessionLimit::take) {
                Some(None) => {
                    self.blocked = true;
                    skeleton.report_burst(false);
                    return;
                }
                Some(Some(k)) => Some(k),
                None => None,
            };
            let give_back = |srv: &mut Server| {
                if let (Some(l), Some(k)) = (srv.limit.as_mut(), session) {
                    l.give_back(k);
                }
            };
            let stream = match skeleton.accept(i) {
                Ok(Some(s)) => s,
                Ok(None) => {
                    give_back(self);
                    skeleton.report_burst(false);
                    return;
                }
                Err(e) => {
                    give_back(self);
                    skeleton.report_burst(false);
                    maillog::warning!("accept: {e}");
                    return;
                }
            };
            taken += 1;
            if taken == BURST_ACCEPTS {
                skeleton.report_burst(true);
            }
            let ipc::Stream::Tcp(tcp) = stream else {
                maillog::warning!("smtpd serves TCP listeners only; closing a unix-domain client");
                give_back(self);
                skeleton.client_done();
                continue;
            };
            let Ok(addr) = tcp.peer_addr() else {
                give_back(self);
                skeleton.client_done();
                continue;
            };
            let local = tcp.local_addr().ok().map(|a| unmap(a.ip()));
            let port = addr.port();
            let addr = unmap(addr.ip());
            let peer = Peer {
                name: if addr.is_loopback() {
                    "localhost".into()
                } else {
                    "unknown".into()
                },
                addr,
                local,
                port,
            };
            let sock = mio::net::TcpStream::from_std(tcp);
            self.add(sock, peer, session, registry, skeleton);
        }
    }

    fn add(
        &mut self,
        sock: mio::net::TcpStream,
        peer: Peer,
        session: Option<usize>,
        registry: &Registry,
        skeleton: &mut MultiServer,
    ) {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        if let (Some(l), Some(k)) = (self.limit.as_mut(), session) {
            l.hold(slot, k);
        }
        // The key carries the slot, so a worker's answer finds its
        // connection at once, and a counter, so a late answer for a closed
        // connection never reaches the slot's next owner.
        let key = (self.next_key << SLOT_BITS) | slot as u64;
        self.next_key += 1;
        let token = Token(CONN_BASE + 2 * slot);
        let mut conn = Conn::new(key, sock, Token(token.0 + 1), peer, &self.shared.settings);
        if let Err(e) = registry.register(
            conn.socket(),
            token,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            maillog::warning!("register client socket: {e}");
            if let Some(l) = self.limit.as_mut() {
                l.release(slot);
            }
            self.free.push(slot);
            skeleton.client_done();
            return;
        }
        conn.start(&self.shared);
        let at = conn.deadline(&self.shared.settings);
        self.timers.push(Reverse((at, slot, key)));
        if let Some(s) = self.slots.get_mut(slot) {
            *s = Some(Slot { conn, timer_at: at });
        }
        self.drive(slot, registry, skeleton);
    }

    fn drive(&mut self, slot: usize, registry: &Registry, skeleton: &mut MultiServer) {
        let Some(Some(s)) = self.slots.get_mut(slot) else {
            return;
        };
        if s.conn.drive(registry, &self.shared, &mut self.buf) {
            self.ready.push((slot, s.conn.key));
        }
        if s.conn.finished() {
            self.remove(slot, registry, skeleton);
            return;
        }
        let d = s.conn.deadline(&self.shared.settings);
        if d < s.timer_at {
            s.timer_at = d;
            self.timers.push(Reverse((d, slot, s.conn.key)));
        }
    }

    fn remove(&mut self, slot: usize, registry: &Registry, skeleton: &mut MultiServer) {
        let Some(entry) = self.slots.get_mut(slot) else {
            return;
        };
        let Some(mut s) = entry.take() else {
            return;
        };
        s.conn.close(registry);
        let st = &self.shared.settings;
        if let Some(anvil) = st.anvil.clone()
            && !st.limit_exempt(s.conn.peer().addr)
        {
            let settings = Arc::clone(st);
            let peer = s.conn.peer().clone();
            self.shared.pool.run(0, move || {
                crate::anvil::disconnect(&settings, &anvil, &peer);
                Answer::Helo(crate::restrict::Verdict::Ok)
            });
        }
        if let Some(l) = self.limit.as_mut() {
            l.release(slot);
            // Clients may be waiting in the backlog for this slot.
            self.blocked = true;
        }
        self.free.push(slot);
        skeleton.client_done();
    }

    fn answers(
        &mut self,
        rx: &Receiver<(u64, Answer)>,
        registry: &Registry,
        skeleton: &mut MultiServer,
    ) {
        while let Ok((key, answer)) = rx.try_recv() {
            let slot = usize::try_from(key & ((1 << SLOT_BITS) - 1)).unwrap_or(usize::MAX);
            match self.slots.get_mut(slot) {
                Some(Some(s)) if s.conn.key == key => {
                    s.conn.answer(answer, registry, &self.shared);
                }
                _ => continue,
            }
            self.drive(slot, registry, skeleton);
        }
    }

    fn expire(&mut self, registry: &Registry, skeleton: &mut MultiServer) {
        let now = Instant::now();
        while let Some(Reverse((t, slot, key))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(Some(s)) = self.slots.get_mut(slot) else {
                continue;
            };
            if s.conn.key != key || s.timer_at != t {
                continue;
            }
            s.conn.timer(now, &self.shared.settings);
            let d = s.conn.deadline(&self.shared.settings);
            s.timer_at = d.max(now + Duration::from_millis(1));
            self.timers.push(Reverse((s.timer_at, slot, key)));
            self.drive(slot, registry, skeleton);
        }
    }

    fn shutdown(&mut self, registry: &Registry) -> ! {
        for s in self.slots.iter_mut().flatten() {
            s.conn.shutdown();
            s.conn.close(registry);
        }
        std::process::exit(0);
    }
}

/// An IPv4-mapped IPv6 address as plain IPv4.
fn unmap(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

trait RawSignals {
    fn as_fd_raw(&self) -> i32;
}

impl RawSignals for Signals {
    fn as_fd_raw(&self) -> i32 {
        std::os::fd::AsFd::as_fd(self).as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_addresses_are_ipv4() {
        assert_eq!(
            unmap("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            unmap("2001:db8::1".parse().unwrap()),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
    }
}
