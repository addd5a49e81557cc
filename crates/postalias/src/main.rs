//! postalias - Postfix alias database maintenance
//!
//! # Synopsis
//!
//! ```text
//! postalias [-NfinoprsuUvw] [-c config_dir] [-d key] [-q key] [file_type:]file_name ...
//! ```
//!
//! # Description
//!
//! Without `-q`, `-d` or `-s`, postalias builds the indexed database of
//! each aliases(5) file: `hash:/etc/aliases` reads `/etc/aliases` and
//! writes `/etc/aliases.db` (the same cdb index postmap builds, through
//! `tables::hash`, written to a temporary file and renamed into place).
//! The text format: `name: value, value, ...`; lines that start with
//! whitespace continue the previous one; `#` starts a comment line; a name
//! with special characters is quoted (`"john doe": ...`). Names are stored
//! in internal form (quotes removed) and lowercased; each value is stored
//! with its members separated by `, `. As Postfix does, every database
//! also gets the entry `@` → `@`, which tells sendmail-compatible readers
//! that the database is complete. newaliases runs `postalias` for each
//! alias_database entry.
//!
//! - `-c config_dir`: read main.cf from here (default `$MAIL_CONFIG` or
//!   /etc/postfix).
//! - `-d key`: remove `key` from each database (`-d -`: keys from stdin).
//! - `-f`: do not lowercase names (building, querying, deleting).
//! - `-i`: incremental: add aliases(5) lines from stdin to the existing
//!   database instead of rebuilding it.
//! - `-q key`: print the value of `key` from the first database that has
//!   it; `-q -`: keys from stdin, prints `key:<TAB>value` for each found.
//! - `-r`: a name seen twice keeps its last value, silently.
//! - `-s`: print every entry as `key:<TAB>value`.
//! - `-w`: a name seen twice keeps its first value, silently.
//! - `-N`, `-n`, `-o`, `-p`, `-u`, `-U`, `-v`: accepted for compatibility.
//!
//! A name without a type uses default_database_type. Other table types
//! (texthash, inline, ...) can be queried with `-q`.
//!
//! # Talks to
//!
//! Nothing: it reads and writes files only.
//!
//! # Security
//!
//! Not set-uid. When root builds a database, the index gets the owner and
//! group of the source file, as Postfix's postalias (which drops to the
//! source owner) would create it. The source is untrusted text: bounded
//! (the tables library's line and file limits), never a panic.
//!
//! # Diagnostics
//!
//! `postalias: warning: FILE, line N: ...` for skipped lines (no `:`, no
//! value, a duplicate name); `postalias: fatal: ...` and exit 1 when a file
//! cannot be read or written. `-q` and `-d` exit 0 when a key was found,
//! 1 when not.
//!
//! # Configuration parameters
//!
//! - default_database_type (hash).
//! - alias_database (hash:/etc/aliases): what newaliases builds.
//!
//! # See also
//!
//! aliases(5), newaliases(1), postmap(1), local(8).

mod aliases;

use aliases::Duplicates;
use config::getopt::{Arg, getopt};
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tables::{command, hash};

const USAGE: &str =
    "usage: postalias [-NfinoprsuUvw] [-c config_dir] [-d key] [-q key] [map_type:]file...";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Build,
    Incremental,
    Query(String),
    Delete(String),
    Show,
}

#[derive(Debug)]
struct Args {
    config_dir: Option<PathBuf>,
    mode: Mode,
    fold_case: bool,
    duplicates: Duplicates,
    maps: Vec<String>,
}

struct Fatal(String);

impl<E: std::fmt::Display> From<E> for Fatal {
    fn from(e: E) -> Fatal {
        Fatal(e.to_string())
    }
}

fn main() -> ExitCode {
    let argv = config::getopt::utf8_args().ok_or_else(|| Fatal(USAGE.into()));
    match argv
        .and_then(|argv| parse_args(&argv))
        .and_then(|a| run(&a))
    {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(Fatal(msg)) => {
            eprintln!("postalias: fatal: {msg}");
            ExitCode::from(1)
        }
    }
}

fn parse_args(argv: &[String]) -> Result<Args, Fatal> {
    let mut a = Args {
        config_dir: None,
        mode: Mode::Build,
        fold_case: true,
        duplicates: Duplicates::Warn,
        maps: Vec::new(),
    };
    let mut modes = 0;
    let mut incremental = false;
    for arg in getopt(argv, "cdq").map_err(|_| Fatal(USAGE.into()))? {
        match arg {
            Arg::Operand(map) => a.maps.push(map),
            Arg::Value('c', dir) => a.config_dir = Some(PathBuf::from(dir)),
            Arg::Value('d', key) => {
                modes += 1;
                a.mode = Mode::Delete(key);
            }
            Arg::Value(_, key) => {
                modes += 1;
                a.mode = Mode::Query(key);
            }
            Arg::Flag('f') => a.fold_case = false,
            Arg::Flag('i') => incremental = true,
            Arg::Flag('r') => a.duplicates = Duplicates::Replace,
            Arg::Flag('w') => a.duplicates = Duplicates::Ignore,
            Arg::Flag('s') => {
                modes += 1;
                a.mode = Mode::Show;
            }
            Arg::Flag('N' | 'n' | 'o' | 'p' | 'u' | 'U' | 'v') => {}
            Arg::Flag(_) => return Err(Fatal(USAGE.into())),
        }
    }
    if modes > 1 {
        return Err(Fatal("specify only one of -s -q or -d".into()));
    }
    if incremental && a.mode == Mode::Build {
        a.mode = Mode::Incremental;
    }
    if a.maps.is_empty() {
        return Err(Fatal(USAGE.into()));
    }
    Ok(a)
}

fn run(a: &Args) -> Result<bool, Fatal> {
    let default_type = default_database_type(a.config_dir.as_deref())?;
    let specs: Vec<String> = a
        .maps
        .iter()
        .map(|m| command::full_spec(m, &default_type))
        .collect();
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    match &a.mode {
        Mode::Build => build_all(&specs, a).map(|()| true),
        Mode::Incremental => incremental_all(&specs, a).map(|()| true),
        Mode::Query(k) => {
            // postalias prints no open-time warnings (stale index) on a query.
            let maps = command::open_all(&specs, a.fold_case, |_| {})?;
            let mut out = BufWriter::new(stdout.lock());
            Ok(command::query(
                &maps,
                k,
                &mut stdin.lock(),
                &mut out,
                ":\t",
            )?)
        }
        Mode::Delete(k) => Ok(command::delete(&specs, k, a.fold_case, &mut stdin.lock())?),
        Mode::Show => {
            let mut out = BufWriter::new(stdout.lock());
            command::show(&specs, &mut out, ":\t")?;
            Ok(true)
        }
    }
}

/// default_database_type from main.cf; the built-in default when there is
/// no main.cf and -c did not name a directory.
fn default_database_type(dir: Option<&Path>) -> Result<String, Fatal> {
    let cfg = config::Config::load_for_command(dir)?;
    Ok(cfg
        .get("default_database_type")
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "hash".into()))
}

/// Adds Postfix's `@` → `@` completeness entry unless present.
fn with_sentinel(mut entries: Vec<(String, String)>) -> Vec<(String, String)> {
    if !entries.iter().any(|(k, _)| k == "@") {
        entries.push(("@".into(), "@".into()));
    }
    entries
}

fn warn_all(path: &Path, skipped: &[aliases::Skipped]) {
    for s in skipped {
        eprintln!(
            "postalias: warning: {}, line {}: {}",
            path.display(),
            s.line,
            s.text
        );
    }
}

fn build_all(specs: &[String], a: &Args) -> Result<(), Fatal> {
    for spec in specs {
        let source = command::hash_source(spec)?;
        let text = tables::text::read_text(&source)?;
        let (entries, skipped) = aliases::parse(&source, &text, a.fold_case, a.duplicates)?;
        warn_all(&source, &skipped);
        let db = hash::db_path(&source);
        hash::write_index(&db, &with_sentinel(entries))?;
        command::give_to_source_owner(&db, &source)?;
    }
    Ok(())
}

fn incremental_all(specs: &[String], a: &Args) -> Result<(), Fatal> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    let origin = Path::new("stdin");
    let (new, skipped) = aliases::parse(origin, &text, a.fold_case, Duplicates::Replace)?;
    warn_all(origin, &skipped);
    for spec in specs {
        let db = hash::db_path(&command::hash_source(spec)?);
        let mut entries = match std::fs::metadata(&db) {
            Ok(_) => hash::read_all(&db)?,
            Err(_) => Vec::new(),
        };
        for (k, v) in &new {
            match entries.iter_mut().find(|(ek, _)| ek == k) {
                Some(e) if a.duplicates == Duplicates::Replace => e.1 = v.clone(),
                Some(_) if a.duplicates == Duplicates::Warn => {
                    eprintln!(
                        "postalias: warning: {}: duplicate entry: \"{k}\"",
                        db.display()
                    );
                }
                Some(_) => {}
                None => entries.push((k.clone(), v.clone())),
            }
        }
        hash::write_index(&db, &with_sentinel(entries))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Args, Fatal> {
        parse_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn command_lines() {
        let a = args(&["-q", "root", "/etc/aliases"]).ok().unwrap();
        assert_eq!(a.mode, Mode::Query("root".into()));
        assert_eq!(command::full_spec(&a.maps[0], "hash"), "hash:/etc/aliases");
        assert_eq!(args(&["-i", "x"]).ok().unwrap().mode, Mode::Incremental);
        assert!(args(&["-s", "-q", "k", "x"]).is_err());
        assert!(args(&[]).is_err());
        assert!(args(&["-Z", "x"]).is_err());
        assert_eq!(
            with_sentinel(vec![("a".into(), "b".into())]),
            vec![("a".into(), "b".into()), ("@".into(), "@".into())]
        );
    }
}
