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

/// A valid queue file (three recipients, a short message), as a seed for
/// the fuzz corpus.
pub fn seed_file() -> Vec<u8> {
    let mut e = crate::Envelope::new("sender@example.org", std::time::UNIX_EPOCH);
    for r in ["a@example.net", "b@example.net", "c@example.net"] {
        e.add_recipient(r);
    }
    e.set_attribute(crate::format::attr::CLIENT_ADDRESS, "192.0.2.1");
    format::build(&e, b"Subject: seed\n\nbody\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_is_accepted_and_its_truncations_are_not() {
        let seed = seed_file();
        assert!(queue_file(&seed));
        for cut in 0..seed.len() {
            assert!(!queue_file(&seed[..cut]));
        }
        queue_id(b"0000000000B");
        queue_id(&[0xff, 0xfe]);
    }
}
