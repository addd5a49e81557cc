//! pop3d - POP3 and POP3S server
//!
//! # Synopsis
//!
//! master.cf: `pop3 inet n n n - - pop3d` and
//! `pop3s inet n n n - - pop3d -o pop3d_tls_wrappermode=yes`. unpriv is
//! n (as for local and virtual): the service process must be root to
//! start mail processes as the users; the login process drops to
//! mail_owner and chroots itself.
//!
//! # Description
//!
//! Serves the mailboxes that local and virtual deliver to, over POP3 (RFC
//! 1939: USER, PASS, APOP, STAT, LIST, RETR, DELE, NOOP, RSET, QUIT, TOP, UIDL),
//! with CAPA (RFC 2449: TOP, UIDL, RESP-CODES, PIPELINING, AUTH-RESP-CODE,
//! STLS, USER, SASL, IMPLEMENTATION, and EXPIRE and LOGIN-DELAY when set),
//! STLS (RFC 2595), AUTH PLAIN and LOGIN (RFC 5034) and POP3S (TLS from
//! the first byte with pop3d_tls_wrappermode = yes). APOP when
//! pop3d_apop = yes and the auth service offers the (private) APOP
//! mechanism: the greeting ends in `<pid.time@myhostname>` and the auth
//! service checks the digest against a cleartext passwd-file entry.
//!
//! Each connection gets a login process (chrooted to the queue directory,
//! running as mail_owner: TLS and everything before authentication) and,
//! after a successful login only, a mail process running as the mailbox
//! owner, which gets the client's own socket for a cleartext session (the
//! login process exits) and a relay through the login process under TLS;
//! see the session module. Users authenticate through the auth
//! service (pop3d_sasl_path); the mailbox is found as local and virtual
//! deliver it: virtual_mailbox_maps under virtual_mailbox_base (a Maildir
//! when the result ends in `/`) for names in that table, else the system
//! account's home_mailbox or mail_spool_directory/user. Maildir UIDLs are
//! Dovecot's (`%08Xu%08Xv` from dovecot-uidlist), so users moving from
//! Dovecot do not download their mail again.
//!
//! Messages marked with DELE are removed only at QUIT (the UPDATE state);
//! a dropped connection or a killed process removes nothing. One session
//! per mailbox: a second gets `-ERR [IN-USE]`. RETR streams the message
//! through a 64 KiB buffer.
//!
//! # Talks to
//!
//! - POP3 clients on the listeners master hands down.
//! - The auth service at pop3d_sasl_path (Dovecot's auth protocol).
//! - private/anvil when pop3d_client_connection_count_limit is set.
//!
//! # Security
//!
//! The login process talks to the network before authentication and holds
//! no privilege: chroot, mail_owner, no mailbox access. The mail process
//! runs as the user (never root) and talks only to the login process. The
//! service process (root) reads only a ticket from the login process and
//! asks the auth service whether it authenticated that user for that
//! process (login::handoff::verify, Dovecot's auth-master REQUEST); a
//! forged ticket starts no mail process.
//! Passwords in clear are refused outside TLS except from loopback unless
//! pop3d_disable_plaintext_auth = no. Commands before login are capped.
//!
//! # Diagnostics
//!
//! `connect from [addr]`, `login: user=<name>, method=PLAIN, rip=...,
//! lip=..., TLS`, `authentication failed: method=..., rip=...`,
//! `name: Disconnected: Logged out retr=n/bytes, del=n/total`, `disconnect
//! from [addr]`.
//!
//! # Configuration parameters
//!
//! - pop3d_banner ($myhostname POP3 server ready)
//! - pop3d_tls_cert_file ($smtpd_tls_cert_file), pop3d_tls_key_file
//!   ($smtpd_tls_key_file), pop3d_tls_chain_files, pop3d_tls_wrappermode (no)
//! - pop3d_disable_plaintext_auth (yes)
//! - pop3d_sasl_path (private/auth)
//! - pop3d_idle_timeout (10m), pop3d_login_timeout (60s)
//! - pop3d_login_failure_delay (2s), pop3d_login_command_limit (20)
//! - pop3d_client_connection_count_limit (10)
//! - pop3d_expire, pop3d_login_delay (empty: not advertised)
//! - pop3d_apop (no)
//! - virtual_mailbox_base, virtual_mailbox_maps, virtual_uid_maps,
//!   virtual_gid_maps, virtual_mailbox_lock, home_mailbox,
//!   mail_spool_directory, recipient_delimiter, deliver_lock_attempts,
//!   deliver_lock_delay, stale_lock_time, mail_owner, queue_directory,
//!   mail_name, myhostname

use pop3d::session;
use pop3d::settings::{Role, Settings};

fn main() {
    let role = std::env::var(session::ROLE).unwrap_or_default();
    match role.as_str() {
        "login" => std::process::exit(child(Role::Login)),
        "mail" => std::process::exit(child(Role::Mail)),
        _ => {}
    }
    let (daemon, settings) = ipc::daemon::start(|config, args| {
        Settings::load(config, &args.service_name, Role::Service)
    });
    let mut sessions = session::Sessions::default();
    daemon.single_server(move |stream, _ctx| {
        let ipc::Stream::Tcp(tcp) = stream else {
            return;
        };
        let Ok(tcp) = tcp.try_clone() else {
            return;
        };
        session::serve(tcp, &settings, &mut sessions);
    });
}

/// A login or mail process: the service's command line and main.cf again,
/// the log, then the role.
fn child(role: Role) -> i32 {
    let Some((args, config)) = login::process::child_config() else {
        return 1;
    };
    let settings = match Settings::load(&config, &args.service_name, role) {
        Ok(s) => s,
        Err(e) => {
            maillog::warning!("{e}");
            return 1;
        }
    };
    // main.cf is not needed once read: its memory goes back to the
    // allocator for the session's own (a smaller idle process).
    drop(config);
    drop(args);
    match role {
        Role::Login => session::login_main(&settings),
        _ => session::mail_main(&settings),
    }
}
