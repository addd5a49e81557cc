//! The service skeleton every daemon hands control to, and the protocol
//! between `master` and its children.
//!
//! Postfix keeps this in src/master/: single_server.c, multi_server.c,
//! trigger_server.c and master_proto.c. Here it is one library:
//!
//! - [`args`]: the command line master gives a child
//!   (`<command> -n <service> -t <type> [-c] [-u] [-z] [-s <nsock>] [-o name=value]... [args]`).
//! - [`status`]: the fixed-size busy/available record a child writes to
//!   master over the status pipe.
//! - [`inherit`]: the file-descriptor numbering ([`status::STATUS_FD`] = 3,
//!   listeners from [`inherit::LISTEN_FD`] = 4) and both sides of passing
//!   them: [`inherit::pass_fds`] for master, [`inherit::take`] for the child.
//! - [`daemon`]: [`daemon::start`] parses the arguments, loads main.cf with the
//!   `-o` overrides, opens the log, runs the pre-jail hook and drops
//!   privilege; then one of the servers runs:
//!   [`Daemon::single_server`] (one client at a time),
//!   [`Daemon::multi_server`] (a mio loop the daemon owns),
//!   [`Daemon::trigger_server`] (fifo or unix wake-ups, optional timer).
//! - [`pidfile`]: master's locked pid file, also read by `postfix`.
//! - [`signals`]: a signalfd for master's event loop.
//! - [`work_queue`]: the queue between a daemon's event loop and its
//!   worker threads.
//! - [`Error`]: the one error type (command line, pid file).
//!
//! # Synopsis
//!
//! ```no_run
//! use std::io::{BufRead, BufReader, Write};
//! let (daemon, ()) = ipc::daemon::start(|_config, _args| Ok(()));
//! daemon.single_server(|stream, _ctx| {
//!     let mut line = String::new();
//!     let _ = BufReader::new(&mut *stream).read_line(&mut line);
//!     let _ = stream.write_all(line.as_bytes());
//! });
//! ```
//!
//! # Diagnostics
//!
//! Setup failures in a child are fatal (`fatal: ...` in the log, exit 1):
//! master then counts a bad startup and throttles the service.

pub mod args;
pub mod clients;
pub mod daemon;
mod error;
pub mod inherit;
pub mod listener;
pub mod multi;
pub mod pidfile;
pub mod signals;
pub mod single;
pub mod status;
pub mod trigger;
pub mod work_queue;

pub use daemon::{Context, Daemon};
pub use error::Error;
pub use listener::{Listener, Stream};
