//! Scaling under QEMU (TCG, one board of one CPU, the LAN station as the client):
//! - the latency a service at zero adds to its first request through the front door, with
//!   `scale.idle = "stop"` and with `"freeze"`, side by side with a warm request and with the
//!   container's own start (launch to running, as the supervisor measured it) in the same run;
//! - the time from a step of load (slow requests, three times what one instance is sized for)
//!   to the decision and to the new instances ready;
//! - the memory a held request costs the board (the system's used memory with many requests
//!   held for a service that never starts, against none).
//!
//! Prints numbers; asserts nothing.
//!
//! ```sh
//! scripts/bench scale     # or: cargo run --release -p baton-tests --bin bench_scale -- [RUNS]
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use baton::client::Client;
use baton_qemu::{Forward, Lab, LabConfig};
use baton_tests::view::get as api_get;
use baton_tests::web::{board_addresses, get};
use baton_tests::{api, build_image_with, repo_root, wait_ready, wait_until, API_PORT, TOKEN};

const CLUSTER: &str = "bench-scale";
const KEY: &str = "bench-scale-key-0123456789abcdef0123456789abc";
const LIMIT: Duration = Duration::from_secs(600);
/// Warm requests per run (their median is the warm latency).
const WARM: usize = 5;
/// Requests held at once for the memory figure (within one client's burst at the front door).
const HELD: usize = 100;
/// Clients of the load step: each keeps one 2-second request in flight, against a target of
/// two per instance, so the step asks for three instances (`max`).
const LOAD_CLIENTS: usize = 6;

fn spec(name: &str, scale: &str) -> String {
    format!(
        "name = \"{name}\"\nimage = \"oci-archive:images/hello.tar\"\nport = 8080\n\
         scale = {{ {scale} }}\nresources = {{ memory = \"32Mi\" }}\n\
         health = {{ http = \"/healthz\", interval = \"5s\" }}\nroute = {{ host = \"{name}.lan\" }}\n"
    )
}

/// The `scaling` object and the local instances of `service` on the board.
fn service(client: &Client, name: &str) -> Option<serde_json::Value> {
    let list = api_get(client, "/v1/services")?;
    list["services"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
}

fn running(s: &serde_json::Value) -> usize {
    s["instances"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|i| i["state"] == "running").count())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let toml = format!(
        "[cluster]\nname = \"{CLUSTER}\"\nkey = \"{KEY}\"\n\n[api]\ntoken = \"{TOKEN}\"\n\n\
         [time]\nservers = []\n\n[front_door]\nhttp = 80\nhttps = 0\n"
    );
    let idle = "idle_after = \"10s\", window = \"6s\"";
    let files = [
        ("cluster.toml".to_string(), toml),
        ("services/warm.toml".into(), spec("warm", "min = 1")),
        (
            "services/cold.toml".into(),
            spec("cold", &format!("min = 0, {idle}")),
        ),
        (
            "services/icy.toml".into(),
            spec("icy", &format!("min = 0, idle = \"freeze\", {idle}")),
        ),
        (
            "services/busy.toml".into(),
            spec(
                "busy",
                &format!("min = 1, max = 3, target_concurrency = 2, {idle}"),
            ),
        ),
        (
            "services/broken.toml".into(),
            // No such program: nothing ever serves it, and requests wait their whole hold.
            format!(
                "{}command = [\"/no/such/program\"]\n",
                spec(
                    "broken",
                    &format!("min = 0, hold_queue = {HELD}, hold_timeout = \"28s\", {idle}")
                )
            ),
        ),
    ];
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let hello = baton_tests::example_archive();
    let image = build_image_with(
        "qemu-virt",
        &files,
        &[("images/hello.tar", hello.as_path())],
    );
    let mut config = LabConfig::new(&image.path);
    config.boards = 1;
    config.cpus = 1;
    config.memory_mib = 384;
    config.station = true;
    let base = baton_qemu::free_ports(1).expect("free ports");
    config.forwards.push(Forward {
        host: base,
        guest: API_PORT,
    });
    let serial = repo_root().join("target/e2e-serial/bench-scale");
    let _ = std::fs::remove_dir_all(&serial);
    config.serial_dir = Some(serial);
    let lab = Lab::start(config).unwrap_or_else(|e| panic!("starting QEMU (as root): {e}"));
    wait_ready(&lab, 1, 1);
    let station = lab.station().expect("the station");
    let client = api(&lab, 1, TOKEN);
    let addresses = board_addresses(station, CLUSTER, 1, LIMIT);
    let http = SocketAddr::from((*addresses.values().next().expect("the board"), 80));
    // One timed GET on the station: (status, milliseconds).
    let timed = |host: &str| -> (u16, f64) {
        station
            .run(|| {
                let t = Instant::now();
                let status = get(http, host, "/", &[]).map_or(0, |a| a.status);
                (status, t.elapsed().as_secs_f64() * 1000.0)
            })
            .expect("station")
    };
    wait_until("warm answers", LIMIT, || {
        (timed("warm.lan").0 == 200).then_some(())
    });
    // icy's first wake is a start: make it frozen once before the runs.
    timed("icy.lan");

    println!();
    println!("scale from zero: first request through the front door to a service at zero, under QEMU (TCG, 1 board of 1 CPU), client on the LAN station");
    println!("      warm: median of {WARM} requests to a running instance; start: the container's own launch to running (the supervisor's start_ms)");
    println!(
        "{:>3} {:>9} {:>12} {:>9} {:>14} {:>14} {:>16}",
        "run", "warm ms", "stop ms", "start ms", "stop - warm", "stop excess", "freeze - warm"
    );
    let (mut stop_added, mut excess, mut freeze_added, mut starts) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 1..=runs {
        wait_until("cold at zero and icy frozen", LIMIT, || {
            let cold = service(&client, "cold")?;
            let icy = service(&client, "icy")?;
            // At zero: no instance left, not even one still stopping (a wake would wait for
            // its stop).
            let at_zero = cold["scaling"]["desired"] == 0 && present(&cold) == 0;
            (at_zero && icy["scaling"]["frozen"] == 1).then_some(())
        });
        let warm = median((0..WARM).map(|_| timed("warm.lan").1).collect());
        let (status, stop) = timed("cold.lan");
        let (fstatus, freeze) = timed("icy.lan");
        let start = service(&client, "cold")
            .and_then(|s| {
                s["instances"]
                    .as_array()?
                    .iter()
                    .find_map(|i| i["start_ms"].as_f64())
            })
            .unwrap_or(f64::NAN);
        if status != 200 || fstatus != 200 {
            println!("{run:>3} failed: cold answered {status}, icy {fstatus}");
            continue;
        }
        println!(
            "{run:>3} {warm:>9.1} {stop:>12.1} {start:>9.0} {:>14.1} {:>14.1} {:>16.1}",
            stop - warm,
            stop - warm - start,
            freeze - warm
        );
        stop_added.push(stop - warm);
        excess.push(stop - warm - start);
        freeze_added.push(freeze - warm);
        starts.push(start);
    }
    println!();
    println!(
        "median over {} runs: \"stop\" adds {:.0} ms to the first request (the container's start: {:.0} ms, so {:.0} ms beyond it; goal: 50 ms); \"freeze\" adds {:.1} ms (goal: 10 ms)",
        stop_added.len(),
        median(stop_added),
        median(starts),
        median(excess),
        median(freeze_added)
    );
    println!("published anchors: Knative's activator about 4-5 s per cold start, KEDA's HTTP add-on 3.35 s, Fly's suspended machines a few hundred ms");

    println!();
    println!("load step: {LOAD_CLIENTS} clients each keep a 2 s request to busy in flight (min 1, max 3, target_concurrency 2, window 6 s)");
    println!("{:>3} {:>14} {:>16}", "run", "decided 3 (s)", "3 ready (s)");
    let mut steps = Vec::new();
    for run in 1..=runs {
        wait_until("busy back at 1", LIMIT, || {
            let s = service(&client, "busy")?;
            (s["scaling"]["desired"] == 1 && running(&s) == 1).then_some(())
        });
        match load_step(&lab, &client, http) {
            Some((decided, ready)) => {
                println!("{run:>3} {decided:>14.1} {ready:>16.1}");
                steps.push(ready);
            }
            None => println!("{run:>3} busy did not reach 3 ready within {LIMIT:?}"),
        }
    }
    println!(
        "median over {} runs: {:.1} s from the step to three instances ready",
        steps.len(),
        median(steps)
    );

    println!();
    match held_memory(&lab, &client, http) {
        Some((one, many, held)) => println!(
            "memory per held request: {:.1} KiB ({} requests held for broken: the system used {:.1} MiB with one held, {:.1} MiB with {held})",
            (many as f64 - one as f64) / (held.saturating_sub(1).max(1)) as f64 / 1024.0,
            held,
            one as f64 / 1048576.0,
            many as f64 / 1048576.0
        ),
        None => println!("memory per held request: the requests were not all held within the hold timeout"),
    }
}

/// The instances of a service that exist (running, starting or stopping).
fn present(s: &serde_json::Value) -> usize {
    s["instances"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|i| i["state"] != "stopped").count())
}

/// The instances of `name` the board reports ready.
fn ready(s: &serde_json::Value) -> usize {
    s["instances"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|i| i["ready"] == true).count())
}

/// Requests held for `name`, over the boards.
fn held(client: &Client, name: &str) -> u64 {
    service(client, name)
        .and_then(|s| {
            Some(
                s["scaling"]["held"]
                    .as_array()?
                    .iter()
                    .filter_map(|h| h["count"].as_u64())
                    .sum(),
            )
        })
        .unwrap_or(0)
}

/// The system's used memory, the median of a few samples.
fn used(client: &Client) -> u64 {
    let samples: Vec<f64> = (0..5)
        .filter_map(|_| {
            let v = api_get(client, "/v1/status")?["memory"]["system_used_bytes"].as_f64();
            std::thread::sleep(Duration::from_millis(200));
            v
        })
        .collect();
    median(samples) as u64
}

/// Starts the load step; the seconds to busy's decision of 3 and to three instances ready.
fn load_step(lab: &Lab, client: &Client, http: SocketAddr) -> Option<(f64, f64)> {
    let station = lab.station().expect("the station");
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            station
                .run(|| {
                    std::thread::scope(|inner| {
                        for _ in 0..LOAD_CLIENTS {
                            inner.spawn(|| {
                                while !stop.load(Ordering::SeqCst) {
                                    get(http, "busy.lan", "/slow?ms=2000", &[]);
                                }
                            });
                        }
                    })
                })
                .expect("station");
        });
        let mut decided = None;
        let result = loop {
            if start.elapsed() > LIMIT {
                break None;
            }
            if let Some(s) = service(client, "busy") {
                if decided.is_none() && s["scaling"]["desired"].as_u64() >= Some(3) {
                    decided = Some(start.elapsed().as_secs_f64());
                }
                if ready(&s) >= 3 {
                    let at = start.elapsed().as_secs_f64();
                    break Some((decided.unwrap_or(at), at));
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        stop.store(true, Ordering::SeqCst);
        result
    })
}

/// Holds requests for broken (which never starts): the system's used memory with one held and
/// with [`HELD`], and how many were held.
fn held_memory(lab: &Lab, client: &Client, http: SocketAddr) -> Option<(u64, u64, u64)> {
    let station = lab.station().expect("the station");
    let hold = |count: usize| {
        station
            .run(|| {
                for _ in 0..count {
                    std::thread::spawn(move || get(http, "broken.lan", "/", &[]));
                }
            })
            .expect("station");
    };
    hold(1);
    wait_until("one request held for broken", LIMIT, || {
        (held(client, "broken") >= 1).then_some(())
    });
    let one = used(client);
    hold(HELD - 1);
    // Until all are held, or the count stops growing (the board's limits may hold fewer).
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut most, mut since) = (0, Instant::now());
    loop {
        let now = held(client, "broken");
        if now > most {
            (most, since) = (now, Instant::now());
        }
        if now >= HELD as u64 || since.elapsed() > Duration::from_secs(3) {
            break;
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let many = used(client);
    let count = held(client, "broken");
    (count > 1).then_some((one, many, count))
}
