//! SEARCH criteria (every key of RFC 3501 and RFC 9051, CONDSTORE's
//! MODSEQ), SEARCH RETURN options and SORT criteria.

use super::lexer::{Cursor, PResult, ParseError};
use super::seqset::parse_seqset;
use super::types::{SearchKey, SearchReturn, SortCriterion, SortKey};

/// One or more space-separated keys up to the end of the command, as `And`.
pub fn parse_search_keys(c: &mut Cursor<'_>) -> PResult<SearchKey> {
    let mut v = vec![search_key(c)?];
    while c.eat(b' ') {
        v.push(search_key(c)?);
        if v.len() > 1000 {
            return Err(ParseError("Too many search keys"));
        }
    }
    Ok(SearchKey::And(v))
}

fn search_key(c: &mut Cursor<'_>) -> PResult<SearchKey> {
    match c.peek() {
        Some(b'(') => {
            c.open()?;
            let mut v = vec![search_key(c)?];
            while c.eat(b' ') {
                v.push(search_key(c)?);
                if v.len() > 1000 {
                    return Err(ParseError("Too many search keys"));
                }
            }
            c.close()?;
            return Ok(SearchKey::And(v));
        }
        Some(b) if b.is_ascii_digit() || b == b'*' || b == b'$' => {
            return Ok(SearchKey::Seq(parse_seqset(c)?));
        }
        _ => {}
    }
    let w = c.atom_upper()?;
    use SearchKey as K;
    Ok(match w.as_str() {
        "ALL" => K::All,
        "ANSWERED" => K::Answered,
        "DELETED" => K::Deleted,
        "DRAFT" => K::Draft,
        "FLAGGED" => K::Flagged,
        "NEW" => K::New,
        "OLD" => K::Old,
        "RECENT" => K::Recent,
        "SEEN" => K::Seen,
        "UNANSWERED" => K::Unanswered,
        "UNDELETED" => K::Undeleted,
        "UNDRAFT" => K::Undraft,
        "UNFLAGGED" => K::Unflagged,
        "UNSEEN" => K::Unseen,
        "BCC" => K::Bcc(arg_text(c)?),
        "BODY" => K::Body(arg_text(c)?),
        "CC" => K::Cc(arg_text(c)?),
        "FROM" => K::From(arg_text(c)?),
        "SUBJECT" => K::Subject(arg_text(c)?),
        "TEXT" => K::Text(arg_text(c)?),
        "TO" => K::To(arg_text(c)?),
        "BEFORE" => K::Before(arg_date(c)?),
        "ON" => K::On(arg_date(c)?),
        "SINCE" => K::Since(arg_date(c)?),
        "SENTBEFORE" => K::SentBefore(arg_date(c)?),
        "SENTON" => K::SentOn(arg_date(c)?),
        "SENTSINCE" => K::SentSince(arg_date(c)?),
        "KEYWORD" => {
            c.sp()?;
            K::Keyword(c.flag()?)
        }
        "UNKEYWORD" => {
            c.sp()?;
            K::Unkeyword(c.flag()?)
        }
        "LARGER" => {
            c.sp()?;
            K::Larger(c.number64()?)
        }
        "SMALLER" => {
            c.sp()?;
            K::Smaller(c.number64()?)
        }
        "HEADER" => {
            c.sp()?;
            let name = c.string_text()?;
            c.sp()?;
            K::Header(name, c.string_text()?)
        }
        "UID" => {
            c.sp()?;
            K::Uid(parse_seqset(c)?)
        }
        "NOT" => {
            c.sp()?;
            nest(c, |c| Ok(K::Not(Box::new(search_key(c)?))))?
        }
        "OR" => {
            c.sp()?;
            nest(c, |c| {
                let a = search_key(c)?;
                c.sp()?;
                let b = search_key(c)?;
                Ok(K::Or(Box::new(a), Box::new(b)))
            })?
        }
        "MODSEQ" => {
            c.sp()?;
            if c.peek() == Some(b'"') {
                // entry-name entry-type-req: accepted and ignored (no per-flag modseqs).
                c.quoted()?;
                c.sp()?;
                c.atom()?;
                c.sp()?;
            }
            K::ModSeq(c.number64()?)
        }
        _ => return Err(ParseError("Unknown search key")),
    })
}

/// NOT and OR nest without parentheses: bound that recursion too.
fn nest(
    c: &mut Cursor<'_>,
    f: impl FnOnce(&mut Cursor<'_>) -> PResult<SearchKey>,
) -> PResult<SearchKey> {
    c.depth += 1;
    if c.depth > c.max_depth {
        return Err(ParseError("Too deep nesting"));
    }
    let r = f(c);
    c.depth = c.depth.saturating_sub(1);
    r
}

fn arg_text(c: &mut Cursor<'_>) -> PResult<String> {
    c.sp()?;
    c.string_text()
}

fn arg_date(c: &mut Cursor<'_>) -> PResult<super::types::Date> {
    c.sp()?;
    c.date()
}

/// `RETURN (opts)` after SEARCH/SORT (the keyword already consumed).
pub fn parse_search_return(c: &mut Cursor<'_>) -> PResult<Vec<SearchReturn>> {
    c.open()?;
    let mut v = Vec::new();
    if c.peek() != Some(b')') {
        loop {
            v.push(match c.atom_upper()?.as_str() {
                "MIN" => SearchReturn::Min,
                "MAX" => SearchReturn::Max,
                "ALL" => SearchReturn::All,
                "COUNT" => SearchReturn::Count,
                "SAVE" => SearchReturn::Save,
                _ => return Err(ParseError("Unknown RETURN option")),
            });
            if !c.eat(b' ') {
                break;
            }
        }
    }
    c.close()?;
    Ok(v)
}

/// `(criteria)` of SORT.
pub fn parse_sort_criteria(c: &mut Cursor<'_>) -> PResult<Vec<SortCriterion>> {
    c.open()?;
    let mut v = Vec::new();
    loop {
        let reverse = c.keyword("REVERSE");
        if reverse {
            c.sp()?;
        }
        let key = match c.atom_upper()?.as_str() {
            "ARRIVAL" => SortKey::Arrival,
            "CC" => SortKey::Cc,
            "DATE" => SortKey::Date,
            "FROM" => SortKey::From,
            "SIZE" => SortKey::Size,
            "SUBJECT" => SortKey::Subject,
            "TO" => SortKey::To,
            _ => return Err(ParseError("Unknown sort key")),
        };
        v.push(SortCriterion { reverse, key });
        if !c.eat(b' ') {
            break;
        }
    }
    c.close()?;
    Ok(v)
}
