//! The Sendmail command line, parsed as Postfix's sendmail parses it.
//!
//! Options follow getopt rules: single letters after one `-`, clustered
//! (`-ti`), a value attached (`-fuser`, `-oi`, `-q1h`) or in the next word
//! (`-f user`); parsing stops at the first word that is not an option, or
//! after `--`. The remaining words are recipients. Postfix's option string is
//! `B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:q:r:tvx`; `-q` alone is allowed
//! here too (flush the queue).
//!
//! Options that only matter to Sendmail itself (`-G`, `-L`, `-O`, `-U`,
//! `-X`, `-c`, `-e`, `-h`, `-m`, `-n`, `-p`, `-x`, and `-o` settings other
//! than `-oi`) are accepted and ignored, as Postfix does.

use std::fmt;
use std::path::PathBuf;

/// What the command is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `-bm` (default): read a message and queue it.
    Enqueue,
    /// `-bp`, or called as `mailq`: list the queue (postqueue -p).
    Mailq,
    /// `-bi` / `-I`, or called as `newaliases`: rebuild the alias databases.
    NewAliases,
    /// `-bs`: an SMTP conversation on stdin/stdout (smtpd -S).
    Smtp,
    /// `-q`: deliver all queued mail now (postqueue -f).
    Flush,
    /// `-qRsite`: deliver mail queued for site now (postqueue -s site).
    FlushSite(String),
    /// `-qIqueueid`: deliver one deferred message now (postqueue -i id).
    FlushId(String),
    /// `-qinterval`: accepted and ignored (master runs the queue).
    Ignore,
    /// `-bv`: verify the recipients, mail the sender a report, deliver
    /// nothing (no message is read).
    Verify,
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The mode.
    pub mode: Mode,
    /// `-C`: the configuration file or directory.
    pub config: Option<PathBuf>,
    /// `-f` / `-r`: the envelope sender as given.
    pub sender: Option<String>,
    /// `-F`: the sender's full name.
    pub full_name: Option<String>,
    /// `-t`: recipients from To, Cc and Bcc.
    pub extract: bool,
    /// False with `-i` / `-oi`: a line with a single dot does not end input.
    pub dot_ends: bool,
    /// `-N`: DSN NOTIFY bits (`proto::deliver::notify`); 0 = default.
    pub notify: u8,
    /// `-B`: `7BIT` or `8BITMIME`.
    pub body: Option<String>,
    /// `-R`: `FULL` or `HDRS`.
    pub ret: Option<String>,
    /// `-V`: DSN envelope id.
    pub envid: Option<String>,
    /// Number of `-v` options.
    pub verbose: u32,
    /// The recipient words.
    pub recipients: Vec<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            mode: Mode::Enqueue,
            config: None,
            sender: None,
            full_name: None,
            extract: false,
            dot_ends: true,
            notify: 0,
            body: None,
            ret: None,
            envid: None,
            verbose: 0,
            recipients: Vec::new(),
        }
    }
}

/// A command line that cannot be used (exit status EX_USAGE).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageError {
    /// An option letter we do not know.
    UnknownOption(char),
    /// An option that needs a value came last.
    MissingValue(char),
    /// An option value is not one of the allowed ones.
    BadValue {
        /// The option letter.
        option: char,
        /// The value given.
        value: String,
        /// What is allowed.
        expected: &'static str,
    },
    /// A mode this implementation does not offer (`-bd`, `-bh`, ...).
    Unsupported(String),
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::UnknownOption(c) => write!(f, "invalid option -- '{c}'"),
            UsageError::MissingValue(c) => write!(f, "option requires an argument -- '{c}'"),
            UsageError::BadValue {
                option,
                value,
                expected,
            } => write!(f, "-{option} option value \"{value}\": expected {expected}"),
            UsageError::Unsupported(what) => write!(f, "{what} is not supported"),
        }
    }
}

impl std::error::Error for UsageError {}

/// Options that take a value.
const WITH_VALUE: &str = "BCFLNORVXbefhopr";
/// Options without a value that we act on or ignore.
const FLAGS: &str = "GIUcimntvx";

/// Parses the words after `argv[0]`, starting from `mode` (Enqueue, or what
/// the program name implies).
///
/// # Errors
/// A [`UsageError`] naming the offending option.
pub fn parse(args: &[String], mode: Mode) -> Result<Options, UsageError> {
    let mut o = Options {
        mode,
        ..Options::default()
    };
    let mut i = 0;
    while let Some(word) = args.get(i) {
        if word == "--" {
            i += 1;
            break;
        }
        let Some(cluster) = word.strip_prefix('-').filter(|c| !c.is_empty()) else {
            break;
        };
        i += 1;
        for (pos, c) in cluster.char_indices() {
            if c == 'q' {
                // -q takes an optional value, attached only.
                apply_q(&mut o, cluster.get(pos + 1..).unwrap_or(""))?;
                break;
            }
            if WITH_VALUE.contains(c) {
                let rest = cluster.get(pos + c.len_utf8()..).unwrap_or("");
                let value = if rest.is_empty() {
                    let v = args.get(i).ok_or(UsageError::MissingValue(c))?;
                    i += 1;
                    v.as_str()
                } else {
                    rest
                };
                apply_value(&mut o, c, value)?;
                break;
            }
            if FLAGS.contains(c) {
                apply_flag(&mut o, c);
                continue;
            }
            return Err(UsageError::UnknownOption(c));
        }
    }
    o.recipients = args.get(i..).unwrap_or(&[]).to_vec();
    Ok(o)
}

fn apply_flag(o: &mut Options, c: char) {
    match c {
        'I' => o.mode = Mode::NewAliases,
        'i' => o.dot_ends = false,
        't' => o.extract = true,
        'v' => o.verbose = o.verbose.saturating_add(1),
        // -G -U -c -m -n -x: Sendmail knobs without meaning here.
        _ => {}
    }
}

fn apply_value(o: &mut Options, c: char, value: &str) -> Result<(), UsageError> {
    match c {
        'B' => o.body = Some(parse_body(value)?),
        'C' => o.config = Some(PathBuf::from(value)),
        'F' => o.full_name = Some(value.to_owned()),
        'N' => o.notify = parse_notify(value)?,
        'R' => o.ret = Some(parse_ret(value)?),
        'V' => o.envid = Some(value.to_owned()),
        'b' => o.mode = parse_mode(value)?,
        'f' | 'r' => o.sender = Some(value.to_owned()),
        // -oi (also "-o i") is the one setting that matters; -o7, -o8,
        // -oA..., -om, -oe... are accepted and ignored as Postfix does.
        'o' if value == "i" => o.dot_ends = false,
        // -L label, -O option=value, -X log_file, -e x, -h hops, -p protocol.
        _ => {}
    }
    Ok(())
}

fn apply_q(o: &mut Options, value: &str) -> Result<(), UsageError> {
    o.mode = if value.is_empty() {
        Mode::Flush
    } else if let Some(site) = value.strip_prefix('R') {
        if site.is_empty() {
            return Err(UsageError::BadValue {
                option: 'q',
                value: value.to_owned(),
                expected: "Rsite",
            });
        }
        Mode::FlushSite(site.to_owned())
    } else if let Some(id) = value.strip_prefix('I') {
        if id.is_empty() {
            return Err(UsageError::BadValue {
                option: 'q',
                value: value.to_owned(),
                expected: "Iqueueid",
            });
        }
        Mode::FlushId(id.to_owned())
    } else if value.starts_with('S') {
        // As Postfix: "-qS is not implemented"; sendmail -q does it slower.
        return Err(UsageError::Unsupported(
            "-qS (use the slower \"sendmail -q\")".into(),
        ));
    } else if value.starts_with(|c: char| c.is_ascii_digit()) {
        Mode::Ignore
    } else {
        return Err(UsageError::BadValue {
            option: 'q',
            value: value.to_owned(),
            expected: "nothing, an interval, Rsite or Iqueueid",
        });
    };
    Ok(())
}

fn parse_mode(value: &str) -> Result<Mode, UsageError> {
    match value {
        "m" => Ok(Mode::Enqueue),
        "p" => Ok(Mode::Mailq),
        "i" => Ok(Mode::NewAliases),
        "s" => Ok(Mode::Smtp),
        "d" | "D" | "l" => Err(UsageError::Unsupported(format!(
            "-b{value} (daemon mode; use \"postfix start\")"
        ))),
        "v" => Ok(Mode::Verify),
        "h" | "H" => Err(UsageError::Unsupported(format!("-b{value}"))),
        _ => Err(UsageError::BadValue {
            option: 'b',
            value: value.to_owned(),
            expected: "m, p, i or s",
        }),
    }
}

/// `-N`: `never`, or a comma list of `success`, `delay`, `failure`.
fn parse_notify(value: &str) -> Result<u8, UsageError> {
    use proto::deliver::notify;
    let bad = || UsageError::BadValue {
        option: 'N',
        value: value.to_owned(),
        expected: "never, or a list of success, delay, failure",
    };
    let mut bits = 0u8;
    for word in value.split([',', ' ', '\t']).filter(|w| !w.is_empty()) {
        bits |= match word.to_ascii_lowercase().as_str() {
            "never" => notify::NEVER,
            "success" => notify::SUCCESS,
            "delay" => notify::DELAY,
            "failure" => notify::FAILURE,
            _ => return Err(bad()),
        };
    }
    if bits == 0 || (bits & notify::NEVER != 0 && bits != notify::NEVER) {
        return Err(bad());
    }
    Ok(bits)
}

fn parse_body(value: &str) -> Result<String, UsageError> {
    let up = value.to_ascii_uppercase();
    if up == "7BIT" || up == "8BITMIME" {
        Ok(up)
    } else {
        Err(UsageError::BadValue {
            option: 'B',
            value: value.to_owned(),
            expected: "7BIT or 8BITMIME",
        })
    }
}

fn parse_ret(value: &str) -> Result<String, UsageError> {
    let up = value.to_ascii_uppercase();
    if up == "FULL" || up == "HDRS" {
        Ok(up)
    } else {
        Err(UsageError::BadValue {
            option: 'R',
            value: value.to_owned(),
            expected: "full or hdrs",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(words: &[&str]) -> Result<Options, UsageError> {
        let v: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        parse(&v, Mode::Enqueue)
    }

    #[test]
    fn attached_and_separate_values() {
        let o = p(&["-oi", "-fuser", "-F", "Joe User", "bob", "carol"]).unwrap();
        assert!(!o.dot_ends);
        assert_eq!(o.sender.as_deref(), Some("user"));
        assert_eq!(o.full_name.as_deref(), Some("Joe User"));
        assert_eq!(o.recipients, vec!["bob", "carol"]);
        let o = p(&["-f", "a@b", "-r", "c@d", "x"]).unwrap();
        assert_eq!(o.sender.as_deref(), Some("c@d"));
    }

    #[test]
    fn clusters_and_end_of_options() {
        let o = p(&["-ti", "--", "-bob"]).unwrap();
        assert!(o.extract && !o.dot_ends);
        assert_eq!(o.recipients, vec!["-bob"]);
        // Options stop at the first recipient, as with getopt "+".
        let o = p(&["bob", "-t"]).unwrap();
        assert!(!o.extract);
        assert_eq!(o.recipients, vec!["bob", "-t"]);
        let o = p(&["-tfalice", "bob"]).unwrap();
        assert_eq!(o.sender.as_deref(), Some("alice"));
    }

    #[test]
    fn modes() {
        assert_eq!(p(&["-bp"]).unwrap().mode, Mode::Mailq);
        assert_eq!(p(&["-b", "i"]).unwrap().mode, Mode::NewAliases);
        assert_eq!(p(&["-I"]).unwrap().mode, Mode::NewAliases);
        assert_eq!(p(&["-bs"]).unwrap().mode, Mode::Smtp);
        assert_eq!(p(&["-bm", "x"]).unwrap().mode, Mode::Enqueue);
        assert_eq!(p(&["-q"]).unwrap().mode, Mode::Flush);
        assert_eq!(p(&["-q1h"]).unwrap().mode, Mode::Ignore);
        assert_eq!(
            p(&["-qI3F2A1C0B7"]).unwrap().mode,
            Mode::FlushId("3F2A1C0B7".into())
        );
        assert!(matches!(
            p(&["-qSexample.org"]),
            Err(UsageError::Unsupported(_))
        ));
        assert!(matches!(p(&["-qI"]), Err(UsageError::BadValue { .. })));
        assert_eq!(
            p(&["-qRexample.org"]).unwrap().mode,
            Mode::FlushSite("example.org".into())
        );
        assert!(matches!(p(&["-bd"]), Err(UsageError::Unsupported(_))));
        assert!(matches!(p(&["-bz"]), Err(UsageError::BadValue { .. })));
        assert!(matches!(p(&["-qX"]), Err(UsageError::BadValue { .. })));
    }

    #[test]
    fn ignored_options_are_accepted() {
        let o = p(&[
            "-o", "x", "-oem", "-o7", "-Gn", "-Lname", "-O", "a=b", "-U", "-h", "5", "-x", "-m",
            "-c", "-X", "/tmp/l", "-pesmtp", "-ee", "bob",
        ])
        .unwrap();
        assert!(o.dot_ends);
        assert_eq!(o.recipients, vec!["bob"]);
        let o = p(&["-o", "i", "bob"]).unwrap();
        assert!(!o.dot_ends);
    }

    #[test]
    fn bad_options() {
        assert_eq!(p(&["-z"]), Err(UsageError::UnknownOption('z')));
        assert_eq!(p(&["-f"]), Err(UsageError::MissingValue('f')));
        assert!(p(&["-B", "9bit"]).is_err());
        assert!(p(&["-R", "most"]).is_err());
        assert!(p(&["-N", "never,success"]).is_err());
        assert!(p(&["-N", "sometimes"]).is_err());
    }

    #[test]
    fn dsn_and_body() {
        use proto::deliver::notify;
        let o = p(&[
            "-N",
            "success,delay",
            "-B",
            "8bitmime",
            "-R",
            "hdrs",
            "-V",
            "id1",
            "b",
        ])
        .unwrap();
        assert_eq!(o.notify, notify::SUCCESS | notify::DELAY);
        assert_eq!(o.body.as_deref(), Some("8BITMIME"));
        assert_eq!(o.ret.as_deref(), Some("HDRS"));
        assert_eq!(o.envid.as_deref(), Some("id1"));
        assert_eq!(p(&["-Nnever", "b"]).unwrap().notify, notify::NEVER);
    }

    #[test]
    fn verbose_and_config() {
        let o = p(&["-v", "-v", "-C", "/etc/other", "bob"]).unwrap();
        assert_eq!(o.verbose, 2);
        assert_eq!(o.config, Some(PathBuf::from("/etc/other")));
    }
}
