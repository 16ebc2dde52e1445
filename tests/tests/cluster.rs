//! Four boards on one emulated Ethernet segment: three share a cluster key and find each other by
//! mDNS, the fourth has another key. The three converge to one membership; a service with
//! `scale.min = 3` gets one instance per board; a spec pushed to board 1 that asks for board 3
//! runs there; replayed and garbage gossip datagrams change nothing; a board cut off the segment
//! is declared dead and comes back when its cable is back; a holder of the cluster key on the
//! segment cannot take a board's subnet or name ([`key_holder`]), and a sync request it replays to
//! a board is refused and reported and brings no deleted service back ([`replay`]); a killed
//! board's instances move to the others and come back with it; a delete through one board removes
//! the service everywhere; the fourth board is never admitted and sees no peers. Board 1's
//! events and a service's log cover the whole cluster ([`observed`]).

use std::collections::BTreeSet;
use std::time::Duration;

use baton::client::Client;
use baton_qemu::{packet, Forward, Lab, LabConfig};
use baton_tests::view::{alive, board_name, get, members, running_on};
use baton_tests::{api, build_image_with, repo_root, wait_ready, wait_until, API_PORT, TOKEN};

#[path = "cluster/key_holder.rs"]
mod key_holder;
#[path = "cluster/observed.rs"]
mod observed;
#[path = "cluster/replay.rs"]
mod replay;

const GOSSIP_PORT: u16 = 7946;

/// No `interface`: the runner tells the boards that eth1 is the shared segment (eth0 is each
/// board's own QEMU user network), so this config clusters as it would on a real LAN.
fn cluster_toml(key: &str) -> String {
    format!(
        "[cluster]\nname = \"e2e\"\nkey = \"{key}\"\n\n[api]\ntoken = \"{TOKEN}\"\n\n[time]\nservers = []\n"
    )
}

const KEY: &str = "e2e-cluster-key-0123456789abcdef0123456789";
const OTHER_KEY: &str = "another-cluster-key-fedcba9876543210fedcba";

const WEB: &str = r#"name = "web"
image = "oci-archive:images/hello.tar"
port = 8080
scale = { min = 3 }
resources = { memory = "32Mi" }
"#;

#[test]
fn boards_form_one_cluster_share_work_and_survive_failures() {
    let hello = baton_tests::example_archive();
    let image = build_image_with(
        "qemu-virt",
        &[
            ("cluster.toml", &cluster_toml(KEY)),
            ("services/web.toml", WEB),
        ],
        &[("images/hello.tar", hello.as_path())],
    );
    // Board 4: the same image with another key on its card.
    let stranger = image.dir.path().join("stranger.img");
    std::fs::copy(&image.path, &stranger).expect("copying the image");
    baton_tests::replace_config_file(&stranger, "cluster.toml", &cluster_toml(OTHER_KEY));

    let mut config = LabConfig::new(&image.path);
    config.boards = 4;
    config.memory_mib = 384;
    config.cpus = 1;
    config.board_images = vec![(4, stranger)];
    // The station is the key holder's laptop on the segment.
    config.station = true;
    let base = baton_qemu::free_ports(4).expect("free ports");
    config.forwards.push(Forward {
        host: base,
        guest: API_PORT,
    });
    let serial = repo_root().join("target/e2e-serial/cluster");
    let _ = std::fs::remove_dir_all(&serial);
    config.serial_dir = Some(serial);
    let lab = Lab::start(config).unwrap_or_else(|e| panic!("starting QEMU: {e}"));
    for i in 1..=4 {
        wait_ready(&lab, i, 1);
    }
    let clients: Vec<Client> = (1..=4).map(|i| api(&lab, i, TOKEN)).collect();
    let three: BTreeSet<String> = (1..=3).map(board_name).collect();
    let limit = Duration::from_secs(240);

    // One membership of three, seen from each of them.
    for (i, client) in clients.iter().take(3).enumerate() {
        wait_until(
            &format!("board {} to see the three boards alive", i + 1),
            limit,
            || members(client).filter(|m| alive(m) == three),
        );
    }

    // scale.min = 3 spread over three boards: one each.
    let spread = wait_until("one web instance running on each board", limit, || {
        running_on(&clients[0], "web").filter(|b| b.len() == 3 && b.values().all(|n| *n == 1))
    });
    assert_eq!(spread.keys().cloned().collect::<BTreeSet<_>>(), three);
    observed::seen_from_one_board(&clients, limit);
    observed::top_from_a_laptop(&lab, &clients, limit);
    observed::boards_from_one_board(&clients, limit);
    observed::prometheus_scrapes_every_board(&lab, limit);

    // A spec pushed to board 1 that wants board 3 runs on board 3.
    let pinned = format!(
        "name = \"pinned\"\nimage = \"oci-archive:images/hello.tar\"\nport = 8080\nresources = {{ memory = \"32Mi\" }}\nplacement = {{ boards = [\"{}\"] }}\n",
        board_name(3)
    );
    let (code, body) = clients[0]
        .send("PUT", "/v1/services/pinned", Some(&pinned))
        .expect("PUT");
    assert_eq!(code, 202, "{body}");
    wait_until("pinned to run on board 3, seen from board 3", limit, || {
        running_on(&clients[2], "pinned").filter(|b| b.get(&board_name(3)) == Some(&1))
    });
    observed::dashboard_shows_every_board(&lab);

    // Hostile input on the gossip port: a replayed datagram of board 2, and garbage.
    let replayed = lab
        .frames()
        .into_iter()
        .rev()
        .find(|f| packet::UdpDatagram::parse(&f.bytes).is_some_and(|d| d.dst.port() == GOSSIP_PORT))
        .expect("a gossip datagram on the segment");
    for _ in 0..3 {
        lab.inject(&replayed.bytes).expect("replaying");
    }
    let original = packet::UdpDatagram::parse(&replayed.bytes).expect("parses");
    let garbage = packet::UdpDatagram {
        payload: &[0x01; 200],
        ..original
    };
    lab.inject(&garbage.to_frame().expect("frame"))
        .expect("garbage");
    // Board 4 never got in, and learned of no peer.
    let view = get(&clients[3], "/v1/cluster").expect("board 4's view");
    assert_eq!(
        view["members"].as_array().map(Vec::len),
        Some(1),
        "board 4 sees peers: {view}"
    );
    for client in clients.iter().take(3) {
        let m = members(client).expect("members");
        assert!(
            !m.contains_key(&board_name(4)),
            "board 4 was admitted: {m:?}"
        );
        assert_eq!(
            alive(&m),
            three,
            "membership changed after hostile input: {m:?}"
        );
    }

    key_holder::claims_change_nothing(&lab, &clients, limit);
    replay::replays_change_nothing(&lab, &clients, limit);

    // A partition: board 2's cable is pulled, then plugged back.
    lab.set_link(2, false).expect("unplug");
    wait_until("board 1 to declare board 2 dead", limit, || {
        members(&clients[0]).filter(|m| m.get(&board_name(2)).map(String::as_str) == Some("dead"))
    });
    lab.set_link(2, true).expect("plug");
    wait_until("the partition to heal", limit, || {
        members(&clients[0]).filter(|m| alive(m) == three)
    });

    // Board 3 dies: the others say so, its web instance runs elsewhere, pinned cannot move.
    lab.kill(3).expect("power cut");
    wait_until("board 1 to declare board 3 dead", limit, || {
        members(&clients[0]).filter(|m| m.get(&board_name(3)).map(String::as_str) == Some("dead"))
    });
    let real_key = key_holder::key_of(&clients[0], &board_name(3));
    key_holder::a_new_card_joins_once_forgotten(&lab, &clients, &board_name(3), limit);
    wait_until("three web instances on boards 1 and 2", limit, || {
        running_on(&clients[0], "web")
            .filter(|b| b.values().sum::<usize>() == 3 && !b.contains_key(&board_name(3)))
    });
    observed::a_dead_board_is_told(&clients, limit);
    let services = get(&clients[0], "/v1/services").expect("services");
    let pinned_view = services["services"]
        .as_array()
        .and_then(|l| l.iter().find(|s| s["name"] == "pinned"))
        .expect("pinned listed");
    assert!(
        pinned_view["unplaced"].to_string().contains(&board_name(3)),
        "pinned should say why it is not placed: {pinned_view}"
    );

    // Board 3 comes back: alive again, and pinned runs there again.
    lab.restart(3).expect("power back");
    wait_ready(&lab, 3, 2);
    wait_until("board 3 alive again", limit, || {
        members(&clients[0]).filter(|m| alive(m) == three)
    });
    // The new card was forgotten: the real board's key is bound again on first sight.
    wait_until("board 3 known by its own key again", limit, || {
        (key_holder::key_of(&clients[0], &board_name(3)) == real_key).then_some(())
    });
    wait_until("pinned back on board 3", limit, || {
        running_on(&clients[0], "pinned").filter(|b| b.get(&board_name(3)) == Some(&1))
    });

    // Deleting through board 2 removes the service everywhere.
    let (code, body) = clients[1]
        .send("DELETE", "/v1/services/pinned", None)
        .expect("DELETE");
    assert_eq!(code, 202, "{body}");
    for (i, client) in clients.iter().take(3).enumerate() {
        wait_until(
            &format!("pinned to be gone on board {}", i + 1),
            limit,
            || {
                let services = get(client, "/v1/services")?;
                let names: Vec<&str> = services["services"]
                    .as_array()?
                    .iter()
                    .filter_map(|s| s["name"].as_str())
                    .collect();
                (!names.contains(&"pinned")).then_some(())
            },
        );
    }
}
