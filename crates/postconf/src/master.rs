//! `postconf -F` and `-P`: master.cf fields and `-o` settings, one per
//! line, as Postfix's postconf prints them:
//!
//! ```text
//! smtp/inet/process_limit = -
//! submission/inet/syslog_name = postfix/$service_name
//! ```
//!
//! Operands select `service`, `service/type` or `service/type/name`.

use crate::args::{Args, Mode};
use config::master_cf::{self, Entry};
use std::io::Write;
use std::path::Path;

/// The field names of `-F`, in column order.
const FIELDS: [&str; 8] = [
    "service",
    "type",
    "private",
    "unprivileged",
    "chroot",
    "wakeup",
    "process_limit",
    "command",
];

/// Prints `-F` or `-P` output.
pub(crate) fn print(args: &Args, dir: &Path, out: &mut impl Write) -> Result<(), String> {
    let path = dir.join("master.cf");
    let entries = master_cf::load_entries(&path, 100).map_err(|e| e.to_string())?;
    let config = if args.expand {
        Some(crate::load(dir)?)
    } else {
        None
    };
    for mut e in entries {
        if let Some(c) = &config {
            crate::expand_options(c, &mut e)
                .map_err(|err| format!("{}, line {}: {err}", path.display(), e.service.line))?;
        }
        let lines = if args.mode == Mode::MasterParams {
            params(&e)
        } else {
            fields(&e)
        };
        let prefix = format!("{}/{}", e.service.name, e.service.kind.as_str());
        for (name, value) in lines {
            if !selected(&args.operands, &e, &name) {
                continue;
            }
            if crate::write_ok(out, &format!("{prefix}/{name} = {value}\n"))? {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// True when no operand is given or one names this entry (and `name`).
fn selected(operands: &[String], e: &Entry, name: &str) -> bool {
    operands.is_empty()
        || operands.iter().any(|op| {
            let mut parts = op.splitn(3, '/');
            let service = parts.next().unwrap_or("");
            let kind = parts.next();
            let field = parts.next();
            service == e.service.name
                && kind.is_none_or(|k| k == e.service.kind.as_str())
                && field.is_none_or(|f| f == name)
        })
}

/// The eight fields; the command with its arguments as `-M` shows them.
fn fields(e: &Entry) -> Vec<(String, String)> {
    let full = master_cf::format_entry(e);
    // format_entry pads seven columns; the command is what follows them.
    let command = full
        .split_whitespace()
        .skip(7)
        .collect::<Vec<_>>()
        .join(" ");
    FIELDS
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let value = if i < 7 {
                e.columns.get(i).cloned().unwrap_or_default()
            } else {
                command.clone()
            };
            ((*f).to_string(), value)
        })
        .collect()
}

/// The `-o name=value` settings before the command's own arguments,
/// sorted by name (a later one for the same name wins).
fn params(e: &Entry) -> Vec<(String, String)> {
    let mut out: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    let mut i = 1;
    while let Some(arg) = e.command.get(i) {
        if !arg.starts_with('-') || arg == "--" {
            break;
        }
        if arg == "-o"
            && let Some(kv) = e.command.get(i + 1)
        {
            if let Some((k, v)) = kv.split_once('=') {
                out.insert(k.trim().to_string(), v.trim().to_string());
            }
            i += 1;
        }
        i += 1;
    }
    out.into_iter().collect()
}
