//! smtpd's command line: an argument that is not UTF-8 is a usage error,
//! not a panic.

#![allow(clippy::unwrap_used, reason = "test code")]

/// std::env::args panics (exit 101) on an argument that is not UTF-8.
#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error() {
    testkit::assert_non_utf8_argument_is_usage_error(env!("CARGO_BIN_EXE_smtpd"), "smtpd");
}
