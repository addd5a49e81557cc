//! Fuzz target: arbitrary bytes as a queue id and a queue name.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    queue::fuzzing::queue_id(data);
});
