//! Sequence sets (`1:4,7,9:*`, `$`) and their evaluation against the
//! numbers in use.

use super::lexer::{Cursor, PResult, ParseError};
use super::types::{SeqNum, SeqSet};

/// Parse a sequence set or `$`.
pub fn parse_seqset(c: &mut Cursor<'_>) -> PResult<SeqSet> {
    if c.eat(b'$') {
        return Ok(SeqSet::Saved);
    }
    let mut v = Vec::new();
    loop {
        let a = seq_number(c)?;
        let b = if c.eat(b':') { seq_number(c)? } else { a };
        v.push((a, b));
        if v.len() > 100_000 {
            return Err(ParseError("Sequence set too long"));
        }
        if !c.eat(b',') {
            break;
        }
    }
    Ok(SeqSet::Ranges(v))
}

fn seq_number(c: &mut Cursor<'_>) -> PResult<SeqNum> {
    if c.eat(b'*') {
        Ok(SeqNum::Star)
    } else {
        Ok(SeqNum::Value(c.nz_number()?))
    }
}

impl SeqSet {
    /// Does the set contain `n`, where `*` stands for `max` (the largest
    /// number in use)? `$` is resolved by the session first; here it
    /// contains nothing.
    pub fn contains(&self, n: u32, max: u32) -> bool {
        match self {
            SeqSet::Saved => false,
            SeqSet::Sorted(r) => {
                let i = r.partition_point(|&(_, hi)| hi < n);
                r.get(i).is_some_and(|&(lo, _)| lo <= n)
            }
            SeqSet::Ranges(r) => r.iter().any(|&(a, b)| {
                let a = resolve(a, max);
                let b = resolve(b, max);
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                (lo..=hi).contains(&n)
            }),
        }
    }
}

impl SeqSet {
    /// The set as sorted, merged, inclusive ranges within 1..=max (`*` is
    /// `max`; a number above `max` is clipped, a range wholly above it
    /// dropped). `$` gives no ranges: the session resolves it.
    pub fn ranges(&self, max: u32) -> Vec<(u32, u32)> {
        let r = match self {
            SeqSet::Ranges(r) => r,
            SeqSet::Sorted(r) => {
                return r
                    .iter()
                    .filter(|&&(lo, _)| lo <= max)
                    .map(|&(lo, hi)| (lo, hi.min(max)))
                    .collect();
            }
            SeqSet::Saved => return Vec::new(),
        };
        let mut v: Vec<(u32, u32)> = r
            .iter()
            .map(|&(a, b)| {
                let (a, b) = (resolve(a, max), resolve(b, max));
                if a <= b { (a, b) } else { (b, a) }
            })
            .filter(|&(lo, _)| lo <= max && max > 0)
            .map(|(lo, hi)| (lo, hi.min(max)))
            .collect();
        v.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(v.len());
        for (lo, hi) in v {
            match out.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        out
    }
}

impl SeqSet {
    /// The same set resolved against `max` for fast membership tests
    /// (a set of many ranges tested against many messages).
    pub fn normalize(&self, max: u32) -> SeqSet {
        SeqSet::Sorted(self.ranges(max))
    }

    /// Sorted, merged ranges covering `nums` (a saved result, say).
    pub fn from_numbers(nums: &[u32]) -> SeqSet {
        let mut v = nums.to_vec();
        v.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::new();
        for n in v {
            match out.last_mut() {
                Some(last) if n <= last.1.saturating_add(1) => last.1 = last.1.max(n),
                _ => out.push((n, n)),
            }
        }
        SeqSet::Sorted(out)
    }
}

fn resolve(n: SeqNum, max: u32) -> u32 {
    match n {
        SeqNum::Value(v) => v,
        SeqNum::Star => max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> SeqSet {
        let mut c = Cursor::new(s.as_bytes(), 10);
        let r = parse_seqset(&mut c).expect("parse");
        assert!(c.at_end(), "{s}");
        r
    }

    #[test]
    fn ranges_and_star() {
        let s = p("1:3,7,10:*");
        assert!(s.contains(2, 20) && s.contains(7, 20) && s.contains(20, 20));
        assert!(!s.contains(5, 20) && !s.contains(8, 20));
        let r = p("*:4");
        assert!(r.contains(4, 6) && r.contains(6, 6) && !r.contains(3, 6));
        assert_eq!(p("$"), SeqSet::Saved);
    }

    #[test]
    fn normalized_ranges() {
        assert_eq!(
            p("7,1:3,2:5,9:*,20").ranges(10),
            vec![(1, 5), (7, 7), (9, 10)]
        );
        assert_eq!(p("*:4").ranges(6), vec![(4, 6)]);
        assert_eq!(p("1:*").ranges(0), vec![]);
        assert_eq!(p("4294967295").ranges(u32::MAX), vec![(u32::MAX, u32::MAX)]);
        assert_eq!(SeqSet::Saved.ranges(5), vec![]);
    }

    #[test]
    fn sorted_membership() {
        let s = p("7,1:3,2:5,9:*").normalize(10);
        for n in 0..=12 {
            assert_eq!(s.contains(n, 10), p("7,1:3,2:5,9:*").contains(n, 10), "{n}");
        }
        let f = SeqSet::from_numbers(&[5, 3, 4, 9, 1]);
        assert_eq!(f, SeqSet::Sorted(vec![(1, 1), (3, 5), (9, 9)]));
        assert!(f.contains(4, 0) && !f.contains(2, 0));
    }

    #[test]
    fn zero_refused() {
        let mut c = Cursor::new(b"0:3", 10);
        assert!(parse_seqset(&mut c).is_err());
    }
}
