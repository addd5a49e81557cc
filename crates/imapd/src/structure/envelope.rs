//! ENVELOPE (RFC 3501 7.4.2): date, subject, from, sender, reply-to, to,
//! cc, bcc, in-reply-to, message-id. Unstructured fields are the raw header
//! values unfolded; address lists come from mail-parser's address parser.

use super::{PartRef, encode_word};
use crate::response::encode::nstring;
use mail_parser::{Addr, Address, HeaderValue};

/// Append the ENVELOPE of the message whose root part is `root`.
pub fn envelope(out: &mut Vec<u8>, root: PartRef<'_, '_>, utf8: bool) {
    out.push(b'(');
    nstring(out, root.header_unfolded("Date").as_deref(), utf8);
    out.push(b' ');
    nstring(out, root.header_unfolded("Subject").as_deref(), utf8);
    let from = root.header_value("From");
    for (i, name) in ["From", "Sender", "Reply-To", "To", "Cc", "Bcc"].iter().enumerate() {
        out.push(b' ');
        let mut v = root.header_value(name);
        // RFC 3501: Sender and Reply-To default to From.
        if (i == 1 || i == 2) && !has_addresses(v) {
            v = from;
        }
        addresses(out, v, utf8);
    }
    out.push(b' ');
    nstring(out, root.header_unfolded("In-Reply-To").as_deref(), utf8);
    out.push(b' ');
    nstring(out, root.header_unfolded("Message-ID").as_deref(), utf8);
    out.push(b')');
}

/// The ENVELOPE of a message that could not be parsed: every field NIL.
pub const EMPTY_ENVELOPE: &[u8] = b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)";

fn has_addresses(v: Option<&HeaderValue<'_>>) -> bool {
    match v {
        Some(HeaderValue::Address(Address::List(l))) => !l.is_empty(),
        Some(HeaderValue::Address(Address::Group(g))) => !g.is_empty(),
        _ => false,
    }
}

fn addresses(out: &mut Vec<u8>, v: Option<&HeaderValue<'_>>, utf8: bool) {
    match v {
        Some(HeaderValue::Address(Address::List(l))) if !l.is_empty() => {
            out.push(b'(');
            for a in l {
                addr(out, a, utf8);
            }
            out.push(b')');
        }
        Some(HeaderValue::Address(Address::Group(gs))) if !gs.is_empty() => {
            out.push(b'(');
            for g in gs {
                match &g.name {
                    Some(name) => {
                        out.extend_from_slice(b"(NIL NIL ");
                        text(out, name, utf8);
                        out.extend_from_slice(b" NIL)");
                        for a in &g.addresses {
                            addr(out, a, utf8);
                        }
                        out.extend_from_slice(b"(NIL NIL NIL NIL)");
                    }
                    None => {
                        for a in &g.addresses {
                            addr(out, a, utf8);
                        }
                    }
                }
            }
            out.push(b')');
        }
        _ => out.extend_from_slice(b"NIL"),
    }
}

fn text(out: &mut Vec<u8>, s: &str, utf8: bool) {
    if s.is_ascii() || utf8 {
        nstring(out, Some(s.as_bytes()), utf8);
    } else {
        nstring(out, Some(encode_word(s).as_bytes()), false);
    }
}

fn addr(out: &mut Vec<u8>, a: &Addr<'_>, utf8: bool) {
    out.push(b'(');
    match a.name.as_deref().filter(|n| !n.is_empty()) {
        Some(n) => text(out, n, utf8),
        None => out.extend_from_slice(b"NIL"),
    }
    out.extend_from_slice(b" NIL ");
    let address = a.address.as_deref().unwrap_or("");
    let (mailbox, host) = match address.rsplit_once('@') {
        Some((m, h)) => (m, h),
        None => (address, ""),
    };
    let mailbox = if mailbox.is_empty() { "MISSING_MAILBOX" } else { mailbox };
    let host = if host.is_empty() { "MISSING_DOMAIN" } else { host };
    text(out, mailbox, utf8);
    out.push(b' ');
    text(out, host, utf8);
    out.push(b')');
}
