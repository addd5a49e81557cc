//! What a set-gid program (postdrop, postqueue) does before it trusts
//! anything its caller gave it, after Postfix's util/unsafe.c,
//! util/clean_env.c and global/mail_conf.c:
//!
//! ```text
//! privsep::setgid::is_unsafe() -> bool
//! privsep::setgid::open_standard_fds() -> Result<(), SetgidError>
//! privsep::setgid::config_dir(cli: Option<&Path>) -> Result<PathBuf, SetgidError>
//! privsep::setgid::check_config_dir(dir, default_dir) -> Result<(), SetgidError>
//! privsep::setgid::clean_env(import_environment: &str) -> Result<(), SetgidError>
//! privsep::setgid::environment(import_environment, unsafe) -> Result<Vec<(String, String)>, SetgidError>
//! ```
//!
//! # Security
//!
//! A process is *unsafe* when its real and effective user or group ids
//! differ and the caller is not root: then the caller chose its
//! environment and command line, and neither may pick what the privileged
//! part trusts. A configuration directory from `-c` or `MAIL_CONFIG` other
//! than [`DEFAULT_CONFIG_DIR`] must be listed in that directory's main.cf
//! (alternate_config_directories or multi_instance_directories), which
//! only the administrator writes; [`DEFAULT_CONFIG_DIR`] itself is a
//! constant, never taken from the environment. [`clean_env`] empties the
//! environment except for import_environment, and an unsafe process keeps
//! only its `name=value` forms (Postfix's safe_getenv gives an unsafe
//! process no inherited values, TZ included).

use std::fmt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// The configuration directory every other one must be authorized by
/// (Postfix's DEF_CONFIG_DIR). Fixed at build time, never from the
/// environment.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/postfix";

/// The environment variable naming another configuration directory.
pub const CONFIG_ENV: &str = "MAIL_CONFIG";

/// The main.cf parameters that list authorized configuration directories.
const CONFIG_DIR_LISTS: [&str; 2] = ["alternate_config_directories", "multi_instance_directories"];

/// What went wrong preparing a set-gid process.
#[derive(Debug)]
#[non_exhaustive]
pub enum SetgidError {
    /// A standard descriptor was closed and /dev/null could not take its place.
    DevNull {
        /// The descriptor.
        fd: i32,
        /// Why.
        errno: nix::errno::Errno,
    },
    /// The default main.cf could not be read to authorize a directory.
    ReadDefault {
        /// The default main.cf.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An unsafe process named a configuration directory that the default
    /// main.cf does not list.
    Unauthorized {
        /// The directory asked for.
        dir: PathBuf,
        /// The default main.cf that would have to list it.
        main_cf: PathBuf,
    },
    /// An import_environment `name=value` entry without a name.
    BadImport {
        /// The entry.
        entry: String,
    },
}

impl SetgidError {
    /// Postfix logs an unauthorized directory as an error line before the
    /// fatal one; this is that line's text, when there is one.
    pub fn error_line(&self) -> Option<String> {
        match self {
            SetgidError::Unauthorized { dir, .. } => Some(format!(
                "unauthorized configuration directory name: {}",
                dir.display()
            )),
            _ => None,
        }
    }
}

impl fmt::Display for SetgidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetgidError::DevNull { fd, errno } => write!(f, "open /dev/null as fd {fd}: {errno}"),
            SetgidError::ReadDefault { path, source } => {
                write!(f, "open file {}: {source}", path.display())
            }
            // Postfix: msg_error with the name, then this as msg_fatal.
            SetgidError::Unauthorized { dir, main_cf } => write!(
                f,
                "specify \"{} = {}\" or \"{} = {}\" in {}",
                CONFIG_DIR_LISTS[0],
                dir.display(),
                CONFIG_DIR_LISTS[1],
                dir.display(),
                main_cf.display()
            ),
            SetgidError::BadImport { entry } => {
                write!(f, "clean_env: missing attribute name in: {entry}")
            }
        }
    }
}

impl std::error::Error for SetgidError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SetgidError::ReadDefault { source, .. } => Some(source),
            SetgidError::DevNull { errno, .. } => Some(errno),
            _ => None,
        }
    }
}

/// Postfix's unsafe(): root is trusted; anyone else is not when the real
/// and effective user or group ids differ (a set-uid or set-gid run).
pub fn is_unsafe() -> bool {
    use nix::unistd::{getegid, geteuid, getgid, getuid};
    if getuid().is_root() && geteuid().is_root() {
        return false;
    }
    geteuid() != getuid() || getegid() != getgid()
}

/// Makes sure descriptors 0, 1 and 2 are open, putting /dev/null in place
/// of a closed one, so that no file opened later becomes someone's
/// stdout or stderr. (Rust's runtime does the same before `main` on
/// Linux; this keeps the guarantee explicit, as Postfix's programs do.)
///
/// # Errors
/// [`SetgidError::DevNull`] when /dev/null cannot be opened as that fd.
pub fn open_standard_fds() -> Result<(), SetgidError> {
    for fd in 0..3 {
        if nix::sys::stat::fstat(borrow_fd(fd)).is_ok() {
            continue;
        }
        match nix::fcntl::open("/dev/null", OFlag::O_RDWR, Mode::empty()) {
            Ok(opened) => {
                use std::os::fd::IntoRawFd;
                let got = opened.into_raw_fd();
                if got != fd {
                    return Err(SetgidError::DevNull {
                        fd,
                        errno: nix::errno::Errno::EBADF,
                    });
                }
            }
            Err(errno) => return Err(SetgidError::DevNull { fd, errno }),
        }
    }
    Ok(())
}

/// A borrowed descriptor number for fstat, which accepts closed ones.
fn borrow_fd(fd: i32) -> std::os::fd::BorrowedFd<'static> {
    #[allow(
        unsafe_code,
        reason = "fstat needs a BorrowedFd; it only reports EBADF for a closed one"
    )]
    // SAFETY: the descriptor is only passed to fstat(2), which does not
    // use or close it and returns EBADF when it is not open.
    unsafe {
        std::os::fd::BorrowedFd::borrow_raw(fd)
    }
}

/// The configuration directory to read, as Postfix's mail_conf_suck:
/// `cli` (from `-c`), else `$MAIL_CONFIG`, else [`DEFAULT_CONFIG_DIR`].
/// An unsafe process may use a directory other than the default only if
/// [`check_config_dir`] authorizes it.
///
/// # Errors
/// As [`check_config_dir`].
pub fn config_dir(cli: Option<&Path>) -> Result<PathBuf, SetgidError> {
    let dir = match cli {
        Some(d) => d.to_path_buf(),
        None => std::env::var_os(CONFIG_ENV)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_CONFIG_DIR), PathBuf::from),
    };
    if is_unsafe() {
        check_config_dir(&dir, Path::new(DEFAULT_CONFIG_DIR))?;
    }
    Ok(dir)
}

/// Postfix's mail_conf_checkdir: `dir` is `default_dir` itself, or listed
/// by name in `default_dir/main.cf` as alternate_config_directories or
/// multi_instance_directories (compared as given, without `$name`
/// expansion, as Postfix does).
///
/// # Errors
/// [`SetgidError::ReadDefault`] when that main.cf cannot be read,
/// [`SetgidError::Unauthorized`] when it does not list `dir`.
pub fn check_config_dir(dir: &Path, default_dir: &Path) -> Result<(), SetgidError> {
    if dir == default_dir {
        return Ok(());
    }
    let main_cf = default_dir.join("main.cf");
    let text = config::main_cf::read_file(&main_cf).map_err(|e| SetgidError::ReadDefault {
        path: main_cf.clone(),
        source: match e {
            config::Error::Io { source, .. } => source,
            other => std::io::Error::other(other.to_string()),
        },
    })?;
    let (lines, _) = config::main_cf::logical_lines(&text, &main_cf);
    let listed = lines.iter().any(|l| {
        config::main_cf::split_nameval(&l.text).is_ok_and(|(name, value)| {
            CONFIG_DIR_LISTS.contains(&name)
                && value
                    .split([',', ' ', '\t', '\r', '\n'])
                    .any(|d| !d.is_empty() && Path::new(d) == dir)
        })
    });
    if listed {
        Ok(())
    } else {
        Err(SetgidError::Unauthorized {
            dir: dir.to_path_buf(),
            main_cf,
        })
    }
}

/// Splits import_environment (or export_environment) as Postfix's
/// mail_parm_split: words separated by commas or white space, where
/// `{ name = value }` keeps its spaces (the braces and the space just
/// inside them are removed).
pub fn split_environment_list(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = list;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        if rest.is_empty() {
            return out;
        }
        if let Some(inner) = rest.strip_prefix('{') {
            let end = inner.find('}').unwrap_or(inner.len());
            out.push(inner.get(..end).unwrap_or_default().trim().to_owned());
            rest = inner.get(end.saturating_add(1)..).unwrap_or_default();
        } else {
            let end = rest
                .find(|c: char| c == ',' || c.is_ascii_whitespace())
                .unwrap_or(rest.len());
            out.push(rest.get(..end).unwrap_or_default().to_owned());
            rest = rest.get(end..).unwrap_or_default();
        }
    }
}

/// The environment Postfix's clean_env leaves from import_environment:
/// each `name=value` entry as given, and each bare name with its current
/// value, unless `unsafe_process` (then bare names are dropped).
///
/// # Errors
/// [`SetgidError::BadImport`] for an entry `=value` without a name.
pub fn environment(
    import_environment: &str,
    unsafe_process: bool,
) -> Result<Vec<(String, String)>, SetgidError> {
    let mut keep: Vec<(String, String)> = Vec::new();
    for entry in split_environment_list(import_environment) {
        let pair = match entry.split_once('=') {
            Some((name, value)) => {
                let name = name.trim();
                if name.is_empty() {
                    return Err(SetgidError::BadImport { entry });
                }
                (name.to_owned(), value.trim().to_owned())
            }
            None if unsafe_process => continue,
            None => match std::env::var(&entry) {
                Ok(value) => (entry, value),
                Err(_) => continue,
            },
        };
        keep.retain(|(n, _)| *n != pair.0);
        keep.push(pair);
    }
    Ok(keep)
}

/// Postfix's clean_env: empties this process's environment, then puts
/// back [`environment`]`(import_environment, `[`is_unsafe`]`())`. Call it
/// first thing in `main`, before any thread starts.
///
/// # Errors
/// As [`environment`]; the environment is unchanged then.
pub fn clean_env(import_environment: &str) -> Result<(), SetgidError> {
    let keep = environment(import_environment, is_unsafe())?;
    #[allow(unsafe_code, reason = "the environment is process-wide state")]
    // SAFETY: called from a single-threaded main before any other thread
    // exists, so nothing reads or writes the environment concurrently.
    unsafe {
        // clearenv(3) rather than remove_var per name: a hostile caller
        // can pass names that remove_var refuses (panics on).
        let _ = nix::env::clearenv();
        for (name, value) in &keep {
            if valid_name(name) && !value.contains('\0') {
                std::env::set_var(name, value);
            }
        }
    }
    Ok(())
}

/// A name set_var accepts.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['=', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHILD_ENV: &str = "PRIVSEP_SETGID_TEST_CHILD";

    fn default_dir(main_cf: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("main.cf"), main_cf).unwrap();
        d
    }

    #[test]
    fn only_listed_directories_are_authorized() {
        let d = default_dir(
            "# comment\nalternate_config_directories = /srv/a,\n  /srv/b\n\
             multi_instance_directories = {/srv/c} /srv/d\nother = /srv/e\n",
        );
        for ok in ["/srv/a", "/srv/b", "/srv/d"] {
            assert!(check_config_dir(Path::new(ok), d.path()).is_ok(), "{ok}");
        }
        assert!(check_config_dir(d.path(), d.path()).is_ok());
        let e = check_config_dir(Path::new("/srv/e"), d.path()).unwrap_err();
        assert_eq!(
            e.error_line().as_deref(),
            Some("unauthorized configuration directory name: /srv/e")
        );
        assert_eq!(
            e.to_string(),
            format!(
                "specify \"alternate_config_directories = /srv/e\" or \
                 \"multi_instance_directories = /srv/e\" in {}/main.cf",
                d.path().display()
            )
        );
        // A prefix or a parent of a listed directory is not listed.
        assert!(check_config_dir(Path::new("/srv"), d.path()).is_err());
        assert!(check_config_dir(Path::new("/srv/a/x"), d.path()).is_err());
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            check_config_dir(Path::new("/srv/a"), empty.path()),
            Err(SetgidError::ReadDefault { .. })
        ));
    }

    #[test]
    fn environment_lists_split_as_postfix() {
        assert_eq!(
            split_environment_list("TZ, LANG=C {FOO = a b} ,BAR"),
            vec!["TZ", "LANG=C", "FOO = a b", "BAR"]
        );
        assert!(split_environment_list(" , ").is_empty());
        assert!(matches!(
            environment("=x", false),
            Err(SetgidError::BadImport { .. })
        ));
    }

    #[test]
    fn an_unsafe_process_keeps_only_given_values() {
        let path = std::env::var("PATH").unwrap();
        let safe = environment("PATH NO_SUCH_VARIABLE_X LANG=C {A = b c}", false).unwrap();
        assert_eq!(
            safe,
            vec![
                ("PATH".to_owned(), path),
                ("LANG".to_owned(), "C".to_owned()),
                ("A".to_owned(), "b c".to_owned())
            ]
        );
        let unsafe_env = environment("PATH LANG=C", true).unwrap();
        assert_eq!(unsafe_env, vec![("LANG".to_owned(), "C".to_owned())]);
    }

    /// The child half of clean_env_empties_the_environment.
    #[test]
    fn clean_env_child() {
        if std::env::var_os(CHILD_ENV).is_none() {
            return;
        }
        clean_env("TZ LANG=C MAIL_CONFIG").unwrap();
        let mut vars: Vec<String> = std::env::vars_os()
            .map(|(n, v)| format!("{}={}", n.to_string_lossy(), v.to_string_lossy()))
            .collect();
        vars.sort();
        println!("\nENV {}", vars.join(" "));
    }

    #[test]
    fn clean_env_empties_the_environment() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "setgid::tests::clean_env_child", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(CHILD_ENV, "1")
            .env("TZ", "Europe/Paris")
            .env("LD_PRELOAD", "/tmp/evil.so")
            .env("LANG", "xx")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find_map(|l| l.find("ENV ").map(|at| &l[at..]))
            .unwrap();
        // Not set-gid here, so TZ is kept; the child marker itself is gone.
        assert_eq!(line, "ENV LANG=C TZ=Europe/Paris", "{text}");
    }

    #[test]
    fn standard_fds_stay_as_they_are() {
        open_standard_fds().unwrap();
        assert!(!is_unsafe() || !nix::unistd::getuid().is_root());
    }
}
