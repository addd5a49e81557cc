//! Whole-system tests: each starts a real instance (master and its
//! children) in its own temporary directory on free ports.
//!
//! The binaries come from cargo's target directory: run
//! `cargo build --workspace --bins && cargo test --workspace`.
//! Modules by area: [`local_mail`] (issue 3: sendmail to mailboxes), [`master`] (master and the `postfix` command),
//! [`privilege`] (root-only checks); issue 4, smtpd: [`smtp`] (Python's
//! smtplib: extensions, STARTTLS + AUTH, submission, smuggling, STARTTLS
//! injection, `sendmail -bs`), [`smtp_swaks`], [`smtp_relay`] (the relay
//! suite), [`smtp_interop`] (Debian's Postfix relaying to us, the
//! smtp-source load test); issue 8, outbound: [`outbound`] (our smtp client
//! to our smtpd by relayhost and by MX, defer and flush, per-recipient
//! bounces, smtp-sink), [`outbound_sched`] (qmgr's slow start and dead
//! destinations, transport_maps forms, relocated_maps, cidr tables),
//! [`outbound_tls`] (lmtp to a real Dovecot); issue 9, pop3d: [`pop3`]
//! (Python's poplib, a private Dovecot's UIDLs, getmail6 and fetchmail);
//! issue 14, Postfix compatibility: [`compat`], [`verify`] (address verification), [`expire`] (postsuper -e/-f);
//! issue 15, mail filters: [`filters`] (postgrey policy delegation, a dead
//! policy server, unbuilt restrictions, content_filter and the FILTER,
//! REDIRECT, BCC, PREPEND actions with tests/py/smtpfilter.py),
//! [`filters_milter`] (OpenDKIM, rspamd, a scripted milter, dead milters);
//! issue 10, imapd: [`imap`] (Python's imaplib over every command and
//! extension, two sessions and IDLE, the MIME corpus and a Maildir compared
//! with a private Dovecot's, mbsync and mutt);
//! helpers in [`util`], SMTP, POP3 and IMAP client checks in
//! tests/py/smtpcheck.py, pop3check.py and imapcheck.py.
//!
//! Needs python3, swaks, pflogsumm and Debian's postfix package
//! (smtp-source, the interoperation test), dovecot-imapd, isync, mutt and tmux (imap): `scripts/install-deps` installs
//! them; a test fails, naming it, when one is missing. Only tests that
//! need root skip (through `testkit::skip`) when not run as root. SYSTEM_TESTS_SMTP_LOAD lowers the
//! load test's 10,000 messages on a slow machine; SYSTEM_TESTS_POP3_MESSAGES the
//! 500 messages of the getmail/fetchmail test, SYSTEM_TESTS_IMAP_MESSAGES
//! the 1,000 of the mbsync test.

// A test binary: helpers panic on setup failure just as #[test] bodies do,
// and `pub` in its modules means "shared between test modules".
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod compat;
mod crash;
mod expire;
mod filters;
mod filters_milter;
mod imap;
mod local_mail;
mod master;
mod outbound;
mod outbound_sched;
mod outbound_tls;
mod pop3;
mod privilege;
mod smtp;
mod smtp_interop;
mod smtp_relay;
mod smtp_swaks;
mod util;
mod verify;
