//! A holder of the cluster key on the segment: the LAN station runs a real gossip endpoint with
//! the cluster key and a board key of its own (not a board's), as a compromised laptop that read
//! a card would. It claims a board's container subnet under a name that sorts first, then joins
//! under the board's own name with a generation far above the board's. Neither moves the board,
//! restarts it, changes what the others show for it or cuts it off; the others report the name
//! conflict.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use baton::client::Client;
use baton_cluster::board_key::{fingerprint, BoardKey};
use baton_cluster::gossip::{self, BoardValues, GossipConfig, MeshEndpoint, Timing};
use baton_qemu::station::{self, Station};
use baton_qemu::Lab;

use baton_tests::wait_until;

use super::{board_name, get, GOSSIP_PORT, KEY};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A gossip endpoint running on the station until dropped.
struct Holder {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    key: String,
}

impl Holder {
    fn start(
        station: &Station,
        name: &str,
        generation: u64,
        seed: Ipv4Addr,
        values: BoardValues,
    ) -> Holder {
        let board_key = BoardKey::generate(now_ms()).expect("a key");
        let key = fingerprint(&board_key.public());
        let config = GossipConfig {
            listen: SocketAddr::from((station::ADDRESS, GOSSIP_PORT)),
            advertise: None,
            name: name.to_owned(),
            generation,
            seeds: vec![SocketAddr::from((seed, GOSSIP_PORT))],
            cluster_key: KEY.to_owned(),
            values,
            timing: Timing::lan(),
            board_key,
            bindings: Default::default(),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // The thread starts inside the station's namespace, so its socket is on the segment.
        let thread = station
            .run(move || {
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime");
                    runtime.block_on(async move {
                        let endpoint = gossip::start(config).await.expect("the holder's gossip");
                        let _ = stopped.await;
                        let _ = endpoint.shutdown().await;
                    });
                })
            })
            .expect("the station");
        Holder {
            stop: Some(stop),
            thread: Some(thread),
            key,
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `name`'s entry in a board's `/v1/cluster`.
fn member(client: &Client, name: &str) -> Option<serde_json::Value> {
    let view = get(client, "/v1/cluster")?;
    view["members"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)
        .cloned()
}

/// The key fingerprint board `name` is listed with by `client` (empty if none).
pub(super) fn key_of(client: &Client, name: &str) -> String {
    member(client, name)
        .and_then(|m| m["key"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Runs the key holder's attempts against boards 1-3 of a formed cluster.
pub(super) fn claims_change_nothing(lab: &Lab, clients: &[Client], limit: Duration) {
    let station = lab.station().expect("the lab has a LAN station");
    let two = board_name(2);
    let (c1, c2, c3) = (&clients[0], &clients[1], &clients[2]);
    let real = member(c1, &two).expect("board 2 seen from board 1");
    let real_key = real["key"].as_str().expect("board 2 signs").to_owned();
    let generation = get(c2, "/v1/cluster").expect("board 2's view")["generation"].clone();
    let subnet = get(c2, "/v1/network").expect("board 2's network")["mesh"]["subnet"]
        .as_str()
        .expect("board 2 has a subnet")
        .to_owned();
    let net: Ipv4Addr = subnet
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("subnet");
    let seed: Ipv4Addr = member(c1, &board_name(1)).expect("board 1")["addresses"][0]
        .as_str()
        .and_then(|a| a.parse().ok())
        .expect("board 1's address");
    let console = lab.board(2).expect("board 2").console();
    let from = console.len();

    // 1. Board 2's subnet, claimed under a name that sorts before every board's. Claims within a
    // minute of a board taking its subnet count as boards meeting while the cluster forms (then
    // the smaller name keeps it), so the claim comes once board 2 has been up for two minutes
    // (it takes its subnet before `baton: ready`).
    wait_until("board 2 to have held its subnet for a while", limit, || {
        let status = get(c2, "/v1/status")?;
        (status["uptime_ms"].as_u64()? >= 120_000).then_some(())
    });
    let values = BoardValues {
        net: Some(MeshEndpoint {
            subnet: net,
            prefix: 24,
            key: [9; 32],
            port: 51820,
        }),
        ..BoardValues::default()
    };
    let claimer = Holder::start(station, "0000-holder", now_ms() / 1000, seed, values);
    wait_until("board 2 to see the claimer alive", limit, || {
        member(c2, "0000-holder").filter(|m| m["state"] == "alive")
    });
    let note = lab
        .board(2)
        .expect("board 2")
        .wait_for_line_from(
            from,
            "has held longer and keeps",
            std::time::Instant::now() + limit,
        )
        .unwrap_or_else(|e| panic!("board 2 did not report the claim: {e}"));
    assert!(note.text.contains("0000-holder"), "{}", note.text);
    let routed = wait_until(
        "board 1 to route board 2's subnet to board 2",
        limit,
        || {
            let network = get(c1, "/v1/network")?;
            let peers = network["mesh"]["peers"].as_array()?.clone();
            let peer = peers.iter().find(|p| p["subnet"] == subnet.as_str())?;
            Some(peer["board"].clone())
        },
    );
    assert_eq!(
        routed,
        two.as_str(),
        "board 1 routes board 2's subnet elsewhere"
    );
    drop(claimer);

    // 2. Board 2's own name, from the station's address, with a generation far above board 2's.
    let impostor = Holder::start(station, &two, now_ms() / 1000, seed, BoardValues::default());
    let conflict = wait_until("board 1 to report the name conflict", limit, || {
        let view = get(c1, "/v1/cluster")?;
        view["name_conflicts"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == two.as_str() && c["claimed"] == impostor.key.as_str())
            .cloned()
    });
    assert_eq!(conflict["bound"], real_key.as_str(), "{conflict}");
    // Board 2 is still heard, at its own address, under its own key, on boards 1 and 3.
    for client in [c1, c3] {
        wait_until("board 2 still heard as itself", limit, || {
            let m = member(client, &two)?;
            let fresh = m["last_heard_ms"].as_u64()? < 3_000;
            (fresh && m["state"] == "alive").then_some(())
        });
        let m = member(client, &two).expect("board 2");
        assert_eq!(m["key"], real_key.as_str(), "{m}");
        assert_eq!(m["addresses"], real["addresses"], "{m}");
        assert_eq!(m["api"], real["api"], "{m}");
    }
    // Board 2 itself lists its name once: the impostor's identity, gossiped on by board 1, is
    // not a second member (placement refuses a member list with a name twice).
    let view = get(c2, "/v1/cluster").expect("board 2's view");
    let entries = view["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter(|m| m["name"] == two.as_str())
        .count();
    assert_eq!(
        entries, 1,
        "board 2 lists its own name {entries} times: {view}"
    );
    drop(impostor);
    assert_eq!(
        get(c2, "/v1/cluster").expect("board 2's view")["generation"],
        generation,
        "board 2 restarted"
    );
    let ready = lab.board(2).expect("board 2").count(baton_tests::READY);
    assert_eq!(ready, 1, "board 2 restarted");
}

/// With board `dead` off (its card replaced, say), a board with a new key joins under its name:
/// refused and reported until the operator forgets the old binding through board 1, then let in.
/// The new card then leaves and is forgotten in turn, so that the caller can bring the real board
/// back (its generation is below the new card's, which a binding keeps until it is forgotten).
pub(super) fn a_new_card_joins_once_forgotten(
    lab: &Lab,
    clients: &[Client],
    dead: &str,
    limit: Duration,
) {
    let station = lab.station().expect("the lab has a LAN station");
    let c1 = &clients[0];
    let old_key = member(c1, dead).expect("the dead board")["key"]
        .as_str()
        .expect("it signed")
        .to_owned();
    let seed: Ipv4Addr = member(c1, &board_name(1)).expect("board 1")["addresses"][0]
        .as_str()
        .and_then(|a| a.parse().ok())
        .expect("board 1's address");
    let mut values = BoardValues::default();
    values.labels.insert("card".into(), "new".into());
    let new_card = Holder::start(station, dead, now_ms() / 1000, seed, values);
    wait_until("board 1 to refuse the new key", limit, || {
        let view = get(c1, "/v1/cluster")?;
        view["name_conflicts"]
            .as_array()?
            .iter()
            .any(|c| c["name"] == dead && c["claimed"] == new_card.key.as_str())
            .then_some(())
    });
    let m = member(c1, dead).expect("listed");
    assert_ne!(
        m["labels"]["card"], "new",
        "values shown under a refused key: {m}"
    );
    let (code, body) = c1
        .send("DELETE", &format!("/v1/cluster/boards/{dead}"), None)
        .expect("DELETE");
    assert_eq!(code, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(report["key"], old_key.as_str(), "{report}");
    wait_until("the new card to be let in", limit, || {
        let m = member(c1, dead)?;
        (m["key"] == new_card.key.as_str() && m["labels"]["card"] == "new").then_some(())
    });
    let view = get(c1, "/v1/cluster").expect("view");
    assert!(
        !view["name_conflicts"].to_string().contains(&new_card.key),
        "the conflict is gone: {view}"
    );
    let key = new_card.key.clone();
    drop(new_card);
    wait_until("the new card to be gone", limit, || {
        member(c1, dead).filter(|m| m["state"] == "dead")
    });
    let (code, body) = c1
        .send("DELETE", &format!("/v1/cluster/boards/{dead}"), None)
        .expect("DELETE");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(&key), "the new card's key unbound: {body}");
}
