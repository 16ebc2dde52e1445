//! `baton boards` and the cluster side of `baton status` and `baton ps`, run as a user runs them:
//! the real binary, against a board advertised by mDNS in a network namespace this test creates
//! (needs root and `ip`, as CI has), and against a tiny HTTP server on 127.0.0.1 standing in for
//! a board's API.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;

use baton_cluster::discovery::{Advert, Discovery, Interfaces};
use baton_testnet::Lan;
use serde_json::{json, Value};

/// Runs the baton binary; (succeeded, stdout, stderr).
fn baton(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(args)
        .env_remove("BATON_BOARD")
        .env_remove("BATON_TOKEN")
        .output()
        .expect("running baton");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `baton boards` run inside the laptop's namespace (`lan.b`; the board is `lan.a`).
fn boards_on(lan: &Lan, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["boards"];
    all.extend_from_slice(args);
    lan.b.exec(env!("CARGO_BIN_EXE_baton"), &all)
}

#[test]
fn boards_finds_a_board_advertised_on_the_lan() {
    let lan = Lan::new("boards-find", "169.254.20.1/16", "169.254.20.2/16");
    let board = lan.a.run(|| {
        let mut d = Discovery::start(&Interfaces::Named(vec!["eth0".into()])).expect("mDNS");
        d.advertise(&Advert {
            cluster: "home".into(),
            board: "pi-a".into(),
            api_port: 7070,
            gossip_port: 7946,
        })
        .expect("advertise");
        d
    });

    let (ok, out, err) = boards_on(&lan, &["--json", "--timeout", "5"]);
    assert!(ok, "baton boards --json failed: {err}");
    let found: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(
        found,
        json!([{
            "board": "pi-a", "cluster": "home", "addresses": ["169.254.20.1"],
            "api": "https://169.254.20.1:7070", "api_port": 7070, "gossip_port": 7946
        }])
    );

    let (ok, out, err) = boards_on(&lan, &["--timeout", "5", "--cluster", "home"]);
    assert!(ok, "baton boards failed: {err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["BOARD", "CLUSTER", "ADDRESS", "API", "GOSSIP"],
            vec![
                "pi-a",
                "home",
                "169.254.20.1",
                "https://169.254.20.1:7070",
                "7946"
            ],
        ],
        "{out}"
    );

    // Another cluster's board is left out, and an empty answer says where to look (exit 0).
    let (ok, out, err) = boards_on(&lan, &["--timeout", "2", "--cluster", "work"]);
    assert!(ok, "baton boards --cluster work failed: {err}");
    assert_eq!(
        out.trim(),
        "no boards of cluster \"work\" found within 2 s (mDNS, UDP 5353: is this machine on the boards' LAN?)"
    );
    board.shutdown();
}

#[test]
fn boards_with_nobody_around_says_so_and_succeeds() {
    let lan = Lan::new("boards-none", "169.254.20.1/16", "169.254.20.2/16");
    let (ok, out, err) = boards_on(&lan, &["--timeout", "1"]);
    assert!(ok, "baton boards failed: {err}");
    assert_eq!(
        out.trim(),
        "no boards found within 1 s (mDNS, UDP 5353: is this machine on the boards' LAN?)"
    );
    let (ok, out, _) = boards_on(&lan, &["--timeout", "1", "--json"]);
    assert!(ok);
    assert_eq!(out.trim(), "[]");
}

/// A stand-in for a board's API on 127.0.0.1: answers `GET path` with `answer(path)`, one request
/// per connection, until the test process ends. Returns its base URL.
fn fake_board(answer: fn(&str) -> (u16, String)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(&stream);
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
            let (code, body) = answer(&path);
            let _ = write!(
                stream,
                "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

fn status_json() -> Value {
    json!({
        "hostname": "pi-a", "board": "pi4b", "kernel": "6.12.1", "uptime_ms": 12345,
        "addresses": [{"interface": "eth0", "address": "169.254.3.1/16", "source": "link-local"}],
        "memory": {"init_rss_bytes": 4096000, "system_used_bytes": 104857600}
    })
}

const STATUS_TEXT: &str = "board     pi-a (pi4b), kernel 6.12.1\n\
                           uptime    12.3 s\n\
                           address   eth0 169.254.3.1/16 (link-local)\n\
                           memory    init 4000 KiB, system 100 MiB\n";

fn cluster_json() -> Value {
    json!({
        "cluster": "home", "board": "pi-a", "generation": 3,
        "members": [
            {"name": "pi-a", "state": "self", "addresses": ["169.254.3.1"],
             "api": "http://169.254.3.1:7070", "labels": {"disk": "ssd"},
             "capacity": {"cpu_millis": 4000, "memory_bytes": 805306368u64},
             "last_heard_ms": null, "generation": 3},
            {"name": "pi-b", "state": "alive", "addresses": ["169.254.3.2"],
             "labels": {}, "capacity": {"cpu_millis": 4000, "memory_bytes": 1073741824u64},
             "last_heard_ms": 3200, "generation": 3},
            {"name": "pi-c", "state": "dead", "addresses": ["169.254.3.3"]}
        ]
    })
}

fn older_board(path: &str) -> (u16, String) {
    match path {
        "/v1/status" => (200, status_json().to_string()),
        _ => (404, r#"{"error":"not found"}"#.into()),
    }
}

fn cluster_board(path: &str) -> (u16, String) {
    match path {
        "/v1/cluster" => (200, cluster_json().to_string()),
        "/v1/services" => (
            200,
            json!({"services": [{"name": "hello", "state": "running", "instances": [
                {"id": "hello-1", "state": "running", "healthy": true, "address": "10.88.0.2",
                 "restarts": 0, "board": "pi-b"},
                {"id": "hello-2", "state": "running", "address": "10.88.0.3", "restarts": 1}
            ]}]})
            .to_string(),
        ),
        other => older_board(other),
    }
}

#[test]
fn status_of_a_board_without_a_cluster_prints_what_it_always_did() {
    let url = fake_board(older_board);
    let (ok, out, err) = baton(&["status", "--board", &url, "--token", "t"]);
    assert!(ok, "baton status failed: {err}");
    assert_eq!(out, STATUS_TEXT);
    assert_eq!(err, "");

    let (ok, out, err) = baton(&["status", "--board", &url, "--token", "t", "--json"]);
    assert!(ok, "baton status --json failed: {err}");
    let printed: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(printed, json!({"status": status_json(), "cluster": null}));
}

#[test]
fn status_shows_the_cluster_as_a_table() {
    let url = fake_board(cluster_board);
    let (ok, out, err) = baton(&["status", "--board", &url, "--token", "t"]);
    assert!(ok, "baton status failed: {err}");
    let expected = [
        "",
        "cluster   home (seen from pi-a, generation 3): 3 members, 2 up",
        "",
        "BOARD  STATE  ADDRESS      LABELS    CPU  MEMORY   LAST HEARD  KEY",
        "pi-a   self   169.254.3.1  disk=ssd  4    768 MiB  -           -",
        "pi-b   alive  169.254.3.2  -         4    1 GiB    3s ago      -",
        "pi-c   dead   169.254.3.3  -         -    -        -           -",
        "",
    ];
    assert_eq!(out, format!("{STATUS_TEXT}{}", expected.join("\n")));

    let (ok, out, err) = baton(&["status", "--board", &url, "--token", "t", "--json"]);
    assert!(ok, "baton status --json failed: {err}");
    let printed: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        printed,
        json!({"status": status_json(), "cluster": cluster_json()})
    );
}

#[test]
fn ps_shows_each_instances_board_when_the_board_says() {
    let url = fake_board(cluster_board);
    let (ok, out, err) = baton(&["ps", "--board", &url, "--token", "t"]);
    assert!(ok, "baton ps failed: {err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec![
                "INSTANCE", "BOARD", "STATE", "HEALTH", "ADDRESS", "SERVICE", "RESTARTS", "LAST",
                "EXIT"
            ],
            vec![
                "hello-1",
                "pi-b",
                "running",
                "ok",
                "10.88.0.2",
                "hello",
                "0"
            ],
            vec!["hello-2", "-", "running", "-", "10.88.0.3", "hello", "1"],
        ],
        "{out}"
    );
}

#[test]
fn ps_without_boards_has_no_board_column() {
    fn single(path: &str) -> (u16, String) {
        let body = json!({"services": [{"name": "hello", "state": "running", "instances": [
            {"id": "hello-1", "state": "running", "address": "10.88.0.2", "restarts": 0}
        ]}]});
        match path {
            "/v1/services" => (200, body.to_string()),
            other => older_board(other),
        }
    }
    let url = fake_board(single);
    let (ok, out, err) = baton(&["ps", "--board", &url, "--token", "t"]);
    assert!(ok, "baton ps failed: {err}");
    let header = out.lines().next().unwrap_or("");
    assert!(header.starts_with("INSTANCE             STATE"), "{out}");
    assert!(!out.contains("BOARD"), "{out}");
}
