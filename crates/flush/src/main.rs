//! flush - deliver one destination's deferred mail now
//!
//! # Synopsis
//!
//! master.cf: `flush unix n - y - 0 flush`
//!
//! # Description
//!
//! flush serves public/flush: smtpd asks it, for ETRN, to deliver the
//! mail queued for one site ([`proto::flush::Request::SendSite`]). Only
//! sites in fast_flush_domains are served: others are refused
//! ([`proto::flush::Reply::Deny`], which smtpd answers with Postfix's
//! `459 <site>: service unavailable`).
//!
//! Postfix's flush keeps a per-site log of deferred queue ids; this one
//! walks deferred/ instead, reading each file with the queue library's
//! validating reader, and makes due now (sets its time to now) every
//! message with a recipient at that site that is not yet done, then wakes
//! qmgr with `D` (scan deferred/ for due files). Deferred mail for other
//! sites keeps its retry time. A request for a site flushed less than a
//! minute ago is answered at once without another walk (coalesced; the
//! time stamp is flush/<site>), so an ETRN flood costs one walk a minute.
//!
//! # Security
//!
//! Not security-sensitive: it talks to local clients only, reads queue
//! files as untrusted input and changes nothing but their time stamps. It
//! runs as mail_owner and can run chrooted in the queue directory. The
//! site name is checked (host name or address literal) before it names
//! the stamp file.
//!
//! # Diagnostics
//!
//! `info: SITE: flush requested: N deferred messages`; warnings for
//! unreadable directories and table lookup errors (answered with
//! [`proto::flush::Reply::Fail`]).
//!
//! # Configuration parameters
//!
//! - fast_flush_domains ($relay_domains): the eligible sites (a domain
//!   list; subdomains match when parent_domain_matches_subdomains names
//!   fast_flush_domains, the default).
//! - queue_service_name (qmgr): the queue manager to wake.
//! - max_use, max_idle: via the ipc skeleton.
//!
//! # See also
//!
//! smtpd(8) (ETRN), qmgr(8).

mod site;

use std::io::Write;
use std::path::Path;

use proto::flush::Request;

/// What the pre-jail hook reads.
struct Settings {
    domains: tables::domains::DomainList,
    qmgr: String,
}

fn main() {
    let (daemon, settings) = ipc::daemon::start(|cfg, _args| {
        let parent = tables::split_list(&cfg.str("parent_domain_matches_subdomains"))
            .contains(&"fast_flush_domains");
        let domains = tables::domains::DomainList::parse(
            "fast_flush_domains",
            &cfg.str("fast_flush_domains"),
            tables::domains::Style::Domain { parent },
        )
        .map_err(|e| format!("fast_flush_domains: {e}"))?;
        Ok(Settings {
            domains,
            qmgr: format!("public/{}", cfg.str("queue_service_name")),
        })
    });
    daemon.single_server(|stream, _ctx| {
        if let ipc::Stream::Unix(s) = stream {
            serve(s, &settings);
        }
    });
}

/// Answers one client.
fn serve(s: &mut std::os::unix::net::UnixStream, settings: &Settings) {
    // A client that connects and says nothing must not hold this process.
    if s.set_read_timeout(Some(proto::flush::CLIENT_TIMEOUT))
        .and_then(|()| s.set_write_timeout(Some(proto::flush::CLIENT_TIMEOUT)))
        .is_err()
    {
        return;
    }
    let reply = match proto::recv::<_, Request>(s) {
        Ok(Request::SendSite { site }) => {
            site::send_site(Path::new("."), &settings.domains, &site, &settings.qmgr).0
        }
        Ok(Request::SendFile { queue_id }) => {
            site::send_file(Path::new("."), &queue_id, &settings.qmgr)
        }
        Err(e) => {
            maillog::warning!("bad request: {e}");
            return;
        }
    };
    if proto::send(s, &reply)
        .and_then(|()| s.flush().map_err(proto::Error::Io))
        .is_err()
    {
        maillog::warning!("client went away");
    }
}
