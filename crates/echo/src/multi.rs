//! The `multi` mode: one process serves many clients at once through the
//! ipc multi-server hook and its own mio loop (the shape smtpd and the
//! login processes use).

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;

use ipc::Stream;
use ipc::multi::MultiServer;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

/// Client tokens start here; lower ones belong to the skeleton.
const FIRST_CLIENT: usize = 1024;

/// Serves until the skeleton says to exit.
pub(crate) fn run(mut server: MultiServer) -> ! {
    let Ok(mut poll) = Poll::new() else {
        maillog::fatal!("epoll: cannot create")
    };
    if let Err(e) = server.register(poll.registry(), 0) {
        maillog::fatal!("register listeners: {e}");
    }
    let mut clients: HashMap<usize, Stream> = HashMap::new();
    let mut next = FIRST_CLIENT;
    let mut events = Events::with_capacity(64);
    loop {
        if server.should_exit() {
            std::process::exit(0);
        }
        let timeout = server.timeout().or(Some(Duration::from_secs(60)));
        if poll.poll(&mut events, timeout).is_err() {
            continue;
        }
        for ev in events.iter() {
            let tok = ev.token();
            if server.is_status(tok) {
                continue;
            }
            if let Some(i) = server.listener_index(tok) {
                while server.accepting() {
                    let Ok(Some(s)) = server.accept(i) else { break };
                    let fd = s.as_raw_fd();
                    if poll
                        .registry()
                        .register(&mut SourceFd(&fd), Token(next), Interest::READABLE)
                        .is_ok()
                    {
                        clients.insert(next, s);
                        next = next.wrapping_add(1).max(FIRST_CLIENT);
                    }
                }
            } else if let Some(s) = clients.get_mut(&tok.0)
                && !serve(s)
            {
                let fd = s.as_raw_fd();
                let _ = poll.registry().deregister(&mut SourceFd(&fd));
                clients.remove(&tok.0);
                server.client_done();
            }
        }
    }
}

/// Echoes what is readable; false when the client is gone.
fn serve(s: &mut Stream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                let data = buf.get(..n).unwrap_or(&[]);
                let reply = if data == b"pid\n" {
                    format!("pid {}\n", std::process::id()).into_bytes()
                } else {
                    data.to_vec()
                };
                // Tiny replies to a test client: a full socket buffer means
                // the client is not reading, so it is dropped.
                if s.write_all(&reply).is_err() {
                    return false;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}
