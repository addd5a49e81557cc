//! anvil - Postfix-compatible session count and request rate control
//!
//! # Synopsis
//!
//! master.cf: `anvil unix - - y - 1 anvil`
//!
//! # Description
//!
//! anvil keeps, for each (service, client) pair, the number of
//! simultaneous connections and the numbers of connections, messages
//! (MAIL FROM) and AUTH commands in the current anvil_rate_time_unit, so
//! that smtpd can enforce smtpd_client_connection_count_limit,
//! smtpd_client_connection_rate_limit, smtpd_client_message_rate_limit
//! and smtpd_client_auth_rate_limit across all its processes. It
//! answers [`proto::anvil`] requests on `private/anvil`, as many per
//! connection as the client sends:
//!
//! - `Connect { service, client }`: count one more connection and one more
//!   event in the rate window; answer the current count and rate.
//! - `Disconnect { service, client }`: one connection fewer.
//! - `Message { service, client }` / `Auth { service, client }`: count one
//!   more message or AUTH in the window; answer the connection count and
//!   that rate.
//! - `Lookup { service, client }`: answer without changing anything.
//!
//! The rate window of a pair starts with its first connection and lasts
//! anvil_rate_time_unit; after that the rate starts again from zero. A
//! pair with no connection left is forgotten when its window ends, so
//! memory stays proportional to the clients seen in the last time unit,
//! and never exceeds a fixed number of pairs (the oldest idle pairs go
//! first; a client that finds the table full of busy pairs is answered as
//! if new).
//!
//! anvil is a single process (maxproc 1) and keeps everything in memory:
//! it ignores max_use and max_idle, as Postfix's anvil does, because a
//! restart would forget the counts.
//!
//! # Talks to
//!
//! Its clients (smtpd) on private/anvil; nothing else.
//!
//! # Security
//!
//! Runs as mail_owner, chrooted when master.cf says so (it needs nothing
//! from the file system). Requests are untrusted: frames are bounded, a
//! malformed one ends that client's connection, and service and client
//! names are cut to a fixed length before they become keys.
//!
//! # Diagnostics
//!
//! Every anvil_status_update_time, and when it exits, the maxima seen
//! since the last report, as Postfix logs them:
//!
//! ```text
//! statistics: max connection rate 3/60s for (smtp:192.0.2.1) at Nov 23 14:55:00
//! statistics: max connection count 2 for (smtp:192.0.2.1) at Nov 23 14:55:00
//! statistics: max cache size 4 at Nov 23 14:55:00
//! ```
//!
//! `warning: malformed request: ...` (client dropped); `warning: anvil
//! table full (N entries)` once per report interval.
//!
//! # Configuration parameters
//!
//! - anvil_rate_time_unit (60s): the time unit of connection rates.
//! - anvil_status_update_time (600s): how often the maxima are logged.
//!
//! # See also
//!
//! smtpd(8), master(8), postconf(5).

mod server;
mod table;

/// What main.cf says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// anvil_rate_time_unit.
    pub(crate) rate_unit: std::time::Duration,
    /// anvil_status_update_time.
    pub(crate) status_time: std::time::Duration,
}

fn main() {
    let (daemon, settings) = ipc::daemon::start(|config, _args| {
        Ok(Settings {
            rate_unit: config.time("anvil_rate_time_unit"),
            status_time: config.time("anvil_status_update_time"),
        })
    });
    let mut server = daemon.multi_server();
    server.without_limits();
    server::run(server, settings)
}
