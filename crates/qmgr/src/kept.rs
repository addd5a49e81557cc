//! Delivery agent connections kept between requests: an agent whose reply
//! said [`proto::deliver::Reply::more`] reads the next request on the same
//! connection, so a worker takes an idle connection to the transport from
//! here instead of connecting (and the agent accepting, and reporting busy
//! and idle to master) for every delivery.
//!
//! A connection is used again only within [`proto::deliver::KEEP_IDLE`] of
//! its last reply (the agent waits much longer before it gives up on it)
//! and only when the agent has not closed it meanwhile (it was killed, or
//! master stopped). A request on a kept connection that still fails is
//! handled as on a fresh one: the recipients are deferred and the message
//! flagged maybe-delivered, so nothing is lost or delivered twice.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::time::Instant;

use proto::deliver::KEEP_IDLE;

/// Idle connections kept per transport, at most.
const PER_SERVICE: usize = 64;

/// One service's connections.
#[derive(Debug, Default)]
struct Service {
    /// Idle connections and when each was last used.
    idle: Vec<(UnixStream, Instant)>,
    /// Requests under way (each holds an agent process: a kept connection
    /// or a fresh one).
    busy: usize,
}

/// Kept connections by service (`private/local`).
#[derive(Debug, Default)]
pub(crate) struct Kept {
    services: Mutex<HashMap<String, Service>>,
}

/// A request under way to one service; it ends when dropped.
pub(crate) struct Request<'k> {
    kept: &'k Kept,
    service: &'k str,
}

impl Kept {
    /// Starts a request to `service`.
    pub(crate) fn begin<'k>(&'k self, service: &'k str) -> Request<'k> {
        if let Ok(mut m) = self.services.lock() {
            m.entry(service.to_string()).or_default().busy += 1;
        }
        Request {
            kept: self,
            service,
        }
    }
}

impl Request<'_> {
    /// An idle connection that can take the request, if there is one.
    pub(crate) fn take(&self) -> Option<UnixStream> {
        let mut m = self.kept.services.lock().ok()?;
        let s = m.get_mut(self.service)?;
        // The most recently used first; older ones are dropped as found.
        while let Some((stream, since)) = s.idle.pop() {
            if since.elapsed() < KEEP_IDLE && still_open(&stream) {
                return Some(stream);
            }
        }
        None
    }

    /// Keeps the request's connection for another request, unless the
    /// idle connections (each holds an agent process) and the requests
    /// under way would then leave no process for a fresh connection
    /// within `process_limit` (the transport's maxproc): a request that
    /// found no idle connection must find an agent accepting.
    pub(crate) fn keep(&self, stream: UnixStream, process_limit: usize) {
        if let Ok(mut m) = self.kept.services.lock() {
            let s = m.entry(self.service.to_string()).or_default();
            s.idle.retain(|(_, since)| since.elapsed() < KEEP_IDLE);
            // This request is still counted in `busy` and gives its
            // process to the idle list.
            if s.idle.len() < PER_SERVICE && s.idle.len() + s.busy <= process_limit {
                s.idle.push((stream, Instant::now()));
            }
        }
    }
}

impl Drop for Request<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.kept.services.lock()
            && let Some(s) = m.get_mut(self.service)
        {
            s.busy = s.busy.saturating_sub(1);
        }
    }
}

/// True when nothing is waiting to be read: the agent has neither closed
/// the connection nor sent anything unasked.
fn still_open(s: &UnixStream) -> bool {
    use nix::sys::socket::{MsgFlags, recv};
    let mut byte = [0u8; 1];
    matches!(
        recv(
            s.as_raw_fd(),
            &mut byte,
            MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT
        ),
        Err(nix::errno::Errno::EAGAIN)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn an_open_idle_connection_is_used_again() {
        let kept = Kept::default();
        {
            let r = kept.begin("private/local");
            assert!(r.take().is_none());
            let (ours, agent) = UnixStream::pair().unwrap();
            std::mem::forget(agent);
            r.keep(ours, 10);
        }
        assert!(kept.begin("private/virtual").take().is_none());
        let r = kept.begin("private/local");
        assert!(r.take().is_some());
        assert!(r.take().is_none(), "taken once");
    }

    #[test]
    fn a_closed_or_chatty_connection_is_dropped() {
        let kept = Kept::default();
        let (closed, agent) = UnixStream::pair().unwrap();
        drop(agent);
        kept.begin("private/local").keep(closed, 10);
        assert!(kept.begin("private/local").take().is_none());
        let (chatty, mut agent) = UnixStream::pair().unwrap();
        agent.write_all(b"x").unwrap();
        kept.begin("private/local").keep(chatty, 10);
        assert!(kept.begin("private/local").take().is_none());
    }

    #[test]
    fn an_agent_process_stays_free_for_a_fresh_connection() {
        // maxproc 2: two requests end, and both connections are kept for
        // the next two; with three under way (more than maxproc: the
        // limit was lowered) the third's is not kept, so that the idle
        // connections never hold every agent process.
        let kept = Kept::default();
        let a = kept.begin("private/local");
        let b = kept.begin("private/local");
        let (sa, _pa) = UnixStream::pair().unwrap();
        let (sb, _pb) = UnixStream::pair().unwrap();
        a.keep(sa, 2);
        drop(a);
        b.keep(sb, 2);
        drop(b);
        let c = kept.begin("private/local");
        let d = kept.begin("private/local");
        let e = kept.begin("private/local");
        let (sc, sd) = (c.take().unwrap(), d.take().unwrap());
        assert!(e.take().is_none());
        let (se, _pe) = UnixStream::pair().unwrap();
        e.keep(se, 2);
        drop(e);
        c.keep(sc, 2);
        drop(c);
        d.keep(sd, 2);
        drop(d);
        let f = kept.begin("private/local");
        assert!(f.take().is_some());
        assert!(f.take().is_some());
        assert!(f.take().is_none(), "the third was not kept");
    }
}
