//! Fuzz target: arbitrary client bytes into imapd's streaming command
//! parser, split into pieces where the first bytes say (as reads arrive),
//! with small limits so that the literal, line, command and nesting
//! bounds are reached. Nothing may panic, the parser never consumes past
//! the buffer, and the buffer a session holds stays within the limits.
#![no_main]

use imapd::parse::{Event, Limits, Parser, take_line};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_line: 512,
        max_literal: 1024,
        max_command: 2048,
        max_depth: 8,
        max_literals: 2048,
    };
    let bound = limits.max_command + limits.max_line + 3 * 1024 + 256;
    let step = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let input = data.get(1..).unwrap_or(&[]);
    let mut p = Parser::new(limits);
    let mut buf: Vec<u8> = Vec::new();
    for chunk in input.chunks(step) {
        buf.extend_from_slice(chunk);
        assert!(buf.len() <= bound, "buffered {} octets", buf.len());
        loop {
            let (used, ev) = p.feed(&buf);
            assert!(used <= buf.len());
            buf.drain(..used);
            match ev {
                Event::Command(c) => {
                    let _ = format!("{c:?}");
                }
                Event::Bad { .. } => {
                    if let Some(Ok((_, n))) = take_line(&buf, limits.max_line) {
                        if buf.first() == Some(&b'+') {
                            buf.drain(..n);
                        }
                    }
                }
                Event::NeedMore | Event::Continue => break,
                Event::Fatal(_) => return,
            }
            if buf.is_empty() {
                break;
            }
        }
    }
});
