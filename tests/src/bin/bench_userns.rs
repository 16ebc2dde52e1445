//! The cost of a user namespace on a container start, side by side with the same start in the
//! board's ids, in one run on one board. Prints numbers; asserts nothing.
//!
//! ```sh
//! scripts/bench userns     # or: cargo run --release -p baton-tests --bin bench_userns
//! ```
//!
//! One qemu-virt board runs the example service twice: `mapped` in a user namespace of its own
//! (the default: idmapped image layers, a mapped writable layer, the helper joining its network
//! namespace) and `board-ids` with `host_ids`. Each is restarted in turn, one at a time, and the
//! board's own figure for the start (launch to running container) is collected.

use std::time::Duration;

use baton_qemu::{Lab, LabConfig};
use baton_tests::{api, build_image_with, example_archive, wait_ready, wait_until, CLUSTER_TOML};

/// Restarts of each service.
const ROUNDS: usize = 9;

const MAPPED: &str = r#"name = "mapped"
image = "oci-archive:images/hello.tar"
port = 8080
resources = { memory = "16Mi" }
"#;

const BOARD_IDS: &str = r#"name = "board-ids"
image = "oci-archive:images/hello.tar"
port = 8080
resources = { memory = "16Mi" }
host_ids = "the anchor of the user namespace benchmark"
"#;

fn main() {
    let hello = example_archive();
    let image = build_image_with(
        "qemu-virt",
        &[
            ("cluster.toml", CLUSTER_TOML),
            ("services/mapped.toml", MAPPED),
            ("services/board-ids.toml", BOARD_IDS),
        ],
        &[("images/hello.tar", hello.as_path())],
    );
    let mut config = LabConfig::new(&image.path);
    let port = baton_qemu::free_port().expect("a free port");
    config.forwards.push(baton_qemu::Forward {
        host: port,
        guest: baton_tests::API_PORT,
    });
    let lab = Lab::start(config).expect("starting QEMU");
    wait_ready(&lab, 1, 1);
    let client = api(&lab, 1, baton_tests::TOKEN);
    let limit = Duration::from_secs(300);
    // The instance's (start time, figure) once it runs.
    let running = |service: &str| {
        let (_, view) = client
            .request("GET", &format!("/v1/services/{service}"))
            .ok()?;
        let instance = &view["instances"][0];
        (instance["state"] == "running").then(|| {
            (
                instance["started_at_ms"].as_u64().unwrap_or(0),
                instance["start_ms"].as_u64().unwrap_or(0),
            )
        })
    };
    let mut figures: [(&str, Vec<u64>); 2] = [("mapped", Vec::new()), ("board-ids", Vec::new())];
    for (name, _) in &figures {
        wait_until(&format!("{name} to run"), limit, || running(name));
    }
    for _ in 0..ROUNDS {
        for (name, samples) in &mut figures {
            let (before, _) = wait_until("the instance to run", limit, || running(name));
            let (code, _) = client
                .request("POST", &format!("/v1/services/{name}/restart"))
                .expect("restart");
            assert_eq!(code, 202, "restart {name}");
            let (_, ms) = wait_until("the restarted instance to run", limit, || {
                running(name).filter(|(at, _)| *at != before)
            });
            samples.push(ms);
        }
    }
    println!("== container start, launch to running (board's figure, {ROUNDS} restarts each)");
    let mut medians = Vec::new();
    for (name, samples) in &mut figures {
        samples.sort_unstable();
        let median = samples[samples.len() / 2];
        medians.push(median);
        println!("{name:<10} median {median:>5} ms   all {samples:?}");
    }
    println!(
        "user namespace / board ids: {:.2}x",
        medians[0] as f64 / medians[1].max(1) as f64
    );
}
