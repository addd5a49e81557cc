//! Fuzz target: arbitrary bytes as a Postfix queue file and as a Postfix
//! maildrop file, to postfix-import-queue's record reader and parser.
#![no_main]

use postfix_import::message::{Shape, parse};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = parse(data, Shape::Queue);
    let _ = parse(data, Shape::Pickup);
});
