//! The `name = value` configuration files that pgsql:, mysql: and ldap:
//! tables name (Postfix's cfg_parser on a file): main.cf syntax, `#`
//! comments, blank lines, and continuation lines that start with
//! whitespace. Values are taken as written (no `$name` expansion).

use std::collections::HashMap;
use std::path::Path;

/// A parsed configuration file.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cf {
    /// The file name, for messages.
    pub(crate) name: String,
    values: HashMap<String, String>,
}

/// The largest configuration file read.
const MAX_SIZE: u64 = 1 << 20;

impl Cf {
    /// Reads `path`.
    pub(crate) fn read(path: &str) -> Result<Cf, String> {
        let meta = std::fs::metadata(Path::new(path)).map_err(|e| format!("open {path}: {e}"))?;
        if meta.len() > MAX_SIZE {
            return Err(format!("{path}: file larger than {MAX_SIZE} bytes"));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("read {path}: {e}"))?;
        Cf::parse(path, &text)
    }

    /// Parses the text of a file named `name`.
    pub(crate) fn parse(name: &str, text: &str) -> Result<Cf, String> {
        let mut logical: Vec<(usize, String)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                match logical.last_mut() {
                    Some((_, l)) => {
                        l.push(' ');
                        l.push_str(trimmed);
                    }
                    None => {
                        return Err(format!(
                            "{name}, line {}: logical line must not start with whitespace",
                            i + 1
                        ));
                    }
                }
                continue;
            }
            logical.push((i + 1, trimmed.to_string()));
        }
        let mut values = HashMap::new();
        for (line, l) in logical {
            let Some((k, v)) = l.split_once('=') else {
                return Err(format!(
                    "{name}, line {line}: missing '=' after attribute name"
                ));
            };
            let k = k.trim();
            if k.is_empty() || k.contains(char::is_whitespace) {
                return Err(format!("{name}, line {line}: bad attribute name \"{k}\""));
            }
            values.insert(k.to_string(), v.trim().to_string());
        }
        Ok(Cf {
            name: name.to_string(),
            values,
        })
    }

    /// A string parameter, or `default`.
    pub(crate) fn str(&self, key: &str, default: &str) -> String {
        self.values
            .get(key)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }

    /// Whether the parameter is set.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// A number parameter, or `default`.
    pub(crate) fn int(&self, key: &str, default: i64) -> Result<i64, String> {
        match self.values.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("{}: bad numerical configuration: {key} = {v}", self.name)),
        }
    }

    /// A boolean parameter (`yes`/`no`, `true`/`false`, `1`/`0`), or `default`.
    pub(crate) fn bool(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.values.get(key).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if matches!(v.as_str(), "yes" | "true" | "1" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "no" | "false" | "0" | "off") => Ok(false),
            Some(v) => Err(format!(
                "{}: bad boolean configuration: {key} = {v}",
                self.name
            )),
        }
    }

    /// A list parameter split at commas and whitespace.
    pub(crate) fn list(&self, key: &str) -> Vec<String> {
        self.str(key, "")
            .split([',', ' ', '\t'])
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_cf_syntax() {
        let cf = Cf::parse(
            "x.cf",
            "# comment\nhosts = a b,\n  c\nquery = SELECT x\n  FROM t WHERE k='%s'\n\nexpansion_limit=2\nbad_bool = maybe\n",
        )
        .unwrap();
        assert_eq!(cf.list("hosts"), ["a", "b", "c"]);
        assert_eq!(cf.str("query", ""), "SELECT x FROM t WHERE k='%s'");
        assert_eq!(cf.int("expansion_limit", 0).unwrap(), 2);
        assert_eq!(cf.int("nothere", 7).unwrap(), 7);
        assert!(cf.bool("bad_bool", false).is_err());
        assert!(!cf.has("user"));
        assert!(Cf::parse("x.cf", " leading\n").is_err());
        assert!(Cf::parse("x.cf", "no equals\n").is_err());
    }
}
