//! FETCH data items: macros (ALL, FAST, FULL), ENVELOPE, FLAGS, `BODY[section]<partial>`
//! in every section form, BINARY, RFC822.*, MODSEQ, and section specifiers.

use super::lexer::{Cursor, PResult, ParseError};
use super::types::{FetchAttr, Section, SectionText};

/// The FETCH items after the sequence set: one item, a macro, or a list.
pub fn parse_fetch_attrs(c: &mut Cursor<'_>) -> PResult<Vec<FetchAttr>> {
    if c.peek() == Some(b'(') {
        c.open()?;
        let mut v = Vec::new();
        loop {
            v.push(fetch_att(c)?);
            if !c.eat(b' ') {
                break;
            }
        }
        c.close()?;
        return Ok(v);
    }
    if c.keyword("ALL") {
        return Ok(vec![
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822Size,
            FetchAttr::Envelope,
        ]);
    }
    if c.keyword("FAST") {
        return Ok(vec![
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822Size,
        ]);
    }
    if c.keyword("FULL") {
        return Ok(vec![
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822Size,
            FetchAttr::Envelope,
            FetchAttr::Body,
        ]);
    }
    Ok(vec![fetch_att(c)?])
}

fn fetch_att(c: &mut Cursor<'_>) -> PResult<FetchAttr> {
    let w = c.word_upper()?;
    Ok(match w.as_str() {
        "ENVELOPE" => FetchAttr::Envelope,
        "FLAGS" => FetchAttr::Flags,
        "INTERNALDATE" => FetchAttr::InternalDate,
        "RFC822" => FetchAttr::Rfc822,
        "RFC822.HEADER" => FetchAttr::Rfc822Header,
        "RFC822.SIZE" => FetchAttr::Rfc822Size,
        "RFC822.TEXT" => FetchAttr::Rfc822Text,
        "BODYSTRUCTURE" => FetchAttr::BodyStructure,
        "UID" => FetchAttr::Uid,
        "MODSEQ" => FetchAttr::ModSeq,
        "BODY" | "BODY.PEEK" if c.peek() == Some(b'[') => {
            let section = section(c)?;
            let partial = partial(c)?;
            FetchAttr::BodySection {
                peek: w == "BODY.PEEK",
                section,
                partial,
            }
        }
        "BODY" => FetchAttr::Body,
        "BINARY" | "BINARY.PEEK" => {
            let part = section_binary(c)?;
            let partial = partial(c)?;
            FetchAttr::Binary {
                peek: w == "BINARY.PEEK",
                part,
                partial,
            }
        }
        "BINARY.SIZE" => FetchAttr::BinarySize(section_binary(c)?),
        _ => return Err(ParseError("Unknown FETCH attribute")),
    })
}

/// `[section-spec]`.
pub fn section(c: &mut Cursor<'_>) -> PResult<Section> {
    c.expect(b'[', "Expected [")?;
    let mut s = Section::default();
    if c.eat(b']') {
        return Ok(s);
    }
    // Part numbers, each followed by '.' if more follows.
    while c.peek().is_some_and(|b| b.is_ascii_digit()) {
        s.part.push(c.nz_number()?);
        if s.part.len() > 64 {
            return Err(ParseError("Section too deep"));
        }
        if !c.eat(b'.') {
            c.expect(b']', "Bad section")?;
            return Ok(s);
        }
    }
    let w = c.word_upper()?;
    s.text = Some(match w.as_str() {
        "HEADER" => SectionText::Header,
        "TEXT" => SectionText::Text,
        "MIME" if !s.part.is_empty() => SectionText::Mime,
        "HEADER.FIELDS" | "HEADER.FIELDS.NOT" => {
            c.sp()?;
            c.open()?;
            let mut names = Vec::new();
            loop {
                let n = c.astring()?;
                names.push(String::from_utf8_lossy(&n).to_ascii_uppercase());
                if !c.eat(b' ') {
                    break;
                }
            }
            c.close()?;
            if w == "HEADER.FIELDS" {
                SectionText::HeaderFields(names)
            } else {
                SectionText::HeaderFieldsNot(names)
            }
        }
        _ => return Err(ParseError("Bad section")),
    });
    c.expect(b']', "Bad section")?;
    Ok(s)
}

fn section_binary(c: &mut Cursor<'_>) -> PResult<Vec<u32>> {
    c.expect(b'[', "Expected [")?;
    let mut v = Vec::new();
    if !c.eat(b']') {
        loop {
            v.push(c.nz_number()?);
            if v.len() > 64 {
                return Err(ParseError("Section too deep"));
            }
            if !c.eat(b'.') {
                break;
            }
        }
        c.expect(b']', "Bad section")?;
    }
    Ok(v)
}

fn partial(c: &mut Cursor<'_>) -> PResult<Option<(u64, u64)>> {
    if !c.eat(b'<') {
        return Ok(None);
    }
    let o = c.number64()?;
    c.expect(b'.', "Bad partial")?;
    let n = c.number64()?;
    if n == 0 {
        return Err(ParseError("Bad partial"));
    }
    c.expect(b'>', "Bad partial")?;
    Ok(Some((o, n)))
}
