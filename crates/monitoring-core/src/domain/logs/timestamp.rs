//! Timestamps of log records: RFC 3339, Python's asctime, and the UTC
//! offsets a configuration names a text zone with. Read by the parser and
//! by the access-log reader.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Reads `UTC`, `Z`, `+HH:MM`, `-HH:MM` or `+HHMM` as an offset east of UTC
/// in milliseconds.
pub fn parse_utc_offset(text: &str) -> Option<i64> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("utc") || t == "Z" || t.is_empty() {
        return Some(0);
    }
    let (sign, rest) = match t.as_bytes().first()? {
        b'+' => (1, &t[1..]),
        b'-' => (-1, &t[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = digits[2..].parse().ok()?;
    if hours > 14 || minutes > 59 {
        return None;
    }
    Some(sign * (hours * 60 + minutes) * 60_000)
}

/// RFC 3339 (`2025-05-20T10:30:00.123Z`), else Python's asctime.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    if let Some(ms) = parse_utc_millis(text) {
        return Some(ms);
    }
    match OffsetDateTime::parse(text, &Rfc3339) {
        Ok(t) => Some(epoch_ms(t)),
        Err(_) => text.get(..23).and_then(parse_python_time),
    }
}

fn epoch_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The common shape `YYYY-MM-DDTHH:MM:SS.mmmZ` by hand (every JSON record
/// has one); anything else goes to the full RFC 3339 parser.
fn parse_utc_millis(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 24 || b[10] != b'T' || b[19] != b'.' || b[23] != b'Z' {
        return None;
    }
    let mut python = [0u8; 23];
    python.copy_from_slice(&b[..23]);
    python[10] = b' ';
    python[19] = b',';
    parse_python_time(std::str::from_utf8(&python).ok()?)
}

/// `YYYY-MM-DD HH:MM:SS,mmm` (Python's asctime, taken as UTC), by hand:
/// it is tried on every line of every text record.
pub(super) fn parse_python_time(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 23 {
        return None;
    }
    let punct = [
        (4, b'-'),
        (7, b'-'),
        (10, b' '),
        (13, b':'),
        (16, b':'),
        (19, b','),
    ];
    if punct.iter().any(|(i, c)| b[*i] != *c) {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |acc, d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    // The calendar by hand (what `time` checks and computes, without its
    // types): this runs on every line of every text record.
    let year = i64::from(num(0, 4)?);
    let month = num(5, 7)?;
    let day = num(8, 10)?;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if day == 0 || day > month_days || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let millis = num(20, 23)?;
    let days = days_from_civil(year, month, day);
    let seconds = ((days * 24 + i64::from(hour)) * 60 + i64::from(minute)) * 60 + i64::from(second);
    Some(seconds * 1000 + i64::from(millis))
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written calendar agrees with `time` on every day of
    /// several centuries and on the invalid fields.
    #[test]
    fn python_time_agrees_with_the_time_crate() {
        use time::{Date, Month, PrimitiveDateTime, Time};
        let by_time = |text: &str| -> Option<i64> {
            let b = text.as_bytes();
            let num = |from: usize, to: usize| text.get(from..to)?.parse::<u32>().ok();
            if b.len() != 23
                || !b.iter().enumerate().all(|(i, c)| match i {
                    4 | 7 => *c == b'-',
                    10 => *c == b' ',
                    13 | 16 => *c == b':',
                    19 => *c == b',',
                    _ => c.is_ascii_digit(),
                })
            {
                return None;
            }
            let month = Month::try_from(u8::try_from(num(5, 7)?).ok()?).ok()?;
            let date = Date::from_calendar_date(
                i32::try_from(num(0, 4)?).ok()?,
                month,
                u8::try_from(num(8, 10)?).ok()?,
            )
            .ok()?;
            let time = Time::from_hms_milli(
                u8::try_from(num(11, 13)?).ok()?,
                u8::try_from(num(14, 16)?).ok()?,
                u8::try_from(num(17, 19)?).ok()?,
                u16::try_from(num(20, 23)?).ok()?,
            )
            .ok()?;
            Some(epoch_ms(PrimitiveDateTime::new(date, time).assume_utc()))
        };
        let mut day = Date::from_calendar_date(1600, Month::January, 1).unwrap();
        let end = Date::from_calendar_date(2500, Month::January, 1).unwrap();
        while day < end {
            let text = format!(
                "{:04}-{:02}-{:02} 23:59:58,999",
                day.year(),
                u8::from(day.month()),
                day.day()
            );
            assert_eq!(parse_python_time(&text), by_time(&text), "{text}");
            day = day.next_day().unwrap();
        }
        for text in [
            "0000-01-01 00:00:00,000",
            "9999-12-31 23:59:59,999",
            "2024-02-29 12:00:00,000",
            "2023-02-29 12:00:00,000",
            "1900-02-29 12:00:00,000",
            "2000-02-29 12:00:00,000",
            "2025-00-10 12:00:00,000",
            "2025-13-10 12:00:00,000",
            "2025-04-31 12:00:00,000",
            "2025-04-00 12:00:00,000",
            "2025-04-10 24:00:00,000",
            "2025-04-10 23:60:00,000",
            "2025-04-10 23:59:60,000",
            "2025-04-10 23:59:59,9x9",
            "2025-04-10T23:59:59,999",
        ] {
            assert_eq!(parse_python_time(text), by_time(text), "{text}");
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            parse_timestamp("2025-05-20T10:30:00Z"),
            Some(1_747_737_000_000)
        );
        assert_eq!(
            parse_timestamp("2025-05-20T12:30:00.5+02:00"),
            Some(1_747_737_000_500)
        );
        assert_eq!(
            parse_timestamp("2025-05-20 10:30:00,123"),
            Some(1_747_737_000_123)
        );
        assert_eq!(parse_timestamp("2025-05-20 10:30:00.123"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_python_time("2025-02-30 10:30:00,123"), None);
    }

    #[test]
    fn the_fast_timestamp_path_agrees_with_rfc3339() {
        for text in [
            "2025-05-20T10:30:00.123Z",
            "2024-02-29T23:59:59.999Z",
            "1970-01-01T00:00:00.000Z",
        ] {
            let full = OffsetDateTime::parse(text, &Rfc3339).unwrap();
            assert_eq!(parse_timestamp(text), Some(epoch_ms(full)), "{text}");
        }
        assert_eq!(parse_utc_millis("2025-02-30T10:30:00.123Z"), None);
        assert_eq!(parse_utc_millis("2025-05-20T10:30:00.123+00:00"), None);
        assert_eq!(
            parse_timestamp("2025-05-20T12:30:00.123+02:00"),
            parse_timestamp("2025-05-20T10:30:00.123Z")
        );
    }
}
