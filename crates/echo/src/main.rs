//! echo - line-echo test service
//!
//! This program exists for the tests: it is the smallest real service on
//! the [`ipc`] skeleton, so the whole-system tests can check what master
//! does with children (spawning, maxproc, max_use, restarts, throttling,
//! privilege) without any mail logic in the way.
//!
//! # Synopsis
//!
//! master.cf: `127.0.0.1:10099 inet n - n - 4 echo [fail-startup] [trigger] [multi]`
//!
//! # Description
//!
//! A single-connection server: for each client it reads lines (at most
//! [`MAX_LINE`] bytes each) and writes each back unchanged, until the client
//! closes. The line `pid` is answered with `pid N` (the serving process), so
//! a test can find out which child serves it. On a fifo (type `fifo`), or
//! with the argument `trigger`, it runs as a trigger server and logs
//! `trigger N bytes` for each wake-up. With `multi` one process serves many
//! clients at once (the ipc multi-server hook with a mio loop).
//!
//! # Talks to
//!
//! Its clients, over the listeners master passes.
//!
//! # Security
//!
//! Runs as master.cf says (unpriv, chroot); reads untrusted lines of bounded
//! length and only echoes them.
//!
//! # Diagnostics
//!
//! With the argument `fail-startup` it logs `fatal: startup failure requested`
//! and exits 1 before serving, which master treats as a bad startup.
//!
//! # Configuration parameters
//!
//! - max_use (100), max_idle (100s): via the ipc skeleton.
//!
//! # See also
//!
//! master(8), ipc.

mod multi;

use std::io::{BufRead, BufReader, Read, Write};

/// Longest line echoed; longer input is cut into pieces of this size.
pub const MAX_LINE: u64 = 4096;

fn main() {
    let (daemon, ()) = ipc::daemon::start(|_config, args| {
        if args.extra.iter().any(|a| a == "fail-startup") {
            return Err("startup failure requested".to_string());
        }
        Ok(())
    });
    let args = &daemon.context().args;
    if args.service_type == "fifo" || args.extra.iter().any(|a| a == "trigger") {
        daemon.trigger_server(None, |req, _ctx| {
            maillog::info!("trigger {} bytes", req.len());
        });
    }
    if args.extra.iter().any(|a| a == "multi") {
        multi::run(daemon.multi_server());
    }
    daemon.single_server(|stream, _ctx| serve(stream));
}

/// Echoes lines until the client closes.
fn serve(stream: &mut ipc::Stream) {
    let Ok(mut out) = clone_writer(stream) else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.by_ref().take(MAX_LINE).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let reply = if line.trim_ascii_end() == b"pid" {
            format!("pid {}\n", std::process::id()).into_bytes()
        } else {
            line.clone()
        };
        if out.write_all(&reply).and_then(|()| out.flush()).is_err() {
            return;
        }
    }
}

/// A second handle for writing while the first is inside the BufReader.
fn clone_writer(stream: &ipc::Stream) -> std::io::Result<Box<dyn Write>> {
    Ok(match stream {
        ipc::Stream::Tcp(s) => Box::new(s.try_clone()?),
        ipc::Stream::Unix(s) => Box::new(s.try_clone()?),
    })
}
