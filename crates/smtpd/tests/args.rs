//! smtpd's command line: an argument that is not UTF-8 is a usage error,
//! not a panic.

#![allow(clippy::unwrap_used, reason = "test code")]

/// std::env::args panics (exit 101) on an argument that is not UTF-8.
#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error() {
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"-\xff\xfe");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_smtpd"))
        .arg(bad)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert_ne!(out.status.code(), Some(101), "{err}");
    assert!(err.contains("smtpd: fatal: usage: "), "{err}");
}
