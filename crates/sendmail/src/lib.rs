//! The code behind `sendmail`, `mailq` and `newaliases` (three binaries, one
//! behaviour chosen by the program name, as Postfix's sendmail does with
//! argv\[0\]).
//!
//! - [`options`]: the Sendmail command line.
//! - [`input`]: copying the message from stdin (lone-dot rule, From_ line).
//! - [`headers`]: for `-t`, whether the header names a recipient at all.
//! - [`sysexits`]: exit statuses from sysexits.h.
//! - [`main`]: what each binary runs.
//!
//! A message is handed to `postdrop` (command_directory/postdrop, setgid
//! postdrop when installed; run in sendmail's place for a message of up to
//! 256 KiB, else as a child, see `handoff`) as a stream of
//! [`proto::cleanup::Request`] frames on its stdin: `Begin` (sender, full
//! name, flags, attributes), one `Recipient` per command-line recipient,
//! `Content` chunks, then `End`.
//! postdrop checks everything again (its input is untrusted), hands the
//! message to pickup (which answers once cleanup has it fsynced) or writes
//! the maildrop file and fsyncs it, and exits 0; only then does sendmail
//! exit 0. A stream cut short (no `End`) makes postdrop remove its file.

use std::ffi::OsString;
use std::io::{BufWriter, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use config::Config;
use proto::cleanup::{self, Begin, RecipientSpec, Request};

use headers::RecipientProbe;

pub mod headers;
pub mod input;
pub mod options;
mod report;

pub use options::{Mode, Options};

/// Exit statuses from sysexits.h.
pub mod sysexits {
    /// Command line usage error.
    pub const EX_USAGE: i32 = 64;
    /// Data format error (message too large).
    pub const EX_DATAERR: i32 = 65;
    /// Addressee unknown (no passwd entry for the caller).
    pub const EX_NOUSER: i32 = 67;
    /// Service unavailable (a program that is not installed).
    pub const EX_UNAVAILABLE: i32 = 69;
    /// Internal software error.
    pub const EX_SOFTWARE: i32 = 70;
    /// System error (cannot fork).
    pub const EX_OSERR: i32 = 71;
    /// Cannot create (the queue file).
    pub const EX_CANTCREAT: i32 = 73;
    /// Input/output error (reading the message).
    pub const EX_IOERR: i32 = 74;
    /// Temporary failure; the user is invited to retry.
    pub const EX_TEMPFAIL: i32 = 75;
    /// Permission denied.
    pub const EX_NOPERM: i32 = 77;
    /// Configuration error.
    pub const EX_CONFIG: i32 = 78;
}

use sysexits::*;

/// Logs `fatal: ...` (stderr, and syslog or maillog_file) and exits with
/// `status`.
pub fn fatal_status(status: i32, args: std::fmt::Arguments<'_>) -> ! {
    maillog::write(maillog::Severity::Fatal, args);
    std::process::exit(status)
}

macro_rules! die {
    ($status:expr, $($a:tt)*) => { $crate::fatal_status($status, format_args!($($a)*)) };
}

mod handoff;

/// Runs the command: parses the command line (the program name `mailq` or
/// `newaliases` overrides `default`), loads the configuration and does the
/// work. Never returns.
pub fn main(default: Mode) -> ! {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let program = argv
        .first()
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or("sendmail")
        .to_owned();
    let mode = match program.as_str() {
        "mailq" => Mode::Mailq,
        "newaliases" => Mode::NewAliases,
        _ => default,
    };
    let opts = match options::parse(argv.get(1..).unwrap_or(&[]), mode) {
        Ok(o) => o,
        Err(e) => {
            maillog::error!("{e}");
            die!(EX_USAGE, "usage: {program} [options] [recipients]")
        }
    };
    let config_dir = config_dir(&opts);
    let config = match Config::load(&config_dir) {
        Ok(c) => c,
        Err(e) => die!(EX_CONFIG, "{e}"),
    };
    init_log(&program, &config);
    maillog::set_verbose(opts.verbose);
    let run = Run {
        config_dir,
        config,
        opts,
    };
    if matches!(run.opts.mode, Mode::Enqueue | Mode::Verify | Mode::Smtp) {
        check_user_acl(&run.config, "authorized_submit_users", "submit mail");
    }
    match run.opts.mode.clone() {
        Mode::Enqueue | Mode::Verify => run.enqueue(),
        Mode::Mailq => run.exec_command("postqueue", &["-p".into()]),
        Mode::Flush => run.exec_command("postqueue", &["-f".into()]),
        Mode::FlushSite(site) => run.exec_command("postqueue", &["-s".into(), site.into()]),
        Mode::FlushId(id) => run.exec_command("postqueue", &["-i".into(), id.into()]),
        Mode::NewAliases => run.newaliases(),
        Mode::Smtp => run.smtp(),
        Mode::Ignore => std::process::exit(0),
    }
}

/// Exits unless the list in main.cf parameter `param` admits the real
/// user (Postfix: `fatal: User alice is not allowed to submit mail`).
fn check_user_acl(config: &Config, param: &str, action: &str) {
    let uid = nix::unistd::getuid().as_raw();
    match tables::acl::check_user(&config.str(param), uid) {
        Ok(Ok(())) => {}
        Ok(Err(who)) => die!(EX_NOPERM, "{who} is not allowed to {action}"),
        Err(e) => die!(EX_CONFIG, "{param}: {e}"),
    }
}

/// `-C file_or_dir`, else `$MAIL_CONFIG`, else /etc/postfix. Postfix takes
/// a file name here too and uses its directory.
fn config_dir(opts: &Options) -> PathBuf {
    match &opts.config {
        Some(p) if p.is_dir() => p.clone(),
        Some(p) => match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        },
        None => config::default_config_dir(),
    }
}

/// Logs to stderr and to syslog or maillog_file; a maillog_file this user
/// cannot write is silently skipped (the records still reach stderr).
fn init_log(program: &str, config: &Config) {
    let file = config.str("maillog_file");
    let opts = maillog::Options {
        syslog_name: config.str("syslog_name"),
        program: program.to_owned(),
        maillog_file: (!file.is_empty()).then(|| PathBuf::from(&file)),
        stderr: true,
    };
    let host = config.str("myhostname");
    let setup = maillog::Setup::new(opts.clone()).hostname(&host);
    if maillog::try_init(setup).is_err() {
        maillog::init(
            maillog::Setup::new(maillog::Options {
                maillog_file: None,
                ..opts
            })
            .hostname(&host),
        );
    }
}

/// One invocation.
struct Run {
    config_dir: PathBuf,
    config: Config,
    opts: Options,
}

impl Run {
    /// A command in command_directory, run with this instance's
    /// configuration (`-c` and MAIL_CONFIG).
    fn command(&self, dir_param: &str, name: &str) -> (PathBuf, Command) {
        let path = Path::new(&self.config.str(dir_param)).join(name);
        let mut cmd = Command::new(&path);
        cmd.arg0(name).env("MAIL_CONFIG", &self.config_dir);
        (path, cmd)
    }

    /// Replaces this process with command_directory/`name` `-c DIR` `args`.
    fn exec_command(&self, name: &str, args: &[OsString]) -> ! {
        let (path, mut cmd) = self.command("command_directory", name);
        cmd.arg("-c").arg(&self.config_dir);
        if self.opts.verbose > 0 {
            cmd.arg("-v");
        }
        cmd.args(args);
        let e = cmd.exec();
        die!(EX_UNAVAILABLE, "execvp {}: {e}", path.display())
    }

    /// `-bi`: postalias on every alias_database entry.
    fn newaliases(&self) -> ! {
        let dbs: Vec<OsString> = self
            .config
            .str("alias_database")
            .split([',', ' ', '\t', '\n'])
            .filter(|s| !s.is_empty())
            .map(OsString::from)
            .collect();
        if dbs.is_empty() {
            std::process::exit(0);
        }
        self.exec_command("postalias", &dbs)
    }

    /// `-bs`: smtpd in stand-alone mode on stdin/stdout.
    fn smtp(&self) -> ! {
        let (path, mut cmd) = self.command("daemon_directory", "smtpd");
        if !path.is_file() {
            die!(
                EX_UNAVAILABLE,
                "-bs is not available: smtpd is not installed"
            );
        }
        cmd.arg("-S");
        let e = cmd.exec();
        die!(EX_UNAVAILABLE, "execvp {}: {e}", path.display())
    }

    /// Reads the message and hands it to postdrop.
    fn enqueue(&self) -> ! {
        let uid = nix::unistd::getuid();
        let user = match nix::unistd::User::from_uid(uid) {
            Ok(Some(u)) => u.name,
            _ => die!(EX_NOUSER, "no login name found for user ID {uid}"),
        };
        let who = format!("{user}({uid})");
        let sender = match &self.opts.sender {
            Some(s) => parse_sender(s).unwrap_or_else(|| {
                die!(EX_USAGE, "{who}: -f option specified malformed sender: {s}")
            }),
            None => user.clone(),
        };
        let recipients = parse_recipients(&self.opts.recipients);
        if self.opts.mode == Mode::Verify {
            report::check_options(&self.opts, &who);
        }
        if recipients.is_empty() && !self.opts.extract {
            die!(
                EX_USAGE,
                "{who}: Recipient addresses must be specified on the command line or via the -t option"
            );
        }
        let (path, mut cmd) = self.command("command_directory", "postdrop");
        cmd.arg("-r").arg("-c").arg(&self.config_dir);
        if self.opts.verbose > 0 {
            cmd.arg("-v");
        }
        // -bv has something to say after postdrop's success: a child then.
        let in_place = self.opts.mode != Mode::Verify;
        let mut sink = handoff::Sink::new(handoff::Postdrop::new(cmd, path, &who), in_place);
        let sent = self.send_message(&mut sink, &sender, &recipients);
        let mut child = match sink.finish() {
            handoff::Handed::InMemory(postdrop, frames) => {
                refuse_unless_read(&sent, &who);
                postdrop.exec_in_place(frames)
            }
            handoff::Handed::Child(child) => child,
        };
        let status = match child.wait() {
            Ok(s) => s,
            Err(e) => die!(EX_OSERR, "{who}: wait for postdrop: {e}"),
        };
        refuse_unless_read(&sent, &who);
        match (status.code(), sent) {
            (Some(0), Ok(())) => {
                if self.opts.mode == Mode::Verify {
                    report::announce(&sender);
                }
                std::process::exit(0)
            }
            (Some(0), Err(Failure::Write(e))) => {
                die!(EX_TEMPFAIL, "{who}: lost connection to postdrop: {e}")
            }
            (Some(0), Err(_)) => die!(
                EX_SOFTWARE,
                "{who}: postdrop accepted an unfinished message"
            ),
            (Some(EX_DATAERR), _) => die!(EX_DATAERR, "{who}: message file too big"),
            (Some(code @ EX_USAGE..=EX_CONFIG), _) => {
                die!(
                    code,
                    "{who}: message not queued: postdrop exit status {code}"
                )
            }
            (Some(code), _) => die!(
                EX_TEMPFAIL,
                "{who}: message not queued: postdrop exit status {code}"
            ),
            (None, _) => die!(
                EX_TEMPFAIL,
                "{who}: message not queued: postdrop killed by signal {}",
                status.signal().unwrap_or(0)
            ),
        }
    }

    /// Writes the envelope and the message as frames for postdrop; without
    /// `End` postdrop removes its file.
    fn send_message(
        &self,
        pipe: impl Write,
        sender: &str,
        recipients: &[String],
    ) -> Result<(), Failure> {
        let mut out = BufWriter::with_capacity(128 * 1024, pipe);
        let w = |e: proto::Error| Failure::Write(e.to_string());
        proto::send(&mut out, &Request::Begin(self.begin(sender))).map_err(w)?;
        for r in recipients {
            let spec = RecipientSpec {
                address: r.clone(),
                orcpt: None,
                notify: self.opts.notify,
            };
            proto::send(&mut out, &Request::Recipient(spec)).map_err(w)?;
        }
        if self.opts.mode == Mode::Verify {
            let content = report::probe_content(sender, recipients);
            proto::send(&mut out, &Request::Content(content)).map_err(w)?;
            proto::send(&mut out, &Request::End).map_err(w)?;
            return out.flush().map_err(|e| Failure::Write(e.to_string()));
        }
        let mut pending: Vec<u8> = Vec::with_capacity(proto::CONTENT_CHUNK);
        let mut probe = (self.opts.extract && recipients.is_empty()).then(RecipientProbe::new);
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        let copied = input::copy_message(&mut input, self.opts.dot_ends, |piece| {
            if let Some(p) = probe.as_mut() {
                p.feed(piece);
            }
            if pending.len() + piece.len() > proto::CONTENT_CHUNK {
                send_content(&mut out, &mut pending)?;
            }
            pending.extend_from_slice(piece);
            Ok(())
        });
        match copied {
            Ok(_) => {}
            Err(input::CopyError::Read(e)) => return Err(Failure::Read(e)),
            Err(input::CopyError::Write(e)) => return Err(Failure::Write(e.to_string())),
        }
        // Abort (not End): postdrop removes its file and logs nothing,
        // since the refusal is ours to report.
        if probe.as_mut().is_some_and(|p| !p.found()) {
            let _ = proto::send(&mut out, &Request::Abort).and_then(|()| Ok(out.flush()?));
            return Err(Failure::NoRecipients);
        }
        send_content(&mut out, &mut pending).map_err(|e| Failure::Write(e.to_string()))?;
        proto::send(&mut out, &Request::End).map_err(w)?;
        out.flush().map_err(|e| Failure::Write(e.to_string()))
    }

    fn begin(&self, sender: &str) -> Begin {
        let mut attributes = vec![("rewrite_context".to_owned(), "local".to_owned())];
        let mut add = |name: &str, value: &Option<String>| {
            if let Some(v) = value {
                attributes.push((name.to_owned(), v.clone()));
            }
        };
        add("dsn_envid", &self.opts.envid);
        add("dsn_ret", &self.opts.ret);
        add("body", &self.opts.body);
        Begin {
            flags: if self.opts.extract {
                cleanup::flags::EXTRACT_RECIPIENTS
            } else if self.opts.mode == Mode::Verify {
                cleanup::flags::VERIFY_REPORT
            } else {
                0
            },
            sender: sender.to_owned(),
            full_name: self.opts.full_name.clone(),
            attributes,
        }
    }
}

/// Exits when the message itself was not all there: stdin failed, or `-t`
/// found no recipient (postdrop, if it ran, was told nothing or to abort).
fn refuse_unless_read(sent: &Result<(), Failure>, who: &str) {
    match sent {
        Err(Failure::Read(e)) => die!(EX_IOERR, "{who}: error reading input: {e}"),
        Err(Failure::NoRecipients) => die!(
            EX_USAGE,
            "{who}: No recipient addresses found in message header"
        ),
        _ => {}
    }
}

/// Why sending to postdrop stopped.
#[derive(Debug)]
enum Failure {
    /// Reading stdin failed.
    Read(std::io::Error),
    /// postdrop went away.
    Write(String),
    /// `-t` and no recipient anywhere.
    NoRecipients,
}

fn send_content<W: Write>(out: &mut W, pending: &mut Vec<u8>) -> std::io::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let chunk = std::mem::replace(pending, Vec::with_capacity(proto::CONTENT_CHUNK));
    proto::send(out, &Request::Content(chunk)).map_err(|e| match e {
        proto::Error::Io(e) => e,
        other => std::io::Error::other(other.to_string()),
    })
}

/// The `-f` value in internal form: `<>` or an empty value is the null
/// sender; more than one address is an error (`None`).
pub fn parse_sender(value: &str) -> Option<String> {
    let v = value.trim();
    if v.is_empty() || v == "<>" {
        return Some(String::new());
    }
    match address::parse_address_list(v) {
        Ok(list) => match list.as_slice() {
            [] => Some(String::new()),
            [one] => Some(one.to_internal()),
            _ => None,
        },
        // Postfix's tokenizer never fails; keep the text as given.
        Err(_) => Some(v.trim_start_matches('<').trim_end_matches('>').to_owned()),
    }
}

/// Command-line recipients in internal form. Each word may hold a list
/// (`"alice, Bob <bob@example.org>"`), as with Postfix.
pub fn parse_recipients(words: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for word in words {
        let w = word.trim();
        if w.is_empty() {
            continue;
        }
        match address::parse_address_list(w) {
            Ok(list) => out.extend(
                list.iter()
                    .filter(|a| !a.is_null())
                    .map(address::Address::to_internal),
            ),
            Err(_) => out.push(w.to_owned()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_forms() {
        assert_eq!(parse_sender("<>").as_deref(), Some(""));
        assert_eq!(parse_sender("").as_deref(), Some(""));
        assert_eq!(parse_sender("alice").as_deref(), Some("alice"));
        assert_eq!(
            parse_sender("<alice@example.org>").as_deref(),
            Some("alice@example.org")
        );
        assert_eq!(
            parse_sender("Alice <alice@example.org>").as_deref(),
            Some("alice@example.org")
        );
        assert_eq!(parse_sender("a@b, c@d"), None);
    }

    #[test]
    fn recipient_lists() {
        let words = vec![
            "bob".to_string(),
            "Carol <carol@example.org>, dave@example.net".to_string(),
            " ".to_string(),
        ];
        assert_eq!(
            parse_recipients(&words),
            vec!["bob", "carol@example.org", "dave@example.net"]
        );
    }

    #[test]
    fn config_dir_from_file_or_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("main.cf");
        std::fs::write(&file, "").unwrap();
        let mut o = Options {
            config: Some(file),
            ..Options::default()
        };
        assert_eq!(config_dir(&o), tmp.path());
        o.config = Some(tmp.path().to_path_buf());
        assert_eq!(config_dir(&o), tmp.path());
    }
}
