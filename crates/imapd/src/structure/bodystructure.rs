//! BODY and BODYSTRUCTURE (RFC 3501 7.4.2, RFC 9051 7.5.2): body-type-1part
//! (basic, text with line count, message/rfc822 with envelope, body and
//! line count) and body-type-mpart, with extension data for BODYSTRUCTURE.
//! Octet sizes and line counts are computed from the part's bytes.

use super::envelope::{EMPTY_ENVELOPE, envelope};
use super::{PartRef, count_lines, unfold};
use crate::response::encode::{nstring, string};
use mail_parser::{ContentType, HeaderValue, PartType};

/// A body with no parts (a multipart whose boundary never appears).
const EMPTY_PART: &[u8] = b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)";

/// Append BODYSTRUCTURE (`ext` true) or BODY (`ext` false) of the part.
pub fn body_structure(out: &mut Vec<u8>, p: PartRef<'_, '_>, ext: bool, utf8: bool) {
    body(out, p, ext, utf8, 0);
}

fn content_type<'m>(p: &PartRef<'m, '_>) -> Option<&'m ContentType<'m>> {
    match p.header_value("Content-Type") {
        Some(HeaderValue::ContentType(ct)) => Some(ct),
        _ => None,
    }
}

fn body(out: &mut Vec<u8>, p: PartRef<'_, '_>, ext: bool, utf8: bool, depth: usize) {
    let Some(part) = p.part() else {
        out.extend_from_slice(EMPTY_PART);
        return;
    };
    let ct = content_type(&p);
    let (ty, sub) = match ct {
        Some(ct) if ct.c_subtype.is_some() => {
            (ct.c_type.to_ascii_lowercase(), ct.c_subtype.as_deref().unwrap_or("").to_ascii_lowercase())
        }
        _ if matches!(part.body, PartType::Multipart(_)) => ("multipart".into(), "mixed".into()),
        _ => ("text".into(), "plain".into()),
    };
    let params = ct.filter(|c| c.c_subtype.is_some()).and_then(|c| c.attributes.as_ref());
    if let PartType::Multipart(ids) = &part.body {
        out.push(b'(');
        if ids.is_empty() || depth > 100 {
            out.extend_from_slice(EMPTY_PART);
        }
        for &id in ids {
            if depth <= 100 {
                body(out, PartRef { msg: p.msg, idx: id as usize }, ext, utf8, depth + 1);
            }
        }
        out.push(b' ');
        string(out, sub.as_bytes(), utf8);
        if ext {
            out.push(b' ');
            param_list(out, params.map(|v| v.as_slice()), utf8, false);
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
    param_list(out, params.map(|v| v.as_slice()), utf8, ty == "text");
    for h in ["Content-ID", "Content-Description"] {
        out.push(b' ');
        nstring(out, p.header_unfolded(h).as_deref(), utf8);
    }
    out.push(b' ');
    let enc = p.header_unfolded("Content-Transfer-Encoding").filter(|e| !e.is_empty());
    string(out, enc.as_deref().unwrap_or(b"7bit"), utf8);
    let body_bytes = p.body_bytes();
    out.extend_from_slice(format!(" {}", body_bytes.len()).as_bytes());
    let is_message = ty == "message" && (sub == "rfc822" || sub == "global");
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
                out.extend_from_slice(EMPTY_PART);
            }
        }
    }
    if is_message || ty == "text" {
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
    match p.header_value("Content-Disposition") {
        Some(HeaderValue::ContentType(d)) => {
            out.push(b'(');
            string(out, d.c_type.as_bytes(), utf8);
            out.push(b' ');
            param_list(out, d.attributes.as_deref(), utf8, false);
            out.push(b')');
        }
        _ => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    let lang = p.header_raw("Content-Language").map(unfold).unwrap_or_default();
    let langs: Vec<&[u8]> =
        lang.split(|&c| c == b',').map(|l| l.trim_ascii()).filter(|l| !l.is_empty()).collect();
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

fn param_list(out: &mut Vec<u8>, attrs: Option<&[mail_parser::Attribute<'_>]>, utf8: bool, text: bool) {
    let attrs = attrs.unwrap_or_default();
    let has_charset = attrs.iter().any(|a| a.name.eq_ignore_ascii_case("charset"));
    if attrs.is_empty() && !text {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    let mut first = true;
    if text && !has_charset {
        out.extend_from_slice(b"\"charset\" \"us-ascii\"");
        first = false;
    }
    for a in attrs {
        if !first {
            out.push(b' ');
        }
        first = false;
        string(out, a.name.to_ascii_lowercase().as_bytes(), utf8);
        out.push(b' ');
        string(out, a.value.as_bytes(), utf8);
    }
    out.push(b')');
}
