//! postfix: not yet written.

fn main() {}
