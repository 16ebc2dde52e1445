//! baton's cluster benchmark. Prints numbers; asserts nothing.
//!
//! ```sh
//! scripts/bench cluster     # or: cargo run --release -p baton-tests --bin bench_cluster [N...]
//! ```
//!
//! For clusters of N boards (default 3, 6 and 10) on one emulated segment under QEMU (TCG):
//! the time from starting QEMU to every board listing all N alive, and from the last board's
//! `baton: ready` to that; gossip traffic per board at rest (bytes of UDP 7946 on the segment,
//! averaged over 20 s); the init's RSS with the cluster running. For 3 boards also: the time from
//! killing a board to its instance of a `scale.min = 3` service running on another board.
//! Needs `scripts/build-example` first.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use baton::client::Client;
use baton_qemu::{packet, Forward, Lab, LabConfig};
use baton_tests::{build_image_with, TOKEN};

const KEY: &str = "bench-cluster-key-0123456789abcdef0123456789";
const GOSSIP_PORT: u16 = 7946;
const API_PORT: u16 = 7070;

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![3, 6, 10]
    } else {
        sizes
    };
    if let Err(e) = run(&sizes) {
        eprintln!("bench_cluster: {e}");
        std::process::exit(1);
    }
}

/// What a board-key signature of a gossip state costs on this host: signing once per state
/// version, verifying once per state received (a proof signs about 160 bytes).
fn signing_cost() {
    use baton_cluster::board_key::{verify, BoardKey};
    const ROUNDS: u32 = 2_000;
    let key = BoardKey::from_seed([7; 32], 0);
    let message = [0x5a_u8; 160];
    let start = Instant::now();
    let mut signature = [0; 64];
    for _ in 0..ROUNDS {
        signature = key.sign(std::hint::black_box(&message));
    }
    let sign = start.elapsed() / ROUNDS;
    let start = Instant::now();
    let mut ok = true;
    for _ in 0..ROUNDS {
        ok &= verify(&key.public(), std::hint::black_box(&message), &signature);
    }
    let check = start.elapsed() / ROUNDS;
    println!(
        "== board-key signatures on this host (x86_64): sign {:.1} us, verify {:.1} us{}",
        sign.as_secs_f64() * 1e6,
        check.as_secs_f64() * 1e6,
        if ok { "" } else { " (verification failed!)" }
    );
}

fn run(sizes: &[usize]) -> Result<(), String> {
    let toml = format!(
        "[cluster]\nname = \"bench\"\nkey = \"{KEY}\"\n\n[api]\ntoken = \"{TOKEN}\"\n\n[time]\nservers = []\n"
    );
    let web = "name = \"web\"\nimage = \"oci-archive:images/hello.tar\"\nport = 8080\nscale = { min = 3 }\nresources = { memory = \"32Mi\" }\n";
    let hello = baton_tests::example_archive();
    let image = build_image_with(
        "qemu-virt",
        &[("cluster.toml", &toml), ("services/web.toml", web)],
        &[("images/hello.tar", hello.as_path())],
    );
    signing_cost();
    println!(
        "== cluster, qemu-virt boards under QEMU (TCG) on one segment, 1 CPU and 256 MiB each"
    );
    println!(
        "{:>6} {:>14} {:>18} {:>20} {:>14}",
        "boards", "converged s", "after ready s", "gossip B/s/board", "init RSS KiB"
    );
    for &n in sizes {
        one_size(&image.path, n)?;
    }
    Ok(())
}

fn clients(lab: &Lab, n: usize) -> Result<Vec<Client>, String> {
    (1..=n)
        .map(|i| {
            let board = lab.board(i).map_err(|e| e.to_string())?;
            let port = board.forwarded(API_PORT).ok_or("no API forward")?;
            Ok(baton_tests::client(port, TOKEN))
        })
        .collect()
}

fn alive_count(client: &Client) -> usize {
    match client.request("GET", "/v1/cluster") {
        Ok((200, v)) => v["members"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter(|m| m["state"] == "alive" || m["state"] == "self")
                    .count()
            })
            .unwrap_or(0),
        _ => 0,
    }
}

fn wait<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Result<T, String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(format!("no result within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn one_size(image: &std::path::Path, n: usize) -> Result<(), String> {
    let mut config = LabConfig::new(image);
    config.boards = n;
    config.cpus = 1;
    config.memory_mib = 256;
    let base = baton_qemu::free_ports(n).map_err(|e| e.to_string())?;
    config.forwards.push(Forward {
        host: base,
        guest: API_PORT,
    });
    let started = Instant::now();
    let lab = Lab::start(config).map_err(|e| e.to_string())?;
    let limit = Duration::from_secs(600);
    for i in 1..=n {
        let board = lab.board(i).map_err(|e| e.to_string())?;
        board
            .wait_for_line("baton: ready", Instant::now() + limit)
            .map_err(|e| e.to_string())?;
    }
    let all_ready = Instant::now();
    let clients = clients(&lab, n)?;
    wait(limit, || {
        clients.iter().all(|c| alive_count(c) == n).then_some(())
    })?;
    let converged = Instant::now();

    // Gossip at rest: UDP 7946 bytes each board sends, over 20 s.
    let mark = lab.frames().last().map_or(0, |f| f.seq + 1);
    let window = Duration::from_secs(20);
    std::thread::sleep(window);
    let mut sent: BTreeMap<String, u64> = BTreeMap::new();
    for frame in lab.frames_since(mark) {
        if let Some(d) = packet::UdpDatagram::parse(&frame.bytes) {
            if d.dst.port() == GOSSIP_PORT {
                *sent.entry(format!("{:?}", frame.source)).or_default() += frame.bytes.len() as u64;
            }
        }
    }
    let per_board = sent.values().sum::<u64>() as f64 / n as f64 / window.as_secs_f64();
    let rss = match clients[0].status() {
        Ok(s) => s["memory"]["init_rss_bytes"].as_u64().unwrap_or(0) / 1024,
        Err(_) => 0,
    };
    println!(
        "{n:>6} {:>14.1} {:>18.1} {:>20.0} {:>14}",
        converged.duration_since(started).as_secs_f64(),
        converged.duration_since(all_ready).as_secs_f64(),
        per_board,
        rss
    );
    if n == 3 {
        failover(&lab, &clients)?;
    }
    Ok(())
}

/// Kills board 3 and times until its `web` instance runs on another board.
fn failover(lab: &Lab, clients: &[Client]) -> Result<(), String> {
    let limit = Duration::from_secs(600);
    let running_elsewhere = |client: &Client| -> Option<usize> {
        let (_, v) = client.request("GET", "/v1/services").ok()?;
        let web = v["services"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == "web")?;
        Some(
            web["instances"]
                .as_array()?
                .iter()
                .filter(|i| i["state"] == "running" && i["board"] != "baton-ba0003")
                .count(),
        )
    };
    wait(limit, || {
        (running_elsewhere(&clients[0]) == Some(2)).then_some(())
    })?;
    let killed = Instant::now();
    lab.kill(3).map_err(|e| e.to_string())?;
    wait(limit, || {
        (running_elsewhere(&clients[0]) == Some(3)).then_some(())
    })?;
    println!(
        "       board 3 killed -> its instance running on another board: {:.1} s",
        killed.elapsed().as_secs_f64()
    );
    Ok(())
}
