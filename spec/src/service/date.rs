//! Calendar dates (`2026-11-27`) for the surge calendar.

use std::fmt;

/// A real calendar date in the proleptic Gregorian calendar, years 1970 to 9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// The year, 1970..=9999.
    pub year: u16,
    /// The month, 1..=12.
    pub month: u8,
    /// The day of the month, 1..=28/29/30/31.
    pub day: u8,
}

/// Why a text is not a calendar date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// Not of the shape `YYYY-MM-DD`.
    #[error("{text:?} is not a date: write YYYY-MM-DD, for example \"2026-11-27\"")]
    Malformed {
        /// The text as written.
        text: String,
    },
    /// The right shape, but no such day exists (for example February 30).
    #[error("{text:?} is not a day of the calendar")]
    NoSuchDay {
        /// The text as written.
        text: String,
    },
    /// A year outside 1970..=9999.
    #[error("{text:?} is outside the years 1970 to 9999")]
    YearOutOfRange {
        /// The text as written.
        text: String,
    },
}

impl Date {
    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Result<Date, DateError> {
        let malformed = || DateError::Malformed {
            text: text.to_string(),
        };
        let bytes = text.as_bytes();
        let shaped = bytes.len() == 10
            && bytes[4] == b'-'
            && bytes[7] == b'-'
            && bytes
                .iter()
                .enumerate()
                .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
        if !shaped {
            return Err(malformed());
        }
        let year: u16 = text[0..4].parse().map_err(|_| malformed())?;
        let month: u8 = text[5..7].parse().map_err(|_| malformed())?;
        let day: u8 = text[8..10].parse().map_err(|_| malformed())?;
        if !(1970..=9999).contains(&year) {
            return Err(DateError::YearOutOfRange {
                text: text.to_string(),
            });
        }
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return Err(DateError::NoSuchDay {
                text: text.to_string(),
            });
        }
        Ok(Date { year, month, day })
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn is_leap(year: u16) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_dates_only() {
        assert_eq!(
            Date::parse("2026-11-27"),
            Ok(Date {
                year: 2026,
                month: 11,
                day: 27
            })
        );
        assert!(Date::parse("2024-02-29").is_ok());
        assert!(Date::parse("2000-02-29").is_ok());
        for no_such in [
            "2026-02-29",
            "2100-02-29",
            "2026-04-31",
            "2026-13-01",
            "2026-00-10",
            "2026-01-00",
        ] {
            assert!(
                matches!(Date::parse(no_such), Err(DateError::NoSuchDay { .. })),
                "{no_such}"
            );
        }
        for malformed in [
            "2026-1-27",
            "26-11-27",
            "2026/11/27",
            "2026-11-27T00:00:00",
            "",
            "２０２６-11-27",
            "2026-+1-27",
        ] {
            assert!(
                matches!(Date::parse(malformed), Err(DateError::Malformed { .. })),
                "{malformed}"
            );
        }
        assert!(matches!(
            Date::parse("1969-12-31"),
            Err(DateError::YearOutOfRange { .. })
        ));
    }

    #[test]
    fn every_day_of_a_leap_and_a_common_year_round_trips() {
        for year in [2026u16, 2028] {
            let mut count = 0;
            for month in 1..=12u8 {
                for day in 1..=31u8 {
                    let text = format!("{year:04}-{month:02}-{day:02}");
                    if let Ok(d) = Date::parse(&text) {
                        assert_eq!(d.to_string(), text);
                        count += 1;
                    }
                }
            }
            assert_eq!(count, if year == 2028 { 366 } else { 365 });
        }
    }
}
