//! Three boards on one emulated segment, services placed on different boards: a call a service's
//! `allow` list names works on its own board and across boards (over the WireGuard mesh); a call
//! it does not name fails across boards too, to the service's virtual IP as well as straight to an
//! instance's address, and neither reaches another board itself; nothing of a request between
//! boards shows on the segment in plaintext; adding a service to an allow list lets its calls
//! through without restarting anything; when a board dies, its instance's address stops getting
//! calls and the service's callers keep being answered by the instances left.

use std::collections::BTreeSet;
use std::time::Duration;

use baton::client::Client;
use baton_qemu::{packet, Forward, Lab, LabConfig};
use baton_tests::{
    api, build_image_with, http_request, repo_root, wait_ready, wait_until, API_PORT, TOKEN,
};

const KEY: &str = "e2e-mesh-key-0123456789abcdef0123456789abcd";
const MESH_PORT: u16 = 51820;
const FRONT_PORT: u16 = 8081;
const OTHER_PORT: u16 = 8082;

/// A board's host name: derived from the MAC of its first NIC (`52:54:00:ba:00:NN`).
fn board_name(index: usize) -> String {
    format!("baton-ba00{index:02x}")
}

fn cluster_toml() -> String {
    format!(
        "[cluster]\nname = \"mesh\"\nkey = \"{KEY}\"\n\n[api]\ntoken = \"{TOKEN}\"\n\n[time]\nservers = []\n"
    )
}

/// A hello service pinned to `boards`, with `scale` instances.
fn spec(name: &str, boards: &[usize], scale: u32, publish: Option<u16>, allow: &[&str]) -> String {
    let boards: Vec<String> = boards
        .iter()
        .map(|b| format!("\"{}\"", board_name(*b)))
        .collect();
    let allow: Vec<String> = allow.iter().map(|a| format!("\"{a}\"")).collect();
    let publish = publish
        .map(|p| format!("publish = {p}\n"))
        .unwrap_or_default();
    format!(
        "name = \"{name}\"\nimage = \"oci-archive:images/hello.tar\"\nport = 8080\n{publish}scale = {{ min = {scale} }}\nresources = {{ memory = \"32Mi\" }}\nplacement = {{ boards = [{}] }}\nallow = [{}]\nenv = {{ GREETING = \"{name}\" }}\n",
        boards.join(", "),
        allow.join(", ")
    )
}

/// `service`'s instances that run: (board, address, id), as `client`'s board sees them.
fn instances(client: &Client, service: &str) -> Vec<(String, String, String)> {
    let Ok((200, services)) = client.request("GET", "/v1/services") else {
        return Vec::new();
    };
    let Some(svc) = services["services"]
        .as_array()
        .and_then(|l| l.iter().find(|s| s["name"] == service))
    else {
        return Vec::new();
    };
    svc["instances"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|i| i["state"] == "running")
                .filter_map(|i| {
                    Some((
                        i["board"].as_str()?.to_string(),
                        i["address"].as_str()?.to_string(),
                        i["id"].as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn forwarded(cluster: &Lab, board: usize, guest: u16) -> u16 {
    cluster
        .board(board)
        .expect("board")
        .forwarded(guest)
        .expect("forwarded port")
}

#[test]
fn allow_lists_hold_across_boards_over_an_encrypted_mesh() {
    let hello = baton_tests::example_archive();
    let image = build_image_with(
        "qemu-virt",
        &[
            ("cluster.toml", &cluster_toml()),
            ("services/api.toml", &spec("api", &[1, 3], 2, None, &[])),
            (
                "services/front.toml",
                &spec("front", &[1], 1, Some(FRONT_PORT), &["api"]),
            ),
            (
                "services/other.toml",
                &spec("other", &[2], 1, Some(OTHER_PORT), &[]),
            ),
        ],
        &[("images/hello.tar", hello.as_path())],
    );
    let mut config = LabConfig::new(&image.path);
    config.boards = 3;
    config.memory_mib = 384;
    config.cpus = 1;
    let base = baton_qemu::free_ports(9).expect("free ports");
    for (k, guest) in [API_PORT, FRONT_PORT, OTHER_PORT].into_iter().enumerate() {
        config.forwards.push(Forward {
            host: base + u16::try_from(k * 3).expect("small"),
            guest,
        });
    }
    let serial = repo_root().join("target/e2e-serial/mesh");
    let _ = std::fs::remove_dir_all(&serial);
    config.serial_dir = Some(serial);
    let cluster = Lab::start(config).unwrap_or_else(|e| panic!("starting QEMU: {e}"));
    for i in 1..=3 {
        wait_ready(&cluster, i, 1);
    }
    let clients: Vec<Client> = (1..=3).map(|i| api(&cluster, i, TOKEN)).collect();
    let limit = Duration::from_secs(300);
    let front = forwarded(&cluster, 1, FRONT_PORT);
    let other = forwarded(&cluster, 2, OTHER_PORT);

    let apis = wait_until("api running on boards 1 and 3", limit, || {
        let list = instances(&clients[0], "api");
        let boards: BTreeSet<&str> = list.iter().map(|(b, _, _)| b.as_str()).collect();
        (boards == BTreeSet::from([board_name(1).as_str(), board_name(3).as_str()]))
            .then_some(list.clone())
    });
    let remote_api = apis
        .iter()
        .find(|(b, _, _)| *b == board_name(3))
        .cloned()
        .expect("the instance on board 3");
    // Every board has its own container subnet.
    let local_api = apis
        .iter()
        .find(|(b, _, _)| *b == board_name(1))
        .expect("the instance on board 1");
    let subnet = |a: &str| a.rsplit_once('.').map(|(net, _)| net.to_string());
    assert_ne!(subnet(&local_api.1), subnet(&remote_api.1), "{apis:?}");
    wait_until("front on board 1 and other on board 2", limit, || {
        (instances(&clients[0], "front").len() == 1 && instances(&clients[1], "other").len() == 1)
            .then_some(())
    });

    // Allowed: front reaches both api instances, the one beside it and the one on board 3.
    let mut answered: BTreeSet<String> = BTreeSet::new();
    wait_until("front to be answered by both api instances", limit, || {
        if let Some((200, body)) = http_request(front, "/fetch?url=http://api:8080/") {
            answered.insert(body.trim().to_string());
        }
        let want: BTreeSet<String> = apis
            .iter()
            .map(|(_, _, id)| format!("api from {id}"))
            .collect();
        answered.is_superset(&want).then_some(())
    });

    // Not allowed: other (board 2) reaches api neither by name nor by an instance's address, and
    // not board 3's own API through its bridge address either.
    let bridge3 = format!("{}.1", subnet(&remote_api.1).expect("address"));
    for url in [
        "http://api:8080/".to_string(),
        format!("http://{}:8080/", remote_api.1),
        format!("http://{bridge3}:{API_PORT}/v1/status"),
    ] {
        let (code, body) =
            http_request(other, &format!("/fetch?url={url}")).expect("other answers");
        assert_eq!(code, 502, "other reached {url}: {body}");
    }

    // Between boards the segment carries WireGuard only: a marker in the request path is never
    // seen in plaintext, while datagrams to the mesh port are.
    let marker = format!("plaintext-marker-{}", std::process::id());
    let since = cluster.frames().last().map_or(0, |f| f.seq);
    for _ in 0..12 {
        let (code, body) = http_request(front, &format!("/fetch?url=http://api:8080/{marker}"))
            .expect("front answers");
        assert_eq!(code, 502, "{body}");
        assert!(body.contains("404"), "the call reached api: {body}");
    }
    let frames = cluster.frames_since(since);
    let mesh_frames = frames
        .iter()
        .filter(|f| packet::udp_to(&f.bytes, MESH_PORT).is_some())
        .count();
    assert!(mesh_frames > 0, "no WireGuard datagrams on the segment");
    assert!(
        !frames
            .iter()
            .any(|f| packet::contains(&f.bytes, marker.as_bytes())),
        "a request between boards crossed the segment in plaintext"
    );

    // Allowing api for other: its calls go through, nothing restarts.
    let before = instances(&clients[1], "other");
    let (code, body) = clients[1]
        .send(
            "PUT",
            "/v1/services/other",
            Some(&spec("other", &[2], 1, Some(OTHER_PORT), &["api"])),
        )
        .expect("PUT");
    assert_eq!(code, 202, "{body}");
    wait_until("other to reach api once allowed", limit, || {
        http_request(other, "/fetch?url=http://api:8080/").filter(|(code, _)| *code == 200)
    });
    let after = instances(&clients[1], "other");
    assert_eq!(before, after, "other was restarted");

    // Board 3 dies: its instance's address stops getting calls; front is answered every time.
    cluster.kill(3).expect("power cut");
    wait_until("ten calls in a row answered", limit, || {
        (0..10)
            .all(|_| {
                http_request(front, "/fetch?url=http://api:8080/")
                    .is_some_and(|(code, body)| code == 200 && body.starts_with("api from"))
            })
            .then_some(())
    });
}
