//! Validation of the nested tables of a spec: `resources`, `volumes`, `health`, `scale`,
//! `surge`. Each records its problems in the [`Checker`] and returns the validated value (with
//! defaults where a value was missing or wrong, so that checks of other fields still run).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::check::{is_http_path, is_volume_name, Checker};
use super::date::Date;
use super::defaults as d;
use super::quantity::{bytes_from_integer, cpu_millis, format_bytes, parse_bytes};
use super::raw::{RawHealth, RawQuantity, RawResources, RawScale, RawSurge, RawVolume};
use super::types::{HealthCheck, Probe, Resources, Scale, Surge, Volume};

pub(crate) fn resources(c: &mut Checker<'_>, raw: RawResources) -> Resources {
    let cpu = raw.cpu.and_then(|cores| match cpu_millis(cores) {
        Ok(m) if (d::MIN_CPU_MILLIS..=d::MAX_CPU_MILLIS).contains(&m) => Some(m),
        Ok(_) => {
            c.error(
                "resources.cpu",
                format!("{cores} is out of range: use 0.01 to 64 cores"),
            );
            None
        }
        Err(e) => {
            c.error("resources.cpu", e.to_string());
            None
        }
    });
    let memory = bytes(
        c,
        "resources.memory",
        raw.memory,
        d::MIN_MEMORY_BYTES..=d::MAX_MEMORY_BYTES,
    )
    .unwrap_or(d::MEMORY_BYTES);
    let disk = bytes(
        c,
        "resources.disk",
        raw.disk,
        d::MIN_DISK_BYTES..=d::MAX_DISK_BYTES,
    );
    let pids = raw
        .pids
        .and_then(|p| c.count("resources.pids", p, d::MIN_PIDS, d::MAX_PIDS))
        .unwrap_or(d::PIDS);
    Resources {
        cpu_millis: cpu.or(d::CPU_MILLIS),
        memory_bytes: memory,
        pids,
        disk_bytes: disk,
    }
}

/// A quantity of bytes within `range`; `None` when absent or wrong (the error recorded).
pub(crate) fn bytes(
    c: &mut Checker<'_>,
    field: &str,
    raw: Option<RawQuantity>,
    range: std::ops::RangeInclusive<u64>,
) -> Option<u64> {
    let parsed = match &raw? {
        RawQuantity::Text(t) => parse_bytes(t),
        RawQuantity::Bytes(b) => bytes_from_integer(*b),
    };
    match parsed {
        Ok(b) if range.contains(&b) => Some(b),
        Ok(b) => {
            c.error(
                field,
                format!(
                    "{} is out of range: use {} to {}",
                    format_bytes(b),
                    format_bytes(*range.start()),
                    format_bytes(*range.end())
                ),
            );
            None
        }
        Err(e) => {
            c.error(field, e.to_string());
            None
        }
    }
}

pub(crate) fn volumes(c: &mut Checker<'_>, raw: Vec<RawVolume>) -> Vec<Volume> {
    let mut out = Vec::new();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut paths: BTreeMap<PathBuf, usize> = BTreeMap::new();
    for (i, v) in raw.into_iter().enumerate() {
        let at = |key: &str| format!("volumes[{i}].{key}");
        let name = c.required(&at("name"), v.name, "for example name = \"data\"");
        if let Some(n) = &name {
            if !is_volume_name(n) {
                c.error(&at("name"), format!("{n:?} is not a volume name: use 1-63 letters, digits, '_', '.', '-', starting with a letter or digit"));
            } else if let Some(first) = names.insert(n.clone(), i) {
                c.error(
                    &at("name"),
                    format!("volume {n:?} is already mounted by volumes[{first}]"),
                );
            }
        }
        let path = c
            .required(&at("path"), v.path, "for example path = \"/var/lib/app\"")
            .and_then(|p| c.container_path(&at("path"), &p));
        if let Some(p) = &path {
            let reserved = d::RESERVED_CONTAINER_PATHS
                .iter()
                .find(|r| p.starts_with(r));
            if p == Path::new("/") {
                c.error(&at("path"), "cannot mount a volume on '/'");
            } else if let Some(r) = reserved {
                c.error(
                    &at("path"),
                    format!("{} is inside {r}, which the runtime provides", p.display()),
                );
            } else if let Some(first) = paths.insert(p.clone(), i) {
                c.error(
                    &at("path"),
                    format!("{} is already used by volumes[{first}]", p.display()),
                );
            }
        }
        if let (Some(name), Some(path)) = (name, path) {
            out.push(Volume {
                name,
                path,
                readonly: v.readonly.unwrap_or(d::VOLUME_READONLY),
            });
        }
    }
    out
}

pub(crate) fn health(c: &mut Checker<'_>, raw: RawHealth, has_port: bool) -> Option<HealthCheck> {
    let probe = match (&raw.http, raw.tcp) {
        (Some(_), Some(_)) => {
            c.error("health.tcp", "use either `http` or `tcp`, not both");
            None
        }
        (None, None) => {
            c.error("health", "needs `http` (a path) or `tcp` (a port) to check");
            None
        }
        (Some(path), None) => {
            if !is_http_path(path) {
                c.error(
                    "health.http",
                    format!("{path:?} must start with '/' and contain no spaces"),
                );
            }
            if !has_port {
                c.error(
                    "health.http",
                    "checks the service's `port`, which is not set",
                );
            }
            Some(Probe::Http { path: path.clone() })
        }
        (None, Some(p)) => c.port("health.tcp", p).map(|port| Probe::Tcp { port }),
    };
    let interval = c.duration(
        "health.interval",
        raw.interval.as_ref(),
        d::HEALTH_INTERVAL,
        (d::MIN_HEALTH_INTERVAL, d::MAX_HEALTH_PERIOD),
    );
    let timeout = c.duration(
        "health.timeout",
        raw.timeout.as_ref(),
        d::HEALTH_TIMEOUT.min(interval),
        (d::MIN_HEALTH_TIMEOUT, interval),
    );
    let retries = raw
        .retries
        .and_then(|r| c.count("health.retries", r, 1, d::MAX_HEALTH_RETRIES))
        .unwrap_or(d::HEALTH_RETRIES);
    let start_period = c.duration(
        "health.start_period",
        raw.start_period.as_ref(),
        d::HEALTH_START_PERIOD,
        (std::time::Duration::ZERO, d::MAX_HEALTH_PERIOD),
    );
    Some(HealthCheck {
        probe: probe?,
        interval,
        timeout,
        retries,
        start_period,
    })
}

pub(crate) fn scale(c: &mut Checker<'_>, raw: RawScale) -> Scale {
    let min = raw
        .min
        .and_then(|m| c.count("scale.min", m, 0, d::MAX_INSTANCES))
        .unwrap_or(d::SCALE_MIN);
    let max = match raw.max {
        None => d::scale_max(min),
        Some(m) => match c.count("scale.max", m, 1, d::MAX_INSTANCES) {
            Some(m) if m < min => {
                c.error("scale.max", format!("{m} is less than scale.min ({min})"));
                min
            }
            Some(m) => m,
            None => d::scale_max(min),
        },
    };
    let idle_after = c.duration(
        "scale.idle_after",
        raw.idle_after.as_ref(),
        d::IDLE_AFTER,
        (d::MIN_IDLE_AFTER, d::MAX_IDLE_AFTER),
    );
    let target_concurrency = raw
        .target_concurrency
        .and_then(|t| c.count("scale.target_concurrency", t, 1, d::MAX_TARGET_CONCURRENCY))
        .unwrap_or(d::TARGET_CONCURRENCY);
    let window = c.duration(
        "scale.window",
        raw.window.as_ref(),
        d::SCALE_WINDOW,
        (d::MIN_SCALE_WINDOW, d::MAX_SCALE_WINDOW),
    );
    let panic = raw
        .panic
        .and_then(|p| c.count("scale.panic", p, d::MIN_SCALE_PANIC, d::MAX_SCALE_PANIC))
        .unwrap_or(d::SCALE_PANIC);
    let hold_queue = raw
        .hold_queue
        .and_then(|q| c.count("scale.hold_queue", q, 1, d::MAX_HOLD_QUEUE))
        .unwrap_or(d::HOLD_QUEUE);
    let hold_timeout = c.duration(
        "scale.hold_timeout",
        raw.hold_timeout.as_ref(),
        d::HOLD_TIMEOUT,
        (d::MIN_HOLD_TIMEOUT, d::MAX_HOLD_TIMEOUT),
    );
    Scale {
        min,
        max,
        idle_after,
        target_concurrency,
        window,
        panic,
        hold_queue,
        hold_timeout,
        idle: raw.idle.unwrap_or(d::SCALE_IDLE),
    }
}

pub(crate) fn surges(c: &mut Checker<'_>, raw: Vec<RawSurge>, scale_max: u32) -> Vec<Surge> {
    let mut out = Vec::new();
    let mut seen: BTreeMap<Date, usize> = BTreeMap::new();
    for (i, s) in raw.into_iter().enumerate() {
        let dates_field = format!("surge[{i}].dates");
        let raw_dates = match s.dates {
            None => {
                c.error(
                    &dates_field,
                    "is required: for example dates = [\"2026-11-27\"]",
                );
                Vec::new()
            }
            Some(v) if v.is_empty() => {
                c.error(&dates_field, "needs at least one date");
                v
            }
            Some(v) => v,
        };
        let mut dates = Vec::new();
        for (j, text) in raw_dates.iter().enumerate() {
            match Date::parse(&text.0) {
                Ok(date) => {
                    if let Some(first) = seen.insert(date, i) {
                        c.error(
                            &format!("{dates_field}[{j}]"),
                            format!("{date} is already in surge[{first}]"),
                        );
                    }
                    dates.push(date);
                }
                Err(e) => c.error(&format!("{dates_field}[{j}]"), e.to_string()),
            }
        }
        let max_field = format!("surge[{i}].max");
        let max = c
            .required(
                &max_field,
                s.max,
                "the raised scale.max, for example max = 8",
            )
            .and_then(|m| c.count(&max_field, m, 1, d::MAX_INSTANCES));
        let min_field = format!("surge[{i}].min");
        let min = s
            .min
            .and_then(|n| c.count(&min_field, n, 0, d::MAX_INSTANCES));
        if let Some(m) = max {
            if m < scale_max {
                c.error(
                    &max_field,
                    format!("{m} is less than scale.max ({scale_max}): a surge only raises it"),
                );
            }
            if let Some(n) = min.filter(|n| *n > m) {
                c.error(
                    &min_field,
                    format!("{n} is more than this entry's max ({m})"),
                );
            }
            out.push(Surge { dates, max: m, min });
        }
    }
    out
}
