//! Service skeleton: see Cargo.toml description.
