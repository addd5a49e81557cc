//! Lookup tables named `type:name`, as Postfix's dict layer opens them
//! wherever main.cf names a table (virtual_alias_maps, canonical_maps,
//! transport_maps, header_checks, ...).
//!
//! | type | name | behaviour |
//! |---|---|---|
//! | `hash` | a text file | looks up the indexed file *name*`.db` built by postmap ([`hash::build`]); reopened when it is replaced |
//! | `texthash` | a text file | the same text format, read into memory at open |
//! | `regexp` | a file of rules | regexp_table(5): `/pattern/flags result`, `!/pattern/`, `if`/`endif`, `$1` |
//! | `pcre` | a file of rules | pcre_table(5) syntax on the same engine (see [`regexp`]) |
//! | `cidr` | a file of rules | cidr_table(5): `network/prefix result`, `!network/prefix`, `if`/`endif`; IPv4 and IPv6 |
//! | `inline` | `{ k=v, { k = v w } }` | the entries written in the name itself |
//! | `static` | a value or `{value}` | every key finds the value |
//! | `unix` | `passwd.byname`, `group.byname` | the system's account database |
//! | `proxy` | `type:name` | looked up by proxymap(8) ([`proxy`]) |
//! | `pgsql`, `mysql`, `ldap` | a configuration file | always through proxymap, which holds the database connections |
//!
//! Text sources are `key whitespace value` lines with `#` comments and
//! continuation lines that start with whitespace ([`text`]). Keys are
//! lowercased when the table is built and when it is queried, unless
//! [`Flags::fold_case`] is off.
//!
//! [`Maps`] opens a main.cf list of tables and searches them in order.
//! [`command`] holds what postmap and postalias do with the tables named on
//! their command line (query, list, delete, index ownership).
//! [`search`] implements Postfix's search order for addresses
//! (`user+ext@domain`, `user@domain`, `user+ext`, `user`, `@domain`) and
//! the propagation of unmatched extensions.
//!
//! ```
//! let t = tables::open("inline:{ alice=a@example.com, { bob = b@example.com } }",
//!                      tables::Flags::default()).unwrap();
//! assert_eq!(t.lookup("Alice").unwrap().as_deref(), Some("a@example.com"));
//! assert_eq!(t.lookup("carol").unwrap(), None);
//! ```
//!
//! # Diagnostics
//!
//! Opening fails with a typed [`Error`] naming the table, or the file and
//! line of a syntax error. Lines of hash:/texthash: sources that Postfix
//! only warns about (no value, duplicate keys) are skipped and reported
//! through [`Table::warnings`]; the caller logs them. Errors on lookup are
//! I/O errors on an index file, or [`Error::Temporary`] from a table that
//! proxymap looks up (a database that is down): the caller treats every
//! lookup error as a temporary failure (defer, 451), as Postfix does, never
//! as "not found" ([`Error::is_temporary`]).

pub mod acl;
mod cidr;
pub mod command;
pub mod domains;
pub mod hash;
pub mod hash_at;
mod ident;
mod inline;
mod pcre;
pub mod proxy;
pub mod regexp;
pub mod search;
pub mod text;
mod unix;

use std::fmt;
use std::path::{Path, PathBuf};

use ident::FileIdent;
pub use search::{AddressSearch, Found, find_address, map_address, search_keys};
pub use text::{Duplicates, ParseOptions};

/// Longest key accepted by [`Table::lookup`] (bytes).
pub const MAX_KEY_LENGTH: usize = 1 << 20;

/// How a table is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags {
    /// Lowercase keys before lookup, and in texthash:/inline: entries
    /// (Postfix's DICT_FLAG_FOLD_FIX, on by default). Pattern tables ignore
    /// it: their own `i` flag decides.
    pub fold_case: bool,
}

impl Default for Flags {
    fn default() -> Self {
        Flags { fold_case: true }
    }
}

/// An open table.
#[derive(Debug)]
pub struct Table {
    spec: String,
    type_name: String,
    backend: Backend,
    flags: Flags,
    warnings: Vec<Warning>,
    /// The file read at open (texthash, regexp, pcre, cidr) and its identity.
    source: Option<(PathBuf, Option<FileIdent>)>,
}

#[derive(Debug)]
enum Backend {
    Hash(hash::HashTable),
    Text(text::TextTable),
    Regexp(regexp::RegexpTable),
    Cidr(cidr::CidrTable),
    Inline(std::collections::HashMap<String, String>),
    Static(String),
    Unix(unix::UnixTable),
    Proxy(proxy::ProxyTable),
}

/// Opens a table from its `type:name` specification.
///
/// # Errors
///
/// [`Error::BadSpec`] without a `type:` prefix, [`Error::UnknownType`],
/// [`Error::Io`] when a file is missing or unreadable (for hash:, the
/// `.db` file), [`Error::Syntax`] with file and line for malformed rules,
/// [`Error::Inline`] for a malformed inline: or static: name.
pub fn open(spec: &str, flags: Flags) -> Result<Table, Error> {
    let spec = spec.trim();
    let (type_name, name) = split_spec(spec)?;
    let mut warnings = Vec::new();
    // Taken before the file is read: a change during the read shows later.
    let source = match type_name {
        "texthash" | "regexp" | "pcre" | "cidr" => {
            Some((PathBuf::from(name), FileIdent::of(Path::new(name)).ok()))
        }
        _ => None,
    };
    let backend = match type_name {
        // btree: and lmdb: name the same indexed table (name.db, rebuilt
        // by our postmap), so a Postfix main.cf that says them works.
        "hash" | "btree" | "lmdb" => {
            let db = hash::db_path(Path::new(name));
            let table = hash::HashTable::open(&db)?;
            if ident::is_older(&db, Path::new(name)) {
                warnings.push(Warning::new(
                    &db,
                    0,
                    WarningKind::IndexOlderThanSource {
                        source: PathBuf::from(name),
                    },
                ));
            }
            Backend::Hash(table)
        }
        "texthash" => Backend::Text(text::TextTable::open(
            &text::name_path(name),
            flags.fold_case,
            &mut warnings,
        )?),
        "regexp" => Backend::Regexp(regexp::RegexpTable::open(
            Path::new(name),
            regexp::Dialect::Regexp,
            &mut warnings,
        )?),
        "pcre" => Backend::Regexp(regexp::RegexpTable::open(
            Path::new(name),
            regexp::Dialect::Pcre,
            &mut warnings,
        )?),
        "cidr" => Backend::Cidr(cidr::CidrTable::open(Path::new(name))?),
        "inline" => Backend::Inline(inline::parse_inline(spec, name, flags.fold_case)?),
        "static" => Backend::Static(inline::parse_static(spec, name)?),
        "unix" => Backend::Unix(unix::UnixTable::open(spec, name)?),
        "proxy" => {
            let inner = proxy::strip_proxy(name);
            split_spec(inner)?;
            Backend::Proxy(proxy::ProxyTable::open(inner, true, flags.fold_case)?)
        }
        t if proxy::DATABASE_TYPES.contains(&t) => {
            Backend::Proxy(proxy::ProxyTable::open(spec, false, flags.fold_case)?)
        }
        _ => {
            return Err(Error::UnknownType {
                spec: spec.to_string(),
                type_name: type_name.to_string(),
            });
        }
    };
    Ok(Table {
        spec: spec.to_string(),
        type_name: type_name.to_string(),
        backend,
        flags,
        warnings,
        source,
    })
}

/// Splits a main.cf table list (`hash:/a, inline:{ k=v, x=y } regexp:/b`)
/// at commas and whitespace outside braces, as Postfix does.
///
/// ```
/// assert_eq!(
///     tables::split_list("hash:/a, inline:{ k=v, x=y }\tstatic:{a b}"),
///     ["hash:/a", "inline:{ k=v, x=y }", "static:{a b}"]
/// );
/// ```
pub fn split_list(list: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start: Option<usize> = None;
    for (i, c) in list.char_indices() {
        let separator = depth == 0 && (c == ',' || c.is_whitespace());
        match c {
            '{' => depth = depth.saturating_add(1),
            '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        match (separator, start) {
            (true, Some(b)) => {
                out.extend(list.get(b..i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(b) = start {
        out.extend(list.get(b..));
    }
    out
}

/// A list of tables searched in order, as a parameter such as
/// virtual_alias_maps names them (Postfix's maps). It dereferences to a
/// slice of [`Table`], which the [`search`] functions take.
#[derive(Debug, Default)]
pub struct Maps {
    tables: Vec<Table>,
}

impl Maps {
    /// Opens every table in a main.cf list ([`split_list`]). An empty list
    /// gives an empty `Maps`, which finds nothing.
    ///
    /// # Errors
    ///
    /// The first error from [`open`].
    pub fn open(list: &str, flags: Flags) -> Result<Maps, Error> {
        let tables = split_list(list)
            .into_iter()
            .map(|spec| open(spec, flags))
            .collect::<Result<_, _>>()?;
        Ok(Maps { tables })
    }

    /// The value for `key` from the first table that has it.
    ///
    /// # Errors
    ///
    /// As [`Table::lookup`]; a table that fails stops the search, as in
    /// Postfix, so that a later table cannot answer in its place.
    pub fn lookup(&self, key: &str) -> Result<Option<String>, Error> {
        for t in &self.tables {
            if let Some(v) = t.lookup(key)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// True when any table's file changed ([`Table::changed`]).
    pub fn changed(&self) -> bool {
        self.tables.iter().any(Table::changed)
    }

    /// Every table's open-time warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Warning> {
        self.tables.iter().flat_map(|t| t.warnings())
    }
}

impl std::ops::Deref for Maps {
    type Target = [Table];

    fn deref(&self) -> &[Table] {
        &self.tables
    }
}

/// Splits `type:name`.
///
/// # Errors
///
/// [`Error::BadSpec`] when there is no `:` or either side is empty.
pub fn split_spec(spec: &str) -> Result<(&str, &str), Error> {
    match spec.split_once(':') {
        Some((t, n)) if !t.is_empty() && !n.is_empty() => Ok((t, n)),
        _ => Err(Error::BadSpec {
            spec: spec.to_string(),
        }),
    }
}

impl Table {
    /// The `type:name` this table was opened from.
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// The table type (`hash`, `regexp`, ...).
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// True for regexp:, pcre: and cidr: tables, which Postfix queries
    /// with the whole key only (no `user@domain` / `@domain` break-up).
    pub fn is_pattern(&self) -> bool {
        match &self.backend {
            Backend::Regexp(_) | Backend::Cidr(_) => true,
            Backend::Proxy(p) => p.is_pattern(),
            _ => false,
        }
    }

    /// Warnings found while opening (skipped lines, duplicate keys), for the
    /// caller to log.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Looks `key` up. For hash: tables the index is checked for
    /// replacement at most once a second and reopened when it changed.
    ///
    /// # Errors
    ///
    /// [`Error::KeyTooLong`] past [`MAX_KEY_LENGTH`]; [`Error::Io`] when an
    /// index file cannot be read (a temporary failure for the caller).
    pub fn lookup(&self, key: &str) -> Result<Option<String>, Error> {
        if key.len() > MAX_KEY_LENGTH {
            return Err(Error::KeyTooLong {
                length: key.len(),
                limit: MAX_KEY_LENGTH,
            });
        }
        let folded;
        let fixed_key = if self.flags.fold_case && !self.is_pattern() {
            folded = key.to_lowercase();
            folded.as_str()
        } else {
            key
        };
        match &self.backend {
            Backend::Hash(h) => h.lookup(fixed_key),
            Backend::Text(t) => Ok(t.map.get(fixed_key).cloned()),
            Backend::Regexp(r) => Ok(r.lookup(key)),
            Backend::Cidr(c) => Ok(c.lookup(key)),
            Backend::Inline(m) => Ok(m.get(fixed_key).cloned()),
            Backend::Static(v) => Ok(Some(v.clone())),
            Backend::Unix(u) => u.lookup(key),
            Backend::Proxy(p) => p.lookup(fixed_key),
        }
    }

    /// True when the file that a texthash:, regexp: or pcre: table was
    /// read from has been changed or removed since open (Postfix's
    /// dict_changed_name): a daemon should finish its request and exit so
    /// that master starts it with the new table. hash: tables reopen their
    /// index by themselves and always answer false, as do tables without a
    /// file.
    pub fn changed(&self) -> bool {
        match &self.source {
            Some((path, before)) => FileIdent::of(path).ok() != *before,
            None => false,
        }
    }

    /// Reopens a hash: index now if its file was replaced (new inode,
    /// size or modification time). Returns true when it was reopened.
    /// Other types are fixed at open and return false.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the new file cannot be opened; the table keeps
    /// using the old one.
    pub fn refresh_if_changed(&self) -> Result<bool, Error> {
        match &self.backend {
            Backend::Hash(h) => h.refresh_if_changed(),
            _ => Ok(false),
        }
    }
}

/// Something wrong in a table source that Postfix skips with a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The source file.
    pub path: PathBuf,
    /// 1-based line number, or 0 when the warning is about the whole file.
    pub line: usize,
    /// What is wrong.
    pub kind: WarningKind,
}

impl Warning {
    pub(crate) fn new(path: &Path, line: usize, kind: WarningKind) -> Warning {
        Warning {
            path: path.to_path_buf(),
            line,
            kind,
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            return write!(f, "{}: {}", self.path.display(), self.kind);
        }
        write!(
            f,
            "{}, line {}: {}",
            self.path.display(),
            self.line,
            self.kind
        )
    }
}

/// The kinds of [`Warning`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WarningKind {
    /// A line without a value; skipped.
    ExpectedKeyValue,
    /// A key ending in `:` (an aliases file given to postmap).
    AliasFormat,
    /// A key seen before; the first entry is kept.
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// A continuation line with no line before it; skipped.
    LeadingWhitespace,
    /// A `"` without its partner in the key; the line is skipped.
    UnbalancedQuote,
    /// A hash: index is older than its source: postmap was not run after
    /// the last edit.
    IndexOlderThanSource {
        /// The source file.
        source: PathBuf,
    },
    /// A regexp: or pcre: rule that does not parse or compile; the rest of
    /// the table is used, as in Postfix.
    SkippedRule {
        /// What is wrong with it.
        kind: SyntaxError,
    },
}

impl fmt::Display for WarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WarningKind::ExpectedKeyValue => f.write_str("expected format: key whitespace value"),
            WarningKind::AliasFormat => {
                f.write_str("record is in \"key: value\" format; is this an alias file?")
            }
            WarningKind::DuplicateKey { key } => write!(f, "duplicate entry: \"{key}\""),
            WarningKind::IndexOlderThanSource { source } => {
                write!(f, "database is older than source file {}", source.display())
            }
            WarningKind::UnbalancedQuote => {
                f.write_str("unbalanced '\"' in key -- ignoring this line")
            }
            WarningKind::LeadingWhitespace => {
                f.write_str("logical line must not start with whitespace")
            }
            WarningKind::SkippedRule { kind } => write!(f, "{kind}: skipping this rule"),
        }
    }
}

/// Errors from opening, building or querying tables.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The specification has no `type:` prefix.
    BadSpec {
        /// What was given.
        spec: String,
    },
    /// The type is not one this library knows.
    UnknownType {
        /// The whole specification.
        spec: String,
        /// The type part.
        type_name: String,
    },
    /// A file could not be opened, read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A malformed line in a table file.
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        kind: SyntaxError,
    },
    /// A malformed inline: or static: specification.
    Inline {
        /// The whole specification.
        spec: String,
        /// What is wrong.
        kind: SyntaxError,
    },
    /// A table file is larger than the limit.
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// A lookup key is longer than [`MAX_KEY_LENGTH`].
    KeyTooLong {
        /// The key's length.
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// The table type cannot do this (for example, build a regexp: index).
    Unsupported {
        /// The table type.
        type_name: String,
        /// The operation.
        operation: &'static str,
    },
    /// postmap or postalias was asked to build, list or edit a table that
    /// is not hash:.
    NotHash {
        /// The whole specification.
        spec: String,
    },
    /// A new index could not be given to its source's owner.
    Chown {
        /// The index file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Keys could not be read from the input (postmap -q -, -d -).
    Input {
        /// The cause.
        source: std::io::Error,
    },
    /// Results could not be written to the output (postmap -q, -s).
    Output {
        /// The cause.
        source: std::io::Error,
    },
    /// A lookup failed for now (a database down, proxymap not reachable):
    /// the caller defers.
    Temporary {
        /// The table (`proxy:type:name` or `pgsql:name`).
        table: String,
        /// What went wrong.
        reason: String,
    },
    /// proxymap refused to open a table (not in proxy_read_maps, or a bad
    /// configuration file).
    Proxy {
        /// The table.
        table: String,
        /// proxymap's reason.
        reason: String,
    },
}

impl Error {
    /// True for a failure that may go away by itself (a database down):
    /// [`Error::Temporary`] and I/O errors.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Error::Temporary { .. } | Error::Io { .. })
    }
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn input(source: std::io::Error) -> Error {
        Error::Input { source }
    }

    pub(crate) fn output(source: std::io::Error) -> Error {
        Error::Output { source }
    }

    pub(crate) fn syntax(path: &Path, line: usize, kind: SyntaxError) -> Error {
        Error::Syntax {
            path: path.to_path_buf(),
            line,
            kind,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadSpec { spec } => {
                write!(f, "need dictionary_type:dictionary_name, got \"{spec}\"")
            }
            Error::UnknownType { spec, type_name } => {
                write!(f, "{spec}: unsupported dictionary type: {type_name}")
            }
            Error::Io { path, source } => write!(f, "{}: {}", path.display(), source),
            Error::Syntax { path, line, kind } => {
                write!(f, "{}, line {}: {}", path.display(), line, kind)
            }
            Error::Inline { spec, kind } => write!(f, "{spec}: {kind}"),
            Error::TooLarge { path, limit } => {
                write!(f, "{}: file larger than {} bytes", path.display(), limit)
            }
            Error::KeyTooLong { length, limit } => {
                write!(f, "lookup key too long ({length} > {limit} bytes)")
            }
            Error::Unsupported {
                type_name,
                operation,
            } => write!(f, "{type_name}: {operation} is not supported"),
            Error::NotHash { spec } => write!(
                f,
                "{spec}: building, listing and editing are supported for hash: tables only"
            ),
            Error::Chown { path, source } => write!(f, "chown {}: {source}", path.display()),
            Error::Input { source } | Error::Output { source } => write!(f, "{source}"),
            Error::Temporary { table, reason } => {
                write!(f, "{table}: table lookup failed: {reason}")
            }
            Error::Proxy { table, reason } => write!(f, "{table}: {reason}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. }
            | Error::Chown { source, .. }
            | Error::Input { source }
            | Error::Output { source } => Some(source),
            _ => None,
        }
    }
}

/// What is wrong with a table line or specification.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyntaxError {
    /// A logical line longer than the limit.
    LineTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// A line that should start with a pattern does not.
    ExpectedPattern,
    /// The pattern's closing delimiter is missing.
    NoClosingDelimiter {
        /// The delimiter.
        delimiter: char,
    },
    /// A pattern flag this table type does not know.
    UnknownFlag {
        /// The flag.
        flag: char,
    },
    /// The regular expression does not compile.
    Regex {
        /// The engine's message.
        message: String,
    },
    /// A `$` in a result that is not `$n`, `${n}`, `$(n)` or `$$`.
    BadSubstitution {
        /// The offending text.
        text: String,
    },
    /// `$n` names a group the pattern does not have.
    GroupOutOfRange {
        /// The group number.
        group: usize,
        /// Groups in the pattern.
        groups: usize,
    },
    /// `$n` in the result of a `!/pattern/` rule.
    SubstitutionInNegatedRule,
    /// Text after `if /pattern/` or `endif`.
    ExtraText,
    /// `endif` without `if`.
    EndifWithoutIf,
    /// `if` without `endif` at the end of the file (the line of the `if`).
    MissingEndif,
    /// An inline: element that is not `key=value`.
    ExpectedKeyValue {
        /// The element.
        element: String,
    },
    /// Unbalanced `{` `}` in an inline: or static: specification.
    UnbalancedBraces,
    /// A unix: map other than passwd.byname and group.byname.
    UnknownUnixMap,
    /// A cidr: pattern that is not `address[/prefix]`.
    BadAddressPattern {
        /// The pattern.
        text: String,
    },
    /// A cidr: network with bits set past its prefix length.
    NonNullHostBits {
        /// The pattern.
        text: String,
        /// The network meant, probably.
        suggestion: String,
    },
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyntaxError::LineTooLong { limit } => write!(f, "line longer than {limit} bytes"),
            SyntaxError::ExpectedPattern => f.write_str("expected /pattern/ or if/endif"),
            SyntaxError::NoClosingDelimiter { delimiter } => {
                write!(f, "no closing regexp delimiter \"{delimiter}\"")
            }
            SyntaxError::UnknownFlag { flag } => write!(f, "unknown regexp option \"{flag}\""),
            SyntaxError::Regex { message } => write!(f, "bad regular expression: {message}"),
            SyntaxError::BadSubstitution { text } => {
                write!(f, "bad $number substitution \"{text}\"")
            }
            SyntaxError::GroupOutOfRange { group, groups } => write!(
                f,
                "out of range replacement index \"{group}\" (pattern has {groups} groups)"
            ),
            SyntaxError::SubstitutionInNegatedRule => {
                f.write_str("$number found in negative match replacement text")
            }
            SyntaxError::ExtraText => f.write_str("unexpected text after if/endif"),
            SyntaxError::EndifWithoutIf => f.write_str("ignoring ENDIF without matching IF"),
            SyntaxError::MissingEndif => f.write_str("IF has no matching ENDIF"),
            SyntaxError::ExpectedKeyValue { element } => {
                write!(f, "expected key=value, got \"{element}\"")
            }
            SyntaxError::UnbalancedBraces => f.write_str("unbalanced { }"),
            SyntaxError::UnknownUnixMap => {
                f.write_str("unknown unix: table (passwd.byname or group.byname)")
            }
            SyntaxError::BadAddressPattern { text } => {
                write!(f, "bad address pattern: \"{text}\"")
            }
            SyntaxError::NonNullHostBits { text, suggestion } => write!(
                f,
                "non-null host address bits in \"{text}\", perhaps you should use \"{suggestion}\" instead"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_tables_open_by_spec() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("clients.cidr");
        std::fs::write(&src, "192.0.2.0/24 REJECT\n2001:db8::/32 OK\n").unwrap();
        let spec = format!("cidr:{}", src.display());
        let t = open(&spec, Flags::default()).unwrap();
        assert_eq!(t.type_name(), "cidr");
        assert!(t.is_pattern(), "the whole key only");
        assert_eq!(t.lookup("192.0.2.77").unwrap().as_deref(), Some("REJECT"));
        assert_eq!(t.lookup("2001:DB8::1").unwrap().as_deref(), Some("OK"));
        assert_eq!(t.lookup("192.0.3.1").unwrap(), None);
        let maps = Maps::open(&format!("inline:{{ x=y }}, {spec}"), Flags::default()).unwrap();
        assert_eq!(maps.lookup("192.0.2.1").unwrap().as_deref(), Some("REJECT"));
        std::fs::write(&src, "192.0.2.1/24 REJECT\n").unwrap();
        let e = open(&spec, Flags::default()).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        assert!(e.to_string().contains("192.0.2.0/24"), "{e}");
    }

    #[test]
    fn unknown_type_and_bad_spec() {
        let e = open("nosuch:/x", Flags::default()).unwrap_err();
        assert!(matches!(e, Error::UnknownType { ref type_name, .. } if type_name == "nosuch"));
        assert_eq!(
            e.to_string(),
            "nosuch:/x: unsupported dictionary type: nosuch"
        );
        assert!(matches!(
            open("/etc/postfix/virtual", Flags::default()),
            Err(Error::BadSpec { .. })
        ));
        assert!(matches!(
            open("hash:", Flags::default()),
            Err(Error::BadSpec { .. })
        ));
    }

    #[test]
    fn missing_files_name_the_file() {
        let e = open("texthash:/nonexistent/x", Flags::default()).unwrap_err();
        assert!(e.to_string().starts_with("/nonexistent/x: "), "{e}");
        let e = open("hash:/nonexistent/x", Flags::default()).unwrap_err();
        assert!(e.to_string().starts_with("/nonexistent/x.db: "), "{e}");
    }

    #[test]
    fn static_answers_everything() {
        let t = open("static:{ some value }", Flags::default()).unwrap();
        assert_eq!(t.lookup("anything").unwrap().as_deref(), Some("some value"));
        let t = open("static:OK", Flags::default()).unwrap();
        assert_eq!(t.lookup("").unwrap().as_deref(), Some("OK"));
    }

    #[test]
    fn every_file_type_from_real_files() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("aliases-like");
        std::fs::write(&src, "Joe joe@example.com\nlist a@x,\n  b@y\nbroken\n").unwrap();
        let t = open(&format!("texthash:{}", src.display()), Flags::default()).unwrap();
        assert_eq!(t.type_name(), "texthash");
        assert_eq!(t.lookup("JOE").unwrap().as_deref(), Some("joe@example.com"));
        assert_eq!(t.lookup("list").unwrap().as_deref(), Some("a@x,  b@y"));
        assert_eq!(t.warnings().len(), 1);
        assert!(!t.is_pattern());
        assert!(!t.refresh_if_changed().unwrap());

        hash::build(&src, ParseOptions::default()).unwrap();
        let h = open(&format!("hash:{}", src.display()), Flags::default()).unwrap();
        assert_eq!(h.lookup("joe").unwrap(), t.lookup("joe").unwrap());

        let re = dir.path().join("header_checks");
        std::fs::write(&re, "/^Subject:.*(free money)/ REJECT $1\n").unwrap();
        for ty in ["regexp", "pcre"] {
            let t = open(&format!("{ty}:{}", re.display()), Flags::default()).unwrap();
            assert!(t.is_pattern());
            assert_eq!(
                t.lookup("Subject: FREE MONEY").unwrap().as_deref(),
                Some("REJECT FREE MONEY")
            );
        }
        std::fs::write(&re, "/ok/ x\n/bad( x\n").unwrap();
        // A bad rule is skipped with a warning, as in Postfix.
        let t = open(&format!("regexp:{}", re.display()), Flags::default()).unwrap();
        let w = t.warnings()[0].to_string();
        assert!(w.starts_with(&format!("{}, line 2: ", re.display())), "{w}");
        assert_eq!(t.lookup("ok").unwrap().as_deref(), Some("x"));
    }

    proptest::proptest! {
        #[test]
        fn random_text_tables_never_panic(
            text in "[a-zA-Z@#:.+ \t\n-]{0,200}",
            key in "\\PC{0,20}",
        ) {
            let dir = tempfile::tempdir().unwrap();
            let src = dir.path().join("t");
            std::fs::write(&src, &text).unwrap();
            let t = open(&format!("texthash:{}", src.display()), Flags::default()).unwrap();
            let _ = t.lookup(&key);
            hash::build(&src, ParseOptions::default()).unwrap();
            let h = open(&format!("hash:{}", src.display()), Flags::default()).unwrap();
            proptest::prop_assert_eq!(h.lookup(&key).unwrap(), t.lookup(&key).unwrap());
        }

        #[test]
        fn random_specs_never_panic(spec in "\\PC{0,40}", key in "\\PC{0,10}") {
            if let Ok(t) = open(&spec, Flags::default()) {
                let _ = t.lookup(&key);
            }
        }
    }

    #[test]
    fn tables_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Table>();
    }

    #[test]
    fn changed_files_and_stale_indexes_are_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let re = dir.path().join("re");
        std::fs::write(&re, "/a/ b\n").unwrap();
        let t = open(&format!("regexp:{}", re.display()), Flags::default()).unwrap();
        assert!(!t.changed());
        std::fs::write(dir.path().join("new"), "/a/ c\n").unwrap();
        std::fs::rename(dir.path().join("new"), &re).unwrap();
        assert!(t.changed());
        std::fs::remove_file(&re).unwrap();
        assert!(t.changed());
        assert!(!open("static:x", Flags::default()).unwrap().changed());

        let src = dir.path().join("map");
        std::fs::write(&src, "k v\n").unwrap();
        hash::build(&src, ParseOptions::default()).unwrap();
        let spec = format!("hash:{}", src.display());
        assert!(open(&spec, Flags::default()).unwrap().warnings().is_empty());
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&src)
            .unwrap()
            .set_modified(later)
            .unwrap();
        let t = open(&spec, Flags::default()).unwrap();
        assert_eq!(t.warnings().len(), 1);
        assert_eq!(
            t.warnings()[0].to_string(),
            format!(
                "{}.db: database is older than source file {}",
                src.display(),
                src.display()
            )
        );
    }

    #[test]
    fn maps_search_in_order() {
        let m = Maps::open("inline:{a=1}, inline:{ a=2, b=3 }", Flags::default()).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m.lookup("A").unwrap().as_deref(), Some("1"));
        assert_eq!(m.lookup("b").unwrap().as_deref(), Some("3"));
        assert_eq!(m.lookup("c").unwrap(), None);
        assert!(!m.changed());
        assert!(Maps::open("", Flags::default()).unwrap().is_empty());
        assert!(Maps::open("inline:{a=1} bogus:x", Flags::default()).is_err());
        assert_eq!(split_list(" , a,,b "), ["a", "b"]);
        assert_eq!(split_list("static:{x, y} }{ z"), ["static:{x, y}", "}{ z"]);
    }

    #[test]
    fn oversized_keys_are_refused() {
        let t = open("static:x", Flags::default()).unwrap();
        let key = "k".repeat(MAX_KEY_LENGTH + 1);
        assert!(matches!(t.lookup(&key), Err(Error::KeyTooLong { .. })));
    }
}
