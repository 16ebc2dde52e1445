//! The JSON of `/v1/services` as scripts read it.

use super::*;
use serde_json::json;

fn instance() -> InstanceView {
    InstanceView {
        id: "web-1".into(),
        state: InstancePhase::Running,
        address: Some("10.88.0.2".into()),
        started_at_ms: Some(1_700_000_000_000),
        start_ms: Some(120),
        restarts: 2,
        last_exit: Some(ExitStatus {
            code: None,
            signal: Some(9),
            oom_killed: true,
        }),
        last_error: None,
        oom_kills: 1,
        healthy: None,
        ready: true,
        usage: Some(Usage {
            cpu_ms: 1500,
            memory_bytes: 4096,
        }),
    }
}

fn instance_json() -> serde_json::Value {
    json!({
        "id": "web-1", "state": "running", "address": "10.88.0.2",
        "started_at_ms": 1_700_000_000_000_u64, "start_ms": 120, "restarts": 2,
        "last_exit": {"code": null, "signal": 9, "oom_killed": true},
        "last_error": null, "oom_kills": 1, "healthy": null, "ready": true,
        "usage": {"cpu_ms": 1500, "memory_bytes": 4096},
    })
}

fn view() -> ServiceView {
    ServiceView {
        name: "web".into(),
        state: ServiceState::CrashLoop,
        image: "images/web.tar".into(),
        desired: 2,
        running: 1,
        publish: Some(8080),
        instances: vec![instance()],
        error: None,
        dropped_log_lines: 0,
    }
}

#[test]
fn dropped_log_lines_show_once_there_are_some() {
    let mut v = view();
    v.dropped_log_lines = 1234;
    let wire = serde_json::to_value(Service::from(v)).unwrap();
    assert_eq!(wire["dropped_log_lines"], 1234);
    let back: Service = serde_json::from_value(wire).unwrap();
    assert_eq!(back.dropped_log_lines, 1234);
}

#[test]
fn a_service_without_a_cluster_keeps_its_json_shape() {
    let wire = json!({
        "name": "web", "state": "crash-loop", "image": "images/web.tar", "desired": 2,
        "running": 1, "publish": 8080, "instances": [instance_json()], "error": null,
    });
    assert_eq!(serde_json::to_value(view()).unwrap(), wire);
    assert_eq!(serde_json::to_value(Service::from(view())).unwrap(), wire);
    let back: Service = serde_json::from_value(wire).unwrap();
    assert_eq!(back, Service::from(view()));
}

#[test]
fn a_service_in_a_cluster_names_boards_and_lists_remote_instances() {
    let mut service = Service::from(view());
    if let ServiceInstance::Local(l) = &mut service.instances[0] {
        l.board = Some("pi-a".into());
    }
    service
        .instances
        .push(ServiceInstance::Remote(RemoteInstance {
            id: "web-2".into(),
            board: "pi-b".into(),
            state: InstancePhase::Starting,
            address: None,
            ready: false,
        }));
    service.unplaced = Some(vec!["instance 3: no board has 64 MiB free".into()]);
    let mut local = instance_json();
    local["board"] = json!("pi-a");
    let wire = json!({
        "name": "web", "state": "crash-loop", "image": "images/web.tar", "desired": 2,
        "running": 1, "publish": 8080, "error": null,
        "instances": [
            local,
            {"id": "web-2", "board": "pi-b", "state": "starting", "address": null, "ready": false},
        ],
        "unplaced": ["instance 3: no board has 64 MiB free"],
    });
    assert_eq!(serde_json::to_value(&service).unwrap(), wire);
    let back: Service = serde_json::from_value(wire).unwrap();
    assert_eq!(back, service);
    assert_eq!(back.instances[0].board(), Some("pi-a"));
    assert!(back.instances[0].local().is_some());
    assert_eq!(back.instances[1].id(), "web-2");
    assert_eq!(back.instances[1].board(), Some("pi-b"));
    assert_eq!(back.instances[1].state(), InstancePhase::Starting);
    assert!(back.instances[1].local().is_none());
}

#[test]
fn phases_and_states_are_the_words_the_api_always_used() {
    for phase in [
        InstancePhase::Starting,
        InstancePhase::Running,
        InstancePhase::Stopping,
        InstancePhase::Backoff,
        InstancePhase::CrashLoop,
        InstancePhase::Stopped,
        InstancePhase::Frozen,
    ] {
        assert_eq!(serde_json::to_value(phase).unwrap(), json!(phase.as_str()));
    }
    let words: Vec<&str> = [
        ServiceState::Running,
        ServiceState::Starting,
        ServiceState::Degraded,
        ServiceState::CrashLoop,
        ServiceState::Stopped,
        ServiceState::Removing,
    ]
    .into_iter()
    .map(|s| {
        assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
        s.as_str()
    })
    .collect();
    assert_eq!(
        words,
        [
            "running",
            "starting",
            "degraded",
            "crash-loop",
            "stopped",
            "removing"
        ]
    );
    // Read leniently: a word of a newer board is `Unknown` (see the test below).
    assert_eq!(
        serde_json::from_value::<InstancePhase>(json!("exploded")).unwrap(),
        InstancePhase::Unknown
    );
}

#[test]
fn the_list_and_the_change_answers_keep_their_json_shape() {
    let list = ServiceList {
        services: vec![],
        errors: vec![ConfigError {
            file: "services/db.toml".into(),
            line: Some(2),
            field: "image".into(),
            message: "missing".into(),
        }],
    };
    assert_eq!(
        serde_json::to_value(&list).unwrap(),
        json!({"services": [], "errors": [
            {"file": "services/db.toml", "line": 2, "field": "image", "message": "missing"}
        ]})
    );
    assert_eq!(
        serde_json::to_value(Applied {
            applied: "web".into(),
            warning: None,
        })
        .unwrap(),
        json!({"applied": "web"})
    );
    assert_eq!(
        serde_json::to_value(Removed {
            removed: "web".into(),
            warning: None,
        })
        .unwrap(),
        json!({"removed": "web"})
    );
    assert_eq!(
        serde_json::to_value(Restarting {
            restarting: "web".into()
        })
        .unwrap(),
        json!({"restarting": "web"})
    );
}

#[test]
fn an_older_board_s_services_read_with_defaults() {
    let list: ServiceList = serde_json::from_value(json!({"services": [
        {"name": "hello", "state": "running", "instances": [
            {"id": "hello-1", "state": "running", "address": "10.88.0.2", "restarts": 0, "board": "pi-b"},
            {"id": "hello-2", "state": "backoff", "board": "pi-c"},
        ]},
    ]}))
    .unwrap();
    let hello = &list.services[0];
    assert_eq!(hello.desired, 0);
    assert!(list.errors.is_empty());
    assert_eq!(hello.instances[0].local().map(|l| l.restarts), Some(0));
    assert_eq!(hello.instances[0].board(), Some("pi-b"));
    // Without `restarts` it is another board's instance.
    assert!(hello.instances[1].local().is_none());
    assert_eq!(hello.instances[1].state(), InstancePhase::Backoff);
    assert!(!hello.instances[1].ready());
}

#[test]
fn words_from_a_newer_board_read_as_unknown() {
    let phase: InstancePhase = serde_json::from_value(json!("hibernating")).unwrap();
    assert_eq!((phase, phase.as_str()), (InstancePhase::Unknown, "unknown"));
    let state: ServiceState = serde_json::from_value(json!("scaling")).unwrap();
    assert_eq!((state, state.as_str()), (ServiceState::Unknown, "unknown"));
    let source: crate::AddressSource = serde_json::from_value(json!("slaac")).unwrap();
    assert_eq!(source, crate::AddressSource::Unknown);
    assert_eq!(
        serde_json::from_value::<InstancePhase>(json!("crash-loop")).unwrap(),
        InstancePhase::CrashLoop
    );
}
