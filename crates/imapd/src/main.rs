//! imapd - IMAP4rev1 and IMAP4rev2 server
//!
//! # Synopsis
//!
//! master.cf: `imap inet n n n - - imapd` and
//! `imaps inet n n n - - imapd -o imapd_tls_wrappermode=yes`. unpriv is
//! n (as for pop3d): the service process must be root to start mail
//! processes as the users; the login process drops to mail_owner and
//! chroots itself.
//!
//! # Description
//!
//! Serves the mailboxes that local and virtual deliver to over IMAP (RFC
//! 3501, RFC 9051) with the extensions listed in CAPABILITY. Each
//! connection gets a login process (chrooted, mail_owner: TLS, STARTTLS,
//! LOGIN and AUTHENTICATE through the auth service at imapd_sasl_path)
//! and, after a successful login only, a mail process as the mailbox
//! owner (see imapd::daemon::session). Folders are Maildir++ (`.Sent`),
//! UIDs Dovecot's dovecot-uidlist, keywords dovecot-keywords,
//! subscriptions Dovecot's `subscriptions`: a Dovecot-served Maildir keeps
//! its UIDs, flags, keywords and subscriptions. An mbox (a mailbox path
//! without a trailing `/`) is served as an INBOX without folders, its
//! flags kept in imapd's index only.
//!
//! # Security
//!
//! As pop3d: the login process holds no privilege and no mailbox; the
//! mail process runs as the user, never root; the service process (root)
//! reads only a user name from the login process.
//!
//! # Configuration parameters
//!
//! - imapd_banner ($mail_name ready.)
//! - imapd_tls_cert_file ($smtpd_tls_cert_file), imapd_tls_key_file
//!   ($smtpd_tls_key_file), imapd_tls_chain_files, imapd_tls_wrappermode (no)
//! - imapd_disable_plaintext_auth (yes)
//! - imapd_sasl_path (private/auth)
//! - imapd_idle_timeout (30m), imapd_login_timeout (60s)
//! - imapd_login_failure_delay (2s), imapd_login_command_limit (20)
//! - imapd_client_connection_count_limit (10)
//! - imapd_max_line_length (65536), imapd_append_size_limit (52428800)
//! - imapd_special_use_folders (Drafts Sent Trash Junk)
//! - imapd_quota_storage_limit (0)
//! - virtual_mailbox_base, virtual_mailbox_maps, virtual_uid_maps,
//!   virtual_gid_maps, virtual_mailbox_lock, home_mailbox,
//!   mail_spool_directory, recipient_delimiter, deliver_lock_attempts,
//!   deliver_lock_delay, stale_lock_time, mail_owner, queue_directory

use imapd::daemon::session;
use imapd::daemon::settings::{Role, Settings};

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
/// the log, then the role (main.cf's text and table are dropped first: a
/// session holds only its settings).
fn child(role: Role) -> i32 {
    let settings = {
        let Some((args, config)) = login::process::child_config() else {
            return 1;
        };
        match Settings::load(&config, &args.service_name, role) {
            Ok(s) => s,
            Err(e) => {
                maillog::warning!("{e}");
                return 1;
            }
        }
    };
    privsep::memory::trim_heap();
    match role {
        Role::Login => session::login_main(&settings),
        _ => session::mail_main(&settings),
    }
}
