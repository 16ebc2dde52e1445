//! The cluster seen from one board: its events name the boards that joined and left and the
//! instances that moved, and carry its peers' instance events; a service's lines come from
//! its instances on every board, followed live, each prefixed with its instance and board;
//! `baton top`, run from a laptop on the segment, shows every board and instance with figures.

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
