//! The master.cf arguments of a pipe service, as pipe(8) reads them:
//! `flags=FR user=nobody[:group] size=N eol=\r\n directory=/path
//! null_sender=X argv=/path/prog arg ...` (argv= last).

use std::fmt;

/// Flags from `flags=`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Flags {
    /// B: a blank line after the message.
    pub blank_line: bool,
    /// D: `Delivered-To: recipient`.
    pub delivered_to: bool,
    /// F: a `From sender date` line first.
    pub from_line: bool,
    /// O: `X-Original-To: original recipient`.
    pub original_to: bool,
    /// R: `Return-Path: <sender>`.
    pub return_path: bool,
    /// h: lowercase domains of ${recipient}, ${original_recipient}, ${domain}, ${nexthop}.
    pub fold_host: bool,
    /// q: quote local parts of ${sender}, ${recipient}, ${original_recipient}.
    pub quote: bool,
    /// u: lowercase local parts of ${recipient}, ${original_recipient}, ${user}, ${mailbox}.
    pub fold_user: bool,
    /// `.`: dot stuffing.
    pub dot_stuff: bool,
    /// `>`: `>From ` quoting.
    pub quote_from: bool,
}

/// The parsed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PipeArgs {
    /// flags=.
    pub flags: Flags,
    /// user= (name) and the optional group after `:`.
    pub user: Option<(String, Option<String>)>,
    /// size= (bytes), None = no limit.
    pub size_limit: Option<u64>,
    /// eol= with `\r`, `\n`, `\t`, `\\` decoded.
    pub eol: Vec<u8>,
    /// directory=.
    pub directory: Option<String>,
    /// null_sender= (default MAILER-DAEMON).
    pub null_sender: String,
    /// argv= and everything after it.
    pub argv: Vec<String>,
}

/// A bad argument list (fatal at start, as in Postfix).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Error {
    /// `name=value` with a name pipe does not know.
    UnknownAttribute(String),
    /// An argument without `=` before argv=.
    NotAnAttribute(String),
    /// A flag letter pipe does not know.
    UnknownFlag(char),
    /// size= not a number.
    BadSize(String),
    /// No argv=, or an empty one.
    MissingArgv,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownAttribute(a) => write!(f, "unknown attribute name: {a}"),
            Error::NotAnAttribute(a) => write!(f, "missing '=' after attribute name: {a}"),
            Error::UnknownFlag(c) => write!(f, "unknown flag: {c}"),
            Error::BadSize(s) => write!(f, "size= command-line attribute: bad value: {s}"),
            Error::MissingArgv => write!(f, "missing argv= command-line attribute"),
        }
    }
}

impl std::error::Error for Error {}

/// Parses the arguments after the master.cf command name.
///
/// # Errors
/// See [`Error`].
pub(crate) fn parse(args: &[String]) -> Result<PipeArgs, Error> {
    let mut out = PipeArgs {
        flags: Flags::default(),
        user: None,
        size_limit: None,
        eol: b"\n".to_vec(),
        directory: None,
        null_sender: "MAILER-DAEMON".into(),
        argv: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, value) = arg
            .split_once('=')
            .ok_or_else(|| Error::NotAnAttribute(arg.clone()))?;
        match name {
            "flags" => out.flags = parse_flags(value)?,
            "user" => {
                out.user = Some(match value.split_once(':') {
                    Some((u, g)) => (u.to_string(), Some(g.to_string())),
                    None => (value.to_string(), None),
                })
            }
            "size" => {
                let n: u64 = value.parse().map_err(|_| Error::BadSize(value.into()))?;
                out.size_limit = (n > 0).then_some(n);
            }
            "eol" => out.eol = decode_escapes(value),
            "directory" => out.directory = Some(value.to_string()),
            "null_sender" => out.null_sender = value.to_string(),
            "argv" => {
                out.argv.push(value.to_string());
                out.argv.extend(it.by_ref().cloned());
            }
            _ => return Err(Error::UnknownAttribute(name.to_string())),
        }
    }
    if out.argv.first().is_none_or(|p| p.is_empty()) {
        return Err(Error::MissingArgv);
    }
    Ok(out)
}

fn parse_flags(value: &str) -> Result<Flags, Error> {
    let mut f = Flags::default();
    for c in value.chars() {
        match c {
            'B' => f.blank_line = true,
            'D' => f.delivered_to = true,
            'F' => f.from_line = true,
            'O' => f.original_to = true,
            'R' => f.return_path = true,
            'h' => f.fold_host = true,
            'q' => f.quote = true,
            'u' => f.fold_user = true,
            '.' => f.dot_stuff = true,
            '>' => f.quote_from = true,
            // X (final delivery) and A (ignore ORCPT) change nothing here.
            'X' | 'A' => {}
            other => return Err(Error::UnknownFlag(other)),
        }
    }
    Ok(f)
}

fn decode_escapes(value: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('n') => out.push(b'\n'),
            Some('r') => out.push(b'\r'),
            Some('t') => out.push(b'\t'),
            Some(other) => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
            }
            None => out.push(b'\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn typical_line() {
        let a = parse(&v(
            "flags=FR. user=nobody:nogroup size=1000 eol=\\r\\n argv=/bin/prog -f ${sender} -- ${recipient}",
        ))
        .unwrap();
        assert!(a.flags.from_line && a.flags.return_path && a.flags.dot_stuff);
        assert!(!a.flags.delivered_to);
        assert_eq!(a.user, Some(("nobody".into(), Some("nogroup".into()))));
        assert_eq!(a.size_limit, Some(1000));
        assert_eq!(a.eol, b"\r\n");
        assert_eq!(a.argv, v("/bin/prog -f ${sender} -- ${recipient}"));
    }

    #[test]
    fn errors() {
        assert_eq!(parse(&v("user=x")), Err(Error::MissingArgv));
        assert_eq!(parse(&v("flags=Z argv=/x")), Err(Error::UnknownFlag('Z')));
        assert_eq!(
            parse(&v("colour=red argv=/x")),
            Err(Error::UnknownAttribute("colour".into()))
        );
        assert!(matches!(
            parse(&v("bare argv=/x")),
            Err(Error::NotAnAttribute(_))
        ));
        assert!(matches!(
            parse(&v("size=big argv=/x")),
            Err(Error::BadSize(_))
        ));
    }
}
