//! imapd: an IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051) server. The
//! protocol modules below need no mailbox store; [`store`] is the store
//! side and [`daemon`] the program (src/main.rs is only its entry point).
//!
//! - [`parse`]: the streaming command parser. Bytes go in as they arrive;
//!   out come commands, "need more", "send a continuation request", BAD
//!   for one command, or a fatal protocol error. Literals `{n}`, `{n+}`
//!   (LITERAL+), `{n-}` (LITERAL-) and `~{n}` (literal8) are sized before
//!   they are read; lines, commands and nesting are bounded. Every command
//!   of RFC 3501, RFC 9051 and the extensions imapd announces (IDLE,
//!   UIDPLUS, MOVE, NAMESPACE, ID, ENABLE, SASL-IR, UNSELECT,
//!   LIST-EXTENDED, LIST-STATUS, ESEARCH, SEARCHRES, CONDSTORE, QRESYNC,
//!   STATUS=SIZE, SORT, THREAD, QUOTA, COMPRESS, STARTTLS, AUTHENTICATE).
//! - [`response`]: status and continuation lines, strings encoded safely
//!   (atom, quoted or literal), modified UTF-7 and UTF-8 mailbox names,
//!   INTERNALDATE, FETCH data and the other data responses.
//! - [`structure`]: ENVELOPE, BODY, BODYSTRUCTURE, `BODY[section]<partial>`
//!   and BINARY from the message's bytes, mail-parser building the MIME
//!   tree (its limits are listed there).
//! - [`search`]: SEARCH keys evaluated over one message whose state comes
//!   as plain inputs; SORT keys and ordering (RFC 5256).
//! - [`thread`]: base subjects, THREAD=ORDEREDSUBJECT and
//!   THREAD=REFERENCES (RFC 5256).
//! - [`daemon`]: the `imapd` program's processes and sessions;
//!   [`store`]: Maildir++ folders, the per-mailbox index and cache,
//!   keywords and subscriptions.
//! - [`list`]: LIST/LSUB pattern matching; [`state`]: which command each
//!   session state admits; [`compress`]: COMPRESS=DEFLATE streams.
//!
//! The answers for ENVELOPE, BODYSTRUCTURE, `BODY[section]`, BINARY, SEARCH,
//! SORT and THREAD are checked against Dovecot 2.3.19's for the messages in
//! tests/corpus and tests/threads; where we differ on purpose the tests say
//! why.
//!
//! Owning the parser rather than adopting imap-codec: imap-codec 1.0 lacks
//! UIDPLUS, ID, NAMESPACE, SORT/THREAD and IMAP4rev2, all of which imapd
//! announces, and the parser is where every hostile byte lands.

pub mod compress;
pub mod daemon;
pub mod list;
pub mod parse;
pub mod response;
pub mod search;
pub mod state;
pub mod store;
pub mod structure;
pub mod thread;
