//! SEARCH evaluation over one message and SORT ordering (RFC 5256). The
//! message's state (flags, internal date, size, UID, sequence number,
//! MODSEQ) comes in as plain inputs; keys that need the message's bytes
//! read them from the parsed message, and [`needs_message`] tells the
//! caller when an index alone will do.

pub mod eval;
pub mod sort;
mod text;

pub use eval::{Candidate, Context, matches, needs_message, prepare};

/// Charsets SEARCH, SORT and THREAD accept (others get
/// `NO [BADCHARSET (UTF-8 US-ASCII)]`).
pub fn charset_supported(charset: &str) -> bool {
    charset.eq_ignore_ascii_case("UTF-8") || charset.eq_ignore_ascii_case("US-ASCII")
}

#[cfg(test)]
mod tests;
