//! Durations written as text: `"500ms"`, `"5s"`, `"2m"`, `"1h"`, or several parts from the
//! largest unit down, such as `"1m30s"` or `"1h30m"`. Whole numbers only; the finest unit is the
//! millisecond.

use std::time::Duration;

/// Units from the largest down, with their length in milliseconds.
const UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was written.
    #[error("a duration cannot be empty: write for example \"5s\"")]
    Empty,
    /// A number without a unit, such as `"10"`.
    #[error("{text:?} has no unit: write for example \"{text}s\" (units: ms, s, m, h)")]
    MissingUnit {
        /// The text as written.
        text: String,
    },
    /// A unit that is not one of ms, s, m, h.
    #[error("{text:?} uses the unknown unit {unit:?}: use ms, s, m or h")]
    UnknownUnit {
        /// The text as written.
        text: String,
        /// The unit found.
        unit: String,
    },
    /// Something other than whole numbers followed by units.
    #[error("{text:?} is not a duration: write whole numbers with units, for example \"500ms\", \"5s\", \"1m30s\"")]
    Malformed {
        /// The text as written.
        text: String,
    },
    /// A unit repeated, or smaller units before larger ones.
    #[error("{text:?} repeats a unit or puts a smaller unit first: write for example \"1m30s\"")]
    UnitOrder {
        /// The text as written.
        text: String,
    },
    /// A value beyond what baton can represent.
    #[error("{text:?} is too long a duration")]
    TooLarge {
        /// The text as written.
        text: String,
    },
}

/// Parses a duration such as `"500ms"`, `"5s"`, `"2m"`, `"1h"` or `"1m30s"`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut rest = text;
    let mut total: u64 = 0;
    // Index into UNITS of the last unit used; later units must come strictly after it.
    let mut last_unit: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(DurationError::Malformed {
                text: text.to_string(),
            });
        }
        let (number, after) = rest.split_at(digits);
        let unit_len = after
            .bytes()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(if after.is_empty() {
                DurationError::MissingUnit {
                    text: text.to_string(),
                }
            } else {
                DurationError::Malformed {
                    text: text.to_string(),
                }
            });
        }
        let Some(index) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(DurationError::UnknownUnit {
                text: text.to_string(),
                unit: unit.to_string(),
            });
        };
        if last_unit.is_some_and(|last| index <= last) {
            return Err(DurationError::UnitOrder {
                text: text.to_string(),
            });
        }
        last_unit = Some(index);
        let too_large = || DurationError::TooLarge {
            text: text.to_string(),
        };
        let value: u64 = number.parse().map_err(|_| too_large())?;
        let millis = value.checked_mul(UNITS[index].1).ok_or_else(too_large)?;
        total = total.checked_add(millis).ok_or_else(too_large)?;
        rest = after;
    }
    Ok(Duration::from_millis(total))
}

/// Writes a duration in the canonical form [`parse_duration`] reads back: largest units first,
/// zero parts left out, `"0s"` for zero. Sub-millisecond parts are dropped.
pub fn format_duration(duration: Duration) -> String {
    let mut millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    if millis == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, length) in UNITS {
        let count = millis / length;
        if count > 0 {
            out.push_str(&format!("{count}{unit}"));
            millis -= count * length;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn parses_every_unit_and_combinations() {
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("5s"), Ok(ms(5_000)));
        assert_eq!(parse_duration("2m"), Ok(ms(120_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(parse_duration("1h2m3s4ms"), Ok(ms(3_723_004)));
        assert_eq!(parse_duration("0s"), Ok(ms(0)));
        assert_eq!(parse_duration("007s"), Ok(ms(7_000)));
        assert_eq!(parse_duration("90s"), Ok(ms(90_000)));
    }

    #[test]
    fn rejects_malformed_text_with_the_reason() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        let missing = parse_duration("10").unwrap_err();
        assert!(matches!(missing, DurationError::MissingUnit { .. }));
        assert!(missing.to_string().contains("\"10s\""), "{missing}");
        assert!(matches!(
            parse_duration("5d"),
            Err(DurationError::UnknownUnit { ref unit, .. }) if unit == "d"
        ));
        assert!(matches!(
            parse_duration("5S"),
            Err(DurationError::UnknownUnit { .. })
        ));
        for bad in [
            "s", "-5s", "1.5s", " 5s", "5s ", "5 s", "5s!", "+5s", "5_000ms",
        ] {
            assert!(
                matches!(parse_duration(bad), Err(DurationError::Malformed { .. })),
                "{bad:?} gave {:?}",
                parse_duration(bad)
            );
        }
        for bad in ["5s5s", "30s1m", "1ms1s", "1s1s1ms"] {
            assert!(
                matches!(parse_duration(bad), Err(DurationError::UnitOrder { .. })),
                "{bad:?}"
            );
        }
        for bad in [
            "99999999999999999999999ms",
            "18446744073709551615h",
            "5124095576030431h",
        ] {
            assert!(
                matches!(parse_duration(bad), Err(DurationError::TooLarge { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn formatting_round_trips() {
        // Property-style: a spread of values, including unit boundaries, round-trip exactly.
        let mut values = vec![
            0, 1, 999, 1_000, 1_001, 59_999, 60_000, 3_599_999, 3_600_000,
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x % 400_000_000_000);
        }
        for v in values {
            let text = format_duration(ms(v));
            assert_eq!(parse_duration(&text), Ok(ms(v)), "{v} -> {text}");
        }
        assert_eq!(format_duration(ms(90_000)), "1m30s");
        assert_eq!(format_duration(ms(1_500)), "1s500ms");
        assert_eq!(format_duration(Duration::from_micros(1_500)), "1ms");
    }
}
