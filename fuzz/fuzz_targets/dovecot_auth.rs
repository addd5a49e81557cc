//! Fuzz target: arbitrary bytes as lines of Dovecot's authentication
//! protocol, to auth's server state machine and both line parsers, with
//! an encode/parse round trip of whatever parses.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    auth::dovecot::fuzz_lines(data);
});
