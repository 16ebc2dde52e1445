//! Times in Debian archive indices: `Date` and `Valid-Until` of a `Release`, and the allowance
//! for a builder clock that runs a little behind the archive's.
//!
//! The archive writes them as RFC 2822 dates in UTC (`Sat, 10 Jan 2026 09:56:44 UTC`); apt also
//! accepts the RFC 2822 zones (`GMT`, `+0000`, …), and so does this.

use chrono::{DateTime, Duration, Utc};

/// How far in the future a signed time (an index's `Date`, a signature's creation time) may be
/// before it is refused as "not valid yet". Everything it applies to is signed, so it cannot be
/// forged by a mirror; what it guards against is a builder whose clock runs far behind, which
/// would otherwise accept indices whose `Valid-Until` has long passed. Five minutes covers the
/// drift of a laptop or CI machine that was suspended or not yet synchronised, yet keeps such a
/// clock from stretching an index's validity by more than that. (apt's default is stricter,
/// seconds; it runs on machines that are expected to keep NTP time.)
pub const FUTURE_ALLOWANCE: Duration = Duration::minutes(5);

/// Parses an index date (`Sat, 10 Jan 2026 09:56:44 UTC`), in UTC.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    let rfc2822 = match text.strip_suffix(" UTC") {
        Some(rest) => format!("{rest} +0000"),
        None => text.to_string(),
    };
    DateTime::parse_from_rfc2822(&rfc2822)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// The date as the archive writes it, `Sat, 10 Jan 2026 09:56:44 UTC`.
pub fn format(date: &DateTime<Utc>) -> String {
    date.format("%a, %d %b %Y %H:%M:%S UTC").to_string()
}

/// The current time.
pub fn now() -> DateTime<Utc> {
    Utc::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_archive_format_and_rfc2822_zones_in_utc() {
        let d = parse("Sat, 10 Jan 2026 09:56:44 UTC").unwrap();
        assert_eq!(d.timestamp(), 1_768_039_004);
        assert_eq!(format(&d), "Sat, 10 Jan 2026 09:56:44 UTC");
        assert_eq!(parse("Sat, 10 Jan 2026 09:56:44 GMT"), Some(d));
        assert_eq!(parse("Sat, 10 Jan 2026 09:56:44 +0000"), Some(d));
        assert_eq!(parse(" 10 Jan 2026 10:56:44 +0100 "), Some(d));
    }

    #[test]
    fn refuses_what_is_not_a_date() {
        for bad in [
            "",
            "yesterday",
            "2026-01-10T09:56:44Z",
            "Sat, 10 Jan 2026 09:56:44",
            "Sat, 31 Feb 2026 09:56:44 UTC",
            "Sat, 10 Jan 2026 25:56:44 UTC",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
