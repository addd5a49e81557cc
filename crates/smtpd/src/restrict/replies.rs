//! Reply helpers: the DSN fixes and reply codes of Postfix's
//! smtpd_check_reject, and the host name and address syntax checks.

use super::*;

/// With smtpd_delay_reject = no, client and HELO restrictions run outside
/// any mail transaction, so HOLD and DISCARD have nothing to act on:
/// Postfix skips them with a warning.
pub(super) fn outside_transaction(v: Verdict, list: &str) -> Verdict {
    match v {
        Verdict::Hold(why) | Verdict::Discard(why) => {
            maillog::warning!(
                "with smtpd_delay_reject=no, HOLD and DISCARD are always skipped in {list} \
                 restrictions ({})",
                maillog::printable(&why, 100)
            );
            Verdict::Ok
        }
        other => other,
    }
}

pub(super) fn class_static(class: &str) -> &'static str {
    match class {
        "Client host" => "Client host",
        "Helo command" => "Helo command",
        "Sender address" => "Sender address",
        "Recipient address" => "Recipient address",
        "Etrn command" => "Etrn command",
        "End-of-data" => "End-of-data",
        _ => "Data command",
    }
}

/// Postfix's smtpd_dsn_fix: an address-specific DSN (`x.1.y`) in an
/// access table or RBL reply is made to fit what is being rejected.
pub(super) fn dsn_fix(dsn: &str, class: &str) -> String {
    let Some(micro) = dsn.get(1..4).filter(|m| *m == ".1.").and(dsn.get(4..)) else {
        return dsn.to_string();
    };
    let (sender, rcpt) = match micro {
        "1" => ("4.1.0", "4.1.1"),
        "2" => ("4.1.8", "4.1.2"),
        "3" => ("4.1.7", "4.1.3"),
        "4" => ("4.1.0", "4.1.4"),
        "5" => ("4.1.0", "4.1.5"),
        "6" => ("4.1.0", "4.1.6"),
        "7" => ("4.1.7", "4.1.3"),
        "8" => ("4.1.8", "4.1.2"),
        _ => ("4.1.0", "4.1.0"),
    };
    match class {
        "Sender address" => sender.to_string(),
        "Recipient address" => rcpt.to_string(),
        _ => "4.0.0".to_string(),
    }
}

/// Enhanced status codes the replies use, as `&'static str` for [`Reply`].
const DSNS: [&str; 28] = [
    "4.0.0", "5.0.0", "4.1.0", "5.1.0", "4.1.1", "4.1.2", "4.1.8", "4.3.0", "4.3.2", "4.3.5",
    "4.5.2", "4.5.0", "4.7.0", "4.7.1", "4.7.25", "4.5.2", "5.1.1", "5.1.2", "5.1.8", "5.3.0",
    "5.3.2", "5.5.2", "5.5.0", "5.7.0", "5.7.1", "5.7.25", "4.5.1", "5.5.1",
];

/// A reply with `dsn`'s class set to the code's (Postfix's
/// smtpd_check_reject); a DSN outside [`DSNS`] goes into the text, which
/// reads the same on the wire.
pub(super) fn make_reply(code: u16, dsn: &str, text: String) -> Reply {
    let class = if code < 500 { '4' } else { '5' };
    let dsn: String = std::iter::once(class).chain(dsn.chars().skip(1)).collect();
    match DSNS.iter().find(|d| **d == dsn) {
        Some(d) => Reply::new(code, Some(d), text),
        None => Reply::new(code, None, format!("{dsn} {text}")),
    }
}

/// A name with one trailing dot removed (not `..`).
pub(super) fn truncate_dot(name: &str) -> &str {
    match name.strip_suffix('.') {
        Some(t) if !t.ends_with('.') && !t.is_empty() => t,
        _ => name,
    }
}

/// Postfix's valid_hostname: labels of letters, digits, `-`, `_`, at most
/// 63 bytes each and 255 in all, no label starting or ending with `-`, and
/// not all-numeric.
pub(super) fn valid_hostname(d: &str) -> bool {
    if d.is_empty() || d.len() > 255 {
        return false;
    }
    let mut numeric = true;
    for label in d.split('.') {
        if label.is_empty() || label.len() > 63 || label.starts_with('-') || label.ends_with('-') {
            return false;
        }
        for c in label.bytes() {
            if !(c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
                return false;
            }
            if !c.is_ascii_digit() {
                numeric = false;
            }
        }
    }
    !numeric
}

/// An IPv4 or IPv6 address (`IPv6:` prefix allowed).
pub(super) fn valid_hostaddr(a: &str) -> bool {
    let bare = match a.get(..5) {
        Some(p) if p.eq_ignore_ascii_case("ipv6:") => a.get(5..).unwrap_or(""),
        _ => a,
    };
    bare.parse::<IpAddr>().is_ok()
}
