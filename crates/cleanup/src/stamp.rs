//! Dates and message ids in the forms Postfix writes them (mail_date and
//! cleanup's Message-Id).

use std::time::SystemTime;

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// An RFC 5322 date in local time, as Postfix's mail_date writes it:
/// `Mon, 23 Nov 2026 12:57:52 +0100 (CET)`, the day space-padded.
pub(crate) fn mail_date(t: SystemTime) -> String {
    mail_date_in(t, &maillog::time_zone())
}

/// [`mail_date`] in a given zone.
pub(crate) fn mail_date_in(t: SystemTime, tz: &TimeZone) -> String {
    let ts = Timestamp::try_from(t).unwrap_or(Timestamp::UNIX_EPOCH);
    let z = ts.to_zoned_datetime(tz.clone());
    let main = z.strftime("%a, %e %b %Y %H:%M:%S %z").to_string();
    let abbrev = z.strftime("%Z").to_string();
    // Postfix adds the zone name only when it is a name, not an offset.
    if abbrev.is_empty() || abbrev.starts_with(['+', '-']) {
        main
    } else {
        format!("{main} ({abbrev})")
    }
}

/// The Message-Id Postfix makes for a message without one:
/// `YYYYMMDDhhmmss.QUEUEID@myhostname`, the time in UTC.
pub(crate) fn message_id(t: SystemTime, queue_id: &str, myhostname: &str) -> String {
    let ts = Timestamp::try_from(t).unwrap_or(Timestamp::UNIX_EPOCH);
    let stamp = ts.strftime("%Y%m%d%H%M%S").to_string();
    format!("{stamp}.{queue_id}@{myhostname}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn dates_look_like_postfix() {
        let t = UNIX_EPOCH + Duration::from_secs(1_794_000_000);
        assert_eq!(
            mail_date_in(t, &TimeZone::UTC),
            "Fri,  6 Nov 2026 21:20:00 +0000 (UTC)"
        );
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(
            mail_date_in(t, &tz),
            "Fri,  6 Nov 2026 22:20:00 +0100 (CET)"
        );
        let fixed = TimeZone::fixed(jiff::tz::offset(-5));
        assert_eq!(mail_date_in(t, &fixed), "Fri,  6 Nov 2026 16:20:00 -0500");
    }

    #[test]
    fn message_ids() {
        let t = UNIX_EPOCH + Duration::from_secs(1_794_000_000);
        assert_eq!(
            message_id(t, "4XyZ12", "mail.example.org"),
            "20261106212000.4XyZ12@mail.example.org"
        );
    }
}
