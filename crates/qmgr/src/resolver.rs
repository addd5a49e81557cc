//! The trivial-rewrite client: one connection kept open for every
//! resolve request, reopened once when it broke (trivial-rewrite exits
//! when its tables change, and master starts a new one). Answers are kept
//! for [`proto::recent::LIFETIME`] (not a failed lookup's).

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use proto::recent::Recent;
use proto::rewrite::{Reply, Request};

/// Where a recipient goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    /// master.cf service.
    pub(crate) transport: String,
    /// Its next hop (or the reason text for `error` and `retry`).
    pub(crate) nexthop: String,
    /// The recipient after resolving.
    pub(crate) recipient: String,
    /// [`proto::rewrite::flags`].
    pub(crate) flags: u32,
}

/// The client.
#[derive(Debug)]
pub(crate) struct Resolver {
    queue_dir: PathBuf,
    timeout: Duration,
    stream: Option<UnixStream>,
    /// Recent answers by (probe?, sender, recipient), as Postfix's
    /// resolve_clnt keeps its last one: a run of messages to one
    /// recipient asks once.
    recent: Recent<(bool, String, String), Route>,
}

impl Resolver {
    /// A client that connects on first use.
    pub(crate) fn new(queue_dir: PathBuf, timeout: Duration) -> Resolver {
        Resolver {
            queue_dir,
            timeout,
            stream: None,
            recent: Recent::new(),
        }
    }

    /// Resolves one recipient.
    ///
    /// # Errors
    /// trivial-rewrite could not be reached or answered nonsense, twice.
    pub(crate) fn resolve(&mut self, sender: &str, address: &str) -> Result<Route, proto::Error> {
        self.resolve_as(false, sender, address)
    }

    /// Resolves one recipient of an address verification probe, with the
    /// address_verify_* routes (Postfix's resolve_clnt_verify).
    ///
    /// # Errors
    /// As [`Resolver::resolve`].
    pub(crate) fn resolve_verify(
        &mut self,
        sender: &str,
        address: &str,
    ) -> Result<Route, proto::Error> {
        self.resolve_as(true, sender, address)
    }

    fn resolve_as(
        &mut self,
        verify: bool,
        sender: &str,
        address: &str,
    ) -> Result<Route, proto::Error> {
        let key = (verify, sender.to_string(), address.to_string());
        if let Some(route) = self.recent.get(&key) {
            return Ok(route);
        }
        let request = if verify {
            Request::ResolveVerify {
                sender: key.1.clone(),
                address: key.2.clone(),
            }
        } else {
            Request::Resolve {
                sender: key.1.clone(),
                address: key.2.clone(),
            }
        };
        let route = match self.ask(&request) {
            Ok(r) => r,
            Err(_) => {
                self.stream = None;
                self.ask(&request)?
            }
        };
        // A failed lookup is asked again next time.
        if route.flags & proto::rewrite::flags::DEFER == 0 {
            self.recent.put(key, route.clone());
        }
        Ok(route)
    }

    fn ask(&mut self, request: &Request) -> Result<Route, proto::Error> {
        let stream = match &mut self.stream {
            Some(s) => s,
            None => {
                let s = proto::connect(&self.queue_dir, proto::rewrite::SERVICE)?;
                s.set_read_timeout(Some(self.timeout))?;
                s.set_write_timeout(Some(self.timeout))?;
                self.stream.insert(s)
            }
        };
        proto::send(stream, request)?;
        match proto::recv(stream)? {
            Reply::Resolved {
                transport,
                nexthop,
                recipient,
                flags,
                ..
            } => Ok(Route {
                transport,
                nexthop,
                recipient,
                flags,
            }),
            Reply::Rewritten { .. } => Err(proto::Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "rewrite reply to a resolve request",
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::rewrite::AddressClass;
    use std::os::unix::net::UnixListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A trivial-rewrite that answers every resolve with `flags`,
    /// counting the requests.
    fn fake(dir: &std::path::Path, flags: u32) -> Arc<AtomicUsize> {
        std::fs::create_dir_all(dir.join("private")).unwrap();
        let listener = UnixListener::bind(dir.join(proto::rewrite::SERVICE)).unwrap();
        let asked = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&asked);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                while let Ok(Request::Resolve { address, .. }) = proto::recv(&mut conn) {
                    count.fetch_add(1, Ordering::SeqCst);
                    let reply = Reply::Resolved {
                        transport: "local".into(),
                        nexthop: "here".into(),
                        recipient: address,
                        class: AddressClass::Local,
                        flags,
                        reason: String::new(),
                    };
                    if proto::send(&mut conn, &reply).is_err() {
                        break;
                    }
                }
            }
        });
        asked
    }

    #[test]
    fn a_recent_answer_is_used_again() {
        let dir = tempfile::tempdir().unwrap();
        let asked = fake(dir.path(), 0);
        let mut r = Resolver::new(dir.path().to_path_buf(), Duration::from_secs(5));
        for _ in 0..3 {
            let route = r.resolve("s@x", "bob@x").unwrap();
            assert_eq!(route.transport, "local");
            assert_eq!(route.recipient, "bob@x");
        }
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        r.resolve("other@x", "bob@x").unwrap();
        r.resolve("s@x", "alice@x").unwrap();
        assert_eq!(
            asked.load(Ordering::SeqCst),
            3,
            "each (sender, recipient) is asked"
        );
    }

    #[test]
    fn a_failed_lookup_is_asked_again() {
        let dir = tempfile::tempdir().unwrap();
        let asked = fake(dir.path(), proto::rewrite::flags::DEFER);
        let mut r = Resolver::new(dir.path().to_path_buf(), Duration::from_secs(5));
        r.resolve("s@x", "bob@x").unwrap();
        r.resolve("s@x", "bob@x").unwrap();
        assert_eq!(asked.load(Ordering::SeqCst), 2);
    }
}
