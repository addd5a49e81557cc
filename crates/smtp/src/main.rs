//! smtp - Postfix-compatible SMTP client (also the relay service)
//!
//! # Synopsis
//!
//! master.cf:
//!
//! ```text
//! smtp      unix  -       -       y       -       -       smtp
//! relay     unix  -       -       y       -       -       smtp
//!   -o syslog_name=postfix/$service_name
//! ```
//!
//! # Description
//!
//! smtp delivers mail to other mail servers. qmgr sends it one delivery
//! request per message and nexthop (the `transport:nexthop` that
//! trivial-rewrite resolved: `domain`, `domain:port`, `[host]`,
//! `[host]:port`; relayhost's value for mail that is not ours). For a
//! domain it looks up the MX records (lowest preference first, equal
//! preferences in random order; the domain's A/AAAA records when it has no
//! MX; a null MX (RFC 7505) bounces at once with 5.1.0 `Domain X does not
//! accept mail (nullMX)`); brackets suppress the MX lookup. It then tries
//! the servers in order: EHLO (HELO when EHLO is refused), STARTTLS as
//! smtp_tls_security_level says, MAIL FROM with SIZE and BODY=8BITMIME
//! when the server offers them, RCPT TO for each recipient and DATA, with
//! PIPELINING when offered; with a server that offers DSN, RET= and
//! ENVID= on MAIL FROM and NOTIFY= and ORCPT= on RCPT TO as the mail was
//! submitted. Mail with a non-ASCII envelope address goes only to a server
//! that offers SMTPUTF8 (with the SMTPUTF8 parameter); when the last server
//! tried does not, it bounces with 5.6.7 `message requires SMTPUTF8, but no
//! server was found that supports SMTPUTF8. The last attempted server was X`.
//! The message is streamed from the queue file
//! with CRLF line ends and dot stuffing; it is never read whole into
//! memory. A message larger than the server's SIZE bounces with 5.3.4
//! `message size N exceeds size limit L of server X`.
//!
//! Each recipient gets its own outcome: accepted after the final dot
//! (status=sent with the server's reply), refused with 5xx (bounced, with
//! `host X[addr] said: 550 ... (in reply to RCPT TO command)`), or
//! deferred (4xx, lost connection, timeout, connect failure). A 4xx or a
//! connection failure tries the next server; a 5xx does not. Mail that
//! would come back to us (an MX that is one of our own addresses, or a
//! server that greets with our own $myhostname, on port 25) bounces with
//! `mail for X loops back to myself`. Delivered recipients are marked done
//! in the queue file before the answer goes back to qmgr (as local and
//! virtual do), so a crash after a delivery never repeats it.
//!
//! Log lines are Postfix's:
//! `QID: to=<r>, relay=host[addr]:port, delay=..., delays=a/b/c/d, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as X)`
//! and `Untrusted TLS connection established to host[addr]:port: TLSv1.3 with cipher ...`.
//!
//! An internal parameter of ours, not Postfix's: `smtp_dns_resolv_conf`
//! names another resolv.conf (tests point it at a DNS server of their
//! own); when empty, `$MAIL_RESOLV_CONF` or /etc/resolv.conf is read.
//!
//! # Talks to
//!
//! Serves `private/smtp` (and `private/relay`) for qmgr (proto::deliver
//! requests); reads queue files; asks the nameservers of resolv.conf
//! (through the dns crate); connects to remote SMTP servers.
//!
//! # Security
//!
//! Runs as mail_owner, chrooted to the queue directory (master.cf chroot
//! y); resolv.conf, the CA certificates and the interface addresses are
//! read before the chroot. Everything from the network (DNS answers,
//! server replies) and from queue files is untrusted: replies are read
//! with bounded line length and count, text is made printable and cut
//! before it is logged or put into a DSN.
//!
//! # Diagnostics
//!
//! One `to=` line per recipient; warnings for a server that answers with
//! our own hostname, for bad parameters and unreadable CA files.
//!
//! # Configuration parameters
//!
//! - relayhost (empty): applied by trivial-rewrite; smtp sees the nexthop.
//! - smtp_helo_name ($myhostname), myhostname.
//! - smtp_connect_timeout (30s), smtp_helo_timeout (300s), smtp_mail_timeout (300s),
//!   smtp_rcpt_timeout (300s), smtp_data_init_timeout (120s), smtp_data_xfer_timeout (180s),
//!   smtp_data_done_timeout (600s), smtp_starttls_timeout (300s), smtp_quit_timeout (300s).
//! - smtp_skip_5xx_greeting (yes), smtp_mx_address_limit (5), smtp_mx_session_limit (2).
//! - smtp_line_length_limit (998): longer lines are broken with CRLF and a space.
//! - smtp_fallback_relay ($fallback_relay), smtp_bind_address, smtp_bind_address6 (empty).
//! - inet_protocols (all), inet_interfaces (all), proxy_interfaces (empty): loop detection.
//! - smtp_tls_security_level (empty = none; may, encrypt, verify, secure),
//!   smtp_tls_CAfile, smtp_tls_CApath (empty).
//! - smtp_tls_policy_maps (empty): the level per destination, by the nexthop
//!   as written, then its domain, then `.parent` domains; attributes after
//!   the level are not used yet; a table error means `encrypt`.
//! - smtp_sasl_auth_enable (no), smtp_sasl_password_maps (empty; `user:password`
//!   by nexthop as written, then by server name), smtp_sasl_security_options
//!   (noplaintext, noanonymous: PLAIN and LOGIN only over TLS unless
//!   noplaintext is dropped). A failed AUTH defers (4.7.0).
//!
//! # See also
//!
//! smtp(8), qmgr(8), trivial-rewrite(8), the dns and delivery crates.

fn main() {
    smtp::run(false)
}
