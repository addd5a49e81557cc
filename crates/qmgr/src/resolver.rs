//! The trivial-rewrite client: one connection kept open for every
//! resolve request, reopened once when it broke (trivial-rewrite exits
//! when its tables change, and master starts a new one).

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

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
}

impl Resolver {
    /// A client that connects on first use.
    pub(crate) fn new(queue_dir: PathBuf, timeout: Duration) -> Resolver {
        Resolver {
            queue_dir,
            timeout,
            stream: None,
        }
    }

    /// Resolves one recipient.
    ///
    /// # Errors
    /// trivial-rewrite could not be reached or answered nonsense, twice.
    pub(crate) fn resolve(&mut self, sender: &str, address: &str) -> Result<Route, proto::Error> {
        self.resolve_as(Request::Resolve {
            sender: sender.to_string(),
            address: address.to_string(),
        })
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
        self.resolve_as(Request::ResolveVerify {
            sender: sender.to_string(),
            address: address.to_string(),
        })
    }

    fn resolve_as(&mut self, request: Request) -> Result<Route, proto::Error> {
        match self.ask(&request) {
            Ok(r) => Ok(r),
            Err(_) => {
                self.stream = None;
                self.ask(&request)
            }
        }
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
