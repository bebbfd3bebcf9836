//! Dates as the tools accept them (RFC 3339 or plain dates, UTC). Printing is
//! `bak_core::report::Timestamp`'s.

use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

/// Parse a date the user typed: a date (`2026-12-31`, midnight UTC), or a date and a time
/// (`2026-12-31T23:00`, `2026-12-31 23:00:00`, `...23:00:00.250`), the time in UTC unless it
/// ends in `Z` or an offset (`+02:00`, `-0500`), as RFC 3339 writes. Returns microseconds since
/// the epoch; `None` for anything else, or a date outside years 1 to 9999.
pub fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some((t.unix_timestamp_nanos() / 1000) as i64);
    }
    let date_part = s.get(..10)?;
    let fd = time::macros::format_description!("[year]-[month]-[day]");
    let d = Date::parse(date_part, fd).ok()?;
    let rest = s[10..].strip_prefix(['T', 't', ' ']).unwrap_or(&s[10..]);
    let (rest, offset_s) = split_offset(rest)?;
    let t = if rest.is_empty() {
        if s.len() > 10 {
            return None; // a zone or a `T` needs a time with it
        }
        Time::MIDNIGHT
    } else {
        let f0 = time::macros::format_description!("[hour]:[minute]:[second].[subsecond]");
        let f1 = time::macros::format_description!("[hour]:[minute]:[second]");
        let f2 = time::macros::format_description!("[hour]:[minute]");
        Time::parse(rest, f0)
            .or_else(|_| Time::parse(rest, f1))
            .or_else(|_| Time::parse(rest, f2))
            .ok()?
    };
    let utc = PrimitiveDateTime::new(d, t)
        .assume_utc()
        .unix_timestamp_nanos()
        / 1000;
    Some(utc as i64 - offset_s * 1_000_000)
}

/// A time's zone suffix: `Z`, `+HH:MM`, `-HH:MM` or `+HHMM`; gives the rest and the offset in
/// seconds east of UTC. `None` for a malformed zone.
fn split_offset(t: &str) -> Option<(&str, i64)> {
    if let Some(r) = t.strip_suffix(['Z', 'z']) {
        return Some((r, 0));
    }
    // A sign after the time (the date's own dashes are gone by now).
    let Some(i) = t.rfind(['+', '-']) else {
        return Some((t, 0));
    };
    let (time, zone) = t.split_at(i);
    if time.is_empty() {
        return None;
    }
    let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i64 = digits[..2].parse().ok()?;
    let m: i64 = digits[2..].parse().ok()?;
    if h > 23 || m > 59 {
        return None;
    }
    let secs = h * 3600 + m * 60;
    Some((time, if zone.starts_with('-') { -secs } else { secs }))
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
        // The forms --help promises: a zone after HH:MM or HH:MM:SS, fractions of a second.
        assert_eq!(parse_date("2023-11-14T22:13Z"), Some(1_699_999_980_000_000));
        assert_eq!(
            parse_date("2023-11-14T22:13:20z"),
            Some(1_700_000_000_000_000)
        );
        assert_eq!(
            parse_date("2023-11-15T00:13+02:00"),
            Some(1_699_999_980_000_000)
        );
        assert_eq!(
            parse_date("2023-11-14T17:13:20-0500"),
            Some(1_700_000_000_000_000)
        );
        assert_eq!(
            parse_date("2023-11-14 22:13:20.5"),
            Some(1_700_000_000_500_000)
        );
        assert_eq!(parse_date("2023-11-14Z"), None);
        assert_eq!(parse_date("2023-11-14T22:13+25:00"), None);
        assert_eq!(parse_date("2023-11-14T22:13+2"), None);
    }
}
