//! Password schemes: Dovecot's `{SCHEME}` names and crypt(3) hash strings.
//!
//! [`verify`] checks a password against a stored value such as
//! `{SHA512-CRYPT}$6$salt$hash`, `$5$...`, `$y$...` (crypt, scheme detected
//! from the prefix), `{BLF-CRYPT}$2y$...`, `{ARGON2ID}$argon2id$...` or
//! `{PLAIN}secret`. Unknown or unsupported schemes (MD5-CRYPT `$1$`, scrypt
//! `$7$`, DES...) are errors that name the scheme, never a silent failure or
//! a panic. PLAIN is compared in constant time.
//!
//! yescrypt (`$y$`, Debian's default for /etc/shadow since Debian 11) is
//! checked with the RustCrypto `yescrypt` crate. Hashes are trusted input
//! (the administrator's files), but their cost is bounded anyway: at most
//! [`MAX_YESCRYPT_MEMORY`] bytes, no extra time factor, a 256-bit result as
//! libxcrypt writes it.

use std::fmt;

use argon2::PasswordVerifier as _;

/// Most memory a yescrypt hash may ask for: 1 GiB, what libxcrypt's
/// highest cost (11) uses. Debian's default cost (5, `j9T`) needs 16 MiB.
pub const MAX_YESCRYPT_MEMORY: u64 = 1 << 30;

/// Why a stored password could not be checked (not: the password was wrong).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemeError {
    /// A `{SCHEME}` we do not know.
    Unknown(String),
    /// A scheme we know but do not implement (MD5-CRYPT, scrypt...), as
    /// `{NAME}` or `$id$ (name)`.
    Unsupported(String),
    /// The hash string is malformed for its scheme.
    Malformed(String),
}

impl fmt::Display for SchemeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemeError::Unknown(s) => write!(f, "unknown password scheme {{{s}}}"),
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

/// The password of a cleartext entry (`{PLAIN}`, `{CLEARTEXT}`,
/// `{CLEAR}`), for mechanisms that need it (APOP); None for a hash.
pub fn plaintext(stored: &str) -> Option<&str> {
    let (scheme, value) = stored.strip_prefix('{')?.split_once('}')?;
    ["PLAIN", "CLEARTEXT", "CLEAR"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s))
        .then_some(value)
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
        | "OTP" | "LDAP-MD5" | "NTLM" => Err(SchemeError::Unsupported(format!("{{{scheme}}}"))),
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
    if hash.starts_with("$y$") {
        return yescrypt_verify(hash, password);
    }
    if hash.is_empty() || hash.starts_with('!') || hash.starts_with('*') {
        // Locked or passwordless accounts never authenticate.
        return Ok(false);
    }
    Err(SchemeError::Unsupported(crypt_scheme_name(hash)))
}

/// crypt_scheme_name - how an unsupported crypt(3) string is named in logs:
/// `$1$ (MD5-CRYPT)`, `$7$ (scrypt)`, `DES`...
fn crypt_scheme_name(hash: &str) -> String {
    let Some(rest) = hash.strip_prefix('$') else {
        return if hash.len() == 13 {
            "DES (traditional crypt)".to_string()
        } else {
            "unknown (no $id$ prefix)".to_string()
        };
    };
    let id: String = rest
        .split('$')
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(16)
        .collect();
    let name = match id.as_str() {
        "1" => " (MD5-CRYPT)",
        "7" => " (scrypt)",
        "gy" => " (gost-yescrypt)",
        "sha1" => " (SHA1-CRYPT)",
        "md5" => " (SunMD5)",
        "3" => " (NT-HASH)",
        _ => "",
    };
    format!("${id}${name}")
}

/// yescrypt_verify - checks a `$y$params$salt$hash` string, refusing
/// parameters that would cost more than [`MAX_YESCRYPT_MEMORY`] or an
/// extra time factor.
fn yescrypt_verify(hash: &str, password: &[u8]) -> Result<bool, SchemeError> {
    use yescrypt::{Mode, Params, PasswordVerifier as _};
    let malformed = || SchemeError::Malformed("yescrypt ($y$)".to_string());
    let fields: Vec<&str> = hash.split('$').collect();
    // "", "y", params, salt, hash; libxcrypt writes a 256-bit hash (43 characters).
    let [_, _, params, _salt, sum] = fields.as_slice() else {
        return Err(malformed());
    };
    if sum.len() != 43 {
        return Err(malformed());
    }
    let params: Params = params.parse().map_err(|_| malformed())?;
    let memory = params
        .n()
        .checked_mul(u64::from(params.r()))
        .and_then(|m| m.checked_mul(128))
        .and_then(|m| m.checked_mul(u64::from(params.p())));
    if memory.is_none_or(|m| m > MAX_YESCRYPT_MEMORY) {
        return Err(SchemeError::Unsupported(
            "$y$ (yescrypt) with more than 1 GiB memory cost".to_string(),
        ));
    }
    // Only what crypt_gensalt makes: no time factor t, no upgrades g.
    let plain = [Mode::Classic, Mode::Worm, Mode::Rw].iter().any(|&mode| {
        Params::new(mode, params.n(), params.r(), params.p()).is_ok_and(|p| p == params)
    });
    if !plain {
        return Err(SchemeError::Unsupported(
            "$y$ (yescrypt) with t or g parameters".to_string(),
        ));
    }
    match yescrypt::Yescrypt::default().verify_password(password, hash) {
        Ok(()) => Ok(true),
        Err(yescrypt::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(_) => Err(malformed()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    // Generated with `openssl passwd -6 -salt saltsalt secret` and `-5`.
    pub(crate) const SHA512: &str = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
    pub(crate) const SHA256: &str = "$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA";
    // libxcrypt crypt("secret", "$2b$05$abcdefghijklmnopqrstuu"); with $2y$ libxcrypt gives the same hash.
    pub(crate) const BCRYPT: &str = "$2b$05$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0a";
    // libxcrypt yescrypt of "secret": crypt(3) with setting `$y$j9T$abcdefgh$`
    // (Python 3.11 `crypt.crypt`).
    pub(crate) const YESCRYPT: &str = "$y$j9T$abcdefgh$IUWJt2doU4Kf6E/JP1UkAT3S5O3Q7SSA8SJirXIlEu9";
    // `mkpasswd -m yescrypt secret` (Debian 12, whois 5.5.17): a random salt.
    const YESCRYPT_MKPASSWD: &str =
        "$y$j9T$0Yltfa7l4TXXdvJixZzU7.$ghfBbeKOw3tgLs0ZP6KbyAHu5AKjNgho4udvXIie1/7";
    // `mkpasswd -m yescrypt -R 1` and `-R 7` of "pässword with spaces".
    const YESCRYPT_COST1: &str =
        "$y$j75$R4rwtO6DsUsWF9xDCyx2O0$1Zbh9cRn3fuP43AXRBeZjzYOmB/cNkBDwrJjzo2JCr3";
    const YESCRYPT_COST7: &str =
        "$y$jBT$GU/metjlIcV.UaSpeNXb41$TSR11welh.YHzYCi3x48y4rWGKpkaT7fLmCGdFrwME8";

    #[test]
    fn yescrypt_fixed_hashes() {
        for h in [YESCRYPT, YESCRYPT_MKPASSWD] {
            assert_eq!(verify(h, b"secret"), Ok(true), "{h}");
            assert_eq!(verify(&format!("{{CRYPT}}{h}"), b"secret"), Ok(true));
            assert_eq!(verify(h, b"Secret"), Ok(false));
            assert_eq!(verify(h, b""), Ok(false));
        }
        let pw = "pässword with spaces".as_bytes();
        assert_eq!(verify(YESCRYPT_COST1, pw), Ok(true));
        assert_eq!(verify(YESCRYPT_COST7, pw), Ok(true));
        assert_eq!(verify(YESCRYPT_COST1, b"password with spaces"), Ok(false));
    }

    /// A hash made now by Debian's mkpasswd (package whois, which
    /// scripts/install-deps installs) with a fresh random salt.
    #[test]
    fn yescrypt_mkpasswd_now() {
        let out = std::process::Command::new("mkpasswd")
            .args(["-m", "yescrypt", "--stdin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write as _;
                if let Some(mut stdin) = c.stdin.take() {
                    stdin.write_all("hunter2 €\n".as_bytes())?;
                }
                c.wait_with_output()
            })
            .expect("mkpasswd (Debian package whois; run scripts/install-deps)");
        assert!(out.status.success(), "{out:?}");
        let hash = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert!(hash.starts_with("$y$"), "{hash}");
        assert_eq!(verify(&hash, "hunter2 €".as_bytes()), Ok(true), "{hash}");
        assert_eq!(verify(&hash, b"hunter2"), Ok(false), "{hash}");
    }

    #[test]
    fn yescrypt_costs_are_bounded() {
        // N = 2^30, r = 32: 4 TiB.
        let sum = "IUWJt2doU4Kf6E/JP1UkAT3S5O3Q7SSA8SJirXIlEu9";
        match verify(&format!("$y$jRT$abcdefgh${sum}"), b"x") {
            Err(SchemeError::Unsupported(s)) => assert!(s.contains("memory"), "{s}"),
            other => panic!("{other:?}"),
        }
        // A time factor (t = 2) on Debian's default cost.
        use yescrypt::PasswordHasher as _;
        let params =
            yescrypt::Params::new_with_all_params(yescrypt::Mode::Rw, 4096, 32, 1, 2, 0).unwrap();
        let h = yescrypt::Yescrypt::from(params)
            .hash_password_with_salt(b"secret", b"abcdefgh")
            .unwrap()
            .to_string();
        match verify(&h, b"secret") {
            Err(SchemeError::Unsupported(s)) => assert!(s.contains("t or g"), "{s}"),
            other => panic!("{h}: {other:?}"),
        }
        // A short or missing hash part is malformed, never "any password".
        for bad in [
            "$y$j9T$abcdefgh$",
            "$y$j9T$abcdefgh$IUWJt2doU4Kf6E",
            "$y$j9T$abcdefgh",
            "$y$j9T$abcdefgh$IUWJt2doU4Kf6E/JP1UkAT3S5O3Q7SSA8SJirXIlEu9$x",
            "$y$!!!$abcdefgh$IUWJt2doU4Kf6E/JP1UkAT3S5O3Q7SSA8SJirXIlEu9",
        ] {
            assert!(
                matches!(verify(bad, b""), Err(SchemeError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn unsupported_schemes_are_named() {
        let name = |h: &str| match verify(h, b"secret") {
            Err(SchemeError::Unsupported(s)) => s,
            other => panic!("{h}: {other:?}"),
        };
        assert_eq!(
            name("$1$saltsalt$9xy1btjgzLYfb7hivXtC//"),
            "$1$ (MD5-CRYPT)"
        );
        assert_eq!(
            name(
                "$7$CU..../....5rjO9FD1uvEXvpTCyypOv.$cA.S5O/qOMAOid/9A.3jhjaedM6hSQGO821C1wp4hE2"
            ),
            "$7$ (scrypt)"
        );
        assert_eq!(name("$gy$j9T$x$y"), "$gy$ (gost-yescrypt)");
        assert_eq!(name("$zz$abc"), "$zz$");
        assert_eq!(name("abNANd1rDfiNc"), "DES (traditional crypt)");
        assert_eq!(name("{MD5-CRYPT}$1$x$y"), "{MD5-CRYPT}");
        assert_eq!(
            SchemeError::Unsupported(name("$1$a$b")).to_string(),
            "unsupported password scheme $1$ (MD5-CRYPT)"
        );
    }

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
