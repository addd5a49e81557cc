//! Domain lists: Postfix's string_list of domains (mydestination,
//! virtual_*_domains: exact names) and domain_list (relay_domains,
//! fast_flush_domains: `.name` for subdomains, and a name matching its
//! subdomains when the parameter is in parent_domain_matches_subdomains).
//! Items are names, `!item`, `/file/name` (read now, before any chroot;
//! a file inside a file is not followed) and `type:table` (looked up with
//! the name and its parents in domain style).
//!
//! DomainList::parse(param, text, style) -> Result<DomainList, Error>
//! DomainList::matches(name) -> Result<bool, Error>   // first match decides

use crate::{Error, Flags, Table};

/// One pattern of a domain list.
#[derive(Debug)]
enum Pattern {
    /// A literal name (lowercased).
    Name(String),
    /// A `type:name` table looked up by domain.
    Table(Box<Table>),
}

#[derive(Debug)]
struct Item {
    negate: bool,
    pattern: Pattern,
}

/// How a list matches names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Postfix's string_list (mydestination, virtual_*_domains): exact,
    /// case-insensitive names; a table is asked for the name only.
    Exact,
    /// Postfix's domain_list (relay_domains, fast_flush_domains): also
    /// `.domain` for subdomains; with `parent` a name matches its
    /// subdomains too.
    Domain {
        /// The parameter is listed in parent_domain_matches_subdomains.
        parent: bool,
    },
}

/// A main.cf list of domains (names, `!name`, `/file/name`, `type:table`).
#[derive(Debug)]
pub struct DomainList {
    items: Vec<Item>,
    style: Style,
}

/// Most words taken from one `/file/name` item.
const MAX_FILE_WORDS: usize = 100_000;

impl DomainList {
    /// Parses the value of `param` (named in warnings).
    ///
    /// # Errors
    /// A table in it cannot be opened.
    pub fn parse(param: &str, text: &str, style: Style) -> Result<DomainList, Error> {
        let mut items = Vec::new();
        for word in crate::split_list(text) {
            add_item(param, word, false, &mut items, 0)?;
        }
        Ok(DomainList { items, style })
    }

    /// Whether `name` matches: the first matching item decides (a `!`
    /// item says no).
    ///
    /// # Errors
    /// A table lookup failed (the caller defers).
    pub fn matches(&self, name: &str) -> Result<bool, Error> {
        let name = name.to_lowercase();
        for item in &self.items {
            if self.item_matches(&item.pattern, &name)? {
                return Ok(!item.negate);
            }
        }
        Ok(false)
    }

    fn item_matches(&self, pattern: &Pattern, name: &str) -> Result<bool, Error> {
        match (pattern, self.style) {
            (Pattern::Name(p), Style::Exact) => Ok(p == name),
            (Pattern::Table(t), Style::Exact) => Ok(t.lookup(name)?.is_some()),
            (Pattern::Name(p), Style::Domain { parent }) => Ok(p == name
                || (parent && name.len() > p.len() && suffix_at_dot(name, p))
                || (p.starts_with('.') && name.len() > p.len() && name.ends_with(p.as_str()))),
            (Pattern::Table(t), Style::Domain { parent }) => {
                if t.lookup(name)?.is_some() {
                    return Ok(true);
                }
                // Parents: `.example.com`, `.com` (or without the dot in
                // parent style), as Postfix's match_hostname.
                let mut rest = name;
                while let Some(i) = rest.get(1..).and_then(|r| r.find('.')).map(|i| i + 1) {
                    let Some(dotted) = rest.get(i..) else { break };
                    let key = if parent {
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

/// True when `name` ends with `.suffix`.
fn suffix_at_dot(name: &str, suffix: &str) -> bool {
    name.strip_suffix(suffix)
        .is_some_and(|head| head.ends_with('.'))
}

fn add_item(
    param: &str,
    word: &str,
    negated: bool,
    items: &mut Vec<Item>,
    depth: u8,
) -> Result<(), Error> {
    let (negate, word) = match word.strip_prefix('!') {
        Some(w) => (!negated, w),
        None => (negated, word),
    };
    if word.is_empty() {
        return Ok(());
    }
    if word.starts_with('/') {
        // A file of patterns, read now (before any chroot); a file named
        // inside a file is not followed (no loops).
        if depth > 0 {
            maillog::warning!("{param}: {word}: a file inside a file is ignored");
            return Ok(());
        }
        match std::fs::read_to_string(word) {
            Ok(text) => {
                for w in text
                    .lines()
                    .map(|l| l.split('#').next().unwrap_or(""))
                    .flat_map(crate::split_list)
                    .take(MAX_FILE_WORDS)
                {
                    add_item(param, w, negate, items, depth + 1)?;
                }
            }
            Err(e) => maillog::warning!("{param}: cannot read {word}: {e}"),
        }
        return Ok(());
    }
    let pattern = if !word.starts_with('[') && crate::split_spec(word).is_ok() {
        Pattern::Table(Box::new(crate::open(word, Flags::default())?))
    } else {
        Pattern::Name(word.to_lowercase())
    };
    items.push(Item { negate, pattern });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_lists_match_names_and_negations() {
        let l =
            DomainList::parse("p", "Example.COM, !bad.org, bad.org, x.net", Style::Exact).unwrap();
        assert!(l.matches("example.com").unwrap());
        assert!(l.matches("EXAMPLE.com").unwrap());
        assert!(!l.matches("sub.example.com").unwrap());
        assert!(!l.matches("bad.org").unwrap());
        assert!(l.matches("x.net").unwrap());
    }

    #[test]
    fn domain_lists_match_subdomains_by_style() {
        let parent =
            DomainList::parse("p", "example.com .dot.org", Style::Domain { parent: true }).unwrap();
        assert!(parent.matches("a.b.example.com").unwrap());
        assert!(parent.matches("example.com").unwrap());
        assert!(!parent.matches("badexample.com").unwrap());
        assert!(parent.matches("x.dot.org").unwrap());
        assert!(!parent.matches("dot.org").unwrap());
        let strict =
            DomainList::parse("p", "example.com", Style::Domain { parent: false }).unwrap();
        assert!(!strict.matches("a.example.com").unwrap());
    }

    #[test]
    fn table_items_are_looked_up_with_parents() {
        let t = DomainList::parse(
            "p",
            "inline:{ example.com=ok, .dot.org=ok }",
            Style::Domain { parent: false },
        )
        .unwrap();
        assert!(t.matches("example.com").unwrap());
        assert!(!t.matches("a.example.com").unwrap());
        assert!(t.matches("a.b.dot.org").unwrap());
        let p = DomainList::parse(
            "p",
            "inline:{ example.com=ok }",
            Style::Domain { parent: true },
        )
        .unwrap();
        assert!(p.matches("a.example.com").unwrap());
        let e = DomainList::parse("p", "inline:{ example.com=ok }", Style::Exact).unwrap();
        assert!(e.matches("Example.com").unwrap());
        assert!(!e.matches("a.example.com").unwrap());
    }

    #[test]
    fn file_items_are_read() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("doms");
        std::fs::write(&f, "one.org # comment\ntwo.org, three.org\n").unwrap();
        let l = DomainList::parse("p", &format!("{}", f.display()), Style::Exact).unwrap();
        assert!(l.matches("two.org").unwrap());
        assert!(l.matches("three.org").unwrap());
        assert!(!l.matches("comment").unwrap());
    }

    #[test]
    fn a_file_inside_a_file_is_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("doms");
        std::fs::write(&f, format!("one.org {}\n", f.display())).unwrap();
        let l = DomainList::parse("p", &format!("!{}", f.display()), Style::Exact).unwrap();
        assert!(!l.matches("one.org").unwrap());
        assert!(!l.matches("two.org").unwrap());
    }
}
