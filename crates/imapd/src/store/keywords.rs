//! Maildir keywords as Dovecot keeps them: `dovecot-keywords` in the
//! maildir holds `<n> <name>` lines, and keyword n is the letter `a + n`
//! in a message file's flag part (so at most 26 keywords per mailbox).
//! System flags are the upper-case letters D, F, R, S and T.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The keyword list's file name.
pub const KEYWORDS_NAME: &str = "dovecot-keywords";

/// The most keywords one mailbox can hold (letters a-z).
pub const MAX_KEYWORDS: usize = 26;

/// System flags and their maildir letters.
const SYSTEM: [(&str, char); 5] = [
    ("\\Draft", 'D'),
    ("\\Flagged", 'F'),
    ("\\Answered", 'R'),
    ("\\Seen", 'S'),
    ("\\Deleted", 'T'),
];

/// A mailbox's keyword names by index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keywords {
    path: PathBuf,
    names: Vec<Option<String>>,
}

impl Keywords {
    /// Reads the list of the maildir at `dir` (missing: empty).
    pub fn load(dir: &Path) -> Keywords {
        let path = dir.join(KEYWORDS_NAME);
        let mut names: Vec<Option<String>> = Vec::new();
        if let Ok(text) = fs::read_to_string(&path) {
            for line in text.lines() {
                let Some((n, name)) = line.split_once(' ') else {
                    continue;
                };
                let Ok(n) = n.parse::<usize>() else { continue };
                if n >= MAX_KEYWORDS || name.is_empty() || name.contains(char::is_whitespace) {
                    continue;
                }
                if names.len() <= n {
                    names.resize(n + 1, None);
                }
                if let Some(slot) = names.get_mut(n) {
                    *slot = Some(name.to_string());
                }
            }
        }
        Keywords { path, names }
    }

    /// Every keyword name defined.
    pub fn names(&self) -> Vec<String> {
        self.names.iter().flatten().cloned().collect()
    }

    fn letter(&self, name: &str) -> Option<char> {
        self.names
            .iter()
            .position(|n| n.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .and_then(|i| u8::try_from(i).ok())
            .map(|i| char::from(b'a' + i))
    }

    /// The letter for `name`, adding it to the list (and saving) when new.
    /// None when all 26 letters are taken.
    ///
    /// # Errors
    /// The list cannot be written.
    pub fn letter_or_add(&mut self, name: &str) -> io::Result<Option<char>> {
        if let Some(c) = self.letter(name) {
            return Ok(Some(c));
        }
        // Another session may have added keywords meanwhile.
        let fresh = Keywords::load(self.path.parent().unwrap_or(Path::new(".")));
        self.names = fresh.names;
        if let Some(c) = self.letter(name) {
            return Ok(Some(c));
        }
        let slot = match self.names.iter().position(Option::is_none) {
            Some(i) => i,
            None if self.names.len() < MAX_KEYWORDS => {
                self.names.push(None);
                self.names.len() - 1
            }
            None => return Ok(None),
        };
        if let Some(s) = self.names.get_mut(slot) {
            *s = Some(name.to_string());
        }
        self.save()?;
        Ok(self.letter(name))
    }

    fn save(&self) -> io::Result<()> {
        let tmp = self
            .path
            .with_file_name(format!("{KEYWORDS_NAME}.tmp.{}", std::process::id()));
        let mut text = String::new();
        for (i, n) in self.names.iter().enumerate() {
            if let Some(n) = n {
                text.push_str(&format!("{i} {n}\n"));
            }
        }
        let mut f = fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &self.path)
    }

    /// IMAP flags of maildir flag letters.
    pub fn flags_of(&self, letters: &str) -> Vec<String> {
        let mut out = Vec::new();
        for c in letters.chars() {
            if let Some((f, _)) = SYSTEM.iter().find(|(_, l)| *l == c) {
                out.push((*f).to_string());
            } else if c.is_ascii_lowercase() {
                let i = usize::from(c as u8 - b'a');
                if let Some(Some(n)) = self.names.get(i) {
                    out.push(n.clone());
                }
            }
        }
        out
    }

    /// Maildir letters of IMAP flags (adding keywords as needed); letters
    /// of `keep` that IMAP does not show (P, unknown keywords) are kept.
    /// Flags that cannot be stored (\Recent, a 27th keyword) are dropped.
    ///
    /// # Errors
    /// The keyword list cannot be written.
    pub fn letters_of(&mut self, flags: &[String], keep: &str) -> io::Result<String> {
        let shown = |c: &char| {
            SYSTEM.iter().any(|(_, l)| l == c)
                || (c.is_ascii_lowercase()
                    && self
                        .names
                        .get(usize::from(*c as u8 - b'a'))
                        .is_some_and(Option::is_some))
        };
        let mut out: String = keep.chars().filter(|c| !shown(c)).collect();
        for f in flags {
            if let Some((_, l)) = SYSTEM.iter().find(|(n, _)| n.eq_ignore_ascii_case(f)) {
                out.push(*l);
            } else if !f.starts_with('\\')
                && let Some(c) = self.letter_or_add(f)?
            {
                out.push(c);
            }
        }
        Ok(mailstore::Flags::new(&out).as_str().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dovecot_keywords_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEYWORDS_NAME), "0 $Forwarded\n2 Work\n").unwrap();
        let mut k = Keywords::load(dir.path());
        assert_eq!(k.flags_of("Sac"), vec!["\\Seen", "$Forwarded", "Work"]);
        let l = k
            .letters_of(&["\\Flagged".into(), "work".into(), "New".into()], "PS")
            .unwrap();
        assert_eq!(l, "FPbc");
        let text = fs::read_to_string(dir.path().join(KEYWORDS_NAME)).unwrap();
        assert_eq!(text, "0 $Forwarded\n1 New\n2 Work\n");
    }
}
