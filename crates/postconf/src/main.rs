//! postconf - Postfix configuration utility
//!
//! # Synopsis
//!
//! ```text
//! postconf [-dhnx] [-c config_dir] [parameter ...]
//! postconf [-e] [-c config_dir] parameter=value ...
//! postconf -X [-c config_dir] parameter ...
//! postconf -# [-c config_dir] parameter ...
//! postconf -M [-x] [-c config_dir] [service[/type] ...]
//! ```
//!
//! # Description
//!
//! Prints main.cf parameters, edits main.cf, or prints master.cf entries,
//! as Postfix's postconf(1) does.
//!
//! With no options, prints every known parameter as `name = value`, sorted
//! by name, with the value main.cf gives or else the built-in default, not
//! expanded. Named parameters print just those.
//!
//! * `-c config_dir`: main.cf and master.cf are in config_dir instead of
//!   `$MAIL_CONFIG` or `/etc/postfix`.
//! * `-d`: print built-in defaults instead of actual settings.
//! * `-n`: print only parameters main.cf sets.
//! * `-h`: print values only, without `name = `.
//! * `-x`: expand `$name` in printed values.
//! * `-e name=value ...`, or `name=value ...` without `-e`: set parameters
//!   in main.cf, keeping comments and other lines; an existing definition
//!   (continuation lines included) is replaced, a new one appended.
//! * `-X name ...`: remove parameters from main.cf.
//! * `-# name ...`: comment parameters out in main.cf.
//! * `-M [service[/type] ...]`: print master.cf entries, one per line,
//!   columns aligned; with operands only the named services. With `-x`,
//!   `$name` in `-o` values is expanded (`$service_name`, `$process_name`
//!   too); other arguments stay as written.
//! * `-F [service[/type[/field]] ...]`: master.cf fields, one per line, as
//!   `service/type/field = value` (field: service, type, private,
//!   unprivileged, chroot, wakeup, process_limit, command).
//! * `-P [service[/type[/parameter]] ...]`: master.cf `-o` settings as
//!   `service/type/parameter = value`.
//! * `-l`, `-m`, `-a`, `-A`: the mailbox locking methods, lookup table
//!   types, SASL server and client types this suite offers.
//! * `-T compile-version|run-version|public-key-algorithms`: what the TLS
//!   library is (rustls: there is no OpenSSL).
//!
//! # Talks to
//!
//! Nothing: reads and writes files only.
//!
//! # Security
//!
//! Runs as the invoking user; needs write access to the configuration
//! directory for `-e`, `-X` and `-#`. main.cf and master.cf are parsed with
//! the `config` library, which bounds expansion and never panics on bad
//! input. Edits write `main.cf.tmp` under an exclusive lock, fsync it and
//! rename it over main.cf, keeping the file's permission bits.
//!
//! # Diagnostics
//!
//! Problems go to stderr as `postconf: warning: ...` (an unknown parameter
//! asked for, an unused one in main.cf) or `postconf: fatal: ...` (a bad
//! value of a known parameter, naming file and line; a malformed line; an
//! unreadable file; bad usage), after which postconf exits with status 1.
//!
//! # Configuration parameters
//!
//! * config_directory (/etc/postfix): where main.cf and master.cf live.
//! * default_process_limit (100): shown for `-` in master.cf's maxproc only
//!   when expanded.
//! * Every parameter of the `config` crate's table: printed by `-d`.
//!
//! # See also
//!
//! postconf(5) for the parameters, master(5) for master.cf, postfix(1).

mod args;
mod edit;
mod lists;
mod master;

use args::{Args, Mode};
use config::Config;
use config::master_cf;
use edit::Change;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(argv) = config::getopt::utf8_args() else {
        eprintln!("postconf: fatal: usage: {}", args::USAGE);
        return ExitCode::from(1);
    };
    let args = match args::parse(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("postconf: fatal: {e}");
            eprintln!("postconf: fatal: usage: {}", args::USAGE);
            return ExitCode::from(1);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("postconf: fatal: {e}");
            ExitCode::from(1)
        }
    }
}

fn warn(msg: &str) {
    eprintln!("postconf: warning: {msg}");
}

fn run(args: &Args) -> Result<(), String> {
    let dir = args
        .config_dir
        .clone()
        .unwrap_or_else(config::default_config_dir);
    let mut out = std::io::stdout().lock();
    let result = match args.mode {
        Mode::Print => print_main(args, &dir, &mut out),
        Mode::Master => print_master(args, &dir, &mut out),
        Mode::MasterFields | Mode::MasterParams => master::print(args, &dir, &mut out),
        Mode::Locks => lists::print(&mut out, lists::LOCKS),
        Mode::MapTypes => lists::print(&mut out, lists::MAP_TYPES),
        Mode::SaslServer => lists::print(&mut out, lists::SASL_SERVER),
        Mode::SaslClient => lists::print(&mut out, lists::SASL_CLIENT),
        Mode::Tls => lists::tls(&args.tls_mode, &mut out),
        Mode::Edit | Mode::Remove | Mode::Comment => edit_main(args, &dir),
    };
    match out.flush() {
        // A closed pipe (postconf | head) is not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(format!("write standard output: {e}"));
        }
        _ => {}
    }
    result
}

/// Loads main.cf, printing its warnings.
pub(crate) fn load(dir: &Path) -> Result<Config, String> {
    let config = Config::load(dir).map_err(|e| e.to_string())?;
    for w in config.warnings() {
        warn(w);
    }
    Ok(config)
}

fn print_main(args: &Args, dir: &Path, out: &mut impl Write) -> Result<(), String> {
    let config = if args.defaults {
        Config::defaults(dir)
    } else {
        load(dir)?
    };
    let lines: Vec<(String, String)> = if args.operands.is_empty() {
        all_values(args, &config)
    } else {
        named_values(args, &config)
    };
    for (name, raw) in lines {
        let value = if args.expand {
            config
                .expand(&raw)
                .map_err(|e| format!("parameter {name}: {e}"))?
        } else {
            raw
        };
        let value = normalize_space(&value);
        let line = if args.values_only {
            format!("{value}\n")
        } else if value.is_empty() {
            format!("{name} =\n")
        } else {
            format!("{name} = {value}\n")
        };
        if write_ok(out, &line)? {
            break;
        }
    }
    Ok(())
}

/// The value as postconf prints it: words separated by one space, as
/// Postfix's pcf_print_line does (main.cf keeps a continuation line's
/// whitespace; daemons see it, postconf's output does not).
fn normalize_space(value: &str) -> String {
    value
        .split([' ', '\t', '\r', '\n'])
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every parameter to print when none are named.
fn all_values(args: &Args, config: &Config) -> Vec<(String, String)> {
    if args.defaults {
        return config
            .defaults_raw()
            .into_iter()
            .map(|(n, v)| (n.to_string(), v))
            .collect();
    }
    if args.non_default {
        return config
            .main_cf_settings()
            .map(|(n, s)| (n.to_string(), s.value.clone()))
            .collect();
    }
    config
        .defaults_raw()
        .into_iter()
        .map(|(n, _)| (n.to_string(), config.raw(n).unwrap_or_default()))
        .collect()
}

/// The parameters named on the command line, warning about unknown ones.
fn named_values(args: &Args, config: &Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in &args.operands {
        let value = if args.defaults {
            config.default_raw(name)
        } else if args.non_default {
            match config.main_cf_settings().find(|(n, _)| n == name) {
                Some((_, s)) => Some(s.value.clone()),
                None if config.default_raw(name).is_some() => continue,
                None => None,
            }
        } else {
            config.raw(name)
        };
        match value {
            Some(v) => out.push((name.clone(), v)),
            None => warn(&format!(
                "{}: unknown parameter",
                config::main_cf::printable(name, 100)
            )),
        }
    }
    out
}

/// Writes a line; returns true when the reader went away (stop quietly).
pub(crate) fn write_ok(out: &mut impl Write, line: &str) -> Result<bool, String> {
    match out.write_all(line.as_bytes()) {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(true),
        Err(e) => Err(format!("write standard output: {e}")),
    }
}

fn print_master(args: &Args, dir: &Path, out: &mut impl Write) -> Result<(), String> {
    let path: PathBuf = dir.join("master.cf");
    let entries = master_cf::load_entries(&path, 100).map_err(|e| e.to_string())?;
    let config = if args.expand { Some(load(dir)?) } else { None };
    let mut matched = vec![false; args.operands.len()];
    for e in entries {
        let selected = args.operands.is_empty()
            || args.operands.iter().enumerate().any(|(i, op)| {
                let hit = match op.split_once('/') {
                    Some((name, kind)) => e.service.name == name && e.service.kind.as_str() == kind,
                    None => e.service.name == *op,
                };
                if hit && let Some(m) = matched.get_mut(i) {
                    *m = true;
                }
                hit
            });
        if !selected {
            continue;
        }
        let mut e = e;
        if let Some(config) = &config {
            expand_options(config, &mut e)
                .map_err(|err| format!("{}, line {}: {err}", path.display(), e.service.line))?;
        }
        if write_ok(out, &format!("{}\n", master_cf::format_entry(&e)))? {
            break;
        }
    }
    for (op, hit) in args.operands.iter().zip(matched) {
        if !hit {
            warn(&format!(
                "{}: no such master.cf entry",
                config::main_cf::printable(op, 100)
            ));
        }
    }
    Ok(())
}

/// Expands `$name` in the values of an entry's `-o` options, as Postfix's
/// `postconf -Mx` does: `$service_name` is the service (first column),
/// `$process_name` the command's base name. Other arguments (a pipe's
/// `${recipient}`) are the delivery agent's to expand and stay as written.
pub(crate) fn expand_options(config: &Config, e: &mut master_cf::Entry) -> Result<(), String> {
    let mut config = config.clone();
    let process = e
        .command
        .first()
        .map(|c| c.rsplit('/').next().unwrap_or(c).to_string())
        .unwrap_or_default();
    config.set_override("service_name", &e.service.name);
    config.set_override("process_name", &process);
    let mut i = 1;
    while let Some(arg) = e.command.get(i) {
        if !arg.starts_with('-') || arg == "--" {
            break;
        }
        if arg == "-o"
            && let Some(value) = e.command.get_mut(i + 1)
        {
            *value = config.expand(value).map_err(|err| err.to_string())?;
            i += 1;
        }
        i += 1;
    }
    Ok(())
}

fn edit_main(args: &Args, dir: &Path) -> Result<(), String> {
    let mut changes: BTreeMap<String, Change> = BTreeMap::new();
    for op in &args.operands {
        let (name, change) = match args.mode {
            Mode::Edit => {
                let (name, value) = config::main_cf::split_nameval(op)
                    .map_err(|_| format!("-e requires name=value input, not \"{op}\""))?;
                check_new_value(name, value)?;
                (name.to_string(), Change::Set(value.to_string()))
            }
            Mode::Remove | Mode::Comment => {
                if op.contains(['=', ' ', '\t', '\n']) || op.is_empty() {
                    return Err(format!("bad parameter name: \"{op}\""));
                }
                let change = if args.mode == Mode::Remove {
                    Change::Remove
                } else {
                    Change::Comment
                };
                (op.clone(), change)
            }
            _ => return Err("internal error: not an edit".into()),
        };
        if name.contains(['\n', '#']) {
            return Err(format!("bad parameter name: \"{name}\""));
        }
        changes.insert(name, change);
    }
    let path = dir.join("main.cf");
    let text = match std::fs::read(&path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && args.mode == Mode::Edit => {
            String::new()
        }
        Err(e) => return Err(format!("open {}: {e}", path.display())),
    };
    let new = edit::apply(&text, &changes);
    if new != text {
        edit::replace_file(&path, &new)?;
    }
    Ok(())
}

/// Refuses a value that main.cf could not hold (a newline) or that is
/// plainly wrong for a known parameter's type. Values with `$` are checked
/// when the configuration is loaded, after expansion.
fn check_new_value(name: &str, value: &str) -> Result<(), String> {
    if value.contains('\n') || name.contains('\n') {
        return Err(format!("bad value for {name}: it contains a newline"));
    }
    if value.contains('$') {
        return Ok(());
    }
    if let Some(p) = config::params::lookup(name) {
        config::value::check(&p.kind, value).map_err(|problem| problem.message(name, value))?;
    }
    Ok(())
}
