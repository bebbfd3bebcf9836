//! Dates in messages: RFC 3339 in UTC. (The tools' own date input and output is bak-cli's.)

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Format microseconds since the Unix epoch as RFC 3339 UTC, to the second.
pub(crate) fn format_us(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("@{secs}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(format_us(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_us(1_700_000_000_123_456), "2023-11-14T22:13:20Z");
    }
}
