//! The RFC 822 tokenizer shared by envelope and header parsing, in the
//! spirit of Postfix's tok822: quoted strings, comments, domain literals,
//! specials and atoms, with the whitespace between them remembered only as
//! a flag (so `John Doe` can be put back together as two words).

use crate::{Construct, Error, MAX_COMMENT_DEPTH};

/// One lexical token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A run of atom characters; backslash escapes outside quotes are resolved.
    Atom(String),
    /// A quoted string, unquoted (escapes resolved, quotes removed).
    Quoted(String),
    /// A domain literal, brackets included, as written.
    Literal(String),
    /// A comment, parentheses removed (kept only for display names).
    Comment,
    /// One of `< > @ , ; : .`
    Special(char),
}

/// A token with its byte offset and whether whitespace preceded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) kind: Kind,
    pub(crate) offset: usize,
    pub(crate) space_before: bool,
}

impl Token {
    /// True for the special character `c`.
    pub(crate) fn is(&self, c: char) -> bool {
        self.kind == Kind::Special(c)
    }

    /// True for atoms and quoted strings (RFC 5322 "word").
    pub(crate) fn is_word(&self) -> bool {
        matches!(self.kind, Kind::Atom(_) | Kind::Quoted(_))
    }
}

/// Characters that end an atom.
fn is_special(c: char) -> bool {
    matches!(
        c,
        '(' | ')' | '<' | '>' | '@' | ',' | ';' | ':' | '"' | '.' | '[' | ']'
    )
}

/// Control characters are refused everywhere (tab counts as whitespace).
fn check_control(c: char, offset: usize) -> Result<(), Error> {
    if (c.is_control() && c != '\t' && c != '\r' && c != '\n') || c == '\u{7f}' {
        return Err(Error::ControlCharacter { offset });
    }
    Ok(())
}

/// Splits `input` into tokens; comments are dropped from the result.
///
/// # Errors
///
/// Unterminated quoted strings, comments and domain literals, control
/// characters, comments nested deeper than [`MAX_COMMENT_DEPTH`], and a
/// stray `)` or `]`.
pub(crate) fn tokenize(input: &str) -> Result<Vec<Token>, Error> {
    let mut tokens = Vec::new();
    let mut chars = input.char_indices().peekable();
    let mut space_before = false;
    while let Some(&(offset, c)) = chars.peek() {
        check_control(c, offset)?;
        if c.is_whitespace() {
            chars.next();
            space_before = true;
            continue;
        }
        let kind = match c {
            '"' => Kind::Quoted(quoted(&mut chars, offset)?),
            '(' => {
                comment(&mut chars, offset)?;
                Kind::Comment
            }
            '[' => Kind::Literal(literal(&mut chars, offset)?),
            ')' | ']' => return Err(Error::UnexpectedCharacter { ch: c, offset }),
            c if is_special(c) => {
                chars.next();
                Kind::Special(c)
            }
            _ => Kind::Atom(atom(&mut chars)?),
        };
        if kind != Kind::Comment {
            tokens.push(Token {
                kind,
                offset,
                space_before,
            });
            space_before = false;
        } else {
            space_before = true;
        }
    }
    Ok(tokens)
}

type Chars<'a> = std::iter::Peekable<std::str::CharIndices<'a>>;

/// Reads a quoted string starting at the opening quote.
fn quoted(chars: &mut Chars<'_>, start: usize) -> Result<String, Error> {
    chars.next();
    let mut out = String::new();
    while let Some((offset, c)) = chars.next() {
        check_control(c, offset)?;
        match c {
            '"' => return Ok(out),
            '\\' => match chars.next() {
                Some((o, e)) => {
                    check_control(e, o)?;
                    out.push(e);
                }
                None => break,
            },
            _ => out.push(c),
        }
    }
    Err(Error::Unterminated {
        construct: Construct::QuotedString,
        offset: start,
    })
}

/// Skips a (possibly nested) comment starting at the opening parenthesis.
fn comment(chars: &mut Chars<'_>, start: usize) -> Result<(), Error> {
    let mut depth = 0usize;
    while let Some((offset, c)) = chars.next() {
        check_control(c, offset)?;
        match c {
            '(' => {
                depth = depth.saturating_add(1);
                if depth > MAX_COMMENT_DEPTH {
                    return Err(Error::NestingTooDeep {
                        limit: MAX_COMMENT_DEPTH,
                    });
                }
            }
            ')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Ok(());
                }
            }
            '\\' => {
                chars.next();
            }
            _ => {}
        }
    }
    Err(Error::Unterminated {
        construct: Construct::Comment,
        offset: start,
    })
}

/// Reads a domain literal `[...]`, brackets included.
fn literal(chars: &mut Chars<'_>, start: usize) -> Result<String, Error> {
    let mut out = String::new();
    for (offset, c) in chars.by_ref() {
        check_control(c, offset)?;
        match c {
            '[' if !out.is_empty() => {
                return Err(Error::UnexpectedCharacter { ch: c, offset });
            }
            '\\' => return Err(Error::UnexpectedCharacter { ch: c, offset }),
            ']' => {
                out.push(c);
                return Ok(out);
            }
            _ => out.push(c),
        }
    }
    Err(Error::Unterminated {
        construct: Construct::DomainLiteral,
        offset: start,
    })
}

/// Reads an atom; a backslash outside quotes escapes the next character.
fn atom(chars: &mut Chars<'_>) -> Result<String, Error> {
    let mut out = String::new();
    while let Some(&(offset, c)) = chars.peek() {
        check_control(c, offset)?;
        if c.is_whitespace() || is_special(c) || c == ']' {
            break;
        }
        chars.next();
        if c == '\\' {
            if let Some((o, e)) = chars.next() {
                check_control(e, o)?;
                out.push(e);
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Kind> {
        tokenize(s).unwrap().into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn tokens_of_a_mailbox() {
        assert_eq!(
            kinds("\"a b\"@x.y (c (nested))"),
            vec![
                Kind::Quoted("a b".into()),
                Kind::Special('@'),
                Kind::Atom("x".into()),
                Kind::Special('.'),
                Kind::Atom("y".into()),
            ]
        );
        assert_eq!(
            kinds("u@[1.2.3.4]"),
            vec![
                Kind::Atom("u".into()),
                Kind::Special('@'),
                Kind::Literal("[1.2.3.4]".into())
            ]
        );
    }

    #[test]
    fn unterminated_constructs() {
        assert!(matches!(
            tokenize("\"abc"),
            Err(Error::Unterminated {
                construct: Construct::QuotedString,
                ..
            })
        ));
        assert!(matches!(
            tokenize("(abc"),
            Err(Error::Unterminated {
                construct: Construct::Comment,
                ..
            })
        ));
        assert!(matches!(
            tokenize("a@[1.2"),
            Err(Error::Unterminated {
                construct: Construct::DomainLiteral,
                ..
            })
        ));
        assert!(matches!(
            tokenize("a\0b"),
            Err(Error::ControlCharacter { offset: 1 })
        ));
    }

    #[test]
    fn deep_comments_are_refused() {
        let s = format!("{}{}", "(".repeat(100), ")".repeat(100));
        assert!(matches!(tokenize(&s), Err(Error::NestingTooDeep { .. })));
    }
}
