//! virtual - Postfix-compatible virtual mailbox delivery agent
//!
//! # Synopsis
//!
//! master.cf: `virtual unix - n n - - virtual`
//!
//! # Description
//!
//! virtual delivers mail for virtual_mailbox_domains to mailboxes that
//! need no system account. For each recipient of a delivery request from
//! qmgr it:
//!
//! 1. bounces with 5.4.6 `mail forwarding loop for ADDR` when the message
//!    already has `Delivered-To: ADDR`;
//! 2. looks the recipient up in virtual_mailbox_maps: the full address
//!    (`user+ext@domain`), then `user@domain`, then the catch-all
//!    `@domain` (regexp:/pcre: tables are asked the full address only);
//!    not found is a 5.1.1 bounce `unknown user: "ADDR"`;
//! 3. looks up the uid (virtual_uid_maps) and gid (virtual_gid_maps) the
//!    same way (`static:5000` is common); a missing entry, or a uid below
//!    virtual_minimum_uid, defers with 4.3.5 `mail system configuration
//!    error` and a warning;
//! 4. delivers to virtual_mailbox_base/RESULT: a Maildir when RESULT ends
//!    in `/` (created when missing), else an mbox file (dotlock and fcntl
//!    lock as virtual_mailbox_lock says), prepending `Return-Path:`,
//!    `X-Original-To:` (enable_original_recipient) and `Delivered-To:`;
//!    a message that would pass virtual_mailbox_limit bounces (5.2.2).
//!
//! Every recipient is logged as
//! `QID: to=<ADDR>, relay=virtual, delay=..., delays=..., dsn=2.0.0, status=sent (delivered to maildir)`.
//!
//! # Talks to
//!
//! Serves `private/virtual` (proto::deliver requests from qmgr, several on
//! one connection while qmgr keeps it; max_use counts requests, a batch
//! as one); reads queue files read-only. A batch of requests
//! (virtual_delivery_batch_limit in qmgr) is delivered with one fsync of
//! each Maildir `new/` directory for the batch, after which the
//! recipients are marked done, their `to=` lines written and every
//! request answered.
//!
//! # Security
//!
//! Runs as root (unpriv=n, not chrooted) only to become the mailbox's uid
//! and gid for each delivery (effective ids, switched back afterwards);
//! a result path with `..` is refused. Not started as root (the
//! development instance) it delivers as itself and does not consult
//! virtual_uid_maps, virtual_gid_maps or virtual_minimum_uid. Queue
//! files, table results and message content are untrusted.
//!
//! # Diagnostics
//!
//! Problems with a recipient are logged on its `to=` line and reported to
//! qmgr (deferred or bounced); configuration problems also as warnings.
//!
//! # Configuration parameters
//!
//! - virtual_mailbox_base (empty): the directory the map results are relative to.
//! - virtual_mailbox_maps (empty): recipient to mailbox path.
//! - virtual_uid_maps, virtual_gid_maps (empty): recipient to uid, gid.
//! - virtual_minimum_uid (100): smallest uid accepted.
//! - virtual_mailbox_limit (51200000): largest mailbox or message file, 0 = none.
//! - virtual_mailbox_lock (fcntl, dotlock): mbox locking.
//! - deliver_lock_attempts (20), deliver_lock_delay (1s), stale_lock_time
//!   (500s): as for local.
//! - recipient_delimiter (empty): address extensions.
//! - enable_original_recipient (yes): write X-Original-To.
//!
//! # See also
//!
//! virtual(5), virtual(8), local(8), qmgr(8), the mailstore and delivery crates.

use std::path::{Component, Path, PathBuf};

use delivery::headers::{Prepend, prepend_lines};
use delivery::privs::{Ids, become_user};
use delivery::{Message, Outcome};
use mailstore::{maildir, mbox};
use proto::deliver::Recipient;
use tables::{AddressSearch, Maps};

/// relay= in log lines.
const RELAY: &str = "virtual";

/// What virtual reads from main.cf once at start.
struct Settings {
    base: PathBuf,
    mailbox_maps: Result<Maps, String>,
    uid_maps: Result<Maps, String>,
    gid_maps: Result<Maps, String>,
    minimum_uid: u32,
    limit: Option<u64>,
    dotlock: bool,
    fcntl: bool,
    delimiters: String,
    original_to: bool,
    /// deliver_lock_attempts, deliver_lock_delay, stale_lock_time.
    lock: mailstore::lock::LockOptions,
}

impl Settings {
    fn load(config: &config::Config) -> Settings {
        let open = |name: &str| {
            Maps::open(&config.str(name), tables::Flags::default())
                .map_err(|e| format!("{name}: {e}"))
        };
        let locks = config.str("virtual_mailbox_lock").to_lowercase();
        let limit = config.size("virtual_mailbox_limit");
        Settings {
            base: PathBuf::from(config.str("virtual_mailbox_base")),
            mailbox_maps: open("virtual_mailbox_maps"),
            uid_maps: open("virtual_uid_maps"),
            gid_maps: open("virtual_gid_maps"),
            minimum_uid: u32::try_from(config.int("virtual_minimum_uid")).unwrap_or(100),
            limit: (limit > 0).then_some(limit),
            dotlock: locks.contains("dotlock"),
            fcntl: locks.contains("fcntl"),
            delimiters: config.str("recipient_delimiter"),
            original_to: config.bool("enable_original_recipient"),
            lock: mailstore::lock::LockOptions {
                attempts: u32::try_from(config.int("deliver_lock_attempts")).unwrap_or(20),
                delay: config.time("deliver_lock_delay"),
                stale_after: config.time("stale_lock_time"),
            },
        }
    }

    fn tables_changed(&self) -> bool {
        [&self.mailbox_maps, &self.uid_maps, &self.gid_maps]
            .iter()
            .any(|m| m.as_ref().is_ok_and(Maps::changed))
    }
}

fn main() {
    let (daemon, ()) = ipc::daemon::start(|_config, _args| Ok(()));
    let settings = Settings::load(&daemon.context().config);
    for maps in [
        &settings.mailbox_maps,
        &settings.uid_maps,
        &settings.gid_maps,
    ] {
        match maps {
            Ok(m) => m.warnings().for_each(|w| maillog::warning!("{w}")),
            Err(e) => maillog::warning!("{e}"),
        }
    }
    daemon.request_server(move |stream, _ctx, turn| {
        let served = delivery::agent::serve_turn(
            stream,
            RELAY,
            turn,
            &mut || settings.tables_changed(),
            &mut |msg, rcpt| {
                let outcome = deliver(&settings, msg, rcpt);
                msg.log(&rcpt.address, &rcpt.original, RELAY, &outcome);
                outcome
            },
        );
        if served.is_some() && settings.tables_changed() {
            maillog::info!("table has changed -- restarting");
            std::process::exit(0);
        }
        served
    });
}

/// Delivers one recipient.
fn deliver(s: &Settings, msg: &Message<'_>, rcpt: &Recipient) -> Outcome {
    if msg.has_delivered_to(&rcpt.address) {
        return Outcome::bounce(
            "5.4.6",
            format!("mail forwarding loop for {}", rcpt.address),
        );
    }
    let search = AddressSearch {
        delimiters: &s.delimiters,
        local_domain: false,
        propagate_extension: false,
    };
    let lookup = |maps: &Result<Maps, String>, what: &str| -> Result<Option<String>, Outcome> {
        let maps = maps.as_ref().map_err(|e| {
            maillog::warning!("{e}");
            Outcome::defer("4.3.0", format!("{what} lookup error"))
        })?;
        match tables::find_address(maps, &rcpt.address, &search) {
            Ok(found) => Ok(found.map(|f| f.value.trim().to_string())),
            Err(e) => {
                maillog::warning!("{what} lookup error for {}: {e}", rcpt.address);
                Err(Outcome::defer("4.3.0", format!("{what} lookup error")))
            }
        }
    };
    let mailbox = match lookup(&s.mailbox_maps, "virtual_mailbox_maps") {
        Ok(Some(m)) => m,
        Ok(None) => {
            return Outcome::bounce("5.1.1", format!("unknown user: \"{}\"", rcpt.address));
        }
        Err(o) => return o,
    };
    let ids = match ids(s, rcpt, &lookup) {
        Ok(ids) => ids,
        Err(o) => return o,
    };
    let Some(path) = mailbox_path(&s.base, &mailbox) else {
        maillog::warning!(
            "recipient {}: bad mailbox path {} in virtual_mailbox_maps",
            maillog::printable(&rcpt.address, 200),
            maillog::printable(&mailbox, 200)
        );
        return Outcome::defer("4.3.5", "mail system configuration error");
    };
    // A verify-only request (a probe) stops here: the mailbox is known.
    if msg.verify_only() {
        let what = if mailbox.ends_with('/') {
            "maildir"
        } else {
            "mailbox"
        };
        return Outcome::sent(format!("delivers to {what}"));
    }
    let lines = prepend_lines(
        Prepend {
            return_path: true,
            original_to: s.original_to,
            delivered_to: true,
        },
        msg.sender(),
        &rcpt.original,
        &rcpt.address,
    );
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let _as_user = match become_user(ids) {
        Ok(g) => g,
        Err(e) => return Outcome::defer("4.3.0", format!("cannot set user and group ids: {e}")),
    };
    let tag = msg.delivery_tag(rcpt);
    let duplicate = if mailbox.ends_with('/') {
        delivery::dedupe::maildir_duplicate(msg, &path, &tag)
    } else {
        delivery::dedupe::mbox_duplicate(msg, &path, &lines)
    };
    if let Some(o) = duplicate {
        return o;
    }
    let mut content = msg.content();
    if mailbox.ends_with('/') {
        let options = maildir::Options {
            size_limit: s.limit,
            tag: Some(tag),
            ..maildir::Options::default()
        };
        match delivery::commit::maildir_deliver(&path, &options, &lines, &mut content) {
            Ok(_) => Outcome::stored("delivered to maildir"),
            Err(e) => {
                Outcome::store_error(&format!("cannot update maildir {}", path.display()), &e)
            }
        }
    } else {
        let options = mbox::Options {
            size_limit: s.limit,
            dotlock: if s.dotlock {
                mbox::DotlockPolicy::Required
            } else {
                mbox::DotlockPolicy::Off
            },
            fcntl: s.fcntl,
            lock: s.lock.clone(),
            ..mbox::Options::default()
        };
        match mbox::deliver(&path, &options, msg.sender(), &lines, &mut content) {
            Ok(_) => delivery::dedupe::mbox_delivered(&lines),
            Err(e) => {
                Outcome::store_error(&format!("cannot update mailbox {}", path.display()), &e)
            }
        }
    }
}

/// A lookup in one of the maps, with the map's name for messages.
type Lookup<'a> = &'a dyn Fn(&Result<Maps, String>, &str) -> Result<Option<String>, Outcome>;

/// The uid and gid for a recipient, checked against virtual_minimum_uid.
fn ids(s: &Settings, rcpt: &Recipient, lookup: Lookup<'_>) -> Result<Ids, Outcome> {
    if !delivery::privs::can_switch() {
        // The development instance delivers as itself; the maps may name
        // ids it could not take anyway.
        return Ok(Ids {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        });
    }
    let config_error = || Outcome::defer("4.3.5", "mail system configuration error");
    let number = |maps: &Result<Maps, String>, name: &str| -> Result<u32, Outcome> {
        match lookup(maps, name)? {
            Some(v) => v.parse::<u32>().map_err(|_| {
                maillog::warning!(
                    "recipient {}: bad {name} result: {}",
                    maillog::printable(&rcpt.address, 200),
                    maillog::printable(&v, 50)
                );
                config_error()
            }),
            None => {
                maillog::warning!(
                    "recipient {}: not found in {name}",
                    maillog::printable(&rcpt.address, 200)
                );
                Err(config_error())
            }
        }
    };
    let uid = number(&s.uid_maps, "virtual_uid_maps")?;
    let gid = number(&s.gid_maps, "virtual_gid_maps")?;
    if uid < s.minimum_uid {
        maillog::warning!(
            "recipient {}: bad uid {uid} in virtual_uid_maps (below virtual_minimum_uid {})",
            maillog::printable(&rcpt.address, 200),
            s.minimum_uid
        );
        return Err(config_error());
    }
    Ok(Ids { uid, gid })
}

/// base/result, refusing `..` anywhere in the result.
fn mailbox_path(base: &Path, result: &str) -> Option<PathBuf> {
    let rel = Path::new(result.trim_start_matches('/'));
    if result.is_empty() || rel.components().any(|c| matches!(c, Component::ParentDir)) {
        return None;
    }
    Some(base.join(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_the_base() {
        let b = Path::new("/var/vmail");
        assert_eq!(
            mailbox_path(b, "example.org/bob/"),
            Some(PathBuf::from("/var/vmail/example.org/bob/"))
        );
        assert_eq!(
            mailbox_path(b, "/abs/box"),
            Some(PathBuf::from("/var/vmail/abs/box"))
        );
        assert_eq!(mailbox_path(b, "../etc/passwd"), None);
        assert_eq!(mailbox_path(b, "a/../../b"), None);
        assert_eq!(mailbox_path(b, ""), None);
    }
}
