//! smtpd - Postfix SMTP server
//!
//! # Synopsis
//!
//! master.cf: `smtp inet n - y - - smtpd` (and the submission and
//! submissions services with `-o` overrides);
//! `smtpd -S` (stand-alone, for `sendmail -bs`).
//!
//! # Description
//!
//! An event-driven SMTP server: one process serves many clients at once
//! on a mio event loop, and master forks more processes up to maxproc;
//! maxproc also caps the service's concurrent sessions across those
//! processes, as one Postfix smtpd process per session would (the module
//! `limit`). It
//! speaks RFC 5321 (HELO, EHLO, MAIL, RCPT, DATA, BDAT, RSET, NOOP, QUIT,
//! VRFY, ETRN) with the ESMTP extensions PIPELINING, SIZE, 8BITMIME,
//! SMTPUTF8, ENHANCEDSTATUSCODES, DSN, CHUNKING, STARTTLS and AUTH.
//!
//! At the first accepted recipient smtpd opens a conversation with cleanup
//! (public/cleanup) and logs `QUEUEID: client=host[addr]`; message text
//! streams to cleanup as it arrives, and reading from the client pauses
//! while cleanup is behind, so a connection's memory stays bounded
//! whatever the message size. `250 2.0.0 Ok: queued as QUEUEID` is sent
//! only after cleanup has fsynced the queue file. A client that goes away
//! mid-message leaves nothing queued.
//!
//! The client's name is its address's PTR name when that name's A/AAAA
//! records lead back to the address, else `unknown` (loopback clients are
//! `localhost` without a lookup).
//!
//! Blocking work (DNS, the smtpd_*_restrictions with their table lookups and
//! trivial-rewrite queries, anvil, SASL) runs on a few worker threads; the
//! session pauses meanwhile, so replies keep command order under
//! PIPELINING. Idle connections cost little memory: buffers are freed when
//! empty and TLS state exists only once TLS starts.
//!
//! `-S`: one session on stdin/stdout for the local user who ran
//! `sendmail -bs`; messages go to postdrop (as sendmail's do), every
//! recipient is accepted, there is no TLS and no AUTH.
//!
//! # Talks to
//!
//! - SMTP clients on the listeners master hands down (fd 4 on, status pipe
//!   on fd 3).
//! - public/cleanup (proto::cleanup), one connection per message.
//! - private/rewrite (proto::rewrite) through the restrictions.
//! - private/anvil (proto::anvil) when a connection limit is set.
//! - The Dovecot-protocol auth server at smtpd_sasl_path for AUTH.
//! - public/qmgr (a flush wake-up) for ETRN.
//! - `-S`: command_directory/postdrop.
//!
//! # Security
//!
//! Moderately security-sensitive: it talks to any client on the network.
//! It runs as mail_owner and can run chrooted to the queue directory
//! (certificates and tables are read before the jail). Client input is
//! bounded (line_length_limit, message_size_limit), counted
//! (smtpd_soft_error_limit, smtpd_hard_error_limit) and never read as
//! commands where it is content: the end of DATA is only CRLF.CRLF (SMTP
//! smuggling), a refused BDAT chunk is skipped, and plaintext pipelined
//! after STARTTLS is discarded (CVE-2011-0411). Client text is made
//! printable and cut before it is logged.
//!
//! # Diagnostics
//!
//! Postfix's log lines: `connect from host[addr]`, `QUEUEID:
//! client=host[addr]` (with `sasl_method`, `sasl_username` after AUTH),
//! `NOQUEUE: reject: RCPT from host[addr]: 554 5.7.1 <x>: Relay access
//! denied; from=<a> to=<x> proto=ESMTP helo=<h>`, `warning: host[addr]:
//! SASL PLAIN authentication failed: ...`, `lost connection after DATA
//! from host[addr]`, `timeout after RCPT from host[addr]`, `disconnect
//! from host[addr] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5`. A bad
//! certificate or key, or an invalid setting, is fatal at startup with a
//! message naming the file or parameter.
//!
//! On SIGTERM (`postfix stop`) or when master goes away every client gets
//! `421 4.3.2 host Service shutting down, closing transmission channel` and
//! the process exits.
//!
//! # Configuration parameters
//!
//! - myhostname, smtpd_banner ($myhostname ESMTP $mail_name),
//!   smtpd_peername_lookup (yes).
//! - line_length_limit (2048), message_size_limit (10240000),
//!   smtpd_recipient_limit (1000), smtpd_forbid_bare_newline (normalize),
//!   smtpd_forbid_bare_newline_reject_code (550), disable_vrfy_command
//!   (no), smtpd_helo_required (no), smtpd_forbid_unauth_pipelining (yes),
//!   smtpd_forbidden_commands (CONNECT GET POST and header-shaped lines:
//!   `221 2.7.0 Error: I can break rules, too. Goodbye.`).
//! - smtpd_timeout (300s), smtpd_starttls_timeout (300s),
//!   smtpd_error_sleep_time (1s), smtpd_soft_error_limit (10),
//!   smtpd_hard_error_limit (20).
//! - smtpd_client_connection_count_limit (50),
//!   smtpd_client_connection_rate_limit (0),
//!   smtpd_client_event_limit_exceptions ($mynetworks),
//!   anvil_service_name (anvil).
//! - smtpd_tls_security_level (empty: none; may, encrypt),
//!   smtpd_tls_cert_file, smtpd_tls_key_file ($smtpd_tls_cert_file),
//!   smtpd_tls_chain_files, smtpd_tls_auth_only (no),
//!   smtpd_tls_wrappermode (no).
//! - smtpd_sasl_auth_enable (no), smtpd_sasl_type (dovecot),
//!   smtpd_sasl_path (private/auth).
//! - smtpd_client_restrictions, smtpd_helo_restrictions,
//!   smtpd_sender_restrictions, smtpd_relay_restrictions,
//!   smtpd_recipient_restrictions, smtpd_data_restrictions,
//!   smtpd_delay_reject (yes), mynetworks, mynetworks_style.
//! - check_policy_service: smtpd_policy_service_timeout (100s),
//!   smtpd_policy_service_max_idle (300s), smtpd_policy_service_max_ttl
//!   (1000s), smtpd_policy_service_request_limit (0),
//!   smtpd_policy_service_try_limit (2), smtpd_policy_service_retry_delay
//!   (1s), smtpd_policy_service_default_action (451 4.3.5 Server
//!   configuration problem), smtpd_policy_service_policy_context (empty).
//! - smtpd_milters (empty: asked at each RCPT TO here, and run on the
//!   whole message by cleanup with this service's milter_* settings),
//!   content_filter (empty), receive_override_options (empty).
//! - max_use (100), max_idle (100s), syslog_name, maillog_file.
//!
//! # See also
//!
//! cleanup(8), anvil(8), auth(8), master(8), sendmail(1), postconf(5);
//! RFC 5321, RFC 3207, RFC 3030, RFC 3461, RFC 4954, RFC 8314.

use nix::sys::signal::Signal;
use smtpd::restrict::Restrictions;
use smtpd::settings::Settings;

fn main() {
    // std::env::args would panic on an argument that is not UTF-8.
    let mut standalone = false;
    for a in std::env::args_os().skip(1) {
        match a.to_str() {
            Some(a) => standalone |= a == "-S",
            None => {
                eprintln!(
                    "smtpd: fatal: usage: smtpd [-S] [master options]: argument is not UTF-8"
                );
                std::process::exit(1);
            }
        }
    }
    if standalone {
        smtpd::standalone::run();
    }
    let (daemon, (settings, restrictions, limit)) = ipc::daemon::start(|cfg, args| {
        let service = if args.service_name.is_empty() {
            "smtp".to_string()
        } else {
            args.service_name.clone()
        };
        let settings = Settings::from_config(cfg, &service)?;
        let restrictions = Restrictions::from_config_or_broken(cfg)?;
        // Before the jail: the slot files are created in pid/.
        let limit = if args.service_name.is_empty() {
            None
        } else {
            smtpd::limit::SessionLimit::open(
                std::path::Path::new("."),
                &args.service_type,
                &args.service_name,
                smtpd::limit::maxproc_from_env(),
            )
            .map_err(|e| format!("open the session slots in pid/: {e}"))?
        };
        Ok((settings, restrictions, limit))
    });
    raise_descriptor_limit();
    // Before any thread starts, so SIGTERM reaches the signalfd only.
    let signals = match ipc::signals::Signals::new(&[Signal::SIGTERM]) {
        Ok(s) => s,
        Err(e) => maillog::fatal!("signalfd: {e}"),
    };
    smtpd::server::run(
        daemon.multi_server(),
        settings,
        restrictions,
        signals,
        limit,
    );
}

/// One process holds many clients, each a descriptor (two while a message
/// goes to cleanup): take the hard limit, not the usual soft 1024.
fn raise_descriptor_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        maillog::warning!("cannot raise the open file limit from {soft} to {hard}: {e}");
    }
}
