//! One pass over maildrop/: each complete file, oldest first (up to
//! [`PARALLEL`] at a time), is streamed to cleanup and removed once
//! cleanup has answered.
//!
//! A maildrop file is written by postdrop as the submitting user and that
//! user owns it, so it is untrusted input: it is opened with the queue
//! library's checks, a malformed one goes to corrupt/ with a warning, and
//! only a few envelope facts are passed on (sender, recipients, full name,
//! extract_recipients, DSN values, body type). The login name is checked
//! against the file's owner.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use proto::cleanup::{self, Begin, RecipientSpec, Reply, Request, flags};
use queue::{Envelope, Queue, QueueFile, QueueId};

/// How long to wait for cleanup's last word after it hung up on us.
const REJECT_WAIT: Duration = Duration::from_secs(5);

/// Age after which an unfinished maildrop file is taken as abandoned.
const ABANDONED_AGE: Duration = Duration::from_secs(24 * 3600);

/// Longest sender text in a log line.
const LOG_ADDR_MAX: usize = 500;

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Handed to cleanup (queued, discarded or rejected) and removed.
    Done,
    /// Not ready, gone, or quarantined: go on with the next file.
    Skipped,
    /// cleanup is not available: leave this and the rest for later.
    CleanupDown,
}

/// How long a scan waits for a cleanup that still works on a maildrop file.
const CLAIM_WAIT: Duration = Duration::from_secs(5);

/// Most maildrop files in conversation with cleanup at once. Several in
/// flight let cleanup sync incoming/ once for them all and let qmgr hand
/// the delivery agents batches, as many smtpd sessions do; a message is
/// still removed from maildrop/ only after cleanup answered for it.
const PARALLEL: usize = 8;

/// Most maildrop ids remembered as possibly sent.
const UNSURE_MAX: usize = 100_000;

/// The maildrop scanner.
///
/// Exactly once: a maildrop file is removed only after cleanup answered,
/// so a pickup killed in between sends it again. Each message carries
/// `maildrop_id` (cleanup keeps it in the queue file; qmgr takes no file
/// from incoming/ while its maildrop file exists), and a file that may
/// have been sent before (older than this process, or an attempt of this
/// process that ended without an answer) also `maildrop_retry=1`: cleanup
/// then answers with the earlier queue file, if there is one, instead of
/// writing a second.
#[derive(Debug)]
pub(crate) struct Pickup {
    queue_dir: PathBuf,
    own_uid: u32,
    started: std::time::SystemTime,
    unsure: std::sync::Mutex<std::collections::HashSet<QueueId>>,
    /// content_filter (`transport:nexthop`; empty: none), passed to
    /// cleanup for every message as smtpd passes its own.
    content_filter: String,
}

impl Pickup {
    /// A scanner for `queue_dir` (`.` under master), running as `own_uid`.
    pub(crate) fn new(queue_dir: &Path, own_uid: u32) -> Pickup {
        Pickup {
            queue_dir: queue_dir.to_path_buf(),
            own_uid,
            started: std::time::SystemTime::now(),
            unsure: std::sync::Mutex::new(std::collections::HashSet::new()),
            content_filter: String::new(),
        }
    }

    /// Sends local mail through `filter` (content_filter), as Postfix's
    /// pickup does.
    pub(crate) fn with_content_filter(mut self, filter: &str) -> Pickup {
        self.content_filter = filter.trim().to_string();
        self
    }

    /// Takes every complete file in maildrop/ to cleanup, in arrival order,
    /// stopping early when cleanup is down. Returns how many were done.
    pub(crate) fn scan(&self) -> usize {
        let found = match queue::scan(&self.queue_dir, Queue::Maildrop) {
            Ok(s) => s,
            Err(e) => {
                maillog::warning!("scan maildrop: {e}");
                return 0;
            }
        };
        self.remove_stale_temporaries(&found.others);
        let next = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let down = AtomicBool::new(false);
        let work = || {
            while !down.load(Ordering::Relaxed) {
                let Some(id) = found.ids.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    break;
                };
                match self.pickup_file(id) {
                    Outcome::Done => {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Outcome::Skipped => {}
                    Outcome::CleanupDown => down.store(true, Ordering::Relaxed),
                }
            }
        };
        let workers = found.ids.len().min(PARALLEL);
        if workers <= 1 {
            work();
        } else {
            std::thread::scope(|s| {
                for _ in 0..workers {
                    s.spawn(work);
                }
            });
        }
        done.into_inner()
    }

    /// Waits up to [`CLAIM_WAIT`] while a cleanup claims maildrop file
    /// `id`; false when it still does.
    fn wait_unclaimed(&self, id: &QueueId) -> bool {
        let until = std::time::Instant::now() + CLAIM_WAIT;
        loop {
            match queue::maildrop_claimed(&self.queue_dir, id) {
                Ok(false) => return true,
                Ok(true) if std::time::Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(true) => {
                    maillog::verbose!("maildrop/{id}: a cleanup still works on it");
                    return false;
                }
                // Gone or unreadable: the open that follows reports it.
                Err(_) => return true,
            }
        }
    }

    /// Takes one file to cleanup.
    pub(crate) fn pickup_file(&self, id: &QueueId) -> Outcome {
        // postdrop writes as the submitting user with mode 0600 and sets
        // the owner execute bit (and group/other read) only when the file
        // is complete, so an unfinished file is one pickup cannot open yet:
        // that is not an error to log, just not ready.
        let path = queue::queue_path(&self.queue_dir, Queue::Maildrop, id);
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            use std::os::unix::fs::PermissionsExt;
            if meta.is_file() && meta.permissions().mode() & 0o100 == 0 {
                self.remove_if_abandoned(id);
                return Outcome::Skipped;
            }
        }
        let qf = match QueueFile::open_read_only(&self.queue_dir, Queue::Maildrop, id) {
            Ok(f) => f,
            // postdrop is still writing it, or died doing so.
            Err(queue::Error::Incomplete { .. }) => {
                self.remove_if_abandoned(id);
                return Outcome::Skipped;
            }
            Err(e) if e.is_not_found() => return Outcome::Skipped,
            Err(e) if e.is_corrupt() => {
                self.quarantine(id, &e.to_string());
                return Outcome::Skipped;
            }
            Err(e) => {
                maillog::warning!("maildrop/{id}: {e}");
                return Outcome::Skipped;
            }
        };
        // A second pickup (a bad master.cf) must not send it twice.
        if matches!(qf.try_lock_exclusive(), Ok(false)) {
            return Outcome::Skipped;
        }
        // A cleanup may still be writing a queue file for it, for a pickup
        // that was killed: wait until that copy is complete (or given up),
        // so cleanup can find it when we send the file again.
        if !self.wait_unclaimed(id) {
            return Outcome::Skipped;
        }
        let uid = qf.metadata().uid();
        let mut begin = self.begin(qf.envelope(), uid);
        begin
            .attributes
            .push(("maildrop_id".to_owned(), id.to_string()));
        if self.maybe_sent(id) {
            begin
                .attributes
                .push(("maildrop_retry".to_owned(), "1".to_owned()));
        }
        let mut conv = match Conversation::start(&self.queue_dir, &begin) {
            Ok(Started::Yes(c)) => c,
            Ok(Started::Rejected(status, text)) => {
                return self.rejected(id, &format!("maildrop/{id}: uid={uid}"), &status, &text);
            }
            Err(e) => {
                maillog::warning!("{}: {e}", cleanup::SERVICE);
                return Outcome::CleanupDown;
            }
        };
        maillog::info!(
            "{}: uid={uid} from=<{}>",
            conv.queue_id,
            maillog::printable(&begin.sender, LOG_ADDR_MAX)
        );
        match conv.send_message(&qf) {
            Ok(Reply::Queued { .. }) => {
                self.remove(id);
                // qmgr held the new queue file back while this existed.
                if let Err(e) = proto::trigger(&self.queue_dir, "public/qmgr") {
                    maillog::verbose!("trigger qmgr: {e}");
                }
                Outcome::Done
            }
            Ok(Reply::Discarded { .. }) => {
                self.remove(id);
                Outcome::Done
            }
            Ok(Reply::Rejected { status, text, .. }) => {
                self.rejected(id, &conv.queue_id, &status, &text)
            }
            Ok(Reply::Started { .. }) => {
                maillog::warning!("{}: unexpected reply from cleanup", conv.queue_id);
                Outcome::CleanupDown
            }
            Err(SendError::Content(e)) => {
                self.quarantine(id, &e.to_string());
                Outcome::Skipped
            }
            Err(SendError::Cleanup(e)) => {
                maillog::warning!("{}: {}: {e}", conv.queue_id, cleanup::SERVICE);
                Outcome::CleanupDown
            }
        }
    }

    /// True when maildrop file `id` may have reached cleanup before: it
    /// is older than this process, or an attempt of ours got no answer.
    /// Remembers it as such from now on, until it is removed.
    fn maybe_sent(&self, id: &QueueId) -> bool {
        let mut unsure = self
            .unsure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = unsure.contains(id) || id.time() <= self.started;
        if unsure.len() >= UNSURE_MAX {
            unsure.clear();
        }
        unsure.insert(*id);
        before
    }

    /// The queue directory (`.` under master).
    pub(crate) fn queue_dir(&self) -> &Path {
        &self.queue_dir
    }

    /// The Begin request for a file owned by `uid`.
    pub(crate) fn begin(&self, env: &Envelope, uid: u32) -> Begin {
        let extract = env
            .attribute("flags")
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
            & (flags::EXTRACT_RECIPIENTS | flags::VERIFY_REPORT);
        let mut attributes = vec![
            ("rewrite_context".to_owned(), "local".to_owned()),
            (
                "login_name".to_owned(),
                self.login_name(uid, env.attribute("login_name")),
            ),
            ("uid".to_owned(), uid.to_string()),
        ];
        if let Some(envid) = &env.dsn_envid {
            attributes.push(("dsn_envid".to_owned(), envid.clone()));
        }
        if let Some(ret) = env.dsn_ret {
            attributes.push(("dsn_ret".to_owned(), ret.as_str().to_owned()));
        }
        if let Some(body @ ("7BIT" | "8BITMIME")) = env.attribute("body") {
            attributes.push(("body".to_owned(), body.to_owned()));
        }
        if !self.content_filter.is_empty() {
            attributes.push(("content_filter".to_owned(), self.content_filter.clone()));
        }
        Begin {
            flags: flags::LOCAL_SUBMISSION | extract,
            sender: env.sender.clone(),
            full_name: env.attribute("full_name").map(str::to_owned),
            attributes,
        }
    }

    /// The submitter's login name: the file says, root and mail_owner are
    /// believed; anyone else's claim must match the file owner, else the
    /// owner's passwd name is used (the uid in digits without one).
    fn login_name(&self, uid: u32, claimed: Option<&str>) -> String {
        use nix::unistd::{Uid, User};
        if let Some(name) = claimed {
            if uid == 0 || uid == self.own_uid {
                return name.to_owned();
            }
            if let Ok(Some(u)) = User::from_name(name)
                && u.uid.as_raw() == uid
            {
                return name.to_owned();
            }
        }
        match User::from_uid(Uid::from_raw(uid)) {
            Ok(Some(u)) => u.name,
            _ => uid.to_string(),
        }
    }

    /// An incomplete file older than [`ABANDONED_AGE`] belongs to a postdrop
    /// that was killed (sendmail did not report success): remove it.
    fn remove_if_abandoned(&self, id: &QueueId) {
        if let Ok(Some(age)) = queue::incomplete_age(&self.queue_dir, Queue::Maildrop, id)
            && age > ABANDONED_AGE
        {
            maillog::warning!("maildrop/{id}: removing incomplete file abandoned by postdrop");
            self.remove(id);
        }
    }

    /// postdrop's temporary names (`.tmp.PID.N`) live a moment; one older
    /// than [`ABANDONED_AGE`] is left from a crash.
    fn remove_stale_temporaries(&self, others: &[PathBuf]) {
        for path in others {
            let is_tmp = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(".tmp."));
            let old = std::fs::symlink_metadata(path)
                .ok()
                .filter(std::fs::Metadata::is_file)
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > ABANDONED_AGE);
            if is_tmp && old && std::fs::remove_file(path).is_ok() {
                maillog::warning!("{}: removed stale temporary file", path.display());
            }
        }
    }

    /// cleanup refused the message: for good (5.x.x: log and remove the
    /// file), or for now (4.x.x, a queue file write error and the like:
    /// keep the file and stop this scan).
    fn rejected(&self, id: &QueueId, what: &str, status: &str, text: &str) -> Outcome {
        let text = maillog::printable(text, 200);
        let status = maillog::printable(status, 20);
        if status.starts_with('5') {
            maillog::warning!("{what}: rejected: {status} {text}");
            self.remove(id);
            Outcome::Done
        } else {
            maillog::warning!("{what}: cleanup: {status} {text}; will try again");
            Outcome::CleanupDown
        }
    }

    fn remove(&self, id: &QueueId) {
        self.unsure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
        match queue::remove(&self.queue_dir, Queue::Maildrop, id) {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => maillog::warning!("remove maildrop/{id}: {e}"),
        }
    }

    /// A bad file goes to corrupt/ (removed when even that fails).
    fn quarantine(&self, id: &QueueId, why: &str) {
        match queue::quarantine(&self.queue_dir, Queue::Maildrop, id) {
            Ok(()) => maillog::warning!("maildrop/{id}: {why}: moved to corrupt/{id}"),
            Err(e) => {
                maillog::warning!("maildrop/{id}: {why}; cannot move it to corrupt/: {e}");
                self.remove(id);
                maillog::warning!("maildrop/{id}: removed");
            }
        }
    }
}

/// How cleanup answered Begin.
pub(crate) enum Started {
    /// With a queue id: go on.
    Yes(Conversation),
    /// Refused at once.
    Rejected(String, String),
}

/// Why streaming stopped.
#[derive(Debug)]
enum SendError {
    /// The maildrop file is damaged (its content did not read back).
    Content(std::io::Error),
    /// cleanup went away or said something unexpected.
    Cleanup(proto::Error),
}

/// One message's conversation with cleanup.
pub(crate) struct Conversation {
    stream: std::os::unix::net::UnixStream,
    /// The queue id cleanup gave (printable), for the log.
    pub(crate) queue_id: String,
}

impl Conversation {
    pub(crate) fn start(queue_dir: &Path, begin: &Begin) -> Result<Started, proto::Error> {
        let mut stream = proto::connect(queue_dir, cleanup::SERVICE)?;
        proto::send(&mut stream, &Request::Begin(begin.clone()))?;
        match proto::recv(&mut stream)? {
            Reply::Started { queue_id } => Ok(Started::Yes(Conversation {
                stream,
                queue_id: maillog::printable(&queue_id, 64),
            })),
            Reply::Rejected { status, text, .. } => Ok(Started::Rejected(status, text)),
            other => Err(proto::Error::Io(std::io::Error::other(format!(
                "unexpected reply {other:?}"
            )))),
        }
    }

    /// Recipients, content and End; returns cleanup's answer.
    fn send_message(&mut self, qf: &QueueFile) -> Result<Reply, SendError> {
        match self.stream_parts(qf) {
            Ok(()) => self.answer().map_err(SendError::Cleanup),
            Err(SendError::Content(e)) => {
                self.abort();
                Err(SendError::Content(e))
            }
            Err(SendError::Cleanup(e)) => match self.last_word() {
                Some(r @ Reply::Rejected { .. }) => Ok(r),
                _ => Err(SendError::Cleanup(e)),
            },
        }
    }

    /// Sends one request.
    pub(crate) fn send(&mut self, req: &Request) -> Result<(), proto::Error> {
        proto::send(&mut self.stream, req)
    }

    /// cleanup's answer after `End`.
    pub(crate) fn answer(&mut self) -> Result<Reply, proto::Error> {
        proto::recv(&mut self.stream)
    }

    /// Gives the message up: cleanup removes its file.
    pub(crate) fn abort(&mut self) {
        let _ = proto::send(&mut self.stream, &Request::Abort);
    }

    /// After a failed send: cleanup may have refused the message (size)
    /// and hung up, and its reply is then waiting for us.
    pub(crate) fn last_word(&mut self) -> Option<Reply> {
        let _ = self.stream.set_read_timeout(Some(REJECT_WAIT));
        proto::recv(&mut self.stream).ok()
    }

    fn stream_parts(&mut self, qf: &QueueFile) -> Result<(), SendError> {
        let s = &mut self.stream;
        for (_, r, _) in qf.recipients() {
            let spec = RecipientSpec {
                address: r.address.clone(),
                orcpt: r.dsn_orcpt.clone(),
                notify: r.dsn_notify,
            };
            proto::send(s, &Request::Recipient(spec)).map_err(SendError::Cleanup)?;
        }
        let mut content = qf.content();
        let mut buf = vec![0u8; proto::CONTENT_CHUNK];
        loop {
            let n = match content.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(SendError::Content(e)),
            };
            let chunk = buf.get(..n).unwrap_or_default().to_vec();
            proto::send(s, &Request::Content(chunk)).map_err(SendError::Cleanup)?;
        }
        proto::send(s, &Request::End).map_err(SendError::Cleanup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixListener;
    use std::thread::JoinHandle;

    fn queue() -> tempfile::TempDir {
        let q = tempfile::tempdir().unwrap();
        queue::layout::create_or_repair(q.path(), None, None).unwrap();
        q
    }

    fn maildrop_file(q: &Path, content: &[u8], attrs: &[(&str, &str)]) -> QueueId {
        let mut w = queue::enter_queue(q, Queue::Maildrop).unwrap();
        w.write_all(content).unwrap();
        let mut env = Envelope::new("alice", std::time::SystemTime::now());
        env.add_recipient("bob").dsn_notify = 2;
        for (k, v) in attrs {
            env.set_attribute(k, v);
        }
        *w.finish(&env).unwrap().id()
    }

    /// A one-message stand-in for cleanup: answers Begin with Started and
    /// End with `last`; returns what it received.
    fn cleanup_stub(q: &Path, last: Reply) -> JoinHandle<Vec<Request>> {
        let l = UnixListener::bind(q.join(cleanup::SERVICE)).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut got = Vec::new();
            loop {
                let r: Request = match proto::recv(&mut s) {
                    Ok(r) => r,
                    Err(_) => return got,
                };
                got.push(r.clone());
                match r {
                    Request::Begin(_) => proto::send(
                        &mut s,
                        &Reply::Started {
                            queue_id: "4XyZ".into(),
                        },
                    )
                    .unwrap(),
                    Request::End => {
                        proto::send(&mut s, &last).unwrap();
                        return got;
                    }
                    _ => {}
                }
            }
        })
    }

    /// Several files are in conversation with cleanup at once: this
    /// stand-in answers no End before two conversations are open together
    /// (a scan taking one file at a time would never finish), and every
    /// file is sent once and removed.
    #[test]
    fn several_files_in_flight_each_once() {
        let q = queue();
        let ids: Vec<QueueId> = (0..12)
            .map(|_| maildrop_file(q.path(), b"Subject: x\n\nbody\n", &[]))
            .collect();
        let l = UnixListener::bind(q.path().join(cleanup::SERVICE)).unwrap();
        let open = std::sync::Arc::new((
            std::sync::Mutex::new((0usize, 0usize)),
            std::sync::Condvar::new(),
        ));
        let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (open2, sent2) = (open.clone(), sent.clone());
        std::thread::spawn(move || {
            for (n, s) in l.incoming().enumerate() {
                let (open, sent) = (open2.clone(), sent2.clone());
                let mut s = s.unwrap();
                std::thread::spawn(move || {
                    let queue_id = format!("Q{n}");
                    loop {
                        let Ok(r) = proto::recv::<_, Request>(&mut s) else {
                            return;
                        };
                        match r {
                            Request::Begin(b) => {
                                let (lock, cv) = &*open;
                                let mut g = lock.lock().unwrap();
                                g.0 += 1;
                                g.1 = g.1.max(g.0);
                                cv.notify_all();
                                drop(g);
                                let id = b.attributes.iter().find(|(k, _)| k == "maildrop_id");
                                sent.lock().unwrap().push(id.unwrap().1.clone());
                                let started = Reply::Started {
                                    queue_id: queue_id.clone(),
                                };
                                proto::send(&mut s, &started).unwrap();
                            }
                            Request::End => {
                                let (lock, cv) = &*open;
                                let g = lock.lock().unwrap();
                                let (mut g, _) = cv
                                    .wait_timeout_while(g, Duration::from_secs(10), |g| g.1 < 2)
                                    .unwrap();
                                g.0 -= 1;
                                drop(g);
                                proto::send(&mut s, &Reply::Queued { queue_id }).unwrap();
                                return;
                            }
                            _ => {}
                        }
                    }
                });
            }
        });
        let p = Pickup::new(q.path(), own_uid());
        assert_eq!(p.scan(), ids.len());
        assert!(open.0.lock().unwrap().1 >= 2, "one conversation at a time");
        let mut sent = sent.lock().unwrap().clone();
        sent.sort();
        let mut want: Vec<String> = ids.iter().map(ToString::to_string).collect();
        want.sort();
        assert_eq!(sent, want, "each file once");
        assert!(
            queue::scan(q.path(), Queue::Maildrop)
                .unwrap()
                .ids
                .is_empty()
        );
    }

    fn own_uid() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    #[test]
    fn streams_to_cleanup_and_removes() {
        let q = queue();
        let content = b"Subject: x\n\nbody\0\xff\n".to_vec();
        let id = maildrop_file(
            q.path(),
            &content,
            &[("flags", "3"), ("full_name", "Al"), ("login_name", "alice")],
        );
        let stub = cleanup_stub(
            q.path(),
            Reply::Queued {
                queue_id: "4XyZ".into(),
            },
        );
        let p = Pickup::new(q.path(), own_uid());
        assert_eq!(p.scan(), 1);
        let got = stub.join().unwrap();
        let Request::Begin(b) = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!(b.flags, flags::LOCAL_SUBMISSION | flags::EXTRACT_RECIPIENTS);
        assert_eq!(b.sender, "alice");
        assert_eq!(b.full_name.as_deref(), Some("Al"));
        assert!(
            b.attributes
                .contains(&("rewrite_context".into(), "local".into()))
        );
        assert!(
            b.attributes
                .contains(&("uid".into(), own_uid().to_string()))
        );
        assert_eq!(
            got[1],
            Request::Recipient(RecipientSpec {
                address: "bob".into(),
                orcpt: None,
                notify: 2
            })
        );
        let mut sent = Vec::new();
        for r in &got[2..got.len() - 1] {
            let Request::Content(c) = r else {
                panic!("{r:?}")
            };
            sent.extend_from_slice(c);
        }
        assert_eq!(sent, content);
        assert_eq!(got.last(), Some(&Request::End));
        assert!(queue::list(q.path(), Queue::Maildrop).unwrap().is_empty());
        let _ = id;
    }

    #[test]
    fn content_filter_goes_with_every_message() {
        let q = queue();
        maildrop_file(
            q.path(),
            b"Subject: x\n\nbody\n",
            &[("login_name", "alice")],
        );
        let stub = cleanup_stub(q.path(), queued());
        let p = Pickup::new(q.path(), own_uid()).with_content_filter(" smtp:[127.0.0.1]:10025 ");
        assert_eq!(p.scan(), 1);
        let attrs = begin_attrs(&stub.join().unwrap());
        assert!(
            attrs.contains(&("content_filter".into(), "smtp:[127.0.0.1]:10025".into())),
            "{attrs:?}"
        );
    }

    fn begin_attrs(got: &[Request]) -> Vec<(String, String)> {
        let Some(Request::Begin(b)) = got.first() else {
            panic!("{got:?}")
        };
        b.attributes.clone()
    }

    fn queued() -> Reply {
        Reply::Queued {
            queue_id: "4XyZ".into(),
        }
    }

    #[test]
    fn maildrop_id_always_and_retry_when_maybe_sent() {
        let q = queue();
        // Left by an earlier pickup: maybe sent.
        let old = maildrop_file(q.path(), b"a\n", &[]);
        std::thread::sleep(Duration::from_millis(5));
        let p = Pickup::new(q.path(), own_uid());
        let stub = cleanup_stub(q.path(), queued());
        assert_eq!(p.scan(), 1);
        let attrs = begin_attrs(&stub.join().unwrap());
        assert!(attrs.contains(&("maildrop_id".into(), old.to_string())));
        assert!(attrs.contains(&("maildrop_retry".into(), "1".into())));
        std::fs::remove_file(q.path().join(cleanup::SERVICE)).unwrap();

        // New since we started: a first attempt.
        std::thread::sleep(Duration::from_millis(5));
        let new = maildrop_file(q.path(), b"b\n", &[]);
        // cleanup dies after Begin: no answer, the file stays.
        let l = UnixListener::bind(q.path().join(cleanup::SERVICE)).unwrap();
        let died = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let r: Request = proto::recv(&mut s).unwrap();
            proto::send(
                &mut s,
                &Reply::Started {
                    queue_id: "4XyZ".into(),
                },
            )
            .unwrap();
            r
        });
        assert_eq!(p.scan(), 0);
        let attrs = begin_attrs(&[died.join().unwrap()]);
        assert!(attrs.contains(&("maildrop_id".into(), new.to_string())));
        assert!(!attrs.iter().any(|(k, _)| k == "maildrop_retry"));
        assert_eq!(queue::list(q.path(), Queue::Maildrop).unwrap(), vec![new]);
        std::fs::remove_file(q.path().join(cleanup::SERVICE)).unwrap();

        // The next attempt says it may be a repeat.
        let stub = cleanup_stub(q.path(), queued());
        assert_eq!(p.scan(), 1);
        let attrs = begin_attrs(&stub.join().unwrap());
        assert!(attrs.contains(&("maildrop_retry".into(), "1".into())));
        assert!(queue::list(q.path(), Queue::Maildrop).unwrap().is_empty());
    }

    #[test]
    fn waits_while_a_cleanup_still_claims_the_file() {
        let q = queue();
        let id = maildrop_file(q.path(), b"a\n", &[]);
        // The cleanup of a killed pickup, still finishing its queue file.
        let claim = queue::claim_maildrop(q.path(), &id).unwrap();
        let stub = cleanup_stub(q.path(), queued());
        let p = Pickup::new(q.path(), own_uid());
        let released = std::time::Instant::now() + Duration::from_millis(300);
        let holder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(claim);
        });
        assert_eq!(p.scan(), 1);
        assert!(
            std::time::Instant::now() >= released,
            "sent while a cleanup still claimed the file"
        );
        holder.join().unwrap();
        stub.join().unwrap();
        assert!(queue::list(q.path(), Queue::Maildrop).unwrap().is_empty());
    }

    #[test]
    fn cleanup_down_leaves_files() {
        let q = queue();
        let a = maildrop_file(q.path(), b"a\n", &[]);
        let b = maildrop_file(q.path(), b"b\n", &[]);
        let p = Pickup::new(q.path(), own_uid());
        assert_eq!(p.scan(), 0);
        assert_eq!(queue::list(q.path(), Queue::Maildrop).unwrap(), vec![a, b]);
    }

    #[test]
    fn rejected_and_discarded_are_removed() {
        for last in [
            Reply::Rejected {
                status: "5.3.4".into(),
                text: "message file too big".into(),
                code: 0,
            },
            Reply::Discarded {
                reason: "header_checks".into(),
            },
        ] {
            let q = queue();
            maildrop_file(q.path(), b"a\n", &[]);
            let stub = cleanup_stub(q.path(), last);
            assert_eq!(Pickup::new(q.path(), own_uid()).scan(), 1);
            stub.join().unwrap();
            assert!(queue::list(q.path(), Queue::Maildrop).unwrap().is_empty());
        }
    }

    #[test]
    fn temporary_rejections_keep_the_file() {
        let q = queue();
        let id = maildrop_file(q.path(), b"a\n", &[]);
        maildrop_file(q.path(), b"b\n", &[]);
        let stub = cleanup_stub(
            q.path(),
            Reply::Rejected {
                status: "4.3.0".into(),
                text: "queue file write error".into(),
                code: 0,
            },
        );
        assert_eq!(Pickup::new(q.path(), own_uid()).scan(), 0);
        stub.join().unwrap();
        // Both stay; the second was not even tried.
        assert_eq!(queue::list(q.path(), Queue::Maildrop).unwrap().len(), 2);
        assert_eq!(queue::list(q.path(), Queue::Maildrop).unwrap()[0], id);
    }

    #[test]
    fn bad_and_unfinished_files() {
        let q = queue();
        let id = maildrop_file(q.path(), b"a\n", &[]);
        // Damage it: flip a content byte (the content checksum catches it).
        let path = queue::queue_path(q.path(), Queue::Maildrop, &id);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[64] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        // A file postdrop is still writing.
        let mut w = queue::enter_queue(q.path(), Queue::Maildrop).unwrap();
        w.write_all(b"partial").unwrap();
        w.flush().unwrap();
        let stub = cleanup_stub(
            q.path(),
            Reply::Queued {
                queue_id: "X".into(),
            },
        );
        assert_eq!(Pickup::new(q.path(), own_uid()).scan(), 0);
        let got = stub.join().unwrap();
        // The damage shows only at the end of the content: cleanup is told to abort.
        assert_eq!(got.last(), Some(&Request::Abort));
        assert_eq!(queue::list(q.path(), Queue::Corrupt).unwrap(), vec![id]);
        assert_eq!(
            queue::list(q.path(), Queue::Maildrop).unwrap(),
            vec![*w.id()]
        );
        // A file with a broken header goes to corrupt/ without talking to cleanup.
        let id2 = maildrop_file(q.path(), b"b\n", &[]);
        let path = queue::queue_path(q.path(), Queue::Maildrop, &id2);
        std::fs::write(&path, b"garbage").unwrap();
        assert_eq!(Pickup::new(q.path(), own_uid()).scan(), 0);
        assert_eq!(queue::list(q.path(), Queue::Corrupt).unwrap().len(), 2);
    }

    #[test]
    fn abandoned_files_are_removed() {
        let q = queue();
        let mut w = queue::enter_queue(q.path(), Queue::Maildrop).unwrap();
        w.write_all(b"partial").unwrap();
        w.flush().unwrap();
        let path = w.path().to_path_buf();
        let tmp = q.path().join("maildrop/.tmp.1.2");
        std::fs::write(&tmp, b"").unwrap();
        let fresh = q.path().join("maildrop/.tmp.1.3");
        std::fs::write(&fresh, b"").unwrap();
        let old = std::time::SystemTime::now() - ABANDONED_AGE - Duration::from_secs(60);
        for p in [&path, &tmp] {
            std::fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        // The writer's handle stays open; only age counts.
        Pickup::new(q.path(), own_uid()).scan();
        assert!(!path.exists());
        assert!(!tmp.exists());
        assert!(fresh.exists());
        drop(w);
    }

    #[test]
    fn login_name_is_checked_against_the_owner() {
        let p = Pickup::new(Path::new("."), 4242);
        assert_eq!(p.login_name(0, Some("anyone")), "anyone");
        assert_eq!(p.login_name(4242, Some("anyone")), "anyone");
        // uid 0 is root everywhere; a claim for another uid is not believed.
        let p = Pickup::new(Path::new("."), 4242);
        assert_eq!(p.login_name(0, None), "root");
        assert_eq!(p.login_name(65_432, Some("root")), "65432");
    }
}
