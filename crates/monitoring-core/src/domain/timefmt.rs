//! The one timestamp format the bundle writes: RFC 3339, UTC, milliseconds.

use time::OffsetDateTime;
use time::macros::format_description;

/// `2026-11-30T12:00:00.123Z`.
pub fn rfc3339_millis(at: OffsetDateTime) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    let at = at.to_offset(time::UtcOffset::UTC);
    // Formatting fails only for years outside 0..=9999, which no clock
    // produces; the unix timestamp is a readable fallback rather than a panic.
    at.format(&format)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn always_three_fraction_digits() {
        assert_eq!(
            rfc3339_millis(datetime!(2026-11-30 12:00:00 UTC)),
            "2026-11-30T12:00:00.000Z"
        );
        assert_eq!(
            rfc3339_millis(datetime!(2026-11-30 12:00:00.5 UTC)),
            "2026-11-30T12:00:00.500Z"
        );
        assert_eq!(
            rfc3339_millis(datetime!(2026-11-30 12:00:00.123456 UTC)),
            "2026-11-30T12:00:00.123Z"
        );
        assert_eq!(
            rfc3339_millis(datetime!(2026-11-30 14:00:00 +02:00)),
            "2026-11-30T12:00:00.000Z"
        );
    }
}
