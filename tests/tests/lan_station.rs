//! The host as a laptop on the boards' LAN. Two boards whose `cluster.toml` names no interface
//! form one cluster on the lab's shared segment (the runner tells them which NIC that is), and a
//! LAN station on the segment finds them by mDNS, as `baton boards` does, and calls each one's
//! API at the board's own address: no port forward. The station needs root.

use std::collections::BTreeSet;
use std::time::Duration;

use baton_qemu::{Lab, LabConfig};
use baton_tests::{build_image, client_at, repo_root, wait_ready, wait_until, CLUSTER_TOML, TOKEN};

/// A board's host name: derived from the MAC of its first NIC (`52:54:00:ba:00:NN`).
fn board_name(index: usize) -> String {
    format!("baton-ba00{index:02x}")
}

/// The names of the members a board's `/v1/cluster` shows alive (itself included).
fn alive(view: &serde_json::Value) -> Option<BTreeSet<String>> {
    Some(
        view["members"]
            .as_array()?
            .iter()
            .filter(|m| m["state"] == "alive" || m["state"] == "self")
            .filter_map(|m| m["name"].as_str().map(str::to_string))
            .collect(),
    )
}

#[test]
fn a_lan_station_finds_the_boards_and_calls_them_at_their_own_addresses() {
    assert!(
        !CLUSTER_TOML.contains("interface"),
        "the config must leave the interface to the board"
    );
    let image = build_image("qemu-virt", &[("cluster.toml", CLUSTER_TOML)]);
    let mut config = LabConfig::new(&image.path);
    config.boards = 2;
    config.memory_mib = 384;
    config.cpus = 1;
    config.station = true;
    let serial = repo_root().join("target/e2e-serial/lan_station");
    let _ = std::fs::remove_dir_all(&serial);
    config.serial_dir = Some(serial);
    let lab = Lab::start(config)
        .unwrap_or_else(|e| panic!("starting QEMU with a LAN station (as root): {e}"));
    for i in 1..=2 {
        wait_ready(&lab, i, 1);
    }
    let station = lab.station().expect("the station");
    let names: BTreeSet<String> = (1..=2).map(board_name).collect();
    let limit = Duration::from_secs(240);

    // Both boards answer mDNS on the segment, each with its address there.
    let boards = wait_until("both boards to answer mDNS on the station", limit, || {
        let found = station
            .run(|| baton::boards::discover(Duration::from_secs(3), Some("e2e")))
            .expect("entering the station")
            .ok()?;
        let found_names: BTreeSet<String> = found.iter().map(|b| b.board.clone()).collect();
        (found_names == names).then_some(found)
    });

    for board in &boards {
        let address = *board.addresses.first().expect("an address");
        // The segment's link-local address, not eth0's private QEMU network.
        assert!(address.is_link_local(), "{board:?}");
        let url = board.api.clone().expect("an API URL");
        assert_eq!(url, format!("https://{address}:7070"));
        // Asked over the LAN, each board sees both alive: they clustered on eth1.
        wait_until(
            &format!("{} to show both boards alive at {url}", board.board),
            limit,
            || {
                let answer = station
                    .run(|| client_at(&url[8..], TOKEN).request("GET", "/v1/cluster"))
                    .expect("entering the station");
                match answer {
                    Ok((200, view)) => (alive(&view)? == names).then_some(()),
                    _ => None,
                }
            },
        );
    }
    let stats = lab.station_stats().expect("station counters");
    assert!(stats.from_station > 0 && stats.to_station > 0, "{stats:?}");
}
