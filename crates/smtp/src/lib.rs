//! smtp - the SMTP and LMTP client that the `smtp` and `lmtp` programs
//! run (their main.rs and lmtp.rs hold the manual pages).
//!
//! - `nexthop`: the nexthop forms and the servers they name (MX, A/AAAA,
//!   null MX, loop detection), through the dns crate.
//! - `session`: one SMTP/LMTP session with one server (EHLO/HELO/LHLO,
//!   STARTTLS, loop detection); `transaction`: MAIL/RCPT/DATA with
//!   PIPELINING and per-recipient replies; `sasl`: AUTH PLAIN/LOGIN;
//!   `linelimit`: smtp_line_length_limit; `mime`: the 8BITMIME downgrade
//!   to quoted-printable.
//! - `deliver`: one delivery request over the servers in order;
//!   `cache`: sessions kept open for the next delivery to a nexthop.
//! - `conn`, `reply`, `tls`: the connection, server replies, the TLS
//!   client configurations; `dane`: TLSA records and their check;
//!   `mtasts`: MTA-STS policies.
//! - `settings`: main.cf parameters and what is read before the chroot.

mod cache;
mod conn;
mod dane;
mod deliver;
mod linelimit;
mod mime;
mod mtasts;
mod nexthop;
mod probe;
mod reply;
mod sasl;
mod session;
mod settings;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_lmtp;
#[cfg(test)]
mod tests_sts;
#[cfg(test)]
mod tests_tls;
mod tls;
mod transaction;

use settings::{PreJail, Settings};

/// Runs the delivery agent under ipc's single-server skeleton: SMTP, or
/// LMTP when `lmtp` (lmtp_* parameters where set, default port 24, no MX
/// lookups, `unix:` nexthops). Never returns.
pub fn run(lmtp: bool) -> ! {
    let (daemon, pre) = ipc::daemon::start(|config, _args| Ok(PreJail::load(config)));
    let (settings, warnings) = Settings::load(&daemon.context().config, pre, lmtp);
    warnings.iter().for_each(|w| maillog::warning!("{w}"));
    daemon.single_server(move |stream, ctx| {
        let relay = match ctx.args.service_name.as_str() {
            "" if lmtp => "lmtp".to_string(),
            "" => "smtp".to_string(),
            name => name.to_string(),
        };
        delivery::agent::serve_all(stream, &relay, &mut |msg, rcpts, report| {
            deliver::deliver(&settings, msg, rcpts, report);
        });
    });
}
