//! Serving proto::bounce requests: append to a log, flush a bounce, warn
//! of a delay.

use crate::notice::{self, Kind, Notice, Return};
use crate::submit::{SubmitError, submit};
use proto::bounce::{Entry, Log, Reply, Request};
use queue::format::DsnRet;
use queue::status_log::{self, Record, StatusLog};
use queue::{Queue, QueueFile, QueueId, RecipientState};
use std::os::unix::net::UnixStream;
use std::time::{SystemTime, UNIX_EPOCH};

/// Most requests served on one connection.
const MAX_REQUESTS: usize = 10_000;

/// Longest reason text kept in a log record (a remote server's reply can
/// be long; the record must stay below the log's record limit).
const MAX_REASON: usize = 4000;

/// `text` cut to at most `max` bytes at a character boundary.
fn cut(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default().to_string()
}

/// The notify_classes this daemon acts on (Postfix's MAIL_ERROR_* mask).
/// The other classes (resource, software, protocol, policy, data) are
/// transcripts of SMTP sessions in Postfix, which smtpd does not send yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Notify {
    /// `bounce`: a copy of each non-delivery notice's headers to
    /// bounce_notice_recipient (and double bounces, as `2bounce` does).
    pub(crate) bounce: bool,
    /// `2bounce`: undeliverable bounces to 2bounce_notice_recipient.
    pub(crate) double_bounce: bool,
    /// `delay`: a copy of each delay warning's headers to
    /// delay_notice_recipient.
    pub(crate) delay: bool,
}

impl Notify {
    /// Parses a notify_classes list; unknown names are ignored
    /// (`postfix check` names the ones no program acts on).
    pub(crate) fn parse(list: &str) -> Notify {
        let mut n = Notify::default();
        for word in list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|w| !w.is_empty())
        {
            match word.to_ascii_lowercase().as_str() {
                "bounce" => n.bounce = true,
                "2bounce" => n.double_bounce = true,
                "delay" => n.delay = true,
                _ => {}
            }
        }
        n
    }
}

/// What the daemon reads from main.cf once.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    myhostname: String,
    myorigin: String,
    bounce_size_limit: u64,
    notify: Notify,
    bounce_rcpt: String,
    delay_rcpt: String,
    double_bounce_rcpt: String,
    double_bounce_sender: String,
    delay_hours: u64,
    lifetime_secs: u64,
    tz: jiff::tz::TimeZone,
    queue_dir: std::path::PathBuf,
}

impl Settings {
    /// Reads the parameters this daemon uses.
    pub(crate) fn from_config(c: &config::Config, tz: jiff::tz::TimeZone) -> Settings {
        Settings {
            myhostname: c.str("myhostname"),
            myorigin: c.str("myorigin"),
            bounce_size_limit: u64::try_from(c.int("bounce_size_limit")).unwrap_or(50_000),
            notify: Notify::parse(&c.str("notify_classes")),
            bounce_rcpt: c.str("bounce_notice_recipient"),
            delay_rcpt: c.str("delay_notice_recipient"),
            double_bounce_rcpt: c.str("2bounce_notice_recipient"),
            double_bounce_sender: c.str("double_bounce_sender"),
            delay_hours: c.time("delay_warning_time").as_secs() / 3600,
            lifetime_secs: c.time("maximal_queue_lifetime").as_secs(),
            tz,
            queue_dir: std::path::PathBuf::from("."),
        }
    }

    #[cfg(test)]
    pub(crate) fn for_test(queue_dir: &std::path::Path) -> Settings {
        Settings {
            myhostname: "mx.example.org".into(),
            myorigin: "example.org".into(),
            bounce_size_limit: 50_000,
            notify: Notify::parse("resource, software"),
            bounce_rcpt: "postmaster".into(),
            delay_rcpt: "postmaster".into(),
            double_bounce_rcpt: "postmaster".into(),
            double_bounce_sender: "double-bounce".into(),
            delay_hours: 4,
            lifetime_secs: 5 * 86_400,
            tz: jiff::tz::TimeZone::UTC,
            queue_dir: queue_dir.to_path_buf(),
        }
    }

    /// The double-bounce address, as the sender of double bounces.
    fn double_bounce(&self) -> String {
        if self.double_bounce_sender.contains('@') {
            self.double_bounce_sender.clone()
        } else {
            format!("{}@{}", self.double_bounce_sender, self.myorigin)
        }
    }

    fn is_double_bounce(&self, sender: &str) -> bool {
        sender.eq_ignore_ascii_case(&self.double_bounce())
            || sender.eq_ignore_ascii_case(&self.double_bounce_sender)
    }

    /// RFC 2822 date as Postfix's mail_date writes it.
    fn date(&self, secs: u64) -> String {
        let ts = i64::try_from(secs)
            .ok()
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        ts.to_zoned_datetime(self.tz.clone())
            .strftime("%a, %e %b %Y %H:%M:%S %z (%Z)")
            .to_string()
    }
}

/// Serves requests on one connection until the client hangs up.
pub(crate) fn serve(stream: &mut UnixStream, settings: &Settings) {
    // A client that connects and goes silent must not hold this process.
    if stream
        .set_read_timeout(Some(proto::IPC_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(proto::IPC_TIMEOUT)))
        .is_err()
    {
        return;
    }
    for _ in 0..MAX_REQUESTS {
        let request: Request = match proto::recv(stream) {
            Ok(r) => r,
            Err(proto::Error::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return,
            Err(e) => {
                maillog::warning!("bounce request: {e}");
                return;
            }
        };
        let reply = handle(&request, settings);
        if let Err(e) = proto::send(stream, &reply) {
            maillog::warning!("bounce reply: {e}");
            return;
        }
    }
}

/// Answers one request.
pub(crate) fn handle(request: &Request, s: &Settings) -> Reply {
    match request {
        Request::Append {
            log,
            queue_id,
            entry,
        } => append(s, *log, queue_id, entry),
        Request::Flush {
            queue_name,
            queue_id,
            sender,
        } => flush(s, queue_name, queue_id, sender),
        Request::Warn {
            queue_name,
            queue_id,
            sender,
        } => warn(s, queue_name, queue_id, sender),
    }
}

fn failed(reason: String) -> Reply {
    Reply::Failed { reason }
}

fn parse_id(queue_id: &str) -> Result<QueueId, Reply> {
    QueueId::parse(queue_id).map_err(|e| failed(e.to_string()))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn log_queue(log: Log) -> Queue {
    match log {
        Log::Bounce => Queue::Bounce,
        Log::Defer => Queue::Defer,
        Log::Trace => Queue::Trace,
    }
}

fn append(s: &Settings, log: Log, queue_id: &str, e: &Entry) -> Reply {
    let id = match parse_id(queue_id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let record = Record {
        recipient: e.recipient.clone(),
        original: e.original.clone(),
        dsn_orcpt: e.dsn_orcpt.clone(),
        status: e.dsn.clone(),
        action: e.action.clone(),
        relay: e.relay.clone(),
        reason: cut(&e.text, MAX_REASON),
        time: now(),
    };
    match status_log::append(&s.queue_dir, log_queue(log), &id, &record) {
        Ok(()) => Reply::Ok { notification: None },
        Err(err) => {
            maillog::warning!("{id}: cannot append to {} log: {err}", log_queue(log));
            failed(err.to_string())
        }
    }
}

fn read_log(s: &Settings, log: Queue, id: &QueueId) -> Result<StatusLog, Reply> {
    match status_log::read(&s.queue_dir, log, id) {
        Ok(l) => {
            let l = l.unwrap_or_default();
            if l.skipped > 0 {
                maillog::warning!("{id}: {log} log: skipped {} malformed records", l.skipped);
            }
            Ok(l)
        }
        Err(e) => {
            maillog::warning!("{id}: cannot read {log} log: {e}");
            Err(failed(e.to_string()))
        }
    }
}

/// True for a `sendmail -bv` message (trace_flags with USR_VRFY): its
/// trace log is a report the sender asked for.
fn verify_report(s: &Settings, queue_name: &str, id: &QueueId) -> bool {
    use proto::deliver::trace;
    open_original(s, queue_name, id).is_some_and(|qf| {
        qf.envelope()
            .attribute(trace::ATTR)
            .is_some_and(|v| trace::parse(v) & trace::USR_VRFY != 0)
    })
}

/// The original message, when it can still be opened.
fn open_original(s: &Settings, queue_name: &str, id: &QueueId) -> Option<QueueFile> {
    let queue = match Queue::parse(queue_name) {
        Ok(q) => q,
        Err(e) => {
            maillog::warning!("{id}: {e}");
            return None;
        }
    };
    match QueueFile::open_read_only(&s.queue_dir, queue, id) {
        Ok(qf) => Some(qf),
        Err(e) => {
            maillog::warning!("{id}: cannot open original message: {e}");
            None
        }
    }
}

/// Who gets the notification, from which envelope sender, and how it is
/// logged; `None` when it must be dropped.
struct Route {
    to: String,
    from: String,
    postmaster_copy: bool,
    who: &'static str,
}

fn route(s: &Settings, id: &QueueId, sender: &str) -> Option<Route> {
    if s.is_double_bounce(sender) {
        maillog::warning!("{id}: undeliverable postmaster notification discarded");
        return None;
    }
    if sender.is_empty() {
        // Postfix sends a double bounce only when notify_classes asks.
        if !(s.notify.double_bounce || s.notify.bounce) {
            maillog::info!("{id}: undeliverable bounce discarded (notify_classes has no 2bounce)");
            return None;
        }
        return Some(Route {
            to: s.double_bounce_rcpt.clone(),
            from: s.double_bounce(),
            postmaster_copy: true,
            who: "postmaster",
        });
    }
    Some(Route {
        to: sender.to_string(),
        from: String::new(),
        postmaster_copy: false,
        who: "sender",
    })
}

fn flush(s: &Settings, queue_name: &str, queue_id: &str, sender: &str) -> Reply {
    let id = match parse_id(queue_id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let bounce_log = match read_log(s, Queue::Bounce, &id) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let trace_log = match read_log(s, Queue::Trace, &id) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let (kind, log) = if !bounce_log.records.is_empty() {
        (Kind::Failure, &bounce_log)
    } else if verify_report(s, queue_name, &id) {
        (Kind::Verify, &trace_log)
    } else {
        (Kind::Success, &trace_log)
    };
    let records = log.latest();
    let mut notification = None;
    if !records.is_empty()
        && let Some(route) = route(s, &id, sender)
        && !(matches!(kind, Kind::Success | Kind::Verify) && route.postmaster_copy)
    {
        match send(s, kind, &route, queue_name, &id, sender, records.clone()) {
            Ok(n) => {
                notification = n;
                // notify_classes = bounce: the postmaster hears of every
                // bounce to a sender, with the original's headers only.
                if kind == Kind::Failure && !route.postmaster_copy && s.notify.bounce {
                    let copy = postmaster_route(s, &s.bounce_rcpt);
                    if let Err(e) = send(s, kind, &copy, queue_name, &id, sender, records) {
                        maillog::warning!(
                            "{id}: postmaster notice failed while bouncing to {}: {e}",
                            maillog::printable(sender, 100)
                        );
                    }
                }
            }
            Err(SubmitError::Rejected(status, text)) if route.postmaster_copy => {
                maillog::warning!(
                    "{id}: postmaster notification refused by cleanup, dropped: {status} {}",
                    maillog::printable(&text, 200)
                );
            }
            Err(e) => {
                maillog::warning!("{id}: {} notification failed: {e}", route.who);
                return failed(e.to_string());
            }
        }
    }
    for log in [Queue::Bounce, Queue::Trace] {
        if let Err(e) = status_log::remove(&s.queue_dir, log, &id) {
            maillog::warning!("{id}: cannot remove {log} log: {e}");
        }
    }
    Reply::Ok { notification }
}

/// A notice to the postmaster address `to`, from the double-bounce sender.
fn postmaster_route(s: &Settings, to: &str) -> Route {
    Route {
        to: to.to_string(),
        from: s.double_bounce(),
        postmaster_copy: true,
        who: "postmaster",
    }
}

fn warn(s: &Settings, queue_name: &str, queue_id: &str, sender: &str) -> Reply {
    let id = match parse_id(queue_id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    // A delayed bounce concerns only the postmaster, and only with
    // notify_classes = delay; a delayed postmaster notice concerns no one.
    if s.is_double_bounce(sender) || (sender.is_empty() && !s.notify.delay) {
        return Reply::Ok { notification: None };
    }
    let log = match read_log(s, Queue::Defer, &id) {
        Ok(l) => l,
        Err(r) => return r,
    };
    // Only recipients that are still waiting.
    let pending: Option<Vec<String>> = open_original(s, queue_name, &id).map(|qf| {
        qf.recipients()
            .filter(|(_, _, st)| *st == RecipientState::Pending)
            .map(|(_, r, _)| r.address.clone())
            .collect()
    });
    let records: Vec<&Record> = log
        .latest()
        .into_iter()
        .filter(|r| pending.as_ref().is_none_or(|p| p.contains(&r.recipient)))
        .collect();
    if records.is_empty() {
        return Reply::Ok { notification: None };
    }
    if sender.is_empty() {
        let route = postmaster_route(s, &s.delay_rcpt);
        return match send(s, Kind::Delay, &route, queue_name, &id, sender, records) {
            Ok(notification) => Reply::Ok { notification },
            Err(e) => {
                maillog::warning!("{id}: postmaster delay notification failed: {e}");
                failed(e.to_string())
            }
        };
    }
    let route = Route {
        to: sender.to_string(),
        from: String::new(),
        postmaster_copy: false,
        who: "sender",
    };
    match send(
        s,
        Kind::Delay,
        &route,
        queue_name,
        &id,
        sender,
        records.clone(),
    ) {
        Ok(notification) => {
            if s.notify.delay {
                let copy = postmaster_route(s, &s.delay_rcpt);
                if let Err(e) = send(s, Kind::Delay, &copy, queue_name, &id, sender, records) {
                    maillog::warning!("{id}: postmaster delay notification failed: {e}");
                }
            }
            Reply::Ok { notification }
        }
        Err(e) => {
            maillog::warning!("{id}: sender delay notification failed: {e}");
            failed(e.to_string())
        }
    }
}

/// Builds and queues one notification; logs it.
fn send(
    s: &Settings,
    kind: Kind,
    route: &Route,
    queue_name: &str,
    id: &QueueId,
    sender: &str,
    records: Vec<&Record>,
) -> Result<Option<String>, SubmitError> {
    let original = open_original(s, queue_name, id);
    let (arrival, ret, envid) = match &original {
        Some(qf) => {
            let env = qf.envelope();
            // A postmaster's copy of a sender's notice carries the headers
            // only; a double bounce carries what the sender's would have.
            // A -bv report returns the headers only, as Postfix's trace service.
            let headers_only = kind == Kind::Verify
                || (route.postmaster_copy && !sender.is_empty())
                || env.dsn_ret == Some(DsnRet::Headers)
                || env
                    .attribute("dsn_ret")
                    .is_some_and(|v| v.eq_ignore_ascii_case("HDRS"))
                || qf.content_len() > s.bounce_size_limit;
            let ret = if headers_only {
                Return::Headers
            } else {
                Return::Full
            };
            (env.arrival_secs, ret, env.dsn_envid.clone())
        }
        None => (
            id.time()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            Return::Nothing,
            None,
        ),
    };
    let arrival_date = s.date(arrival);
    let retry_until = s.date(arrival.saturating_add(s.lifetime_secs));
    let n = Notice {
        kind,
        postmaster_copy: route.postmaster_copy,
        myhostname: &s.myhostname,
        queue_id: id.as_str(),
        sender,
        to: &route.to,
        arrival_date: &arrival_date,
        retry_until: Some(&retry_until),
        delay_hours: s.delay_hours,
        lifetime_days: s.lifetime_secs / 86_400,
        envid: envid.as_deref(),
        records,
        boundary: format!("{}.{}/{}", id, now(), s.myhostname),
        ret,
    };
    let queued = submit(&s.queue_dir, &route.from, &route.to, |out| {
        let mut content = original.as_ref().map(|qf| qf.content());
        let reader = content.as_mut().map(|c| c as &mut dyn std::io::Read);
        notice::write_notice(&n, reader, out)
    })?;
    let what = match kind {
        Kind::Failure => "non-delivery notification",
        Kind::Delay => "delay notification",
        Kind::Success | Kind::Verify => "delivery status notification",
    };
    match &queued {
        Some(new) => maillog::info!("{id}: {} {what}: {new}", route.who),
        None => maillog::info!("{id}: {} {what}: discarded", route.who),
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_then_flush_without_cleanup_fails_and_keeps_the_log() {
        let q = tempfile::tempdir().unwrap();
        queue::layout::create_or_repair(q.path(), None, None).unwrap();
        let s = Settings::for_test(q.path());
        let id = "0000000000B";
        let entry = Entry {
            recipient: "bob@example.org".into(),
            original: "bob@example.org".into(),
            dsn_orcpt: None,
            dsn: "5.1.1".into(),
            action: "failed".into(),
            relay: "local".into(),
            text: "unknown user".into(),
        };
        let r = handle(
            &Request::Append {
                log: Log::Bounce,
                queue_id: id.into(),
                entry,
            },
            &s,
        );
        assert_eq!(r, Reply::Ok { notification: None });
        let r = handle(
            &Request::Flush {
                queue_name: "active".into(),
                queue_id: id.into(),
                sender: "alice@example.org".into(),
            },
            &s,
        );
        assert!(matches!(r, Reply::Failed { .. }), "{r:?}");
        let qid = QueueId::parse(id).unwrap();
        assert!(
            status_log::read(q.path(), Queue::Bounce, &qid)
                .unwrap()
                .is_some()
        );
        // A bad id never reaches a path.
        let r = handle(
            &Request::Flush {
                queue_name: "active".into(),
                queue_id: "../../etc".into(),
                sender: String::new(),
            },
            &s,
        );
        assert!(matches!(r, Reply::Failed { .. }));
    }

    #[test]
    fn notify_classes_parse() {
        assert_eq!(Notify::parse("resource, software"), Notify::default());
        let n = Notify::parse("Bounce,2bounce delay");
        assert!(n.bounce && n.double_bounce && n.delay);
        let n = Notify::parse("2bounce");
        assert!(n.double_bounce && !n.bounce && !n.delay);
    }

    #[test]
    fn long_reasons_are_cut_at_a_character_boundary() {
        let long = "é".repeat(5000);
        let c = cut(&long, MAX_REASON);
        assert_eq!(c.len(), MAX_REASON);
        assert_eq!(cut("abc", 2), "ab");
        assert_eq!(cut("é", 1), "");
    }

    #[test]
    fn double_bounce_sender_is_dropped_and_logs_removed() {
        let q = tempfile::tempdir().unwrap();
        queue::layout::create_or_repair(q.path(), None, None).unwrap();
        let s = Settings::for_test(q.path());
        let qid = QueueId::parse("0000000000C").unwrap();
        let rec = Record {
            recipient: "postmaster@example.org".into(),
            status: "5.0.0".into(),
            ..Record::default()
        };
        status_log::append(q.path(), Queue::Bounce, &qid, &rec).unwrap();
        let r = flush(&s, "active", qid.as_str(), "double-bounce@example.org");
        assert_eq!(r, Reply::Ok { notification: None });
        assert!(
            status_log::read(q.path(), Queue::Bounce, &qid)
                .unwrap()
                .is_none()
        );
        assert_eq!(s.date(0), "Thu,  1 Jan 1970 00:00:00 +0000 (UTC)");
    }
}
