//! master.cf: one service per entry, the eight columns with Postfix's
//! meanings and defaults.
//!
//! Columns: service, type (`inet`, `unix`, `unix-dgram`, `fifo`, `pass`),
//! private (`-` = y; an inet service cannot be private), unpriv (`-` = y),
//! chroot (`-` = n, as in Postfix 3), wakeup (`-` = 0, none; `N` seconds;
//! `N?` only when the service was used), maxproc (`-` = default_process_limit,
//! `0` = no limit), command and arguments. Arguments may be grouped as
//! `{ text with spaces }`; `-o name=value` and `-o { name = value }` override
//! main.cf for that service. Lines are read as main.cf's are (comments,
//! continuation lines that start with whitespace). Every error names the
//! file and the line the entry starts on.

use crate::main_cf::{self, printable};
use crate::{Config, Error};
use std::path::Path;

/// The type column.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceType {
    /// A TCP listener; the service name is `[host:]port`.
    Inet,
    /// A Unix-domain stream socket under public/ or private/.
    Unix,
    /// A named pipe (wake-up fifo) under public/ or private/.
    Fifo,
    /// A Unix-domain socket that receives file descriptors.
    Pass,
    /// A Unix-domain datagram socket (postlog).
    UnixDgram,
}

impl ServiceType {
    /// The name as written in the type column.
    pub fn as_str(&self) -> &'static str {
        match self {
            ServiceType::Inet => "inet",
            ServiceType::Unix => "unix",
            ServiceType::Fifo => "fifo",
            ServiceType::Pass => "pass",
            ServiceType::UnixDgram => "unix-dgram",
        }
    }

    /// Parses a type column.
    pub fn parse(s: &str) -> Option<ServiceType> {
        Some(match s {
            "inet" => ServiceType::Inet,
            "unix" => ServiceType::Unix,
            "fifo" => ServiceType::Fifo,
            "pass" => ServiceType::Pass,
            "unix-dgram" => ServiceType::UnixDgram,
            _ => return None,
        })
    }
}

/// One master.cf entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Service name (`smtp`, `127.0.0.1:10025`, `cleanup`).
    pub name: String,
    /// Type column.
    pub kind: ServiceType,
    /// Private column: the socket lives in private/ (default y; n for inet).
    pub private: bool,
    /// Unpriv column: run as mail_owner (default y).
    pub unpriv: bool,
    /// Chroot column: chroot to queue_directory (default n, as in Postfix 3).
    pub chroot: bool,
    /// Wakeup column in seconds, 0 for none; a trailing `?` sets `wakeup_if_used`.
    pub wakeup: u32,
    /// True when the wakeup column ended in `?`.
    pub wakeup_if_used: bool,
    /// Maxproc column; `-` means default_process_limit, 0 means no limit.
    pub maxproc: u32,
    /// The program name (first word of the command column).
    pub command: String,
    /// Remaining command words with `{ }` groups unwrapped; `-o` values
    /// normalized to `name=value`.
    pub args: Vec<String>,
    /// The line the entry starts on, for diagnostics.
    pub line: usize,
}

impl Service {
    /// The `-o name=value` overrides in the command column, in order.
    pub fn overrides(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let options = &self.args[..options_end(&self.args)];
        let mut it = options.iter();
        while let Some(a) = it.next() {
            let kv = if a == "-o" {
                it.next().map(String::as_str)
            } else {
                a.strip_prefix("-o").filter(|rest| !rest.is_empty())
            };
            if let Some((k, v)) = kv.and_then(|kv| kv.split_once('=')) {
                out.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        out
    }

    /// `name/type`, as postconf -M and master's messages name a service.
    pub fn id(&self) -> String {
        format!("{}/{}", self.name, self.kind.as_str())
    }
}

/// One entry with its columns as written, for `postconf -M`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The first seven columns as written (`-` kept).
    pub columns: Vec<String>,
    /// Command and arguments as tokens; a `{ }` group is one token without
    /// its braces.
    pub command: Vec<String>,
    /// The interpreted entry.
    pub service: Service,
}

/// Reads master.cf; `-` in the maxproc column is default_process_limit from
/// main.cf in the same directory (100 when that cannot be read).
///
/// # Errors
/// The file cannot be read or an entry is malformed (the error names the line).
pub fn load(path: &Path) -> Result<Vec<Service>, Error> {
    let limit = path
        .parent()
        .and_then(|dir| Config::load(dir).ok())
        .map(|c| c.int("default_process_limit"))
        .unwrap_or(100);
    let limit = u32::try_from(limit).unwrap_or(100);
    Ok(load_entries(path, limit)?
        .into_iter()
        .map(|e| e.service)
        .collect())
}

/// Reads master.cf with `default_process_limit` given (from a loaded Config).
///
/// # Errors
/// As [`load`].
pub fn load_with_config(path: &Path, config: &Config) -> Result<Vec<Service>, Error> {
    let limit = u32::try_from(config.int("default_process_limit")).unwrap_or(100);
    Ok(load_entries(path, limit)?
        .into_iter()
        .map(|e| e.service)
        .collect())
}

/// Reads master.cf into entries with their columns as written.
///
/// # Errors
/// As [`load`].
pub fn load_entries(path: &Path, default_process_limit: u32) -> Result<Vec<Entry>, Error> {
    let text = main_cf::read_file(path)?;
    parse(&text, path, default_process_limit)
}

/// Parses master.cf text; `path` is for messages.
///
/// # Errors
/// An entry is malformed or a service is defined twice.
pub fn parse(text: &str, path: &Path, default_process_limit: u32) -> Result<Vec<Entry>, Error> {
    let (lines, _warnings) = main_cf::logical_lines(text, path);
    let mut out: Vec<Entry> = Vec::new();
    for l in lines {
        let entry = parse_entry(&l.text, l.line, default_process_limit).map_err(|message| {
            Error::Syntax {
                path: path.to_path_buf(),
                line: l.line,
                message,
            }
        })?;
        if let Some(first) = out
            .iter()
            .find(|e| e.service.name == entry.service.name && e.service.kind == entry.service.kind)
        {
            return Err(Error::Syntax {
                path: path.to_path_buf(),
                line: l.line,
                message: format!(
                    "duplicate service name and type: {} (first defined on line {})",
                    printable(&entry.service.id(), 100),
                    first.service.line
                ),
            });
        }
        out.push(entry);
    }
    Ok(out)
}

const COLUMNS: [&str; 7] = [
    "service name",
    "service type",
    "private",
    "unprivileged",
    "chroot",
    "wakeup time",
    "max process count",
];

fn parse_entry(text: &str, line: usize, default_process_limit: u32) -> Result<Entry, String> {
    let mut rest = text;
    let mut columns: Vec<String> = Vec::with_capacity(7);
    for name in COLUMNS {
        let t = rest.trim_start();
        let end = t.find(char::is_whitespace).unwrap_or(t.len());
        if end == 0 {
            return Err(format!("missing \"{name}\" field"));
        }
        columns.push(t.get(..end).unwrap_or("").to_string());
        rest = t.get(end..).unwrap_or("");
    }
    let command = tokens(rest)?;
    let Some(program) = command.first() else {
        return Err("missing \"command\" field".to_string());
    };
    let col = |i: usize| columns.get(i).map(String::as_str).unwrap_or("");
    let name = col(0);
    let kind = ServiceType::parse(col(1))
        .ok_or_else(|| format!("bad transport type: {}", printable(col(1), 30)))?;
    check_name(name, &kind)?;
    let private = flag(col(2), "private", kind != ServiceType::Inet)?;
    if kind == ServiceType::Inet && private {
        return Err("inet service cannot be private".to_string());
    }
    let (wakeup, wakeup_if_used) = wakeup(col(5))?;
    let maxproc = match col(6) {
        "-" => default_process_limit,
        s => s
            .parse::<u32>()
            .ok()
            .filter(|_| s.bytes().all(|c| c.is_ascii_digit()))
            .ok_or_else(|| format!("bad max process count: {}", printable(s, 30)))?,
    };
    let args = normalize_args(command.get(1..).unwrap_or(&[]))?;
    Ok(Entry {
        service: Service {
            name: name.to_string(),
            kind,
            private,
            unpriv: flag(col(3), "unprivileged", true)?,
            chroot: flag(col(4), "chroot", false)?,
            wakeup,
            wakeup_if_used,
            maxproc,
            command: program.clone(),
            args,
            line,
        },
        columns,
        command,
    })
}

fn check_name(name: &str, kind: &ServiceType) -> Result<(), String> {
    // A unix/fifo/pass name becomes a path under public/ or private/.
    let bad = match kind {
        ServiceType::Inet => name.is_empty(),
        _ => name.contains('/') || name == "." || name == "..",
    };
    if bad || name.chars().any(char::is_control) {
        return Err(format!("bad service name: {}", printable(name, 30)));
    }
    Ok(())
}

fn flag(s: &str, column: &str, default: bool) -> Result<bool, String> {
    match s {
        "-" => Ok(default),
        "y" => Ok(true),
        "n" => Ok(false),
        _ => Err(format!(
            "bad boolean value for the \"{column}\" field: \"{}\" (specify y, n or -)",
            printable(s, 30)
        )),
    }
}

fn wakeup(s: &str) -> Result<(u32, bool), String> {
    if s == "-" {
        return Ok((0, false));
    }
    let (num, if_used) = match s.strip_suffix('?') {
        Some(n) => (n, true),
        None => (s, false),
    };
    if num.is_empty() || !num.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("bad wakeup time: {}", printable(s, 30)));
    }
    let n = num
        .parse::<u32>()
        .map_err(|_| format!("bad wakeup time: {}", printable(s, 30)))?;
    Ok((n, if_used))
}

/// Splits the command column into tokens; `{ text }` is one token (braces
/// and the whitespace just inside them removed).
fn tokens(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        if rest.starts_with('{') {
            let mut level = 0usize;
            let mut end = None;
            for (i, c) in rest.char_indices() {
                match c {
                    '{' => level += 1,
                    '}' => {
                        level = level.saturating_sub(1);
                        if level == 0 {
                            end = Some(i);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let end = end
                .ok_or_else(|| format!("missing '}}' in \"{}\"", printable(rest.trim_end(), 60)))?;
            out.push(rest.get(1..end).unwrap_or("").trim().to_string());
            let after = rest.get(end + 1..).unwrap_or("");
            if after.starts_with(|c: char| !c.is_whitespace()) {
                return Err(format!(
                    "syntax error after '}}' in \"{}\"",
                    printable(rest.trim_end(), 60)
                ));
            }
            rest = after.trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            out.push(rest.get(..end).unwrap_or("").to_string());
            rest = rest.get(end..).unwrap_or("").trim_start();
        }
    }
    Ok(out)
}

/// Checks `-o` arguments and normalizes their values to `name=value`.
fn normalize_args(args: &[String]) -> Result<Vec<String>, String> {
    let end = options_end(args);
    let mut out = Vec::with_capacity(args.len());
    let mut it = args[..end].iter();
    while let Some(a) = it.next() {
        out.push(a.clone());
        if a == "-o" {
            let kv = it
                .next()
                .ok_or_else(|| "option -o requires name=value".to_string())?;
            out.push(normalize_kv(kv)?);
        }
    }
    out.extend(args[end..].iter().cloned());
    Ok(out)
}

/// not_built - why a Postfix program that a master.cf service names is
/// not part of this suite, or None for a program we build (or do not
/// know). A service naming one of these whose program is missing is
/// skipped with a warning, never fatal, so a stock Postfix master.cf
/// (Debian's) starts unchanged.
pub fn not_built(program: &str) -> Option<&'static str> {
    let name = program.rsplit('/').next().unwrap_or(program);
    Some(match name {
        "tlsmgr" => "not needed: each process does its own TLS (rustls)",
        "scache" => "not needed: smtp keeps its connection cache in each process",
        "postlogd" => "not needed: each program writes maillog_file itself",
        "postscreen" | "tlsproxy" | "dnsblog" | "spawn" => "not supported yet",
        "oqmgr" => "not supported: qmgr does its job",
        _ => return None,
    })
}

/// The daemon options that take a value (Postfix's `i:m:n:o:r:s:t:`), as
/// ipc's parser reads them.
const OPTIONS_WITH_VALUE: &str = "imnorst";

/// options_end - where a daemon's options end in its arguments, as
/// getopt("+...") sees them: at the first word that is not an option, or
/// just after `--`. What follows (a pipe service's `flags=... argv=...`
/// with the command's own `-o`, `-u`, `-c`) is not master's to read.
pub fn options_end(args: &[String]) -> usize {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if a == "--" {
            return i + 1;
        }
        let Some(letters) = a.strip_prefix('-').filter(|l| !l.is_empty()) else {
            return i;
        };
        i += 1;
        // A bundle such as -vo ends at the first letter that takes a value;
        // with nothing attached, that value is the next word.
        if letters
            .find(|c| OPTIONS_WITH_VALUE.contains(c))
            .is_some_and(|at| at + 1 == letters.len())
        {
            i += 1;
        }
    }
    args.len()
}

fn normalize_kv(kv: &str) -> Result<String, String> {
    match main_cf::split_nameval(kv) {
        Ok((name, value)) => Ok(format!("{name}={value}")),
        Err(_) => Err(format!(
            "bad -o argument, expected name=value: \"{}\"",
            printable(kv, 60)
        )),
    }
}

/// Formats an entry on one line as `postconf -M` prints it: columns
/// aligned, arguments with whitespace wrapped in `{ }`.
pub fn format_entry(e: &Entry) -> String {
    let widths = [10, 5, 7, 7, 7, 7, 7];
    let mut out = String::new();
    for (i, c) in e.columns.iter().enumerate() {
        let w = widths.get(i).copied().unwrap_or(7);
        out.push_str(&format!("{c:<w$} "));
    }
    let words: Vec<String> = e
        .command
        .iter()
        .map(|t| {
            if t.is_empty() || t.contains(char::is_whitespace) || t.starts_with('{') {
                format!("{{ {t} }}")
            } else {
                t.clone()
            }
        })
        .collect();
    out.push_str(&words.join(" "));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn postfix_programs_we_do_not_build_are_named() {
        assert!(not_built("tlsmgr").is_some_and(|w| w.starts_with("not needed")));
        assert!(not_built("/usr/lib/postfix/sbin/tlsmgr").is_some());
        assert_eq!(not_built("/usr/lib/postfix/sbin/verify"), None);
        assert_eq!(not_built("smtpd"), None);
        assert_eq!(not_built("mytypo"), None);
    }

    #[test]
    fn options_end_before_a_pipe_commands_own_options() {
        let svc = p("spamc unix - n n - - pipe -o x=1 flags=Rq user=nobody \
            argv=/usr/bin/spamc -u ${user} -o y -e /usr/sbin/sendmail -oi -f ${sender}\n")
        .unwrap();
        let svc = &svc[0];
        assert_eq!(svc.overrides(), vec![("x".to_string(), "1".to_string())]);
        assert!(svc.args.iter().any(|a| a == "-oi"));
        assert!(svc.args.iter().any(|a| a == "y"));
        let sh = p(
            "sh unix - n n - - pipe flags=R user=nobody argv=/bin/sh -c {cat -o a=b > /dev/null}\n",
        )
        .unwrap();
        assert!(sh[0].overrides().is_empty());
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            options_end(&a(&["-v", "-o", "a=b", "flags=R", "-o", "c=d"])),
            3
        );
        assert_eq!(options_end(&a(&["-vomax_use=5", "argv=x"])), 1);
        assert_eq!(options_end(&a(&["-n", "name", "--", "-o", "a=b"])), 3);
        assert_eq!(options_end(&a(&["-o"])), 1);
    }

    fn p(text: &str) -> Result<Vec<Service>, Error> {
        parse(text, Path::new("/etc/postfix/master.cf"), 100)
            .map(|v| v.into_iter().map(|e| e.service).collect())
    }

    fn err(text: &str) -> String {
        p(text).unwrap_err().to_string()
    }

    const STOCK: &str = "\
# service type  private unpriv  chroot  wakeup  maxproc command + args
smtp      inet  n       -       n       -       -       smtpd
#submission inet n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
postlog   unix-dgram n  -       n       -       1       postlogd
submission inet n       -       n       -       -       smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o { smtpd_client_restrictions = permit_sasl_authenticated, reject }
relay     unix  -       -       y       -       -       smtp
  -o smtp_fallback_relay=
127.0.0.1:10025 inet n  n       -       -       10      smtpd
";

    #[test]
    fn stock_entries_and_defaults() {
        let s = p(STOCK).unwrap();
        assert_eq!(s.len(), 9);
        let smtp = &s[0];
        assert_eq!(
            (
                smtp.name.as_str(),
                &smtp.kind,
                smtp.private,
                smtp.unpriv,
                smtp.chroot
            ),
            ("smtp", &ServiceType::Inet, false, true, false)
        );
        assert_eq!(
            (smtp.wakeup, smtp.wakeup_if_used, smtp.maxproc),
            (0, false, 100)
        );
        assert_eq!((smtp.command.as_str(), smtp.line), ("smtpd", 2));
        assert_eq!((s[1].wakeup, s[1].maxproc, s[1].private), (60, 1, false));
        assert_eq!(s[2].maxproc, 0);
        assert_eq!(
            (s[4].private, s[4].wakeup, s[4].wakeup_if_used),
            (true, 1000, true)
        );
        assert_eq!(s[5].kind, ServiceType::UnixDgram);
        assert!(s[7].chroot);
        assert_eq!(s[8].name, "127.0.0.1:10025");
        assert!(!s[8].unpriv);
    }

    #[test]
    fn overrides_and_braces() {
        let s = p(STOCK).unwrap();
        let sub = &s[6];
        assert_eq!(sub.line, 9);
        assert_eq!(
            sub.overrides(),
            [
                ("syslog_name".to_string(), "postfix/submission".to_string()),
                ("smtpd_tls_security_level".into(), "encrypt".into()),
                (
                    "smtpd_client_restrictions".into(),
                    "permit_sasl_authenticated, reject".into()
                ),
            ]
        );
        assert_eq!(
            s[7].overrides(),
            [("smtp_fallback_relay".into(), "".into())]
        );
        let e = parse(STOCK, Path::new("m"), 100).unwrap();
        assert_eq!(
            format_entry(&e[6]),
            "submission inet  n       -       n       -       -       smtpd -o syslog_name=postfix/submission -o smtpd_tls_security_level=encrypt -o { smtpd_client_restrictions = permit_sasl_authenticated, reject }"
        );
        let svc = p("x unix - - - - - prog -osyslog_name=x { a b } c\n").unwrap();
        assert_eq!(svc[0].overrides(), [("syslog_name".into(), "x".into())]);
        assert_eq!(svc[0].args, ["-osyslog_name=x", "a b", "c"]);
    }

    #[test]
    fn errors_name_file_and_line() {
        assert_eq!(
            err("# c\nsmtp inet n - n - - smtpd\nfoo bogus n - n - - x\n"),
            "/etc/postfix/master.cf, line 3: bad transport type: bogus"
        );
        assert!(
            err("a unix x - - - - cmd\n")
                .contains("line 1: bad boolean value for the \"private\" field")
        );
        assert!(err("a unix - yes - - - cmd\n").contains("\"unprivileged\""));
        assert!(err("a unix - - - - - \n").contains("line 1: missing \"command\" field"));
        assert!(err("a unix - -\n").contains("missing \"chroot\" field"));
        assert!(err("a unix - - - 1x - cmd\n").contains("bad wakeup time: 1x"));
        assert!(err("a unix - - - ? - cmd\n").contains("bad wakeup time"));
        assert!(err("a unix - - - - -1 cmd\n").contains("bad max process count: -1"));
        assert!(
            err("\n\nsmtp inet y - - - - smtpd\n")
                .contains("line 3: inet service cannot be private")
        );
        assert!(err("a unix - - - - - cmd -o\n").contains("-o requires"));
        assert!(err("a unix - - - - - cmd -o novalue\n").contains("bad -o argument"));
        assert!(err("a unix - - - - - cmd { unclosed\n").contains("missing '}'"));
        assert!(err("../x unix - - - - - cmd\n").contains("bad service name"));
        assert_eq!(
            err("a unix - - - - - x\nb unix - - - - - x\na unix - - - - - y\n"),
            "/etc/postfix/master.cf, line 3: duplicate service name and type: a/unix (first defined on line 1)"
        );
        // Same name, different type: fine.
        assert!(p("smtp inet n - - - - smtpd\nsmtp unix - - - - - smtp\n").is_ok());
    }

    #[test]
    fn continuation_entry_line_is_first_line() {
        let s = p("\n\nsmtp inet n - n - -\n   smtpd\n   -o a=b\n").unwrap();
        assert_eq!((s[0].line, s[0].command.as_str()), (3, "smtpd"));
        assert_eq!(s[0].overrides(), [("a".into(), "b".into())]);
    }

    #[test]
    fn load_reads_default_process_limit() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.cf"), "default_process_limit = 7\n").unwrap();
        let master: PathBuf = dir.path().join("master.cf");
        std::fs::write(&master, "smtp inet n - n - - smtpd\n").unwrap();
        assert_eq!(load(&master).unwrap()[0].maxproc, 7);
        let c = Config::load(dir.path()).unwrap();
        assert_eq!(load_with_config(&master, &c).unwrap()[0].maxproc, 7);
        std::fs::remove_file(dir.path().join("main.cf")).unwrap();
        assert_eq!(load(&master).unwrap()[0].maxproc, 100);
        let e = load(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(e, Error::Io { .. }));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "(?s).{0,400}") {
            let _ = parse(&text, Path::new("m"), 100);
        }

        #[test]
        fn never_panics_on_master_like_text(
            lines in proptest::collection::vec(
                "[ \t]{0,2}[a-z0-9.:{}?#/=-]{0,6}([ \t]{1,2}[a-z0-9{}?#=-]{0,5}){0,10}", 0..8)
        ) {
            let text = lines.join("\n");
            if let Ok(entries) = parse(&text, Path::new("m"), 100) {
                for e in entries {
                    let _ = format_entry(&e);
                    let _ = e.service.overrides();
                }
            }
        }
    }
}
