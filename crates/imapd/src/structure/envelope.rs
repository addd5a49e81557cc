//! ENVELOPE (RFC 3501 7.4.2): date, subject, from, sender, reply-to, to,
//! cc, bcc, in-reply-to, message-id, all from the raw header values:
//! unstructured fields unfolded, address lists parsed by `address`.

use super::PartRef;
use super::address::{EnvItem, parse_address_list};
use crate::response::encode::nstring;

/// Append the ENVELOPE of the message whose root part is `root`.
pub fn envelope(out: &mut Vec<u8>, root: PartRef<'_, '_>, utf8: bool) {
    out.push(b'(');
    nstring(out, root.header_unfolded("Date").as_deref(), utf8);
    out.push(b' ');
    nstring(
        out,
        root.header_raw("Subject").map(for_humans).as_deref(),
        utf8,
    );
    let parsed = |name: &str| {
        root.header_raw(name)
            .map(parse_address_list)
            .unwrap_or_default()
    };
    let from = parsed("From");
    for (i, name) in ["From", "Sender", "Reply-To", "To", "Cc", "Bcc"]
        .iter()
        .enumerate()
    {
        out.push(b' ');
        let own;
        let mut v: &[EnvItem] = &from;
        if i > 0 {
            own = parsed(name);
            // RFC 3501: Sender and Reply-To default to From.
            if !(own.is_empty() && (i == 1 || i == 2)) {
                v = &own;
            }
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

fn addresses(out: &mut Vec<u8>, v: &[EnvItem], utf8: bool) {
    if v.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for item in v {
        match item {
            EnvItem::Addr {
                name,
                adl,
                mailbox,
                host,
            } => {
                out.push(b'(');
                nstring(out, name.as_deref(), utf8);
                out.push(b' ');
                nstring(out, adl.as_deref(), utf8);
                out.push(b' ');
                nstring(
                    out,
                    Some(mailbox.as_deref().unwrap_or(b"MISSING_MAILBOX")),
                    utf8,
                );
                out.push(b' ');
                nstring(
                    out,
                    Some(host.as_deref().unwrap_or(b"MISSING_DOMAIN")),
                    utf8,
                );
                out.push(b')');
            }
            EnvItem::GroupStart(name) => {
                out.extend_from_slice(b"(NIL NIL ");
                nstring(out, Some(name), utf8);
                out.extend_from_slice(b" NIL)");
            }
            EnvItem::GroupEnd => out.extend_from_slice(b"(NIL NIL NIL NIL)"),
        }
    }
    out.push(b')');
}

/// Subject as Dovecot shows it: CR, LF and TAB as spaces, runs of spaces
/// collapsed, trimmed.
fn for_humans(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    for &c in raw {
        let c = if matches!(c, b'\r' | b'\n' | b'\t') {
            b' '
        } else {
            c
        };
        if c == b' ' && (out.is_empty() || out.last() == Some(&b' ')) {
            continue;
        }
        out.push(c);
    }
    while out.last() == Some(&b' ') {
        out.pop();
    }
    out
}
