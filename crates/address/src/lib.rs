//! Mail addresses as Postfix handles them internally.
//!
//! An address has an *external* form, as written in SMTP commands and
//! message headers (`"john doe"@example.com`), and an *internal* form with
//! the local part unquoted (`john doe@example.com`). Postfix keeps
//! addresses internally in the second form and splits them at the **last**
//! `@`, so `"user@remote"@local` becomes `user@remote@local` with local part
//! `user@remote`. This crate does the same:
//!
//! - [`parse_mailbox`] and [`parse_path`] read one envelope address (RFC 5321
//!   `<@a,@b:user@c>` or a bare `user@c`), dropping comments and source
//!   routes;
//! - [`parse_address_list`] reads a To/Cc/Bcc header value with display
//!   names, comments, groups, angle brackets and quoted strings;
//! - [`quote_local`], [`quote_822_local`] and [`unquote_822_local`] convert
//!   between the two forms (Postfix's `quote_822_local` and
//!   `unquote_822_local`);
//! - [`split_extension`] and [`strip_extension`] handle
//!   `recipient_delimiter` (`user+ext@domain`);
//! - [`Routing`] says whether a local part still routes mail elsewhere
//!   (`@`, `%`, `!`), for relay checks; [`swap_bangpath`] and
//!   [`percent_hack`] undo the `!` and `%` forms where the configuration
//!   asks for it.
//!
//! All input is treated as untrusted: every parser is bounded
//! ([`MAX_ADDRESS_LENGTH`], [`MAX_LIST_LENGTH`], [`MAX_LIST_ADDRESSES`],
//! [`MAX_COMMENT_DEPTH`]), never panics, and returns a typed [`Error`].
//!
//! ```
//! let a = address::parse_mailbox("<\"user@remote\"@Example.COM>").unwrap();
//! assert_eq!(a.local, "user@remote");
//! assert_eq!(a.to_internal(), "user@remote@Example.COM");
//! assert_eq!(a.to_external(), "\"user@remote\"@Example.COM");
//! assert_eq!(a.lookup_key(), "\"user@remote\"@example.com");
//! assert!(a.routing().at);
//! ```

mod extension;
mod list;
mod mailbox;
mod quote;
mod token;

use std::fmt;

pub use extension::{Extension, split_extension, strip_extension};
pub use list::parse_address_list;
pub use mailbox::{Path, parse_mailbox, parse_path};
pub use quote::{needs_quoting, quote_822_local, quote_local, unquote_822_local};

/// Longest single address accepted by [`parse_mailbox`] (bytes). RFC 5321
/// allows 256 octets for a path; Postfix is more lenient, so are we.
pub const MAX_ADDRESS_LENGTH: usize = 4096;

/// Longest header value accepted by [`parse_address_list`] (bytes); the
/// same as Postfix's default header_size_limit.
pub const MAX_LIST_LENGTH: usize = 102_400;

/// Most addresses returned by one [`parse_address_list`] call.
pub const MAX_LIST_ADDRESSES: usize = 10_000;

/// Deepest comment nesting accepted.
pub const MAX_COMMENT_DEPTH: usize = 32;

/// A mail address in internal form: the local part unquoted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Address {
    /// The local part, unquoted (it may contain `@`, spaces, quotes...).
    pub local: String,
    /// The domain as written (a domain literal keeps its brackets), or
    /// `None` for a bare local part and for the null address `<>`.
    pub domain: Option<String>,
}

impl Address {
    /// An address from its parts.
    pub fn new(local: impl Into<String>, domain: Option<String>) -> Address {
        Address {
            local: local.into(),
            domain,
        }
    }

    /// The null address `<>` (the sender of bounces).
    pub fn null() -> Address {
        Address::default()
    }

    /// True for the null address.
    pub fn is_null(&self) -> bool {
        self.local.is_empty() && self.domain.is_none()
    }

    /// Splits an internal-form address at its last `@`, as Postfix does.
    /// No quoting is interpreted; the text is taken as it is.
    pub fn from_internal(addr: &str) -> Address {
        match addr.rfind('@') {
            Some(at) => Address {
                local: addr.get(..at).unwrap_or_default().to_string(),
                domain: Some(addr.get(at + 1..).unwrap_or_default().to_string()),
            },
            None => Address {
                local: addr.to_string(),
                domain: None,
            },
        }
    }

    /// The internal form `local@domain`, unquoted.
    pub fn to_internal(&self) -> String {
        match &self.domain {
            Some(d) => format!("{}@{}", self.local, d),
            None => self.local.clone(),
        }
    }

    /// The external form, with the local part quoted where RFC 5322 needs
    /// it. The null address is the empty string.
    pub fn to_external(&self) -> String {
        if self.is_null() {
            return String::new();
        }
        let local = quote_local(&self.local);
        match &self.domain {
            Some(d) => format!("{local}@{d}"),
            None => local,
        }
    }

    /// The canonical key for table lookups: external form (local part
    /// quoted where needed, as postmap stores quoted keys and Postfix 3.5
    /// and later query tables), lowercased.
    pub fn lookup_key(&self) -> String {
        quote_822_local(&self.to_internal()).to_lowercase()
    }

    /// The same address with the domain lowercased.
    pub fn with_folded_domain(&self) -> Address {
        Address {
            local: self.local.clone(),
            domain: self.domain.as_deref().map(fold_domain),
        }
    }

    /// What routing syntax the local part still contains.
    pub fn routing(&self) -> Routing {
        Routing::of(&self.local)
    }
}

impl fmt::Display for Address {
    /// Writes the external form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_external())
    }
}

/// Lowercases a domain name for comparison and lookup.
pub fn fold_domain(domain: &str) -> String {
    domain.to_lowercase()
}

/// Routing operators found in a local part. Postfix's relay checks treat
/// an address whose local part contains any of these as an attempt to
/// relay through this host (`user@remote@local`, `user%remote@local`,
/// `remote!user@local`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Routing {
    /// The local part contains `@` (it was quoted: `"user@remote"@local`).
    pub at: bool,
    /// The local part contains `%` (the "percent hack").
    pub percent: bool,
    /// The local part contains `!` (a UUCP bang path).
    pub bang: bool,
}

impl Routing {
    /// Scans a local part (internal form).
    pub fn of(local: &str) -> Routing {
        Routing {
            at: local.contains('@'),
            percent: local.contains('%'),
            bang: local.contains('!'),
        }
    }

    /// True when any routing operator is present.
    pub fn any(&self) -> bool {
        self.at || self.percent || self.bang
    }
}

/// Rewrites a UUCP bang path without a domain (`host!user`, also
/// `host!relay!user`) as `user@host` (`relay!user@host`), the way Postfix
/// does with swap_bangpath = yes. `None` when there is nothing to rewrite:
/// the address has an `@`, no `!`, or an empty part around the first `!`.
///
/// ```
/// assert_eq!(address::swap_bangpath("hub!joe").as_deref(), Some("joe@hub"));
/// assert_eq!(address::swap_bangpath("joe@x"), None);
/// ```
pub fn swap_bangpath(addr: &str) -> Option<String> {
    if addr.contains('@') {
        return None;
    }
    let (host, rest) = addr.split_once('!')?;
    if host.is_empty() || rest.is_empty() {
        return None;
    }
    Some(format!("{rest}@{host}"))
}

/// Splits a local part at its rightmost `%` into user and domain
/// (`user%remote` gives `user`, `remote`), the "percent hack" that Postfix
/// applies with allow_percent_hack = yes. `None` without a usable `%`.
///
/// ```
/// assert_eq!(address::percent_hack("a%b%c"), Some(("a%b", "c")));
/// ```
pub fn percent_hack(local: &str) -> Option<(&str, &str)> {
    let (user, domain) = local.rsplit_once('%')?;
    (!user.is_empty() && !domain.is_empty()).then_some((user, domain))
}

/// The kind of construct left open by malformed input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Construct {
    /// A `"quoted string"`.
    QuotedString,
    /// A `(comment)`.
    Comment,
    /// A `[domain literal]`.
    DomainLiteral,
    /// An `<angle address>`.
    AngleAddress,
}

impl fmt::Display for Construct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Construct::QuotedString => "quoted string",
            Construct::Comment => "comment",
            Construct::DomainLiteral => "domain literal",
            Construct::AngleAddress => "angle-bracket address",
        })
    }
}

/// Why an address or address list was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input is longer than the limit.
    TooLong {
        /// Input length in bytes.
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// An address list holds more addresses than the limit.
    TooManyAddresses {
        /// The limit.
        limit: usize,
    },
    /// A control character (NUL, DEL, ...) at this byte offset.
    ControlCharacter {
        /// Byte offset in the input.
        offset: usize,
    },
    /// A quoted string, comment, literal or `<` was not closed.
    Unterminated {
        /// What was left open.
        construct: Construct,
        /// Byte offset where it started.
        offset: usize,
    },
    /// A character that cannot appear here.
    UnexpectedCharacter {
        /// The character.
        ch: char,
        /// Byte offset in the input.
        offset: usize,
    },
    /// Comments nested deeper than the limit.
    NestingTooDeep {
        /// The limit.
        limit: usize,
    },
    /// `user@` with nothing after the `@`.
    EmptyDomain,
    /// `@domain` with no local part.
    EmptyLocalPart,
    /// A domain name with characters that no host name has.
    BadDomain {
        /// The domain, as written.
        domain: String,
    },
    /// A malformed source route (`@a,@b:user@c`).
    BadSourceRoute,
    /// Text after the address (`<a@b> junk`), or several addresses where
    /// one was expected.
    TrailingText {
        /// Byte offset of the extra text.
        offset: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooLong { length, limit } => {
                write!(f, "address text too long ({length} > {limit} bytes)")
            }
            Error::TooManyAddresses { limit } => {
                write!(f, "too many addresses (limit {limit})")
            }
            Error::ControlCharacter { offset } => {
                write!(f, "control character at offset {offset}")
            }
            Error::Unterminated { construct, offset } => {
                write!(f, "unterminated {construct} starting at offset {offset}")
            }
            Error::UnexpectedCharacter { ch, offset } => {
                write!(f, "unexpected {:?} at offset {offset}", ch)
            }
            Error::NestingTooDeep { limit } => {
                write!(f, "comments nested deeper than {limit}")
            }
            Error::EmptyDomain => f.write_str("empty domain after '@'"),
            Error::EmptyLocalPart => f.write_str("empty local part"),
            Error::BadDomain { domain } => write!(f, "malformed domain {domain:?}"),
            Error::BadSourceRoute => f.write_str("malformed source route"),
            Error::TrailingText { offset } => {
                write!(f, "unexpected text after address at offset {offset}")
            }
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_form_splits_at_last_at() {
        let a = Address::from_internal("user@remote@local");
        assert_eq!(a.local, "user@remote");
        assert_eq!(a.domain.as_deref(), Some("local"));
        assert_eq!(a.to_external(), "\"user@remote\"@local");
        assert_eq!(Address::from_internal("bare").domain, None);
    }

    #[test]
    fn routing_detection() {
        assert!(Routing::of("user%remote").percent);
        assert!(Routing::of("remote!user").bang);
        assert!(Routing::of("user@remote").at);
        assert!(!Routing::of("user.name+ext").any());
    }

    #[test]
    fn bang_and_percent_forms() {
        assert_eq!(swap_bangpath("a!b!c").as_deref(), Some("b!c@a"));
        assert_eq!(swap_bangpath("!c"), None);
        assert_eq!(swap_bangpath("a!"), None);
        assert_eq!(swap_bangpath("plain"), None);
        assert_eq!(percent_hack("user%remote"), Some(("user", "remote")));
        assert_eq!(percent_hack("user%"), None);
        assert_eq!(percent_hack("%remote"), None);
        assert_eq!(percent_hack("user"), None);
    }

    #[test]
    fn null_address() {
        assert!(Address::null().is_null());
        assert_eq!(Address::null().to_external(), "");
        assert_eq!(Address::null().to_string(), "");
    }

    #[test]
    fn lookup_key_folds_case() {
        let a = Address::new("John", Some("Example.ORG".into()));
        assert_eq!(a.lookup_key(), "john@example.org");
        let b = Address::new("John Doe", Some("X".into()));
        assert_eq!(b.lookup_key(), "\"john doe\"@x");
        assert_eq!(
            a.with_folded_domain().domain.as_deref(),
            Some("example.org")
        );
    }
}
