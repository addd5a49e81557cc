//! The connected clients of a multi-server that runs its own mio loop
//! (anvil, trivial-rewrite, verify): each client gets a token from
//! [`FIRST_TOKEN`] up (below it are the listeners and the status pipe),
//! is registered for read and write readiness when accepted, and is
//! deregistered and counted out of the server when hung up on.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use crate::Stream;
use crate::multi::MultiServer;

/// The first client token.
pub const FIRST_TOKEN: usize = 1024;

/// Clients by token, with their descriptors for deregistering.
#[derive(Debug)]
pub struct Clients<C> {
    map: HashMap<usize, (RawFd, C)>,
    next: usize,
    max: usize,
}

impl<C> Clients<C> {
    /// No clients; at most `max` at once (more are accepted and closed).
    pub fn new(max: usize) -> Clients<C> {
        Clients {
            map: HashMap::new(),
            next: FIRST_TOKEN,
            max,
        }
    }

    /// Accepts what listener `i` has waiting, while the server accepts
    /// and `more()` says so; `make` turns each connection into a client.
    /// mio is edge-triggered: call this after every listener event.
    pub fn accept(
        &mut self,
        server: &mut MultiServer,
        registry: &Registry,
        i: usize,
        more: impl Fn() -> bool,
        mut make: impl FnMut(Stream) -> C,
    ) {
        while server.accepting() && more() {
            let Ok(Some(s)) = server.accept(i) else { break };
            if self.map.len() >= self.max {
                maillog::warning!("too many clients ({}): dropping one", self.max);
                server.client_done();
                continue;
            }
            let fd = s.as_fd().as_raw_fd();
            let interest = Interest::READABLE | Interest::WRITABLE;
            if registry
                .register(&mut SourceFd(&fd), Token(self.next), interest)
                .is_ok()
            {
                self.map.insert(self.next, (fd, make(s)));
                self.next = self.next.wrapping_add(1).max(FIRST_TOKEN);
            } else {
                server.client_done();
            }
        }
    }

    /// The client of an event's token.
    pub fn get_mut(&mut self, token: Token) -> Option<&mut C> {
        self.map.get_mut(&token.0).map(|(_, c)| c)
    }

    /// Hangs up on the client of `token`.
    pub fn hang_up(&mut self, token: Token, registry: &Registry, server: &mut MultiServer) {
        if let Some((fd, client)) = self.map.remove(&token.0) {
            let _ = registry.deregister(&mut SourceFd(&fd));
            drop(client);
            server.client_done();
        }
    }

    /// Hangs up on every client for which `keep` is false.
    pub fn retain(
        &mut self,
        registry: &Registry,
        server: &mut MultiServer,
        mut keep: impl FnMut(&C) -> bool,
    ) {
        self.map.retain(|_, (fd, c)| {
            let kept = keep(c);
            if !kept {
                let _ = registry.deregister(&mut SourceFd(fd));
                server.client_done();
            }
            kept
        });
    }

    /// No client is connected.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
