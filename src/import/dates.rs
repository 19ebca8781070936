//! Reads a `created_at` value as the older backends stored it: Unix
//! seconds, RFC 3339, or the SQL text forms (`2024-05-01 12:30:00`, with
//! optional fractions and offset, as MySQL, SQLite and PostgreSQL print
//! them). A date without an offset is taken to be UTC.

use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};

/// The dates an account may have been made on: from the Unix epoch to the
/// last second of year 9999 (what RFC 3339, and so the API, can write).
const EARLIEST: i64 = 0;
const LATEST: i64 = 253_402_300_799;

/// Seconds since the Unix epoch, or `None` when `raw` is no date this
/// reads, or one outside 1970–9999.
pub fn unix_seconds(raw: &str) -> Option<i64> {
    parse(raw).filter(|seconds| (EARLIEST..=LATEST).contains(seconds))
}

fn parse(raw: &str) -> Option<i64> {
    if let Ok(seconds) = raw.parse::<i64>() {
        return Some(seconds);
    }
    let (date, rest) = raw.split_at_checked(10)?;
    let date = calendar_date(date)?;
    let rest = match rest.strip_prefix(['T', 't', ' ']) {
        Some(rest) => rest,
        None if rest.is_empty() => "00:00:00",
        None => return None,
    };
    let (time, offset) = time_and_offset(rest)?;
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_offset(offset)
            .unix_timestamp(),
    )
}

/// `YYYY-MM-DD`.
fn calendar_date(raw: &str) -> Option<Date> {
    let mut parts = raw.split('-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    if year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return None;
    }
    let month = Month::try_from(digits(month)? as u8).ok()?;
    Date::from_calendar_date(digits(year)? as i32, month, digits(day)? as u8).ok()
}

/// `HH:MM:SS[.fraction][Z|±HH[:MM]|±HHMM]`; the fraction is dropped, as
/// gatehouse keeps whole seconds.
fn time_and_offset(raw: &str) -> Option<(Time, UtcOffset)> {
    let (clock, mut rest) = raw.split_at_checked(8)?;
    let mut parts = clock.split(':');
    let (hour, minute, second) = (parts.next()?, parts.next()?, parts.next()?);
    if [hour, minute, second].iter().any(|p| p.len() != 2) {
        return None;
    }
    let time = Time::from_hms(
        digits(hour)? as u8,
        digits(minute)? as u8,
        digits(second)? as u8,
    )
    .ok()?;
    if let Some(fraction) = rest.strip_prefix('.') {
        let end = fraction
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(fraction.len());
        if end == 0 {
            return None;
        }
        rest = &fraction[end..];
    }
    Some((time, offset(rest.trim_start())?))
}

fn offset(raw: &str) -> Option<UtcOffset> {
    if raw.is_empty() || raw.eq_ignore_ascii_case("z") {
        return Some(UtcOffset::UTC);
    }
    let (sign, rest) = match raw.as_bytes()[0] {
        b'+' => (1, &raw[1..]),
        b'-' => (-1, &raw[1..]),
        _ => return None,
    };
    let (hours, minutes) = match rest.len() {
        2 => (rest, "00"),
        4 => rest.split_at_checked(2)?,
        5 if rest.as_bytes()[2] == b':' => (&rest[..2], &rest[3..]),
        _ => return None,
    };
    let (hours, minutes) = (digits(hours)? as i8, digits(minutes)? as i8);
    UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()
}

/// A run of ASCII digits as a number (no sign, no spaces).
fn digits(raw: &str) -> Option<u32> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::unix_seconds;

    #[test]
    fn reads_the_forms_the_databases_print() {
        let noon = Some(1_714_566_600); // 2024-05-01T12:30:00Z
        for raw in [
            "1714566600",
            "2024-05-01T12:30:00Z",
            "2024-05-01T12:30:00+00:00",
            "2024-05-01T14:30:00+02:00",
            "2024-05-01 12:30:00",
            "2024-05-01 12:30:00.123456",
            "2024-05-01 12:30:00.5+00",
            "2024-05-01 07:30:00-0500",
        ] {
            assert_eq!(unix_seconds(raw), noon, "{raw}");
        }
        assert_eq!(unix_seconds("2024-05-01"), Some(1_714_521_600));
        assert_eq!(unix_seconds("0"), Some(0));
        assert_eq!(unix_seconds("9999-12-31T23:59:59Z"), Some(253_402_300_799));
    }

    #[test]
    fn refuses_what_is_not_a_date() {
        for raw in [
            "",
            "yesterday",
            "2024-13-01 00:00:00",
            "2024-02-30",
            "2024-05-01 25:00:00",
            "2024-05-01 12:30",
            "2024-05-01 12:30:00.",
            "2024-05-01 12:30:00+1",
            "2024-05-01X12:30:00",
            "+2024-05-01",
            "99999999999999999999",
            "١٢٣٤-05-01",
            "-100000000000",
            "-1",
            "253402300800",
            "1969-12-31 23:59:59",
            "2024-05-01 12:30:00+aé1",
        ] {
            assert_eq!(unix_seconds(raw), None, "{raw:?}");
        }
    }
}
