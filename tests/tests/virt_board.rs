//! A `virt` board built by the real builder boots under QEMU, reports its status over the API,
//! refuses bad tokens, reboots through the API and comes back.

use std::time::Duration;

use baton_tests::{
    api, boot, build_image, http_request, wait_ready, wait_until, API_PORT, CLUSTER_TOML, TOKEN,
};

#[test]
fn virt_board_boots_reports_status_and_reboots() {
    let image = build_image(
        "qemu-virt",
        &[
            ("cluster.toml", CLUSTER_TOML),
            ("services/README.txt", "service specs go here\n"),
        ],
    );
    let cluster = boot(&image.path, 1, "virt_board_boots");
    wait_ready(&cluster, 1, 1);
    let board = api(&cluster, 1, TOKEN);

    // The API answers only the right token; health needs none.
    let (code, _) = board.request("GET", "/v1/health").expect("health");
    assert_eq!(code, 200);
    for wrong in ["", "e2e-token-0123456789abcdeX", "nonsense"] {
        let (code, _) = api(&cluster, 1, wrong)
            .request("GET", "/v1/status")
            .expect("status");
        assert_eq!(code, 401, "token {wrong:?} must be refused");
    }
    let (code, _) = api(&cluster, 1, "wrong-token-0000000000")
        .request("POST", "/v1/reboot")
        .expect("reboot");
    assert_eq!(code, 401);

    let status = board.status().expect("status with the right token");
    assert_eq!(status["board"], "qemu-virt");
    assert_eq!(status["kernel"], image.report.kernel_release.as_str());
    let addresses = status["addresses"].as_array().expect("addresses");
    assert!(
        addresses.iter().any(|a| a["source"] == "dhcp"
            && a["address"]
                .as_str()
                .is_some_and(|s| s.starts_with("10.0.2."))),
        "expected a DHCP address from QEMU's user network: {addresses:?}"
    );
    let files = baton_tests::strings(&status["config_files"]);
    assert!(
        files.iter().any(|f| f == "cluster.toml")
            && files.iter().any(|f| f == "services/README.txt")
            && files.iter().any(|f| f == "ca.pem"),
        "{files:?}"
    );
    // The API speaks TLS (the client above trusts the cluster CA the build kept); plain HTTP on
    // the same port gets the health check and a redirect, never the status.
    assert_eq!(status["api_tls"]["enabled"], true, "{}", status["api_tls"]);
    let port = cluster
        .board(1)
        .expect("board 1")
        .forwarded(API_PORT)
        .expect("API forwarded");
    let (code, _) = http_request(port, "/v1/health").expect("plain health");
    assert_eq!(code, 200);
    let (code, body) = http_request(port, "/v1/status").expect("plain status");
    assert_eq!(code, 308, "{body}");
    assert!(!body.contains("qemu-virt"), "{body}");
    let data = &status["data"];
    assert_eq!(
        data["grown"], true,
        "first boot grows the data partition: {data}"
    );
    let data_size = data["size_bytes"].as_u64().expect("data size");
    // The card's data partition has project quotas, and the board enforces them.
    assert_eq!(data["disk_quotas"], true, "{data}");
    assert!(
        data_size > 512 << 20,
        "the data partition fills the larger disk: {data_size}"
    );
    let steps: Vec<&str> = status["boot"]
        .as_array()
        .expect("boot")
        .iter()
        .filter_map(|s| s["step"].as_str())
        .collect();
    let order = [
        "filesystems",
        "build-info",
        "modules",
        "disk",
        "config",
        "data",
        "hostname",
        "entropy",
        "clock",
        "network",
        "api",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|s| {
            steps
                .iter()
                .position(|x| x == s)
                .unwrap_or_else(|| panic!("boot step {s} missing: {steps:?}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "boot steps out of order: {steps:?}"
    );
    assert!(
        status["errors"].as_array().expect("errors").is_empty(),
        "{}",
        status["errors"]
    );
    assert!(status["memory"]["init_rss_bytes"].as_u64().unwrap_or(0) > 0);
    let uptime_before = status["uptime_ms"].as_u64().expect("uptime");

    // Reboot through the API: the board comes back, with its data partition already grown.
    let (code, _) = board.request("POST", "/v1/reboot").expect("reboot");
    assert_eq!(code, 202);
    wait_ready(&cluster, 1, 2);
    let status = wait_until("the API after the reboot", Duration::from_secs(60), || {
        board.status().ok()
    });
    assert!(status["uptime_ms"].as_u64().expect("uptime") < uptime_before + 60_000);
    assert_eq!(status["data"]["grown"], false, "{}", status["data"]);
    assert_eq!(status["data"]["size_bytes"].as_u64(), Some(data_size));
    let console = cluster.board(1).expect("board").lines().join("\n");
    assert!(
        console.contains("unmount"),
        "the shutdown unmounts file systems:\n{console}"
    );
}

#[test]
fn broken_cluster_toml_still_boots_and_reports_the_error() {
    let image = build_image("qemu-virt", &[("cluster.toml", CLUSTER_TOML)]);
    // Break the file on the card the way a user with a laptop would: mtools writes the FAT
    // partition in place.
    let broken = format!("{CLUSTER_TOML}\n[network]\nmode = \"carrier-pigeon\"\n");
    baton_tests::replace_config_file(&image.path, "cluster.toml", &broken);

    let cluster = boot(&image.path, 1, "broken_cluster_toml");
    wait_ready(&cluster, 1, 1);
    let status = api(&cluster, 1, TOKEN)
        .status()
        .expect("status with the salvaged token");
    let errors = status["config_errors"].as_array().expect("config_errors");
    let line = broken
        .lines()
        .position(|l| l.starts_with("mode"))
        .map(|i| i as u64 + 1);
    assert!(
        errors.iter().any(|e| e["file"] == "cluster.toml"
            && e["field"] == "network.mode"
            && e["line"].as_u64() == line),
        "{errors:?}"
    );
    let console = cluster.board(1).expect("board").lines().join("\n");
    assert!(
        console.contains("network.mode"),
        "the console shows the error:\n{console}"
    );
}
