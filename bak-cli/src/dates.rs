//! Dates as the tools accept them (RFC 3339 or plain dates, UTC). Printing is
//! `bak_core::report::Timestamp`'s.

use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

/// Parse a date the user typed: RFC 3339 (`2026-12-31T23:00:00Z`), a date and time
/// (`2026-12-31 23:00:00` or `2026-12-31T23:00`, taken as UTC) or a date (`2026-12-31`, midnight
/// UTC). Returns microseconds since the epoch.
pub fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some((t.unix_timestamp_nanos() / 1000) as i64);
    }
    let date_part = s.get(..10)?;
    let fd = time::macros::format_description!("[year]-[month]-[day]");
    let d = Date::parse(date_part, fd).ok()?;
    let rest = s[10..].trim_start_matches(['T', ' ']);
    let t = if rest.is_empty() {
        Time::MIDNIGHT
    } else {
        let f1 = time::macros::format_description!("[hour]:[minute]:[second]");
        let f2 = time::macros::format_description!("[hour]:[minute]");
        Time::parse(rest, f1)
            .or_else(|_| Time::parse(rest, f2))
            .ok()?
    };
    Some(
        (PrimitiveDateTime::new(d, t)
            .assume_utc()
            .unix_timestamp_nanos()
            / 1000) as i64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(
            parse_date("2023-11-14T22:13:20Z"),
            Some(1_700_000_000_000_000)
        );
        assert_eq!(
            parse_date("2023-11-14 22:13:20"),
            Some(1_700_000_000_000_000)
        );
        assert_eq!(parse_date("2023-11-14T22:13"), Some(1_699_999_980_000_000));
        assert_eq!(parse_date("1970-01-02"), Some(86_400_000_000));
        assert_eq!(parse_date("yesterday"), None);
        assert_eq!(parse_date("2023-13-01"), None);
    }
}
