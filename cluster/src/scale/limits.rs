//! The bounds of one day: `scale.min` and `scale.max`, or a surge's.

use baton_spec::service::Date;

use super::Policy;

/// The bounds a decision is clamped to, and where each comes from (for the reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The fewest instances, at most `max`.
    pub min: u32,
    /// The most instances.
    pub max: u32,
    /// Where `max` comes from: `scale.max` or `surge 2026-11-27`.
    pub why: String,
    /// Where `min` comes from: `scale.min` or `surge 2026-11-27`.
    pub min_why: String,
}

/// The bounds on `today` (the date of the decided bucket in the cluster's time zone). The spec
/// refuses a date in two surge entries; should two match anyway, the one with the larger `max`
/// wins, so that the order of the entries never matters.
pub fn limits(policy: &Policy, today: Date) -> Limits {
    let surge = policy
        .surges
        .iter()
        .filter(|s| s.dates.contains(&today))
        .max_by_key(|s| (s.max, s.min));
    let (max, why) = match surge {
        Some(s) => (s.max, format!("surge {today}")),
        None => (policy.max, "scale.max".to_string()),
    };
    let surge_min = surge.and_then(|s| s.min).unwrap_or(0);
    let (min, min_why) = if surge_min > policy.min {
        (surge_min, format!("surge {today}"))
    } else {
        (policy.min, "scale.min".to_string())
    };
    Limits {
        min: min.min(max),
        max,
        why,
        min_why,
    }
}
