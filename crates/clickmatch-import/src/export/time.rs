//! Conversion times as networks export them.
//!
//! - Unix seconds (10 digits, Everflow's `conversion_unix_timestamp`) or milliseconds (13);
//! - ISO 8601 with an offset or `Z` (`2026-12-01T10:00:00Z`, `2026-12-01 10:00:00+01:00`);
//! - a local date and time: `2026-12-01 10:00:00` (TUNE), `2026-12-01T10:00`, `12/01/2026
//!   10:00:00` or `12/1/2026 10:00:00 AM` (CAKE, month first), or a date alone (midnight).
//!
//! Local times are in the account's time zone the export was made in: `tz`. A local time
//! that falls twice (the autumn DST change) is the earlier instant; one that never happens
//! (the spring gap) is refused.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

const LOCAL: [&str; 8] = [
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
];

const DATES: [&str; 2] = ["%Y-%m-%d", "%m/%d/%Y"];

/// The instant `text` names (local times in `tz`), or what was expected.
pub fn parse_time(text: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    let expected = || {
        "expected a time such as 2026-12-01 10:00:00, 2026-12-01T10:00:00Z, \
         12/01/2026 10:00:00 or Unix seconds"
            .to_string()
    };
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = text.parse().map_err(|_| expected())?;
        let instant = match text.len() {
            9 | 10 => DateTime::from_timestamp(n, 0),
            12 | 13 => DateTime::from_timestamp_millis(n),
            _ => None,
        };
        return instant.ok_or_else(expected);
    }
    // An offset or `Z` says which instant; a space in place of the `T` is common.
    if let Ok(instant) = DateTime::parse_from_rfc3339(&text.replacen(' ', "T", 1)) {
        return Ok(instant.with_timezone(&Utc));
    }
    let local = LOCAL
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .or_else(|| {
            DATES
                .iter()
                .find_map(|f| NaiveDate::parse_from_str(text, f).ok())
                .map(|d| d.and_time(NaiveTime::MIN))
        })
        .ok_or_else(expected)?;
    tz.from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("{local} does not exist in {tz} (a daylight-saving gap)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn every_export_form() {
        let utc_tz = Tz::UTC;
        for (text, instant) in [
            ("1764583200", "2025-12-01T10:00:00Z"),
            ("1764583200000", "2025-12-01T10:00:00Z"),
            ("2025-12-01T10:00:00Z", "2025-12-01T10:00:00Z"),
            ("2025-12-01 11:00:00+01:00", "2025-12-01T10:00:00Z"),
            ("2025-12-01 10:00:00", "2025-12-01T10:00:00Z"),
            ("2025-12-01 10:00:00.250", "2025-12-01T10:00:00.250Z"),
            ("2025-12-01T10:00", "2025-12-01T10:00:00Z"),
            ("12/01/2025 10:00:00", "2025-12-01T10:00:00Z"),
            ("12/1/2025 10:00:00 AM", "2025-12-01T10:00:00Z"),
            ("12/1/2025 1:30 PM", "2025-12-01T13:30:00Z"),
            ("2025-12-01", "2025-12-01T00:00:00Z"),
        ] {
            assert_eq!(parse_time(text, utc_tz), Ok(utc(instant)), "{text}");
        }
    }

    #[test]
    fn local_times_in_the_accounts_zone() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            parse_time("2025-12-01 11:00:00", berlin),
            Ok(utc("2025-12-01T10:00:00Z"))
        );
        // An explicit offset wins over the zone.
        assert_eq!(
            parse_time("2025-12-01T11:00:00Z", berlin),
            Ok(utc("2025-12-01T11:00:00Z"))
        );
        // Autumn: 02:30 happens twice, the earlier is taken; spring: 02:30 never happens.
        assert_eq!(
            parse_time("2025-10-26 02:30:00", berlin),
            Ok(utc("2025-10-26T00:30:00Z"))
        );
        assert!(parse_time("2025-03-30 02:30:00", berlin)
            .unwrap_err()
            .contains("daylight-saving gap"));
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for bad in [
            "",
            "yesterday",
            "2025-13-01",
            "01.12.2025 10:00",
            "123",
            "31/12/2025",
        ] {
            assert!(parse_time(bad, Tz::UTC).is_err(), "{bad}");
        }
    }
}
