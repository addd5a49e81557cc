//! One envelope address: RFC 5321 `Path` / `Mailbox`, read leniently the way
//! Postfix's smtpd and sendmail read them (comments dropped, angle brackets
//! optional, source routes accepted and ignored).

use crate::token::{Kind, Token, tokenize};
use crate::{Address, Construct, Error, MAX_ADDRESS_LENGTH};

/// An envelope path: the address plus any source route that preceded it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Path {
    /// Source-route hosts, in order (`@a,@b:` gives `["a", "b"]`). RFC 5321
    /// says to ignore them; they are kept for logging.
    pub route: Vec<String>,
    /// The mailbox itself.
    pub address: Address,
}

/// Parses one envelope address such as `<user@example.com>`,
/// `user@example.com`, `<@a,@b:user@c>`, `<"x y"@z>` or `<>` (the null
/// address). The source route is dropped; see [`parse_path`] to keep it.
///
/// # Errors
///
/// Input longer than [`MAX_ADDRESS_LENGTH`], control characters,
/// unterminated quotes, comments, literals or `<`, an empty domain after `@`,
/// a missing local part, a malformed domain or source route, and text after
/// the address.
///
/// ```
/// let a = address::parse_mailbox("<@hub.example:user@Example.ORG>").unwrap();
/// assert_eq!(a.to_internal(), "user@Example.ORG");
/// ```
pub fn parse_mailbox(input: &str) -> Result<Address, Error> {
    parse_path(input).map(|p| p.address)
}

/// Parses one envelope address and keeps its source route.
///
/// # Errors
///
/// As [`parse_mailbox`].
pub fn parse_path(input: &str) -> Result<Path, Error> {
    if input.len() > MAX_ADDRESS_LENGTH {
        return Err(Error::TooLong {
            length: input.len(),
            limit: MAX_ADDRESS_LENGTH,
        });
    }
    let tokens = tokenize(input)?;
    let inner = strip_angle(&tokens)?;
    path_from_tokens(inner)
}

/// Removes one pair of angle brackets around the whole input, if present.
fn strip_angle(tokens: &[Token]) -> Result<&[Token], Error> {
    let Some(first) = tokens.first() else {
        return Ok(tokens);
    };
    if !first.is('<') {
        if let Some(t) = tokens.iter().find(|t| t.is('<') || t.is('>')) {
            return Err(unexpected(t));
        }
        return Ok(tokens);
    }
    let close = tokens.iter().position(|t| t.is('>'));
    match close {
        None => Err(Error::Unterminated {
            construct: Construct::AngleAddress,
            offset: first.offset,
        }),
        Some(i) => {
            if let Some(t) = tokens.get(i + 1) {
                return Err(Error::TrailingText { offset: t.offset });
            }
            let inner = tokens.get(1..i).unwrap_or_default();
            if let Some(t) = inner.iter().find(|t| t.is('<')) {
                return Err(unexpected(t));
            }
            Ok(inner)
        }
    }
}

/// Builds a path from the tokens between the angle brackets.
pub(crate) fn path_from_tokens(tokens: &[Token]) -> Result<Path, Error> {
    if tokens.is_empty() {
        return Ok(Path::default());
    }
    let (route, rest) = source_route(tokens)?;
    Ok(Path {
        route,
        address: addr_spec(rest)?,
    })
}

/// Splits off `@a,@b:` when the tokens start with `@`.
fn source_route(tokens: &[Token]) -> Result<(Vec<String>, &[Token]), Error> {
    if !tokens.first().is_some_and(|t| t.is('@')) {
        return Ok((Vec::new(), tokens));
    }
    let colon = tokens
        .iter()
        .position(|t| t.is(':'))
        .ok_or(Error::BadSourceRoute)?;
    let route_tokens = tokens.get(..colon).unwrap_or_default();
    let mut route = Vec::new();
    for hop in route_tokens.split(|t| t.is(',')) {
        let Some((at, domain)) = hop.split_first() else {
            return Err(Error::BadSourceRoute);
        };
        if !at.is('@') || domain.is_empty() {
            return Err(Error::BadSourceRoute);
        }
        route.push(domain_text(domain)?);
    }
    let rest = tokens.get(colon + 1..).unwrap_or_default();
    if rest.is_empty() {
        return Err(Error::BadSourceRoute);
    }
    Ok((route, rest))
}

/// `local@domain` or a bare `local`; the domain follows the last `@`.
pub(crate) fn addr_spec(tokens: &[Token]) -> Result<Address, Error> {
    let last_at = tokens.iter().rposition(|t| t.is('@'));
    let (local_tokens, domain) = match last_at {
        Some(i) => {
            let domain_tokens = tokens.get(i + 1..).unwrap_or_default();
            if domain_tokens.is_empty() {
                return Err(Error::EmptyDomain);
            }
            (
                tokens.get(..i).unwrap_or_default(),
                Some(domain_text(domain_tokens)?),
            )
        }
        None => (tokens, None),
    };
    let local = local_text(local_tokens)?;
    if local.is_empty() && !local_tokens.iter().any(|t| t.is_word()) {
        return Err(Error::EmptyLocalPart);
    }
    Ok(Address { local, domain })
}

/// The internal (unquoted) text of a local part. Adjacent words are joined
/// by one space, as Postfix's tok822_internalize does; `@` is allowed
/// (`user@remote@local` keeps `user@remote`).
fn local_text(tokens: &[Token]) -> Result<String, Error> {
    let mut out = String::new();
    let mut prev_word = false;
    for t in tokens {
        match &t.kind {
            Kind::Atom(s) | Kind::Quoted(s) => {
                if prev_word && t.space_before {
                    out.push(' ');
                }
                out.push_str(s);
                prev_word = true;
                continue;
            }
            Kind::Special(c @ ('.' | '@')) => out.push(*c),
            _ => return Err(unexpected(t)),
        }
        prev_word = false;
    }
    Ok(out)
}

/// The text of a domain: atoms and dots, or one domain literal.
fn domain_text(tokens: &[Token]) -> Result<String, Error> {
    let mut out = String::new();
    for t in tokens {
        match &t.kind {
            Kind::Atom(s) => {
                if t.space_before && !out.is_empty() && !out.ends_with('.') {
                    return Err(Error::TrailingText { offset: t.offset });
                }
                out.push_str(s);
            }
            Kind::Special('.') => out.push('.'),
            Kind::Literal(s) if tokens.len() == 1 => out.push_str(s),
            _ => return Err(unexpected(t)),
        }
    }
    if !out.starts_with('[') && !out.chars().all(is_domain_char) {
        return Err(Error::BadDomain { domain: out });
    }
    Ok(out)
}

/// Characters allowed in a domain name (UTF-8 letters for IDNs; `_` because
/// real host names have it).
fn is_domain_char(c: char) -> bool {
    c.is_alphanumeric() || c == '-' || c == '.' || c == '_'
}

/// The error for an out-of-place token.
pub(crate) fn unexpected(t: &Token) -> Error {
    let ch = match &t.kind {
        Kind::Special(c) => *c,
        Kind::Atom(s) | Kind::Quoted(s) | Kind::Literal(s) => s.chars().next().unwrap_or('"'),
        Kind::Comment => '(',
    };
    Error::UnexpectedCharacter {
        ch,
        offset: t.offset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn internal(s: &str) -> String {
        parse_mailbox(s).unwrap().to_internal()
    }

    #[test]
    fn plain_and_angle_forms() {
        assert_eq!(internal("user@example.com"), "user@example.com");
        assert_eq!(internal(" <user@example.com> "), "user@example.com");
        assert_eq!(internal("user"), "user");
        assert_eq!(internal("first.last@[192.0.2.1]"), "first.last@[192.0.2.1]");
        assert_eq!(internal("u@ex.com (comment)"), "u@ex.com");
        assert!(parse_mailbox("<>").unwrap().is_null());
        assert!(parse_mailbox("").unwrap().is_null());
    }

    #[test]
    fn quoted_local_parts() {
        let a = parse_mailbox("<\"user@remote\"@local>").unwrap();
        assert_eq!(a.local, "user@remote");
        assert_eq!(a.domain.as_deref(), Some("local"));
        assert_eq!(internal("\"a b\".c@d"), "a b.c@d");
        assert_eq!(internal("\"\"@d"), "@d");
        assert_eq!(internal("\"a\\\"b\"@d"), "a\"b@d");
    }

    #[test]
    fn source_routes() {
        let p = parse_path("<@a.example,@b.example:user@c.example>").unwrap();
        assert_eq!(p.route, vec!["a.example", "b.example"]);
        assert_eq!(p.address.to_internal(), "user@c.example");
        assert_eq!(parse_mailbox("<@a:>"), Err(Error::BadSourceRoute));
        assert_eq!(parse_mailbox("<@a,b:u@c>"), Err(Error::BadSourceRoute));
        assert_eq!(parse_mailbox("<@a u@c>"), Err(Error::BadSourceRoute));
    }

    #[test]
    fn routing_forms_are_kept() {
        let a = parse_mailbox("user@remote@local").unwrap();
        assert_eq!(a.local, "user@remote");
        assert!(a.routing().at);
        assert!(
            parse_mailbox("user%remote@local")
                .unwrap()
                .routing()
                .percent
        );
        assert!(parse_mailbox("remote!user").unwrap().routing().bang);
    }

    #[test]
    fn malformed_addresses() {
        assert_eq!(parse_mailbox("user@"), Err(Error::EmptyDomain));
        assert_eq!(parse_mailbox("@"), Err(Error::BadSourceRoute));
        assert!(matches!(
            parse_mailbox("<user@x"),
            Err(Error::Unterminated {
                construct: Construct::AngleAddress,
                ..
            })
        ));
        assert!(matches!(
            parse_mailbox("<a@b> c"),
            Err(Error::TrailingText { .. })
        ));
        assert!(matches!(
            parse_mailbox("a@b c"),
            Err(Error::TrailingText { .. })
        ));
        assert!(matches!(
            parse_mailbox("a,b@c"),
            Err(Error::UnexpectedCharacter { ch: ',', .. })
        ));
        assert!(matches!(
            parse_mailbox("a@b%c"),
            Err(Error::BadDomain { .. })
        ));
        assert!(matches!(
            parse_mailbox(&"a".repeat(MAX_ADDRESS_LENGTH + 1)),
            Err(Error::TooLong { .. })
        ));
    }

    #[test]
    fn external_round_trip() {
        for s in ["a@b", "\"a b\"@c", "\"x@y\"@z", "\"a\\\\b\"@c", "plain"] {
            let a = parse_mailbox(s).unwrap();
            assert_eq!(parse_mailbox(&a.to_external()).unwrap(), a, "{s}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = parse_path(&s);
        }

        #[test]
        fn never_panics_on_bytes(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse_path(&String::from_utf8_lossy(&b));
        }

        #[test]
        fn external_form_reparses(local in "[ -~]{1,20}", domain in "[a-z]{1,8}(\\.[a-z]{1,8}){0,2}") {
            let a = Address::new(local, Some(domain));
            prop_assert_eq!(parse_mailbox(&a.to_external()).unwrap(), a);
        }
    }
}
