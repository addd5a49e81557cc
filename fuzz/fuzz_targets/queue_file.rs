//! Fuzz target: arbitrary bytes as a queue file; the reader must not panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = queue::fuzzing::queue_file(data);
});
