//! postconf: not yet written.

fn main() {}
