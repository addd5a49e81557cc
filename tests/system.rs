//! Whole-system tests: each starts a real instance (master and its
//! children) in its own temporary directory on free ports.
