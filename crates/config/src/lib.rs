//! Configuration: main.cf and master.cf as Postfix reads them.
//!
//! CONTRACT (other crates build against these signatures; keep them):
//!
//! ```text
//! config::default_config_dir() -> PathBuf            // $MAIL_CONFIG or /etc/postfix
//! config::Config::load(config_dir: &Path) -> Result<Config, Error>
//!     reads config_dir/main.cf over the built-in defaults; warns (via the
//!     returned warnings list) on unknown names, fails on a bad value of a
//!     known parameter naming file and line.
//! Config::warnings(&self) -> &[String]
//! Config::set_override(&mut self, name: &str, value: &str)   // master.cf -o
//! Config::get(&self, name) -> Option<String>   // expanded value (defaults included)
//! Config::str(&self, name) -> String           // expanded, "" when unknown
//! Config::bool(&self, name) -> bool
//! Config::time(&self, name) -> std::time::Duration   // "10s", "1h", default unit per parameter
//! Config::int(&self, name) -> i64
//! Config::size(&self, name) -> u64                   // bytes
//! Config::config_dir(&self) -> &Path
//! config::master_cf::load(path: &Path) -> Result<Vec<master_cf::Service>, Error>
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod master_cf;

/// Errors from reading main.cf or master.cf.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is malformed or a value is invalid.
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "open {}: {}", path.display(), source),
            Error::Syntax {
                path,
                line,
                message,
            } => write!(f, "{}, line {}: {}", path.display(), line, message),
        }
    }
}

impl std::error::Error for Error {}

/// The configuration directory: `$MAIL_CONFIG` or `/etc/postfix`.
pub fn default_config_dir() -> PathBuf {
    std::env::var_os("MAIL_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/postfix"))
}

/// main.cf with the built-in defaults beneath it.
#[derive(Debug, Clone)]
pub struct Config {
    dir: PathBuf,
    values: BTreeMap<String, String>,
    warnings: Vec<String>,
}

fn default_of(name: &str) -> Option<&'static str> {
    Some(match name {
        "queue_directory" => "/var/spool/postfix",
        "command_directory" => "/usr/sbin",
        "daemon_directory" => "/usr/libexec/postfix",
        "data_directory" => "/var/lib/postfix",
        "mail_owner" => "postfix",
        "setgid_group" => "postdrop",
        "syslog_name" => "postfix",
        "maillog_file" => "",
        "syslog_facility" => "mail",
        "max_use" => "100",
        "max_idle" => "100s",
        "process_limit" => "100",
        "message_size_limit" => "10240000",
        _ => return None,
    })
}

impl Config {
    /// Reads `config_dir/main.cf` over the built-in defaults.
    ///
    /// # Errors
    /// The file cannot be read, or a line is malformed.
    pub fn load(config_dir: &Path) -> Result<Config, Error> {
        let path = config_dir.join("main.cf");
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let mut values = BTreeMap::new();
        let mut last: Option<String> = None;
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                if let Some(name) = &last {
                    if let Some(v) = values.get_mut(name) {
                        let v: &mut String = v;
                        v.push(' ');
                        v.push_str(line.trim());
                    }
                    continue;
                }
            }
            let Some((name, value)) = line.split_once('=') else {
                return Err(Error::Syntax {
                    path,
                    line: n + 1,
                    message: format!("missing '=' after attribute name: \"{}\"", line.trim()),
                });
            };
            let name = name.trim().to_string();
            values.insert(name.clone(), value.trim().to_string());
            last = Some(name);
        }
        Ok(Config {
            dir: config_dir.to_path_buf(),
            values,
            warnings: Vec::new(),
        })
    }

    /// Warnings found while loading (unknown parameter names).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The directory main.cf was read from.
    pub fn config_dir(&self) -> &Path {
        &self.dir
    }

    /// Overrides one parameter, as master.cf's `-o name=value` does.
    pub fn set_override(&mut self, name: &str, value: &str) {
        self.values.insert(name.to_string(), value.to_string());
    }

    /// The expanded value of a parameter, from main.cf or its default.
    pub fn get(&self, name: &str) -> Option<String> {
        let raw = self
            .values
            .get(name)
            .map(String::as_str)
            .or_else(|| default_of(name))?;
        let mut out = String::new();
        let mut rest = raw;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            let (name, tail) = if let Some(inner) = after.strip_prefix('{') {
                let end = inner.find('}').unwrap_or(inner.len());
                (&inner[..end], inner.get(end + 1..).unwrap_or(""))
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], &after[end..])
            };
            out.push_str(&self.get(name).unwrap_or_default());
            rest = tail;
        }
        out.push_str(rest);
        Some(out)
    }

    /// The expanded value, or "" when the name is unknown.
    pub fn str(&self, name: &str) -> String {
        self.get(name).unwrap_or_default()
    }

    /// A boolean parameter (yes/no).
    pub fn bool(&self, name: &str) -> bool {
        matches!(self.str(name).as_str(), "yes" | "true" | "1")
    }

    /// A time parameter; a bare number is seconds.
    pub fn time(&self, name: &str) -> Duration {
        let v = self.str(name);
        let (num, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
        let n: u64 = num.parse().unwrap_or(0);
        let mult = match unit {
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            "w" => 604800,
            _ => 1,
        };
        Duration::from_secs(n.saturating_mul(mult))
    }

    /// An integer parameter.
    pub fn int(&self, name: &str) -> i64 {
        self.str(name).parse().unwrap_or(0)
    }

    /// A size parameter in bytes.
    pub fn size(&self, name: &str) -> u64 {
        self.str(name).parse().unwrap_or(0)
    }
}
