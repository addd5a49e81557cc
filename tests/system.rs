//! Whole-system tests: each starts a real instance (master and its
//! children) in its own temporary directory on free ports.
//!
//! The binaries come from cargo's target directory: run
//! `cargo build --workspace --bins && cargo test --workspace`.
//! Modules by area: [`master`] (master and the `postfix` command),
//! [`privilege`] (root-only checks); helpers in [`util`].

mod master;
mod privilege;
mod util;
