//! baton's image and boot benchmark. Prints numbers; asserts nothing.
//!
//! ```sh
//! scripts/bench            # or: cargo run --release -p baton-tests --bin bench
//! ```
//!
//! Reports, per board: image build time with a warm package cache, image and initramfs sizes;
//! for the `virt` board under QEMU: the boot timeline (QEMU start, first console line, PID 1's
//! first line, `baton: ready`), the init's own per-step timings, and memory after boot; image
//! import throughput; and for boards running 1 and 10 example services: the time from
//! `baton: ready` to the first HTTP answer and to all services running, each instance's start
//! time (launch to running container) and memory. Needs `scripts/build-example` first.

use std::path::Path;
use std::time::{Duration, Instant};

use baton_qemu::{Forward, Lab, LabConfig};
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
    boot_timeline(&image)?;
    import_throughput()?;
    services(1)?;
    services(10)
}

/// Imports and unpacks a large single-layer image with the board's store code, on this host.
fn import_throughput() -> Result<(), String> {
    use baton_oci::pack::{PackEntry, PackSpec};
    println!("\n== image import (this host, x86_64; the board's code)");
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let size = 64usize << 20;
    // Incompressible-ish data so gzip does real work: a simple xorshift stream.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let data: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let archive = dir.path().join("big.tar");
    let spec = PackSpec {
        entries: vec![PackEntry::bytes("/blob", data, 0o644)],
        config: baton_oci::RuntimeConfig {
            entrypoint: vec!["/blob".into()],
            ..Default::default()
        },
        platform: baton_oci::Platform::linux_arm64(),
        tag: None,
    };
    let file = std::fs::File::create(&archive).map_err(|e| e.to_string())?;
    baton_oci::pack::oci_archive(&spec, file).map_err(|e| e.to_string())?;
    let bytes = std::fs::metadata(&archive)
        .map_err(|e| e.to_string())?
        .len();
    let store = baton_oci::Store::open(dir.path().join("store")).map_err(|e| e.to_string())?;
    let source =
        baton_oci::Source::parse("oci-archive:big.tar", dir.path()).map_err(|e| e.to_string())?;
    let started = Instant::now();
    store.import(&source, "big").map_err(|e| e.to_string())?;
    let import = started.elapsed();
    let started = Instant::now();
    let prepared = store.prepare("big");
    let unpack = started.elapsed();
    let mib = bytes as f64 / f64::from(1 << 20);
    println!("{:<34} {:>8.1} MiB", "archive", mib);
    println!(
        "{:<34} {:>8.1} MiB/s",
        "import (verify + store blobs)",
        mib / import.as_secs_f64()
    );
    match prepared {
        Ok(_) => println!(
            "{:<34} {:>8.1} MiB/s",
            "unpack layer",
            mib / unpack.as_secs_f64()
        ),
        Err(e) => println!("{:<34} {e}", "unpack layer (needs root)"),
    }
    Ok(())
}

/// Boots a board running `n` copies of the example service and reports start times and memory.
fn services(n: usize) -> Result<(), String> {
    println!("\n== {n} service(s) on a qemu-virt board");
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut texts = vec![("cluster.toml".to_string(), CLUSTER_TOML.to_string())];
    for i in 1..=n {
        let publish = if i == 1 { "publish = 8080\n" } else { "" };
        texts.push((
            format!("services/hello{i}.toml"),
            format!("name = \"hello{i}\"\nimage = \"oci-archive:images/hello.tar\"\nport = 8080\n{publish}resources = {{ memory = \"16Mi\" }}\n"),
        ));
    }
    let files: Vec<(&str, &str)> = texts
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let opts = build_options(dir.path(), "qemu-virt", &files);
    std::fs::create_dir_all(opts.config_dir.join("images")).map_err(|e| e.to_string())?;
    std::fs::copy(
        baton_tests::example_archive(),
        opts.config_dir.join("images/hello.tar"),
    )
    .map_err(|e| e.to_string())?;
    baton::build::build(&opts).map_err(|e| e.to_string())?;

    let api_port = baton_qemu::free_port().map_err(|e| e.to_string())?;
    let http_port = baton_qemu::free_port().map_err(|e| e.to_string())?;
    let mut config = LabConfig::new(&opts.output);
    config.forwards.push(Forward {
        host: api_port,
        guest: baton_tests::API_PORT,
    });
    config.forwards.push(Forward {
        host: http_port,
        guest: 8080,
    });
    let lab = Lab::start(config).map_err(|e| e.to_string())?;
    let board = lab.board(1).map_err(|e| e.to_string())?;
    board
        .wait_for_line(
            baton_tests::READY,
            Instant::now() + Duration::from_secs(300),
        )
        .map_err(|e| e.to_string())?;
    let ready = Instant::now();
    let deadline = ready + Duration::from_secs(300);
    let first_http = loop {
        if baton_tests::http_get(http_port, "/").is_some() {
            break ready.elapsed();
        }
        if Instant::now() > deadline {
            return Err("the service never answered".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let client = baton_tests::client(api_port, TOKEN);
    let all_running = loop {
        let (_, list) = client
            .request("GET", "/v1/services")
            .map_err(|e| e.to_string())?;
        let running = list["services"]
            .as_array()
            .map_or(0, |s| s.iter().filter(|s| s["state"] == "running").count());
        if running == n {
            break (ready.elapsed(), list);
        }
        if Instant::now() > deadline {
            return Err(format!("only {running} of {n} services running"));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (all, list) = all_running;
    let mut starts: Vec<u64> = list["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["instances"][0]["start_ms"].as_u64())
        .collect();
    starts.sort_unstable();
    println!(
        "{:<34} {:>8.2} s",
        "ready -> first HTTP via publish",
        first_http.as_secs_f64()
    );
    println!(
        "{:<34} {:>8.2} s",
        "ready -> all services running",
        all.as_secs_f64()
    );
    if let (Some(min), Some(max)) = (starts.first(), starts.last()) {
        println!(
            "{:<34} {:>8} ms (min {min}, max {max})",
            "launch to running, median",
            starts[starts.len() / 2]
        );
    }
    let status = client.status().map_err(|e| e.to_string())?;
    print_memory(&status);
    Ok(())
}

fn boot_timeline(image: &Path) -> Result<(), String> {
    println!("\n== boot timeline, qemu-virt under QEMU (TCG), 1 board");
    let port = baton_qemu::free_port().map_err(|e| e.to_string())?;
    let mut config = LabConfig::new(image);
    config.forwards.push(Forward {
        host: port,
        guest: baton_tests::API_PORT,
    });
    let started = Instant::now();
    let lab = Lab::start(config).map_err(|e| e.to_string())?;
    let qemu_up = started.elapsed();
    let board = lab.board(1).map_err(|e| e.to_string())?;
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

    let client = baton_tests::client(port, TOKEN);
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
    print_memory(&status);
    Ok(())
}

/// The init's RSS and the system's memory use from a status report.
fn print_memory(status: &serde_json::Value) {
    let kib = |v: &serde_json::Value| v.as_u64().unwrap_or(0) / 1024;
    let memory = &status["memory"];
    println!(
        "{:<34} {:>8} KiB",
        "init RSS",
        kib(&memory["init_rss_bytes"])
    );
    println!(
        "{:<34} {:>8} KiB",
        "system used",
        kib(&memory["system_used_bytes"])
    );
}

/// Bytes the (sparse) file really occupies.
fn allocated_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| m.blocks() * 512)
        .unwrap_or(0)
}
