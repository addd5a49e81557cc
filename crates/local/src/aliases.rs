//! alias_maps: the tables local looks local parts up in.
//!
//! `hash:` tables are the indexed files postalias builds (keys without
//! the colon) and go through the tables crate, as do `regexp:`, `inline:`
//! and the rest. A `texthash:` table names an aliases(5) file, read here
//! in that syntax: `name: value` logical lines (continued by lines that
//! start with whitespace), `#` comments, names lowercased, a quoted name
//! (`"a b": x`) unquoted, the first entry of a name kept; a line with no
//! colon at all is `name value`, as Postfix reads texthash: files (postmap's
//! syntax). Values are target lists, parsed by [`crate::targets`].
//!
//! Each table has an owner, as Postfix's dictionaries do: the owner of
//! its file when opened (the `.db` file of a `hash:` table) for file
//! types, root for `inline:`, `static:` and `unix:`. Commands and files
//! of a root-owned table are delivered as default_privs, those of a
//! table another user owns with that user's rights.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One table of the list.
enum AliasTable {
    /// An aliases(5) file read at open, with its identity then.
    Text {
        path: PathBuf,
        map: HashMap<String, String>,
        ident: Option<(u64, u64, i64, u64)>,
    },
    /// Any other table type.
    Other(tables::Table),
}

/// alias_maps, searched in order.
pub(crate) struct AliasMaps {
    /// Each table with its owner's uid.
    tables: Vec<(AliasTable, u32)>,
    warnings: Vec<String>,
}

/// An alias found: its value and the uid of the table's owner (0: root,
/// trusted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) value: String,
    pub(crate) owner: u32,
}

/// The owner of a table's file; root for tables without one.
fn owner_of(spec: &str) -> u32 {
    let Ok((type_name, name)) = tables::split_spec(spec) else {
        return 0;
    };
    let file = match type_name {
        "hash" => tables::hash::db_path(Path::new(name)),
        "texthash" | "regexp" | "pcre" | "cidr" => PathBuf::from(name),
        _ => return 0,
    };
    // A file that cannot be examined was not opened either.
    std::fs::metadata(file).map_or(0, |m| m.uid())
}

fn ident(path: &Path) -> Option<(u64, u64, i64, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.mtime(), m.size()))
}

impl AliasMaps {
    /// Opens every table of the list.
    ///
    /// # Errors
    /// The first table that cannot be opened, as text for the log.
    pub(crate) fn open(list: &str) -> Result<AliasMaps, String> {
        let mut out = AliasMaps {
            tables: Vec::new(),
            warnings: Vec::new(),
        };
        for spec in tables::split_list(list) {
            let spec = spec.strip_prefix("proxy:").unwrap_or(spec);
            match spec.strip_prefix("texthash:") {
                Some(name) => {
                    let path = PathBuf::from(name);
                    let before = ident(&path);
                    let text = tables::text::read_text(&path).map_err(|e| e.to_string())?;
                    let map = parse(&path, &text, &mut out.warnings).map_err(|e| e.to_string())?;
                    let owner = owner_of(spec);
                    out.tables.push((
                        AliasTable::Text {
                            path,
                            map,
                            ident: before,
                        },
                        owner,
                    ));
                }
                None => {
                    let t =
                        tables::open(spec, tables::Flags::default()).map_err(|e| e.to_string())?;
                    out.warnings
                        .extend(t.warnings().iter().map(ToString::to_string));
                    out.tables.push((AliasTable::Other(t), owner_of(spec)));
                }
            }
        }
        Ok(out)
    }

    /// Warnings found while opening.
    pub(crate) fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The value for alias `name` (lowercase) from the first table that
    /// has it, with that table's owner.
    ///
    /// # Errors
    /// A table lookup failed (the recipient is deferred).
    pub(crate) fn lookup(&self, name: &str) -> Result<Option<Found>, String> {
        let key = name.to_lowercase();
        for (t, owner) in &self.tables {
            let found = match t {
                AliasTable::Text { map, .. } => map.get(&key).cloned(),
                AliasTable::Other(t) => t.lookup(&key).map_err(|e| e.to_string())?,
            };
            if let Some(value) = found {
                return Ok(Some(Found {
                    value,
                    owner: *owner,
                }));
            }
        }
        Ok(None)
    }

    /// True when a table's file changed since it was opened.
    pub(crate) fn changed(&self) -> bool {
        self.tables.iter().any(|(t, _)| match t {
            AliasTable::Text { path, ident: i, .. } => ident(path) != *i,
            AliasTable::Other(t) => t.changed(),
        })
    }
}

/// Parses an aliases(5) text.
fn parse(
    path: &Path,
    text: &str,
    warnings: &mut Vec<String>,
) -> Result<HashMap<String, String>, tables::Error> {
    let mut w = Vec::new();
    let lines = tables::text::logical_lines(path, text, &mut w)?;
    warnings.extend(w.iter().map(ToString::to_string));
    let mut map = HashMap::new();
    for line in lines {
        let Some((name, value)) = split_entry(&line.text) else {
            warnings.push(format!(
                "{}, line {}: need name:value pair",
                path.display(),
                line.line
            ));
            continue;
        };
        if map.contains_key(&name) {
            warnings.push(format!(
                "{}, line {}: duplicate entry: \"{name}\"",
                path.display(),
                line.line
            ));
            continue;
        }
        map.insert(name, value);
    }
    Ok(map)
}

/// `name: value`; the name may be quoted. A line without any colon is
/// read as Postfix reads every `texthash:` file, `name value` (postmap's
/// syntax). None when there is no name or no value.
fn split_entry(text: &str) -> Option<(String, String)> {
    let text = text.trim();
    let (name, rest) = if let Some(q) = text.strip_prefix('"') {
        let end = q.find('"')?;
        (q.get(..end)?.to_string(), q.get(end + 1..)?.trim_start())
    } else if let Some(colon) = text.find(':') {
        (text.get(..colon)?.trim().to_string(), text.get(colon..)?)
    } else {
        let (name, value) = text.split_once(char::is_whitespace)?;
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        return Some((name.to_lowercase(), value.to_string()));
    };
    let value = rest.strip_prefix(':')?.trim();
    if name.is_empty() || value.is_empty() {
        return None;
    }
    Some((name.to_lowercase(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_syntax() {
        let mut w = Vec::new();
        let map = parse(
            Path::new("aliases"),
            "# comment\nPostmaster: root\nlist: a,\n  b, \"|prog x\"\n\"odd name\": c\nbadline\nempty:\npostmaster: dup\n2User\tuser\n",
            &mut w,
        )
        .unwrap();
        assert_eq!(map.get("postmaster").map(String::as_str), Some("root"));
        assert_eq!(
            map.get("list").map(String::as_str),
            Some("a,  b, \"|prog x\"")
        );
        assert_eq!(map.get("odd name").map(String::as_str), Some("c"));
        // Postfix's texthash: syntax (no colon on the line).
        assert_eq!(map.get("2user").map(String::as_str), Some("user"));
        assert_eq!(map.len(), 4);
        assert_eq!(w.len(), 3, "{w:?}");
    }

    #[test]
    fn texthash_and_other_tables_and_changes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("aliases");
        std::fs::write(&f, "a: b\n").unwrap();
        let maps = AliasMaps::open(&format!("inline:{{ z=y }}, texthash:{}", f.display())).unwrap();
        assert!(maps.warnings().is_empty());
        let me = nix::unistd::geteuid().as_raw();
        let found = |k: &str| maps.lookup(k).unwrap().map(|f| (f.value, f.owner));
        assert_eq!(found("A"), Some(("b".into(), me)));
        // inline: has no file: root's.
        assert_eq!(found("z"), Some(("y".into(), 0)));
        assert_eq!(maps.lookup("q").unwrap(), None);
        assert!(!maps.changed());
        std::fs::write(&f, "a: changed\n").unwrap();
        assert!(maps.changed());
        assert!(AliasMaps::open("texthash:/nonexistent/aliases").is_err());
    }
}
