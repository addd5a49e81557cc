//! `postconf -l`, `-m`, `-a`, `-A` and `-T`: what this suite offers, in
//! Postfix's output shapes (one name per line).

use std::io::Write;

/// Mailbox locking methods (`-l`), as Postfix lists them on Linux.
pub(crate) const LOCKS: &[&str] = &["flock", "fcntl", "dotlock"];

/// Lookup table types the tables library opens (`-m`); btree: and lmdb:
/// name the same indexed table as hash:.
pub(crate) const MAP_TYPES: &[&str] = &[
    "btree", "cidr", "hash", "inline", "lmdb", "pcre", "regexp", "static", "texthash", "unix",
];

/// SASL server types (`-a`): smtpd speaks Dovecot's auth protocol.
pub(crate) const SASL_SERVER: &[&str] = &["dovecot"];

/// SASL client types (`-A`): the smtp client's built-in PLAIN/LOGIN client
/// answers to Postfix's default smtp_sasl_type.
pub(crate) const SASL_CLIENT: &[&str] = &["cyrus"];

/// Prints one name per line.
pub(crate) fn print(out: &mut impl Write, names: &[&str]) -> Result<(), String> {
    for n in names {
        if crate::write_ok(out, &format!("{n}\n"))? {
            break;
        }
    }
    Ok(())
}

/// `-T mode`.
pub(crate) fn tls(mode: &str, out: &mut impl Write) -> Result<(), String> {
    let text = match mode {
        "compile-version" | "run-version" => "rustls 0.23 (ring); no OpenSSL\n",
        "public-key-algorithms" => "ecdsa\ned25519\nrsa\n",
        other => {
            eprintln!(
                "postconf: warning: unknown 'postconf -T' mode: {}",
                config::main_cf::printable(other, 100)
            );
            return Err(
                "usage: postconf -T compile-version|run-version|public-key-algorithms".into(),
            );
        }
    };
    crate::write_ok(out, text).map(|_| ())
}
