//! What a test needs before it runs, and the one way to skip.
//!
//! A missing prerequisite that the project's own scripts provide is a
//! failure, never a skip: a binary not built ([`need_bins`]: "NAME is not
//! built: run scripts/test or cargo build --workspace --bins"), the
//! accounts an instance needs as root ([`need_mail_owner`] creates them),
//! a tool that scripts/install-deps installs ([`need_program`],
//! [`need_file`]). Only what no script can change skips: not running as
//! root ([`skip_unless_root`]), no IPv6 on the host. Every skip goes
//! through [`skip`], which prints `skipped: TEST: reason` and appends
//! `TEST<TAB>reason` to the file named by `TESTKIT_SKIP_LOG` (scripts/test
//! sets it, counts the lines and lists them at the end; under CI any line
//! fails the run).

use std::fmt::Display;
use std::io::Write;
use std::path::Path;

/// The environment variable naming the file that [`skip`] appends to.
pub const SKIP_LOG_ENV: &str = "TESTKIT_SKIP_LOG";

/// Skips the running test: prints `skipped: TEST: reason` and records
/// `TEST<TAB>reason` in `$TESTKIT_SKIP_LOG` (when set). The caller then
/// returns. Only for conditions no script can fix (not root, no IPv6).
pub fn skip(reason: impl Display) {
    let test = test_name();
    let reason = reason.to_string().replace(['\n', '\t'], " ");
    println!("skipped: {test}: {reason}");
    if let Some(log) = std::env::var_os(SKIP_LOG_ENV) {
        record(Path::new(&log), &test, &reason);
    }
}

/// Appends one `TEST<TAB>reason` line in a single write (O_APPEND: test
/// processes running at once do not interleave lines).
fn record(log: &Path, test: &str, reason: &str) {
    let line = format!("{test}\t{reason}\n");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        panic!("cannot record the skip in {}: {e}", log.display());
    }
}

/// `BINARY: TEST`: the test binary's name without cargo's hash (`system`,
/// `qmgr`, `under_master`) and the test's path, which libtest gives the
/// thread running it.
pub fn test_name() -> String {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let binary = match exe.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_string(),
        _ => exe,
    };
    let thread = std::thread::current();
    match thread.name() {
        Some(name) if name != "main" => format!("{binary}: {name}"),
        _ => binary,
    }
}

/// True when running as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// When not root: skips with "needs root because WHY" and returns true
/// (the caller returns). As root: false.
pub fn skip_unless_root(why: &str) -> bool {
    if is_root() {
        return false;
    }
    skip(format_args!("needs root because {why}"));
    true
}

/// Fails unless every binary in `bins` is built in [`crate::bin_dir`].
pub fn need_bins(bins: &[&str]) {
    let dir = crate::bins::built_dir();
    for b in bins {
        assert!(
            dir.join(b).is_file(),
            "{b} is not built: run scripts/test or cargo build --workspace --bins \
             (looked in {})",
            dir.display()
        );
    }
}

/// As root, makes sure the mail_owner account `postfix` and the
/// setgid_group `postdrop` exist (creating them if needed), or fails
/// saying to run scripts/install-deps. Not root: nothing to do (an
/// instance then runs as the invoking user).
pub fn need_mail_owner() {
    if is_root() {
        crate::accounts::ensure();
    }
}

/// [`need_bins`] then [`need_mail_owner`]: what a test that starts an
/// instance needs.
pub fn need_instance(bins: &[&str]) {
    need_bins(bins);
    need_mail_owner();
}

/// Fails unless users other than the one running the tests may execute
/// `path` (a test that runs it as `nobody`, say, with a path it cannot
/// change to [`crate::bin_dir`]'s): not so when the checkout lies under a
/// directory they cannot search, such as /root (mode 0700).
pub fn need_others_can_run(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let runnable = std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o001 != 0);
    assert!(
        runnable && path.parent().is_some_and(crate::bins::others_can_search),
        "{} cannot be executed by other users: the checkout lies under a directory \
         they cannot search (such as /root, mode 0700); put the checkout under a \
         directory of mode 0755",
        path.display()
    );
}

/// Fails unless `program` is found on PATH; `package` names what
/// scripts/install-deps installs to provide it.
pub fn need_program(program: &str, package: &str) {
    assert!(
        have_program(program),
        "{program} is not installed: run scripts/install-deps (as root; it installs {package})"
    );
}

/// Fails unless the file `path` exists; `package` names what
/// scripts/install-deps installs to provide it.
pub fn need_file(path: &Path, package: &str) {
    assert!(
        path.is_file(),
        "{} is missing: run scripts/install-deps (as root; it installs {package})",
        path.display()
    );
}

/// True when `program` is found on PATH (or, containing `/`, exists).
pub fn have_program(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_name_is_binary_and_test_path() {
        assert_eq!(
            test_name(),
            "testkit: skip::tests::test_name_is_binary_and_test_path"
        );
    }

    #[test]
    fn record_appends_one_line_per_skip() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("skips");
        record(&log, "a: t1", "needs root because x");
        record(&log, "b: t2", "no IPv6");
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "a: t1\tneeds root because x\nb: t2\tno IPv6\n"
        );
    }

    #[test]
    #[should_panic(expected = "surely-not-a-binary is not built: run scripts/test or cargo build")]
    fn a_binary_not_built_fails() {
        need_bins(&["surely-not-a-binary"]);
    }

    #[test]
    #[should_panic(expected = "run scripts/install-deps (as root; it installs some-package)")]
    fn a_missing_tool_fails_naming_install_deps() {
        need_program("surely-not-a-program-on-path", "some-package");
    }

    #[test]
    fn have_program_finds_sh() {
        assert!(have_program("sh"));
        assert!(have_program("/bin/sh"));
        assert!(!have_program("/surely/not/here"));
    }
}
