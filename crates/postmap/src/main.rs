//! postmap - build, query and edit Postfix lookup tables
//!
//! # Synopsis
//!
//! ```text
//! postmap [-bfhinoprsuvw] [-c config_dir] [-d key] [-q key] [file_type:]file_name ...
//! ```
//!
//! # Description
//!
//! Without `-q`, `-d` or `-s`, postmap builds the index of each table from
//! its text source: `hash:/etc/postfix/virtual` reads `/etc/postfix/virtual`
//! (`key whitespace value` lines, `#` comments, continuation lines that start
//! with whitespace) and writes `/etc/postfix/virtual.db`. A name without a
//! type uses default_database_type. The index is written to a temporary file
//! and renamed into place, so daemons reading the table never see a partial
//! one; they notice the new file and reopen it.
//!
//! Options:
//!
//! - `-c config_dir`: read main.cf from this directory (default
//!   `$MAIL_CONFIG` or /etc/postfix).
//! - `-d key`: remove `key` from each table; `-d -` reads keys from stdin.
//! - `-f`: do not lowercase keys (when building, querying and deleting).
//! - `-i`: incremental: add `key value` lines from stdin to the existing
//!   index instead of rebuilding it from the source.
//! - `-q key`: print the value of `key` from the first table that has it;
//!   `-q -` reads keys from stdin and prints `key<TAB>value` for each found.
//! - `-r`: when a key is seen twice, keep the last entry, silently.
//! - `-s`: print every `key<TAB>value` of each table.
//! - `-w`: when a key is seen twice, keep the first entry, silently.
//! - `-h`, `-b` (with `-q -`): standard input is a message; each logical
//!   header line (`-h`) and each body line (`-b`) is a key, and
//!   `key<TAB>value` is printed for each found, as header_checks and
//!   body_checks would see them.
//! - `-o`: a new index made by root stays root's (by default it gets the
//!   source file's owner).
//! - `-p`: a new index gets mode 0644 (by default: the source's mode).
//! - `-n`, `-u`, `-v`: accepted; this index never stores null bytes and
//!   does not check UTF-8, which is what they ask for.
//! - `-N`, `-U`, `-m` (MIME parsing), `-F` (base64 values): refused with a
//!   message saying so.
//!
//! Table types: hash can be built, queried, listed and edited; every type
//! that the tables library opens (texthash, regexp, pcre, inline, static,
//! unix) can be queried with `-q`.
//!
//! # Talks to
//!
//! Nothing: it reads and writes files only.
//!
//! # Security
//!
//! Not set-uid; runs with the invoking user's rights. When run by root, a
//! new index is given the owner and group of its source file, as Postfix's
//! postmap (which drops to the source owner) would create it. Table text is
//! bounded (line and file size limits) and never makes it panic.
//!
//! # Diagnostics
//!
//! Problems go to stderr as `postmap: warning: file, line N: ...` (a skipped
//! line or a duplicate key) and `postmap: fatal: ...`. Exit status: 0 on
//! success and when `-q` or `-d` found a key; 1 when it did not; 1 on a
//! fatal error.
//!
//! # Configuration parameters
//!
//! - default_database_type (hash): the type of a table named without one.
//!
//! # See also
//!
//! postconf(5), virtual(5), canonical(5), transport(5), regexp_table(5),
//! pcre_table(5); the `tables` library.

use config::getopt::{Arg, getopt};
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod message;

use tables::{Duplicates, ParseOptions, command, hash};

/// What postmap was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Build,
    Incremental,
    Query(String),
    Delete(String),
    Show,
}

/// Parsed command line.
#[derive(Debug)]
struct Args {
    config_dir: Option<PathBuf>,
    mode: Mode,
    fold_case: bool,
    duplicates: Duplicates,
    maps: Vec<String>,
    /// `-h` / `-b`: `-q -` reads a message.
    parts: message::Parts,
    /// `-o`: a new index keeps root's ownership.
    keep_root: bool,
    /// `-p`: a new index gets mode 0644 instead of its source's mode.
    default_mode: bool,
}

/// A fatal error: its message, printed as `postmap: fatal: ...`.
struct Fatal(String);

impl<E: std::fmt::Display> From<E> for Fatal {
    fn from(e: E) -> Fatal {
        Fatal(e.to_string())
    }
}

const USAGE: &str =
    "usage: postmap [-bfhinoprsuvw] [-c config_dir] [-d key] [-q key] [map_type:]file...";

fn main() -> ExitCode {
    let argv = config::getopt::utf8_args().ok_or_else(|| Fatal(USAGE.into()));
    match argv
        .and_then(|argv| parse_args(&argv))
        .and_then(|a| run(&a))
    {
        Ok(found) => {
            if found {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(Fatal(msg)) => {
            eprintln!("postmap: fatal: {msg}");
            ExitCode::from(1)
        }
    }
}

/// getopt-style parsing of `Nbc:d:fhimnopq:rsuUvwF`, flags combinable
/// (`-fr`), option values attached or separate (`-qkey`, `-q key`).
fn parse_args(argv: &[String]) -> Result<Args, Fatal> {
    let mut args = Args {
        config_dir: None,
        mode: Mode::Build,
        fold_case: true,
        duplicates: Duplicates::Warn,
        maps: Vec::new(),
        parts: message::Parts::default(),
        keep_root: false,
        default_mode: false,
    };
    let mut modes = 0;
    for arg in getopt(argv, "cdq").map_err(|_| Fatal(USAGE.into()))? {
        match arg {
            Arg::Operand(map) => args.maps.push(map),
            Arg::Value('c', dir) => args.config_dir = Some(PathBuf::from(dir)),
            Arg::Value('d', key) => set_mode(&mut args, &mut modes, Mode::Delete(key)),
            Arg::Value(_, key) => set_mode(&mut args, &mut modes, Mode::Query(key)),
            Arg::Flag('f') => args.fold_case = false,
            Arg::Flag('i') => args.mode = incremental(&args.mode),
            Arg::Flag('r') => args.duplicates = Duplicates::Replace,
            Arg::Flag('w') => args.duplicates = Duplicates::Ignore,
            Arg::Flag('s') => set_mode(&mut args, &mut modes, Mode::Show),
            Arg::Flag('h') => args.parts.headers = true,
            Arg::Flag('b') => args.parts.body = true,
            Arg::Flag('o') => args.keep_root = true,
            Arg::Flag('p') => args.default_mode = true,
            // The index never stores a terminating null byte (-n), and
            // keys are not UTF-8 checked (-u): both are what we do.
            Arg::Flag('n' | 'u' | 'v') => {}
            Arg::Flag('N') => return Err(unsupported('N', "this index never stores null bytes")),
            Arg::Flag('U') => return Err(unsupported('U', "keys are not UTF-8 checked")),
            Arg::Flag('m') => return Err(unsupported('m', "use -h or -b without MIME parsing")),
            Arg::Flag('F') => return Err(unsupported('F', "no base64 file values")),
            Arg::Flag(_) => return Err(Fatal(USAGE.into())),
        }
    }
    if modes > 1 {
        return Err(Fatal("specify only one of -s -q or -d".into()));
    }
    if args.maps.is_empty() {
        return Err(Fatal(USAGE.into()));
    }
    if args.parts.any() && args.mode != Mode::Query("-".into()) {
        return Err(Fatal("specify -b -h or -m only with \"-q -\"".into()));
    }
    Ok(args)
}

/// The refusal of a Postfix option this postmap does not implement.
fn unsupported(flag: char, why: &str) -> Fatal {
    Fatal(format!("option -{flag} is not supported: {why}"))
}

fn incremental(mode: &Mode) -> Mode {
    match mode {
        Mode::Build => Mode::Incremental,
        other => other.clone(),
    }
}

fn set_mode(args: &mut Args, modes: &mut usize, mode: Mode) {
    *modes += 1;
    args.mode = mode;
}

/// Runs the requested mode; returns false when a query or delete found
/// nothing.
fn run(args: &Args) -> Result<bool, Fatal> {
    let default_type = default_database_type(args.config_dir.as_deref())?;
    let specs: Vec<String> = args
        .maps
        .iter()
        .map(|m| command::full_spec(m, &default_type))
        .collect();
    let opts = ParseOptions {
        fold_case: args.fold_case,
        duplicates: args.duplicates,
    };
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    match &args.mode {
        Mode::Build => build_all(&specs, opts, args).map(|()| true),
        Mode::Incremental => incremental_all(&specs, opts).map(|()| true),
        Mode::Query(_) if args.parts.any() => {
            let maps = command::open_all(&specs, args.fold_case, warn_all)?;
            let mut out = BufWriter::new(stdout.lock());
            query_message(&maps, args.parts, &mut out)
        }
        Mode::Query(key) => {
            let maps = command::open_all(&specs, args.fold_case, warn_all)?;
            let mut out = BufWriter::new(stdout.lock());
            Ok(command::query(
                &maps,
                key,
                &mut stdin.lock(),
                &mut out,
                "\t",
            )?)
        }
        Mode::Delete(key) => Ok(command::delete(
            &specs,
            key,
            args.fold_case,
            &mut stdin.lock(),
        )?),
        Mode::Show => {
            let mut out = BufWriter::new(stdout.lock());
            command::show(&specs, &mut out, "\t")?;
            Ok(true)
        }
    }
}

/// default_database_type from main.cf (the built-in default without a
/// main.cf, unless -c named the directory).
fn default_database_type(dir: Option<&Path>) -> Result<String, Fatal> {
    let cfg = config::Config::load_for_command(dir)?;
    // proxy:, pgsql:, mysql: and ldap: tables ask the instance's running
    // proxymap (private/proxymap under the queue directory), or else a
    // proxymap of our own (daemon_directory/proxymap -S).
    tables::proxy::set_queue_directory(cfg.str("queue_directory"));
    tables::proxy::set_standalone(
        Path::new(&cfg.str("daemon_directory")).join("proxymap"),
        dir.map(Path::to_path_buf),
    );
    Ok(cfg
        .get("default_database_type")
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "hash".into()))
}

/// `-h`/`-b` with `-q -`: looks up each key of the message on stdin and
/// prints `key<TAB>value` for each found.
fn query_message(
    maps: &[tables::Table],
    parts: message::Parts,
    out: &mut impl std::io::Write,
) -> Result<bool, Fatal> {
    let mut bytes = Vec::new();
    std::io::stdin().read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut found = false;
    for key in message::keys(&text, parts) {
        if key.is_empty() {
            continue;
        }
        if let Some(v) = command::first_value(maps, &key)? {
            writeln!(out, "{key}\t{v}")?;
            found = true;
        }
    }
    out.flush()?;
    Ok(found)
}

/// Builds each index: owned by the source's owner (unless `-o`) and with
/// the source's permission bits (unless `-p`), as Postfix's postmap makes
/// it.
fn build_all(specs: &[String], opts: ParseOptions, args: &Args) -> Result<(), Fatal> {
    use std::os::unix::fs::PermissionsExt;
    for spec in specs {
        let source = command::hash_source(spec)?;
        let report = hash::build(&source, opts)?;
        warn_all(&report.warnings);
        let db = hash::db_path(&source);
        if !args.keep_root {
            command::give_to_source_owner(&db, &source)?;
        }
        if !args.default_mode {
            let mode = std::fs::metadata(&source)?.permissions().mode() & 0o777;
            std::fs::set_permissions(&db, std::fs::Permissions::from_mode(mode))?;
        }
    }
    Ok(())
}

fn incremental_all(specs: &[String], opts: ParseOptions) -> Result<(), Fatal> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    let origin = Path::new("stdin");
    let mut warnings = Vec::new();
    let plain = ParseOptions {
        fold_case: false,
        duplicates: Duplicates::Replace,
    };
    let entries = tables::text::parse_entries(origin, &text, plain, &mut warnings)?;
    warn_all(&warnings);
    for spec in specs {
        let source = command::hash_source(spec)?;
        let report = hash::update(&hash::db_path(&source), origin, &entries, opts)?;
        warn_all(&report.warnings);
    }
    Ok(())
}

fn warn_all(warnings: &[tables::Warning]) {
    for w in warnings {
        eprintln!("postmap: warning: {w}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Args, Fatal> {
        parse_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn getopt_style_options() {
        let a = args(&["-fr", "-qKey", "hash:/x"]).ok().unwrap();
        assert!(!a.fold_case);
        assert_eq!(a.duplicates, Duplicates::Replace);
        assert_eq!(a.mode, Mode::Query("Key".into()));
        let a = args(&["-c", "/etc/x", "-d", "k", "f"]).ok().unwrap();
        assert_eq!(a.config_dir, Some(PathBuf::from("/etc/x")));
        assert_eq!(a.mode, Mode::Delete("k".into()));
        assert_eq!(a.maps, vec!["f".to_string()]);
        assert_eq!(args(&["-i", "f"]).ok().unwrap().mode, Mode::Incremental);
        assert!(args(&["-s", "-q", "k", "f"]).is_err());
        assert!(args(&["-Z", "f"]).is_err());
        assert!(args(&["-q"]).is_err());
        assert!(args(&[]).is_err());
    }
}
