//! Password databases: Dovecot passwd-file and the system's shadow file.
//!
//! A [`PassDb`] is a list of sources tried in order, built from
//! `auth_passdb` (`passwd-file:/etc/postfix/passwd, shadow`). The first
//! source that accepts the password wins; a wrong password or an unknown user
//! in one source moves on to the next, as Dovecot does by default.
//!
//! passwd-file lines are `user:{SCHEME}hash:uid:gid:gecos:home:shell:extra`;
//! only the first two fields are required, `#` starts a comment line, blank
//! lines are skipped. A virtual user logs in with the name exactly as listed
//! (usually the full address); the login is also tried in lower case. Each
//! lookup checks the file's inode, size and modification time and reads it
//! again when they changed, so edits take effect without a reload while an
//! unchanged file is parsed from memory ([`read_passwd_file`]).
//!
//! The shadow source reads `/etc/shadow` for the hash and `/etc/passwd` for
//! uid, gid and home. PAM is not built in (it needs libpam0g-dev); the name
//! `pam` is accepted and served by the shadow source.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::scheme::{self, SchemeError};

/// Largest password file we read.
pub const MAX_FILE: u64 = 64 * 1024 * 1024;
/// Longest user name accepted for a lookup.
pub const MAX_USER: usize = 512;
/// Longest password accepted for a check.
pub const MAX_PASSWORD: usize = 1024;

/// Errors from parsing `auth_passdb` or reading a password database.
#[derive(Debug)]
pub enum Error {
    /// `auth_passdb` names an unknown source or is malformed.
    Spec(String),
    /// A database file could not be read.
    Io(PathBuf, std::io::Error),
    /// The user's entry exists but its password cannot be checked
    /// (unsupported or unknown scheme, malformed hash).
    Entry {
        /// The database file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The user, as listed in the file.
        user: String,
        /// What is wrong.
        error: SchemeError,
    },
    /// The user's entry exists but is malformed (bad uid, missing field...).
    Malformed {
        /// The database file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        what: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Spec(s) => write!(f, "auth_passdb: {s}"),
            Error::Io(p, e) => write!(f, "password database {}: {e}", p.display()),
            Error::Entry {
                path,
                line,
                user,
                error,
            } => write!(
                f,
                "{error} for user {user} ({}, line {line})",
                path.display()
            ),
            Error::Malformed { path, line, what } => {
                write!(f, "{}, line {line}: {what}", path.display())
            }
        }
    }
}

impl std::error::Error for Error {}

/// Proof that a user gave a correct password. Only this crate can make one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    user: String,
    uid: Option<u32>,
    gid: Option<u32>,
    home: Option<PathBuf>,
    source: &'static str,
}

impl Authenticated {
    pub(crate) fn new(
        user: &str,
        uid: Option<u32>,
        gid: Option<u32>,
        home: Option<PathBuf>,
        source: &'static str,
    ) -> Authenticated {
        Authenticated {
            user: user.to_string(),
            uid,
            gid,
            home,
            source,
        }
    }
    /// The user name as found in the database.
    pub fn user(&self) -> &str {
        &self.user
    }
    /// The uid from the database, if it gives one.
    pub fn uid(&self) -> Option<u32> {
        self.uid
    }
    /// The gid from the database, if it gives one.
    pub fn gid(&self) -> Option<u32> {
        self.gid
    }
    /// The home directory from the database, if it gives one.
    pub fn home(&self) -> Option<&Path> {
        self.home.as_deref()
    }
    /// Which kind of source accepted the password ("passwd-file" or "shadow").
    pub fn source(&self) -> &'static str {
        self.source
    }
}

/// One password source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A Dovecot passwd-file.
    PasswdFile(PathBuf),
    /// System users: a shadow file and a passwd file (PAM is served by this too).
    Shadow {
        /// Usually /etc/shadow.
        shadow: PathBuf,
        /// Usually /etc/passwd.
        passwd: PathBuf,
    },
}

/// An ordered list of password sources (`auth_passdb`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassDb {
    sources: Vec<Source>,
}

impl PassDb {
    /// Parses `auth_passdb`: sources separated by commas or white space,
    /// each `passwd-file:PATH`, `shadow` or `pam`.
    pub fn from_spec(spec: &str) -> Result<PassDb, Error> {
        let mut sources = Vec::new();
        for item in spec.split(|c: char| c == ',' || c.is_whitespace()) {
            if item.is_empty() {
                continue;
            }
            let (kind, arg) = match item.split_once(':') {
                Some((k, a)) => (k, Some(a)),
                None => (item, None),
            };
            match (kind, arg) {
                ("passwd-file", Some(path)) if path.starts_with('/') => {
                    sources.push(Source::PasswdFile(PathBuf::from(path)));
                }
                ("passwd-file", _) => {
                    return Err(Error::Spec(format!(
                        "{item}: passwd-file needs an absolute path"
                    )));
                }
                ("shadow" | "pam", None) => sources.push(Source::Shadow {
                    shadow: PathBuf::from("/etc/shadow"),
                    passwd: PathBuf::from("/etc/passwd"),
                }),
                _ => return Err(Error::Spec(format!("{item}: unknown password database"))),
            }
        }
        if sources.is_empty() {
            return Err(Error::Spec("no password database configured".to_string()));
        }
        Ok(PassDb { sources })
    }

    /// A PassDb from explicit sources (tests, other daemons' own settings).
    pub fn from_sources(sources: Vec<Source>) -> PassDb {
        PassDb { sources }
    }

    /// The sources, in lookup order.
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// Checks `user`'s `password` against each source in turn.
    ///
    /// `Ok(Some(_))`: accepted. `Ok(None)`: unknown user or wrong password in
    /// every source. `Err`: no source accepted, and one of them could not be
    /// consulted (unreadable file, unknown scheme...): the caller logs it and
    /// may answer with a temporary failure.
    pub fn verify(&self, user: &str, password: &[u8]) -> Result<Option<Authenticated>, Error> {
        if user.is_empty()
            || user.len() > MAX_USER
            || password.len() > MAX_PASSWORD
            || user.contains([':', '\n', '\r', '\0'])
        {
            return Ok(None);
        }
        let mut first_error = None;
        let mut found_user = false;
        for source in &self.sources {
            let r = match source {
                Source::PasswdFile(path) => passwd_file_verify(path, user, password),
                Source::Shadow { shadow, passwd } => shadow_verify(shadow, passwd, user, password),
            };
            match r {
                Ok(Lookup::Accepted(a)) => return Ok(Some(a)),
                Ok(Lookup::Rejected) => found_user = true,
                Ok(Lookup::NoUser) => {}
                Err(e) => {
                    found_user = true;
                    first_error.get_or_insert(e);
                }
            }
        }
        if !found_user {
            // Spend about as long as a real check, so that timing does not
            // tell unknown users from wrong passwords.
            let _ = scheme::crypt(DUMMY_HASH, password);
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }
}

impl PassDb {
    /// Checks credentials from a SASL exchange. An authorization identity
    /// other than the login itself is refused (`Ok(None)`): nobody may act
    /// as another user.
    pub fn verify_credentials(
        &self,
        creds: &crate::sasl::Credentials,
    ) -> Result<Option<Authenticated>, Error> {
        if !creds.authzid_ok() {
            return Ok(None);
        }
        if let Some(proof) = &creds.apop {
            return self.verify_apop(&creds.authcid, proof);
        }
        self.verify(&creds.authcid, creds.password.as_bytes())
    }

    /// Checks an APOP digest: only a passwd-file entry with a cleartext
    /// password (`{PLAIN}`, `{CLEARTEXT}`, `{CLEAR}`) can be checked;
    /// hashed entries and system users fail (as in Dovecot, whose APOP
    /// needs a passdb that can give the password in PLAIN).
    pub fn verify_apop(
        &self,
        user: &str,
        proof: &crate::sasl::ApopProof,
    ) -> Result<Option<Authenticated>, Error> {
        if user.is_empty() || user.len() > MAX_USER || user.contains([':', '\n', '\r', '\0']) {
            return Ok(None);
        }
        let mut first_error = None;
        for source in &self.sources {
            let Source::PasswdFile(path) = source else {
                continue;
            };
            match passwd_file_entry(path, user) {
                Ok(Some(entry)) => {
                    let Some(clear) = scheme::plaintext(&entry.password) else {
                        continue;
                    };
                    let mut data = proof.challenge.as_bytes().to_vec();
                    data.extend_from_slice(clear.as_bytes());
                    if scheme::ct_eq(&crate::md5::digest(&data), &proof.digest) {
                        return Ok(Some(Authenticated::new(
                            &entry.user,
                            entry.uid,
                            entry.gid,
                            entry.home,
                            "passwd-file",
                        )));
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    /// True when some source could check APOP (a passwd-file: whether
    /// its entries are in cleartext shows only per user).
    pub fn apop_capable(&self) -> bool {
        self.sources
            .iter()
            .any(|s| matches!(s, Source::PasswdFile(_)))
    }
}

/// passwd_file_entry - `user`'s entry in the passwd-file at `path`.
fn passwd_file_entry(path: &Path, user: &str) -> Result<Option<PasswdEntry>, Error> {
    let text = read_passwd_file(path)?;
    for (i, line) in text.lines().enumerate() {
        let listed = line.split(':').next().unwrap_or("");
        if !names_match(listed, user) {
            continue;
        }
        return match parse_passwd_line(line) {
            Ok(Some(e)) => Ok(Some(e)),
            Ok(None) => continue,
            Err(what) => Err(Error::Malformed {
                path: path.to_path_buf(),
                line: i + 1,
                what,
            }),
        };
    }
    Ok(None)
}

/// A SHA512-CRYPT hash of a random string, checked for unknown users.
const DUMMY_HASH: &str = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";

enum Lookup {
    Accepted(Authenticated),
    Rejected,
    NoUser,
}

fn read_bounded(path: &Path) -> Result<String, Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::Io(path.to_path_buf(), e))?;
    let mut data = Vec::new();
    file.take(MAX_FILE)
        .read_to_end(&mut data)
        .map_err(|e| Error::Io(path.to_path_buf(), e))?;
    Ok(String::from_utf8_lossy(&data).into_owned())
}

/// One parsed passwd-file line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    /// Login name as listed.
    pub user: String,
    /// Stored password (`{SCHEME}value` or a crypt string).
    pub password: String,
    /// uid, if given.
    pub uid: Option<u32>,
    /// gid, if given.
    pub gid: Option<u32>,
    /// home directory, if given.
    pub home: Option<PathBuf>,
}

/// Parses one passwd-file line. `Ok(None)` for comments and blank lines.
pub fn parse_passwd_line(line: &str) -> Result<Option<PasswdEntry>, String> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.trim().is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let mut fields = line.split(':');
    let user = fields.next().unwrap_or("");
    if user.is_empty() {
        return Err("empty user name".to_string());
    }
    let Some(password) = fields.next() else {
        return Err("no password field".to_string());
    };
    let num = |f: Option<&str>, what: &str| -> Result<Option<u32>, String> {
        match f {
            None | Some("") => Ok(None),
            Some(s) => s
                .parse::<u32>()
                .map(Some)
                .map_err(|_| format!("bad {what} {s:?}")),
        }
    };
    let uid = num(fields.next(), "uid")?;
    let gid = num(fields.next(), "gid")?;
    let _gecos = fields.next();
    let home = fields.next().filter(|h| !h.is_empty()).map(PathBuf::from);
    Ok(Some(PasswdEntry {
        user: user.to_string(),
        password: password.to_string(),
        uid,
        gid,
        home,
    }))
}

/// Lists the malformed lines of a passwd-file's text (for postconf-style checks).
pub fn lint_passwd_file(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match parse_passwd_line(line) {
            Err(e) => out.push((i + 1, e)),
            Ok(Some(entry)) => {
                if let Err(e) = scheme::verify(&entry.password, b"") {
                    out.push((i + 1, e.to_string()));
                }
            }
            Ok(None) => {}
        }
    }
    out
}

fn names_match(listed: &str, login: &str) -> bool {
    listed == login
        || (login.bytes().any(|b| b.is_ascii_uppercase()) && listed == login.to_ascii_lowercase())
}

/// What tells one version of a file from another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// How old a file's mtime must be before its cached copy is trusted.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

/// Most passwd-files kept in memory at once.
const MAX_CACHED: usize = 16;

type Cache = HashMap<PathBuf, (Stamp, Arc<str>)>;

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// read_passwd_file - the text of a passwd-file, read again only when its
/// inode, size, mtime or ctime changed since the last call.
///
/// # Errors
/// [`Error::Io`] when the file cannot be examined or read.
pub fn read_passwd_file(path: &Path) -> Result<Arc<str>, Error> {
    let meta = std::fs::metadata(path).map_err(|e| Error::Io(path.to_path_buf(), e))?;
    let stamp = Stamp::of(&meta);
    // Timestamps are coarse: two writes of the same size in one clock tick
    // look alike. A file changed in the last seconds is always read again
    // (git's "racily clean" rule).
    let settled = meta
        .modified()
        .ok()
        .and_then(|m| m.elapsed().ok())
        .is_some_and(|age| age >= SETTLE);
    if settled
        && let Ok(c) = cache().lock()
        && let Some((s, text)) = c.get(path)
        && *s == stamp
    {
        return Ok(Arc::clone(text));
    }
    // Stamped before reading: a change during the read shows at the next
    // lookup as a new stamp.
    let text: Arc<str> = Arc::from(read_bounded(path)?);
    if let Ok(mut c) = cache().lock() {
        if c.len() >= MAX_CACHED && !c.contains_key(path) {
            c.clear();
        }
        c.insert(path.to_path_buf(), (stamp, Arc::clone(&text)));
    }
    Ok(text)
}

fn passwd_file_verify(path: &Path, user: &str, password: &[u8]) -> Result<Lookup, Error> {
    let text = read_passwd_file(path)?;
    for (i, line) in text.lines().enumerate() {
        let listed = line.split(':').next().unwrap_or("");
        if !names_match(listed, user) {
            continue;
        }
        let entry = match parse_passwd_line(line) {
            Ok(Some(e)) => e,
            Ok(None) => continue,
            Err(what) => {
                return Err(Error::Malformed {
                    path: path.to_path_buf(),
                    line: i + 1,
                    what,
                });
            }
        };
        return match scheme::verify(&entry.password, password) {
            Ok(true) => Ok(Lookup::Accepted(Authenticated::new(
                &entry.user,
                entry.uid,
                entry.gid,
                entry.home,
                "passwd-file",
            ))),
            Ok(false) => Ok(Lookup::Rejected),
            Err(error) => Err(Error::Entry {
                path: path.to_path_buf(),
                line: i + 1,
                user: entry.user,
                error,
            }),
        };
    }
    Ok(Lookup::NoUser)
}

fn shadow_verify(
    shadow: &Path,
    passwd: &Path,
    user: &str,
    password: &[u8],
) -> Result<Lookup, Error> {
    let text = read_bounded(shadow)?;
    let mut hash = None;
    for (i, line) in text.lines().enumerate() {
        let mut f = line.split(':');
        if f.next() == Some(user) {
            hash = Some((i + 1, f.next().unwrap_or("").to_string()));
            break;
        }
    }
    let Some((line, hash)) = hash else {
        return Ok(Lookup::NoUser);
    };
    match scheme::crypt(&hash, password) {
        Ok(true) => {}
        Ok(false) => return Ok(Lookup::Rejected),
        Err(error) => {
            return Err(Error::Entry {
                path: shadow.to_path_buf(),
                line,
                user: user.to_string(),
                error,
            });
        }
    }
    // uid, gid and home come from the passwd file.
    let pw = read_bounded(passwd)?;
    for pline in pw.lines() {
        let f: Vec<&str> = pline.split(':').collect();
        if f.first() == Some(&user) && f.len() >= 6 {
            let uid = f.get(2).and_then(|s| s.parse().ok());
            let gid = f.get(3).and_then(|s| s.parse().ok());
            let home = f.get(5).filter(|h| !h.is_empty()).map(PathBuf::from);
            return Ok(Lookup::Accepted(Authenticated::new(
                user, uid, gid, home, "shadow",
            )));
        }
    }
    Ok(Lookup::Accepted(Authenticated::new(
        user, None, None, None, "shadow",
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    // `openssl passwd -6 -salt saltsalt secret`, `openssl passwd -5 -salt saltsalt secret`,
    // libxcrypt bcrypt and yescrypt of "secret".
    const SHA512: &str = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
    const SHA256: &str = "$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA";
    const BCRYPT_2Y: &str = "$2y$05$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0a";
    const YESCRYPT: &str = "$y$j9T$abcdefgh$IUWJt2doU4Kf6E/JP1UkAT3S5O3Q7SSA8SJirXIlEu9";

    fn argon2id(pw: &[u8]) -> String {
        use argon2::password_hash::CustomizedPasswordHasher as _;
        let params = argon2::Params::new(64, 1, 1, None).unwrap();
        argon2::Argon2::default()
            .hash_password_with_params(pw, b"somesaltsomesalt", params)
            .unwrap()
            .to_string()
    }

    fn passwd_file(dir: &Path) -> PathBuf {
        let text = format!(
            "# Dovecot passwd-file\n\
             \n\
             alice@example.com:{{SHA512-CRYPT}}{SHA512}:5000:5000::/var/mail/alice::\n\
             bob@example.com:{{SHA256-CRYPT}}{SHA256}:5001:5000::/var/mail/bob\n\
             carol@example.com:{{BLF-CRYPT}}{BCRYPT_2Y}:::::\n\
             dave@example.com:{{ARGON2ID}}{argon}:5003:5003:Dave:/home/dave:/bin/false:userdb_quota_rule=*:storage=1G\n\
             erin@example.com:{{PLAIN}}secret\n\
             frank@example.com:{{ROT13}}frperg:5005:5005::/x::\n\
             gina@example.com:{{SHA512-CRYPT}}{SHA512}:notanumber:5000::/x::\n\
             hank:{SHA512}\n\
             yves@example.com:{YESCRYPT}:5006:5006::/home/yves::\n\
             mia@example.com:$1$saltsalt$9xy1btjgzLYfb7hivXtC//:5007:5007::/x::\n",
            argon = argon2id(b"secret")
        );
        let path = dir.join("passwd");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn passwd_file_reread_when_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        std::fs::write(&path, "u:{PLAIN}one\n").unwrap();
        let db = PassDb::from_spec(&format!("passwd-file:{}", path.display())).unwrap();
        assert!(db.verify("u", b"one").unwrap().is_some());
        // A fresh file is read each time; a settled one comes from memory.
        let fresh = read_passwd_file(&path).unwrap();
        assert!(!Arc::ptr_eq(&fresh, &read_passwd_file(&path).unwrap()));
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let first = read_passwd_file(&path).unwrap();
        assert!(Arc::ptr_eq(&first, &read_passwd_file(&path).unwrap()));
        // A write (same size, new content) makes it fresh again.
        std::fs::write(&path, "u:{PLAIN}two\n").unwrap();
        assert!(db.verify("u", b"one").unwrap().is_none());
        assert!(db.verify("u", b"two").unwrap().is_some());
        // Replaced by rename (a new inode), as editors and scripts do.
        let tmp = dir.path().join("passwd.new");
        std::fs::write(&tmp, "u:{PLAIN}three\nv:{PLAIN}x\n").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert!(db.verify("u", b"three").unwrap().is_some());
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(db.verify("u", b"three"), Err(Error::Io(..))));
    }

    #[test]
    fn passwd_file_each_scheme() {
        let dir = tempfile::tempdir().unwrap();
        let path = passwd_file(dir.path());
        let db = PassDb::from_spec(&format!("passwd-file:{}", path.display())).unwrap();
        for user in [
            "alice@example.com",
            "bob@example.com",
            "carol@example.com",
            "dave@example.com",
            "erin@example.com",
            "hank",
            "yves@example.com",
        ] {
            let a = db.verify(user, b"secret").unwrap();
            let a = a.unwrap_or_else(|| panic!("{user} rejected"));
            assert_eq!(a.user(), user);
            assert_eq!(a.source(), "passwd-file");
            assert_eq!(db.verify(user, b"Secret").unwrap(), None, "{user}");
        }
        let alice = db.verify("alice@example.com", b"secret").unwrap().unwrap();
        assert_eq!(alice.uid(), Some(5000));
        assert_eq!(alice.gid(), Some(5000));
        assert_eq!(alice.home(), Some(Path::new("/var/mail/alice")));
        let carol = db.verify("carol@example.com", b"secret").unwrap().unwrap();
        assert_eq!((carol.uid(), carol.home()), (None, None));
        let dave = db.verify("dave@example.com", b"secret").unwrap().unwrap();
        assert_eq!(dave.home(), Some(Path::new("/home/dave")));
        // Login in upper case finds the listed lower-case name.
        assert!(db.verify("Alice@Example.COM", b"secret").unwrap().is_some());
    }

    #[test]
    fn passwd_file_failures() {
        let dir = tempfile::tempdir().unwrap();
        let path = passwd_file(dir.path());
        let db = PassDb::from_spec(&format!("passwd-file:{}", path.display())).unwrap();
        assert_eq!(db.verify("nobody@example.com", b"secret").unwrap(), None);
        assert_eq!(
            db.verify("alice", b"secret").unwrap(),
            None,
            "virtual users need the full address"
        );
        assert_eq!(db.verify("", b"secret").unwrap(), None);
        assert_eq!(db.verify("alice@example.com:x", b"secret").unwrap(), None);
        assert_eq!(db.verify(&"a".repeat(10_000), b"secret").unwrap(), None);
        match db.verify("frank@example.com", b"secret") {
            Err(e @ Error::Entry { line: 8, .. }) => {
                assert!(e.to_string().contains("ROT13"), "{e}");
                assert!(e.to_string().contains("line 8"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            db.verify("gina@example.com", b"secret"),
            Err(Error::Malformed { line: 9, .. })
        ));
        // Why a login cannot succeed: the scheme, the user, the file and line.
        let e = db
            .verify("Mia@example.com", b"secret")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("unsupported password scheme $1$ (MD5-CRYPT) for user mia@example.com (")
                && e.ends_with("passwd, line 12)"),
            "{e}"
        );
        let missing = PassDb::from_spec("passwd-file:/nonexistent/passwd").unwrap();
        assert!(matches!(missing.verify("a", b"b"), Err(Error::Io(..))));
        let text = std::fs::read_to_string(&path).unwrap();
        let lint = lint_passwd_file(&text);
        let lines: Vec<usize> = lint.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [8, 9, 12]);
    }

    fn shadow_files(dir: &Path) -> Source {
        let shadow = dir.join("shadow");
        let passwd = dir.join("passwd");
        std::fs::write(
            &shadow,
            format!(
                "root:*:19000:0:99999:7:::\n\
                 sam:{SHA512}:19000:0:99999:7:::\n\
                 sue:{SHA256}:19000:0:99999:7:::\n\
                 yes:{YESCRYPT}:19000:0:99999:7:::\n\
                 locked:!{SHA512}:19000:0:99999:7:::\n\
                 old:$1$saltsalt$9xy1btjgzLYfb7hivXtC//:19000:0:99999:7:::\n"
            ),
        )
        .unwrap();
        std::fs::write(
            &passwd,
            "root:x:0:0:root:/root:/bin/bash\n\
             sam:x:1001:1001:Sam:/home/sam:/bin/sh\n\
             sue:x:1002:1002:Sue:/home/sue:/bin/sh\n",
        )
        .unwrap();
        Source::Shadow { shadow, passwd }
    }

    #[test]
    fn shadow_source() {
        let dir = tempfile::tempdir().unwrap();
        let db = PassDb::from_sources(vec![shadow_files(dir.path())]);
        let sam = db.verify("sam", b"secret").unwrap().unwrap();
        assert_eq!(
            (sam.uid(), sam.gid(), sam.home(), sam.source()),
            (
                Some(1001),
                Some(1001),
                Some(Path::new("/home/sam")),
                "shadow"
            )
        );
        assert!(db.verify("sue", b"secret").unwrap().is_some());
        assert_eq!(db.verify("sam", b"wrong").unwrap(), None);
        assert_eq!(db.verify("root", b"*").unwrap(), None);
        assert_eq!(db.verify("locked", b"secret").unwrap(), None);
        assert_eq!(db.verify("nobody", b"secret").unwrap(), None);
        // yescrypt, Debian's default since Debian 11.
        let yes = db.verify("yes", b"secret").unwrap().unwrap();
        assert_eq!((yes.user(), yes.source()), ("yes", "shadow"));
        assert_eq!(db.verify("yes", b"wrong").unwrap(), None);
        match db.verify("old", b"secret") {
            Err(e @ Error::Entry { line: 6, .. }) => assert!(
                e.to_string()
                    .starts_with("unsupported password scheme $1$ (MD5-CRYPT) for user old ("),
                "{e}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sources_tried_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let pf = passwd_file(dir.path());
        let sh = dir.path().join("sh");
        std::fs::create_dir(&sh).unwrap();
        let shadow = shadow_files(&sh);
        let db = PassDb::from_sources(vec![Source::PasswdFile(pf), shadow]);
        assert_eq!(
            db.verify("sam", b"secret").unwrap().unwrap().source(),
            "shadow"
        );
        assert_eq!(
            db.verify("erin@example.com", b"secret")
                .unwrap()
                .unwrap()
                .source(),
            "passwd-file"
        );
        // An entry error in the first source does not stop the second from accepting.
        std::fs::write(
            dir.path().join("sh/shadow"),
            format!("frank@example.com:{SHA512}:1::::::\n"),
        )
        .unwrap();
        assert!(db.verify("frank@example.com", b"secret").unwrap().is_some());
        assert!(db.verify("frank@example.com", b"wrong").is_err());
    }

    #[test]
    fn sasl_plain_then_passdb() {
        use crate::sasl::{Exchange, Mechanism, Step};
        use base64::Engine as _;
        let dir = tempfile::tempdir().unwrap();
        let db = PassDb::from_sources(vec![Source::PasswdFile(passwd_file(dir.path()))]);
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        let creds = |data: &[u8]| match Exchange::start(Mechanism::Plain, Some(&b64(data))).1 {
            Step::Done(c) => c,
            other => panic!("{other:?}"),
        };
        let ok = db
            .verify_credentials(&creds(b"\0erin@example.com\0secret"))
            .unwrap();
        assert_eq!(ok.unwrap().user(), "erin@example.com");
        let same = creds(b"erin@example.com\0erin@example.com\0secret");
        assert!(db.verify_credentials(&same).unwrap().is_some());
        let other = creds(b"alice@example.com\0erin@example.com\0secret");
        assert_eq!(db.verify_credentials(&other).unwrap(), None);
    }

    #[test]
    fn apop_against_cleartext_entries_only() {
        use crate::sasl::{Exchange, Mechanism, Step};
        use base64::Engine as _;
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("passwd");
        let hashed = crate::scheme::tests::sha512_hash(b"tanstaaf");
        std::fs::write(
            &pw,
            format!(
                "mrose:{{PLAIN}}tanstaaf\nclear@example.com:{{CLEARTEXT}}tanstaaf:5000:5000::/home/c\nhashed:{hashed}\n"
            ),
        )
        .unwrap();
        let db = PassDb::from_sources(vec![Source::PasswdFile(pw)]);
        assert!(db.apop_capable());
        let challenge = "<1896.697170952@dbc.mtview.ca.us>";
        let creds = |user: &str, secret: &str| {
            let mut data = format!("{challenge}\0{user}\0").into_bytes();
            data.extend_from_slice(&crate::md5::digest(
                format!("{challenge}{secret}").as_bytes(),
            ));
            let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
            match Exchange::start(Mechanism::Apop, Some(&b64)).1 {
                Step::Done(c) => c,
                other => panic!("{other:?}"),
            }
        };
        // RFC 1939's example digest.
        assert_eq!(
            crate::md5::hex(&creds("mrose", "tanstaaf").apop.unwrap().digest),
            "c4c9334bac560ecc979e58001b3e22fb"
        );
        assert_eq!(
            db.verify_credentials(&creds("mrose", "tanstaaf"))
                .unwrap()
                .unwrap()
                .user(),
            "mrose"
        );
        let c = db
            .verify_credentials(&creds("clear@example.com", "tanstaaf"))
            .unwrap()
            .unwrap();
        assert_eq!(c.uid(), Some(5000));
        assert_eq!(
            db.verify_credentials(&creds("mrose", "wrong")).unwrap(),
            None
        );
        assert_eq!(db.verify_credentials(&creds("nobody", "x")).unwrap(), None);
        // A hash cannot give the password MD5 needs.
        assert_eq!(
            db.verify_credentials(&creds("hashed", "tanstaaf")).unwrap(),
            None
        );
        assert!(db.verify("hashed", b"tanstaaf").unwrap().is_some());
        let shadow_only = PassDb::from_spec("shadow").unwrap();
        assert!(!shadow_only.apop_capable());
        assert_eq!(
            shadow_only.verify_credentials(&creds("root", "x")).unwrap(),
            None
        );
    }

    #[test]
    fn spec_parsing() {
        let db = PassDb::from_spec("passwd-file:/etc/postfix/passwd, shadow").unwrap();
        assert_eq!(
            db.sources(),
            &[
                Source::PasswdFile(PathBuf::from("/etc/postfix/passwd")),
                Source::Shadow {
                    shadow: PathBuf::from("/etc/shadow"),
                    passwd: PathBuf::from("/etc/passwd")
                }
            ]
        );
        assert_eq!(PassDb::from_spec("pam").unwrap().sources().len(), 1);
        assert!(matches!(PassDb::from_spec(""), Err(Error::Spec(_))));
        assert!(matches!(
            PassDb::from_spec("ldap:/etc/x"),
            Err(Error::Spec(_))
        ));
        assert!(matches!(
            PassDb::from_spec("passwd-file:relative"),
            Err(Error::Spec(_))
        ));
        assert!(matches!(
            PassDb::from_spec("passwd-file"),
            Err(Error::Spec(_))
        ));
    }

    /// A system account made for one test with useradd, removed on drop.
    struct SystemUser(String);

    impl SystemUser {
        fn create(name: &str) -> SystemUser {
            let _ = std::process::Command::new("userdel").arg(name).output();
            // useradd fails while another process holds the passwd lock: retry.
            for _ in 0..50 {
                let out = std::process::Command::new("useradd")
                    .args(["-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", name])
                    .output()
                    .expect("useradd");
                if out.status.success() {
                    return SystemUser(name.to_string());
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            panic!("useradd {name} keeps failing");
        }

        /// Sets the password with chpasswd, hashed by `method` (SHA512, YESCRYPT).
        fn set_password(&self, password: &str, method: &str) {
            use std::io::Write as _;
            for _ in 0..50 {
                let mut child = std::process::Command::new("chpasswd")
                    .args(["-c", method])
                    .stdin(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("chpasswd");
                if let Some(mut stdin) = child.stdin.take() {
                    writeln!(stdin, "{}:{password}", self.0).unwrap();
                }
                if child.wait_with_output().unwrap().status.success() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            panic!("chpasswd {} keeps failing", self.0);
        }

        fn shadow_hash(&self) -> String {
            let text = std::fs::read_to_string("/etc/shadow").unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{}:", self.0)))
                .and_then(|rest| rest.split(':').next())
                .unwrap_or("")
                .to_string()
        }
    }

    impl Drop for SystemUser {
        fn drop(&mut self) {
            for _ in 0..50 {
                let ok = std::process::Command::new("userdel")
                    .arg(&self.0)
                    .status()
                    .is_ok_and(|s| s.success());
                if ok {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }

    fn is_root() -> bool {
        std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1))
                == Some("0")
        })
    }

    /// The real /etc/shadow: a system user made now, with SHA-512 and then
    /// yescrypt passwords set by chpasswd; the right password passes, a
    /// wrong one fails, an unknown user is unknown.
    #[test]
    fn real_etc_shadow_with_a_new_system_user() {
        if !is_root() {
            testkit::skip("not root");
            return;
        }
        let name = format!("pdbt{}", std::process::id());
        let user = SystemUser::create(&name);
        let db = PassDb::from_spec("shadow").unwrap();
        for (method, prefix) in [("SHA512", "$6$"), ("YESCRYPT", "$y$")] {
            let password = format!("Tr0ub4dor &3 {method}");
            user.set_password(&password, method);
            let hash = user.shadow_hash();
            assert!(hash.starts_with(prefix), "{method}: {hash}");
            let a = db
                .verify(&name, password.as_bytes())
                .unwrap()
                .unwrap_or_else(|| panic!("{method}: right password refused"));
            assert_eq!((a.user(), a.source()), (name.as_str(), "shadow"));
            assert!(a.uid().is_some_and(|u| u > 0), "{a:?}");
            assert_eq!(db.verify(&name, b"wrong").unwrap(), None, "{method}");
            assert_eq!(
                db.verify(&name, format!("{password} ").as_bytes()).unwrap(),
                None,
                "{method}"
            );
        }
        drop(user);
        assert_eq!(db.verify(&name, b"wrong").unwrap(), None);
    }

    proptest::proptest! {
        #[test]
        fn malformed_lines_never_panic(line in "\\PC{0,120}", pw in "\\PC{0,20}") {
            let _ = parse_passwd_line(&line);
            let _ = lint_passwd_file(&line);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("p");
            std::fs::write(&path, format!("{line}\n")).unwrap();
            let db = PassDb::from_sources(vec![Source::PasswdFile(path)]);
            let user = line.split(':').next().unwrap_or("").to_string();
            let _ = db.verify(&user, pw.as_bytes());
        }

        #[test]
        fn scheme_verify_never_panics(stored in "(\\{[A-Z0-9-]{0,12}\\})?(\\$(6|5|2y|2b|argon2id|y|1)\\$)?\\PC{0,80}", pw in "\\PC{0,20}") {
            let _ = scheme::verify(&stored, pw.as_bytes());
        }
    }
}
