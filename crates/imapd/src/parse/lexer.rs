//! The lexical layer of the command grammar (RFC 9051 section 9): a cursor
//! over one complete command (its literals inline) reading atoms, numbers,
//! quoted strings, literals, astrings, nstrings and list-mailbox tokens.
//! Every read is bounds-checked; nothing here panics on any input.

use super::types::{Date, DateTime};

/// Why a command could not be parsed: the text of the BAD response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

/// Result of a grammar step.
pub type PResult<T> = Result<T, ParseError>;

/// Is `c` an ATOM-CHAR (any CHAR except atom-specials)?
pub fn is_atom_char(c: u8) -> bool {
    c > 0x20 && c < 0x7f && !matches!(c, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// Is `c` an ASTRING-CHAR (ATOM-CHAR or "]")?
pub fn is_astring_char(c: u8) -> bool {
    is_atom_char(c) || c == b']'
}

/// Is `c` a list-char (ATOM-CHAR, list-wildcards or resp-specials)?
fn is_list_char(c: u8) -> bool {
    is_astring_char(c) || c == b'%' || c == b'*'
}

/// A cursor over one command's bytes (trailing CRLF removed).
pub struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
    /// Parenthesis nesting so far.
    pub depth: usize,
    /// The bound on nesting.
    pub max_depth: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `b`.
    pub fn new(b: &'a [u8], max_depth: usize) -> Self {
        Cursor {
            b,
            pos: 0,
            depth: 0,
            max_depth,
        }
    }

    /// The next byte, if any.
    pub fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    /// The byte after the next, if any.
    pub fn peek2(&self) -> Option<u8> {
        self.b.get(self.pos + 1).copied()
    }

    /// All input consumed?
    pub fn at_end(&self) -> bool {
        self.pos >= self.b.len()
    }

    /// Consume `c` if it is next.
    pub fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Require `c` next.
    pub fn expect(&mut self, c: u8, msg: &'static str) -> PResult<()> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(ParseError(msg))
        }
    }

    /// Require one space.
    pub fn sp(&mut self) -> PResult<()> {
        self.expect(b' ', "Missing space")
    }

    /// Require the end of the command.
    pub fn end(&self) -> PResult<()> {
        if self.at_end() {
            Ok(())
        } else {
            Err(ParseError("Unexpected extra arguments"))
        }
    }

    /// Enter a parenthesised group (bounded nesting).
    pub fn open(&mut self) -> PResult<()> {
        self.expect(b'(', "Expected (")?;
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(ParseError("Too deep nesting"));
        }
        Ok(())
    }

    /// Leave a parenthesised group.
    pub fn close(&mut self) -> PResult<()> {
        self.expect(b')', "Expected )")?;
        self.depth = self.depth.saturating_sub(1);
        Ok(())
    }

    /// Take bytes while `f` holds.
    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !f(c) {
                break;
            }
            self.pos += 1;
        }
        &self.b[start..self.pos]
    }

    /// 1*ATOM-CHAR as a string.
    pub fn atom(&mut self) -> PResult<&'a str> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            return Err(ParseError("Expected atom"));
        }
        std::str::from_utf8(a).map_err(|_| ParseError("Bad atom"))
    }

    /// An atom, upper-cased.
    pub fn atom_upper(&mut self) -> PResult<String> {
        Ok(self.atom()?.to_ascii_uppercase())
    }

    /// A word of letters, digits, `.`, `-` and `=` (command names and data
    /// item names that end before `[`), upper-cased.
    pub fn word_upper(&mut self) -> PResult<String> {
        let a = self.take_while(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'+' | b'=')
        });
        if a.is_empty() {
            return Err(ParseError("Expected keyword"));
        }
        Ok(String::from_utf8_lossy(a).to_ascii_uppercase())
    }

    /// Consume keyword `kw` (upper case) if next, case-insensitively, and
    /// not followed by another atom character.
    pub fn keyword(&mut self, kw: &str) -> bool {
        let k = kw.as_bytes();
        let end = self.pos + k.len();
        if end > self.b.len() || !self.b[self.pos..end].eq_ignore_ascii_case(k) {
            return false;
        }
        if self.b.get(end).is_some_and(|&c| is_atom_char(c)) {
            return false;
        }
        self.pos = end;
        true
    }

    /// number: up to 32 bits.
    pub fn number(&mut self) -> PResult<u32> {
        let n = self.number64()?;
        u32::try_from(n).map_err(|_| ParseError("Number too large"))
    }

    /// nz-number.
    pub fn nz_number(&mut self) -> PResult<u32> {
        match self.number()? {
            0 => Err(ParseError("Zero is not allowed")),
            n => Ok(n),
        }
    }

    /// number64 (RFC 9051): up to 63 bits.
    pub fn number64(&mut self) -> PResult<u64> {
        let d = self.take_while(|c| c.is_ascii_digit());
        if d.is_empty() {
            return Err(ParseError("Expected number"));
        }
        if d.len() > 19 {
            return Err(ParseError("Number too large"));
        }
        let mut n: u64 = 0;
        for &c in d {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(c - b'0')))
                .ok_or(ParseError("Number too large"))?;
        }
        if n > i64::MAX as u64 {
            return Err(ParseError("Number too large"));
        }
        Ok(n)
    }

    /// A quoted string (UTF-8 octets accepted, as RFC 9051 does).
    pub fn quoted(&mut self) -> PResult<Vec<u8>> {
        self.expect(b'"', "Expected quoted string")?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r') | Some(b'\n') | Some(0) => {
                    return Err(ParseError("Unterminated quoted string"));
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => {
                            out.push(c);
                            self.pos += 1;
                        }
                        _ => return Err(ParseError("Bad escape in quoted string")),
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// A literal `{n}`, `{n+}`, `{n-}` or literal8 `~{n}` and its octets.
    /// The framer has already checked the size and that the bytes are here.
    pub fn literal(&mut self) -> PResult<Vec<u8>> {
        let binary = self.eat(b'~');
        self.expect(b'{', "Expected literal")?;
        let n = self.number64()?;
        if !self.eat(b'+') {
            self.eat(b'-');
        }
        self.expect(b'}', "Bad literal")?;
        self.eat(b'\r');
        self.expect(b'\n', "Literal must end the line")?;
        let n = usize::try_from(n).map_err(|_| ParseError("Literal too large"))?;
        let end = self
            .pos
            .checked_add(n)
            .ok_or(ParseError("Literal too large"))?;
        let data = self
            .b
            .get(self.pos..end)
            .ok_or(ParseError("Literal truncated"))?;
        if !binary && data.contains(&0) {
            return Err(ParseError("NUL in literal"));
        }
        self.pos = end;
        Ok(data.to_vec())
    }

    /// string: quoted or literal.
    pub fn string(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            Some(b'~') if self.peek2() == Some(b'{') => self.literal(),
            _ => Err(ParseError("Expected string")),
        }
    }

    /// A string as UTF-8 text (lossy: search strings, header names).
    pub fn string_text(&mut self) -> PResult<String> {
        Ok(String::from_utf8_lossy(&self.astring()?).into_owned())
    }

    /// astring: 1*ASTRING-CHAR or string.
    pub fn astring(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.string(),
            Some(b'~') if self.peek2() == Some(b'{') => self.string(),
            _ => {
                let a = self.take_while(is_astring_char);
                if a.is_empty() {
                    Err(ParseError("Expected string"))
                } else {
                    Ok(a.to_vec())
                }
            }
        }
    }

    /// nstring: NIL or string.
    pub fn nstring(&mut self) -> PResult<Option<Vec<u8>>> {
        if self.keyword("NIL") {
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    /// list-mailbox: 1*list-char or string.
    pub fn list_mailbox(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.string(),
            _ => {
                let a = self.take_while(is_list_char);
                if a.is_empty() {
                    Err(ParseError("Expected mailbox pattern"))
                } else {
                    Ok(a.to_vec())
                }
            }
        }
    }

    /// A flag: `\Word` or a keyword atom; system flags in canonical case.
    pub fn flag(&mut self) -> PResult<String> {
        if self.eat(b'\\') {
            if self.eat(b'*') {
                return Ok("\\*".into());
            }
            let a = self.atom()?;
            let canon = ["Answered", "Flagged", "Deleted", "Seen", "Draft", "Recent"]
                .iter()
                .find(|f| f.eq_ignore_ascii_case(a))
                .map_or_else(|| a.to_string(), |f| (*f).to_string());
            Ok(format!("\\{canon}"))
        } else {
            Ok(self.atom()?.to_string())
        }
    }

    /// A parenthesised flag list (possibly empty).
    pub fn flag_list(&mut self) -> PResult<Vec<String>> {
        self.open()?;
        let mut v = Vec::new();
        if self.peek() != Some(b')') {
            loop {
                v.push(self.flag()?);
                if !self.eat(b' ') {
                    break;
                }
            }
        }
        self.close()?;
        Ok(v)
    }

    /// date: date-text or quoted date-text (d-Mon-yyyy).
    pub fn date(&mut self) -> PResult<Date> {
        let q = self.eat(b'"');
        let d = self.date_text()?;
        if q {
            self.expect(b'"', "Bad date")?;
        }
        Ok(d)
    }

    fn date_text(&mut self) -> PResult<Date> {
        let day = self.take_while(|c| c.is_ascii_digit());
        if day.is_empty() || day.len() > 2 {
            return Err(ParseError("Bad date"));
        }
        let day = parse_small(day);
        self.expect(b'-', "Bad date")?;
        let month = self.month()?;
        self.expect(b'-', "Bad date")?;
        let y = self.take_while(|c| c.is_ascii_digit());
        if y.len() != 4 || day == 0 || day > 31 {
            return Err(ParseError("Bad date"));
        }
        Ok(Date {
            year: parse_small(y),
            month,
            day: day as u8,
        })
    }

    fn month(&mut self) -> PResult<u8> {
        let m = self
            .b
            .get(self.pos..self.pos + 3)
            .ok_or(ParseError("Bad date"))?;
        let i = month_number(m).ok_or(ParseError("Bad month"))?;
        self.pos += 3;
        Ok(i)
    }

    /// date-time: `"dd-Mon-yyyy hh:mm:ss +zzzz"` (day may be space-padded).
    pub fn date_time(&mut self) -> PResult<DateTime> {
        self.expect(b'"', "Bad date-time")?;
        self.eat(b' ');
        let date = self.date_text()?;
        self.sp()?;
        let mut t = [0u8; 3];
        for (i, v) in t.iter_mut().enumerate() {
            if i > 0 {
                self.expect(b':', "Bad time")?;
            }
            *v = self.two_digits()?;
        }
        self.sp()?;
        let neg = match self.peek() {
            Some(b'+') => false,
            Some(b'-') => true,
            _ => return Err(ParseError("Bad zone")),
        };
        self.pos += 1;
        let hh = i16::from(self.two_digits()?);
        let mm = i16::from(self.two_digits()?);
        self.expect(b'"', "Bad date-time")?;
        if t[0] > 23 || t[1] > 59 || t[2] > 60 || mm > 59 {
            return Err(ParseError("Bad time"));
        }
        let z = hh * 60 + mm;
        Ok(DateTime {
            date,
            time: (t[0], t[1], t[2]),
            zone_minutes: if neg { -z } else { z },
        })
    }

    fn two_digits(&mut self) -> PResult<u8> {
        match (self.peek(), self.peek2()) {
            (Some(a), Some(b)) if a.is_ascii_digit() && b.is_ascii_digit() => {
                self.pos += 2;
                Ok((a - b'0') * 10 + (b - b'0'))
            }
            _ => Err(ParseError("Expected two digits")),
        }
    }
}

/// Month abbreviation (any case) to 1-12.
pub fn month_number(m: &[u8]) -> Option<u8> {
    const MONTHS: [&[u8]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    MONTHS
        .iter()
        .position(|x| x.eq_ignore_ascii_case(m))
        .map(|i| i as u8 + 1)
}

fn parse_small(d: &[u8]) -> u16 {
    d.iter().fold(0u16, |n, &c| {
        n.saturating_mul(10).saturating_add(u16::from(c - b'0'))
    })
}
