//! Boards of two releases side by side, as during a rolling update: board 1 runs this release's
//! init, board 2 the previous release's (the commit in `scripts/previous-release`, built by
//! `scripts/build-previous`), on one segment with one cluster key. They form one cluster, place
//! a service over both, and each one's applies and deletions reach the other: the gossip and the
//! records of this release stay readable by the previous one and the other way round. Board 1
//! lists board 2 without a key (the previous release signs nothing) and refuses board 2's sync
//! requests, which carry no freshness, saying so; its own requests carry the changes both ways.

use std::collections::BTreeSet;
use std::time::Duration;

use baton::client::Client;
use baton_qemu::{Forward, Lab, LabConfig};
use baton_tests::view::{alive, board_name, get, members, running_on, service_names};
use baton_tests::{api, build_image_of, repo_root, wait_ready, wait_until, API_PORT, TOKEN};

const CLUSTER_TOML: &str = "[cluster]\nname = \"e2e\"\nkey = \"e2e-cluster-key-0123456789abcdef0123456789\"\n\n[api]\ntoken = \"e2e-token-0123456789abcdef\"\n\n[time]\nservers = []\n";

const WEB: &str = r#"name = "web"
image = "oci-archive:images/hello.tar"
port = 8080
scale = { min = 2 }
resources = { memory = "32Mi" }
"#;

/// A service pinned to board `on`.
fn pinned(name: &str, on: usize) -> String {
    format!(
        "name = \"{name}\"\nimage = \"oci-archive:images/hello.tar\"\nport = 8080\nresources = {{ memory = \"32Mi\" }}\nplacement = {{ boards = [\"{}\"] }}\n",
        board_name(on)
    )
}

fn send(client: &Client, method: &str, name: &str, body: Option<&str>) {
    let (code, answer) = client
        .send(method, &format!("/v1/services/{name}"), body)
        .unwrap_or_else(|e| panic!("{method} {name}: {e}"));
    assert_eq!(code, 202, "{method} {name}: {answer}");
}

#[test]
fn a_board_of_the_previous_release_works_beside_this_release() {
    let hello = baton_tests::example_archive();
    let files = [("cluster.toml", CLUSTER_TOML), ("services/web.toml", WEB)];
    let copies = [("images/hello.tar", hello.as_path())];
    let image = build_image_of(
        baton_tests::init_binary(),
        "qemu-virt",
        &files,
        &copies,
        &[],
    );
    let previous = build_image_of(
        baton_tests::previous_init_binary(),
        "qemu-virt",
        &files,
        &copies,
        &[],
    );

    let mut config = LabConfig::new(&image.path);
    config.boards = 2;
    config.memory_mib = 384;
    config.cpus = 1;
    config.board_images = vec![(2, previous.path.clone())];
    let base = baton_qemu::free_ports(2).expect("free ports");
    config.forwards.push(Forward {
        host: base,
        guest: API_PORT,
    });
    let serial = repo_root().join("target/e2e-serial/previous_release");
    let _ = std::fs::remove_dir_all(&serial);
    config.serial_dir = Some(serial);
    let lab = Lab::start(config).unwrap_or_else(|e| panic!("starting QEMU: {e}"));
    wait_ready(&lab, 1, 1);
    wait_ready(&lab, 2, 1);
    let new = api(&lab, 1, TOKEN);
    let old = api(&lab, 2, TOKEN);
    let both: BTreeSet<String> = [board_name(1), board_name(2)].into();
    let limit = Duration::from_secs(240);

    for (which, client) in [("this release", &new), ("the previous release", &old)] {
        wait_until(
            &format!("the board of {which} to see both boards alive"),
            limit,
            || members(client).filter(|m| alive(m) == both),
        );
    }
    // This release lists the previous release's board with no key: it signs nothing.
    let view = get(&new, "/v1/cluster").expect("board 1's view");
    let entry = view["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == board_name(2)))
        .unwrap_or_else(|| panic!("board 2 not in {view}"));
    assert!(entry["key"].is_null(), "board 2 listed with a key: {entry}");

    // Both place web alike: one instance on each board, seen from each.
    for (which, client) in [("this release", &new), ("the previous release", &old)] {
        wait_until(
            &format!("one web instance on each board, seen by {which}"),
            limit,
            || running_on(client, "web").filter(|b| b.len() == 2 && b.values().all(|n| *n == 1)),
        );
    }

    // An apply through each board runs on the other.
    send(&new, "PUT", "from-new", Some(&pinned("from-new", 2)));
    send(&old, "PUT", "from-old", Some(&pinned("from-old", 1)));
    wait_until("from-new running on board 2", limit, || {
        running_on(&old, "from-new").filter(|b| b.get(&board_name(2)) == Some(&1))
    });
    wait_until("from-old running on board 1", limit, || {
        running_on(&new, "from-old").filter(|b| b.get(&board_name(1)) == Some(&1))
    });

    // A deletion through each board reaches the other.
    send(&old, "DELETE", "from-new", None);
    send(&new, "DELETE", "from-old", None);
    for (which, client) in [("this release", &new), ("the previous release", &old)] {
        wait_until(
            &format!("both deletions seen by the board of {which}"),
            limit,
            || {
                let names = service_names(client)?;
                (!names.contains("from-new") && !names.contains("from-old")).then_some(())
            },
        );
    }

    // Board 1 refused board 2's requests for want of freshness, and said why.
    let refused = get(&new, "/v1/cluster").expect("board 1's view")["sync_refused"]
        .as_u64()
        .unwrap_or(0);
    assert!(refused > 0, "board 1 refused no sync request of board 2");
    let console = lab.board(1).expect("board 1").lines().join("\n");
    assert!(
        console.contains(&format!(
            "the sync request of board \"{}\" refused: its challenge carries no time and nonce",
            board_name(2)
        )),
        "board 1 did not say why it refused board 2's sync requests"
    );
    drop(lab);
}
