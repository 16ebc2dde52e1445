//! Properties of record admission: whatever a key holder sends, a record's name becomes a file
//! name only if it is a service name, its time stays within a day of the clock, its text within
//! its bound, and the state within [`MAX_RECORDS`] names.

use baton_spec::service::is_service_name;
use proptest::prelude::*;

use super::*;
use crate::desired::{Clock, Desired, Version};

/// A clock reading well inside the range of real ones.
const NOW: u64 = 1_800_000_000_000;

fn record(name: &str, text: Option<String>, time: u64) -> Record {
    Record {
        name: name.to_string(),
        text,
        version: Version {
            time,
            board: "pi-a".into(),
        },
    }
}

/// Names of every kind: service names, near misses, paths, and any text at all.
fn name_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9-]{0,70}",
        "[a-zA-Z0-9./_ -]{0,20}",
        "(\\.\\./|/)?[a-z]{0,8}(/|\\.\\.)?[a-z]{0,8}",
        any::<String>(),
    ]
}

fn text_like() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof!["[ -~\t\n\r]{0,200}", any::<String>()])
}

proptest! {
    /// Admission takes exactly the names the service-name rule takes: never one with `/` or `..`
    /// (which would leave `services/` on the card).
    #[test]
    fn admission_takes_exactly_the_service_names(name in name_like(), text in text_like()) {
        let checked = check(&record(&name, text.clone(), NOW), NOW);
        if is_service_name(&name) {
            prop_assert_ne!(&checked, &Err(Reason::Name));
        } else {
            prop_assert_eq!(&checked, &Err(Reason::Name));
        }
        if name.contains('/') || name.contains("..") {
            prop_assert_eq!(checked, Err(Reason::Name));
        }
        // And through a merge: a name refused never enters the state.
        let mut desired = Desired::default();
        let changes = desired.merge([record(&name, text, NOW)], &mut Clock::default(), NOW);
        if !is_service_name(&name) {
            prop_assert!(desired.get(&name).is_none());
            prop_assert_eq!(changes.refused_count, 1);
        }
    }

    /// A time further ahead of the clock than [`crate::plausible::MAX_AHEAD`] is refused, and
    /// one within it is not refused for its time.
    #[test]
    fn times_beyond_the_day_ahead_are_refused(now in 0..u64::MAX / 2, ahead in any::<u64>()) {
        let latest = crate::plausible::latest_time(now);
        let time = now.saturating_add(ahead);
        let checked = check(&record("web", Some("a = 1".into()), time), now);
        if time > latest {
            prop_assert_eq!(checked, Err(Reason::Future { time, latest }));
        } else {
            prop_assert_eq!(checked, Ok(()));
        }
    }

    /// A text longer than [`MAX_SPEC_TEXT`] bytes is refused however it is made up.
    #[test]
    fn oversize_texts_are_refused(
        unit in "[ -~\t\n\r]{1,4}|[\u{80}-\u{10ffff}]",
        extra in 1usize..4096,
    ) {
        let mut text = String::new();
        while text.len() < MAX_SPEC_TEXT + extra {
            text.push_str(&unit);
        }
        let len = text.len();
        let checked = check(&record("web", Some(text), NOW), NOW);
        // Checked before the characters: a unit with control characters is refused for size too.
        prop_assert_eq!(checked, Err(Reason::TooLarge { len }));
    }

}

/// A quarter of the cases (`PROPTEST_CASES`, 256 by default), at least 8: each case merges
/// hundreds of records.
fn quarter() -> ProptestConfig {
    let base = ProptestConfig::default();
    ProptestConfig {
        cases: (base.cases / 4).max(8),
        ..base
    }
}

proptest! {
    #![proptest_config(quarter())]

    /// Merges of arbitrary records never hold more than [`MAX_RECORDS`] names, and hold only
    /// records that pass [`check`].
    #[test]
    fn merges_stay_within_the_most_records(
        batches in proptest::collection::vec(
            proptest::collection::vec(
                (
                    prop_oneof![(0..600u32).prop_map(|i| format!("s{i}")), name_like()],
                    text_like(),
                    prop_oneof![NOW - 1000..NOW + 1000, any::<u64>()],
                ),
                0..400,
            ),
            1..4,
        ),
    ) {
        let mut desired = Desired::default();
        let mut clock = Clock::default();
        for batch in batches {
            let records: Vec<Record> = batch
                .iter()
                .map(|(name, text, time)| record(name, text.clone(), *time))
                .collect();
            let failing = records.iter().filter(|r| check(r, NOW).is_err()).count();
            let changes = desired.merge(records, &mut clock, NOW);
            prop_assert!(changes.refused_count >= failing);
            prop_assert!(desired.records().count() <= MAX_RECORDS);
            for held in desired.records() {
                prop_assert_eq!(check(held, NOW), Ok(()), "{:?}", held.name);
            }
        }
    }
}
