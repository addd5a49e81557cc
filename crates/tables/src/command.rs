//! What postmap(1) and postalias(1) do with the tables named on their
//! command line, beyond parsing a source: complete a name with
//! default_database_type, query a list of tables in order, list and edit
//! hash: indexes, and give a new index to its source's owner.
//!
//! The two commands differ only in how they print an entry (postmap:
//! `key<TAB>value`, postalias: `key: value`), which the caller passes as
//! the separator, and in whether they report open-time warnings, which the
//! caller decides in its `warn` callback.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Flags, Table, Warning, hash, split_spec};

/// `file` becomes `default_type:file`; `type:file` stays.
///
/// ```
/// use tables::command::full_spec;
/// assert_eq!(full_spec("/etc/aliases", "hash"), "hash:/etc/aliases");
/// assert_eq!(full_spec("regexp:/x", "hash"), "regexp:/x");
/// ```
pub fn full_spec(map: &str, default_type: &str) -> String {
    if map.starts_with('/') || split_spec(map).is_err() {
        format!("{default_type}:{map}")
    } else {
        map.to_string()
    }
}

/// The source file of a table that can be built, listed and edited
/// (hash:, and btree: and lmdb:, which name the same indexed table).
///
/// # Errors
///
/// [`Error::BadSpec`] without a type, [`Error::NotHash`] for other types.
pub fn hash_source(spec: &str) -> Result<PathBuf, Error> {
    let (ty, name) = split_spec(spec)?;
    if !matches!(ty, "hash" | "btree" | "lmdb") {
        return Err(Error::NotHash {
            spec: spec.to_string(),
        });
    }
    Ok(PathBuf::from(name))
}

/// When root builds a table, the index belongs to the source's owner, as
/// Postfix's postmap (which drops to the source owner) would create it.
///
/// # Errors
///
/// [`Error::Io`] when the source cannot be examined, [`Error::Chown`] when
/// the index cannot be given away.
pub fn give_to_source_owner(db: &Path, source: &Path) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let meta = std::fs::metadata(source).map_err(|e| Error::io(source, e))?;
    std::os::unix::fs::chown(db, Some(meta.uid()), Some(meta.gid())).map_err(|e| Error::Chown {
        path: db.to_path_buf(),
        source: e,
    })
}

/// Opens every table in `specs`, in order, handing each one's open-time
/// warnings to `warn` as soon as it is open.
///
/// # Errors
///
/// The first error from [`crate::open`].
pub fn open_all(
    specs: &[String],
    fold_case: bool,
    mut warn: impl FnMut(&[Warning]),
) -> Result<Vec<Table>, Error> {
    let flags = Flags { fold_case };
    let mut out = Vec::new();
    for spec in specs {
        let t = crate::open(spec, flags)?;
        warn(t.warnings());
        out.push(t);
    }
    Ok(out)
}

/// The value of `key` in the first table that has it.
///
/// # Errors
///
/// As [`Table::lookup`]; a failing table stops the search.
pub fn first_value(maps: &[Table], key: &str) -> Result<Option<String>, Error> {
    for t in maps {
        if let Some(v) = t.lookup(key)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// `-q key`: prints the value of `key` from the first table that has it;
/// `-q -`: looks up each non-empty line of `input` (trimmed) and prints
/// `key` `separator` `value` for each one found. Returns whether any key
/// was found.
///
/// # Errors
///
/// As [`first_value`]; [`Error::Input`] and [`Error::Output`] for the
/// streams.
pub fn query(
    maps: &[Table],
    key: &str,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    separator: &str,
) -> Result<bool, Error> {
    if key == "-" {
        return query_keys(maps, input, out, separator);
    }
    let found = match first_value(maps, key)? {
        Some(v) => {
            writeln!(out, "{v}").map_err(Error::output)?;
            true
        }
        None => false,
    };
    out.flush().map_err(Error::output)?;
    Ok(found)
}

fn query_keys(
    maps: &[Table],
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    separator: &str,
) -> Result<bool, Error> {
    let mut found = false;
    for line in input.lines() {
        let line = line.map_err(Error::input)?;
        let key = line.trim();
        if key.is_empty() {
            continue;
        }
        if let Some(v) = first_value(maps, key)? {
            writeln!(out, "{key}{separator}{v}").map_err(Error::output)?;
            found = true;
        }
    }
    out.flush().map_err(Error::output)?;
    Ok(found)
}

/// `-d key` (`-d -`: each non-empty line of `input`, trimmed): removes the
/// keys from the index of every table in `specs`. Returns whether any key
/// was present.
///
/// # Errors
///
/// As [`hash_source`] and [`hash::delete`]; [`Error::Input`].
pub fn delete(
    specs: &[String],
    key: &str,
    fold_case: bool,
    input: &mut dyn BufRead,
) -> Result<bool, Error> {
    let keys: Vec<String> = if key == "-" {
        input
            .lines()
            .map(|l| l.map(|s| s.trim().to_string()))
            .filter(|l| l.as_ref().map(|s| !s.is_empty()).unwrap_or(true))
            .collect::<Result<_, _>>()
            .map_err(Error::input)?
    } else {
        vec![key.to_string()]
    };
    let mut removed = 0;
    for spec in specs {
        let db = hash::db_path(&hash_source(spec)?);
        removed += hash::delete(&db, &keys, fold_case)?;
    }
    Ok(removed > 0)
}

/// `-s`: prints every entry of each table's index as `key` `separator`
/// `value`.
///
/// # Errors
///
/// As [`hash_source`] and [`hash::read_all`]; [`Error::Output`].
pub fn show(specs: &[String], out: &mut dyn Write, separator: &str) -> Result<(), Error> {
    for spec in specs {
        let db = hash::db_path(&hash_source(spec)?);
        for (k, v) in hash::read_all(&db)? {
            writeln!(out, "{k}{separator}{v}").map_err(Error::output)?;
        }
    }
    out.flush().map_err(Error::output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParseOptions;

    #[test]
    fn names_and_types() {
        assert_eq!(
            full_spec("/etc/postfix/virtual", "hash"),
            "hash:/etc/postfix/virtual"
        );
        assert_eq!(full_spec("virtual", "hash"), "hash:virtual");
        assert_eq!(full_spec("regexp:/x", "hash"), "regexp:/x");
        assert_eq!(hash_source("hash:/a").unwrap(), PathBuf::from("/a"));
        let e = hash_source("regexp:/a").unwrap_err();
        assert_eq!(
            e.to_string(),
            "regexp:/a: building, listing and editing are supported for hash: tables only"
        );
    }

    #[test]
    fn query_show_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("map");
        std::fs::write(&src, "a 1\nB 2\n").unwrap();
        hash::build(&src, ParseOptions::default()).unwrap();
        let specs = vec![
            "inline:{a=0}".to_string(),
            format!("hash:{}", src.display()),
        ];
        let mut warned = 0;
        let maps = open_all(&specs, true, |w| warned += w.len()).unwrap();
        assert_eq!(warned, 0);

        let mut out = Vec::new();
        assert!(query(&maps, "A", &mut &b"x"[..], &mut out, "\t").unwrap());
        assert!(!query(&maps, "zz", &mut &b""[..], &mut out, "\t").unwrap());
        assert_eq!(out, b"0\n");

        let mut out = Vec::new();
        let mut input: &[u8] = b" b \n\nzz\na\n";
        assert!(query(&maps, "-", &mut input, &mut out, "\t").unwrap());
        assert_eq!(out, b"b\t2\na\t0\n");

        let hash_only = &specs[1..];
        let mut out = Vec::new();
        show(hash_only, &mut out, ": ").unwrap();
        assert_eq!(out, b"a: 1\nb: 2\n");
        assert!(show(&specs, &mut Vec::new(), ": ").is_err());

        let mut input: &[u8] = b"B\n\n";
        assert!(delete(hash_only, "-", true, &mut input).unwrap());
        assert!(!delete(hash_only, "b", true, &mut &b""[..]).unwrap());
        assert_eq!(hash::read_all(&hash::db_path(&src)).unwrap().len(), 1);
        give_to_source_owner(&hash::db_path(&src), &src).unwrap();
    }
}
