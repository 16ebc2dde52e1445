//! The count of one service (design section 2, "The function").

use super::{duration_text, want, Demand, Limits, Policy};

/// What the gossip shows of a service's instances now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Instances reported that are neither stopping, stopped nor frozen.
    pub current: u32,
    /// Of those, the ready ones.
    pub ready: u32,
    /// Frozen instances (counted apart from `current`).
    pub frozen: u32,
    /// None is starting or stopping: a step down waits for the previous one to complete.
    pub settled: bool,
}

/// The decided count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The instances placement should keep (a frozen one included).
    pub count: u32,
    /// Of those, how many stay frozen: 1 only when the last instance of a `freeze` service goes
    /// idle (or stays idle); the board running slot 1 freezes it instead of stopping it. 0 with
    /// a frozen instance reported means: thaw it.
    pub frozen: u32,
    /// Why, for a person: `2 -> 3: 31 in flight, target 10`.
    pub reason: String,
}

/// The count for `policy` within `limits`, given the instances `now` and the summed `demand`:
/// 1. `up` is what the stable mean asks for; in panic (the panic window asks for at least
///    `panic_percent` of what is ready, at least one) the larger of that and the panic ask;
/// 2. a wait (`held > 0`) asks for at least one;
/// 3. more than runs now: up at once, to `up`;
/// 4. else, if even the peak over `idle_after` asks for fewer than run now, the service is
///    settled and every board's load is known: down by one;
/// 5. else keep; then clamp to the limits. With `freeze`, the step to 0 keeps one frozen.
pub fn decide(policy: &Policy, limits: &Limits, now: Counts, demand: &Demand) -> Decision {
    let target = policy.target();
    let have = now.current;
    let in_flight = |eighths: u32| (u64::from(eighths) * u64::from(target) + 4) / 8;
    let idle = duration_text(policy.idle_after_ms);
    let peak_text = format!(
        "peak {} over {idle}, target {target}",
        in_flight(demand.peak)
    );
    let stable = want(demand.stable);
    let panic = want(demand.panic);
    let mut up = stable;
    let mut why = format!("{} in flight, target {target}", in_flight(demand.stable));
    let panicking =
        u64::from(panic) * 100 >= u64::from(policy.panic_percent) * u64::from(now.ready.max(1));
    if panicking && panic > up {
        up = panic;
        why = format!(
            "{} in flight over the panic window, target {target}",
            in_flight(demand.panic)
        );
    }
    // Requests waiting for an instance ask for one (many at once start one, not many: their
    // load reaches the windows and asks for more, if need be, one bucket later), and no
    // instance they wait for steps down.
    let for_held = u32::from(demand.held > 0);
    if for_held > up {
        up = for_held;
        why = match demand.held {
            1 => "1 request held".to_string(),
            n => format!("{n} requests held"),
        };
    }
    let (mut count, mut reason) = if up > have {
        (up, format!("{have} -> {up}: {why}"))
    } else if want(demand.peak).max(for_held) < have {
        if demand.unknown {
            (
                have,
                format!("at {have}: the load of some board is unknown"),
            )
        } else if !now.settled {
            (have, format!("at {have}: waiting for a start or stop"))
        } else {
            (have - 1, format!("{have} -> {}: {peak_text}", have - 1))
        }
    } else {
        (have, format!("at {have}: {peak_text}"))
    };
    if count > limits.max {
        count = limits.max;
        reason = format!("capped at {count} ({})", limits.why);
    } else if count < limits.min {
        count = limits.min;
        reason = format!("held at {count}: {}", limits.min_why);
    }
    if count == 0 && policy.freeze && limits.max >= 1 && (have > 0 || now.frozen > 0) {
        let from = if have > 0 { "1 -> 0" } else { "at 0" };
        return Decision {
            count: 1,
            frozen: 1,
            reason: format!("{from} (frozen): {peak_text}"),
        };
    }
    Decision {
        count,
        frozen: 0,
        reason,
    }
}
