//! bounce - delivery status logs and notifications
//!
//! # Synopsis
//!
//! master.cf (one program, three services; Postfix's standard lines):
//!
//! ```text
//! bounce    unix  -       -       n       -       0       bounce
//! defer     unix  -       -       n       -       0       bounce
//! trace     unix  -       -       n       -       0       bounce
//! ```
//!
//! # Description
//!
//! bounce keeps the per-message status logs and turns them into delivery
//! status notifications (RFC 3464), as Postfix's bounce(8) does. It serves
//! [`proto::bounce`] requests, one or more per connection:
//!
//! - `Append`: adds a recipient's record to bounce/<id> (permanent
//!   failure), defer/<id> (temporary failure) or trace/<id> (success the
//!   sender asked to hear of), in the format of [`queue::status_log`]:
//!   one write in append mode, fsynced before the answer, so qmgr may mark
//!   the recipient done once it has the answer. A newer defer record for a
//!   recipient replaces the older one for every reader.
//! - `Flush`: sends a non-delivery notification for everything in
//!   bounce/<id> (or, with no failures, a success report for trace/<id>),
//!   then removes those logs. The notification is a multipart/report
//!   (report-type=delivery-status): Postfix's text ("This is the mail
//!   system at host ..."), a message/delivery-status part (Reporting-MTA,
//!   X-Postfix-Queue-ID, X-Postfix-Sender, Arrival-Date, then per recipient
//!   Final-Recipient, Original-Recipient, Action, Status, Diagnostic-Code),
//!   and the original message as message/rfc822 — or only its headers as
//!   text/rfc822-headers when the sender asked for RET=HDRS or the message
//!   is larger than bounce_size_limit. It comes From
//!   `MAILER-DAEMON@$myhostname (Mail Delivery System)` with the null
//!   sender and goes through cleanup (flags NOTIFICATION and NO_CHECKS),
//!   the original content streamed from the queue file.
//! - `Warn`: sends a delay warning (Action: delayed, Status 4.x.x, subject
//!   "Delayed Mail (still being retried)") for the recipients of
//!   defer/<id> still pending; the log stays for mailq.
//!
//! Loops: a message from the null sender that bounces (a bounce itself)
//! produces one notification to 2bounce_notice_recipient (postmaster) with
//! the envelope sender `$double_bounce_sender@$myorigin` when
//! notify_classes names `2bounce` or `bounce`; otherwise (the default, as
//! in Postfix) it is logged (`undeliverable bounce discarded`) and dropped.
//! A message from
//! that double-bounce address that bounces is logged and dropped, so no
//! notification ever bounces in a loop. A cleanup that refuses the double
//! bounce outright also gets it logged and dropped. Delay warnings for the
//! double-bounce address are not sent; for the null sender only to
//! delay_notice_recipient, with notify_classes `delay`.
//!
//! Postmaster notices (notify_classes, Postfix's bounce_notify_service):
//! `bounce` follows each non-delivery notice to a sender with a copy (its
//! report and the original's headers, subject "Postmaster Copy:
//! Undelivered Mail", from the double-bounce address) to
//! bounce_notice_recipient; `delay` copies each delay warning to
//! delay_notice_recipient. A copy that cannot be queued is logged only.
//! `resource`, `software`, `protocol`, `policy` and `data` are SMTP session
//! transcripts in Postfix (smtpd, to error_notice_recipient): not sent yet.
//!
//! The service name (bounce, defer, trace) only decides how the process
//! logs; every request names its log explicitly.
//!
//! # Talks to
//!
//! - serves private/bounce, private/defer, private/trace (qmgr, delivery
//!   agents);
//! - calls public/cleanup to queue notifications;
//! - reads queue files (any queue, read-only) and the bounce/, defer/ and
//!   trace/ logs.
//!
//! # Security
//!
//! Runs as mail_owner, optionally chrooted to queue_directory (chroot=n in
//! the default line). Requests come from other daemons; queue files and
//! logs are untrusted input: ids and queue names are validated before any
//! path is built, logs are parsed without panics (bad records skipped), and
//! every header field written from them loses its control characters so a
//! reason text cannot add headers. Low sensitivity: it writes only the
//! queue's own log files and talks only to cleanup.
//!
//! # Diagnostics
//!
//! - `QID: sender non-delivery notification: NEWQID`,
//!   `QID: postmaster non-delivery notification: NEWQID`,
//!   `QID: sender delay notification: NEWQID`,
//!   `QID: postmaster delay notification: NEWQID`,
//!   `QID: undeliverable bounce discarded (notify_classes has no 2bounce)`,
//!   `QID: sender delivery status notification: NEWQID`;
//! - `warning: QID: undeliverable postmaster notification discarded`;
//! - `warning: QID: ...` when a log cannot be written or read, or cleanup
//!   fails; the request is answered `Failed` and qmgr tries again.
//!
//! # Configuration parameters
//!
//! - myhostname: in the text, From: and Reporting-MTA.
//! - myorigin ($myhostname): domain of the double-bounce sender.
//! - bounce_size_limit (50000): larger messages are returned as headers only.
//! - notify_classes (resource, software): bounce, 2bounce and delay are acted on.
//! - bounce_notice_recipient (postmaster): copies of bounces.
//! - 2bounce_notice_recipient (postmaster): gets double bounces.
//! - delay_notice_recipient (postmaster): copies of delay warnings.
//! - double_bounce_sender (double-bounce): sender of double bounces.
//! - delay_warning_time (0h), maximal_queue_lifetime (5d): delay text.
//! - max_use (100), max_idle (100s): via the ipc skeleton.
//!
//! # See also
//!
//! qmgr(8), cleanup(8), showq(8), bounce(5); RFC 3464; `queue::status_log`.

mod notice;
mod service;
mod submit;

fn main() {
    let (daemon, tz) = ipc::daemon::start(|_config, _args| {
        // Read the time zone before any chroot hides /etc/localtime.
        Ok(maillog::time_zone())
    });
    let settings = service::Settings::from_config(&daemon.context().config, tz);
    daemon.single_server(|stream, _ctx| {
        if let ipc::Stream::Unix(s) = stream {
            service::serve(s, &settings);
        }
    });
}
