//! How many instances of a service to run, from the load the boards measure and gossip
//! (docs/design/autoscaling.md, sections 1 and 2).
//!
//! Nothing here does I/O or reads a clock: the caller passes the time, the policy and the
//! gossiped tables in, as for [`crate::placement`]. Every board feeds the same gossiped tables
//! through the same functions, so every board computes the same counts.
//!
//! * [`window`]: what one board measured, per service, turned into a small table
//!   ([`window::LoadTable`]) of [`ServiceLoad`] entries that travels in the board's gossip values.
//! * [`inputs`]: the tables received from every board, summed per service for one decision
//!   bucket, with a lag so that boards whose clocks agree use the same tables ([`inputs::Demand`]).
//! * [`limits`](limits()): the bounds of the day (`scale.min`/`scale.max` or a surge).
//! * [`decide`](decide::decide): the count, with a reason a person can read.
//!
//! # Wiring (what the init does)
//! Once per bucket (and again within the bucket when a service starts to hold requests, since
//! the wake should travel at once; [`Windows::table`] may be called any number of times):
//! 1. feed [`Windows::record`] and [`Windows::held`] from the front door, the VIPs and the
//!    activator; compute `windows.table(now, &policies, &names)` (`names`: the spec's service
//!    names, sorted) and publish its `bucket` and `entries` as `load_bucket` and `load` when they
//!    changed;
//! 2. for every alive board's values (its own included) call
//!    `history.observe(board, values.load_bucket, &values.load)`, and [`LoadHistory::forget`]
//!    boards that left;
//! 3. `let demands = history.demands(decision_bucket(now), &alive, &other_digest)`;
//! 4. per service at index `i` of `names`: `decide(&policy, &limits(&policy, day_of_the_decided_bucket),
//!    counts, &demands.of(i))`, whose `count` is the placement's desired count.
//!
//! # Units
//! Load is *concurrency*: requests or connections in flight, averaged over a time. In the gossip
//! and in [`inputs::Demand`] it is counted in eighths of one instance's `target_concurrency`
//! ([`quantise`]), so `ceil(sum / 8)` is the number of instances the load asks for.

pub mod decide;
pub mod inputs;
pub mod limits;
pub mod window;

#[cfg(test)]
mod flow_tests;
#[cfg(test)]
mod inputs_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod window_tests;

use baton_spec::service::Date;

pub use crate::gossip::values::ServiceLoad;
pub use decide::{decide, Counts, Decision};
pub use inputs::{Demand, Demands, LoadHistory};
pub use limits::{limits, Limits};
pub use window::{LoadTable, Windows};

/// The length of one time bucket: tables are computed and decisions taken once per bucket.
pub const BUCKET_MS: u64 = 2000;

/// How many buckets a decision lags behind the clock, so that every board has the tables of the
/// decided bucket by then (a LAN push takes milliseconds).
pub const LAG_BUCKETS: u64 = 1;

/// The most services one board's table names; a board with more loaded services sends the
/// largest.
pub const MAX_LOAD_ENTRIES: usize = 32;

/// The largest value of a [`ServiceLoad`] field this board sends (more reads as this much): the
/// largest two-byte varint, 2047 instances' worth, so that a full table stays small (section 1).
pub const MAX_LOAD_VALUE: u16 = 16_383;

/// How one service scales: its `scale` and `surge` settings, as plain values (the init builds
/// it from the spec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `scale.min`: the fewest instances, zero allowed.
    pub min: u32,
    /// `scale.max`: the most instances outside a surge.
    pub max: u32,
    /// `scale.target_concurrency`: what one instance should carry; 0 reads as 1.
    pub target: u32,
    /// The stable window: how long the load is averaged over.
    pub window_ms: u64,
    /// The panic threshold in percent of what is ready (Knative's 200 %).
    pub panic_percent: u32,
    /// `scale.idle_after`: how long without the load that justified an instance before it stops.
    pub idle_after_ms: u64,
    /// `scale.idle = "freeze"`: the last instance freezes instead of stopping.
    pub freeze: bool,
    /// The surge calendar.
    pub surges: Vec<SurgeDays>,
}

/// One entry of the surge calendar: on these dates, other bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurgeDays {
    /// The days (in the cluster's time zone) it applies to.
    pub dates: Vec<Date>,
    /// The most instances on those days.
    pub max: u32,
    /// The fewest instances on those days (to warm up before the load comes), if set.
    pub min: Option<u32>,
}

impl Policy {
    /// The target concurrency, at least 1.
    pub fn target(&self) -> u32 {
        self.target.max(1)
    }
}

/// The bucket a time falls in.
pub fn bucket_of(unix_ms: u64) -> u32 {
    u32::try_from(unix_ms / BUCKET_MS).unwrap_or(u32::MAX)
}

/// The bucket a board decides on at `unix_ms`: [`LAG_BUCKETS`] behind its clock.
pub fn decision_bucket(unix_ms: u64) -> u32 {
    bucket_of(unix_ms).saturating_sub(LAG_BUCKETS as u32)
}

/// A concurrency of `request_ms / duration_ms` in eighths of `target`: 0 stays 0 (scale to zero
/// needs an exact zero), anything else is at least 1 and otherwise rounded to the nearest eighth,
/// up to [`MAX_LOAD_VALUE`].
pub fn quantise(request_ms: u64, duration_ms: u64, target: u32) -> u16 {
    if request_ms == 0 {
        return 0;
    }
    let num = 8 * u128::from(request_ms);
    let den = u128::from(duration_ms.max(1)) * u128::from(target.max(1));
    let rounded = (2 * num + den) / (2 * den);
    rounded.clamp(1, u128::from(MAX_LOAD_VALUE)) as u16
}

/// The instances a load in eighths asks for: `ceil(eighths / 8)`.
pub fn want(eighths: u32) -> u32 {
    eighths.div_ceil(8)
}

/// A duration as a person writes it: `5m`, `90s`, `2h`, `1d`, `1500ms`.
pub fn duration_text(ms: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
    ];
    for (size, unit) in UNITS {
        if ms >= size && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}
