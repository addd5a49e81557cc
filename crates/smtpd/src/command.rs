//! SMTP command parsing: one command line (without CRLF) in, a typed
//! [`Command`] or a [`CommandError`] carrying Postfix's reply out.
//!
//! Verbs are case-insensitive. `MAIL FROM:` and `RCPT TO:` accept a space
//! before the address, as Postfix does; the address goes through
//! [`address::parse_path`]. ESMTP parameters follow RFC 1870 (SIZE), RFC
//! 6152 / 3030 (BODY), RFC 6531 (SMTPUTF8), RFC 3461 (RET, ENVID, NOTIFY,
//! ORCPT; xtext decoded) and RFC 4954 (AUTH=). Nothing here panics on any
//! input.

use crate::reply::Reply;
use maillog::printable;

/// The largest BDAT chunk size or SIZE value accepted as a number.
pub const MAX_NUMBER: u64 = u64::MAX / 2;

/// BODY= values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// `7BIT`.
    SevenBit,
    /// `8BITMIME`.
    EightBitMime,
    /// `BINARYMIME` (needs BDAT).
    BinaryMime,
}

/// RET= values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    /// `FULL`: return the whole message in a bounce.
    Full,
    /// `HDRS`: headers only.
    Hdrs,
}

/// NOTIFY= values (RFC 3461): `NEVER`, or any of the three flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Notify {
    /// NEVER.
    pub never: bool,
    /// SUCCESS.
    pub success: bool,
    /// FAILURE.
    pub failure: bool,
    /// DELAY.
    pub delay: bool,
}

/// Parameters of MAIL FROM.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailParams {
    /// SIZE=n.
    pub size: Option<u64>,
    /// BODY=.
    pub body: Option<Body>,
    /// SMTPUTF8 was given.
    pub smtputf8: bool,
    /// RET=.
    pub ret: Option<Ret>,
    /// ENVID=, xtext-decoded.
    pub envid: Option<String>,
    /// AUTH=, xtext-decoded (`<>` for none).
    pub auth: Option<String>,
}

/// Parameters of RCPT TO.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RcptParams {
    /// NOTIFY=.
    pub notify: Option<Notify>,
    /// ORCPT=: address type and xtext-decoded address.
    pub orcpt: Option<(String, String)>,
}

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// HELO hostname.
    Helo(String),
    /// EHLO hostname.
    Ehlo(String),
    /// MAIL FROM:<path> [params].
    Mail {
        /// The sender.
        path: address::Path,
        /// ESMTP parameters.
        params: MailParams,
    },
    /// RCPT TO:<path> [params].
    Rcpt {
        /// The recipient.
        path: address::Path,
        /// ESMTP parameters.
        params: RcptParams,
    },
    /// DATA.
    Data,
    /// BDAT size [LAST].
    Bdat {
        /// The chunk size in bytes.
        size: u64,
        /// LAST was given.
        last: bool,
    },
    /// RSET.
    Rset,
    /// NOOP.
    Noop,
    /// QUIT.
    Quit,
    /// VRFY text.
    Vrfy(String),
    /// ETRN domain.
    Etrn(String),
    /// STARTTLS.
    StartTls,
    /// AUTH mechanism [initial-response].
    Auth {
        /// The mechanism, upper-cased.
        mechanism: String,
        /// The initial response (base64 text, or `=`).
        initial: Option<String>,
    },
}

/// The command verbs, for the session's command table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// HELO.
    Helo,
    /// EHLO.
    Ehlo,
    /// MAIL.
    Mail,
    /// RCPT.
    Rcpt,
    /// DATA.
    Data,
    /// BDAT.
    Bdat,
    /// RSET.
    Rset,
    /// NOOP.
    Noop,
    /// QUIT.
    Quit,
    /// VRFY.
    Vrfy,
    /// ETRN.
    Etrn,
    /// STARTTLS.
    StartTls,
    /// AUTH.
    Auth,
}

impl Verb {
    /// The verb as written on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Helo => "HELO",
            Verb::Ehlo => "EHLO",
            Verb::Mail => "MAIL",
            Verb::Rcpt => "RCPT",
            Verb::Data => "DATA",
            Verb::Bdat => "BDAT",
            Verb::Rset => "RSET",
            Verb::Noop => "NOOP",
            Verb::Quit => "QUIT",
            Verb::Vrfy => "VRFY",
            Verb::Etrn => "ETRN",
            Verb::StartTls => "STARTTLS",
            Verb::Auth => "AUTH",
        }
    }

    /// Looks a verb up, case-insensitively.
    pub fn from_name(word: &[u8]) -> Option<Verb> {
        const ALL: [Verb; 13] = [
            Verb::Helo,
            Verb::Ehlo,
            Verb::Mail,
            Verb::Rcpt,
            Verb::Data,
            Verb::Bdat,
            Verb::Rset,
            Verb::Noop,
            Verb::Quit,
            Verb::Vrfy,
            Verb::Etrn,
            Verb::StartTls,
            Verb::Auth,
        ];
        ALL.into_iter()
            .find(|v| v.name().as_bytes().eq_ignore_ascii_case(word))
    }
}

impl Command {
    /// The command's verb.
    pub fn verb(&self) -> Verb {
        match self {
            Command::Helo(_) => Verb::Helo,
            Command::Ehlo(_) => Verb::Ehlo,
            Command::Mail { .. } => Verb::Mail,
            Command::Rcpt { .. } => Verb::Rcpt,
            Command::Data => Verb::Data,
            Command::Bdat { .. } => Verb::Bdat,
            Command::Rset => Verb::Rset,
            Command::Noop => Verb::Noop,
            Command::Quit => Verb::Quit,
            Command::Vrfy(_) => Verb::Vrfy,
            Command::Etrn(_) => Verb::Etrn,
            Command::StartTls => Verb::StartTls,
            Command::Auth { .. } => Verb::Auth,
        }
    }
}

/// Why a command line was refused; [`CommandError::reply`] gives Postfix's
/// reply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// An empty line: `500 5.5.2 Error: bad syntax`.
    Empty,
    /// Not a known verb: `500 5.5.2 Error: command not recognized`.
    Unrecognized,
    /// Not UTF-8 or has control characters: `500 5.5.2 Error: bad syntax`.
    BadBytes,
    /// Wrong arguments for a known verb; the usage text (`Syntax: DATA`).
    Syntax(Verb),
    /// MAIL FROM address syntax: `501 5.1.7 Bad sender address syntax`.
    BadSender,
    /// RCPT TO address syntax: `501 5.1.3 Bad recipient address syntax`.
    BadRecipient,
    /// An ESMTP parameter value is malformed; the reply text.
    BadParameter(&'static str),
    /// An unknown ESMTP parameter: `555 5.5.4 Unsupported option: X`.
    Unsupported(String),
}

impl CommandError {
    /// Postfix's reply for this error.
    pub fn reply(&self) -> Reply {
        match self {
            CommandError::Empty | CommandError::BadBytes => {
                Reply::new(500, Some("5.5.2"), "Error: bad syntax")
            }
            CommandError::Unrecognized => {
                Reply::new(500, Some("5.5.2"), "Error: command not recognized")
            }
            CommandError::Syntax(v) => {
                let usage = match v {
                    Verb::Helo => "Syntax: HELO hostname",
                    Verb::Ehlo => "Syntax: EHLO hostname",
                    Verb::Mail => "Syntax: MAIL FROM:<address>",
                    Verb::Rcpt => "Syntax: RCPT TO:<address>",
                    Verb::Data => "Syntax: DATA",
                    Verb::Bdat => "Syntax: BDAT count [LAST]",
                    Verb::Rset => "Syntax: RSET",
                    Verb::Noop => "Syntax: NOOP",
                    Verb::Quit => "Syntax: QUIT",
                    Verb::Vrfy => "Syntax: VRFY address",
                    Verb::Etrn => "Syntax: ETRN domain",
                    Verb::StartTls => "Syntax: STARTTLS",
                    Verb::Auth => "Syntax: AUTH mechanism",
                };
                let code = if *v == Verb::Etrn { 500 } else { 501 };
                Reply::new(code, Some("5.5.4"), usage)
            }
            CommandError::BadSender => Reply::new(501, Some("5.1.7"), "Bad sender address syntax"),
            CommandError::BadRecipient => {
                Reply::new(501, Some("5.1.3"), "Bad recipient address syntax")
            }
            CommandError::BadParameter(text) => Reply::new(501, Some("5.5.4"), *text),
            CommandError::Unsupported(name) => Reply::new(
                555,
                Some("5.5.4"),
                format!("Unsupported option: {}", printable(name, 100)),
            ),
        }
    }
}

/// Parses one command line (without its CRLF).
///
/// # Errors
///
/// A [`CommandError`] whose [`CommandError::reply`] is the reply to send.
pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
    if line.iter().all(|b| *b == b' ' || *b == b'\t') {
        return Err(CommandError::Empty);
    }
    let (word, rest) = match line.iter().position(|&b| b == b' ' || b == b'\t') {
        Some(i) => (
            line.get(..i).unwrap_or(&[]),
            line.get(i + 1..).unwrap_or(&[]),
        ),
        None => (line, &[][..]),
    };
    let verb = Verb::from_name(word).ok_or(CommandError::Unrecognized)?;
    let rest = std::str::from_utf8(rest).map_err(|_| CommandError::BadBytes)?;
    if rest.chars().any(|c| c.is_control() && c != '\t') {
        return Err(CommandError::BadBytes);
    }
    let rest = rest.trim_matches([' ', '\t']);
    let args: Vec<&str> = rest.split([' ', '\t']).filter(|s| !s.is_empty()).collect();
    let syntax = || CommandError::Syntax(verb);
    match verb {
        Verb::Helo | Verb::Ehlo => {
            // Postfix takes the first word; extra words are tolerated.
            let host = args.first().ok_or_else(syntax)?.to_string();
            Ok(if verb == Verb::Helo {
                Command::Helo(host)
            } else {
                Command::Ehlo(host)
            })
        }
        Verb::Mail => {
            let (path, params) = split_path(rest, "FROM:").ok_or_else(syntax)?;
            let path = address::parse_path(path).map_err(|_| CommandError::BadSender)?;
            Ok(Command::Mail {
                path,
                params: mail_params(&params)?,
            })
        }
        Verb::Rcpt => {
            let (path, params) = split_path(rest, "TO:").ok_or_else(syntax)?;
            if path == "<>" {
                return Err(CommandError::BadRecipient);
            }
            let path = address::parse_path(path).map_err(|_| CommandError::BadRecipient)?;
            Ok(Command::Rcpt {
                path,
                params: rcpt_params(&params)?,
            })
        }
        Verb::Data | Verb::Rset | Verb::Noop | Verb::StartTls => {
            if !args.is_empty() {
                return Err(syntax());
            }
            Ok(match verb {
                Verb::Data => Command::Data,
                Verb::Rset => Command::Rset,
                Verb::Noop => Command::Noop,
                _ => Command::StartTls,
            })
        }
        Verb::Quit => Ok(Command::Quit),
        Verb::Bdat => match args.as_slice() {
            [n] | [n, _] => {
                let last = match args.get(1) {
                    Some(l) if l.eq_ignore_ascii_case("LAST") => true,
                    Some(_) => return Err(syntax()),
                    None => false,
                };
                let size = number(n).ok_or_else(syntax)?;
                Ok(Command::Bdat { size, last })
            }
            _ => Err(syntax()),
        },
        Verb::Vrfy => {
            if rest.is_empty() {
                return Err(syntax());
            }
            Ok(Command::Vrfy(rest.to_string()))
        }
        Verb::Etrn => match args.as_slice() {
            [d] => Ok(Command::Etrn(d.to_string())),
            _ => Err(syntax()),
        },
        Verb::Auth => match args.as_slice() {
            [m] => Ok(Command::Auth {
                mechanism: m.to_ascii_uppercase(),
                initial: None,
            }),
            [m, i] => Ok(Command::Auth {
                mechanism: m.to_ascii_uppercase(),
                initial: Some(i.to_string()),
            }),
            _ => Err(syntax()),
        },
    }
}

/// A decimal number of at most 18 digits.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|n| *n <= MAX_NUMBER)
}

/// Splits `FROM:<path> params` into the path and the parameter words.
fn split_path<'a>(rest: &'a str, keyword: &str) -> Option<(&'a str, Vec<&'a str>)> {
    let head = rest.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let after = rest.get(keyword.len()..)?.trim_start_matches([' ', '\t']);
    if after.is_empty() {
        return None;
    }
    let end = if after.starts_with('<') {
        // Up to the matching '>', honouring quotes and backslashes.
        let mut quoted = false;
        let mut escaped = false;
        let mut end = None;
        for (i, c) in after.char_indices() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = !quoted;
            } else if c == '>' && !quoted {
                end = Some(i + 1);
                break;
            }
        }
        end?
    } else {
        after.find([' ', '\t']).unwrap_or(after.len())
    };
    let path = after.get(..end)?;
    let params = after
        .get(end..)?
        .split([' ', '\t'])
        .filter(|s| !s.is_empty())
        .collect();
    Some((path, params))
}

/// Decodes RFC 3461 xtext (`+HH` escapes); None when malformed.
pub fn xtext_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'+' {
            let hex = s.get(i + 1..i + 3)?;
            if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else if (b'!'..=b'~').contains(&c) && c != b'=' {
            out.push(c);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

fn key_value(word: &str) -> (String, Option<&str>) {
    match word.split_once('=') {
        Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
        None => (word.to_ascii_uppercase(), None),
    }
}

fn mail_params(words: &[&str]) -> Result<MailParams, CommandError> {
    let mut p = MailParams::default();
    for w in words {
        let (key, value) = key_value(w);
        let bad = CommandError::BadParameter;
        match (key.as_str(), value) {
            ("SIZE", Some(v)) => {
                p.size = Some(number(v).ok_or(bad("Bad message size syntax"))?);
            }
            ("BODY", Some(v)) => {
                p.body = Some(match v.to_ascii_uppercase().as_str() {
                    "7BIT" => Body::SevenBit,
                    "8BITMIME" => Body::EightBitMime,
                    "BINARYMIME" => Body::BinaryMime,
                    _ => return Err(bad("Unsupported BODY parameter")),
                });
            }
            ("SMTPUTF8", None) => p.smtputf8 = true,
            ("RET", Some(v)) if p.ret.is_none() => {
                p.ret = Some(match v.to_ascii_uppercase().as_str() {
                    "FULL" => Ret::Full,
                    "HDRS" => Ret::Hdrs,
                    _ => return Err(bad("Bad RET parameter syntax")),
                });
            }
            ("RET", _) => return Err(bad("Bad RET parameter syntax")),
            ("ENVID", Some(v)) if p.envid.is_none() => {
                let d = xtext_decode(v)
                    .filter(|d| !d.is_empty() && d.len() <= 100)
                    .ok_or(bad("Bad ENVID parameter syntax"))?;
                p.envid = Some(d);
            }
            ("ENVID", _) => return Err(bad("Bad ENVID parameter syntax")),
            ("AUTH", Some(v)) => {
                let d = if v == "<>" {
                    Some(v.to_string())
                } else {
                    xtext_decode(v)
                };
                p.auth = Some(d.ok_or(bad("Bad AUTH parameter syntax"))?);
            }
            _ => return Err(CommandError::Unsupported(w.to_string())),
        }
    }
    Ok(p)
}

fn rcpt_params(words: &[&str]) -> Result<RcptParams, CommandError> {
    let mut p = RcptParams::default();
    for w in words {
        let (key, value) = key_value(w);
        match (key.as_str(), value) {
            ("NOTIFY", Some(v)) if p.notify.is_none() => {
                let mut n = Notify::default();
                for item in v.split(',') {
                    match item.to_ascii_uppercase().as_str() {
                        "NEVER" => n.never = true,
                        "SUCCESS" => n.success = true,
                        "FAILURE" => n.failure = true,
                        "DELAY" => n.delay = true,
                        _ => {
                            return Err(CommandError::BadParameter(
                                "Error: Bad NOTIFY parameter syntax",
                            ));
                        }
                    }
                }
                if n.never && (n.success || n.failure || n.delay) {
                    return Err(CommandError::BadParameter(
                        "Error: Bad NOTIFY parameter syntax",
                    ));
                }
                p.notify = Some(n);
            }
            ("NOTIFY", _) => {
                return Err(CommandError::BadParameter(
                    "Error: Bad NOTIFY parameter syntax",
                ));
            }
            ("ORCPT", Some(v)) if p.orcpt.is_none() => {
                let bad = CommandError::BadParameter("Error: Bad ORCPT parameter syntax");
                let (kind, addr) = v.split_once(';').ok_or(bad.clone())?;
                if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    return Err(bad);
                }
                let addr = xtext_decode(addr)
                    .filter(|a| !a.is_empty() && a.len() <= 500)
                    .ok_or(bad)?;
                p.orcpt = Some((kind.to_ascii_lowercase(), addr));
            }
            ("ORCPT", _) => {
                return Err(CommandError::BadParameter(
                    "Error: Bad ORCPT parameter syntax",
                ));
            }
            _ => return Err(CommandError::Unsupported(w.to_string())),
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reply(line: &str) -> String {
        parse(line.as_bytes())
            .map(|_| String::from("ok"))
            .unwrap_or_else(|e| e.reply().to_string())
    }

    #[test]
    fn simple_verbs() {
        assert_eq!(
            parse(b"ehlo client.example"),
            Ok(Command::Ehlo("client.example".into()))
        );
        assert_eq!(parse(b"HELO x"), Ok(Command::Helo("x".into())));
        assert_eq!(parse(b"DATA"), Ok(Command::Data));
        assert_eq!(parse(b"rset"), Ok(Command::Rset));
        assert_eq!(parse(b"QUIT"), Ok(Command::Quit));
        assert_eq!(parse(b"STARTTLS"), Ok(Command::StartTls));
        assert_eq!(
            parse(b"BDAT 100 LAST"),
            Ok(Command::Bdat {
                size: 100,
                last: true
            })
        );
        assert_eq!(
            parse(b"BDAT 0"),
            Ok(Command::Bdat {
                size: 0,
                last: false
            })
        );
        assert_eq!(
            parse(b"ETRN example.com"),
            Ok(Command::Etrn("example.com".into()))
        );
        assert_eq!(
            parse(b"AUTH plain AGEAYg=="),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AGEAYg==".into())
            })
        );
        assert_eq!(
            parse(b"VRFY postmaster"),
            Ok(Command::Vrfy("postmaster".into()))
        );
    }

    #[test]
    fn mail_and_rcpt() {
        let Ok(Command::Mail { path, params }) =
            parse(b"MAIL FROM: <a@b.example> SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=x+2By AUTH=<>")
        else {
            panic!("mail")
        };
        assert_eq!(path.address.to_internal(), "a@b.example");
        assert_eq!(params.size, Some(1000));
        assert_eq!(params.body, Some(Body::EightBitMime));
        assert!(params.smtputf8);
        assert_eq!(params.ret, Some(Ret::Hdrs));
        assert_eq!(params.envid.as_deref(), Some("x+y"));
        assert_eq!(params.auth.as_deref(), Some("<>"));
        let Ok(Command::Mail { path, .. }) = parse(b"mail from:<>") else {
            panic!("null")
        };
        assert!(path.address.is_null());
        let Ok(Command::Rcpt { path, params }) =
            parse(b"RCPT TO:<u@x> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;u+40x")
        else {
            panic!("rcpt")
        };
        assert_eq!(path.address.to_internal(), "u@x");
        assert_eq!(
            params.notify,
            Some(Notify {
                success: true,
                failure: true,
                ..Notify::default()
            })
        );
        assert_eq!(params.orcpt, Some(("rfc822".into(), "u@x".into())));
        let Ok(Command::Rcpt { path, .. }) = parse(b"RCPT TO:<\"a>b\"@x>") else {
            panic!("quoted")
        };
        assert_eq!(path.address.to_internal(), "a>b@x");
    }

    #[test]
    fn postfix_error_replies() {
        assert_eq!(reply(""), "500 5.5.2 Error: bad syntax\r\n");
        assert_eq!(
            reply("FOO bar"),
            "500 5.5.2 Error: command not recognized\r\n"
        );
        assert_eq!(
            reply("MAIL <a@b>"),
            "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
        );
        assert_eq!(reply("RCPT TO:"), "501 5.5.4 Syntax: RCPT TO:<address>\r\n");
        assert_eq!(
            reply("MAIL FROM:<a@>"),
            "501 5.1.7 Bad sender address syntax\r\n"
        );
        assert_eq!(
            reply("RCPT TO:<>"),
            "501 5.1.3 Bad recipient address syntax\r\n"
        );
        assert_eq!(
            reply("MAIL FROM:<a@b> FOO=1"),
            "555 5.5.4 Unsupported option: FOO=1\r\n"
        );
        assert_eq!(
            reply("MAIL FROM:<a@b> SIZE=x"),
            "501 5.5.4 Bad message size syntax\r\n"
        );
        assert_eq!(
            reply("RCPT TO:<a@b> NOTIFY=NEVER,DELAY"),
            "501 5.5.4 Error: Bad NOTIFY parameter syntax\r\n"
        );
        assert_eq!(reply("DATA x"), "501 5.5.4 Syntax: DATA\r\n");
        assert_eq!(reply("HELO"), "501 5.5.4 Syntax: HELO hostname\r\n");
        assert_eq!(reply("BDAT x"), "501 5.5.4 Syntax: BDAT count [LAST]\r\n");
        assert_eq!(reply("ETRN"), "500 5.5.4 Syntax: ETRN domain\r\n");
        assert_eq!(reply("EHLO c\r.test"), "500 5.5.2 Error: bad syntax\r\n");
    }

    #[test]
    fn xtext() {
        assert_eq!(xtext_decode("a+2Bb+3D"), Some("a+b=".into()));
        assert_eq!(xtext_decode("a+2"), None);
        assert_eq!(xtext_decode("a=b"), None);
        assert_eq!(xtext_decode("a+zz"), None);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(line in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&line);
        }

        #[test]
        fn random_mail_lines_never_panic(tail in "[ -~\u{80}-\u{10ffff}]{0,80}") {
            let _ = parse(format!("MAIL FROM:{tail}").as_bytes());
            let _ = parse(format!("RCPT TO:{tail}").as_bytes());
        }
    }
}
