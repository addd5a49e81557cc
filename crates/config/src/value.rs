//! Typed parameter values: boolean, integer, time and size, parsed as
//! Postfix's mail_conf_bool, mail_conf_int, mail_conf_time and
//! mail_conf_long do, with bounds.

use crate::params::Kind;

/// What is wrong with a value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// Not `yes` or `no`.
    Boolean,
    /// Not a decimal number.
    Numerical,
    /// Not a number with an optional `s`, `m`, `h`, `d` or `w` unit.
    Time,
    /// Below the parameter's minimum (shown in the parameter's terms).
    TooSmall(String),
    /// Above the parameter's maximum.
    TooLarge(String),
    /// A word that is not one of an enumerated parameter's choices
    /// ([`crate::enums`]).
    UnknownValue(String),
}

impl Problem {
    /// The message for parameter `name` with value `value`, as Postfix words it.
    pub fn message(&self, name: &str, value: &str) -> String {
        match self {
            Problem::Boolean => format!("bad boolean configuration: {name} = {value}"),
            Problem::Numerical => format!("bad numerical configuration: {name} = {value}"),
            Problem::Time => format!("parameter {name}: bad time value or unit: {value}"),
            Problem::TooSmall(min) => format!("invalid {name} parameter value {value} < {min}"),
            Problem::TooLarge(max) => format!("invalid {name} parameter value {value} > {max}"),
            Problem::UnknownValue(word) => {
                format!("unknown {name} value \"{word}\" in \"{value}\"")
            }
        }
    }
}

/// `yes` or `no`, case-insensitive.
pub fn parse_bool(v: &str) -> Option<bool> {
    if v.eq_ignore_ascii_case("yes") {
        Some(true)
    } else if v.eq_ignore_ascii_case("no") {
        Some(false)
    } else {
        None
    }
}

/// A decimal integer with an optional sign.
pub fn parse_int(v: &str) -> Option<i64> {
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// A size in bytes: decimal digits.
pub fn parse_size(v: &str) -> Option<u64> {
    if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// Seconds in one of the time units `s`, `m`, `h`, `d`, `w`.
pub fn unit_seconds(unit: char) -> Option<u64> {
    match unit {
        's' => Some(1),
        'm' => Some(60),
        'h' => Some(3600),
        'd' => Some(86400),
        'w' => Some(604_800),
        _ => None,
    }
}

/// A time in seconds: digits and an optional unit; a bare number is in
/// `default_unit`.
pub fn parse_time(v: &str, default_unit: char) -> Option<u64> {
    let digits_len = v.bytes().take_while(u8::is_ascii_digit).count();
    let (digits, unit) = v.split_at(digits_len);
    if digits.is_empty() {
        return None;
    }
    let unit = match unit.len() {
        0 => default_unit,
        1 => unit.chars().next()?,
        _ => return None,
    };
    let n: u64 = digits.parse().ok()?;
    n.checked_mul(unit_seconds(unit)?)
}

/// Checks `value` against a parameter type and its bounds.
///
/// # Errors
/// The [`Problem`] found.
pub fn check(kind: &Kind, value: &str) -> Result<(), Problem> {
    match *kind {
        Kind::Str => Ok(()),
        Kind::Bool => parse_bool(value).map(|_| ()).ok_or(Problem::Boolean),
        Kind::Int { min, max } => {
            let n = parse_int(value).ok_or(Problem::Numerical)?;
            bounds(n, min, max, |x| x.to_string())
        }
        Kind::Size { min, max } => {
            let n = parse_size(value).ok_or(Problem::Numerical)?;
            bounds(n, min, max, |x| x.to_string())
        }
        Kind::Time { unit, min, max } => {
            let n = parse_time(value, unit).ok_or(Problem::Time)?;
            bounds(n, min, max, |x| format!("{x}s"))
        }
    }
}

fn bounds<T: PartialOrd + Copy>(
    n: T,
    min: T,
    max: T,
    show: impl Fn(T) -> String,
) -> Result<(), Problem> {
    if n < min {
        Err(Problem::TooSmall(show(min)))
    } else if n > max {
        Err(Problem::TooLarge(show(max)))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("yes"), Some(true));
        assert_eq!(parse_bool("YES"), Some(true));
        assert_eq!(parse_bool("No"), Some(false));
        assert_eq!(parse_bool("true"), None);
        assert_eq!(parse_bool(""), None);
    }

    #[test]
    fn integers_and_sizes() {
        assert_eq!(parse_int("42"), Some(42));
        assert_eq!(parse_int("-1"), Some(-1));
        assert_eq!(parse_int("10x"), None);
        assert_eq!(parse_int(""), None);
        assert_eq!(parse_int("99999999999999999999999"), None);
        assert_eq!(parse_size("10240000"), Some(10_240_000));
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("1k"), None);
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("10", 's'), Some(10));
        assert_eq!(parse_time("10s", 'd'), Some(10));
        assert_eq!(parse_time("5", 'd'), Some(432_000));
        assert_eq!(parse_time("2m", 's'), Some(120));
        assert_eq!(parse_time("1h", 's'), Some(3600));
        assert_eq!(parse_time("1w", 's'), Some(604_800));
        assert_eq!(parse_time("1x", 's'), None);
        assert_eq!(parse_time("1hh", 's'), None);
        assert_eq!(parse_time("h", 's'), None);
        assert_eq!(parse_time("", 's'), None);
        assert_eq!(parse_time("99999999999999999999w", 's'), None);
    }

    #[test]
    fn bounds_checked() {
        let k = Kind::Int { min: 1, max: 10 };
        assert_eq!(check(&k, "5"), Ok(()));
        assert_eq!(check(&k, "0"), Err(Problem::TooSmall("1".into())));
        assert_eq!(check(&k, "11"), Err(Problem::TooLarge("10".into())));
        assert_eq!(
            Problem::Numerical.message("message_size_limit", "10x"),
            "bad numerical configuration: message_size_limit = 10x"
        );
    }
}
