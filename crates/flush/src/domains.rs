//! fast_flush_domains: Postfix's domain_list (names, `.name` for
//! subdomains, `!name`, `/file/name`, `type:table`), where a name also
//! matches its subdomains when fast_flush_domains is listed in
//! parent_domain_matches_subdomains (the default).
//!
//! Tables are opened here, before the chroot.

/// One pattern.
#[derive(Debug)]
enum Pattern {
    /// A literal name, lowercased.
    Name(String),
    /// A table asked for the name and its parents.
    Table(Box<tables::Table>),
}

/// The parsed list.
#[derive(Debug)]
pub(crate) struct Domains {
    items: Vec<(bool, Pattern)>,
    parent: bool,
}

/// Most words taken from one `/file/name` item.
const MAX_FILE_WORDS: usize = 100_000;

impl Domains {
    /// Parses `text`; `parent`: a name matches its subdomains.
    ///
    /// # Errors
    /// A table cannot be opened (the message names it).
    pub(crate) fn parse(text: &str, parent: bool) -> Result<Domains, String> {
        let mut items = Vec::new();
        for word in tables::split_list(text) {
            add(word, false, &mut items, 0)?;
        }
        Ok(Domains { items, parent })
    }

    /// Whether `site` is eligible: the first item that matches decides.
    ///
    /// # Errors
    /// A table lookup failed.
    pub(crate) fn matches(&self, site: &str) -> Result<bool, tables::Error> {
        let name = site.to_lowercase();
        for (negate, p) in &self.items {
            if self.item_matches(p, &name)? {
                return Ok(!negate);
            }
        }
        Ok(false)
    }

    fn item_matches(&self, p: &Pattern, name: &str) -> Result<bool, tables::Error> {
        match p {
            Pattern::Name(p) => Ok(p == name
                || (self.parent && sub_of(name, p))
                || (p.starts_with('.') && name.len() > p.len() && name.ends_with(p.as_str()))),
            Pattern::Table(t) => {
                if t.lookup(name)?.is_some() {
                    return Ok(true);
                }
                let mut rest = name;
                while let Some(i) = rest.get(1..).and_then(|r| r.find('.')).map(|i| i + 1) {
                    let Some(dotted) = rest.get(i..) else { break };
                    let key = if self.parent {
                        dotted.get(1..).unwrap_or_default()
                    } else {
                        dotted
                    };
                    if !key.is_empty() && t.lookup(key)?.is_some() {
                        return Ok(true);
                    }
                    rest = dotted;
                }
                Ok(false)
            }
        }
    }
}

/// True when `name` is a subdomain of `parent`.
fn sub_of(name: &str, parent: &str) -> bool {
    name.len() > parent.len()
        && name
            .strip_suffix(parent)
            .is_some_and(|head| head.ends_with('.'))
}

fn add(
    word: &str,
    negated: bool,
    items: &mut Vec<(bool, Pattern)>,
    depth: u8,
) -> Result<(), String> {
    let (negate, word) = match word.strip_prefix('!') {
        Some(w) => (!negated, w),
        None => (negated, word),
    };
    if word.is_empty() {
        return Ok(());
    }
    if word.starts_with('/') {
        if depth > 0 {
            return Ok(());
        }
        match std::fs::read_to_string(word) {
            Ok(text) => {
                for w in text
                    .lines()
                    .map(|l| l.split('#').next().unwrap_or(""))
                    .flat_map(tables::split_list)
                    .take(MAX_FILE_WORDS)
                {
                    add(w, negate, items, depth + 1)?;
                }
            }
            Err(e) => maillog::warning!("fast_flush_domains: cannot read {word}: {e}"),
        }
        return Ok(());
    }
    let pattern = if !word.starts_with('[') && tables::split_spec(word).is_ok() {
        let t = tables::open(word, tables::Flags::default())
            .map_err(|e| format!("fast_flush_domains: {word}: {e}"))?;
        Pattern::Table(Box::new(t))
    } else {
        Pattern::Name(word.to_lowercase())
    };
    items.push((negate, pattern));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_subdomains_and_negation() {
        let d = Domains::parse("!no.example.com, example.com .dot.example", true).unwrap();
        assert!(d.matches("example.com").unwrap());
        assert!(d.matches("Sub.Example.COM").unwrap());
        assert!(!d.matches("no.example.com").unwrap());
        assert!(!d.matches("notexample.com").unwrap());
        assert!(d.matches("a.dot.example").unwrap());
        assert!(!d.matches("dot.example").unwrap());
        let exact = Domains::parse("example.com", false).unwrap();
        assert!(!exact.matches("sub.example.com").unwrap());
        assert!(
            !Domains::parse("", true)
                .unwrap()
                .matches("x.example")
                .unwrap()
        );
    }

    #[test]
    fn tables_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("list");
        std::fs::write(&f, "# comment\nfile.example\n").unwrap();
        let d = Domains::parse(&format!("inline:{{t.example=x}} {}", f.display()), true).unwrap();
        assert!(d.matches("t.example").unwrap());
        assert!(d.matches("a.t.example").unwrap());
        assert!(d.matches("file.example").unwrap());
        assert!(!d.matches("other.example").unwrap());
        assert!(Domains::parse("nosuchtype:/x", true).is_err());
    }
}
