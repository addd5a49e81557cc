//! proxymap - look tables up for other processes, holding the database
//! connections
//!
//! # Synopsis
//!
//! master.cf:
//!
//! ```text
//! proxymap  unix  -       -       n       -       -       proxymap
//! proxywrite unix -       -       n       -       1       proxymap
//! ```
//!
//! # Description
//!
//! proxymap serves private/proxymap: clients (smtpd, cleanup, trivial-rewrite,
//! local, virtual, postmap) send the `tables::proxy` requests: open a table
//! by name, then look keys up, answered found (the value), not found, or a
//! temporary failure. It holds the one set of database connections of the
//! instance: pgsql:, mysql: and ldap: tables are always looked up here,
//! named with or without `proxy:`, so a busy smtpd does not open one
//! database connection per process, and the database client libraries are
//! linked into this program alone. A connection is kept between lookups and
//! re-established when it breaks (a database restart) without restarting
//! any daemon.
//!
//! Any other table type (hash:, regexp:, ...) is served when named as
//! `proxy:type:name`, for daemons that cannot open it themselves (chroot).
//!
//! As in Postfix, an explicit `proxy:` table must be listed, with its
//! `proxy:` prefix, in proxy_read_maps (proxy_write_maps for the
//! proxywrite service); otherwise it is refused with
//! `warning: request for unapproved table: "type:name"` and
//! `warning: to approve this table for read-only access, list
//! proxy:type:name in main.cf:proxy_read_maps`, and the client fails to
//! open it. A database table named directly in main.cf needs no approval.
//!
//! proxymap is a multi-client server: each client connection is served on
//! its own thread, and lookups in one table are serialised on that table's
//! connection. The proxywrite service answers the same reads; updates are
//! not supported yet.
//!
//! `proxymap -S [-c config_dir]` (not a master.cf service) serves the one
//! client on its standard input, a socket, and exits when it hangs up:
//! postmap runs it so when no proxymap answers on private/proxymap (the
//! instance is not running, or the user cannot reach private/), as the
//! invoking user, with proxy_read_maps from that main.cf.
//!
//! # Security
//!
//! proxymap runs as mail_owner and not chrooted (master.cf's default), so
//! that it reads the tables' configuration files (with database passwords)
//! that chrooted daemons cannot. It talks to local clients only and treats
//! their requests as untrusted: keys reach a database only through the
//! table type's quoting.
//!
//! # Diagnostics
//!
//! Warnings for refused tables, tables that do not open, and lookups that
//! fail (with the database's message); the client logs its own error and
//! defers.
//!
//! # Configuration parameters
//!
//! - proxy_read_maps: the `proxy:` tables proxymap may open.
//! - proxy_write_maps: the same for proxywrite.
//! - max_use, max_idle: via the ipc skeleton (counted while no client is
//!   connected).
//!
//! # See also
//!
//! pgsql_table(5), mysql_table(5), ldap_table(5), postmap(1).

mod cf;
mod expand;
mod ldap;
mod mysql;
mod pgsql;
mod pgtls;
mod registry;
mod sql;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, mpsc};

use mio::{Events, Poll, Token, Waker};
use tables::proxy::Request;

use registry::Registry;

/// The waker's token; listeners follow.
const WAKE: Token = Token(0);

fn main() {
    // mysql and ldap3 use the process-wide provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "-S") {
        standalone(argv.get(2..).unwrap_or_default());
        return;
    }
    let (daemon, registry) = ipc::daemon::start(|cfg, args| {
        let (param, list) = if args.service_name == "proxywrite" {
            ("proxy_write_maps", cfg.str("proxy_write_maps"))
        } else {
            ("proxy_read_maps", cfg.str("proxy_read_maps"))
        };
        Ok(Registry::new(&list, param))
    });
    let registry = Arc::new(registry);
    let mut server = daemon.multi_server();
    let mut poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => maillog::fatal!("epoll: {e}"),
    };
    if let Err(e) = server.register(poll.registry(), 1) {
        maillog::fatal!("epoll: {e}");
    }
    let waker = match Waker::new(poll.registry(), WAKE) {
        Ok(w) => Arc::new(w),
        Err(e) => maillog::fatal!("eventfd: {e}"),
    };
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let mut events = Events::with_capacity(64);
    loop {
        if server.should_exit() {
            std::process::exit(0);
        }
        if let Err(e) = poll.poll(&mut events, server.timeout()) {
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            maillog::fatal!("epoll: {e}");
        }
        for ev in &events {
            let token = ev.token();
            if token == WAKE {
                while done_rx.try_recv().is_ok() {
                    server.client_done();
                }
                continue;
            }
            if server.is_status(token) {
                continue;
            }
            let Some(i) = server.listener_index(token) else {
                continue;
            };
            while server.accepting() {
                match server.accept(i) {
                    Ok(Some(ipc::Stream::Unix(s))) => {
                        let registry = Arc::clone(&registry);
                        let waker = Arc::clone(&waker);
                        let tx = done_tx.clone();
                        let spawned =
                            std::thread::Builder::new()
                                .name("client".into())
                                .spawn(move || {
                                    serve(s, &registry);
                                    let _ = tx.send(());
                                    let _ = waker.wake();
                                });
                        if let Err(e) = spawned {
                            maillog::warning!("cannot start a client thread: {e}");
                            server.client_done();
                        }
                    }
                    Ok(Some(_)) => server.client_done(),
                    Ok(None) => break,
                    Err(e) => {
                        maillog::warning!("accept: {e}");
                        break;
                    }
                }
            }
        }
    }
}

/// `proxymap -S [-c config_dir]`: serves the client on standard input.
fn standalone(args: &[std::ffi::OsString]) {
    use std::os::fd::AsFd;
    maillog::init(maillog::Options {
        syslog_name: "postfix".to_string(),
        program: "proxymap".to_string(),
        maillog_file: None,
        stderr: true,
    });
    let dir = match args {
        [] => None,
        [c, d] if c == "-c" => Some(std::path::PathBuf::from(d)),
        _ => maillog::fatal!("usage: proxymap -S [-c config_dir]"),
    };
    let cfg = match config::Config::load_for_command(dir.as_deref()) {
        Ok(c) => c,
        Err(e) => maillog::fatal!("{e}"),
    };
    let registry = Registry::new(&cfg.str("proxy_read_maps"), "proxy_read_maps");
    let stream = match std::io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => UnixStream::from(fd),
        Err(e) => maillog::fatal!("standard input: {e}"),
    };
    serve(stream, &registry);
}

/// Answers one client's requests until it hangs up.
fn serve(mut s: UnixStream, registry: &Registry) {
    if s.set_nonblocking(false)
        .and_then(|()| s.set_read_timeout(Some(proto::IPC_TIMEOUT)))
        .and_then(|()| s.set_write_timeout(Some(proto::IPC_TIMEOUT)))
        .is_err()
    {
        return;
    }
    loop {
        let req = match proto::recv::<_, Request>(&mut s) {
            Ok(r) => r,
            Err(proto::Error::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return,
            Err(e) => {
                maillog::warning!("bad request: {e}");
                return;
            }
        };
        let reply = registry.handle(&req);
        if proto::send(&mut s, &reply)
            .and_then(|()| s.flush().map_err(proto::Error::Io))
            .is_err()
        {
            return;
        }
    }
}
