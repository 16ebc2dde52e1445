//! The `qemu` part: requests per second through a board's front door under QEMU (TCG), to an
//! instance on the same board and on another board (over the WireGuard mesh), side by side with
//! the same instance reached through its board's `publish` port (no front door) in the same
//! run. wrk runs on the LAN station, pinned like the host parts; needs root (the station),
//! `scripts/build-init` and `scripts/build-example`.

use std::net::Ipv4Addr;
use std::time::Duration;

use baton_qemu::{Lab, LabConfig};
use baton_tests::web::{board_addresses, get};
use baton_tests::{build_image_with, repo_root, wait_ready, wait_until, TOKEN};

use crate::load;

const CLUSTER: &str = "bench-front-door";
const KEY: &str = "bench-front-door-key-0123456789abcdef012345";
/// Where board 2 publishes the instance (the anchor: no front door on the way).
const PUBLISH: u16 = 8090;
/// How long the boards and the instance may take to come up.
const LIMIT: Duration = Duration::from_secs(600);
/// wrk's connection counts (a board under TCG saturates early).
const CONNECTIONS: [u32; 3] = [1, 4, 16];

fn board_name(index: usize) -> String {
    format!("baton-ba00{index:02x}")
}

pub fn run(seconds: u32) -> Result<(), String> {
    let toml = format!(
        "[cluster]\nname = \"{CLUSTER}\"\nkey = \"{KEY}\"\n\n[api]\ntoken = \"{TOKEN}\"\n\n\
         [time]\nservers = []\n\n[front_door]\nhttp = 80\nhttps = 443\nredirect_http = false\n\
         per_client_rate = 100000\nper_client_burst = 100000\n"
    );
    // The route's host is the one wrk sends (load::wrk's `Host: bench.lan`).
    let spec = format!(
        "name = \"web\"\nimage = \"oci-archive:images/hello.tar\"\nport = 8080\npublish = {PUBLISH}\n\
         resources = {{ memory = \"32Mi\" }}\nplacement = {{ boards = [\"{}\"] }}\n\
         route = {{ host = \"bench.lan\" }}\n",
        board_name(2)
    );
    let hello = baton_tests::example_archive();
    let image = build_image_with(
        "qemu-virt",
        &[("cluster.toml", &toml), ("services/web.toml", &spec)],
        &[("images/hello.tar", hello.as_path())],
    );
    let mut config = LabConfig::new(&image.path);
    config.boards = 2;
    config.cpus = 1;
    config.memory_mib = 384;
    config.station = true;
    let serial = repo_root().join("target/e2e-serial/bench-front-door");
    let _ = std::fs::remove_dir_all(&serial);
    config.serial_dir = Some(serial);
    let lab = Lab::start(config).map_err(|e| format!("starting QEMU (as root): {e}"))?;
    for i in 1..=2 {
        wait_ready(&lab, i, 1);
    }
    let station = lab.station().map_err(|e| format!("the station: {e}"))?;
    let addresses = board_addresses(station, CLUSTER, 2, LIMIT);
    let addr = |i: usize| addresses[&board_name(i)];
    for i in 1..=2 {
        wait_until(&format!("bench.lan through board {i}"), LIMIT, || {
            let answer = station
                .run(|| get((addr(i), 80).into(), "bench.lan", "/", &[]))
                .ok()??;
            (answer.status == 200).then_some(())
        });
    }
    println!();
    println!("qemu: requests per second under QEMU (TCG, 2 boards of 1 CPU each), HTTP/1.1 keep-alive, wrk on the LAN station");
    println!("      the instance runs on board 2; \"publish\" is board 2's publish port (no front door), the anchor");
    println!(
        "{:<34} {:>5} {:>10} {:>10} {:>10} {:>7} {:>14}",
        "path", "conns", "req/s", "p50", "p99", "errors", "req/s/publish"
    );
    let paths: [(&str, Ipv4Addr, u16); 3] = [
        ("publish, board 2", addr(2), PUBLISH),
        ("front door, same board (2)", addr(2), 80),
        ("front door, other board (1, mesh)", addr(1), 80),
    ];
    for connections in CONNECTIONS {
        // Ratios are to the publish row of the same count only (none if it failed).
        let mut anchor: Option<f64> = None;
        for (name, ip, port) in paths {
            let url = format!("http://{ip}:{port}/");
            let figures = station
                .run(|| load::wrk(&url, connections, seconds, false, None))
                .map_err(|e| format!("entering the station: {e}"))?;
            match figures {
                Ok(f) => {
                    if port == PUBLISH {
                        anchor = Some(f.rps);
                    }
                    let ratio = match anchor {
                        Some(a) if a > 0.0 => format!("{:.2}", f.rps / a),
                        _ => "-".into(),
                    };
                    println!(
                        "{:<34} {:>5} {:>10.0} {:>10} {:>10} {:>7} {:>14}",
                        name,
                        connections,
                        f.rps,
                        crate::duration(f.p50_us),
                        crate::duration(f.p99_us),
                        f.errors,
                        ratio
                    );
                }
                Err(e) => println!("{name:<34} {connections:>5} failed: {e}"),
            }
        }
    }
    Ok(())
}
