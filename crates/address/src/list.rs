//! Header address lists (To, Cc, Bcc, From, Reply-To...): RFC 5322
//! `address-list` with display names, comments, groups, angle brackets and
//! quoted strings, read leniently like Postfix's tok822 parser.

use crate::mailbox::{addr_spec, path_from_tokens, unexpected};
use crate::token::{Token, tokenize};
use crate::{Address, Construct, Error, MAX_LIST_ADDRESSES, MAX_LIST_LENGTH};

/// Parses a header value into the addresses it names, in order.
///
/// Display names and comments are dropped; a group (`team: a@x, b@y;`)
/// contributes its members; `<>` and empty items (`a@x,,b@y`, the empty
/// group `undisclosed-recipients:;`) contribute nothing. A route inside
/// angle brackets is dropped.
///
/// # Errors
///
/// A value longer than [`MAX_LIST_LENGTH`], more than [`MAX_LIST_ADDRESSES`]
/// addresses, control characters, unterminated constructs, and items that
/// are not addresses (`<a@b> <c@d>`, `a@b@`).
///
/// ```
/// let v = address::parse_address_list(
///     "\"Doe, John\" <john@example.com>, team: a@x.org, (c) b@y.org;, plain",
/// ).unwrap();
/// let v: Vec<String> = v.iter().map(|a| a.to_internal()).collect();
/// assert_eq!(v, ["john@example.com", "a@x.org", "b@y.org", "plain"]);
/// ```
pub fn parse_address_list(value: &str) -> Result<Vec<Address>, Error> {
    if value.len() > MAX_LIST_LENGTH {
        return Err(Error::TooLong {
            length: value.len(),
            limit: MAX_LIST_LENGTH,
        });
    }
    let tokens = tokenize(value)?;
    let mut out = Vec::new();
    for item in items(&tokens)? {
        if let Some(addr) = item_address(item)? {
            if out.len() >= MAX_LIST_ADDRESSES {
                return Err(Error::TooManyAddresses {
                    limit: MAX_LIST_ADDRESSES,
                });
            }
            out.push(addr);
        }
    }
    Ok(out)
}

/// Splits the token stream into items at `,` and `;` outside angle
/// brackets; a `:` outside angle brackets ends a group's display name,
/// which is discarded.
fn items(tokens: &[Token]) -> Result<Vec<&[Token]>, Error> {
    let mut out = Vec::new();
    let mut start = 0usize;
    let mut open: Option<&Token> = None;
    for (i, t) in tokens.iter().enumerate() {
        if t.is('<') {
            if open.is_some() {
                return Err(unexpected(t));
            }
            open = Some(t);
        } else if t.is('>') {
            if open.take().is_none() {
                return Err(unexpected(t));
            }
        } else if open.is_none() && (t.is(',') || t.is(';')) {
            out.push(tokens.get(start..i).unwrap_or_default());
            start = i + 1;
        } else if open.is_none() && t.is(':') {
            start = i + 1;
        }
    }
    if let Some(t) = open {
        return Err(Error::Unterminated {
            construct: Construct::AngleAddress,
            offset: t.offset,
        });
    }
    out.push(tokens.get(start..).unwrap_or_default());
    Ok(out)
}

/// The address in one item: the angle-bracket part when there is one
/// (everything else is the display name), else the whole item.
fn item_address(item: &[Token]) -> Result<Option<Address>, Error> {
    if item.is_empty() {
        return Ok(None);
    }
    let Some(open) = item.iter().position(|t| t.is('<')) else {
        return addr_spec(item).map(Some);
    };
    let close = item
        .iter()
        .position(|t| t.is('>'))
        .ok_or(Error::Unterminated {
            construct: Construct::AngleAddress,
            offset: 0,
        })?;
    if let Some(t) = item.get(close + 1..).and_then(|rest| rest.first()) {
        return Err(Error::TrailingText { offset: t.offset });
    }
    let inner = item.get(open + 1..close).unwrap_or_default();
    let path = path_from_tokens(inner)?;
    if path.address.is_null() {
        return Ok(None);
    }
    Ok(Some(path.address))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn list(s: &str) -> Vec<String> {
        parse_address_list(s)
            .unwrap()
            .iter()
            .map(|a| a.to_internal())
            .collect()
    }

    #[test]
    fn display_names_and_comments() {
        assert_eq!(
            list("John Doe <john@example.com>, \"Smith, J\" <js@x.org> (work)"),
            ["john@example.com", "js@x.org"]
        );
        assert_eq!(list("jd@example.com (John Doe)"), ["jd@example.com"]);
        assert_eq!(list("=?utf-8?q?J=C3=B6rg?= <j@x>"), ["j@x"]);
    }

    #[test]
    fn rfc5322_appendix_a_examples() {
        assert_eq!(
            list("Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>"),
            ["mary@x.test", "jdoe@example.org", "one@y.test"]
        );
        assert_eq!(
            list("<boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>"),
            ["boss@nil.test", "sysservices@example.net"]
        );
        assert_eq!(
            list("A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;"),
            ["c@a.test", "joe@where.test", "jdoe@one.test"]
        );
        assert_eq!(
            list("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>"),
            ["pete@silly.test"]
        );
        assert_eq!(
            list("Joe Q. Public <john.q.public@example.com>"),
            ["john.q.public@example.com"]
        );
        assert_eq!(
            list("Mary Smith <@node.test:mary@example.net>, , jdoe@test  . example"),
            ["mary@example.net", "jdoe@test.example"]
        );
        assert_eq!(
            list("\"Joe & J. Harvey\" <ddd @Org>, JJV @ BBN"),
            ["ddd@Org", "JJV@BBN"]
        );
    }

    #[test]
    fn groups_and_empty_items() {
        assert_eq!(list("undisclosed-recipients:;"), Vec::<String>::new());
        assert_eq!(
            list("a@x, team: b@y, c@z;, d@w"),
            ["a@x", "b@y", "c@z", "d@w"]
        );
        assert_eq!(list(",, a@x ,"), ["a@x"]);
        assert_eq!(list("<>, a@x"), ["a@x"]);
    }

    #[test]
    fn quoted_and_routed() {
        assert_eq!(list("<\"user@remote\"@local>"), ["user@remote@local"]);
        assert_eq!(list("X <@hub:u@d>"), ["u@d"]);
        assert_eq!(list("bare"), ["bare"]);
    }

    #[test]
    fn multi_line_header_values() {
        assert_eq!(list("a@x,\r\n\tb@y"), ["a@x", "b@y"]);
    }

    #[test]
    fn malformed_lists() {
        assert!(parse_address_list("<a@b").is_err());
        assert!(parse_address_list("a@b>").is_err());
        assert!(parse_address_list("<a@b> <c@d>").is_err());
        assert!(parse_address_list("\"open").is_err());
        assert!(parse_address_list("a@").is_err());
        assert!(parse_address_list("x\0y").is_err());
        let long = "a@b,".repeat(MAX_LIST_LENGTH / 4 + 1);
        assert!(matches!(
            parse_address_list(&long),
            Err(Error::TooLong { .. })
        ));
    }

    #[test]
    fn too_many_addresses() {
        let many = "a,".repeat(MAX_LIST_ADDRESSES + 1);
        assert_eq!(
            parse_address_list(&many),
            Err(Error::TooManyAddresses {
                limit: MAX_LIST_ADDRESSES
            })
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in "[a-z@<>(),;:.\"\\\\ \\[\\]]{0,60}") {
            let _ = parse_address_list(&s);
        }

        #[test]
        fn never_panics_any_text(s in "\\PC{0,100}") {
            let _ = parse_address_list(&s);
        }
    }
}
