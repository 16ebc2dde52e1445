//! Keeping the clock plausible without an RTC: at boot, move it forward to the last saved time
//! or the image's build time, whichever is later; save the time while running and at shutdown.
//! (SNTP then sets it exactly; that is `sntp`'s job.)

use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::board::context::Ctx;
use crate::board::persist;

/// How often the running board saves the time.
pub const SAVE_EVERY: Duration = Duration::from_secs(15 * 60);

/// Board path of the saved time (decimal seconds since 1970).
pub fn saved_path() -> String {
    format!("{}/clock", persist::DIR)
}

/// Errors restoring or saving the time.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The clock could not be set.
    #[error("cannot set the clock to {time}: {source}")]
    Set {
        /// The time, ISO 8601.
        time: String,
        /// Cause.
        source: io::Error,
    },
    /// The time could not be saved.
    #[error("cannot save the time to {path}: {source}")]
    Save {
        /// File.
        path: String,
        /// Cause.
        source: io::Error,
    },
}

/// The later of the saved time and `built_at`: the clock is never set before it. A missing or
/// unreadable saved time is not an error (first boot).
fn saved_floor(ctx: &Ctx, built_at: Option<SystemTime>) -> Option<SystemTime> {
    let saved = std::fs::read_to_string(ctx.path(saved_path()))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .and_then(|secs| UNIX_EPOCH.checked_add(Duration::from_secs(secs)));
    match (saved, built_at) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// [`saved_floor`] as time since the Unix epoch (zero when nothing is known), for SNTP.
pub fn floor(ctx: &Ctx, built_at: Option<SystemTime>) -> Duration {
    saved_floor(ctx, built_at)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default()
}

/// Sets the clock forward if it is behind the saved time or `built_at`. Returns the time set,
/// if any.
pub fn restore(ctx: &Ctx, built_at: Option<SystemTime>) -> Result<Option<SystemTime>, Error> {
    let Some(floor) = saved_floor(ctx, built_at) else {
        return Ok(None);
    };
    if ctx.sys.now() >= floor {
        return Ok(None);
    }
    ctx.sys.set_time(floor).map_err(|source| Error::Set {
        time: iso8601(floor),
        source,
    })?;
    ctx.say(format_args!("clock: set forward to {}", iso8601(floor)));
    Ok(Some(floor))
}

/// Saves the current time.
pub fn save(ctx: &Ctx) -> Result<(), Error> {
    let path = saved_path();
    let secs = ctx
        .sys
        .now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    persist::write_atomic(&ctx.path(&path), format!("{secs}\n").as_bytes())
        .map_err(|source| Error::Save { path, source })
}

/// Saves the time every [`SAVE_EVERY`], forever (run it as a task).
pub async fn save_periodically(ctx: Arc<Ctx>) {
    let mut tick = tokio::time::interval(SAVE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = save(&ctx) {
            ctx.report(e);
        }
    }
}

/// `time` as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso8601(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (the era-based algorithm, proleptic Gregorian).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::sys::Sys;
    use crate::boot::testbed::Testbed;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn formats_dates() {
        assert_eq!(iso8601(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(at(1_795_000_000)), "2026-11-18T11:06:40Z");
    }

    #[test]
    fn moves_forward_to_the_later_of_saved_and_build_time() {
        let tb = Testbed::new();
        tb.file(&saved_path(), "1795000000\n");
        assert_eq!(
            restore(&tb.ctx, Some(at(1_700_000_000))).expect("set"),
            Some(at(1_795_000_000))
        );
        assert_eq!(tb.sys.now(), at(1_795_000_000));
        assert_eq!(
            restore(&tb.ctx, Some(at(1_800_000_000))).expect("set"),
            Some(at(1_800_000_000))
        );
        assert_eq!(
            tb.sys.calls(),
            ["set-time 1795000000", "set-time 1800000000"]
        );
    }

    #[test]
    fn never_moves_the_clock_back() {
        let tb = Testbed::new();
        tb.sys.set_now(at(1_900_000_000));
        tb.file(&saved_path(), "1795000000\n");
        assert_eq!(restore(&tb.ctx, Some(at(1_700_000_000))).expect("ok"), None);
        assert_eq!(restore(&Testbed::new().ctx, None).expect("ok"), None);
        assert!(tb.sys.calls().is_empty());
    }

    #[test]
    fn save_then_restore_round_trips() {
        let tb = Testbed::new();
        tb.sys.set_now(at(1_795_000_123));
        save(&tb.ctx).expect("saved");
        assert_eq!(tb.read(&saved_path()), b"1795000123\n");
        tb.sys.set_now(at(60));
        assert_eq!(
            restore(&tb.ctx, None).expect("set"),
            Some(at(1_795_000_123))
        );
    }
}
