//! baton's image and boot benchmark. Prints numbers; asserts nothing.
//!
//! ```sh
//! scripts/bench            # or: cargo run --release -p baton-tests --bin bench
//! ```
//!
//! Reports, per board: image build time with a warm package cache, image and initramfs sizes;
//! for the `virt` board under QEMU: the boot timeline (QEMU start, first console line, PID 1's
//! first line, `baton: ready`), the init's own per-step timings, and memory after boot.

use std::path::Path;
use std::time::{Duration, Instant};

use baton_qemu::{Cluster, ClusterConfig, Forward};
use baton_tests::{build_options, CLUSTER_TOML, TOKEN};

fn main() {
    if let Err(e) = run() {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    println!("== image builds (warm cache: each board built once before timing)");
    println!(
        "{:<10} {:>10} {:>12} {:>12} {:>14} {:>8}",
        "board", "build s", "image MiB", "on disk MiB", "initramfs KiB", "modules"
    );
    let mut virt_image = None;
    for board in ["qemu-virt", "pi3b", "pi4b"] {
        let work = dir.path().join(board);
        std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
        let opts = build_options(&work, board, &[("cluster.toml", CLUSTER_TOML)]);
        baton::build::build(&opts).map_err(|e| format!("{board}: {e}"))?;
        let started = Instant::now();
        let report = baton::build::build(&opts).map_err(|e| format!("{board}: {e}"))?;
        let took = started.elapsed();
        println!(
            "{:<10} {:>10.2} {:>12} {:>12} {:>14} {:>8}",
            board,
            took.as_secs_f64(),
            report.image_bytes >> 20,
            allocated_bytes(&opts.output) >> 20,
            report.initramfs_bytes >> 10,
            report.modules
        );
        if board == "qemu-virt" {
            virt_image = Some(opts.output.clone());
        }
    }
    let image = virt_image.ok_or("no virt image")?;
    boot_timeline(&image)
}

fn boot_timeline(image: &Path) -> Result<(), String> {
    println!("\n== boot timeline, qemu-virt under QEMU (TCG), 1 board");
    let port = baton_qemu::free_port().map_err(|e| e.to_string())?;
    let mut config = ClusterConfig::new(image);
    config.forwards.push(Forward {
        host: port,
        guest: baton_tests::API_PORT,
    });
    let started = Instant::now();
    let cluster = Cluster::start(config).map_err(|e| e.to_string())?;
    let qemu_up = started.elapsed();
    let board = cluster.board(1).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let wait = |pattern: &str| -> Result<Duration, String> {
        board
            .wait_for_line(pattern, deadline)
            .map_err(|e| e.to_string())?;
        Ok(started.elapsed())
    };
    let pid1 = wait("baton: board ")?;
    let ready = wait(baton_tests::READY)?;
    let first_line = board.time_to_first_line().unwrap_or_default();
    println!("{:<34} {:>8.2} s", "QEMU process up", qemu_up.as_secs_f64());
    println!(
        "{:<34} {:>8.2} s",
        "first console line",
        first_line.as_secs_f64()
    );
    println!("{:<34} {:>8.2} s", "PID 1 first line", pid1.as_secs_f64());
    println!("{:<34} {:>8.2} s", "baton: ready", ready.as_secs_f64());

    let client = baton::client::Client::new(&format!("http://127.0.0.1:{port}"), TOKEN);
    let status = client.status().map_err(|e| e.to_string())?;
    println!("\n== the init's boot steps (from GET /v1/status)");
    let mut total = 0;
    for step in status["boot"].as_array().into_iter().flatten() {
        let ms = step["ms"].as_u64().unwrap_or(0);
        total += ms;
        println!("{:<34} {:>8} ms", step["step"].as_str().unwrap_or("?"), ms);
    }
    println!("{:<34} {:>8} ms", "sum of steps", total);
    println!(
        "{:<34} {:>8} ms",
        "kernel uptime at status",
        status["uptime_ms"].as_u64().unwrap_or(0)
    );

    println!("\n== memory after boot");
    let kib = |v: &serde_json::Value| v.as_u64().unwrap_or(0) / 1024;
    println!(
        "{:<34} {:>8} KiB",
        "init RSS",
        kib(&status["memory"]["init_rss_bytes"])
    );
    println!(
        "{:<34} {:>8} KiB",
        "system used",
        kib(&status["memory"]["system_used_bytes"])
    );
    Ok(())
}

/// Bytes the (sparse) file really occupies.
fn allocated_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| m.blocks() * 512)
        .unwrap_or(0)
}
