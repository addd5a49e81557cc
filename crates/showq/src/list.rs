//! Walking the queues and describing each message for postqueue.

use proto::showq::{Message, PendingRecipient, Reply, Request};
use queue::{Queue, QueueFile, QueueId, RecipientState, status_log};
use std::io::Write;
use std::path::Path;

/// The queues listed, in order.
pub(crate) const QUEUES: [Queue; 5] = [
    Queue::Maildrop,
    Queue::Incoming,
    Queue::Active,
    Queue::Deferred,
    Queue::Hold,
];

/// Bytes of recipient text one entry may carry (a frame is at most
/// [`proto::MAX_FRAME`]; the rest is headroom for the other fields).
const RECIPIENT_BUDGET: usize = proto::MAX_FRAME / 2;

/// Answers one client: reads its request, then streams the listing.
pub(crate) fn serve(stream: &mut std::os::unix::net::UnixStream, queue_dir: &Path) {
    // A client that connects and goes silent must not hold this process.
    if stream
        .set_read_timeout(Some(proto::IPC_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(proto::IPC_TIMEOUT)))
        .is_err()
    {
        return;
    }
    match proto::recv::<_, Request>(stream) {
        Ok(Request::List) => {}
        Err(e) => {
            maillog::warning!("showq: bad request: {e}");
            return;
        }
    }
    let mut out = std::io::BufWriter::new(&mut *stream);
    let sent = list(queue_dir, &mut |m| {
        proto::send(&mut out, &Reply::Entry(m)).is_ok()
    });
    if sent && proto::send(&mut out, &Reply::End).is_ok() && out.flush().is_ok() {
        return;
    }
    maillog::warning!("showq: client went away");
}

/// Calls `emit` for every message; stops early when it returns false.
/// Returns false when it stopped early.
pub(crate) fn list(queue_dir: &Path, emit: &mut dyn FnMut(Message) -> bool) -> bool {
    for queue in QUEUES {
        let ids = match queue::list(queue_dir, queue) {
            Ok(ids) => ids,
            Err(e) => {
                maillog::warning!("showq: {e}");
                continue;
            }
        };
        for id in ids {
            if let Some(m) = describe(queue_dir, queue, &id)
                && !emit(m)
            {
                return false;
            }
        }
    }
    true
}

/// One message, or `None` when the file is gone, incomplete or bad.
pub(crate) fn describe(queue_dir: &Path, queue: Queue, id: &QueueId) -> Option<Message> {
    let qf = QueueFile::open_read_only(queue_dir, queue, id).ok()?;
    let defer = status_log::read(queue_dir, Queue::Defer, id)
        .ok()
        .flatten()
        .unwrap_or_default();
    let env = qf.envelope();
    let mut recipients = Vec::new();
    let mut budget = RECIPIENT_BUDGET;
    let mut left_out = 0usize;
    for (_, r, state) in qf.recipients() {
        if state != RecipientState::Pending {
            continue;
        }
        let reason = defer.reason_for(&r.address).unwrap_or_default();
        let cost = r
            .address
            .len()
            .saturating_add(reason.len())
            .saturating_add(8);
        if cost > budget {
            left_out += 1;
            continue;
        }
        budget -= cost;
        recipients.push(PendingRecipient {
            address: r.address.clone(),
            reason: reason.to_string(),
        });
    }
    let mut notes = Vec::new();
    if left_out > 0 {
        notes.push(format!("{left_out} more recipients not shown"));
    }
    Some(Message {
        queue_name: queue.as_str().to_string(),
        queue_id: id.as_str().to_string(),
        arrival_secs: env.arrival_secs,
        size: qf.content_len(),
        // The queue library bounds the sender to 64 KiB: it fits the frame.
        sender: env.sender.clone(),
        recipients,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enter(q: &Path, sender: &str, rcpts: &[&str], body: &[u8]) -> QueueId {
        let mut w = queue::enter(q).unwrap();
        w.write_all(body).unwrap();
        let mut env = queue::Envelope::new(sender, std::time::SystemTime::now());
        for r in rcpts {
            env.add_recipient(r);
        }
        *w.finish(&env).unwrap().id()
    }

    #[test]
    fn lists_pending_recipients_with_reasons_and_skips_bad_files() {
        let q = tempfile::tempdir().unwrap();
        queue::layout::create_or_repair(q.path(), None, None).unwrap();
        let a = enter(q.path(), "alice@x", &["b@y", "c@y"], b"hello\n");
        let b = enter(q.path(), "", &["d@y"], b"hi\n");
        queue::rename(q.path(), &a, Queue::Incoming, Queue::Deferred).unwrap();
        let mut qf = QueueFile::open(q.path(), Queue::Deferred, &a).unwrap();
        qf.mark_done(0).unwrap();
        let rec = status_log::Record {
            recipient: "c@y".into(),
            reason: "connect refused".into(),
            ..Default::default()
        };
        status_log::append(q.path(), Queue::Defer, &a, &rec).unwrap();
        // Garbage in hold/ and an incomplete file in incoming/.
        std::fs::write(q.path().join("hold/0000000000B"), b"junk").unwrap();
        let _busy = queue::enter(q.path()).unwrap();
        let mut got = Vec::new();
        assert!(list(q.path(), &mut |m| {
            got.push(m);
            true
        }));
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].queue_id, b.as_str());
        assert_eq!(got[0].queue_name, "incoming");
        assert_eq!(got[0].sender, "");
        assert_eq!(got[1].queue_name, "deferred");
        assert_eq!(got[1].size, 6);
        assert_eq!(
            got[1].recipients,
            vec![PendingRecipient {
                address: "c@y".into(),
                reason: "connect refused".into()
            }]
        );
    }
}
