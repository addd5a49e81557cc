//! imapd's storage-independent layer: the IMAP4rev1 (RFC 3501) and
//! IMAP4rev2 (RFC 9051) command parser, the response encoder, message
//! structure (ENVELOPE, BODYSTRUCTURE, BODY[section]) from raw bytes,
//! SEARCH evaluation, SORT and THREAD.
//!
//! Owning the parser rather than adopting imap-codec: imap-codec 1.0 lacks
//! UIDPLUS, ID, NAMESPACE, SORT/THREAD and IMAP4rev2, all of which imapd
//! announces, and the parser is where every hostile byte lands.

pub mod parse;
pub mod response;
pub mod structure;
pub mod search;
pub mod thread;
pub mod list;
pub mod state;
pub mod compress;
