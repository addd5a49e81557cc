//! local - Postfix-compatible local mail delivery
//!
//! # Synopsis
//!
//! master.cf: `local unix - n n - - local`
//!
//! # Description
//!
//! local delivers mail for the local domains (mydestination) to
//! mailboxes, files and commands, expanding aliases and .forward files.
//! For each recipient of a delivery request from qmgr:
//!
//! 1. A message that already has `Delivered-To: RECIPIENT` bounces with
//!    5.4.6 `mail forwarding loop for RECIPIENT` (checked again at every
//!    level of expansion, which is limited to 100 levels).
//! 2. The local part (lowercased, domain stripped) is looked up in
//!    alias_maps, with the recipient_delimiter extension (`user+ext`), then
//!    without (`user`). An aliases(5) value is a list of targets:
//!    `user` (delivered here, recursively), `user@remote` (forwarded: a new
//!    message through cleanup with the original sender and a
//!    `Delivered-To:` line), `:include:/path` (more targets from a file, not
//!    world-writable; listed in an alias or in root's .forward and owned
//!    by a user, it is expanded with that user's rights, otherwise with
//!    the rights of what listed it), `|command` and `/file` (or `/dir/`
//!    for a Maildir), run or written as default_privs (as the table's
//!    owner when a user other than root owns the alias table), `\user`
//!    (the mailbox, no more expansion).
//!    allow_mail_to_commands and allow_mail_to_files say where commands and
//!    files may appear (`alias, forward` by default: not in :include:).
//! 3. Then the user's .forward (forward_path), when it is owned by the
//!    user or root and not world-writable, with the same targets run as
//!    the user.
//! 4. Then the mailbox: mailbox_command if set (run by /bin/sh as the
//!    user, with LOCAL, DOMAIN, EXTENSION, RECIPIENT, SENDER, HOME, USER,
//!    SHELL, LOGNAME, ORIGINAL_RECIPIENT, CLIENT_ADDRESS, CLIENT_HOSTNAME,
//!    CLIENT_HELO, CLIENT_PROTOCOL, SASL_USERNAME (when known) and the
//!    export_environment names in the environment and a From_ line on
//!    stdin); else home_mailbox relative to the home directory (a
//!    Maildir when it ends in `/`, else mbox); else the mbox
//!    mail_spool_directory/USER (dotlock and fcntl lock, created as root
//!    and owned by the user, who must own an existing one).
//! 5. A user that is not in passwd (and, for a non-root instance, not in
//!    local_recipient_maps either) goes to luser_relay when set, else
//!    bounces with 5.1.1 `unknown user: "user"`.
//!
//! Every delivery prepends `Return-Path: <sender>`, `X-Original-To:`
//! (enable_original_recipient) and `Delivered-To: recipient` (for
//! commands, files and forwards as prepend_delivered_header says).
//! A command's exit status is mapped as Postfix does (75 defers, other
//! sysexits codes per their meaning, other failures bounce with the
//! command's output in the text); command_time_limit kills it.
//! Each final delivery is logged as
//! `QID: to=<bob@example.org>, orig_to=<alias@example.org>, relay=local, delay=..., delays=..., dsn=2.0.0, status=sent (delivered to mailbox)`
//! (also `delivered to maildir`, `delivered to command: CMD`,
//! `delivered to file: PATH`, `forwarded as NEWQID`). The recipient's
//! status to qmgr is the worst result of its expansion.
//!
//! # Talks to
//!
//! Serves `private/local` (proto::deliver requests from qmgr, several on
//! one connection while qmgr keeps it; max_use counts requests, a batch
//! as one); reads queue files read-only; sends forwarded mail to
//! `public/cleanup`. A batch of requests (local_delivery_batch_limit in
//! qmgr) is delivered with one fsync of each Maildir `new/` directory
//! for the batch, after which the recipients are marked done, their
//! `to=` lines written and every request answered.
//!
//! # Security
//!
//! Runs as root (unpriv=n, not chrooted): each mailbox and file is
//! written with the recipient's (or default_privs's) effective user and
//! group ids, switched back to root afterwards; commands run with real
//! ids set in the child. As in Postfix, no command or file delivery ever
//! runs as root: a uid 0 (root's .forward, mailbox_command for root, a
//! root-owned alias or :include:) becomes default_privs' uid, a gid 0 its
//! gid; root's own mailbox is still written as root. A failed switch to
//! the user defers the recipient (4.3.0 `cannot set user and group ids`)
//! rather than going on as root. A non-root instance (development)
//! delivers everything as itself. Aliases, .forward and :include: files, queue
//! files and message content are untrusted: files are checked for owner
//! and mode, reading is bounded, nothing panics.
//!
//! # Diagnostics
//!
//! One `to=` line per delivery; warnings for unusable .forward files,
//! table errors (the recipient is deferred with 4.3.0) and bad ids.
//! local exits after a request when a table it reads has changed, so
//! master starts it again with the new table.
//!
//! # Configuration parameters
//!
//! - alias_maps (hash:/etc/aliases), local_recipient_maps
//!   (proxy:unix:passwd.byname $alias_maps), luser_relay (empty).
//! - recipient_delimiter (empty), myorigin ($myhostname), mydestination.
//! - forward_path ($home/.forward${recipient_delimiter}${extension}, $home/.forward).
//! - mailbox_command (empty), home_mailbox (empty), mail_spool_directory (/var/mail).
//! - mailbox_size_limit (51200000), mailbox_delivery_lock (fcntl, dotlock).
//! - deliver_lock_attempts (20), deliver_lock_delay (1s), stale_lock_time
//!   (500s): mailbox locking; a dotlock older than stale_lock_time (left
//!   by a killed agent) is removed.
//! - default_privs (nobody), allow_mail_to_commands, allow_mail_to_files (alias, forward).
//! - command_time_limit (1000s), local_command_shell (empty: /bin/sh),
//!   command_execution_directory (empty), export_environment (TZ MAIL_CONFIG LANG).
//! - prepend_delivered_header (command, file, forward), enable_original_recipient (yes).
//!
//! # See also
//!
//! local(8), aliases(5), virtual(8), pipe(8), the delivery and mailstore crates.

mod aliases;
mod engine;
mod forward;
mod probe;
mod settings;
mod targets;

use settings::{Account, Settings};

fn main() {
    let (daemon, default_privs) = ipc::daemon::start(|config, _args| {
        let name = config.str("default_privs");
        if !delivery::privs::can_switch() {
            return Ok(Account::myself(&name));
        }
        match Account::lookup(&name) {
            Some(a) if a.ids.uid != 0 => Ok(a),
            Some(_) => Err(format!("default_privs: {name}: privileged user ID")),
            None => Err(format!("default_privs: unknown user name: {name}")),
        }
    });
    let settings = Settings::load(&daemon.context().config, default_privs);
    match &settings.alias_maps {
        Ok(m) => m.warnings().iter().for_each(|w| maillog::warning!("{w}")),
        Err(e) => maillog::warning!("{e}"),
    }
    match &settings.recipient_maps {
        Ok(m) => m.warnings().for_each(|w| maillog::warning!("{w}")),
        Err(e) => maillog::warning!("{e}"),
    }
    daemon.request_server(move |stream, _ctx, turn| {
        let served = delivery::agent::serve_turn(
            stream,
            engine::RELAY,
            turn,
            &mut || settings.tables_changed(),
            &mut |msg, rcpt| engine::deliver(&settings, msg, rcpt),
        );
        if served.is_some() && settings.tables_changed() {
            maillog::info!("table has changed -- restarting");
            std::process::exit(0);
        }
        served
    });
}
