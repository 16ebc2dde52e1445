//! A [`Snapshot`] in the Prometheus exposition formats, through `prometheus-client`'s encoders:
//! OpenMetrics for a scraper that asks for it, the 0.0.4 text otherwise.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Snapshot;

/// The `Content-Type` of OpenMetrics text.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The `Content-Type` of the 0.0.4 text format.
pub const TEXT: &str = prometheus_text::CONTENT_TYPE;

/// Whether a scraper's `Accept` header asks for OpenMetrics (Prometheus lists it first).
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|part| {
            let mut fields = part.split(';').map(str::trim);
            let kind = fields.next().unwrap_or_default();
            let refused = fields.any(|f| f.replace(' ', "") == "q=0");
            kind.eq_ignore_ascii_case("application/openmetrics-text") && !refused
        })
    })
}

pub(super) type Labels = Vec<(&'static str, String)>;
type GaugeF = Gauge<f64, AtomicU64>;
type CounterF = Counter<f64, AtomicU64>;

/// `snapshot` encoded: (content type, body).
pub fn render(snapshot: &Snapshot, openmetrics: bool) -> (&'static str, String) {
    let registry = registry(snapshot);
    let mut out = String::new();
    // Writing into a String cannot fail.
    let written = if openmetrics {
        text::encode(&mut out, &registry)
    } else {
        prometheus_text::encode(&mut out, &registry)
    };
    debug_assert!(written.is_ok());
    (if openmetrics { OPENMETRICS } else { TEXT }, out)
}

/// A gauge family, filled from `(labels, value)` pairs.
pub(super) fn gauges(values: impl IntoIterator<Item = (Labels, f64)>) -> Family<Labels, GaugeF> {
    let family = Family::<Labels, GaugeF>::default();
    for (labels, value) in values {
        family.get_or_create(&labels).set(value);
    }
    family
}

/// A gauge family of whole numbers.
pub(super) fn whole(values: impl IntoIterator<Item = (Labels, u64)>) -> Family<Labels, Gauge> {
    let family = Family::<Labels, Gauge>::default();
    for (labels, value) in values {
        family
            .get_or_create(&labels)
            .set(i64::try_from(value).unwrap_or(i64::MAX));
    }
    family
}

/// A counter family of whole numbers, filled from totals.
pub(super) fn tally(values: impl IntoIterator<Item = (Labels, u64)>) -> Family<Labels, Counter> {
    let family = Family::<Labels, Counter>::default();
    for (labels, value) in values {
        family.get_or_create(&labels).inc_by(value);
    }
    family
}

/// A counter family, filled from totals.
pub(super) fn counters(
    values: impl IntoIterator<Item = (Labels, f64)>,
) -> Family<Labels, CounterF> {
    let family = Family::<Labels, CounterF>::default();
    for (labels, value) in values {
        family.get_or_create(&labels).inc_by(value.max(0.0));
    }
    family
}

pub(super) fn one(label: &'static str, value: &str) -> Labels {
    vec![(label, value.to_string())]
}

fn registry(s: &Snapshot) -> Registry {
    let mut r = Registry::with_prefix("baton");
    board(&mut r, s);
    instances(&mut r, s);
    services(&mut r, s);
    super::render_network::network(&mut r, s);
    super::render_frontdoor::front_door(&mut r, s);
    r
}

fn board(r: &mut Registry, s: &Snapshot) {
    let b = &s.board;
    r.register(
        "board_info",
        "The board's build (always 1)",
        whole([(one("version", &b.version), 1)]),
    );
    r.register(
        "board_cpu_seconds",
        "CPU time of the board by mode, summed over its CPUs",
        counters(b.cpu_seconds.iter().map(|(m, v)| (one("mode", m), *v))),
    );
    if let Some(m) = b.memory {
        r.register(
            "board_memory_bytes",
            "Memory of the board: total and available (MemAvailable)",
            whole([
                (one("kind", "total"), m.total),
                (one("kind", "available"), m.available),
                (one("kind", "used"), m.total.saturating_sub(m.available)),
            ]),
        );
    }
    if let Some(d) = b.data {
        r.register(
            "board_data_bytes",
            "Space on the data partition (/data)",
            whole([(one("kind", "used"), d.used), (one("kind", "free"), d.free)]),
        );
    }
    if !b.temperatures.is_empty() {
        r.register(
            "board_temperature_celsius",
            "Temperature by thermal zone",
            gauges(b.temperatures.iter().map(|(z, c)| (one("zone", z), *c))),
        );
    }
    if let Some(up) = b.uptime_seconds {
        r.register(
            "board_uptime_seconds",
            "Seconds since the board booted",
            gauges([(Vec::new(), up)]),
        );
    }
    if let Some(rss) = b.init_resident_bytes {
        r.register(
            "init_resident_bytes",
            "Resident memory of the init (PID 1)",
            whole([(Vec::new(), rss)]),
        );
    }
    r.register(
        "board_boot_step_seconds",
        "Seconds each step of this boot took",
        gauges(b.boot_steps.iter().map(|(step, v)| (one("step", step), *v))),
    );
}

fn instances(r: &mut Registry, s: &Snapshot) {
    let labels = |i: &super::snapshot::Instance| -> Labels {
        vec![
            ("service", i.service.clone()),
            ("baton_instance", i.id.clone()),
        ]
    };
    let with_cgroup = || s.instances.iter().filter_map(|i| Some((i, i.cgroup?)));
    r.register(
        "instance_cpu_seconds",
        "CPU time of an instance (its cgroup's usage)",
        counters(with_cgroup().map(|(i, c)| (labels(i), c.cpu_seconds))),
    );
    r.register(
        "instance_cpu_throttled_seconds",
        "Time an instance was throttled by its CPU limit",
        counters(with_cgroup().map(|(i, c)| (labels(i), c.throttled_seconds))),
    );
    r.register(
        "instance_memory_bytes",
        "Memory an instance uses (its cgroup's memory.current)",
        whole(with_cgroup().map(|(i, c)| (labels(i), c.memory_bytes))),
    );
    r.register(
        "instance_restarts",
        "Restarts of an instance since its slot was filled",
        tally(s.instances.iter().map(|i| (labels(i), i.restarts))),
    );
    r.register(
        "instance_oom_kills",
        "Out-of-memory kills of an instance since its slot was filled",
        tally(s.instances.iter().map(|i| (labels(i), i.oom_kills))),
    );
    r.register(
        "instance_ready",
        "Whether an instance takes requests (1) or not (0)",
        whole(s.instances.iter().map(|i| (labels(i), u64::from(i.ready)))),
    );
}

fn services(r: &mut Registry, s: &Snapshot) {
    let by_state = s.services.iter().flat_map(|svc| {
        [
            ("desired", svc.desired),
            ("running", svc.running),
            ("ready", svc.ready),
            ("frozen", svc.frozen),
        ]
        .map(|(state, n)| {
            (
                vec![("service", svc.name.clone()), ("state", state.to_string())],
                n,
            )
        })
    });
    r.register(
        "service_instances",
        "Instances of a service, cluster-wide, by state (desired as decided)",
        whole(by_state),
    );
    r.register(
        "service_in_flight",
        "Requests and calls in flight to a service, cluster-wide",
        whole(
            s.services
                .iter()
                .map(|v| (one("service", &v.name), v.in_flight)),
        ),
    );
    r.register(
        "service_max",
        "The most instances a service may have today, and why",
        whole(s.services.iter().map(|v| {
            (
                vec![("service", v.name.clone()), ("why", v.max.1.clone())],
                v.max.0,
            )
        })),
    );
    r.register(
        "service_held",
        "Requests held for want of a ready instance, cluster-wide",
        whole(s.services.iter().map(|v| (one("service", &v.name), v.held))),
    );
}
