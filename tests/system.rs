//! Whole-system tests: each starts a real instance (master and its
//! children) in its own temporary directory on free ports.
//!
//! The binaries come from cargo's target directory: run
//! `cargo build --workspace --bins && cargo test --workspace`.
//! Modules by area: [`local_mail`] (issue 3: sendmail to mailboxes), [`master`] (master and the `postfix` command),
//! [`privilege`] (root-only checks); helpers in [`util`].

// A test binary: helpers panic on setup failure just as #[test] bodies do,
// and `pub` in its modules means "shared between test modules".
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod crash;
mod local_mail;
mod master;
mod privilege;
mod smtp;
mod smtp_interop;
mod smtp_relay;
mod smtp_swaks;
mod util;
