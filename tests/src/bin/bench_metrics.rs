//! What seeing a board costs: one `/metrics` scrape with 10 and with 50 services running (its
//! time and its size, beside `GET /v1/health` on the same connection path as the floor), and
//! what the board's init uses. Prints numbers; asserts nothing.
//!
//! ```sh
//! scripts/bench metrics     # or: cargo run --release -p baton-tests --bin bench_metrics
//! ```
//!
//! One qemu-virt board (1 GiB) runs 10 services of the example image, then 50; each time the
//! board settles (every instance running) and is scraped [`SCRAPES`] times, one at a time.

use std::time::{Duration, Instant};

use baton::client::Client;
use baton_qemu::{Lab, LabConfig};
use baton_tests::{api, build_image_with, example_archive, wait_ready, wait_until, CLUSTER_TOML};

/// Scrapes per measurement.
const SCRAPES: usize = 21;

fn spec(i: usize) -> String {
    format!(
        "name = \"s{i:02}\"\nimage = \"oci-archive:images/hello.tar\"\nport = 8080\nresources = {{ memory = \"8Mi\" }}\n"
    )
}

/// The median of `runs` timings of `f`, in ms, and the size of its last answer.
fn time(runs: usize, mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut ms = Vec::with_capacity(runs);
    let mut size = 0;
    for _ in 0..runs {
        let start = Instant::now();
        size = f();
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    (ms[ms.len() / 2], size)
}

fn running(client: &Client) -> usize {
    client
        .get::<serde_json::Value>("/v1/services")
        .ok()
        .and_then(|v| {
            Some(
                v["services"]
                    .as_array()?
                    .iter()
                    .filter(|s| s["running"].as_u64() == Some(1))
                    .count(),
            )
        })
        .unwrap_or(0)
}

fn measure(client: &Client, services: usize) {
    let (scrape, bytes) = time(SCRAPES, || {
        let (code, text) = client.text("GET", "/metrics").expect("scrape");
        assert_eq!(code, 200, "{text}");
        text.len()
    });
    let (health, _) = time(SCRAPES, || {
        let (code, text) = client.text("GET", "/v1/health").expect("health");
        assert_eq!(code, 200, "{text}");
        text.len()
    });
    let rss = client
        .get::<serde_json::Value>("/v1/status")
        .ok()
        .and_then(|s| s["memory"]["init_rss_bytes"].as_u64())
        .unwrap_or(0);
    println!(
        "{services:>3} services  scrape median {scrape:>7.1} ms  {bytes:>7} bytes   \
         /v1/health {health:>6.1} ms  ratio {:>5.1}x   init RSS {} KiB",
        scrape / health.max(0.001),
        rss >> 10
    );
}

fn main() {
    let hello = example_archive();
    let files: Vec<(String, String)> = (0..10)
        .map(|i| (format!("services/s{i:02}.toml"), spec(i)))
        .chain([("cluster.toml".to_string(), CLUSTER_TOML.to_string())])
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let image = build_image_with("qemu-virt", &refs, &[("images/hello.tar", hello.as_path())]);
    let mut config = LabConfig::new(&image.path);
    config.memory_mib = 1024;
    let port = baton_qemu::free_port().expect("a free port");
    config.forwards.push(baton_qemu::Forward {
        host: port,
        guest: baton_tests::API_PORT,
    });
    let lab = Lab::start(config).expect("starting QEMU");
    wait_ready(&lab, 1, 1);
    let client = api(&lab, 1, baton_tests::TOKEN);
    let limit = Duration::from_secs(900);
    println!("== one /metrics scrape (median of {SCRAPES}, one board under QEMU TCG)");
    wait_until("10 services running", limit, || {
        (running(&client) == 10).then_some(())
    });
    measure(&client, 10);
    for i in 10..50 {
        let (code, text) = client
            .send("PUT", &format!("/v1/services/s{i:02}"), Some(&spec(i)))
            .expect("PUT");
        assert_eq!(code, 202, "{text}");
    }
    wait_until("50 services running", limit, || {
        (running(&client) == 50).then_some(())
    });
    measure(&client, 50);
}
