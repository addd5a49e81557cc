//! verify - Postfix-compatible address verification server
//!
//! # Synopsis
//!
//! master.cf: `verify unix - - n - 1 verify`
//!
//! # Description
//!
//! verify keeps a cache of addresses and whether mail to them can be
//! delivered, and finds out by sending probe messages. smtpd's
//! reject_unverified_recipient and reject_unverified_sender ask it
//! ([`proto::verify::Request::Query`]); qmgr reports each probe's result
//! ([`proto::verify::Request::Update`]).
//!
//! A query answers the cached status: deliverable, deferred,
//! undeliverable, or unknown ("Address verification in progress") for an
//! address with no usable entry, with the delivery agent's text. When the
//! entry needs a refresh, or there is none, verify also sends a probe: a
//! message from address_verify_sender (by default $double_bounce_sender,
//! completed with @$myorigin by cleanup; `<>` for the null sender; with
//! address_verify_sender_ttl a time-dependent variant) to the address,
//! through cleanup with the VERIFY_PROBE flag. qmgr routes it with the
//! address_verify_* transports, relay host and tables (trivial-rewrite's
//! ResolveVerify), and the delivery agents deliver nothing: local resolves aliases,
//! .forward and the user, virtual its mailbox map, smtp goes as far as
//! the RCPT TO reply; each reports what it would have done, qmgr tells
//! verify and removes the probe. Nothing is delivered and nothing
//! bounces. The cache rules (expiry, refresh, negative caching, lost
//! probes, cleanup) are in the `cache` module.
//!
//! The cache lives in address_verify_map (an indexed table, the file
//! *path*`.db` of `btree:`*path*, `hash:`*path* or `lmdb:`*path*,
//! readable with `postmap -s`), so it survives restarts; an empty
//! address_verify_map keeps it in memory only. verify is a single
//! process (maxproc 1) and is not restarted for max_use or max_idle.
//!
//! # Talks to
//!
//! Its clients (smtpd, qmgr) on private/verify; cleanup
//! (public/cleanup) for probes.
//!
//! # Security
//!
//! Runs as mail_owner. The cache's index file is opened (and created when
//! missing, with its directory, owned by mail_owner) before the optional
//! chroot jail and rewritten in place through that descriptor, so verify
//! works chrooted too; no directory outside the jail stays open (a crash
//! during a rewrite can leave the cache empty). Requests are untrusted: frames are bounded, a malformed
//! one ends that client's connection, addresses are length-capped and
//! must be printable, reasons are made printable before they are stored.
//!
//! # Diagnostics
//!
//! `warning: probe for ADDRESS: ...` when cleanup cannot take a probe;
//! `warning: bad recipient status ...`; `cache NAME full cleanup:
//! retained=N dropped=N entries` after each cleanup; `warning: NAME:
//! cannot update: ...` when the table cannot be written (the cache goes on
//! in memory and is written again at the next change).
//!
//! # Configuration parameters
//!
//! - address_verify_map (btree:$data_directory/verify_cache)
//! - address_verify_sender ($double_bounce_sender), address_verify_sender_ttl (0s)
//! - address_verify_positive_expire_time (31d), address_verify_positive_refresh_time (7d)
//! - address_verify_negative_expire_time (3d), address_verify_negative_refresh_time (3h)
//! - address_verify_negative_cache (yes)
//! - address_verify_cache_cleanup_interval (12h; 0: never)
//! - data_directory (/var/lib/postfix)
//!
//! # See also
//!
//! smtpd(8), qmgr(8), cleanup(8), postconf(5), Postfix's
//! ADDRESS_VERIFICATION_README.

mod cache;
mod probe;
mod server;

use std::fs::File;
use std::path::Path;

use cache::{Cache, Policy, Store};

/// Table entries as read.
type Rows = Vec<(String, String)>;

/// What pre-jail set up.
struct Setup {
    cache: Cache,
    run: server::Run,
    memory_only: bool,
}

fn main() {
    let (daemon, setup) = ipc::daemon::start(|config, _args| setup(config));
    // After the start (which unblocks every signal) and before any
    // thread: SIGTERM is read from a signalfd, so the cache is saved
    // before verify exits.
    let signals = match ipc::signals::Signals::new(&[nix::sys::signal::Signal::SIGTERM]) {
        Ok(s) => s,
        Err(e) => maillog::fatal!("signalfd: {e}"),
    };
    let mut server = daemon.multi_server();
    // The cache is the process's state: restart only when master says.
    server.without_limits();
    if setup.memory_only {
        maillog::verbose!("address_verify_map is empty: cache in memory only");
    }
    server::run(server, signals, setup.cache, setup.run)
}

fn setup(config: &config::Config) -> Result<Setup, String> {
    let secs = |name: &str| config.time(name).as_secs();
    let policy = Policy {
        pos_expire: secs("address_verify_positive_expire_time"),
        pos_refresh: secs("address_verify_positive_refresh_time"),
        neg_expire: secs("address_verify_negative_expire_time"),
        neg_refresh: secs("address_verify_negative_refresh_time"),
        neg_cache: config.bool("address_verify_negative_cache"),
    };
    let sender = config.str("address_verify_sender");
    probe::check_sender(&sender)?;
    let map = config.str("address_verify_map");
    let (store, rows) = open_store(&map, &config.str("mail_owner"))?;
    let memory_only = store.is_none();
    let cleanup_every = config.time("address_verify_cache_cleanup_interval");
    Ok(Setup {
        cache: Cache::new(policy, store, rows),
        run: server::Run {
            sender: probe::Sender {
                queue_dir: ".".into(),
                cleanup: proto::cleanup::SERVICE.to_string(),
                sender,
                sender_ttl: secs("address_verify_sender_ttl"),
                in_flight: Default::default(),
            },
            cleanup_interval: (!cleanup_every.is_zero()).then_some(cleanup_every),
        },
        memory_only,
    })
}

/// Opens address_verify_map's directory and reads the table; None for
/// an empty map (memory only).
fn open_store(map: &str, owner: &str) -> Result<(Option<Store>, Rows), String> {
    let map = map.trim();
    if map.is_empty() {
        return Ok((None, Vec::new()));
    }
    let (kind, path) = map
        .split_once(':')
        .ok_or_else(|| format!("address_verify_map: missing table type in \"{map}\""))?;
    if !matches!(kind, "btree" | "hash" | "lmdb") {
        return Err(format!(
            "address_verify_map: unsupported table type \"{kind}\" in \"{map}\": use btree:, hash: or lmdb: (an indexed file)"
        ));
    }
    let db = tables::hash::db_path(Path::new(path));
    let Some(dir_path) = db.parent() else {
        return Err(format!("address_verify_map: bad path in \"{map}\""));
    };
    if !dir_path.exists() {
        make_dir(dir_path, owner)?;
    }
    let rows = if db.exists() {
        tables::hash::read_all(&db).unwrap_or_else(|e| {
            maillog::warning!("{map}: {e}: starting with an empty cache");
            Vec::new()
        })
    } else {
        Vec::new()
    };
    let file = open_db(&db, owner)?;
    let store = Store {
        name: map.to_string(),
        file,
        path: db,
    };
    Ok((Some(store), rows))
}

/// Opens (or creates, owned by mail_owner when we are root) the cache's
/// index file for reading and writing.
fn open_db(db: &Path, owner: &str) -> Result<File, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(tables::hash::DB_MODE)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(db)
        .map_err(|e| format!("open {}: {e}", db.display()))?;
    if privsep::is_root()
        && let Ok(Some(a)) = privsep::lookup_user(owner)
    {
        std::os::unix::fs::fchown(&file, Some(a.uid), Some(a.gid))
            .map_err(|e| format!("chown {}: {e}", db.display()))?;
    }
    Ok(file)
}

/// Creates the cache's directory (data_directory), owned by mail_owner
/// when we are root, as `postfix start` would.
fn make_dir(dir: &Path, owner: &str) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("create {}: {e}", dir.display()))?;
    if privsep::is_root()
        && let Ok(Some(a)) = privsep::lookup_user(owner)
    {
        std::os::unix::fs::chown(dir, Some(a.uid), Some(a.gid))
            .map_err(|e| format!("chown {}: {e}", dir.display()))?;
    }
    Ok(())
}
