//! sendmail - Postfix to Sendmail compatibility interface
//!
//! # Synopsis
//!
//! ```text
//! sendmail [option ...] [recipient ...]
//! mailq            (sendmail -bp)
//! newaliases       (sendmail -bi)
//! ```
//!
//! # Description
//!
//! Reads a message from standard input and queues it for delivery to the
//! recipients named on the command line (and, with `-t`, in the message
//! headers). The message is copied as given: bare LF or CRLF line ends,
//! NUL and 8-bit bytes, lines of any length (cleanup repairs and
//! normalises later); a first line starting with `From ` is dropped. Without
//! `-i`, a line holding a single `.` ends the message, as with Sendmail.
//! Memory use does not depend on the message size.
//!
//! The same program runs as `mailq` (list the queue) and `newaliases`
//! (rebuild the alias databases), chosen by the name it is called by.
//!
//! Options:
//!
//! - `-B type`: the body type, `7BIT` or `8BITMIME`.
//! - `-C config_file` or `-C config_dir`: use this configuration directory
//!   (a file name means its directory); otherwise `$MAIL_CONFIG` or
//!   /etc/postfix. Commands run on our behalf get it as MAIL_CONFIG and `-c`.
//! - `-F full_name`: the sender's full name, for a From header cleanup adds.
//! - `-f sender`, `-r sender`: the envelope sender (default: the login name
//!   of the calling user); `-f '<>'` is the null sender.
//! - `-I`, `-bi`: initialise the alias databases: run
//!   command_directory/postalias on every alias_database entry.
//! - `-i`, `-oi`: a line with a single dot does not end the message.
//! - `-N dsn`: DSN NOTIFY: `never`, or a list of `success`, `delay`,
//!   `failure`.
//! - `-R return`: DSN RET: `full` or `hdrs`. `-V envid`: DSN ENVID.
//! - `-bm`: read a message and queue it (the default).
//! - `-bp`: list the queue: run command_directory/postqueue -p.
//! - `-bs`: an SMTP conversation on stdin/stdout: run daemon_directory/smtpd
//!   -S (when smtpd is not installed: exit 69).
//! - `-bv`: read no message; verify each recipient and mail the sender a
//!   "Mail Delivery Status Report" (deliverable or undeliverable, with the
//!   delivery agent's words), delivering nothing, as Postfix; prints `Mail
//!   Delivery Status Report will be mailed to <sender>.`. Not with -t, -N,
//!   -R or one -v (exit 64).
//! - `-bd`, `-bD`, `-bl`, `-bh`, `-bH`: not supported (exit 64); the
//!   mail system starts with `postfix start`.
//! - `-q`: deliver queued mail now (postqueue -f); `-qRsite`: the mail for
//!   site (postqueue -s site); `-qIqueueid`: one message (postqueue -i
//!   queueid); `-qinterval`: ignored; `-qSsite`: not implemented (exit 64),
//!   as in Postfix.
//! - `-t`: recipients also from the To, Cc and Bcc headers (Resent-To,
//!   Resent-Cc, Resent-Bcc); cleanup does the extraction and removes Bcc.
//!   With no command-line recipient and no address in those headers, the
//!   message is refused (exit 64, `No recipient addresses found in message
//!   header`).
//! - `-v`: more verbose logging.
//! - `-G`, `-L label`, `-O option=value`, `-U`, `-X file`, `-c`, `-e x`,
//!   `-h hops`, `-m`, `-n`, `-o x` / `-oX...` (other than `-oi`), `-p proto`,
//!   `-x`: accepted and ignored, as Postfix does.
//!
//! # Talks to
//!
//! Runs command_directory/postdrop and gives it the envelope and message
//! on its stdin as `proto::cleanup::Request` frames (Begin, Recipient...,
//! Content..., End). Up to 256 KiB of frames are read whole and sendmail
//! executes postdrop in its own place with them in a memory file on stdin
//! (one process start a submission); a larger message starts postdrop as
//! a child and streams to it. Execs postqueue, postalias or smtpd for the
//! other modes.
//!
//! # Security
//!
//! Not set-uid or set-gid: it runs as the calling user, who controls all of
//! its input. postdrop (set-gid postdrop) does the privileged part and
//! checks everything again.
//!
//! # Diagnostics
//!
//! Problems go to stderr and to syslog (or maillog_file, when this user may
//! write it) as `sendmail: fatal: user(uid): text`. Exit status (sysexits.h):
//! 0 only after postdrop reported the message queued (pickup's answer, or
//! its maildrop file fsynced and complete);
//! 64 (EX_USAGE) for a bad command line or no recipients (also none in
//! the header with `-t`); 65 (EX_DATAERR)
//! for a message over message_size_limit (postdrop removes its partial
//! file); 67 (EX_NOUSER) when the caller has no passwd entry; 69
//! (EX_UNAVAILABLE) when a program to run is missing; 74 (EX_IOERR) when
//! stdin cannot be read; 75 (EX_TEMPFAIL) when postdrop fails for another
//! reason; 78 (EX_CONFIG) for a bad main.cf; otherwise postdrop's status.
//! When sendmail executed postdrop in its own place (a message of up to
//! 256 KiB, not `-bv`), postdrop's exit status and its `postdrop: fatal:`
//! line are the command's, without sendmail's line after them.
//!
//! # Configuration parameters
//!
//! - alias_database (hash:/etc/aliases): what `-bi` rebuilds.
//! - command_directory (/usr/sbin): postdrop, postqueue, postalias.
//! - daemon_directory (/usr/libexec/postfix): smtpd for `-bs`.
//! - message_size_limit (10240000): enforced by postdrop.
//! - syslog_name (postfix), maillog_file (empty): logging.
//!
//! # See also
//!
//! postdrop(1), pickup(8), cleanup(8), postqueue(1), postalias(1).

#![cfg_attr(not(test), no_main)]

// C's main, without Rust's runtime set-up (privsep::entry): two commands
// start for every message submitted.
privsep::lean_main!(enqueue);

fn enqueue() {
    sendmail::main(sendmail::Mode::Enqueue)
}
