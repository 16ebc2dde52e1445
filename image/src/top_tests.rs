//! The tables of `baton top` from two readings: CPU shares from the differences, figures a
//! board did not send shown as `-`, an unreachable board said, and names escaped.

use std::time::{Duration, Instant};

use baton_api::{
    BoardLoad, InstancePhase, InstanceView, LocalInstance, Service, ServiceInstance, ServiceList,
    ServiceState, StatusReport, Usage,
};

use super::*;

fn status(busy: u64, total: u64) -> StatusReport {
    StatusReport {
        hostname: "pi-a".into(),
        version: "0.1.0".into(),
        load: Some(BoardLoad {
            cpus: 4,
            cpu_total_ms: total,
            cpu_busy_ms: busy,
            memory_total_bytes: 1 << 30,
            memory_available_bytes: 768 << 20,
            data_used_bytes: Some(100 << 20),
            data_free_bytes: Some(900 << 20),
        }),
        ..StatusReport::default()
    }
}

fn services(cpu_ms: u64, name: &str) -> ServiceList {
    ServiceList {
        services: vec![Service {
            name: name.into(),
            state: ServiceState::Running,
            image: String::new(),
            desired: 1,
            running: 1,
            publish: None,
            instances: vec![ServiceInstance::Local(LocalInstance {
                instance: InstanceView {
                    id: format!("{name}-1"),
                    state: InstancePhase::Running,
                    address: None,
                    started_at_ms: None,
                    start_ms: None,
                    restarts: 3,
                    last_exit: None,
                    last_error: None,
                    oom_kills: 0,
                    healthy: None,
                    ready: true,
                    usage: Some(Usage {
                        cpu_ms,
                        memory_bytes: 12 << 20,
                    }),
                },
                board: Some("pi-a".into()),
            })],
            error: None,
            unplaced: None,
            dropped_log_lines: 0,
            scaling: None,
        }],
        errors: Vec::new(),
    }
}

fn reading(at: Instant, busy: u64, total: u64, cpu_ms: u64, name: &str) -> Reading {
    Reading {
        at: Some(at),
        boards: vec![
            Board {
                name: "pi-a".into(),
                state: "self".into(),
                status: Some(status(busy, total)),
                services: Some(services(cpu_ms, name)),
                error: None,
            },
            Board {
                name: "pi-b".into(),
                state: "alive".into(),
                status: None,
                services: None,
                error: Some("connection refused".into()),
            },
        ],
    }
}

#[test]
fn shares_come_from_two_readings() {
    let t0 = Instant::now();
    let before = reading(t0, 1_000, 10_000, 500, "web");
    let now = reading(t0 + Duration::from_secs(2), 3_000, 18_000, 1_500, "web");
    let text = render(&before, &now);
    // The board: 2,000 ms busy of 8,000: 25 %; 256 of 1,024 MiB used; 100 of 1,000 MiB data.
    let a = text.lines().find(|l| l.starts_with("pi-a")).expect("pi-a");
    assert!(a.contains(" 25% "), "{a}");
    assert!(a.contains("256 MiB/1.0 GiB"), "{a}");
    assert!(a.contains("100 MiB/1000 MiB"), "{a}");
    assert!(a.ends_with("0.1.0"), "{a}");
    // The instance: 1,000 ms of CPU in 2 s: 50 % of one CPU.
    let web = text.lines().find(|l| l.starts_with("web ")).expect("web");
    assert!(
        web.contains("web-1") && web.contains(" 50% ") && web.contains("12 MiB"),
        "{web}"
    );
    assert!(web.contains(" 3 "), "restarts: {web}");
    let b = text.lines().find(|l| l.starts_with("pi-b")).expect("pi-b");
    assert!(b.contains("unreachable: connection refused"), "{b}");
}

#[test]
fn the_first_frame_has_no_shares_and_names_are_escaped() {
    let now = reading(Instant::now(), 3_000, 18_000, 1_500, "w\u{1b}[2J");
    let text = render(&Reading::default(), &now);
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(text.contains("w\\u{1b}[2J"), "{text}");
    let a = text.lines().find(|l| l.starts_with("pi-a")).expect("pi-a");
    assert!(a.contains("    - "), "no share from one reading: {a}");
}
