//! The multi-connection server hook (Postfix's multi_server.c) for daemons
//! that run their own mio event loop (smtpd with many clients, the login
//! parts of pop3d and imapd).
//!
//! The daemon registers the listeners and the status pipe with its
//! [`mio::Registry`] via [`MultiServer::register`], calls
//! [`MultiServer::accept`] when a listener token fires and
//! [`MultiServer::client_done`] when a client leaves, and asks
//! [`MultiServer::should_exit`] once per loop round (with
//! [`MultiServer::timeout`] as the poll timeout). As in Postfix, a
//! multi-server stays "available" to master while it has clients: it reports
//! a client taken and itself available again in one write, so that master
//! does not see it busy (with two writes, master reading between them
//! during a burst of connections started another process it did not
//! need), and only once a second ([`USE_REPORT_INTERVAL`]): master needs
//! the report to know the process was used (a bad start-up is one that
//! never was; `wakeup?` services wake only when used), not each client,
//! and a write a client woke master at the message rate. A daemon that
//! wants help with a burst says so
//! ([`MultiServer::report_burst`]: smtpd after 32 clients in a row) and is
//! busy to master until the burst ends.
//!
//! max_use: a single-client server process takes max_use clients in its
//! life; a multi-server that has served up to N clients at once stands in
//! for N such processes, so it takes max_use × N clients (N the most it
//! has had at once) before it stops accepting. At one client at a time
//! that is max_use, as before; under load (20 SMTP sessions, each a
//! connection to cleanup) the process is not re-executed every max_use
//! messages.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use crate::daemon::{Context, Daemon};
use crate::listener::Stream;
use crate::status::Status;

/// A daemon that owns its event loop.
#[derive(Debug)]
pub struct MultiServer {
    daemon: Daemon,
    first: usize,
    clients: usize,
    served: u64,
    /// Most clients served at once so far.
    peak: usize,
    idle_since: Instant,
    master_gone: bool,
    /// Reported busy to master ([`MultiServer::report_burst`]).
    busy: bool,
    /// When a client was last reported taken (and the process available).
    use_reported: Option<Instant>,
}

/// Least time between two reports of a client taken while the process
/// stays available.
pub const USE_REPORT_INTERVAL: Duration = Duration::from_secs(1);

impl Daemon {
    /// Turns the daemon into a multi-connection server.
    pub fn multi_server(self) -> MultiServer {
        MultiServer {
            daemon: self,
            first: 0,
            clients: 0,
            served: 0,
            peak: 0,
            idle_since: Instant::now(),
            master_gone: false,
            busy: false,
            use_reported: None,
        }
    }
}

impl MultiServer {
    /// The command line and configuration.
    pub fn context(&self) -> &Context {
        &self.daemon.ctx
    }

    /// Registers listener `i` as `Token(first + i)` and the status pipe as
    /// `Token(first + listeners)`; returns how many tokens were used.
    ///
    /// # Errors
    /// epoll registration failed.
    pub fn register(&mut self, registry: &Registry, first: usize) -> std::io::Result<usize> {
        self.first = first;
        let n = self.daemon.listeners.len();
        for (i, l) in self.daemon.listeners.iter().enumerate() {
            let fd = l.as_raw_fd();
            registry.register(&mut SourceFd(&fd), Token(first + i), Interest::READABLE)?;
        }
        if let Some(s) = &self.daemon.status {
            let fd = s.fd().as_raw_fd();
            // A write end never becomes readable; epoll still reports the
            // error when master closes the read end.
            registry.register(&mut SourceFd(&fd), Token(first + n), Interest::READABLE)?;
            return Ok(n + 1);
        }
        Ok(n)
    }

    /// The listener index behind a token, if it is one.
    pub fn listener_index(&self, token: Token) -> Option<usize> {
        let i = token.0.checked_sub(self.first)?;
        (i < self.daemon.listeners.len()).then_some(i)
    }

    /// True when the token is the status pipe (an event on it means master went away).
    pub fn is_status(&mut self, token: Token) -> bool {
        let hit = self.daemon.status.is_some()
            && token.0.checked_sub(self.first) == Some(self.daemon.listeners.len());
        if hit {
            self.master_gone = true;
        }
        hit
    }

    /// Accepts a client from listener `i` (non-blocking stream), or `None`
    /// when no client is pending (or another process took it). mio is
    /// edge-triggered: after a listener event, call this until it returns
    /// `None` (or [`MultiServer::accepting`] turns false). Counts each
    /// client against max_use.
    ///
    /// # Errors
    /// accept() failed.
    pub fn accept(&mut self, i: usize) -> std::io::Result<Option<Stream>> {
        let Some(l) = self.daemon.listeners.get(i) else {
            return Ok(None);
        };
        let Some(s) = l.accept()? else {
            return Ok(None);
        };
        s.set_nonblocking(true)?;
        self.note_taken();
        self.clients = self.clients.saturating_add(1);
        self.peak = self.peak.max(self.clients);
        self.served = self.served.saturating_add(1);
        Ok(Some(s))
    }

    /// Says whether this process is in a burst of connections that it
    /// takes too slowly alone (the caller's judgement: for example many
    /// clients accepted in a row without the listener running dry). In
    /// a burst the process reports itself busy, so that master starts
    /// another process of the service to accept beside it (as one
    /// process a client would); after it, available again. Outside a
    /// burst a multi-server is never busy to master.
    pub fn report_burst(&mut self, burst: bool) {
        if burst == self.busy {
            return;
        }
        self.busy = burst;
        self.daemon.notify(if burst {
            Status::Taken
        } else {
            Status::Available
        });
    }

    /// Reports one request that did not come as a connection (bytes on a
    /// fifo, a timer) as taken and done, so master counts the process as
    /// used: a process that served something is not a bad startup when it
    /// dies. Does not count against max_use.
    pub fn request_served(&mut self) {
        self.note_taken();
    }

    /// Tells master a client was taken; the process stays available
    /// unless it is in a burst.
    fn note_taken(&mut self) {
        if self.busy {
            self.daemon.notify(Status::Taken);
        } else if self
            .use_reported
            .is_none_or(|t| t.elapsed() >= USE_REPORT_INTERVAL)
        {
            self.use_reported = Some(Instant::now());
            self.daemon.notify_taken_available();
        }
    }

    /// Lifts max_use and max_idle for a daemon whose state lives only in
    /// memory (anvil): restarting it would forget what it counts. It
    /// still exits when master goes away.
    pub fn without_limits(&mut self) {
        self.daemon.max_use = None;
        self.daemon.max_idle = None;
    }

    /// A client left.
    pub fn client_done(&mut self) {
        self.clients = self.clients.saturating_sub(1);
        if self.clients == 0 {
            self.idle_since = Instant::now();
        }
    }

    /// Clients being served now.
    pub fn clients(&self) -> usize {
        self.clients
    }

    /// False once max_use × (most clients at once) clients were taken or
    /// master went away: the daemon should deregister the listeners and
    /// serve only the clients it has.
    pub fn accepting(&self) -> bool {
        let per_slot = self.served / (self.peak.max(1) as u64);
        !self.daemon.used_up(per_slot) && !self.master_gone
    }

    /// True when the process should exit now: no clients left and max_use
    /// reached, max_idle passed, or master gone.
    pub fn should_exit(&self) -> bool {
        if self.clients > 0 {
            return false;
        }
        !self.accepting()
            || self
                .daemon
                .idle_left(self.idle_since)
                .is_some_and(|d| d.is_zero())
    }

    /// The poll timeout that wakes the loop in time for max_idle.
    pub fn timeout(&self) -> Option<Duration> {
        if self.clients > 0 {
            return None;
        }
        self.daemon.idle_left(self.idle_since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listener::Listener;
    use crate::status::{RECORD_SIZE, Record, Status, StatusPipe, decode_all};
    use mio::{Events, Poll};
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::OwnedFd;

    fn server(
        max_use: Option<u64>,
    ) -> (
        MultiServer,
        std::fs::File,
        std::net::SocketAddr,
        tempfile::TempDir,
    ) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let l = Listener::from_fd("inet", OwnedFd::from(l));
        l.set_nonblocking().unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        let status = StatusPipe::new(std::fs::File::from(w));
        let (d, dir) = Daemon::for_test(vec![l], Some(status), max_use, None);
        (d.multi_server(), std::fs::File::from(r), addr, dir)
    }

    /// Connects a client to `addr` and accepts it (the listener is
    /// non-blocking: retries until the kernel has the connection).
    fn take(m: &mut MultiServer, addr: std::net::SocketAddr) -> TcpStream {
        let c = TcpStream::connect(addr).unwrap();
        for _ in 0..500 {
            if m.accept(0).unwrap().is_some() {
                return c;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no connection to accept");
    }

    /// The records master has been sent so far.
    fn statuses(status: &mut std::fs::File) -> Vec<Status> {
        let mut buf = [0u8; 64 * RECORD_SIZE];
        let n = status.read(&mut buf).unwrap();
        let (recs, _) = decode_all(&buf[..n]);
        recs.iter().map(|r: &Record| r.status).collect()
    }

    /// In a burst the process is busy to master: accepts say Taken
    /// alone, and the end of the burst says Available once.
    #[test]
    fn a_burst_reports_busy_until_it_ends() {
        let (mut m, mut status, addr, _dir) = server(None);
        let poll = Poll::new().unwrap();
        m.register(poll.registry(), 10).unwrap();
        m.report_burst(true);
        m.report_burst(true);
        assert_eq!(statuses(&mut status), vec![Status::Taken], "busy once");
        let _c = take(&mut m, addr);
        assert_eq!(
            statuses(&mut status),
            vec![Status::Taken],
            "no Available in a burst"
        );
        m.report_burst(false);
        assert_eq!(statuses(&mut status), vec![Status::Available]);
    }

    #[test]
    fn accepts_reports_and_honours_max_use() {
        let (mut m, mut status, addr, _dir) = server(Some(1));
        let mut poll = Poll::new().unwrap();
        assert_eq!(m.register(poll.registry(), 10).unwrap(), 2);
        let _c = TcpStream::connect(addr).unwrap();
        let mut events = Events::with_capacity(8);
        poll.poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        let tok = events.iter().next().unwrap().token();
        assert_eq!(m.listener_index(tok), Some(0));
        assert!(m.accept(0).unwrap().is_some());
        assert_eq!(m.clients(), 1);
        // Both records in one write: one read gets them (master never
        // sees the process busy).
        let mut buf = [0u8; 4 * RECORD_SIZE];
        let n = status.read(&mut buf).unwrap();
        assert_eq!(n, 2 * RECORD_SIZE);
        let (recs, _) = decode_all(&buf[..n]);
        let kinds: Vec<Status> = recs.iter().map(|r: &Record| r.status).collect();
        assert_eq!(kinds, vec![Status::Taken, Status::Available]);
        assert!(!m.accepting(), "max_use=1 reached");
        assert!(!m.should_exit(), "a client is still being served");
        m.client_done();
        assert!(m.should_exit());
    }

    #[test]
    fn max_use_scales_with_the_most_clients_served_at_once() {
        let (mut m, _status, addr, _dir) = server(Some(2));
        // Two at once: the limit becomes 2 × 2 = 4 clients.
        let _a = take(&mut m, addr);
        let _b = take(&mut m, addr);
        m.client_done();
        m.client_done();
        assert!(m.accepting(), "2 of 4 taken");
        let _c = take(&mut m, addr);
        m.client_done();
        assert!(m.accepting(), "3 of 4 taken");
        let _d = take(&mut m, addr);
        m.client_done();
        assert!(!m.accepting(), "4 of 4 taken");
        assert!(m.should_exit());
    }

    /// Clients taken while the process stays available are reported once
    /// a second at most: master learns the process was used, and is not
    /// woken by every client.
    #[test]
    fn clients_in_a_row_are_reported_once() {
        let (mut m, mut status, addr, _dir) = server(None);
        let _a = take(&mut m, addr);
        assert_eq!(
            statuses(&mut status),
            vec![Status::Taken, Status::Available]
        );
        let _b = take(&mut m, addr);
        let _c = take(&mut m, addr);
        std::thread::sleep(USE_REPORT_INTERVAL);
        let _d = take(&mut m, addr);
        assert_eq!(
            statuses(&mut status),
            vec![Status::Taken, Status::Available],
            "b and c not reported, d a second later"
        );
    }

    #[test]
    fn max_use_one_client_at_a_time_is_max_use() {
        let (mut m, _status, addr, _dir) = server(Some(2));
        for i in 0..2 {
            assert!(m.accepting(), "{i} of 2 taken");
            let _c = take(&mut m, addr);
            m.client_done();
        }
        assert!(!m.accepting());
    }

    #[test]
    fn master_gone_is_seen_on_the_status_token() {
        let (mut m, status, _addr, _dir) = server(None);
        let mut poll = Poll::new().unwrap();
        m.register(poll.registry(), 0).unwrap();
        drop(status);
        let mut events = Events::with_capacity(8);
        poll.poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        let tok = events.iter().next().unwrap().token();
        assert!(m.is_status(tok));
        assert!(m.should_exit());
    }
}
