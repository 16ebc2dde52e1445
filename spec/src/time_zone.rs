//! `[cluster] timezone`: the zone in which the boards read the calendar, so that a surge date
//! starts at local midnight. The IANA time zone database is compiled into the binary (jiff's
//! bundled copy): a board has no `/usr/share/zoneinfo`, and the environment (`TZ`, `TZDIR`) is
//! never consulted, so every board with the same name computes the same dates.

use std::fmt;

use crate::service::Date;

/// The longest zone name read; the longest in the IANA database has about 30 characters.
pub const MAX_NAME_LEN: usize = 64;

/// A time zone of the IANA database, by name. [`Default`] is UTC.
#[derive(Clone)]
pub struct TimeZone {
    /// The name as the database spells it (a lookup ignores ASCII case).
    name: String,
    zone: jiff::tz::TimeZone,
}

/// Why a name is not a time zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeZoneError {
    /// Longer than [`MAX_NAME_LEN`], or with characters no zone name has.
    #[error("{name:?} is not a time zone name: write one of the IANA database, for example \"Europe/Berlin\" or \"UTC\"")]
    Malformed {
        /// The name, cut to [`MAX_NAME_LEN`] characters.
        name: String,
    },
    /// Well formed, but the database has no such zone.
    #[error("{name:?} is not a time zone of the IANA database: write for example \"Europe/Berlin\" or \"UTC\"")]
    Unknown {
        /// The name as written.
        name: String,
    },
}

impl TimeZone {
    /// Coordinated Universal Time.
    pub fn utc() -> TimeZone {
        TimeZone {
            name: "UTC".to_string(),
            zone: jiff::tz::TimeZone::UTC,
        }
    }

    /// Looks `name` up in the bundled database, ignoring ASCII case.
    pub fn parse(name: &str) -> Result<TimeZone, TimeZoneError> {
        let well_formed = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c));
        if !well_formed {
            return Err(TimeZoneError::Malformed {
                name: name.chars().take(MAX_NAME_LEN).collect(),
            });
        }
        let unknown = || TimeZoneError::Unknown {
            name: name.to_string(),
        };
        let zone = jiff::tz::TimeZoneDatabase::bundled()
            .get(name)
            .map_err(|_| unknown())?;
        // The database answers `Etc/Unknown` with jiff's marker for "no zone known", which
        // reads as UTC but would hide the mistake.
        if zone.is_unknown() {
            return Err(unknown());
        }
        let name = zone.iana_name().unwrap_or(name).to_string();
        Ok(TimeZone { name, zone })
    }

    /// The zone's name, as the database spells it (`"Europe/Berlin"`, `"UTC"`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The calendar date in this zone at `unix_ms` (milliseconds since 1970-01-01 00:00 UTC),
    /// daylight saving time included. [`Date`] starts with 1970: the first hours of 1970 west
    /// of Greenwich read as 1970-01-01. jiff ends on the last days of 9999: a later instant
    /// reads as its last one.
    pub fn date_at(&self, unix_ms: u64) -> Date {
        let instant = i64::try_from(unix_ms)
            .ok()
            .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
            .unwrap_or(jiff::Timestamp::MAX);
        // jiff's civil dates end with 9999, so only the lower end needs a clamp.
        let local = self.zone.to_datetime(instant);
        match u16::try_from(local.year()) {
            Ok(year) if year >= 1970 => Date {
                year,
                month: u8::try_from(local.month()).unwrap_or(1),
                day: u8::try_from(local.day()).unwrap_or(1),
            },
            _ => Date {
                year: 1970,
                month: 1,
                day: 1,
            },
        }
    }
}

impl Default for TimeZone {
    fn default() -> TimeZone {
        TimeZone::utc()
    }
}

/// Two zones are equal when they have the same name: the database behind both is the same.
impl PartialEq for TimeZone {
    fn eq(&self, other: &TimeZone) -> bool {
        self.name == other.name
    }
}

impl Eq for TimeZone {}

impl fmt::Debug for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TimeZone").field(&self.name).finish()
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl serde::Serialize for TimeZone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> Date {
        Date::parse(text).expect("a test date")
    }

    fn berlin() -> TimeZone {
        TimeZone::parse("Europe/Berlin").expect("Europe/Berlin is in the database")
    }

    #[test]
    fn the_default_is_utc() {
        assert_eq!(TimeZone::default().name(), "UTC");
        assert_eq!(TimeZone::default(), TimeZone::utc());
        assert_eq!(TimeZone::parse("utc"), Ok(TimeZone::utc()));
        // 2026-01-15T23:30:00Z.
        assert_eq!(
            TimeZone::utc().date_at(1_768_519_800_000),
            date("2026-01-15")
        );
    }

    #[test]
    fn berlin_is_a_day_ahead_of_utc_late_in_the_evening() {
        let (berlin, utc) = (berlin(), TimeZone::utc());
        // 2026-01-15T23:30:00Z is 00:30 on the 16th in Berlin (UTC+1 in winter).
        assert_eq!(utc.date_at(1_768_519_800_000), date("2026-01-15"));
        assert_eq!(berlin.date_at(1_768_519_800_000), date("2026-01-16"));
        // In summer (UTC+2) 22:30Z is already the next day there, and 21:30Z is not.
        assert_eq!(berlin.date_at(1_784_154_600_000), date("2026-07-16"));
        assert_eq!(berlin.date_at(1_784_151_000_000), date("2026-07-15"));
        assert_eq!(utc.date_at(1_784_154_600_000), date("2026-07-15"));
    }

    #[test]
    fn the_days_on_which_berlin_changes_its_clocks_start_at_local_midnight() {
        let berlin = berlin();
        // 2026-03-29 starts at 23:00Z the day before (still UTC+1); the clocks go forward at
        // 01:00Z, so the 30th starts at 22:00Z on the 29th.
        for (unix_ms, local) in [
            (1_774_738_799_000, "2026-03-28"), // 2026-03-28T22:59:59Z
            (1_774_738_801_000, "2026-03-29"), // 2026-03-28T23:00:01Z
            (1_774_821_599_000, "2026-03-29"), // 2026-03-29T21:59:59Z
            (1_774_821_601_000, "2026-03-30"), // 2026-03-29T22:00:01Z
            // 2026-10-25 starts at 22:00Z the day before (still UTC+2); the clocks go back at
            // 01:00Z, so the 26th starts at 23:00Z on the 25th.
            (1_792_879_199_000, "2026-10-24"), // 2026-10-24T21:59:59Z
            (1_792_879_201_000, "2026-10-25"), // 2026-10-24T22:00:01Z
            (1_792_969_199_000, "2026-10-25"), // 2026-10-25T22:59:59Z
            (1_792_969_201_000, "2026-10-26"), // 2026-10-25T23:00:01Z
        ] {
            assert_eq!(berlin.date_at(unix_ms), date(local), "{unix_ms}");
        }
    }

    #[test]
    fn names_are_looked_up_without_regard_to_case_and_kept_as_the_database_spells_them() {
        assert_eq!(berlin().name(), "Europe/Berlin");
        assert_eq!(
            TimeZone::parse("europe/BERLIN").map(|z| z.name().to_string()),
            Ok("Europe/Berlin".to_string())
        );
        assert_eq!(
            TimeZone::parse("America/New_York").map(|z| z.name().to_string()),
            Ok("America/New_York".to_string())
        );
    }

    #[test]
    fn unknown_and_malformed_names_are_refused_with_the_name() {
        for name in [
            "Europe/Atlantis",
            "Etc/Unknown",
            "CET-1CEST",
            "Mars/Olympus_Mons",
        ] {
            let e = TimeZone::parse(name).expect_err(name);
            assert_eq!(
                e,
                TimeZoneError::Unknown {
                    name: name.to_string()
                }
            );
            assert!(e.to_string().contains(name), "{e}");
        }
        let long = "A/".repeat(100);
        for name in [
            "",
            "Europe/Berlin ",
            "../../etc/passwd",
            "Europe\\Berlin",
            long.as_str(),
        ] {
            assert!(
                matches!(TimeZone::parse(name), Err(TimeZoneError::Malformed { .. })),
                "{name:?}"
            );
        }
        let Err(TimeZoneError::Malformed { name }) = TimeZone::parse(&long) else {
            panic!("a long name is malformed");
        };
        assert_eq!(name.len(), MAX_NAME_LEN);
    }

    #[test]
    fn instants_outside_the_dates_held_are_clamped() {
        let new_york = TimeZone::parse("America/New_York").expect("in the database");
        // The epoch is still 1969 in New York.
        assert_eq!(new_york.date_at(0), date("1970-01-01"));
        assert_eq!(TimeZone::utc().date_at(0), date("1970-01-01"));
        assert_eq!(berlin().date_at(u64::MAX).year, 9999);
        assert_eq!(TimeZone::utc().date_at(u64::MAX).year, 9999);
    }
}
