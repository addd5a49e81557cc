//! smtpd - Postfix SMTP server (NOT YET SERVING)
//!
//! # Synopsis
//!
//! master.cf (planned, not yet added): `smtp inet n - y - - smtpd`
//!
//! # Description
//!
//! **This program does not serve mail yet.** Only its protocol core exists
//! (the `smtpd` library: line reader, command parser, DATA/BDAT decoder and
//! session state machine, all without sockets). Run now, it logs
//! `fatal: smtpd: not yet serving` and exits with status 1, and it is not
//! listed in etc-postfix/master.cf.
//!
//! The planned daemon: an event-driven (mio) SMTP server, one process
//! serving many clients, master forking more up to maxproc. It speaks RFC
//! 5321 (HELO, EHLO, MAIL, RCPT, DATA, BDAT, RSET, NOOP, QUIT, VRFY, ETRN)
//! with the ESMTP extensions PIPELINING, SIZE, 8BITMIME, SMTPUTF8,
//! ENHANCEDSTATUSCODES, DSN, CHUNKING, STARTTLS and AUTH. Each message
//! streams to cleanup as it arrives, and 250 is sent only after cleanup has
//! fsynced the queue file.
//!
//! # Talks to
//!
//! Planned: SMTP clients on the network; public/cleanup (proto::cleanup);
//! the auth service for SASL; trivial-rewrite and tables for restrictions.
//!
//! # Security
//!
//! Planned: moderately security-sensitive, it talks to any client on the
//! network and can run chrooted at fixed low privilege. Client input is
//! bounded (line_length_limit, message_size_limit), counted (error limits)
//! and never read as commands where it is content: the end of DATA is only
//! CRLF.CRLF (SMTP smuggling), a refused BDAT chunk is skipped, and
//! plaintext pipelined after STARTTLS is discarded (CVE-2011-0411).
//!
//! # Diagnostics
//!
//! Now: `fatal: smtpd: not yet serving`, exit status 1.
//!
//! # Configuration parameters
//!
//! Read by the protocol core (smtpd::session::Config): myhostname,
//! smtpd_banner, line_length_limit (2048), smtpd_forbid_bare_newline
//! (normalize), smtpd_forbid_bare_newline_reject_code (550),
//! message_size_limit (10240000), disable_vrfy_command (no),
//! smtpd_helo_required (no), smtpd_tls_security_level, smtpd_tls_auth_only
//! (no), smtpd_sasl_auth_enable (no), smtpd_forbid_unauth_pipelining (yes),
//! smtpd_soft_error_limit (10), smtpd_hard_error_limit (20),
//! smtpd_recipient_limit (1000).
//!
//! # See also
//!
//! cleanup(8), master(8), postconf(5); RFC 5321, RFC 3207, RFC 3030,
//! RFC 3461, RFC 4954.

fn main() {
    maillog::fatal!("smtpd: not yet serving");
}
