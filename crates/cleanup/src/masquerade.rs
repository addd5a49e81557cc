//! Address masquerading (Postfix's cleanup_masquerade): strip subdomains
//! so that `user@host.sub.example.com` becomes `user@example.com` when
//! masquerade_domains names `example.com`.
//!
//! The list is tried in order. An entry that equals the domain itself
//! stops the search without change; an entry `!name` that is a parent of
//! the domain stops it without change too (an exception); the first plain
//! parent entry wins. Local parts listed in masquerade_exceptions are
//! never masqueraded.

/// Masquerades one internal-form address; `None` when nothing changes.
pub(crate) fn masquerade(addr: &str, domains: &[String], exceptions: &[String]) -> Option<String> {
    let at = addr.rfind('@')?;
    let local = addr.get(..at)?;
    let domain = addr.get(at + 1..)?;
    if domain.is_empty() || domains.is_empty() {
        return None;
    }
    let lower_local = local.to_lowercase();
    if exceptions.iter().any(|e| e.to_lowercase() == lower_local) {
        return None;
    }
    let lower = domain.to_ascii_lowercase();
    for entry in domains {
        let (excluded, name) = match entry.strip_prefix('!') {
            Some(n) => (true, n),
            None => (false, entry.as_str()),
        };
        let name = name.to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        if name.len() == lower.len() {
            if name == lower {
                return None;
            }
        } else if name.len() < lower.len() {
            let cut = lower.len() - name.len();
            let parent = lower.get(cut..)?;
            if parent == name && lower.as_bytes().get(cut - 1) == Some(&b'.') {
                if excluded {
                    return None;
                }
                let kept = domain.get(cut..)?;
                return Some(format!("{local}@{kept}"));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn strips_subdomains() {
        let d = v(&["example.com"]);
        assert_eq!(
            masquerade("joe@host.sub.example.com", &d, &[]).as_deref(),
            Some("joe@example.com")
        );
        assert_eq!(masquerade("joe@example.com", &d, &[]), None);
        assert_eq!(masquerade("joe@badexample.com", &d, &[]), None);
        assert_eq!(masquerade("joe", &d, &[]), None);
        assert_eq!(masquerade("joe@other.org", &d, &[]), None);
    }

    #[test]
    fn order_exclusions_and_exceptions() {
        let d = v(&["!sub.example.com", "example.com"]);
        assert_eq!(masquerade("joe@host.sub.example.com", &d, &[]), None);
        assert_eq!(
            masquerade("joe@host.example.com", &d, &[]).as_deref(),
            Some("joe@example.com")
        );
        let d = v(&["sub.example.com", "example.com"]);
        assert_eq!(
            masquerade("joe@a.sub.example.com", &d, &[]).as_deref(),
            Some("joe@sub.example.com")
        );
        assert_eq!(masquerade("joe@sub.example.com", &d, &[]), None);
        assert_eq!(
            masquerade("Root@Host.Example.com", &v(&["example.com"]), &v(&["root"])),
            None
        );
        assert_eq!(
            masquerade("joe@Host.Example.COM", &v(&["example.com"]), &[]).as_deref(),
            Some("joe@Example.COM")
        );
    }
}
