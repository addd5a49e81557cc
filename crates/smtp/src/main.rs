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
//! 8BITMIME downgrade: 8-bit content (BODY=8BITMIME, or 8-bit bytes found
//! by a first read of the queue file) for a server that does not offer
//! 8BITMIME is converted while it is streamed, as Postfix does: leaf parts
//! declared 8bit/binary, or undeclared with 8-bit bytes, are encoded as
//! quoted-printable with `Content-Transfer-Encoding: quoted-printable`;
//! multipart and message/rfc822 entities are walked and relabelled 7bit;
//! `MIME-Version: 1.0` is added when missing. disable_mime_output_conversion
//! = yes sends the content as it is.
//!
//! Connection cache: the session with a server stays open after a
//! delivery, and the next delivery to the same nexthop handled by the same
//! smtp process reuses it after an RSET (no new connection, greeting, EHLO,
//! STARTTLS or AUTH). There is no scache daemon: sessions are never shared
//! between smtp processes. smtp_connection_cache_on_demand (yes) keeps
//! every destination's sessions (qmgr sends no backlog signal), else only
//! those of smtp_connection_cache_destinations; an idle session is closed
//! after smtp_connection_cache_time_limit, a session older than
//! smtp_connection_reuse_time_limit or used
//! smtp_connection_reuse_count_limit times is not reused.
//!
//! DANE (smtp_tls_security_level = dane or dane-only): the TLSA records of
//! `_PORT._tcp.HOST` count when the resolver sets the AD bit (DNSSEC
//! validated, as Postfix with smtp_dns_support_level = dnssec trusts its
//! resolver; for an MX host the MX records must be validated too). DANE-EE
//! (usage 3) and DANE-TA (usage 2, with the name checked) with selectors 0
//! and 1 and matching types 0, 1 and 2 are checked against the server's
//! chain; no match defers (4.7.5). Without validated TLSA records `dane` is
//! `may` and `dane-only` defers; validated but unusable records mean
//! `encrypt`; a TLSA lookup failure defers.
//!
//! MTA-STS (RFC 8461), our own parameter smtp_tls_mta_sts (no): for a
//! recipient domain with a `_mta-sts` TXT record, the policy is fetched
//! from `https://mta-sts.DOMAIN/.well-known/mta-sts.txt` (no redirects, 64
//! KiB at most, certificate checked against smtp_tls_CAfile/CApath or the
//! webpki roots) and cached in the process until its max_age. `enforce`
//! uses only the listed MX hosts, with TLS verified for their names, and
//! defers (4.7.5) when none is listed; `testing` only logs. Our
//! smtp_tls_mta_sts_connect (empty; tests only) sends the fetch to another
//! host:port.
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
//! - smtp_tls_security_level (empty = none; may, encrypt, dane, dane-only,
//!   verify, secure), smtp_tls_CAfile, smtp_tls_CApath (empty).
//! - smtp_tls_policy_maps (empty): the level per destination, by the nexthop
//!   as written, then its domain, then `.parent` domains, with the
//!   attributes match= (names for verify/secure: `hostname`, `nexthop` or
//!   names, `:`-separated), protocols= and ciphers=; a table error means
//!   `encrypt`.
//! - smtp_tls_protocols (>=TLSv1), smtp_tls_ciphers (medium): the TLS
//!   versions and cipher grade offered (rustls offers TLSv1.2 and 1.3).
//! - smtp_rset_timeout (20s): the RSET before a cached session is reused.
//! - smtp_connection_cache_on_demand (yes), smtp_connection_cache_destinations
//!   (empty), smtp_connection_cache_time_limit (2s),
//!   smtp_connection_reuse_time_limit (300s), smtp_connection_reuse_count_limit (0).
//! - disable_mime_output_conversion (no).
//! - smtp_tls_mta_sts (no), smtp_tls_mta_sts_connect (empty): ours.
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
