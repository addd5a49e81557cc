//! hash: tables: an index file *name*`.db` built from the text source
//! *name*, looked up without reading the whole source.
//!
//! The index is a constant database (cdb) rather than Berkeley DB. It is
//! always written whole to a temporary file in the same directory, fsynced
//! and renamed over the old index, so a daemon that has the old file open
//! keeps reading a complete table and never sees a partial one. Readers
//! check at most once a second whether the name now refers to another file
//! (inode, size or mtime changed) and reopen it; Postfix daemons restart
//! instead, which this makes unnecessary.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::FileIdent;
use crate::text::{self, ParseOptions};
use crate::{Error, Warning, WarningKind};

/// How often a reader checks whether the index was replaced.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// Mode of a new index file (before the umask is not applied: set exactly).
pub const DB_MODE: u32 = 0o644;

/// The index file of a hash: table source: `name` + `.db`.
pub fn db_path(source: &Path) -> PathBuf {
    let mut s = source.as_os_str().to_os_string();
    s.push(".db");
    PathBuf::from(s)
}

/// What a build did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildReport {
    /// Entries written.
    pub entries: usize,
    /// Lines skipped or keys dropped, for the caller to print.
    pub warnings: Vec<Warning>,
}

/// Builds `source.db` from the text file `source` (postmap).
///
/// # Errors
///
/// [`Error::Io`] for the source or the index, [`Error::TooLarge`], and
/// over-long lines ([`Error::Syntax`]).
pub fn build(source: &Path, opts: ParseOptions) -> Result<BuildReport, Error> {
    let text = text::read_text(source)?;
    let mut warnings = Vec::new();
    let entries = text::parse_entries(source, &text, opts, &mut warnings)?;
    write_index(&db_path(source), &entries)?;
    Ok(BuildReport {
        entries: entries.len(),
        warnings,
    })
}

/// Adds entries to an existing index (postmap -i), creating it if absent.
/// Keys already present are kept unless `opts.duplicates` is
/// [`crate::Duplicates::Replace`]; with [`crate::Duplicates::Warn`] a warning names them
/// (`origin` and the entry's position stand in for file and line).
///
/// # Errors
///
/// [`Error::Io`] when the index cannot be read or written.
pub fn update(
    db: &Path,
    origin: &Path,
    new: &[(String, String)],
    opts: ParseOptions,
) -> Result<BuildReport, Error> {
    let mut entries = read_all_if_exists(db)?;
    let mut index: HashMap<String, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (k.clone(), i))
        .collect();
    let mut warnings = Vec::new();
    for (n, (key, value)) in new.iter().enumerate() {
        let key = if opts.fold_case {
            key.to_lowercase()
        } else {
            key.clone()
        };
        text::add_entry(&mut entries, &mut index, key, value.clone(), opts, |k| {
            warnings.push(Warning::new(
                origin,
                n + 1,
                WarningKind::DuplicateKey { key: k },
            ));
        });
    }
    write_index(db, &entries)?;
    Ok(BuildReport {
        entries: entries.len(),
        warnings,
    })
}

/// Removes keys from an index (postmap -d). Returns how many were present.
///
/// # Errors
///
/// [`Error::Io`] when the index cannot be read or written.
pub fn delete(db: &Path, keys: &[String], fold_case: bool) -> Result<usize, Error> {
    let entries = read_all(db)?;
    let doomed: std::collections::HashSet<String> = keys
        .iter()
        .map(|k| {
            if fold_case {
                k.to_lowercase()
            } else {
                k.clone()
            }
        })
        .collect();
    let before = entries.len();
    let kept: Vec<(String, String)> = entries
        .into_iter()
        .filter(|(k, _)| !doomed.contains(k))
        .collect();
    let removed = before - kept.len();
    if removed > 0 {
        write_index(db, &kept)?;
    }
    Ok(removed)
}

/// Every entry of an index, in file order (postmap -s).
///
/// # Errors
///
/// [`Error::Io`] when the file is missing, unreadable or corrupt.
pub fn read_all(db: &Path) -> Result<Vec<(String, String)>, Error> {
    let cdb = cdb2::CDB::open(db).map_err(|e| Error::io(db, e))?;
    let mut out = Vec::new();
    for item in cdb.iter() {
        let (k, v) = item.map_err(|e| Error::io(db, e))?;
        out.push((lossy(k), lossy(v)));
    }
    Ok(out)
}

fn read_all_if_exists(db: &Path) -> Result<Vec<(String, String)>, Error> {
    match fs::metadata(db) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        _ => read_all(db),
    }
}

/// Writes `entries` to a temporary file beside `db`, fsyncs it, renames it
/// over `db` and fsyncs the directory, so the replacement is atomic and
/// durable.
///
/// # Errors
///
/// [`Error::Io`] naming `db`.
pub fn write_index(db: &Path, entries: &[(String, String)]) -> Result<(), Error> {
    let dir = match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let io = |e| Error::io(db, e);
    let prefix = format!(
        ".{}.",
        db.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    );
    let tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(io)?;
    let file = tmp.as_file().try_clone().map_err(io)?;
    let mut maker = cdb2::CDBMake::new(file).map_err(io)?;
    for (k, v) in entries {
        maker.add(k.as_bytes(), v.as_bytes()).map_err(io)?;
    }
    maker.finish().map_err(io)?;
    let f = tmp.as_file();
    f.set_permissions(fs::Permissions::from_mode(DB_MODE))
        .map_err(io)?;
    f.sync_all().map_err(io)?;
    tmp.persist(db).map_err(|e| io(e.error))?;
    fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(&dir, e))?;
    Ok(())
}

fn lossy(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

struct Open {
    cdb: cdb2::CDB,
    ident: FileIdent,
    checked: Instant,
}

/// An open hash: index.
pub(crate) struct HashTable {
    db: PathBuf,
    state: Mutex<Open>,
}

impl std::fmt::Debug for HashTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashTable").field("db", &self.db).finish()
    }
}

impl HashTable {
    /// Opens the index file `db`.
    pub(crate) fn open(db: &Path) -> Result<HashTable, Error> {
        let open = open_index(db)?;
        Ok(HashTable {
            db: db.to_path_buf(),
            state: Mutex::new(open),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        // A panic while holding the lock cannot leave Open half-updated
        // (it is replaced whole), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn lookup(&self, key: &str) -> Result<Option<String>, Error> {
        let mut st = self.lock();
        if st.checked.elapsed() >= REFRESH_INTERVAL {
            // A failed reopen keeps the old, complete table.
            let _ = self.refresh(&mut st);
        }
        // cdb2 checks offsets against the file size, but a crafted index
        // could still overflow its offset arithmetic in a debug build; a
        // corrupt index must be an error, not a dead daemon.
        let cdb = &st.cdb;
        let got =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cdb.get(key.as_bytes())));
        match got {
            Ok(None) => Ok(None),
            Ok(Some(Ok(v))) => Ok(Some(lossy(v))),
            Ok(Some(Err(e))) => Err(Error::io(&self.db, e)),
            Err(_) => Err(Error::io(&self.db, corrupt())),
        }
    }

    pub(crate) fn refresh_if_changed(&self) -> Result<bool, Error> {
        let mut st = self.lock();
        self.refresh(&mut st)
    }

    fn refresh(&self, st: &mut Open) -> Result<bool, Error> {
        st.checked = Instant::now();
        let now = FileIdent::of(&self.db).map_err(|e| Error::io(&self.db, e))?;
        if now == st.ident {
            return Ok(false);
        }
        *st = open_index(&self.db)?;
        Ok(true)
    }
}

/// Opens an index, recording which file it was. The identity is taken
/// before opening: if the file is replaced in between, the next check sees
/// a different identity and simply reopens once more.
fn open_index(db: &Path) -> Result<Open, Error> {
    let ident = FileIdent::of(db).map_err(|e| Error::io(db, e))?;
    check_berkeley_db(db).map_err(|e| Error::io(db, e))?;
    check_header(db).map_err(|e| Error::io(db, e))?;
    let cdb = cdb2::CDB::open(db).map_err(|e| Error::io(db, e))?;
    Ok(Open {
        cdb,
        ident,
        checked: Instant::now(),
    })
}

/// Berkeley DB's hash and btree meta-page magic numbers, at byte 12 of
/// the file in either byte order: Postfix's own hash: and btree: files.
const BERKELEY_DB_MAGIC: [u32; 2] = [0x0006_1561, 0x0005_3162];

/// Refuses a Berkeley DB file (an index Debian's Postfix built) with a
/// message naming the source and the postmap command that rebuilds it in
/// our format.
fn check_berkeley_db(db: &Path) -> std::io::Result<()> {
    use std::io::Read;
    let mut head = [0u8; 16];
    let mut f = fs::File::open(db)?;
    if f.read_exact(&mut head).is_err() {
        return Ok(());
    }
    let word = [head[12], head[13], head[14], head[15]];
    let magic = [u32::from_le_bytes(word), u32::from_be_bytes(word)];
    if !magic.iter().any(|m| BERKELEY_DB_MAGIC.contains(m)) {
        return Ok(());
    }
    let name = db.to_string_lossy();
    let source = name.strip_suffix(".db").unwrap_or(&name);
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "a Berkeley DB file (built by Postfix's postmap), not this suite's \
             index: rebuild it from {source} with \"postmap hash:{source}\""
        ),
    ))
}

/// Size of the cdb header: 256 (position, slots) pairs.
const HEADER_LEN: usize = 2048;

/// Checks that every hash table named in the header lies inside the file,
/// so that probing a slot never reads outside it. Records are checked by
/// cdb2 as they are read.
fn check_header(db: &Path) -> std::io::Result<()> {
    use std::io::Read;
    let mut f = fs::File::open(db)?;
    let size = f.metadata()?.len();
    let mut header = [0u8; HEADER_LEN];
    f.read_exact(&mut header)?;
    for pair in header.chunks_exact(8) {
        let word = |i: usize| -> u64 {
            let b = [pair[i], pair[i + 1], pair[i + 2], pair[i + 3]];
            u64::from(u32::from_le_bytes(b))
        };
        let (pos, slots) = (word(0), word(4));
        if slots > 0 && (pos < HEADER_LEN as u64 || pos + slots * 8 > size) {
            return Err(corrupt());
        }
    }
    Ok(())
}

fn corrupt() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "not a valid index file (rebuild it with postmap)",
    )
}

/// Writes `key value` lines for entries (postmap -s output, and tests).
///
/// # Errors
///
/// Errors from `out`.
pub fn dump(entries: &[(String, String)], out: &mut dyn Write) -> std::io::Result<()> {
    for (k, v) in entries {
        writeln!(out, "{k}\t{v}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Duplicates, Flags, open};

    fn write(path: &Path, text: &str) {
        fs::write(path, text).unwrap();
    }

    #[test]
    fn build_and_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("virtual");
        write(
            &src,
            "# comment\nInfo@Example.COM  alice\n  , bob\n@example.org carol\nbad\n",
        );
        let r = build(&src, ParseOptions::default()).unwrap();
        assert_eq!(r.entries, 2);
        assert_eq!(r.warnings.len(), 1);
        assert!(dir.path().join("virtual.db").exists());
        let mode = std::os::unix::fs::MetadataExt::mode(
            &fs::metadata(dir.path().join("virtual.db")).unwrap(),
        ) & 0o777;
        assert_eq!(mode, DB_MODE);
        let t = open(&format!("hash:{}", src.display()), Flags::default()).unwrap();
        assert_eq!(
            t.lookup("info@example.com").unwrap().as_deref(),
            Some("alice  , bob")
        );
        assert_eq!(
            t.lookup("INFO@example.com").unwrap().as_deref(),
            Some("alice  , bob")
        );
        assert_eq!(t.lookup("@example.org").unwrap().as_deref(), Some("carol"));
        assert_eq!(t.lookup("nobody").unwrap(), None);
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn fold_case_off_keeps_keys() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("t");
        write(&src, "MixedCase v\n");
        let opts = ParseOptions {
            fold_case: false,
            duplicates: Duplicates::Warn,
        };
        build(&src, opts).unwrap();
        let t = open(
            &format!("hash:{}", src.display()),
            Flags { fold_case: false },
        )
        .unwrap();
        assert_eq!(t.lookup("MixedCase").unwrap().as_deref(), Some("v"));
        assert_eq!(t.lookup("mixedcase").unwrap(), None);
    }

    #[test]
    fn reader_sees_old_then_new_never_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("map");
        write(&src, "key old\n");
        build(&src, ParseOptions::default()).unwrap();
        let t = open(&format!("hash:{}", src.display()), Flags::default()).unwrap();
        assert_eq!(t.lookup("key").unwrap().as_deref(), Some("old"));

        // Another writer replaces the index many times while we read.
        let src2 = src.clone();
        let writer = std::thread::spawn(move || {
            for i in 0..50 {
                let mut text = format!("key new{i}\n");
                for j in 0..200 {
                    text.push_str(&format!("filler{j} value{j}\n"));
                }
                fs::write(&src2, text).unwrap();
                build(&src2, ParseOptions::default()).unwrap();
            }
        });
        let mut reads = 0;
        while !writer.is_finished() {
            t.refresh_if_changed().unwrap();
            let v = t.lookup("key").unwrap().unwrap();
            assert!(v == "old" || v.starts_with("new"), "{v}");
            reads += 1;
        }
        writer.join().unwrap();
        assert!(reads > 0);
        assert!(t.refresh_if_changed().is_ok());
        assert_eq!(t.lookup("key").unwrap().as_deref(), Some("new49"));
        assert_eq!(t.lookup("filler7").unwrap().as_deref(), Some("value7"));
    }

    #[test]
    fn automatic_reopen_after_interval() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("map");
        write(&src, "k one\n");
        build(&src, ParseOptions::default()).unwrap();
        let t = open(&format!("hash:{}", src.display()), Flags::default()).unwrap();
        write(&src, "k two\n");
        build(&src, ParseOptions::default()).unwrap();
        // Within the interval the old index is still used.
        assert_eq!(t.lookup("k").unwrap().as_deref(), Some("one"));
        std::thread::sleep(REFRESH_INTERVAL + Duration::from_millis(50));
        assert_eq!(t.lookup("k").unwrap().as_deref(), Some("two"));
    }

    #[test]
    fn removed_index_keeps_old_table() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("map");
        write(&src, "k one\n");
        build(&src, ParseOptions::default()).unwrap();
        let t = open(&format!("hash:{}", src.display()), Flags::default()).unwrap();
        fs::remove_file(db_path(&src)).unwrap();
        assert!(t.refresh_if_changed().is_err());
        assert_eq!(t.lookup("k").unwrap().as_deref(), Some("one"));
    }

    #[test]
    fn update_delete_and_read_all() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("m.db");
        let origin = Path::new("-");
        let new = vec![
            ("A".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
        ];
        let r = update(&db, origin, &new, ParseOptions::default()).unwrap();
        assert_eq!(r.entries, 2);
        let r = update(
            &db,
            origin,
            &[("a".into(), "9".into())],
            ParseOptions::default(),
        )
        .unwrap();
        assert_eq!(r.warnings.len(), 1);
        assert_eq!(
            read_all(&db).unwrap(),
            vec![("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        assert_eq!(
            delete(&db, &["B".to_string(), "zz".to_string()], true).unwrap(),
            1
        );
        assert_eq!(read_all(&db).unwrap(), vec![("a".into(), "1".into())]);
        let mut out = Vec::new();
        dump(&read_all(&db).unwrap(), &mut out).unwrap();
        assert_eq!(out, b"a\t1\n");
    }

    #[test]
    fn corrupt_index_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        fs::write(&db, b"short").unwrap();
        assert!(matches!(HashTable::open(&db), Err(Error::Io { .. })));
        let mut junk = vec![0xffu8; 2048];
        junk.extend_from_slice(&[0x41; 100]);
        fs::write(&db, &junk).unwrap();
        if let Ok(t) = HashTable::open(&db) {
            let _ = t.lookup("a");
            let _ = read_all(&db);
        }
    }
}
