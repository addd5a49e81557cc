//! Dates in responses and from APPEND: the INTERNALDATE form
//! `"17-Jul-1996 02:44:25 -0700"` from Unix time and a zone offset, and
//! APPEND's date-time to Unix time.

use crate::parse::{Date, DateTime};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 to (year, month, day) (proleptic Gregorian).
pub fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u8, d: u8) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The INTERNALDATE string (without quotes) for Unix time `t` shown in a
/// zone `zone_minutes` east of UTC.
pub fn internal_date(t: i64, zone_minutes: i16) -> String {
    let local = t.clamp(-(1 << 40), 1 << 40) + i64::from(zone_minutes) * 60;
    let (y, m, d) = civil_from_days(local.div_euclid(86_400));
    let s = local.rem_euclid(86_400);
    let sign = if zone_minutes < 0 { '-' } else { '+' };
    let z = i32::from(zone_minutes).abs();
    format!(
        "{:02}-{}-{:04} {:02}:{:02}:{:02} {}{:02}{:02}",
        d,
        MONTHS[usize::from(m.clamp(1, 12)) - 1],
        y,
        s / 3600,
        s % 3600 / 60,
        s % 60,
        sign,
        z / 60,
        z % 60
    )
}

/// The calendar date of Unix time `t` in a zone (SEARCH's internal date).
pub fn date_of(t: i64, zone_minutes: i16) -> Date {
    let (y, month, day) = civil_from_days(
        (t.clamp(-(1 << 40), 1 << 40) + i64::from(zone_minutes) * 60).div_euclid(86_400),
    );
    Date {
        year: y.clamp(0, 9999) as u16,
        month,
        day,
    }
}

impl DateTime {
    /// Unix time of an APPEND date-time.
    pub fn to_unix(&self) -> i64 {
        let days = days_from_civil(i64::from(self.date.year), self.date.month, self.date.day);
        let (h, m, s) = self.time;
        days * 86_400 + i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s)
            - i64::from(self.zone_minutes) * 60
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_dates() {
        assert_eq!(internal_date(0, 0), "01-Jan-1970 00:00:00 +0000");
        assert_eq!(
            internal_date(837_596_665, -420),
            "17-Jul-1996 02:44:25 -0700"
        );
        assert_eq!(internal_date(951_782_400, 90), "29-Feb-2000 01:30:00 +0130");
        let dt = DateTime {
            date: Date {
                year: 1996,
                month: 7,
                day: 17,
            },
            time: (2, 44, 25),
            zone_minutes: -420,
        };
        assert_eq!(dt.to_unix(), 837_596_665);
        assert_eq!(
            date_of(837_596_665, -420),
            Date {
                year: 1996,
                month: 7,
                day: 17
            }
        );
        assert_eq!(
            date_of(837_596_665, 0),
            Date {
                year: 1996,
                month: 7,
                day: 17
            }
        );
        let _ = internal_date(i64::MAX, i16::MAX);
        let _ = date_of(i64::MIN, i16::MIN);
        for d in [-1000, 0, 59, 11_016, 20_000, 2_932_896] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }
}
