//! cleanup - canonicalize and enqueue Postfix message
//!
//! # Synopsis
//!
//! master.cf: `cleanup unix n - n - 0 cleanup`
//!
//! # Description
//!
//! cleanup takes a message from pickup (local submissions), smtpd (network
//! mail) or bounce (notifications) over `public/cleanup` in the
//! proto::cleanup conversation, and writes it to the incoming queue:
//!
//! 1. At `Begin` it creates the queue file (queue::enter) and answers
//!    `Started` with the queue id. The envelope sender is rewritten.
//! 2. `Recipient` records are collected; `Content` chunks are processed as
//!    they arrive and written to the file (see [`message`]): our Received
//!    header first; header_checks per logical header (REJECT, DISCARD,
//!    HOLD, IGNORE, WARN, INFO, PREPEND, REPLACE, STRIP, PASS, DUNNO);
//!    address rewriting in sender and recipient headers when
//!    local_header_rewrite_clients allows (local submissions and loopback
//!    clients; remote clients only with remote_header_rewrite_domain);
//!    message_drop_headers (Bcc, Resent-Bcc, Content-Length, Return-Path);
//!    then Message-Id, Date, From (and undisclosed_recipients_header)
//!    where missing; body_checks per body line. When mime_header_checks or
//!    nested_header_checks are set, the multipart structure is followed
//!    so that MIME headers and the headers of body parts meet
//!    mime_header_checks, and the headers of attached messages
//!    nested_header_checks, as in Postfix (nothing is decoded).
//! 3. At `End` the envelope recipients (plus To/Cc/Bcc addresses with the
//!    EXTRACT_RECIPIENTS flag, sendmail -t) go through trivial-rewrite,
//!    recipient_canonical_maps, canonical_maps, masquerading (when
//!    masquerade_classes says so) and virtual_alias_maps expansion, with
//!    duplicates removed. Mail from outside (neither a NOTIFICATION nor
//!    NO_ADDRESS_MAPS) then gets its automatic BCC recipients, each once,
//!    with NOTIFY=NEVER, rewritten in the local context: sender_bcc_maps's
//!    address for the sender, recipient_bcc_maps's for each recipient, and
//!    always_bcc (Postfix's cleanup_addr_bcc). The file is completed and fsynced
//!    (queue::QueueWriter::finish), moved to hold/ when a HOLD action or
//!    the client's HOLD flag asks, and only then the client hears
//!    `Queued`. qmgr is woken through `public/qmgr`.
//! 4. A local submission from pickup carries `maildrop_id` (kept in the
//!    queue file) and, when the maildrop file may have been sent before
//!    (a killed pickup), `maildrop_retry=1`: then, before completing, cleanup
//!    looks in incoming/ and hold/ for a complete file with the same
//!    maildrop_id; if there is one it removes its own and answers `Queued`
//!    with that queue id (qmgr takes no file from incoming/ while its
//!    maildrop file exists, so an earlier copy is still there).
//!
//! Anything that stops a message removes its file: `Rejected` with
//! 5.3.4 (message_size_limit, answered at once and the connection
//! closed), 5.7.1 or the table's code (REJECT), 5.4.0 (hopcount_limit),
//! 5.1.0 (no recipients), 4.3.0 (trivial-rewrite unreachable, a table
//! lookup failure, alias loops, a write error); `Discarded` for DISCARD.
//!
//! Flow control (in_flow_delay, see [`flow`]): when more than
//! default_process_limit files wait in incoming/ besides the messages this
//! process is receiving, a new message (not a notice) waits up to
//! in_flow_delay for the backlog to shrink, then goes on. This replaces
//! Postfix's qmgr token pipe with the same documented effect.
//!
//! One process serves many clients at once: the main thread runs the
//! ipc multi-server's mio loop and accepts; each client is served by a
//! thread of its own (smtpd holds one cleanup connection per message in
//! flight). When a table file changes, the process stops accepting,
//! finishes its clients and exits, so master starts one with fresh tables.
//!
//! # Talks to
//!
//! - Serves `public/cleanup` (proto::cleanup).
//! - Calls `private/rewrite` (proto::rewrite, trivial-rewrite), one
//!   connection per message; an answer is kept for 10 seconds
//!   (proto::recent), so a run of messages with the same addresses asks
//!   once (Postfix's rewrite_clnt keeps its last answer).
//! - Wakes `public/qmgr` (proto::trigger).
//! - Writes `incoming/`, renames into `hold/`.
//!
//! # Security
//!
//! Runs as mail_owner, may be chrooted to the queue directory. All message
//! content is untrusted: lines are cut at line_length_limit, headers at
//! header_size_limit, the message at message_size_limit; NUL bytes and
//! 8-bit text pass through as bytes; nothing panics on any input. Tables
//! are opened before the jail.
//!
//! # Diagnostics
//!
//! - `QID: message-id=<...>` for each message (`<>` when it has none and
//!   none was added).
//! - `QID: reject: header Subject: ... from local; from=<a> to=<b>: 5.7.1 text`,
//!   and `warning:`, `info:`, `hold:`, `discard:`, `prepend:`, `replace:`,
//!   `strip:` and `pass:` in the same shape.
//! - `warning: QID: message rejected: hopcount exceeded`, `... message file
//!   too big`, `warning: QID: ... map lookup problem -- message not
//!   accepted, try again later`.
//! - A table that cannot be opened is fatal at startup.
//!
//! # Configuration parameters
//!
//! - myhostname, mydestination, myorigin (via trivial-rewrite), mail_name (Postfix).
//! - canonical_maps (empty), sender_canonical_maps (empty), recipient_canonical_maps (empty),
//!   canonical_classes (all four), sender_canonical_classes, recipient_canonical_classes.
//! - masquerade_domains (empty), masquerade_exceptions (empty),
//!   masquerade_classes (envelope_sender, header_sender, header_recipient).
//! - virtual_alias_maps ($virtual_maps), virtual_alias_recursion_limit (1000),
//!   virtual_alias_expansion_limit (1000), duplicate_filter_limit (1000),
//!   propagate_unmatched_extensions (canonical, virtual), recipient_delimiter (empty),
//!   enable_original_recipient (yes), empty_address_recipient (MAILER-DAEMON).
//! - header_checks (empty), mime_header_checks ($header_checks),
//!   nested_header_checks ($header_checks), body_checks (empty),
//!   body_checks_size_limit (51200).
//! - local_header_rewrite_clients (permit_inet_interfaces: loopback clients;
//!   `static:all` for every client).
//! - message_size_limit (10240000), header_size_limit (102400),
//!   line_length_limit (2048), hopcount_limit (50).
//! - always_add_missing_headers (no), undisclosed_recipients_header (empty),
//!   message_drop_headers (bcc, content-length, resent-bcc, return-path),
//!   remote_header_rewrite_domain (empty).
//! - always_bcc (empty), sender_bcc_maps (empty), recipient_bcc_maps (empty).
//! - in_flow_delay (1s), default_process_limit (100): flow control.
//! - smtpd_milters (empty; the list comes from smtpd), non_smtpd_milters
//!   (empty), milter_protocol (6), milter_default_action (tempfail),
//!   milter_connect_timeout (30s), milter_command_timeout (30s),
//!   milter_content_timeout (300s), milter_connect_macros,
//!   milter_helo_macros, milter_mail_macros, milter_rcpt_macros,
//!   milter_data_macros (i), milter_end_of_header_macros (i),
//!   milter_end_of_data_macros (i), milter_macro_daemon_name ($myhostname),
//!   milter_macro_v ($mail_name $mail_version): see the `milters` module.
//! - max_use (100), max_idle (100s): via the ipc skeleton.
//!
//! # See also
//!
//! trivial-rewrite(8), qmgr(8), pickup(8), smtpd(8), canonical(5),
//! virtual(5), header_checks(5), the proto and queue crates.

mod addr;
mod flow;
mod headers;
mod masquerade;
mod message;
mod milters;
mod mime;
mod server;
mod session;
mod settings;
mod stamp;
mod trace;

fn main() {
    let (daemon, settings) = ipc::daemon::start(|config, _args| settings::Settings::load(config));
    server::run(daemon.multi_server(), std::sync::Arc::new(settings));
}
