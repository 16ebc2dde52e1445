//! Limits, restarts, live changes and volumes of services on a real board under QEMU:
//! a memory hog is OOM-killed and restarted, threads stop at `pids.max`, a crashing service
//! backs off and shows it, a changed spec pushed over the API replaces the running instance
//! (an invalid one is refused and changes nothing), a removed service goes away, and a named
//! volume keeps its data across a container restart and a reboot. The board's dashboard is
//! driven in a real browser meanwhile (`tests/browser/dashboard.py`).

use std::time::Duration;

use baton::client::Client;
use baton_tests::prometheus::Prometheus;
use baton_tests::{
    api, boot_forwarding, build_image_with, http_get, wait_ready, wait_until, API_PORT,
    CLUSTER_TOML, TOKEN,
};

const COUNTER: &str = r#"name = "counter"
image = "oci-archive:images/hello.tar"
port = 8080
publish = 8080
env = { STATE_DIR = "/state", GREETING = "first" }
resources = { memory = "32Mi", pids = 24 }
volumes = [{ name = "state", path = "/state" }]
restart = "on-failure"
"#;

const CRASHER: &str = r#"name = "crasher"
image = "oci-archive:images/hello.tar"
command = ["/hello", "--exit", "3"]
restart = "always"
allow = ["counter"]
"#;

/// The board's events, oldest first (its whole ring).
fn events(board: &Client) -> Vec<serde_json::Value> {
    board
        .get::<serde_json::Value>("/v1/events?tail=1000")
        .ok()
        .and_then(|v| v["events"].as_array().cloned())
        .unwrap_or_default()
}

/// `[api] metrics_token` on this test's card.
const SCRAPE_TOKEN: &str = "e2e-scrape-only-0123456789";

fn service(board: &Client, name: &str) -> Option<serde_json::Value> {
    let (code, list) = board.request("GET", "/v1/services").ok()?;
    if code != 200 {
        return None;
    }
    list["services"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
}

#[test]
fn limits_restarts_live_changes_and_volumes() {
    let archive = baton_tests::example_archive();
    // Prometheus scrapes with a token that opens /metrics only.
    let cluster_toml = CLUSTER_TOML.replace(
        &format!("token = \"{TOKEN}\"\n"),
        &format!("token = \"{TOKEN}\"\nmetrics_token = \"{SCRAPE_TOKEN}\"\n"),
    );
    let image = build_image_with(
        "qemu-virt",
        &[
            ("cluster.toml", &cluster_toml),
            ("services/counter.toml", COUNTER),
            ("services/crasher.toml", CRASHER),
        ],
        &[("images/hello.tar", archive.as_path())],
    );
    let cluster = boot_forwarding(&image.path, 1, "service_lifecycle", &[API_PORT, 8080]);
    wait_ready(&cluster, 1, 1);
    let board = api(&cluster, 1, TOKEN);
    let port = cluster
        .board(1)
        .expect("board")
        .forwarded(8080)
        .expect("forwarded");
    let minute = Duration::from_secs(60);
    // Debian's Prometheus scrapes the board's /metrics throughout.
    let api_port = cluster
        .board(1)
        .expect("board")
        .forwarded(API_PORT)
        .expect("forwarded");
    let prometheus = Prometheus::scraping(api_port, SCRAPE_TOKEN);
    let (code, _) = baton_tests::client(api_port, SCRAPE_TOKEN)
        .request("GET", "/v1/status")
        .expect("status");
    assert_eq!(code, 401, "the metrics token opened /v1/status");

    // The volume counts requests.
    let first: u64 = wait_until("the counter to answer", Duration::from_secs(120), || {
        http_get(port, "/count")
    })
    .trim()
    .parse()
    .expect("a number");
    assert_eq!(first, 1);

    // pids.max = 24 stops threads well before 100.
    let threads: u32 = wait_until("the thread count", minute, || {
        http_get(port, "/threads?n=100")
    })
    .trim()
    .parse()
    .expect("a number");
    assert!(
        threads > 0 && threads < 24,
        "pids.max must stop the threads: {threads} started"
    );

    // A memory hog is OOM-killed, reported, and restarted (on-failure).
    let _ = http_get(port, "/hog");
    let counter = wait_until("the OOM kill to be reported", minute, || {
        service(&board, "counter").filter(|s| s["instances"][0]["oom_kills"].as_u64() >= Some(1))
    });
    let instance = &counter["instances"][0];
    assert_eq!(instance["last_exit"]["oom_killed"], true, "{instance}");
    let second: u64 = wait_until("the counter to come back", minute, || {
        http_get(port, "/count")
    })
    .trim()
    .parse()
    .expect("a number");
    assert_eq!(second, 2, "the volume kept the count across the restart");
    let restarts = service(&board, "counter").expect("counter")["instances"][0]["restarts"]
        .as_u64()
        .expect("restarts");
    assert!(restarts >= 1);

    // Prometheus's query API returns what the board's own API says.
    wait_until("Prometheus to have scraped the board", minute, || {
        (prometheus.value("up{job=\"baton\"}") == Some(1.0)).then_some(())
    });
    // The board's own figure, read again at each try: the kernel may count another kill.
    let said = |field: &str| {
        service(&board, "counter")?["instances"][0][field]
            .as_u64()
            .map(|n| n as f64)
    };
    for (query, field) in [
        (
            "baton_instance_oom_kills_total{service=\"counter\"}",
            "oom_kills",
        ),
        (
            "baton_instance_restarts_total{service=\"counter\"}",
            "restarts",
        ),
    ] {
        wait_until(
            &format!("Prometheus to say {query} as the API does"),
            minute,
            || {
                let scraped = prometheus.value(query)?;
                (scraped >= 1.0 && Some(scraped) == said(field)).then_some(())
            },
        );
    }
    for (query, expected) in [
        (
            "baton_service_instances{service=\"counter\",state=\"desired\"}",
            1.0,
        ),
        ("baton_instance_ready{service=\"counter\"}", 1.0),
    ] {
        wait_until(
            &format!("Prometheus to say {query} = {expected}"),
            minute,
            || (prometheus.value(query) == Some(expected)).then_some(()),
        );
    }
    for query in [
        "baton_instance_memory_bytes{service=\"counter\"}",
        "baton_board_data_bytes{kind=\"free\"}",
        "baton_init_resident_bytes",
    ] {
        let value = prometheus.value(query);
        assert!(
            value.is_some_and(|v| v > 0.0),
            "{query}: {value:?}\n{}",
            prometheus.log()
        );
    }

    // A service that keeps exiting backs off, and says so.
    let crasher = wait_until("the crasher to back off", minute, || {
        service(&board, "crasher").filter(|s| s["instances"][0]["restarts"].as_u64() >= Some(2))
    });
    let state = crasher["instances"][0]["state"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        ["backoff", "crash-loop", "starting", "running"].contains(&state.as_str()),
        "{crasher}"
    );
    assert_eq!(crasher["instances"][0]["last_exit"]["code"], 3, "{crasher}");
    assert_ne!(crasher["state"], "running");

    // An invalid change is refused with the line and field, and changes nothing.
    let (code, text) = board
        .send(
            "PUT",
            "/v1/services/counter",
            Some(&COUNTER.replace("\"32Mi\"", "\"lots\"")),
        )
        .expect("put");
    assert_eq!(code, 400, "{text}");
    let reply: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(reply["errors"][0]["field"], "resources.memory", "{reply}");
    assert_eq!(reply["errors"][0]["line"], 6, "{reply}");
    assert_eq!(
        http_get(port, "/").as_deref(),
        Some("first from counter-1\n")
    );

    // The board's events tell the OOM kill and the restart, and a follower of the stream sees
    // the change below as it happens.
    let crashed = wait_until("the OOM kill among the events", minute, || {
        events(&board).into_iter().find(|e| {
            e["kind"] == "instance-crashed"
                && e["instance"] == "counter-1"
                && e["exit"]["oom_killed"] == true
        })
    });
    assert!(crashed["seq"].as_u64() > Some(0), "{crashed}");
    let all = events(&board);
    let after_crash = |kind: &str| {
        all.iter().any(|e| {
            e["kind"] == kind
                && e["instance"] == "counter-1"
                && e["seq"].as_u64() > crashed["seq"].as_u64()
        })
    };
    assert!(after_crash("instance-started"), "{all:?}");
    assert!(
        all.iter()
            .any(|e| e["kind"] == "spec-applied" && e["service"] == "counter"),
        "{all:?}"
    );
    // The follower asks for the ring's worth first, so it sees the change whenever it connects;
    // only events after this mark count.
    let mark = all.last().and_then(|e| e["seq"].as_u64()).unwrap_or(0);
    let (lines, followed) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let follower = baton_tests::client(api_port, TOKEN);
        let _ = follower.follow("/v1/events?follow=1&tail=1000", |line| {
            let _ = lines.send(line.to_string());
        });
    });

    // A valid change replaces the instance.
    let (code, text) = board
        .send(
            "PUT",
            "/v1/services/counter",
            Some(&COUNTER.replace("\"first\"", "\"second\"")),
        )
        .expect("put");
    assert_eq!(code, 202, "{text}");
    wait_until("the changed spec to serve", minute, || {
        http_get(port, "/").filter(|b| b == "second from counter-1\n")
    });
    let deadline = std::time::Instant::now() + minute;
    let seen = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = followed
            .recv_timeout(left)
            .expect("the change on the followed event stream within a minute");
        let Some(data) = line.strip_prefix("data:") else {
            continue;
        };
        let event: serde_json::Value = serde_json::from_str(data.trim()).expect("an event");
        if event["kind"] == "spec-applied" && event["seq"].as_u64() > Some(mark) {
            break event;
        }
    };
    assert_eq!(seen["service"], "counter", "{seen}");

    // The dashboard in Debian's chromium: sign-in (a wrong token first), the cluster page as
    // /v1/status says, the counter's log lines live (hostile ones shown as text), its OOM kill
    // on the events page, who may call whom; screenshots of each page.
    let status: serde_json::Value = board.get("/v1/status").expect("status");
    let hostname = status["hostname"]
        .as_str()
        .expect("a host name")
        .to_string();
    let rss = |status: &serde_json::Value| status["memory"]["init_rss_bytes"].as_u64().unwrap_or(0);
    let rss_before = rss(&status);
    baton_tests::browser::check(
        &baton_tests::browser::Dashboard {
            api_port,
            token: TOKEN,
            board: &hostname,
            service: "counter",
            service_port: port,
            others: &["crasher"],
            caller: "crasher",
            boards: &[],
            cluster_only: false,
        },
        Duration::from_secs(360),
    );
    let status: serde_json::Value = board.get("/v1/status").expect("status");
    println!(
        "init RSS before the browser's session: {} KiB, after: {} KiB",
        rss_before >> 10,
        rss(&status) >> 10
    );
    wait_until("the counter to serve again after its kill", minute, || {
        http_get(port, "/").filter(|b| b == "second from counter-1\n")
    });

    // Removing a service stops it and forgets it.
    let (code, _) = board
        .send("DELETE", "/v1/services/crasher", None)
        .expect("delete");
    assert_eq!(code, 202);
    wait_until("the crasher to be gone", minute, || {
        service(&board, "crasher").is_none().then_some(())
    });
    assert!(
        events(&board)
            .iter()
            .any(|e| e["kind"] == "spec-deleted" && e["service"] == "crasher"),
        "no spec-deleted event for crasher"
    );
    let (code, _) = board
        .send("DELETE", "/v1/services/crasher", None)
        .expect("delete again");
    assert_eq!(code, 404);

    // After a reboot: the changed spec (written to the card) runs, the removed one does not,
    // and the volume still has the count.
    let before: u64 = http_get(port, "/count")
        .expect("count")
        .trim()
        .parse()
        .expect("a number");
    let (code, _) = board.request("POST", "/v1/reboot").expect("reboot");
    assert_eq!(code, 202);
    wait_ready(&cluster, 1, 2);
    let after: u64 = wait_until(
        "the counter after the reboot",
        Duration::from_secs(120),
        || http_get(port, "/count"),
    )
    .trim()
    .parse()
    .expect("a number");
    assert_eq!(after, before + 1, "the volume survives the reboot");
    assert_eq!(
        http_get(port, "/").as_deref(),
        Some("second from counter-1\n")
    );
    assert!(
        service(&board, "crasher").is_none(),
        "a removed service stays removed"
    );
}
