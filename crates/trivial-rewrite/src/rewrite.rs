//! Rewriting an address to standard form (Postfix's rewrite.c): strip a
//! source route, turn `host!user` and `user%host` into `user@host`, append
//! `@$myorigin` to a bare user and `.$mydomain` to a domain without a dot,
//! and drop one trailing dot.
//!
//! Addresses arrive in internal form (local part unquoted). Postfix quotes
//! them and works on RFC 822 tokens, so a `!` or `%` inside a local part
//! that needs quoting (`"joe doe!x"`) is not an operator; the same holds
//! here through [`address::needs_quoting`].

use proto::rewrite::Context;

use crate::settings::Settings;

/// The origin and domain a context appends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Appends<'a> {
    /// Appended as `@origin` to a bare user (when not empty).
    pub(crate) origin: &'a str,
    /// Appended as `.domain` to a domain without a dot (when not empty).
    pub(crate) domain: &'a str,
}

impl<'a> Appends<'a> {
    /// Postfix's rewrite contexts: local uses myorigin and mydomain,
    /// remote uses remote_header_rewrite_domain for both.
    pub(crate) fn of(context: Context, s: &'a Settings) -> Appends<'a> {
        match context {
            Context::Local => Appends {
                origin: &s.myorigin,
                domain: &s.mydomain,
            },
            Context::Remote => Appends {
                origin: &s.remote_domain,
                domain: &s.remote_domain,
            },
        }
    }
}

/// Splits an internal-form address at its last `@`.
pub(crate) fn split_at_last(addr: &str) -> (&str, Option<&str>) {
    match addr.rfind('@') {
        Some(i) => (addr.get(..i).unwrap_or(""), addr.get(i + 1..)),
        None => (addr, None),
    }
}

/// Rewrites one address from a client request.
pub(crate) fn rewrite(addr: &str, context: Context, s: &Settings) -> String {
    rewrite_tree(addr, false, Appends::of(context, s), s)
}

/// The rewriting proper. `plain` says the text is to be read as unquoted
/// tokens even where its local part would need quoting (the resolver
/// passes a cracked-open quoted local part this way).
pub(crate) fn rewrite_tree(addr: &str, plain: bool, ctx: Appends<'_>, s: &Settings) -> String {
    // An empty address, and a lone @, stay (or become) empty.
    if addr.is_empty() || addr == "@" {
        return String::new();
    }
    let mut a = addr;
    // Strip a source route: @hosta,@hostb:user@domain.
    if a.starts_with('@')
        && let Some(colon) = a.find(':')
        && colon + 1 < a.len()
    {
        a = a.get(colon + 1..).unwrap_or(a);
    }
    let (local, domain) = split_at_last(a);
    let mut out = match domain {
        Some(_) => a.to_string(),
        None => {
            let tokens = plain || !address::needs_quoting(local);
            if s.swap_bangpath
                && tokens
                && let Some((host, user)) = local.split_once('!')
            {
                format!("{user}@{host}")
            } else if s.percent_hack
                && tokens
                && let Some((user, host)) = local.rsplit_once('%')
            {
                format!("{user}@{host}")
            } else if s.append_at_myorigin && !ctx.origin.is_empty() {
                format!("{local}@{}", ctx.origin)
            } else {
                local.to_string()
            }
        }
    };
    // Append .mydomain, but leave forms ending in @ and literals alone.
    if s.append_dot_mydomain
        && !ctx.domain.is_empty()
        && let (_, Some(d)) = split_at_last(&out)
        && !d.is_empty()
        && !d.starts_with('[')
        && !d.contains('.')
    {
        out.push('.');
        out.push_str(ctx.domain);
    }
    strip_trailing_dot(&mut out);
    out
}

/// Drops one trailing dot of the domain, but not from `..` or `@.`.
pub(crate) fn strip_trailing_dot(addr: &mut String) {
    if let (_, Some(d)) = split_at_last(addr)
        && d.len() >= 2
        && d.ends_with('.')
        && !d.ends_with("..")
    {
        addr.pop();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Settings for tests: myhostname host.example.com, mydomain
    /// example.com, myorigin example.com, Postfix defaults otherwise.
    pub(crate) fn settings(main_cf: &str) -> Settings {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "myhostname = host.example.com\nmydomain = example.com\nmyorigin = $mydomain\n\
             inet_interfaces = loopback-only\n{main_cf}"
        );
        let config = config::Config::from_text(dir.path(), &text).unwrap();
        Settings::load(&config).unwrap()
    }

    fn rw(addr: &str, s: &Settings) -> String {
        rewrite(addr, Context::Local, s)
    }

    #[test]
    fn bare_users_get_myorigin_in_local_context_only() {
        let s = settings("");
        assert_eq!(rw("bob", &s), "bob@example.com");
        assert_eq!(rewrite("bob", Context::Remote, &s), "bob");
        let r = settings("remote_header_rewrite_domain = remote.invalid");
        assert_eq!(rewrite("bob", Context::Remote, &r), "bob@remote.invalid");
        let off = settings("append_at_myorigin = no");
        assert_eq!(rw("bob", &off), "bob");
    }

    #[test]
    fn append_dot_mydomain_follows_the_config() {
        let s = settings("");
        assert_eq!(
            rw("bob@host", &s),
            "bob@host",
            "off by default at level >= 1"
        );
        let on = settings("append_dot_mydomain = yes");
        assert_eq!(rw("bob@host", &on), "bob@host.example.com");
        assert_eq!(rw("bob@a.b", &on), "bob@a.b");
        assert_eq!(rw("bob@[192.0.2.1]", &on), "bob@[192.0.2.1]");
        assert_eq!(rw("bob@", &on), "bob@");
        let old = settings("compatibility_level = 0");
        assert_eq!(rw("bob@host", &old), "bob@host.example.com");
    }

    #[test]
    fn bang_paths_and_percent_hack() {
        let s = settings("");
        assert_eq!(rw("hub!joe", &s), "joe@hub");
        assert_eq!(rw("a!b!joe", &s), "b!joe@a");
        assert_eq!(rw("joe%remote", &s), "joe@remote");
        assert_eq!(rw("a%b%c", &s), "a%b@c");
        // With a domain nothing is swapped here (the resolver does it).
        assert_eq!(rw("joe%remote@x.org", &s), "joe%remote@x.org");
        // Inside a local part that needs quoting, ! is not an operator.
        assert_eq!(rw("joe doe!x", &s), "joe doe!x@example.com");
        let off = settings("swap_bangpath = no\nallow_percent_hack = no");
        assert_eq!(rw("hub!joe", &off), "hub!joe@example.com");
        assert_eq!(rw("joe%remote", &off), "joe%remote@example.com");
    }

    #[test]
    fn source_routes_empty_addresses_and_trailing_dots() {
        let s = settings("");
        assert_eq!(rw("@a,@b:joe@c.org", &s), "joe@c.org");
        assert_eq!(rw("", &s), "");
        assert_eq!(rw("@", &s), "");
        assert_eq!(rw("joe@c.org.", &s), "joe@c.org");
        assert_eq!(rw("joe@c.org..", &s), "joe@c.org..");
        assert_eq!(rw("joe@.", &s), "joe@.");
        assert_eq!(rw("joe@[192.0.2.1]", &s), "joe@[192.0.2.1]");
        assert_eq!(rw("joe doe@example.org", &s), "joe doe@example.org");
    }
}
