//! auth - password checks for SASL, over Dovecot's authentication protocol
//!
//! # Synopsis
//!
//! master.cf: `auth unix - n n - 1 auth`
//!
//! # Description
//!
//! auth checks user names and passwords for the SMTP server's AUTH command
//! (and later for pop3d and imapd). It listens on private/auth and speaks
//! the server side of Dovecot's authentication protocol
//! ([`auth::dovecot`]), so that both our smtpd and Postfix's smtpd with
//! `smtpd_sasl_type = dovecot` and `smtpd_sasl_path = private/auth` can
//! use it; our smtpd can equally use a real Dovecot instead.
//!
//! On each connection auth sends `VERSION 1 2`, `MECH PLAIN plaintext`,
//! `MECH LOGIN plaintext`, `SPID`, `CUID`, `COOKIE` and `DONE`; the client
//! sends `VERSION` and `CPID`, then any number of `AUTH` requests, which
//! may be interleaved by id, and `CONT` lines answering challenges. Each
//! request ends with `OK id user=NAME` or `FAIL id reason=TEXT [temp]`.
//!
//! Passwords are checked against `auth_passdb`, a list of databases tried
//! in order: `passwd-file:PATH` (Dovecot's format,
//! `user:{SCHEME}hash:uid:gid:gecos:home:shell:extra`, schemes SHA512-CRYPT,
//! SHA256-CRYPT, BLF-CRYPT, ARGON2ID and PLAIN; a virtual user logs in with
//! the name as listed, usually the full address) and `pam` or `shadow` (the
//! system's users, read from /etc/shadow; PAM itself is not linked). The
//! first database that accepts the password wins. A passwd-file is read
//! again when its inode, size or times change, so edits need no reload.
//! A database that cannot be consulted (unreadable file, unknown scheme)
//! gives a temporary failure, `FAIL ... temp`.
//!
//! An authorization identity other than the login (PLAIN's first field) is
//! refused: nobody may act as another user.
//!
//! APOP (RFC 1939, for pop3d) is offered as Dovecot offers it, `MECH APOP
//! private` (so SMTP clients never see it), when auth_passdb has a
//! passwd-file: the initial response is `timestamp NUL user NUL digest`
//! (16 bytes), checked as MD5(timestamp password) against entries with a
//! cleartext password (`{PLAIN}`, `{CLEARTEXT}`); hashed entries and
//! system users cannot use it.
//!
//! # Login hand-off (Dovecot's auth-master REQUEST)
//!
//! Each connection gets its own random COOKIE. An AUTH without `nologin`
//! (pop3d's login process) that ends in OK is kept for a minute; the
//! privileged process that starts the mail process then asks, on a
//! connection of its own, `REQUEST id login_pid auth_id cookie` and gets
//! `USER id name` once, or `NOTFOUND id` (never authenticated, expired,
//! asked already, or the pid, taken from SO_PEERCRED of the login's
//! connection, or the cookie does not match). Only peers running as root
//! or as auth's own uid may send REQUEST (`FAIL` otherwise). So a
//! compromised login process cannot have a mail process started for a
//! user it did not authenticate.
//!
//! # Failure delays and limits
//!
//! A failed check is answered after `auth_failure_delay`, doubled for each
//! further consecutive failure from the same client address (the `rip=` of
//! the request) up to 15 seconds. The delay holds up only that answer: a
//! timer thread sends it, and other requests and clients go on. After
//! `auth_failure_limit` failures from one address within a minute, requests
//! from it are refused without a check (`FAIL ... temp`) until the oldest
//! failure is a minute old. A success resets the delay, not the count.
//! Requests without `rip=` share one count.
//!
//! # Talks to
//!
//! Serves private/auth (smtpd, Postfix's smtpd, later pop3d and imapd).
//! Reads the files named in `auth_passdb`, and /etc/shadow and /etc/passwd
//! for `pam` and `shadow`.
//!
//! # Security
//!
//! Runs as root and unchrooted (unpriv n, chroot n in master.cf) because it
//! reads the password databases; when started by a user (the development
//! instance) it runs as that user, and drops `pam`/`shadow` with a warning
//! when it cannot read /etc/shadow. Everything a client sends is untrusted:
//! lines are limited to 16384 bytes, requests in progress to 64 per
//! connection, connections to `auth_client_limit`, each field of a SASL
//! response to 1024 bytes; nothing a client sends can make it panic.
//! Passwords are never logged; user names are logged made printable and
//! cut to 100 characters. Sensitivity: high (it sees passwords and reads
//! password hashes). Protect private/auth: anyone who can connect can try
//! passwords at the rate the failure delays allow.
//!
//! # Diagnostics
//!
//! `SERVICE: MECH authentication succeeded for user=<NAME> rip=ADDR
//! passdb=SOURCE` for each success (info). `warning: SERVICE: MECH
//! authentication failed for user=<NAME> rip=ADDR` for a wrong password or
//! unknown user (the two are not told apart, to the client nor in the log),
//! `warning: ... authentication refused for user=<NAME> rip=ADDR: too many
//! failures, try again in Ns` when the limit applies, `warning: ...
//! authentication failed for user=<NAME> rip=ADDR: WHY` when the password
//! database cannot be consulted, WHY being `password database FILE: ERROR`
//! or, for an entry that cannot be checked, `unsupported password scheme
//! $1$ (MD5-CRYPT) for user NAME (FILE, line N)` (or `unknown password
//! scheme {X}`, `malformed ... password hash`); the client gets a
//! temporary failure. `warning: client pid PID: protocol error: ...; disconnecting`
//! when a client breaks the protocol. A malformed `auth_passdb` is fatal at
//! startup.
//!
//! # Configuration parameters
//!
//! - auth_passdb (passwd-file:${config_directory}/passwd, pam): the
//!   password databases, tried in order.
//! - auth_failure_delay (1s): the delay after a first failure.
//! - auth_failure_limit (10): failures per client address per minute.
//! - auth_client_limit (256): connections served at once.
//! - max_use (100), max_idle (100s): via the ipc skeleton; a connection is
//!   one use. The process never exits while it has connections, and keeps
//!   accepting after max_use (its clients hold their connections for long);
//!   it then exits at the first moment it has none and no finished login
//!   waits for its master REQUEST (for at most a minute): the login
//!   process closes its connection before the service process asks, and
//!   a new auth process would not know the login.
//!
//! # See also
//!
//! smtpd(8), master(8), postconf(5); Dovecot's "Dovecot Authentication
//! Protocol"; Postfix's SASL_README ("Enabling SASL authentication in the
//! Postfix SMTP server", Dovecot SASL).

mod conn;
mod delay;
mod logins;
mod server;
mod settings;

use std::sync::Arc;

fn main() {
    let (daemon, settings) = ipc::daemon::start(|cfg, _args| settings::Settings::from_config(cfg));
    let delayer = match delay::Delayer::start() {
        Ok(d) => d,
        Err(e) => maillog::fatal!("cannot start the delay timer thread: {e}"),
    };
    let shared = Arc::new(conn::Shared::new(settings, delayer));
    server::run(daemon.multi_server(), shared)
}
