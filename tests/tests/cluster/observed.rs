//! The cluster seen from one board: its events name the boards that joined and left and the
//! instances that moved, and carry its peers' instance events; a service's lines come from
//! its instances on every board, followed live, each prefixed with its instance and board;
//! `baton top`, run from a laptop on the segment, shows every board and instance with figures;
//! a real Prometheus scrapes every board; the dashboard in Chromium shows every board.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use baton::client::Client;
use baton_qemu::Lab;
use baton_tests::view::board_name;
use baton_tests::{ca_bundle, client_at, wait_until, TOKEN};

/// Every event board `client` shows, oldest first: its own and its peers'.
fn events(client: &Client) -> Vec<serde_json::Value> {
    client
        .get::<serde_json::Value>("/v1/events?tail=1000")
        .ok()
        .and_then(|v| v["events"].as_array().cloned())
        .unwrap_or_default()
}

fn has(events: &[serde_json::Value], check: impl Fn(&serde_json::Value) -> bool) -> bool {
    events.iter().any(check)
}

/// With one `web` instance on each of the three boards: board 1's events tell that boards 2
/// and 3 joined and that web started on each board (the peers' own events, under their
/// names); its merged, followed log of `web` has each instance's first line, from each board.
pub fn seen_from_one_board(clients: &[Client], limit: Duration) {
    let (b1, b2, b3) = (board_name(1), board_name(2), board_name(3));
    wait_until("board 1's events to cover the cluster", limit, || {
        let all = events(&clients[0]);
        let joined = |who: &str| {
            has(&all, |e| {
                e["kind"] == "board-joined" && e["member"] == who && e["board"] == b1.as_str()
            })
        };
        let started = |on: &str| {
            has(&all, |e| {
                e["kind"] == "instance-started" && e["service"] == "web" && e["board"] == on
            })
        };
        (joined(&b2) && joined(&b3) && started(&b1) && started(&b2) && started(&b3)).then_some(())
    });

    let follower = clients[0].clone();
    let (tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let _ = follower.follow(
            "/v1/services/web/logs?tail=100&follow=1&cluster=1",
            |line| {
                let _ = tx.send(line.to_string());
            },
        );
    });
    let mut from: Vec<String> = Vec::new();
    let deadline = Instant::now() + limit;
    for board in [&b1, &b2, &b3] {
        let suffix = format!("@{board} out hello: listening on port 8080");
        while !from.iter().any(|l| l.contains(&suffix)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => from.push(line),
                Err(_) => panic!("no line from {board} in board 1's merged log: {from:#?}"),
            }
        }
    }
    for line in &from {
        assert!(
            line.starts_with("web-") && line.contains('@'),
            "every line names its instance and board: {line:?}"
        );
    }
}

/// Board 3 was cut off: board 1's events say it left, and that its web instance moved.
pub fn a_dead_board_is_told(clients: &[Client], limit: Duration) {
    let b3 = board_name(3);
    wait_until(
        "board 1's events to tell board 3 left and web moved",
        limit,
        || {
            let all = events(&clients[0]);
            let left = has(&all, |e| {
                e["kind"] == "board-left" && e["member"] == b3.as_str() && e["why"] == "dead"
            });
            let moved = has(&all, |e| {
                e["kind"] == "instance-moved" && e["service"] == "web" && e["from"] == b3.as_str()
            });
            (left && moved).then_some(())
        },
    );
}

/// `baton top` from the station (a laptop on the segment, which reaches every board's API at
/// the address it announces): every board with a CPU share, its memory and its version, and
/// web's three instances with their memory.
pub fn top_from_a_laptop(lab: &Lab, clients: &[Client], limit: Duration) {
    let view = clients[0]
        .get::<serde_json::Value>("/v1/cluster")
        .expect("board 1's view");
    let api = view["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["state"] == "self"))
        .and_then(|m| m["api"].as_str())
        .expect("board 1 announces its API")
        .trim_start_matches("https://")
        .to_string();
    let station = lab.station().expect("station");
    let read = || {
        station
            .run(|| {
                baton::top::read(&client_at(&api, TOKEN), &|url: &str| {
                    Ok(Client::with_ca(url, TOKEN, &ca_bundle())?)
                })
            })
            .expect("station")
    };
    let first = read();
    let frame = wait_until("baton top to show every board and instance", limit, || {
        let text = baton::top::render(&first, &read());
        let boards_ok = (1..=3).all(|i| {
            text.lines().any(|l| {
                l.starts_with(&board_name(i))
                    && l.contains('%')
                    && l.contains("MiB/")
                    && l.ends_with(env!("CARGO_PKG_VERSION"))
            })
        });
        let instances = text
            .lines()
            .filter(|l| l.starts_with("web ") && (l.ends_with("KiB") || l.ends_with("MiB")))
            .count();
        (boards_ok && instances == 3).then_some(text)
    });
    println!("{frame}");
}

/// Debian's Prometheus scrapes the three boards: each is up, each sees two alive peers, web's
/// three instances have their memory, and no board has a temperature (QEMU's `virt` board has
/// no thermal zone, so the family is left out rather than shown as zero).
pub fn prometheus_scrapes_every_board(lab: &Lab, limit: Duration) {
    let ports: Vec<u16> = (1..=3)
        .map(|i| {
            lab.board(i)
                .expect("board index")
                .forwarded(baton_tests::API_PORT)
                .expect("the API port is forwarded")
        })
        .collect();
    let prometheus = baton_tests::prometheus::Prometheus::scraping_all(&ports, TOKEN);
    let all = |query: &str, check: &dyn Fn(f64) -> bool| {
        prometheus
            .query(query)
            .filter(|s| s.len() == 3 && s.iter().all(|s| check(s.value)))
            .map(|_| ())
    };
    wait_until("Prometheus to scrape the three boards", limit, || {
        all("up{job=\"baton\"}", &|v| v == 1.0)
    });
    wait_until("each board to count two alive peers", limit, || {
        all("baton_cluster_members{state=\"alive\"}", &|v| v == 2.0)
    });
    wait_until("web's instances' memory from their boards", limit, || {
        all("baton_instance_memory_bytes{service=\"web\"}", &|v| v > 0.0)
    });
    assert_eq!(
        prometheus
            .query("baton_board_temperature_celsius")
            .map(|s| s.len()),
        Some(0),
        "a virt board has no thermal zone\n{}",
        prometheus.log()
    );
}

/// Board 1's `/v1/boards` (which the dashboard reads) has every board's own version and load,
/// gathered from its peers.
pub fn boards_from_one_board(clients: &[Client], limit: Duration) {
    wait_until(
        "board 1 to list the three boards with their load",
        limit,
        || {
            let list = clients[0].get::<serde_json::Value>("/v1/boards").ok()?;
            let boards = list["boards"].as_array()?;
            let complete = boards.len() == 3
                && (1..=3).all(|i| {
                    boards.iter().any(|b| {
                        b["name"] == board_name(i).as_str()
                            && b["version"] == env!("CARGO_PKG_VERSION")
                            && b.get("error").is_none()
                            && b["load"]["memory_total_bytes"].as_u64() > Some(0)
                    })
                });
            complete.then_some(())
        },
    );
}

/// The dashboard of board 1 in Chromium: signed in, its cluster page shows the three boards,
/// each with its version and a CPU share, and the services.
pub fn dashboard_shows_every_board(lab: &Lab) {
    let b1 = board_name(1);
    let (b2, b3) = (board_name(2), board_name(3));
    let api_port = lab
        .board(1)
        .expect("board index")
        .forwarded(baton_tests::API_PORT)
        .expect("the API port is forwarded");
    baton_tests::browser::check(
        &baton_tests::browser::Dashboard {
            api_port,
            token: TOKEN,
            board: &b1,
            service: "web",
            service_port: 0,
            others: &["pinned"],
            caller: "",
            boards: &[&b2, &b3],
            cluster_only: true,
        },
        Duration::from_secs(300),
    );
}
