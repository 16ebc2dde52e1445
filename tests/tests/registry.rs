//! Images pulled from real registries: Debian's `docker-registry` runs on the host's loopback,
//! once over plain HTTP (marked `insecure`) and once over HTTPS with a certificate from a CA that
//! the board is given on its config partition; `skopeo` fills them, and the board reaches them
//! through QEMU guest forwards. The pulled images run, and after a reboot they start again from the
//! store, with the registries gone. A third image, baked into the card by the builder under a
//! registry name that no registry serves, runs without any registry at all.

use std::time::Duration;

use baton_qemu::GuestForward;
use baton_tests::registry::{Registry, TestCa};
use baton_tests::{
    api, boot_with, build_image_baking, http_get, wait_ready, wait_until, API_PORT, CLUSTER_TOML,
    TOKEN,
};

const PLAIN: &str = "10.0.2.100:5000";
const SECURE: &str = "10.0.2.101:5001";

#[test]
fn images_pulled_from_registries_run_and_survive_the_registries_going_away() {
    let archive = baton_tests::example_archive();
    let plain = Registry::start(None);
    plain.push(&archive, "demo/hello:1");
    let certs = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new(certs.path(), "10.0.2.101");
    let secure = Registry::start(Some(&ca));
    secure.push(&archive, "demo/hello:2");

    let cluster_toml = format!(
        "{CLUSTER_TOML}\n[registries.\"{PLAIN}\"]\ninsecure = true\n\n[registries.\"{SECURE}\"]\nca = \"certs/registry.pem\"\n"
    );
    let pulled = format!(
        "name = \"pulled\"\nimage = \"{PLAIN}/demo/hello:1\"\nport = 8080\nresources = {{ memory = \"32Mi\" }}\npublish = 8080\nenv = {{ GREETING = \"pulled\" }}\n"
    );
    let tls = format!(
        "name = \"tls\"\nimage = \"{SECURE}/demo/hello:2\"\nport = 8080\nresources = {{ memory = \"32Mi\" }}\npublish = 8081\nenv = {{ GREETING = \"over tls\" }}\n"
    );
    let baked = "name = \"baked\"\nimage = \"registry.invalid:5000/demo/baked:1\"\nport = 8080\nresources = { memory = \"32Mi\" }\npublish = 8082\nenv = { GREETING = \"baked\" }\n";
    let bake = format!("registry.invalid:5000/demo/baked:1={}", archive.display());
    let image = build_image_baking(
        "qemu-virt",
        &[
            ("cluster.toml", &cluster_toml),
            ("services/pulled.toml", &pulled),
            ("services/tls.toml", &tls),
            ("services/baked.toml", baked),
        ],
        &[("certs/registry.pem", ca.ca_pem.as_path())],
        &[bake.as_str()],
    );
    let forwards = [
        GuestForward {
            guest: PLAIN.parse().expect("address"),
            host: plain.port,
        },
        GuestForward {
            guest: SECURE.parse().expect("address"),
            host: secure.port,
        },
    ];
    let cluster = boot_with(
        &image.path,
        1,
        "registry_pull",
        &[API_PORT, 8080, 8081, 8082],
        &forwards,
    );
    wait_ready(&cluster, 1, 1);
    let board = cluster.board(1).expect("board");
    let port = board.forwarded(8080).expect("forwarded");
    let tls_port = board.forwarded(8081).expect("forwarded");
    let baked_port = board.forwarded(8082).expect("forwarded");
    let answers = |what: &str| {
        let body = wait_until(
            &format!("the image pulled over HTTP to answer {what}"),
            Duration::from_secs(180),
            || http_get(port, "/"),
        );
        assert_eq!(body, "pulled from pulled-1\n");
        let body = wait_until(
            &format!("the image pulled over HTTPS to answer {what}"),
            Duration::from_secs(180),
            || http_get(tls_port, "/"),
        );
        assert_eq!(body, "over tls from tls-1\n");
        let body = wait_until(
            &format!("the baked image to answer {what}"),
            Duration::from_secs(180),
            || http_get(baked_port, "/"),
        );
        assert_eq!(body, "baked from baked-1\n");
    };
    answers("at first");

    let client = api(&cluster, 1, TOKEN);
    let (_, services) = client.request("GET", "/v1/services").expect("services");
    let images: Vec<&str> = services["services"]
        .as_array()
        .map(|l| l.iter().filter_map(|s| s["image"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        images,
        [
            "registry.invalid:5000/demo/baked:1".to_string(),
            format!("{PLAIN}/demo/hello:1"),
            format!("{SECURE}/demo/hello:2")
        ],
        "{services}"
    );

    // The registries go away; the stored images still start after a reboot.
    drop(plain);
    drop(secure);
    let (code, _) = client.request("POST", "/v1/reboot").expect("reboot");
    assert_eq!(code, 202);
    wait_ready(&cluster, 1, 2);
    answers("after a reboot without registries");
}
