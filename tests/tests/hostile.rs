//! A board under attack keeps serving. One booted board, with a LAN station (root) on its
//! segment, takes at once:
//! - a container that floods its output (megabytes without a newline, bytes that are not
//!   UTF-8, lines as fast as it can): PID 1's memory stays bounded, the dropped lines are
//!   counted and said, and while it floods the API and another service answer;
//! - an image whose `/etc/passwd` is a link to `/dev/zero`: that service reports the file as
//!   unusable, naming the image and the path, and nothing else notices;
//! - a container that writes more than its `resources.disk` to its writable layer and to a
//!   volume: it gets EDQUOT at the limit, for both together;
//! - 2,000 idle TCP connections to the API from 40 LAN addresses, and a flood of garbage
//!   datagrams at the gossip and mDNS ports: a real API call, and a service on the board,
//!   still answer.
//!
//! Figures (PID 1's memory before and after the flood, the API's latency during the flood and
//! beside the idle connections) are printed, not asserted as timings.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_oci::pack::{self, PackEntry, PackSpec};
use baton_oci::{ExposedPort, Platform, RuntimeConfig};
use baton_qemu::{Lab, LabConfig};
use baton_tests::{
    api, build_image_with, client_at, http_get, repo_root, wait_ready, wait_until, CLUSTER_TOML,
    TOKEN,
};

const FLOOD: &str = r#"name = "flood"
image = "oci-archive:images/hello.tar"
port = 8080
publish = 8080
resources = { memory = "32Mi", disk = "16Mi" }
volumes = [{ name = "scratch", path = "/scratch" }]
readonly_root = false
"#;

const STEADY: &str = r#"name = "steady"
image = "oci-archive:images/hello.tar"
port = 8080
publish = 8081
resources = { memory = "32Mi" }
env = { GREETING = "steady" }
"#;

const HOSTILE: &str = r#"name = "hostile"
image = "oci-archive:images/hostile.tar"
user = "web"
port = 8080
resources = { memory = "32Mi" }
"#;

/// Idle connections: this many LAN addresses, each holding this many (under the API's
/// per-source cap).
const SOURCES: u8 = 40;
const PER_SOURCE: usize = 50;

/// The example binary with `/etc/passwd` a link to `/dev/zero`.
fn hostile_archive(dir: &std::path::Path) -> std::path::PathBuf {
    let binary = repo_root().join("target/aarch64-unknown-linux-musl/board/hello");
    assert!(
        binary.is_file(),
        "{} missing: run scripts/build-example",
        binary.display()
    );
    let spec = PackSpec {
        entries: vec![
            PackEntry::directory("/tmp", 0o1777),
            PackEntry::symlink("/etc/passwd", "/dev/zero"),
            PackEntry::host_file("/hello", &binary, 0o755),
        ],
        config: RuntimeConfig {
            entrypoint: vec!["/hello".into()],
            cmd: Vec::new(),
            env: Vec::new(),
            working_dir: Some("/".into()),
            user: None,
            exposed_ports: vec![ExposedPort {
                port: 8080,
                udp: false,
            }],
        },
        platform: Platform::linux_arm64(),
        tag: Some("hostile:latest".into()),
    };
    let path = dir.join("hostile.tar");
    let file = std::fs::File::create(&path).expect("creating the archive");
    pack::oci_archive(&spec, file).expect("packing the hostile image");
    path
}

/// A GET to 127.0.0.1:`port` that may take minutes (the board writes megabytes under TCG);
/// the body of its 200 answer.
fn slow_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connecting");
    s.set_read_timeout(Some(Duration::from_secs(300)))
        .expect("a read timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .expect("sending the request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("reading the answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
    body.to_string()
}

fn init_rss(status: &serde_json::Value) -> u64 {
    status["memory"]["init_rss_bytes"]
        .as_u64()
        .expect("init RSS")
}

/// The board's address on the segment (its cluster interface), from `/v1/status`.
fn segment_address(status: &serde_json::Value) -> Option<Ipv4Addr> {
    status["addresses"].as_array()?.iter().find_map(|a| {
        let ip: Ipv4Addr = a["address"].as_str()?.split('/').next()?.parse().ok()?;
        (a["interface"] == "eth1" && ip.is_link_local()).then_some(ip)
    })
}

/// On the station: gives it `SOURCES` more addresses and opens `PER_SOURCE` connections to
/// `to` from each; returns the open connections.
fn idle_connections(to: SocketAddr, interface: &str) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for n in 1..=SOURCES {
        let source = Ipv4Addr::new(169, 254, 200, n);
        let added = Command::new("ip")
            .args(["addr", "add", &format!("{source}/16"), "dev", interface])
            .status()
            .expect("running ip (Debian package iproute2)");
        assert!(added.success(), "adding {source}");
        for _ in 0..PER_SOURCE {
            let s = connect_from(source, to).unwrap_or_else(|e| panic!("{source} -> {to}: {e}"));
            held.push(s);
        }
    }
    held
}

/// A TCP connection from `source` (an address of the station) to `to`.
fn connect_from(source: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((source, 0)).into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(10))?;
    Ok(socket.into())
}

/// On the station: 10,000 datagrams of noise each at the board's gossip and mDNS ports;
/// returns how many were sent.
fn garbage(board: Ipv4Addr) -> usize {
    let socket = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("a UDP socket");
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut sent = 0;
    for port in [7946, 5353] {
        for _ in 0..10_000 {
            let mut datagram = [0u8; 256];
            for b in datagram.iter_mut() {
                // xorshift: noise, not randomness.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            if socket.send_to(&datagram, (board, port)).is_ok() {
                sent += 1;
            }
        }
    }
    sent
}

#[test]
fn a_board_under_attack_keeps_serving() {
    let work = tempfile::tempdir().expect("temp dir");
    let hello = baton_tests::example_archive();
    let hostile = hostile_archive(work.path());
    let image = build_image_with(
        "qemu-virt",
        &[
            ("cluster.toml", CLUSTER_TOML),
            ("services/flood.toml", FLOOD),
            ("services/steady.toml", STEADY),
            ("services/hostile.toml", HOSTILE),
        ],
        &[
            ("images/hello.tar", hello.as_path()),
            ("images/hostile.tar", hostile.as_path()),
        ],
    );
    let mut config = LabConfig::new(&image.path);
    config.station = true;
    config.memory_mib = 512;
    let base = baton_qemu::free_ports(3).expect("free ports");
    for (i, guest) in [baton_tests::API_PORT, 8080, 8081].into_iter().enumerate() {
        config.forwards.push(baton_qemu::Forward {
            host: base + i as u16,
            guest,
        });
    }
    let serial = repo_root().join("target/e2e-serial/hostile");
    let _ = std::fs::remove_dir_all(&serial);
    config.serial_dir = Some(serial);
    let lab = Lab::start(config).unwrap_or_else(|e| panic!("starting QEMU (as root): {e}"));
    wait_ready(&lab, 1, 1);
    // The containers' parent cgroup leaves the system its reserve (a 512 MiB board keeps 128).
    let board = lab.board(1).expect("the board");
    assert!(
        board
            .lines()
            .iter()
            .any(|l| l.contains("baton: cgroups: containers may use") && l.contains("128 MiB kept")),
        "no cgroup tree on the console"
    );
    let client = api(&lab, 1, TOKEN);
    let (flood_port, steady_port) = (base + 1, base + 2);
    let limit = Duration::from_secs(240);

    wait_until("flood and steady to answer", limit, || {
        let flood = http_get(flood_port, "/")?;
        let steady = http_get(steady_port, "/")?;
        steady.starts_with("steady").then_some(flood)
    });

    // The hostile image: its service says what is wrong, naming the image and the file.
    let error = wait_until("the hostile service to report its passwd", limit, || {
        let (_, view) = client.request("GET", "/v1/services/hostile").ok()?;
        let text = view.to_string();
        text.contains("/etc/passwd").then_some(text)
    });
    assert!(error.contains("hostile.tar"), "{error}");

    // The flood, on a thread of its own: 32 MiB without a newline, then batches of 100,000
    // lines until the checks below are done.
    let status: serde_json::Value = client.get("/v1/status").expect("status");
    let before = init_rss(&status);
    let stop = Arc::new(AtomicBool::new(false));
    let flooding = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let spewed = slow_get(flood_port, "/spew?mib=32");
            assert_eq!(spewed.trim(), "spewed 32 MiB");
            let mut batches = 0u32;
            while batches == 0 || !stop.load(Ordering::Relaxed) {
                let lines = slow_get(flood_port, "/lines?n=100000");
                assert_eq!(lines.trim(), "wrote 100000 lines");
                batches += 1;
            }
            batches
        })
    };
    // While it floods (its dropped lines counted show it under way), the API and the other
    // service answer.
    let latency = wait_until(
        "the API and steady to answer during the flood",
        limit,
        || {
            if flooding.is_finished() {
                return Some(None);
            }
            let (_, view) = client.request("GET", "/v1/services/flood").ok()?;
            view["dropped_log_lines"].as_u64().filter(|n| *n > 0)?;
            let asked = Instant::now();
            let (code, _) = client.request("GET", "/v1/status").ok()?;
            let latency = asked.elapsed();
            (code == 200).then_some(())?;
            let steady = http_get(steady_port, "/")?;
            steady.starts_with("steady").then_some(Some(latency))
        },
    );
    let Some(latency) = latency else {
        // Its panic, if it had one, says why.
        if let Err(panic) = flooding.join() {
            std::panic::resume_unwind(panic);
        }
        panic!("the flood ended before it was told to");
    };
    stop.store(true, Ordering::Relaxed);
    let batches = flooding.join().expect("the flood's requests");
    let status: serde_json::Value = client.get("/v1/status").expect("status after the flood");
    let after = init_rss(&status);
    println!(
        "API latency during the flood: {:.1} ms (GET /v1/status)",
        latency.as_secs_f64() * 1000.0
    );
    println!(
        "init RSS: {} KiB before, {} KiB after 32 MiB without a newline and {batches} x 100,000 lines",
        before / 1024,
        after / 1024
    );
    assert!(
        after < before + (8 << 20),
        "PID 1 grew from {before} to {after} bytes"
    );
    let dropped = wait_until("the dropped lines to be counted", limit, || {
        let (_, view) = client.request("GET", "/v1/services/flood").ok()?;
        view["dropped_log_lines"].as_u64().filter(|n| *n > 0)
    });
    println!("lines dropped by the rate limit: {dropped}");

    // The disk: 48 MiB into the writable layer stop at the service's 16 MiB, and then its
    // volume, in the same project, takes nothing more.
    assert_eq!(status["data"]["disk_quotas"], true, "{}", status["data"]);
    // And every container here runs in a user namespace of its own.
    assert_eq!(
        status["user_namespaces"]["supported"], true,
        "{}",
        status["user_namespaces"]
    );
    let filled = slow_get(flood_port, "/fill?mib=48");
    println!("writable layer: {}", filled.trim());
    let written: u64 = filled
        .strip_prefix("wrote ")
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected answer {filled:?}"));
    assert!(
        filled.contains("(os error 122)"),
        "EDQUOT expected: {filled}"
    );
    assert!(written <= 16 << 20, "{written} bytes went past 16 MiB");
    let volume = slow_get(flood_port, "/fill?mib=4&to=/scratch/fill.bin");
    println!("volume: {}", volume.trim());
    assert!(
        volume.contains("(os error 122)"),
        "EDQUOT expected: {volume}"
    );

    // 2,000 idle connections from the LAN, and garbage datagrams.
    let address = segment_address(&status).expect("the board's segment address");
    let station = lab.station().expect("the station");
    let interface = station.interface();
    let api_at = SocketAddr::from((address, baton_tests::API_PORT));
    let held = station
        .run(|| idle_connections(api_at, interface))
        .expect("entering the station");
    assert_eq!(held.len(), usize::from(SOURCES) * PER_SOURCE);
    let sent = station
        .run(|| garbage(address))
        .expect("entering the station");
    println!("garbage datagrams sent: {sent}");

    let started = Instant::now();
    let health = wait_until(
        "the API to answer beside 2,000 idle connections",
        limit,
        || {
            client
                .request("GET", "/v1/status")
                .ok()
                .filter(|(code, _)| *code == 200)
        },
    );
    println!(
        "API latency beside {} idle connections: {:.1} ms",
        held.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    drop(health);
    // And from the LAN itself, over TLS, from an address of its own.
    let authority = format!("{address}:{}", baton_tests::API_PORT);
    let answered = station
        .run(|| client_at(&authority, TOKEN).request("GET", "/v1/status"))
        .expect("entering the station");
    assert!(matches!(answered, Ok((200, _))), "{answered:?}");
    assert!(http_get(steady_port, "/")
        .expect("steady still answers")
        .starts_with("steady"));
    drop(held);
}
