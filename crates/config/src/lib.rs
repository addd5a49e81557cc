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
//!
//! Beyond the contract: [`Config::try_set_override`] (validated `-o`),
//! [`Config::load_for_command`] (main.cf or, when absent, the defaults),
//! [`Config::try_get`], [`Config::raw`] and [`Config::default_raw`]
//! (unexpanded values for postconf), [`Config::is_set_in_main_cf`],
//! [`Config::main_cf_settings`], [`Config::from_text`],
//! [`Config::unsupported_warnings`] (parameters set that no program reads
//! yet, see [`unsupported`]), the parameter table in [`params`], the expander in [`expand`] and the line reader in
//! [`main_cf`].
//!
//! # Semantics
//!
//! Values are looked up in this order: an override (master.cf `-o`), the last
//! definition in main.cf, the built-in default. `get` and the typed
//! accessors expand `$name` references recursively (see [`expand`]).
//! [`Config::load`] checks every known parameter once: each must expand and
//! parse under its type and bounds, or loading fails with an error naming
//! main.cf and the line (for a value taken from main.cf). A name main.cf
//! sets that is neither known, nor a per-transport parameter, nor referenced
//! by another value, gives a warning like Postfix's `unused parameter`.
//!
//! # Diagnostics
//!
//! Nothing here panics on any main.cf or master.cf content; expansion is
//! bounded in depth and size (see [`expand::MAX_DEPTH`],
//! [`expand::MAX_OUTPUT`]).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod enums;
pub mod expand;
pub mod getopt;
pub mod main_cf;
pub mod master_cf;
pub mod networks;
pub mod params;
pub mod restrictions;
pub mod unsupported;
pub mod value;

pub use expand::ExpandError;
pub use params::{Kind, Param};
pub use value::Problem;

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
    /// A configuration file is larger than we read.
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// A known parameter's value does not parse under its type or is out of
    /// bounds.
    BadValue {
        /// Where the value came from.
        origin: Origin,
        /// The parameter.
        name: String,
        /// The (expanded) value.
        value: String,
        /// What is wrong with it.
        problem: Problem,
    },
    /// A value could not be expanded (a loop, too deep, too long, bad `$`).
    Expand {
        /// Where the value came from.
        origin: Origin,
        /// The parameter being expanded.
        name: String,
        /// What went wrong.
        source: ExpandError,
    },
}

/// Where a parameter value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// A main.cf line.
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
    },
    /// An override (master.cf `-o`, or a program's own setting).
    Override,
    /// The built-in default (which may refer to main.cf values).
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}, line {}: ", path.display(), line),
            Origin::Override => write!(f, "override: "),
            Origin::Default => Ok(()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => match source.raw_os_error() {
                // "No such file or directory", without Rust's "(os error 2)".
                Some(code) => write!(
                    f,
                    "open {}: {}",
                    path.display(),
                    nix::errno::Errno::from_raw(code).desc()
                ),
                None => write!(f, "open {}: {}", path.display(), source),
            },
            Error::Syntax {
                path,
                line,
                message,
            } => write!(f, "{}, line {}: {}", path.display(), line, message),
            Error::TooLarge { path, limit } => {
                write!(f, "{}: file is larger than {limit} bytes", path.display())
            }
            Error::BadValue {
                origin,
                name,
                value,
                problem,
            } => write!(
                f,
                "{origin}{}",
                problem.message(name, &main_cf::printable(value, 100))
            ),
            Error::Expand {
                origin,
                name,
                source,
            } => write!(f, "{origin}parameter {name}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Expand { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The configuration directory: `$MAIL_CONFIG` or `/etc/postfix`.
pub fn default_config_dir() -> PathBuf {
    std::env::var_os("MAIL_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/postfix"))
}

/// One main.cf definition (the last one of its name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Raw, unexpanded value.
    pub value: String,
    /// 1-based line where the definition starts.
    pub line: usize,
}

/// main.cf with the built-in defaults beneath it.
#[derive(Debug, Clone)]
pub struct Config {
    dir: PathBuf,
    path: PathBuf,
    main_cf: BTreeMap<String, Setting>,
    overrides: BTreeMap<String, String>,
    hostname: String,
    warnings: Vec<String>,
}

impl Config {
    /// Reads `config_dir/main.cf` over the built-in defaults and checks it.
    ///
    /// # Errors
    /// main.cf cannot be read, a line is malformed, or a known parameter's
    /// value is bad or cannot be expanded (the error names file and line).
    pub fn load(config_dir: &Path) -> Result<Config, Error> {
        let path = config_dir.join("main.cf");
        let text = main_cf::read_file(&path)?;
        let mut config = Config::from_text(config_dir, &text)?;
        // Names master.cf refers to in `-o name=$other` are in use too.
        if let Ok(master) = main_cf::read_file(&config_dir.join("master.cf")) {
            config.warn_unused(&master);
        } else {
            config.warn_unused("");
        }
        Ok(config)
    }

    /// Loads main.cf for a command run by hand (postmap, postalias): from
    /// `dir` when `-c` named one, which must hold a main.cf; else from
    /// [`default_config_dir`], where a missing main.cf (a fresh development
    /// machine) means the built-in defaults.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load_for_command(dir: Option<&Path>) -> Result<Config, Error> {
        match dir {
            Some(dir) => Config::load(dir),
            None => {
                let dir = default_config_dir();
                if dir.join("main.cf").exists() {
                    Config::load(&dir)
                } else {
                    Ok(Config::defaults(&dir))
                }
            }
        }
    }

    /// Builds a configuration from main.cf text (as if read from
    /// `config_dir/main.cf`) and checks it like [`Config::load`]. Unused
    /// parameter warnings consider only main.cf itself.
    ///
    /// # Errors
    /// As [`Config::load`], without I/O errors.
    pub fn from_text(config_dir: &Path, text: &str) -> Result<Config, Error> {
        let path = config_dir.join("main.cf");
        let (entries, warnings) = main_cf::parse(text, &path)?;
        let mut main = BTreeMap::new();
        for e in entries {
            main.insert(
                e.name,
                Setting {
                    value: e.value,
                    line: e.line,
                },
            );
        }
        let mut config = Config {
            dir: config_dir.to_path_buf(),
            path,
            main_cf: main,
            overrides: BTreeMap::new(),
            hostname: params::system_hostname(),
            warnings,
        };
        let more = config.check()?;
        config.warnings.extend(more);
        Ok(config)
    }

    /// Only the built-in defaults, as `postconf -d` shows them.
    pub fn defaults(config_dir: &Path) -> Config {
        Config {
            dir: config_dir.to_path_buf(),
            path: config_dir.join("main.cf"),
            main_cf: BTreeMap::new(),
            overrides: BTreeMap::new(),
            hostname: params::system_hostname(),
            warnings: Vec::new(),
        }
    }

    /// Adds `unused parameter` warnings for main.cf names that are unknown,
    /// not per-transport parameters and not referenced by any value in
    /// main.cf or in `other_text` (master.cf).
    fn warn_unused(&mut self, other_text: &str) {
        let mut used: HashSet<String> = expand::references(other_text).into_iter().collect();
        for s in self.main_cf.values() {
            used.extend(expand::references(&s.value));
        }
        // Restriction class names are parameters the SMTP server looks up.
        if let Some(classes) = self.main_cf.get("smtpd_restriction_classes") {
            used.extend(
                classes
                    .value
                    .split([',', ' ', '\t'])
                    .filter(|c| !c.is_empty())
                    .map(str::to_string),
            );
        }
        let mut unused: Vec<(&String, &Setting)> = self
            .main_cf
            .iter()
            .filter(|(name, _)| {
                params::lookup(name).is_none()
                    && !params::is_transport_param(name)
                    && !used.contains(name.as_str())
            })
            .collect();
        unused.sort_by_key(|(_, s)| s.line);
        let new: Vec<String> = unused
            .into_iter()
            .map(|(name, s)| {
                format!(
                    "{}, line {}: unused parameter: {}={}",
                    self.path.display(),
                    s.line,
                    name,
                    main_cf::printable(&s.value, 100)
                )
            })
            .collect();
        self.warnings.extend(new);
    }

    /// Checks every main.cf setting (in file order, so the first bad line
    /// is reported) and then every other known parameter. A parameter no
    /// one uses may hold text that does not expand (Postfix never expands
    /// it): that is returned as a warning, unless it is a loop.
    fn check(&self) -> Result<Vec<String>, Error> {
        let mut warnings = Vec::new();
        let mut set: Vec<(&String, &Setting)> = self.main_cf.iter().collect();
        set.sort_by_key(|(_, s)| s.line);
        for (name, _) in set {
            match self.check_one(name) {
                Err(e @ Error::Expand { .. })
                    if params::lookup(name).is_none()
                        && !matches!(
                            &e,
                            Error::Expand {
                                source: ExpandError::Loop(_),
                                ..
                            }
                        ) =>
                {
                    warnings.push(e.to_string());
                }
                other => other?,
            }
        }
        for p in params::PARAMS {
            // A default without `$` cannot be changed by main.cf: the
            // tests check each once (constant_defaults_are_valid) instead
            // of every process start. Nor can free text fail its check:
            // whatever it expands to is valid, and what it expands through
            // is a main.cf setting checked above (a loop shows there). Not
            // computing those saves every process start the interface
            // list that mynetworks' default asks the kernel for.
            // (Cheapest test first: this runs for every parameter at every
            // process start.)
            let constant = matches!(p.default, params::Default::Fixed(v) if !v.contains('$'));
            if constant
                || (matches!(p.kind, Kind::Str) && enums::lookup(p.name).is_none())
                || self.main_cf.contains_key(p.name)
            {
                continue;
            }
            self.check_one(p.name)?;
        }
        Ok(warnings)
    }

    /// Expands one parameter and, when known, parses it under its type.
    fn check_one(&self, name: &str) -> Result<(), Error> {
        let origin = self.origin(name);
        let value = self
            .try_get(name)
            .map_err(|source| Error::Expand {
                origin: origin.clone(),
                name: name.to_string(),
                source,
            })?
            .unwrap_or_default();
        if let Some(p) = params::lookup(name)
            && let Err(problem) =
                value::check(&p.kind, &value).and_then(|()| enums::check(name, &value))
        {
            return Err(Error::BadValue {
                origin,
                name: name.to_string(),
                value,
                problem,
            });
        }
        Ok(())
    }

    fn origin(&self, name: &str) -> Origin {
        if self.overrides.contains_key(name) {
            Origin::Override
        } else if let Some(s) = self.main_cf.get(name) {
            Origin::File {
                path: self.path.clone(),
                line: s.line,
            }
        } else {
            Origin::Default
        }
    }

    /// Warnings found while loading (unknown parameter names, continuation
    /// lines with nothing to continue).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The directory main.cf was read from.
    pub fn config_dir(&self) -> &Path {
        &self.dir
    }

    /// The main.cf path (whether or not it exists).
    pub fn main_cf_path(&self) -> &Path {
        &self.path
    }

    /// Overrides one parameter, as master.cf's `-o name=value` does. The
    /// value is not checked; see [`Config::try_set_override`].
    pub fn set_override(&mut self, name: &str, value: &str) {
        self.overrides.insert(name.to_string(), value.to_string());
    }

    /// Overrides one parameter after checking that the new value expands and
    /// (for a known parameter) parses under its type and bounds. On error the
    /// configuration is unchanged.
    ///
    /// # Errors
    /// [`Error::BadValue`] or [`Error::Expand`] with [`Origin::Override`].
    pub fn try_set_override(&mut self, name: &str, value: &str) -> Result<(), Error> {
        let old = self.overrides.insert(name.to_string(), value.to_string());
        let result = self.check_one(name);
        if result.is_err() {
            match old {
                Some(v) => self.overrides.insert(name.to_string(), v),
                None => self.overrides.remove(name),
            };
        }
        result
    }

    /// True when main.cf defines `name`.
    pub fn is_set_in_main_cf(&self, name: &str) -> bool {
        self.main_cf.contains_key(name)
    }

    /// main.cf's definitions (the last of each name), sorted by name.
    pub fn main_cf_settings(&self) -> impl Iterator<Item = (&str, &Setting)> {
        self.main_cf.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Every known parameter with its unexpanded default, sorted by name.
    pub fn defaults_raw(&self) -> Vec<(&'static str, String)> {
        let mut all: Vec<(&'static str, String)> = params::PARAMS
            .iter()
            .map(|p| (p.name, self.default_of(p, false)))
            .collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all
    }

    /// The unexpanded default of a known parameter (computed defaults such
    /// as `myhostname` are computed), or `None` for an unknown name.
    pub fn default_raw(&self, name: &str) -> Option<String> {
        params::lookup(name).map(|p| self.default_of(p, false))
    }

    /// The unexpanded value in effect: override, main.cf, or default.
    pub fn raw(&self, name: &str) -> Option<String> {
        self.raw_inner(name, false).map(Cow::into_owned)
    }

    fn raw_inner(&self, name: &str, for_mydomain: bool) -> Option<Cow<'_, str>> {
        // While computing mydomain's default from myhostname, mydomain is
        // undefined, as it is while Postfix computes its defaults in order.
        if for_mydomain && name == "mydomain" {
            return None;
        }
        if let Some(v) = self.overrides.get(name) {
            return Some(Cow::Borrowed(v));
        }
        if let Some(s) = self.main_cf.get(name) {
            return Some(Cow::Borrowed(&s.value));
        }
        if name == "config_directory" {
            return Some(Cow::Owned(self.dir.display().to_string()));
        }
        params::lookup(name).map(|p| Cow::Owned(self.default_of(p, for_mydomain)))
    }

    fn default_of(&self, p: &Param, for_mydomain: bool) -> String {
        match p.default {
            params::Default::Fixed(v) => v.to_string(),
            params::Default::Hostname => self.hostname.clone(),
            params::Default::Domain => {
                if for_mydomain {
                    return String::new();
                }
                let host = expand::expand("$myhostname", &|n| {
                    self.raw_inner(n, true).map(Cow::into_owned)
                })
                .unwrap_or_default();
                params::domain_of(&host)
            }
            params::Default::Networks => {
                let style = self.raw_inner("mynetworks_style", true);
                networks::from_style(style.as_deref().unwrap_or("host"))
            }
            params::Default::Version => env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// The expanded value of a parameter, `Ok(None)` when the name is
    /// neither set nor known.
    ///
    /// # Errors
    /// The value cannot be expanded (a loop, too deep, too long, bad `$`).
    pub fn try_get(&self, name: &str) -> Result<Option<String>, ExpandError> {
        if self.raw_inner(name, false).is_none() {
            return Ok(None);
        }
        let reference = format!("${{{name}}}");
        expand::expand(&reference, &|n| {
            self.raw_inner(n, false).map(Cow::into_owned)
        })
        .map(Some)
    }

    /// Expands arbitrary text against this configuration (as for a
    /// master.cf argument or a table name).
    ///
    /// # Errors
    /// As [`Config::try_get`].
    pub fn expand(&self, text: &str) -> Result<String, ExpandError> {
        expand::expand(text, &|n| self.raw_inner(n, false).map(Cow::into_owned))
    }

    /// The expanded value of a parameter, from main.cf or its default.
    /// `None` when the name is unknown, or when the value cannot be expanded
    /// (possible only after an unchecked [`Config::set_override`]; `load`
    /// refuses such configurations).
    pub fn get(&self, name: &str) -> Option<String> {
        self.try_get(name).ok().flatten()
    }

    /// The expanded value, or "" when the name is unknown.
    pub fn str(&self, name: &str) -> String {
        self.get(name).unwrap_or_default()
    }

    /// The expanded default, for a typed accessor's fallback when an
    /// unchecked override does not parse.
    fn default_expanded(&self, name: &str) -> String {
        let Some(p) = params::lookup(name) else {
            return String::new();
        };
        let raw = self.default_of(p, false);
        self.expand(&raw).unwrap_or_default()
    }

    fn typed<T>(&self, name: &str, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
        parse(&self.str(name)).or_else(|| parse(&self.default_expanded(name)))
    }

    /// A boolean parameter (`yes`/`no`, any case); `false` when it is not
    /// a boolean.
    pub fn bool(&self, name: &str) -> bool {
        self.typed(name, value::parse_bool).unwrap_or(false)
    }

    /// A time parameter; a bare number is in the parameter's default unit
    /// (seconds for unknown names).
    pub fn time(&self, name: &str) -> Duration {
        let unit = match params::lookup(name).map(|p| p.kind) {
            Some(Kind::Time { unit, .. }) => unit,
            _ => 's',
        };
        let secs = self
            .typed(name, |v| value::parse_time(v, unit))
            .unwrap_or(0);
        Duration::from_secs(secs)
    }

    /// An integer parameter; 0 when it is not a number.
    pub fn int(&self, name: &str) -> i64 {
        self.typed(name, value::parse_int).unwrap_or(0)
    }

    /// A size parameter in bytes; 0 when it is not a number.
    pub fn size(&self, name: &str) -> u64 {
        self.typed(name, value::parse_size).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests;
