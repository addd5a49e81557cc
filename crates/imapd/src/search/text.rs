//! Text views of a message for SEARCH: decoded header values (RFC 2047
//! words decoded, address lists rendered) and decoded body text, matched
//! as case-insensitive substrings.

use crate::structure::PartRef;
use mail_parser::{Address, HeaderValue, Message, PartType};

/// Case-insensitive substring test (Unicode lower case both sides).
pub(crate) fn contains_ci(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    if hay.is_ascii() && needle.is_ascii() {
        let (h, n) = (hay.as_bytes(), needle.as_bytes());
        return h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    }
    hay.to_lowercase().contains(&needle.to_lowercase())
}

/// Every occurrence of header `name` in the root part as searchable
/// text: decoded when mail-parser decoded it, the raw unfolded value too.
pub(crate) fn header_texts(msg: &Message<'_>, name: &str) -> Vec<String> {
    let root = PartRef::root(msg);
    let Some(part) = root.part() else {
        return Vec::new();
    };
    let raw: &[u8] = &msg.raw_message;
    let mut out = Vec::new();
    for h in part
        .headers
        .iter()
        .filter(|h| h.name.as_str().eq_ignore_ascii_case(name))
    {
        let r = raw
            .get(h.offset_start as usize..h.offset_end as usize)
            .unwrap_or_default();
        out.push(String::from_utf8_lossy(&crate::structure::unfold(r)).into_owned());
        match &h.value {
            HeaderValue::Text(t) => out.push(t.to_string()),
            HeaderValue::TextList(l) => out.push(l.join(" ")),
            HeaderValue::Address(a) => out.push(render_addresses(a)),
            _ => {}
        }
    }
    out
}

fn render_addresses(a: &Address<'_>) -> String {
    let mut s = String::new();
    for ad in a.iter() {
        if let Some(n) = &ad.name {
            s.push_str(n);
            s.push(' ');
        }
        if let Some(m) = &ad.address {
            s.push('<');
            s.push_str(m);
            s.push_str("> ");
        }
    }
    s
}

/// Does any decoded body part (nested messages included) contain `needle`?
pub(crate) fn body_contains(msg: &Message<'_>, needle: &str, depth: usize) -> bool {
    msg.parts.iter().any(|p| match &p.body {
        PartType::Text(t) | PartType::Html(t) => contains_ci(t, needle),
        PartType::Binary(b) | PartType::InlineBinary(b) => {
            contains_ci(&String::from_utf8_lossy(b), needle)
        }
        PartType::Message(m) if depth < 20 => {
            header_block_contains(m, needle) || body_contains(m, needle, depth + 1)
        }
        _ => false,
    })
}

/// Does the root header block (decoded where possible) contain `needle`?
pub(crate) fn header_block_contains(msg: &Message<'_>, needle: &str) -> bool {
    let root = PartRef::root(msg);
    if contains_ci(&String::from_utf8_lossy(root.header_bytes()), needle) {
        return true;
    }
    root.part().is_some_and(|p| {
        p.headers.iter().any(|h| match &h.value {
            HeaderValue::Text(t) => contains_ci(t, needle),
            HeaderValue::Address(a) => contains_ci(&render_addresses(a), needle),
            _ => false,
        })
    })
}
