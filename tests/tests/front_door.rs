//! The front door under QEMU: three boards and a LAN station. A route whose instances run on
//! boards 2 and 3 answers through every board's front door, board 1's included, which runs
//! none (its requests cross the mesh); over HTTPS verified with the cluster CA by curl, over
//! HTTP/2; plain HTTP of a route with an identity check is redirected; the instance learns who
//! called and cannot be lied to; a WebSocket echo works; an instance killed under a steady
//! stream of GETs costs none of them; the front door killed on purpose is back at once with a
//! new process while PID 1 goes on; bad input gets its answer while others are served. Each
//! identity check (`front_door/auth.rs`) lets the right callers in and keeps the others out,
//! against a real OpenID provider, a forward-auth service and client certificates on the
//! station; bearer tokens still pass on a restarted front door once the provider is gone.

#[path = "front_door/auth.rs"]
mod auth;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use baton_qemu::{Lab, LabConfig};
use baton_tests::web::{board_addresses, get, websocket_echo};
use baton_tests::{
    build_image_with, client_at, repo_root, user_config_dir, wait_ready, wait_until, TOKEN,
};

const CLUSTER: &str = "frontdoor";
const KEY: &str = "e2e-front-door-key-0123456789abcdef0123456789";

/// A board's host name: derived from the MAC of its first NIC (`52:54:00:ba:00:NN`).
fn board_name(index: usize) -> String {
    format!("baton-ba00{index:02x}")
}

fn cluster_toml(setup: &auth::Setup) -> String {
    format!(
        "[cluster]\nname = \"{CLUSTER}\"\nkey = \"{KEY}\"\n\n[api]\ntoken = \"{TOKEN}\"\n\n[time]\nservers = []\n\n\
         [front_door]\nhttp = 80\nhttps = 443\nredirect_http = true\n{}",
        setup.cluster_tables()
    )
}

fn web_spec() -> String {
    format!(
        "name = \"web\"\nimage = \"oci-archive:images/hello.tar\"\nport = 8080\nscale = {{ min = 2 }}\n\
         resources = {{ memory = \"32Mi\" }}\nplacement = {{ boards = [\"{}\", \"{}\"] }}\n\
         env = {{ GREETING = \"web\" }}\nroute = {{ host = \"web.lan\" }}\n",
        board_name(2),
        board_name(3)
    )
}

fn guarded_spec() -> String {
    format!(
        "name = \"guarded\"\nimage = \"oci-archive:images/hello.tar\"\nport = 8080\n\
         resources = {{ memory = \"32Mi\" }}\nplacement = {{ boards = [\"{}\"] }}\n\
         route = {{ host = \"guarded.lan\", auth = \"forward\", forward = {{ url = \"http://{}:{}/verify\", copy_headers = [\"Remote-Groups\"] }} }}\n",
        board_name(2),
        baton_qemu::station::ADDRESS,
        auth::AUTH_PORT,
    )
}

/// curl on the station: `args`, then the body and a last line of `-w` output.
fn curl(args: &[&str]) -> Result<String, String> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "curl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_route_answers_through_every_board_over_http_and_https_and_survives_failures() {
    let hello = baton_tests::example_archive();
    let setup = auth::Setup::new();
    let mut files: Vec<(String, String)> = vec![
        ("cluster.toml".into(), cluster_toml(&setup)),
        ("services/web.toml".into(), web_spec()),
        ("services/guarded.toml".into(), guarded_spec()),
    ];
    files.extend(auth::specs(&board_name(2), &board_name(3)));
    files.extend(
        setup
            .card_files()
            .into_iter()
            .map(|(name, text)| (name.to_string(), text)),
    );
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let image = build_image_with(
        "qemu-virt",
        &files,
        &[("images/hello.tar", hello.as_path())],
    );
    let mut config = LabConfig::new(&image.path);
    config.boards = 3;
    config.memory_mib = 384;
    config.cpus = 1;
    config.station = true;
    let serial = repo_root().join("target/e2e-serial/front_door");
    let _ = std::fs::remove_dir_all(&serial);
    config.serial_dir = Some(serial);
    let lab = Lab::start(config).unwrap_or_else(|e| panic!("starting QEMU (as root): {e}"));
    let station = lab.station().expect("the station");
    // The identity provider and the auth service are up before the front doors first ask.
    let (provider, _auth_service, auth_log) = setup.start_station(station);
    for i in 1..=3 {
        wait_ready(&lab, i, 1);
    }
    let ca: PathBuf = user_config_dir().join(CLUSTER).join("ca.pem");
    assert!(ca.is_file(), "no CA at {}", ca.display());
    let ca = ca.to_string_lossy().into_owned();
    let limit = Duration::from_secs(420);

    // The boards' addresses on the segment, by name (mDNS, as a laptop finds them).
    let addresses: BTreeMap<String, Ipv4Addr> = board_addresses(station, CLUSTER, 3, limit);
    let addr = |i: usize| addresses[&board_name(i)];
    let http = |i: usize| SocketAddr::from((addr(i), 80));

    // Every board's front door answers for web.lan, board 1's from the instances on 2 and 3.
    for i in 1..=3 {
        let answer = wait_until(&format!("web.lan through board {i}"), limit, || {
            let a = station.run(|| get(http(i), "web.lan", "/", &[])).ok()??;
            (a.status == 200).then_some(a)
        });
        assert!(answer.body.starts_with("web from "), "{answer:?}");
    }
    // Unknown hosts get a 404 that names them.
    let answer = station
        .run(|| get(http(1), "nothing.lan", "/x", &[]))
        .expect("station")
        .expect("an answer");
    assert_eq!(answer.status, 404, "{answer:?}");
    assert!(answer.body.contains("nothing.lan"), "{answer:?}");

    // HTTPS with the cluster CA, HTTP/2 and HTTP/1.1, through board 1.
    let resolve = format!("web.lan:443:{}", addr(1));
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let out = station
            .run(|| {
                curl(&[
                    "--cacert",
                    &ca,
                    "--resolve",
                    &resolve,
                    flag,
                    "-w",
                    "\n%{http_version}",
                    "https://web.lan/",
                ])
            })
            .expect("station")
            .unwrap_or_else(|e| panic!("HTTPS over {flag}: {e}"));
        assert!(out.starts_with("web from "), "{out}");
        assert!(out.ends_with(&format!("\n{version}")), "{out}");
    }

    // Plain HTTP to a route with an identity check: a redirect to HTTPS.
    let answer = station
        .run(|| get(http(1), "guarded.lan", "/x?y=1", &[]))
        .expect("station")
        .expect("an answer");
    assert_eq!(answer.status, 308, "{answer:?}");
    assert_eq!(answer.header("location"), Some("https://guarded.lan/x?y=1"));

    // The instance learns who called; a client-sent identity does not get through.
    let answer = station
        .run(|| {
            get(
                http(1),
                "web.lan",
                "/headers",
                &["X-Forwarded-User: root", "X-Request-Id: e2e-42"],
            )
        })
        .expect("station")
        .expect("an answer");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(
        answer.body.contains("x-forwarded-host: web.lan"),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains("x-forwarded-proto: http"),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains("x-forwarded-for: 169.254."),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains("x-request-id: e2e-42"),
        "{}",
        answer.body
    );
    assert!(!answer.body.contains("x-forwarded-user"), "{}", answer.body);
    assert_eq!(answer.header("x-request-id"), Some("e2e-42"));

    // A WebSocket echo through board 1.
    let echoed = station
        .run(|| websocket_echo(http(1), "web.lan", "/ws", &["hello", "front door"]))
        .expect("station")
        .unwrap_or_else(|e| panic!("WebSocket: {e}"));
    assert_eq!(echoed, ["hello", "front door"]);

    // Each identity check, through board 1, which runs none of the instances.
    let addrs = [addr(1), addr(2), addr(3)];
    auth::bearer(station, &ca, &setup.idp.ca_pem, &addrs, limit);
    auth::login(station, &ca, &setup.bundle(&ca), &addrs, limit);
    auth::mtls(station, &ca, &setup.clients, &addrs);
    auth::forward(station, &ca, &addrs, &auth_log);

    // An instance killed under a steady stream of GETs through board 1: none fails.
    let board3 = format!("{}:7070", addr(3));
    let stop = AtomicBool::new(false);
    let count = AtomicU32::new(0);
    let (served, failed) = std::thread::scope(|scope| {
        let stream = scope.spawn(|| {
            station
                .run(|| {
                    let (mut served, mut failed) = (0u32, Vec::new());
                    let deadline = Instant::now() + Duration::from_secs(240);
                    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                        match get(http(1), "web.lan", "/slow?ms=100", &[]) {
                            Some(a) if a.status == 200 => {
                                served += 1;
                                count.fetch_add(1, Ordering::SeqCst);
                            }
                            other => failed.push(format!("{other:?}")),
                        }
                    }
                    (served, failed)
                })
                .expect("station")
        });
        // Board 3's own instance of web, as board 3 shows it: (its start time, ready).
        let local_run = || -> Option<(u64, bool)> {
            let (_, services) = station
                .run(|| client_at(&board3, TOKEN).request("GET", "/v1/services"))
                .ok()?
                .ok()?;
            let web = services["services"]
                .as_array()?
                .iter()
                .find(|s| s["name"] == "web")?;
            let local = web["instances"]
                .as_array()?
                .iter()
                .find(|i| i["board"] == board_name(3) && i["state"] == "running")?;
            Some((local["started_at_ms"].as_u64()?, local["ready"] == true))
        };
        let (first_run, _) = wait_until("board 3's web instance", limit, local_run);
        let restarted = station
            .run(|| client_at(&board3, TOKEN).request("POST", "/v1/services/web/restart"))
            .expect("station");
        assert!(matches!(restarted, Ok((202 | 200, _))), "{restarted:?}");
        // A new run of it, ready, then seen ready from board 1's routes.
        wait_until("a new run of board 3's web instance", limit, || {
            let (run, ready) = local_run()?;
            (run != first_run && ready).then_some(())
        });
        wait_until("board 1 to route to both instances again", limit, || {
            let routes = station
                .run(|| client_at(&format!("{}:7070", addr(1)), TOKEN).request("GET", "/v1/routes"))
                .ok()?
                .ok()?;
            let ready = routes.1["routes"]
                .as_array()?
                .iter()
                .find(|r| r["service"] == "web")?["instances"]
                .as_array()?
                .iter()
                .filter(|i| i["ready"] == true)
                .count();
            (ready == 2).then_some(())
        });
        // However fast the restart was, the stream runs on until it has served a few.
        wait_until("five GETs served through the restart", limit, || {
            (count.load(Ordering::SeqCst) >= 5).then_some(())
        });
        stop.store(true, Ordering::SeqCst);
        stream.join().expect("the GET stream")
    });
    println!(
        "GETs during the instance's restart: {served} served, {} failed",
        failed.len()
    );
    assert!(failed.is_empty(), "failed: {failed:?}");
    assert!(served >= 5, "the stream hardly ran: {served} GETs");

    // The front door killed on purpose: PID 1 goes on, a new process serves, and connections
    // made while it starts wait in the kept listener and are served.
    let board1 = format!("{}:7070", addr(1));
    let status = |station: &baton_qemu::station::Station| {
        station
            .run(|| client_at(&board1, TOKEN).request("GET", "/v1/status"))
            .expect("station")
            .expect("status")
            .1
    };
    // The provider goes away; a token it gave before must still pass, also on the restarted
    // front door below (which can only have the keys from PID 1's copy on /data).
    let later = auth::token_for_later(station, &setup.idp.ca_pem);
    provider.stop();
    let before = status(station)["front_door"].clone();
    assert_eq!(before["state"], "serving", "{before}");
    let restart = station
        .run(|| client_at(&board1, TOKEN).request("POST", "/v1/routes/restart"))
        .expect("station");
    assert!(matches!(restart, Ok((202, _))), "{restart:?}");
    let answer = station
        .run(|| get(http(1), "web.lan", "/", &[]))
        .expect("station")
        .expect("an answer while the front door restarts");
    assert_eq!(answer.status, 200, "{answer:?}");
    let after = wait_until("a new front door process", limit, || {
        let now = status(station)["front_door"].clone();
        (now["state"] == "serving" && now["pid"] != before["pid"]).then_some(now)
    });
    assert_eq!(after["restarts"], 1, "{after}");
    assert_eq!(after["last_exit"], "restarted on request", "{after}");
    auth::bearer_passes(station, &ca, &later, addr(1));
    auth::bearer_passes(station, &ca, &later, addr(3));

    // Bad input: a head over 16 KiB gets 431, garbage gets 400, and a client that never ends
    // its head is cut off, while requests from the same station keep getting 200.
    let big = format!("X-Big: {}", "x".repeat(20 * 1024));
    let answer = station
        .run(|| get(http(1), "web.lan", "/", &[&big]))
        .expect("station")
        .expect("an answer");
    assert_eq!(answer.status, 431, "{answer:?}");
    let garbage = station
        .run(|| {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(http(1)).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
            s.write_all(b"\x16\x03\x01\x00\xff garbage \r\n\r\n").ok()?;
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out);
            Some(String::from_utf8_lossy(&out).into_owned())
        })
        .expect("station")
        .expect("connected");
    assert!(
        garbage.is_empty() || garbage.starts_with("HTTP/1.1 400"),
        "{garbage}"
    );
    let slow_closed = station
        .run(|| {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(http(1)).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
            s.write_all(b"GET / HTTP/1.1\r\nHost: web.lan\r\nX-Slow: ")
                .ok()?;
            let others = (0..5)
                .filter(|_| get(http(1), "web.lan", "/", &[]).is_some_and(|a| a.status == 200))
                .count();
            // The front door closes it (EOF) before this read's own timeout gives up.
            let mut out = Vec::new();
            let closed = s.read_to_end(&mut out).is_ok();
            Some((others, closed))
        })
        .expect("station")
        .expect("connected");
    assert_eq!(slow_closed.0, 5, "others were not served meanwhile");
    assert!(slow_closed.1, "the slow client was not cut off within 60 s");

    // `GET /v1/routes` shows the route, its instances on boards 2 and 3, and its requests.
    let (_, routes) = station
        .run(|| client_at(&board1, TOKEN).request("GET", "/v1/routes"))
        .expect("station")
        .expect("routes");
    let web = routes["routes"]
        .as_array()
        .and_then(|l| l.iter().find(|r| r["service"] == "web"))
        .unwrap_or_else(|| panic!("{routes}"));
    assert_eq!(web["host"], "web.lan");
    assert!(web["requests"].as_u64().unwrap_or(0) > 0, "{web}");
    let boards: std::collections::BTreeSet<&str> = web["instances"]
        .as_array()
        .map(|l| l.iter().filter_map(|i| i["board"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        boards,
        [board_name(2), board_name(3)]
            .iter()
            .map(String::as_str)
            .collect(),
        "{web}"
    );
    assert!(
        web["certificate"]
            .as_str()
            .is_some_and(|c| c.starts_with("issued by the cluster CA")),
        "{web}"
    );

    // Board 1's metrics count what its front door answered, by service and status, across
    // the front door's restart above.
    let (code, metrics) = station
        .run(|| client_at(&board1, TOKEN).text("GET", "/metrics"))
        .expect("station")
        .expect("metrics");
    assert_eq!(code, 200, "{metrics}");
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
    };
    assert!(value("baton_frontdoor_requests_total{service=\"web\",code=\"2xx\"}") >= served as f64);
    // The identity checks above were refused through board 1 at least once.
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("baton_frontdoor_requests_total{") && l.contains("code=\"401\"")),
        "no 401 counted:\n{metrics}"
    );
    assert!(
        value("baton_frontdoor_request_duration_seconds_count{service=\"web\"}") >= served as f64
    );
}
