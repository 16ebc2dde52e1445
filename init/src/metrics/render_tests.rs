//! The exposition of a full snapshot, checked by Prometheus's own `promtool` (0.0.4 text) and
//! by the shape of OpenMetrics.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use super::render::{render, wants_openmetrics, OPENMETRICS, TEXT};
use super::snapshot::{
    Board, CgroupStats, Instance, Listener, Memory, Mesh, MeshPeer, Service, Snapshot, Space,
};

fn snapshot() -> Snapshot {
    Snapshot {
        board: Board {
            version: "0.1.0".into(),
            cpu_seconds: vec![("user".into(), 12.5), ("idle".into(), 300.0)],
            memory: Some(Memory {
                total: 1 << 30,
                available: 1 << 29,
            }),
            data: Some(Space {
                used: 10 << 20,
                free: 600 << 20,
            }),
            temperatures: vec![("cpu-thermal".into(), 48.3)],
            uptime_seconds: Some(61.5),
            init_resident_bytes: Some(8 << 20),
            boot_steps: vec![("modules".into(), 0.567), ("network".into(), 0.2)],
        },
        instances: vec![
            Instance {
                service: "web".into(),
                id: "web-1".into(),
                cgroup: Some(CgroupStats {
                    cpu_seconds: 2.5,
                    throttled_seconds: 0.125,
                    memory_bytes: 4 << 20,
                }),
                restarts: 2,
                oom_kills: 1,
                ready: true,
            },
            Instance {
                service: "web".into(),
                id: "web-2".into(),
                cgroup: None,
                restarts: 0,
                oom_kills: 0,
                ready: false,
            },
        ],
        services: vec![Service {
            name: "web".into(),
            desired: 2,
            running: 1,
            ready: 1,
            frozen: 0,
            in_flight: 7,
            max: (4, "surge 2026-11-27".into()),
            held: 3,
        }],
        members: BTreeMap::from([("self".into(), 1), ("alive".into(), 2)]),
        gossip_drops: vec![("unauthenticated".into(), 20_000), ("replayed".into(), 0)],
        network_generation: Some(9),
        mesh: Some(Mesh {
            up: true,
            peers: vec![
                MeshPeer {
                    board: "pi-b".into(),
                    handshake_age_seconds: Some(12.5),
                    bytes: Some((4096, 1024)),
                },
                MeshPeer {
                    board: "pi-c".into(),
                    handshake_age_seconds: None,
                    bytes: Some((0, 148)),
                },
                MeshPeer {
                    board: "pi-d".into(),
                    handshake_age_seconds: None,
                    bytes: None,
                },
            ],
        }),
        listeners: vec![Listener {
            name: "api".into(),
            open: 3,
            refused: vec![("full".into(), 0), ("per_source".into(), 7)],
            accept_errors: 1,
        }],
        front_door: vec![{
            let mut t = baton_frontdoor::tally::ServiceTally {
                service: "web".into(),
                ..Default::default()
            };
            t.add(200, 3);
            t.add(200, 40);
            t.add(503, 12_000);
            t
        }],
    }
}

/// What `promtool check metrics` says of `text` (its exit status, its output).
fn promtool(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; scripts/setup installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[test]
fn the_text_format_passes_promtool_with_every_family() {
    let (content_type, text) = render(&snapshot(), false);
    assert_eq!(content_type, TEXT);
    let (ok, said) = promtool(&text);
    assert!(ok, "promtool refused it: {said}\n{text}");
    for line in [
        "baton_board_cpu_seconds_total{mode=\"user\"} 12.5",
        "baton_board_memory_bytes{kind=\"used\"} 536870912",
        "baton_board_data_bytes{kind=\"free\"} 629145600",
        "baton_board_temperature_celsius{zone=\"cpu-thermal\"} 48.3",
        "baton_instance_cpu_seconds_total{service=\"web\",baton_instance=\"web-1\"} 2.5",
        "baton_instance_memory_bytes{service=\"web\",baton_instance=\"web-1\"} 4194304",
        "baton_instance_oom_kills_total{service=\"web\",baton_instance=\"web-1\"} 1",
        "baton_instance_ready{service=\"web\",baton_instance=\"web-2\"} 0",
        "baton_service_instances{service=\"web\",state=\"desired\"} 2",
        "baton_service_max{service=\"web\",why=\"surge 2026-11-27\"} 4",
        "baton_cluster_members{state=\"alive\"} 2",
        "baton_network_generation 9",
        "baton_gossip_datagrams_dropped_total{reason=\"unauthenticated\"} 20000",
        "baton_gossip_datagrams_dropped_total{reason=\"replayed\"} 0",
        "baton_mesh_up 1",
        "baton_mesh_handshake_age_seconds{peer=\"pi-b\"} 12.5",
        "baton_mesh_received_bytes_total{peer=\"pi-b\"} 4096",
        "baton_mesh_sent_bytes_total{peer=\"pi-c\"} 148",
        "baton_listener_connections{listener=\"api\"} 3",
        "baton_listener_refused_total{listener=\"api\",reason=\"per_source\"} 7",
        "baton_listener_accept_errors_total{listener=\"api\"} 1",
        "baton_frontdoor_requests_total{service=\"web\",code=\"2xx\"} 2",
        "baton_frontdoor_requests_total{service=\"web\",code=\"503\"} 1",
        "baton_frontdoor_request_duration_seconds_bucket{service=\"web\",le=\"0.005\"} 1",
        "baton_frontdoor_request_duration_seconds_bucket{service=\"web\",le=\"10\"} 2",
        "baton_frontdoor_request_duration_seconds_bucket{service=\"web\",le=\"30\"} 3",
        "baton_frontdoor_request_duration_seconds_bucket{service=\"web\",le=\"+Inf\"} 3",
        "baton_frontdoor_request_duration_seconds_count{service=\"web\"} 3",
        "baton_frontdoor_request_duration_seconds_sum{service=\"web\"} 12.043",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    // A peer never shaken hands with has no age, rather than zero.
    assert!(!text.contains("baton_mesh_handshake_age_seconds{peer=\"pi-c\"}"));
    // A peer the kernel said nothing of has no byte counts (not zeros: a counter reset).
    assert!(!text.contains("peer=\"pi-d\""));
    // An instance without a cgroup has no cgroup figures, rather than zeros.
    assert!(!text.contains("baton_instance_memory_bytes{service=\"web\",baton_instance=\"web-2\"}"));
}

#[test]
fn openmetrics_is_served_when_asked_and_ends_with_eof() {
    let (content_type, text) = render(&snapshot(), true);
    assert_eq!(content_type, OPENMETRICS);
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("# TYPE baton_instance_restarts counter\n"));
    assert!(text
        .contains("baton_instance_restarts_total{service=\"web\",baton_instance=\"web-1\"} 2\n"));
    // A board without a thermal zone (QEMU's virt) has no temperature family at all.
    let mut cold = snapshot();
    cold.board.temperatures.clear();
    let (_, text) = render(&cold, false);
    assert!(!text.contains("temperature"));
    assert!(promtool(&text).0);
}

#[test]
fn the_accept_header_chooses_the_format() {
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    assert!(wants_openmetrics(Some(prometheus)));
    assert!(!wants_openmetrics(None));
    assert!(!wants_openmetrics(Some("*/*")));
    assert!(!wants_openmetrics(Some("text/plain; version=0.0.4")));
    assert!(!wants_openmetrics(Some(
        "application/openmetrics-text; q=0"
    )));
}
