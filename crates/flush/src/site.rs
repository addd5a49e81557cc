//! One `send_site` request: check the site, coalesce repeats, make the
//! site's deferred mail due now, wake qmgr.
//!
//! A deferred file is due when its modification time has passed (qmgr
//! sets it to the next retry time when it defers a message); flush sets
//! it to now for every deferred message with a recipient not yet done at
//! the site, then sends qmgr `D` (scan deferred/ for due files). Other
//! deferred mail keeps its retry time: only that site's mail moves.

use std::path::Path;
use std::time::{Duration, SystemTime};

use proto::flush::Reply;
use queue::{Queue, QueueFile, RecipientState};

use tables::domains::DomainList as Domains;

/// A second request for the same site within this time does nothing
/// more (and is answered as the first): ETRN floods cost one queue walk.
pub(crate) const COALESCE: Duration = Duration::from_secs(60);

/// Where the per-site time stamps are, under the queue directory.
const STAMP_DIR: &str = "flush";

/// Serves `send_site` for `site` under `queue_dir`: the reply, and how
/// many messages were made due (None: refused or coalesced).
pub(crate) fn send_site(
    queue_dir: &Path,
    domains: &Domains,
    site: &str,
    qmgr: &str,
) -> (Reply, Option<usize>) {
    if !site_ok(site) {
        return (Reply::Bad, None);
    }
    match domains.matches(site) {
        Ok(true) => {}
        Ok(false) => return (Reply::Deny, None),
        Err(e) => {
            maillog::warning!("fast_flush_domains lookup error for {site}: {e}");
            return (Reply::Fail, None);
        }
    }
    let site = site.to_ascii_lowercase();
    if recently_flushed(queue_dir, &site) {
        maillog::info!(
            "{site}: flush requested again within {}s: coalesced",
            COALESCE.as_secs()
        );
        return (Reply::Ok, None);
    }
    let n = make_due(queue_dir, &site);
    if n > 0
        && let Err(e) = proto::trigger_with(queue_dir, qmgr, b'D')
    {
        maillog::warning!("{site}: cannot wake {qmgr}: {e}");
    }
    maillog::info!("{site}: flush requested: {n} deferred messages");
    (Reply::Ok, Some(n))
}

/// A destination name as ETRN takes it: a host name or an address literal.
pub(crate) fn site_ok(site: &str) -> bool {
    if let Some(inner) = site.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let bare = match inner.get(..5) {
            Some(p) if p.eq_ignore_ascii_case("ipv6:") => inner.get(5..).unwrap_or(""),
            _ => inner,
        };
        return bare.parse::<std::net::IpAddr>().is_ok();
    }
    !site.is_empty()
        && site.len() <= 255
        && site.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Checks and renews the site's time stamp (flush/<site>): true when the
/// last flush was less than [`COALESCE`] ago.
fn recently_flushed(queue_dir: &Path, site: &str) -> bool {
    let name: String = site
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = queue_dir.join(STAMP_DIR).join(name);
    let now = SystemTime::now();
    if let Ok(t) = std::fs::metadata(&path).and_then(|m| m.modified())
        && now.duration_since(t).is_ok_and(|d| d < COALESCE)
    {
        return true;
    }
    let stamp = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(now));
    if let Err(e) = stamp {
        maillog::warning!("{}: {e}", path.display());
    }
    false
}

/// `postqueue -i`: makes the deferred message `queue_id` due now and wakes
/// qmgr; a message that is not deferred (delivered meanwhile, or never
/// there) is not an error, as with Postfix.
pub(crate) fn send_file(queue_dir: &Path, queue_id: &str, qmgr: &str) -> Reply {
    let Ok(id) = queue::QueueId::parse(queue_id) else {
        return Reply::Bad;
    };
    let path = queue::queue_path(queue_dir, Queue::Deferred, &id);
    match std::fs::File::open(&path).and_then(|f| f.set_modified(SystemTime::now())) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Reply::Ok,
        Err(e) => {
            maillog::warning!("{id}: cannot update the time stamp: {e}");
            return Reply::Fail;
        }
    }
    if let Err(e) = proto::trigger_with(queue_dir, qmgr, b'D') {
        maillog::warning!("cannot wake {qmgr}: {e}");
    }
    Reply::Ok
}

/// Sets the time of every deferred message with a pending recipient at
/// `site` to now; returns how many.
fn make_due(queue_dir: &Path, site: &str) -> usize {
    let ids = match queue::list(queue_dir, Queue::Deferred) {
        Ok(ids) => ids,
        Err(e) => {
            maillog::warning!("scan deferred: {e}");
            return 0;
        }
    };
    let now = SystemTime::now();
    let mut n = 0;
    for id in ids {
        // Untrusted: the reader validates, a bad or vanished file is skipped.
        let Ok(qf) = QueueFile::open_read_only(queue_dir, Queue::Deferred, &id) else {
            continue;
        };
        let wanted = qf.recipients().any(|(_, r, state)| {
            state == RecipientState::Pending
                && r.address
                    .rsplit_once('@')
                    .is_some_and(|(_, d)| d.eq_ignore_ascii_case(site))
        });
        if !wanted {
            continue;
        }
        match std::fs::File::open(qf.path()).and_then(|f| f.set_modified(now)) {
            Ok(()) => n += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => maillog::warning!("{id}: cannot update the time stamp: {e}"),
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn enter(q: &Path, rcpts: &[&str]) -> queue::QueueId {
        let mut w = queue::enter(q).unwrap();
        w.write_all(b"Subject: x\n\nbody\n").unwrap();
        let mut env = queue::Envelope::new("a@origin.example", SystemTime::now());
        for r in rcpts {
            env.add_recipient(r);
        }
        let id = *w.finish(&env).unwrap().id();
        queue::rename(q, &id, Queue::Incoming, Queue::Deferred).unwrap();
        later(q, &id);
        id
    }

    /// Deferred for an hour, as qmgr leaves it.
    fn later(q: &Path, id: &queue::QueueId) {
        let path = queue::queue_path(q, Queue::Deferred, id);
        let t = SystemTime::now() + Duration::from_secs(3600);
        std::fs::File::open(path).unwrap().set_modified(t).unwrap();
    }

    fn due(q: &Path, id: &queue::QueueId) -> bool {
        let path = queue::queue_path(q, Queue::Deferred, id);
        std::fs::metadata(path).unwrap().modified().unwrap() <= SystemTime::now()
    }

    #[test]
    fn only_the_sites_deferred_mail_becomes_due() {
        let q = tempfile::tempdir().unwrap();
        queue::layout::create_or_repair(q.path(), None, None).unwrap();
        let a = enter(q.path(), &["u@a.example", "v@elsewhere.example"]);
        let b = enter(q.path(), &["u@b.example"]);
        let done = enter(q.path(), &["w@a.example"]);
        let mut qf = QueueFile::open(q.path(), Queue::Deferred, &done).unwrap();
        qf.mark_done(0).unwrap();
        drop(qf);
        // Marking a recipient done writes the file: deferred again after.
        later(q.path(), &done);
        let d = Domains::parse(
            "p",
            "a.example b.example",
            tables::domains::Style::Domain { parent: true },
        )
        .unwrap();
        let out = send_site(q.path(), &d, "A.example", "public/no-qmgr");
        assert_eq!(out, (Reply::Ok, Some(1)));
        assert!(due(q.path(), &a));
        assert!(!due(q.path(), &b), "another site's mail keeps its time");
        assert!(
            !due(q.path(), &done),
            "a recipient already done does not count"
        );
        // Again at once: coalesced.
        assert_eq!(
            send_site(q.path(), &d, "a.example", "public/no-qmgr"),
            (Reply::Ok, None)
        );
        // Not eligible, and not a name.
        assert_eq!(
            send_site(q.path(), &d, "c.example", "public/no-qmgr"),
            (Reply::Deny, None)
        );
        assert_eq!(
            send_site(q.path(), &d, "bad/../name", "public/no-qmgr"),
            (Reply::Bad, None)
        );
        assert!(!due(q.path(), &b));
    }

    #[test]
    fn site_names() {
        assert!(site_ok("example.com") && site_ok("[192.0.2.1]") && site_ok("[IPv6:2001:db8::1]"));
        assert!(!site_ok("") && !site_ok("a..b") && !site_ok("a/b") && !site_ok("[x]"));
    }
}
