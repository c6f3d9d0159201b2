//! Timestamps: UTC with microsecond precision, written as `2024-01-01T12:00:00.123456Z`.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};

/// A point in time as stored and shown everywhere in infrastream.
pub type Timestamp = DateTime<Utc>;

/// The current time, truncated to microseconds so that what is stored equals what is shown.
pub fn now() -> Timestamp {
    Utc::now().trunc_subsecs(6)
}

/// RFC 3339, UTC, always six fractional digits.
pub fn format_timestamp(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses any RFC 3339 timestamp and converts it to UTC, truncated to microseconds.
pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc).trunc_subsecs(6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_has_six_digits_and_z() {
        let t = parse_timestamp("2024-01-01T13:00:00.1234567+01:00").unwrap();
        assert_eq!(format_timestamp(&t), "2024-01-01T12:00:00.123456Z");
    }

    #[test]
    fn parse_rejects_garbage() {
        assert!(parse_timestamp("yesterday").is_none());
    }
}
