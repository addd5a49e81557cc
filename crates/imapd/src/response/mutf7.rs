//! Modified UTF-7 mailbox names (RFC 3501 5.1.3) both ways. IMAP4rev1
//! clients see names in modified UTF-7; IMAP4rev2 and UTF8=ACCEPT clients
//! see UTF-8 (RFC 9051 / RFC 6855), so the session picks per client.

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Encode a UTF-8 name in modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    for ch in name.chars() {
        if (' '..='~').contains(&ch) {
            flush(&mut out, &mut pending);
            if ch == '&' {
                out.push_str("&-");
            } else {
                out.push(ch);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(ch.encode_utf16(&mut buf));
        }
    }
    flush(&mut out, &mut pending);
    out
}

fn flush(out: &mut String, pending: &mut Vec<u16>) {
    if pending.is_empty() {
        return;
    }
    let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
    out.push('&');
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out.push('-');
    pending.clear();
}

/// Decode a modified UTF-7 name to UTF-8; `None` if it is not valid
/// modified UTF-7 (8-bit octets, bad base64, a printable character
/// encoded, unpaired surrogates, an unterminated shift).
pub fn decode(name: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    let mut last_was_encoded = false;
    while i < name.len() {
        let c = name[i];
        if !(0x20..=0x7e).contains(&c) {
            return None;
        }
        if c != b'&' {
            out.push(char::from(c));
            i += 1;
            last_was_encoded = false;
            continue;
        }
        let end = i + 1 + name[i + 1..].iter().position(|&b| b == b'-')?;
        let enc = &name[i + 1..end];
        i = end + 1;
        if enc.is_empty() {
            out.push('&');
            last_was_encoded = false;
            continue;
        }
        if last_was_encoded {
            return None; // two adjacent shifts: not canonical
        }
        let mut bits = 0u32;
        let mut nbits = 0u32;
        let mut units = Vec::new();
        for &b in enc {
            let v = B64.iter().position(|&x| x == b)? as u32;
            bits = (bits << 6) | v;
            nbits += 6;
            if nbits >= 16 {
                nbits -= 16;
                units.push(((bits >> nbits) & 0xffff) as u16);
            }
        }
        if nbits >= 6 || (bits & ((1 << nbits) - 1)) != 0 {
            return None;
        }
        let s: String = char::decode_utf16(units.iter().copied())
            .collect::<Result<_, _>>()
            .ok()?;
        if s.chars().any(|ch| (' '..='~').contains(&ch)) {
            return None;
        }
        out.push_str(&s);
        last_was_encoded = true;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc3501_example() {
        assert_eq!(
            encode("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(
            decode(b"~peter/mail/&U,BTFw-/&ZeVnLIqe-").as_deref(),
            Some("~peter/mail/台北/日本語")
        );
        assert_eq!(encode("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(decode(b"Tom &- Jerry").as_deref(), Some("Tom & Jerry"));
        assert_eq!(encode("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(encode("😀"), "&2D3eAA-");
        assert_eq!(decode(b"&2D3eAA-").as_deref(), Some("😀"));
    }

    #[test]
    fn invalid_refused() {
        assert_eq!(decode(b"&U,BTFw"), None); // unterminated
        assert_eq!(decode(b"&AGE-"), None); // encodes printable "a"
        assert_eq!(decode("ü".as_bytes()), None); // 8-bit
        assert_eq!(decode(b"&2D0-"), None); // lone surrogate
        assert_eq!(decode(b"&APw-&APw-"), None); // adjacent shifts
        assert_eq!(decode(b"&A!-"), None);
    }

    proptest! {
        #[test]
        fn round_trip(s in "\\PC{0,20}") {
            let e = encode(&s);
            prop_assert!(e.bytes().all(|b| (0x20..=0x7e).contains(&b)));
            prop_assert_eq!(decode(e.as_bytes()), Some(s));
        }

        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = decode(&b);
        }
    }
}
