//! The `%` expansions of query and result templates that pgsql:, mysql:
//! and ldap: share (Postfix's db_common): `%%`, `%s` the key, `%u` its
//! local part, `%d` its domain, `%[1-9]` the domain's labels from the
//! right, and in result templates `%S` `%U` `%D` for the lookup key. Every
//! substituted value passes through the database's quoting function; a key
//! that lacks what the template needs (no domain for `%d`, too few labels
//! for `%3`) is not queried at all, and the lookup finds nothing.

use tables::domains::{DomainList, Style};

/// What the templates of one table need from a key.
#[derive(Debug, Default)]
pub(crate) struct Ctx {
    key_domain: bool,
    key_user: bool,
    value_domain: bool,
    value_user: bool,
    nparts: usize,
    domain: Option<DomainList>,
}

impl Ctx {
    /// Checks a template and records what it needs (`query`: a query
    /// template, else a result template).
    pub(crate) fn parse(&mut self, name: &str, format: &str, query: bool) -> Result<(), String> {
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                continue;
            }
            match chars.next() {
                Some('%' | 's' | 'S') => {}
                Some('u') if query => self.key_user = true,
                Some('u') => self.value_user = true,
                Some('d') if query => self.key_domain = true,
                Some('d') => self.value_domain = true,
                Some('U') => self.key_user = true,
                Some(d @ '1'..='9') => {
                    self.nparts = self.nparts.max(d as usize - '0' as usize);
                    self.key_domain = true;
                }
                Some('D') => self.key_domain = true,
                _ => {
                    return Err(format!(
                        "{name}: Invalid {} template: {format}",
                        if query { "query" } else { "result" }
                    ));
                }
            }
        }
        Ok(())
    }

    /// Reads the `domain` parameter: only keys in these domains are
    /// queried.
    pub(crate) fn set_domain(&mut self, name: &str, list: &str) -> Result<(), String> {
        if list.trim().is_empty() {
            return Ok(());
        }
        let d = DomainList::parse("domain", list, Style::Exact).map_err(|e| {
            format!("{name}: domain match list creation using '{list}' failed: {e}")
        })?;
        self.domain = Some(d);
        Ok(())
    }

    /// False when the `domain` list rules the key out (Postfix's
    /// db_common_check_domain); an error when a table in the list fails.
    pub(crate) fn check_domain(&self, key: &str) -> Result<bool, String> {
        let Some(list) = &self.domain else {
            return Ok(true);
        };
        match key.rfind('@') {
            Some(i) if i > 0 => {
                let domain = key.get(i + 1..).unwrap_or("");
                list.matches(domain).map_err(|e| e.to_string())
            }
            _ => Ok(false),
        }
    }

    /// Expands `format` for `value` (the lookup key in a query template;
    /// a result in a result template, with `key` the lookup key), appending
    /// to `out` after a comma when `out` is not empty. Returns false, with
    /// `out` unchanged, when the value lacks what the template needs.
    pub(crate) fn expand(
        &self,
        format: &str,
        value: &str,
        key: Option<&str>,
        out: &mut String,
        quote: &dyn Fn(&str) -> String,
    ) -> bool {
        if value.is_empty() {
            return false;
        }
        let at = |s: &str| s.rfind('@');
        let (need_domain, need_user) = if key.is_some() {
            (self.value_domain, self.value_user)
        } else {
            (self.key_domain, self.key_user)
        };
        let vat = at(value);
        if (need_domain && vat.is_none_or(|i| i + 1 == value.len()))
            || (need_user && vat == Some(0))
        {
            return false;
        }
        let kat = key.and_then(at);
        if let Some(k) = key
            && ((self.key_domain && kat.is_none_or(|i| i + 1 == k.len()))
                || (self.key_user && kat == Some(0)))
        {
            return false;
        }
        let split = |s: &str, i: Option<usize>| -> (String, Option<String>) {
            match i {
                Some(i) => (
                    s.get(..i).unwrap_or("").to_string(),
                    s.get(i + 1..).map(str::to_string),
                ),
                None => (s.to_string(), None),
            }
        };
        let (vuser, vdomain) = split(value, vat);
        let (kuser, kdomain) = match key {
            Some(k) => split(k, kat),
            None => (vuser.clone(), vdomain.clone()),
        };
        let parts: Vec<&str> = match (&kdomain, self.nparts) {
            (_, 0) => Vec::new(),
            (Some(d), n) => {
                let p: Vec<&str> = d.split('.').collect();
                if p.len() < n || p.iter().rev().take(n).any(|l| l.is_empty()) {
                    return false;
                }
                p
            }
            (None, _) => return false,
        };
        let mut text = String::new();
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                text.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => text.push('%'),
                Some('s') => text.push_str(&quote(value)),
                Some('u') => text.push_str(&quote(&vuser)),
                Some('d') => text.push_str(&quote(vdomain.as_deref().unwrap_or(""))),
                Some('S') => text.push_str(&quote(key.unwrap_or(value))),
                Some('U') => text.push_str(&quote(&kuser)),
                Some('D') => text.push_str(&quote(kdomain.as_deref().unwrap_or(""))),
                Some(d @ '1'..='9') => {
                    let n = d as usize - '0' as usize;
                    let label = parts
                        .len()
                        .checked_sub(n)
                        .and_then(|i| parts.get(i))
                        .copied()
                        .unwrap_or("");
                    text.push_str(&quote(label));
                }
                // parse() refused other letters.
                _ => return false,
            }
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&text);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(q: &str, r: &str) -> Ctx {
        let mut c = Ctx::default();
        c.parse("t", q, true).unwrap();
        c.parse("t", r, false).unwrap();
        c
    }

    fn sql(s: &str) -> String {
        s.replace('\'', "''")
    }

    #[test]
    fn query_expansions() {
        let c2 = ctx("u=%u d=%d s=%s 1=%1 2=%2 3=%3 %%", "%s");
        let mut out = String::new();
        assert!(c2.expand(
            "u=%u d=%d s=%s 1=%1 2=%2 3=%3 %%",
            "Bob@mail.example.com",
            None,
            &mut out,
            &sql
        ));
        assert_eq!(
            out,
            "u=Bob d=mail.example.com s=Bob@mail.example.com 1=com 2=example 3=mail %"
        );
        let mut out = String::new();
        assert!(!c2.expand("%3", "bob@example.com", None, &mut out, &sql));
        assert!(!c2.expand("%d", "bob", None, &mut out, &sql));
        assert!(out.is_empty());
    }

    #[test]
    fn quoting_applies_to_every_substitution() {
        let c = ctx("SELECT 1 WHERE a='%s'", "%s");
        let mut out = String::new();
        assert!(c.expand(
            "SELECT 1 WHERE a='%s'",
            "x'; DROP TABLE mailbox; --@example.test",
            None,
            &mut out,
            &sql
        ));
        assert_eq!(
            out,
            "SELECT 1 WHERE a='x''; DROP TABLE mailbox; --@example.test'"
        );
    }

    #[test]
    fn result_formats_join_with_commas() {
        let c = ctx("%s", "%u+%D@relay");
        let mut out = String::new();
        assert!(c.expand(
            "%u+%D@relay",
            "alice@a.test",
            Some("bob@b.test"),
            &mut out,
            &|s| s.to_string()
        ));
        assert!(c.expand(
            "%u+%D@relay",
            "carol@c.test",
            Some("bob@b.test"),
            &mut out,
            &|s| s.to_string()
        ));
        assert_eq!(out, "alice+b.test@relay,carol+b.test@relay");
        assert!(!c.expand("%u", "", Some("k"), &mut out, &|s| s.to_string()));
        let mut bad = Ctx::default();
        assert!(bad.parse("t", "%x", true).is_err());
    }

    #[test]
    fn domain_lists_rule_keys_out() {
        let mut c = Ctx::default();
        c.set_domain("t", "example.test, other.test").unwrap();
        assert!(c.check_domain("a@example.test").unwrap());
        assert!(!c.check_domain("a@sub.example.test").unwrap());
        assert!(!c.check_domain("bare").unwrap());
        assert!(!c.check_domain("@example.test").unwrap());
    }
}
