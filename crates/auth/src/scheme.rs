//! Password schemes: Dovecot's `{SCHEME}` names and crypt(3) hash strings.
//!
//! [`verify`] checks a password against a stored value such as
//! `{SHA512-CRYPT}$6$salt$hash`, `$5$...` (crypt, scheme detected from the
//! prefix), `{BLF-CRYPT}$2y$...`, `{ARGON2ID}$argon2id$...` or
//! `{PLAIN}secret`. Unknown or unsupported schemes (yescrypt `$y$`, MD5-CRYPT,
//! DES) are errors, never a silent failure or a panic. PLAIN is compared in
//! constant time.

use std::fmt;

use argon2::PasswordVerifier as _;

/// Why a stored password could not be checked (not: the password was wrong).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemeError {
    /// A `{SCHEME}` we do not know.
    Unknown(String),
    /// A scheme we know but do not implement (yescrypt, MD5-CRYPT...).
    Unsupported(String),
    /// The hash string is malformed for its scheme.
    Malformed(String),
}

impl fmt::Display for SchemeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemeError::Unknown(s) => write!(f, "unknown password scheme {s}"),
            SchemeError::Unsupported(s) => write!(f, "unsupported password scheme {s}"),
            SchemeError::Malformed(s) => write!(f, "malformed {s} password hash"),
        }
    }
}

impl std::error::Error for SchemeError {}

/// ct_eq - compares two byte strings in time independent of where they differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    // Walk the longer of the two so that timing only depends on lengths.
    let n = a.len().max(b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// Checks `password` against `stored` (`{SCHEME}value`, or a bare crypt string).
///
/// Returns `Ok(true)` on a match, `Ok(false)` on a wrong password.
pub fn verify(stored: &str, password: &[u8]) -> Result<bool, SchemeError> {
    let (scheme, value) = match stored.strip_prefix('{').and_then(|s| s.split_once('}')) {
        Some((scheme, value)) => (scheme.to_ascii_uppercase(), value),
        None => ("CRYPT".to_string(), stored),
    };
    // Dovecot allows a ".ENCODING" suffix on some schemes (e.g. PLAIN.b64); not supported.
    match scheme.as_str() {
        "PLAIN" | "CLEARTEXT" | "CLEAR" => Ok(ct_eq(value.as_bytes(), password)),
        "SHA512-CRYPT" => {
            require_prefix(value, "$6$", &scheme).and_then(|()| crypt(value, password))
        }
        "SHA256-CRYPT" => {
            require_prefix(value, "$5$", &scheme).and_then(|()| crypt(value, password))
        }
        "BLF-CRYPT" => {
            if ["$2y$", "$2b$", "$2a$", "$2x$"]
                .iter()
                .any(|p| value.starts_with(p))
            {
                crypt(value, password)
            } else {
                Err(SchemeError::Malformed(scheme))
            }
        }
        "ARGON2ID" => {
            require_prefix(value, "$argon2id$", &scheme).and_then(|()| crypt(value, password))
        }
        "ARGON2I" => {
            require_prefix(value, "$argon2i$", &scheme).and_then(|()| crypt(value, password))
        }
        "CRYPT" => crypt(value, password),
        "MD5-CRYPT" | "SSHA" | "SSHA256" | "SSHA512" | "SHA" | "SHA256" | "SHA512" | "MD5"
        | "PLAIN-MD5" | "CRAM-MD5" | "DIGEST-MD5" | "SCRAM-SHA-1" | "SCRAM-SHA-256" | "PBKDF2"
        | "OTP" | "LDAP-MD5" | "NTLM" => Err(SchemeError::Unsupported(scheme)),
        _ => Err(SchemeError::Unknown(scheme)),
    }
}

fn require_prefix(value: &str, prefix: &str, scheme: &str) -> Result<(), SchemeError> {
    if value.starts_with(prefix) {
        Ok(())
    } else {
        Err(SchemeError::Malformed(scheme.to_string()))
    }
}

/// crypt - verifies a crypt(3)-style string, choosing the algorithm by its prefix.
pub fn crypt(hash: &str, password: &[u8]) -> Result<bool, SchemeError> {
    if hash.starts_with("$6$") || hash.starts_with("$5$") {
        let name = if hash.starts_with("$6$") {
            "SHA512-CRYPT"
        } else {
            "SHA256-CRYPT"
        };
        return match sha_crypt::ShaCrypt::default().verify_password(password, hash) {
            Ok(()) => Ok(true),
            Err(sha_crypt::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(_) => Err(SchemeError::Malformed(name.to_string())),
        };
    }
    if hash.starts_with("$2y$")
        || hash.starts_with("$2b$")
        || hash.starts_with("$2a$")
        || hash.starts_with("$2x$")
    {
        return bcrypt::verify(password, hash)
            .map_err(|_| SchemeError::Malformed("BLF-CRYPT".to_string()));
    }
    if hash.starts_with("$argon2") {
        return match argon2::Argon2::default().verify_password(password, hash) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(_) => Err(SchemeError::Malformed("ARGON2".to_string())),
        };
    }
    if hash.starts_with("$y$") || hash.starts_with("$7$") || hash.starts_with("$gy$") {
        return Err(SchemeError::Unsupported(
            "yescrypt/scrypt ($y$)".to_string(),
        ));
    }
    if hash.starts_with("$1$") {
        return Err(SchemeError::Unsupported("MD5-CRYPT ($1$)".to_string()));
    }
    if hash.is_empty() || hash.starts_with('!') || hash.starts_with('*') {
        // Locked or passwordless accounts never authenticate.
        return Ok(false);
    }
    Err(SchemeError::Unsupported(format!(
        "crypt {}",
        hash.get(..3).unwrap_or("(short)")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Generated with `openssl passwd -6 -salt saltsalt secret` and `-5`.
    pub(crate) const SHA512: &str = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
    pub(crate) const SHA256: &str = "$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA";
    // libxcrypt crypt("secret", "$2b$05$abcdefghijklmnopqrstuu"); with $2y$ libxcrypt gives the same hash.
    pub(crate) const BCRYPT: &str = "$2b$05$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0a";
    // libxcrypt yescrypt of "secret".
    pub(crate) const YESCRYPT: &str = "$y$j9T$abcdefgh$IUWJt2doU4Kf6E/JP1UkAT3S5O3Q7SSA8SJirXIlEu9";

    #[test]
    fn known_vectors() {
        assert_eq!(
            verify(&format!("{{SHA512-CRYPT}}{SHA512}"), b"secret"),
            Ok(true)
        );
        assert_eq!(
            verify(&format!("{{SHA512-CRYPT}}{SHA512}"), b"Secret"),
            Ok(false)
        );
        assert_eq!(
            verify(&format!("{{SHA256-CRYPT}}{SHA256}"), b"secret"),
            Ok(true)
        );
        assert_eq!(verify(SHA256, b"nope"), Ok(false));
        assert_eq!(
            verify(&format!("{{BLF-CRYPT}}{BCRYPT}"), b"secret"),
            Ok(true)
        );
        let y = BCRYPT.replacen("$2b$", "$2y$", 1);
        assert_eq!(verify(&format!("{{BLF-CRYPT}}{y}"), b"secret"), Ok(true));
        assert_eq!(verify(&y, b"wrong"), Ok(false));
        assert_eq!(verify("{PLAIN}secret", b"secret"), Ok(true));
        assert_eq!(verify("{PLAIN}secret", b"secre"), Ok(false));
        assert_eq!(verify("{plain}secret", b"secret"), Ok(true));
    }

    #[test]
    fn generated_hashes() {
        let b = bcrypt::hash("hunter2", 4).unwrap();
        assert_eq!(verify(&format!("{{BLF-CRYPT}}{b}"), b"hunter2"), Ok(true));
        assert_eq!(verify(&b, b"hunter3"), Ok(false));
        // A small argon2id hash, made by the crate with a fixed salt.
        let a = argon2_hash(b"hunter2");
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_eq!(verify(&format!("{{ARGON2ID}}{a}"), b"hunter2"), Ok(true));
        assert_eq!(verify(&format!("{{ARGON2ID}}{a}"), b"hunter3"), Ok(false));
        let s = sha512_hash(b"hunter2");
        assert_eq!(
            verify(&format!("{{SHA512-CRYPT}}{s}"), b"hunter2"),
            Ok(true)
        );
    }

    pub(crate) fn argon2_hash(pw: &[u8]) -> String {
        use argon2::password_hash::CustomizedPasswordHasher as _;
        let params = argon2::Params::new(64, 1, 1, None).unwrap();
        argon2::Argon2::default()
            .hash_password_with_params(pw, b"somesaltsomesalt", params)
            .unwrap()
            .to_string()
    }

    pub(crate) fn sha512_hash(pw: &[u8]) -> String {
        use sha_crypt::CustomizedPasswordHasher as _;
        sha_crypt::ShaCrypt::default()
            .hash_password_with_params(pw, b"abcdefgh", sha_crypt::Params::default())
            .unwrap()
            .to_string()
    }

    #[test]
    fn errors_not_panics() {
        assert!(matches!(
            verify(&format!("{{CRYPT}}{YESCRYPT}"), b"secret"),
            Err(SchemeError::Unsupported(_))
        ));
        assert!(matches!(
            verify(YESCRYPT, b"secret"),
            Err(SchemeError::Unsupported(_))
        ));
        assert!(matches!(
            verify("{FOO}bar", b"x"),
            Err(SchemeError::Unknown(_))
        ));
        assert!(matches!(
            verify("{SHA512-CRYPT}$5$abc$def", b"x"),
            Err(SchemeError::Malformed(_))
        ));
        assert!(matches!(
            verify("{SHA512-CRYPT}$6$", b"x"),
            Err(SchemeError::Malformed(_))
        ));
        assert!(matches!(
            verify("{BLF-CRYPT}$2y$99$zzz", b"x"),
            Err(SchemeError::Malformed(_))
        ));
        assert!(matches!(
            verify("{ARGON2ID}$argon2id$v=19$garbage", b"x"),
            Err(SchemeError::Malformed(_))
        ));
        assert!(matches!(
            verify("{MD5-CRYPT}$1$abc$def", b"x"),
            Err(SchemeError::Unsupported(_))
        ));
        assert_eq!(verify("!", b""), Ok(false));
        assert_eq!(verify("", b""), Ok(false));
        assert_eq!(verify("*", b"*"), Ok(false));
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(!ct_eq(b"ab", b"abc"));
        assert!(!ct_eq(b"", b"\xff"));
    }
}
