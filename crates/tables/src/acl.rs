//! User name access lists: authorized_submit_users,
//! authorized_mailq_users and authorized_flush_users (Postfix's
//! user_acl and string_list).
//!
//! A list holds user names, `type:table` lookups (a user matches when the
//! table has an entry for the name; `static:anyone` matches everybody) and
//! `/file` names (the file's lines are read as more list elements), each
//! optionally negated with `!`. The first element that matches decides;
//! a name that matches nothing is refused. A uid without a passwd entry
//! is looked up by its number.

use crate::{Error, Flags};

/// Why [`check_user`] refused: `User alice` or `UID 1234`, the start of
/// Postfix's message (`fatal: User alice is not allowed to submit mail`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks the user with `uid` against `list`.
///
/// # Errors
///
/// `Ok(Err(Refused))` when the list does not admit the user; `Err` when
/// a table in the list cannot be opened or read (the caller treats that
/// as a refusal too, with the error in the log).
pub fn check_user(list: &str, uid: u32) -> Result<Result<(), Refused>, Error> {
    // A static table answers every key: a list that starts with one (the
    // default, static:anyone) admits anyone, and the passwd lookup (for
    // every sendmail and postdrop run) is not needed.
    if crate::split_list(list)
        .first()
        .is_some_and(|first| first.starts_with("static:"))
    {
        return Ok(Ok(()));
    }
    let (key, who) = match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => (u.name.clone(), format!("User {}", u.name)),
        _ => (uid.to_string(), format!("UID {uid}")),
    };
    if matches(list, &key)? {
        Ok(Ok(()))
    } else {
        Ok(Err(Refused(who)))
    }
}

/// Most levels of `/file` inside `/file`.
const MAX_NESTING: usize = 10;

/// True when the first element of `list` that matches `name` is not negated.
pub fn matches(list: &str, name: &str) -> Result<bool, Error> {
    Ok(first_match(list, name, 0)?.unwrap_or(false))
}

fn first_match(list: &str, name: &str, depth: usize) -> Result<Option<bool>, Error> {
    for element in crate::split_list(list) {
        let (negated, pattern) = match element.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, element),
        };
        let hit = if pattern.starts_with('/') {
            if depth >= MAX_NESTING {
                continue;
            }
            let text = std::fs::read_to_string(pattern).map_err(|e| Error::Io {
                path: pattern.into(),
                source: e,
            })?;
            let inner: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect();
            match first_match(&inner.join(" "), name, depth + 1)? {
                Some(verdict) => return Ok(Some(verdict != negated)),
                None => false,
            }
        } else if pattern.contains(':') {
            crate::open(pattern, Flags::default())?
                .lookup(name)?
                .is_some()
        } else {
            pattern.eq_ignore_ascii_case(name)
        };
        if hit {
            return Ok(Some(!negated));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_tables_negation_and_files() {
        assert!(matches("static:anyone", "alice").unwrap());
        assert_eq!(check_user("static:anyone", u32::MAX - 7).unwrap(), Ok(()));
        assert_eq!(
            check_user("!static:anyone", 0).unwrap(),
            Err(Refused("User root".into()))
        );
        assert!(matches("bob, alice", "ALICE").unwrap());
        assert!(!matches("bob", "alice").unwrap());
        assert!(!matches("", "alice").unwrap());
        assert!(!matches("!alice, static:anyone", "alice").unwrap());
        assert!(matches("!alice, static:anyone", "bob").unwrap());
        assert!(matches("inline:{ alice=yes }", "alice").unwrap());
        assert!(!matches("inline:{ alice=yes }", "bob").unwrap());
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("users");
        std::fs::write(&f, "# submitters\n!mallory\ncarol\n").unwrap();
        let list = format!("{}, static:anyone", f.display());
        assert!(!matches(&list, "mallory").unwrap());
        assert!(matches(&list, "carol").unwrap());
        assert!(matches(&list, "dave").unwrap());
        // A negated file that does not name dave: no match, refused.
        assert!(!matches(&format!("!{}", f.display()), "dave").unwrap());
    }

    #[test]
    fn unknown_uid_is_looked_up_by_number() {
        let uid = 4_000_000_123;
        assert_eq!(
            check_user("root", uid).unwrap(),
            Err(Refused(format!("UID {uid}")))
        );
        assert_eq!(check_user(&uid.to_string(), uid).unwrap(), Ok(()));
        assert_eq!(check_user("static:anyone", uid).unwrap(), Ok(()));
    }
}
