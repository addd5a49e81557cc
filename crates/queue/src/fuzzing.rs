//! Entry points for fuzz targets (feature `fuzzing`).
//!
//! Each function takes arbitrary bytes and must never panic.

use crate::format::{self, ContentReader};
use std::io::Read;

/// Parses `data` as a queue file and streams its content, as a reader
/// does. Returns whether the file was accepted whole.
pub fn queue_file(data: &[u8]) -> bool {
    let Ok(parsed) = format::parse(data, data.len() as u64) else {
        return false;
    };
    let mut sink = [0u8; 4096];
    let mut content = ContentReader::new(&data, &parsed.layout);
    loop {
        match content.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

/// Validates `data` as a queue id and a queue name.
pub fn queue_id(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::QueueId::parse(text);
        let _ = crate::Queue::parse(text);
    }
}
