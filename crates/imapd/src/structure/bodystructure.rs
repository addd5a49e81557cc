//! BODY and BODYSTRUCTURE (RFC 3501 7.4.2, RFC 9051 7.5.2): body-type-1part
//! (basic, text with line count, message/rfc822 with envelope, body and
//! line count) and body-type-mpart, with extension data for BODYSTRUCTURE.
//! Octet sizes and line counts are computed from the part's bytes.

use super::envelope::{EMPTY_ENVELOPE, envelope};
use super::params;
use super::{PartRef, count_lines, unfold};
use crate::response::encode::{nstring, string};
use mail_parser::PartType;

/// A body with no parts (a multipart whose boundary never appears).
const EMPTY_PART: &[u8] = b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)";
/// The same with BODYSTRUCTURE's extension data.
const EMPTY_PART_EXT: &[u8] =
    b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)";

fn empty_part(ext: bool) -> &'static [u8] {
    if ext { EMPTY_PART_EXT } else { EMPTY_PART }
}

type Params = Vec<(String, Vec<u8>)>;

/// Append BODYSTRUCTURE (`ext` true) or BODY (`ext` false) of the part.
pub fn body_structure(out: &mut Vec<u8>, p: PartRef<'_, '_>, ext: bool, utf8: bool) {
    body(out, p, ext, utf8, 0);
}

/// Type, subtype and parameters from the raw Content-Type; text/plain
/// when absent or invalid (RFC 2045 5.2).
fn content_type(p: &PartRef<'_, '_>) -> Option<(String, String, Params)> {
    let (main, params) = params::parse(p.header_raw("Content-Type")?);
    let (ty, sub) = main.split_once('/')?;
    if ty.is_empty() || sub.is_empty() {
        return None;
    }
    // text/plain in US-ASCII, however spelled, is shown in the default
    // form (as Dovecot does); any other type keeps the sender's case.
    let only_ascii = params
        .iter()
        .all(|(n, v)| n.eq_ignore_ascii_case("charset") && v.eq_ignore_ascii_case(b"us-ascii"));
    if ty.eq_ignore_ascii_case("text") && sub.eq_ignore_ascii_case("plain") && only_ascii {
        return Some(("text".into(), "plain".into(), Vec::new()));
    }
    Some((ty.to_string(), sub.to_string(), params))
}

fn body(out: &mut Vec<u8>, p: PartRef<'_, '_>, ext: bool, utf8: bool, depth: usize) {
    let Some(part) = p.part() else {
        out.extend_from_slice(empty_part(ext));
        return;
    };
    let (ty, sub, params) = match content_type(&p) {
        Some(ct) => ct,
        None if matches!(part.body, PartType::Multipart(_)) => {
            ("multipart".into(), "mixed".into(), Vec::new())
        }
        None => ("text".into(), "plain".into(), Vec::new()),
    };
    let none = Vec::new();
    let ids = match &part.body {
        PartType::Multipart(ids) => Some(ids),
        // A multipart mail-parser could not split (no boundary): an mpart
        // with one empty part, as Dovecot shows it.
        _ if ty.eq_ignore_ascii_case("multipart") => Some(&none),
        _ => None,
    };
    if let Some(ids) = ids {
        out.push(b'(');
        if ids.is_empty() || depth > 100 {
            out.extend_from_slice(empty_part(ext));
        }
        for &id in ids {
            if depth <= 100 {
                body(
                    out,
                    PartRef {
                        msg: p.msg,
                        idx: id as usize,
                    },
                    ext,
                    utf8,
                    depth + 1,
                );
            }
        }
        out.push(b' ');
        string(out, sub.as_bytes(), utf8);
        if ext {
            out.push(b' ');
            param_list(out, &params, utf8, false);
            extensions(out, &p, utf8);
        }
        out.push(b')');
        return;
    }
    out.push(b'(');
    string(out, ty.as_bytes(), utf8);
    out.push(b' ');
    string(out, sub.as_bytes(), utf8);
    out.push(b' ');
    param_list(out, &params, utf8, ty.eq_ignore_ascii_case("text"));
    for h in ["Content-ID", "Content-Description"] {
        out.push(b' ');
        nstring(out, p.header_unfolded(h).as_deref(), utf8);
    }
    out.push(b' ');
    let enc = p
        .header_unfolded("Content-Transfer-Encoding")
        .filter(|e| !e.is_empty());
    string(out, enc.as_deref().unwrap_or(b"7bit"), utf8);
    let body_bytes = p.body_bytes();
    out.extend_from_slice(format!(" {}", body_bytes.len()).as_bytes());
    let is_message = ty.eq_ignore_ascii_case("message")
        && (sub.eq_ignore_ascii_case("rfc822") || sub.eq_ignore_ascii_case("global"));
    if is_message {
        out.push(b' ');
        match p.nested() {
            Some(m) if depth <= 100 => {
                envelope(out, PartRef::root(m), utf8);
                out.push(b' ');
                body(out, PartRef::root(m), ext, utf8, depth + 1);
            }
            _ => {
                out.extend_from_slice(EMPTY_ENVELOPE);
                out.push(b' ');
                out.extend_from_slice(empty_part(ext));
            }
        }
    }
    if is_message || ty.eq_ignore_ascii_case("text") {
        out.extend_from_slice(format!(" {}", count_lines(body_bytes)).as_bytes());
    }
    if ext {
        out.push(b' ');
        nstring(out, p.header_unfolded("Content-MD5").as_deref(), utf8);
        extensions(out, &p, utf8);
    }
    out.push(b')');
}

/// body-fld-dsp, body-fld-lang, body-fld-loc.
fn extensions(out: &mut Vec<u8>, p: &PartRef<'_, '_>, utf8: bool) {
    out.push(b' ');
    match p.header_raw("Content-Disposition").map(params::parse) {
        Some((d, dp)) if !d.is_empty() => {
            out.push(b'(');
            string(out, d.as_bytes(), utf8);
            out.push(b' ');
            param_list(out, &dp, utf8, false);
            out.push(b')');
        }
        _ => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    let lang = p
        .header_raw("Content-Language")
        .map(unfold)
        .unwrap_or_default();
    let langs: Vec<&[u8]> = lang
        .split(|&c| c == b',')
        .map(|l| l.trim_ascii())
        .filter(|l| !l.is_empty())
        .collect();
    match langs.as_slice() {
        [] => out.extend_from_slice(b"NIL"),
        [one] => string(out, one, utf8),
        many => {
            out.push(b'(');
            for (i, l) in many.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                string(out, l, utf8);
            }
            out.push(b')');
        }
    }
    out.push(b' ');
    nstring(out, p.header_unfolded("Content-Location").as_deref(), utf8);
}

/// The parameter list; a text part without charset gets
/// `"charset" "us-ascii"` last (RFC 2045's default, where Dovecot puts it).
fn param_list(out: &mut Vec<u8>, attrs: &[(String, Vec<u8>)], utf8: bool, text: bool) {
    let has_charset = attrs.iter().any(|a| a.0.eq_ignore_ascii_case("charset"));
    if attrs.is_empty() && !text {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (name, value)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(out, name.as_bytes(), utf8);
        out.push(b' ');
        string(out, value, utf8);
    }
    if text && !has_charset {
        if !attrs.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(b"\"charset\" \"us-ascii\"");
    }
    out.push(b')');
}
