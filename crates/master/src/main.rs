//! master: not yet written.

fn main() {}
