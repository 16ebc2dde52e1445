//! Power cuts: QEMU is killed while the board imports an image from the config partition, and
//! again right after a spec write was acknowledged. Each time the board boots again with its image
//! store and its config consistent: the interrupted import is recovered and completed, the service
//! runs, the acknowledged spec is the one in force, and no spec error shows up.

use std::path::Path;
use std::time::{Duration, Instant};

use baton_oci::pack::{PackEntry, PackSpec};
use baton_tests::{
    api, boot_forwarding, build_image_with, http_get, repo_root, wait_ready, wait_until, API_PORT,
    BOOT_TIMEOUT, CLUSTER_TOML, TOKEN,
};

const BIG: &str = r#"name = "big"
image = "oci-archive:images/big.tar"
port = 8080
publish = 8080
env = { GREETING = "big" }
"#;

const HELLO: &str = r#"name = "hello"
image = "oci-archive:images/hello.tar"
port = 8080
publish = 8081
env = { GREETING = "v1" }
"#;

/// Incompressible bytes (xorshift), so the image's layer stays as large as its contents.
fn ballast(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The example's binary with 24 MiB of ballast: an import that takes seconds on an emulated board.
fn big_archive(dir: &Path) -> std::path::PathBuf {
    let binary = repo_root().join("target/aarch64-unknown-linux-musl/board/hello");
    assert!(
        binary.is_file(),
        "{} is missing: run scripts/build-example first (scripts/test does)",
        binary.display()
    );
    let spec = PackSpec {
        entries: vec![
            PackEntry::host_file("/hello", binary, 0o755),
            PackEntry::bytes("/ballast", ballast(24 << 20), 0o644),
        ],
        config: baton_oci::prepare::RuntimeConfig {
            entrypoint: vec!["/hello".into()],
            ..Default::default()
        },
        platform: baton_oci::Platform::linux_arm64(),
        tag: Some("big:1".into()),
    };
    let path = dir.join("big.tar");
    let file = std::fs::File::create(&path).expect("creating big.tar");
    baton_oci::pack::oci_archive(&spec, std::io::BufWriter::new(file)).expect("packing big.tar");
    path
}

#[test]
fn power_cuts_during_an_import_and_after_a_spec_write_leave_a_consistent_board() {
    let tools = tempfile::tempdir().expect("temp dir");
    let big = big_archive(tools.path());
    let hello = baton_tests::example_archive();
    let image = build_image_with(
        "qemu-virt",
        &[
            ("cluster.toml", CLUSTER_TOML),
            ("services/big.toml", BIG),
            ("services/hello.toml", HELLO),
        ],
        &[("images/big.tar", &big), ("images/hello.tar", &hello)],
    );
    let cluster = boot_forwarding(&image.path, 1, "power_cut", &[API_PORT, 8080, 8081]);
    let board = cluster.board(1).expect("board");

    // Cut the power as soon as the big import starts.
    let deadline = Instant::now() + BOOT_TIMEOUT;
    board
        .wait_for_line("baton: big: preparing image", deadline)
        .unwrap_or_else(|e| panic!("the import never started: {e}"));
    cluster.kill(1).expect("power cut");
    assert_eq!(
        board.count("baton: big: image"),
        0,
        "the import finished before the power cut, so this run tested nothing"
    );

    cluster.restart(1).expect("power back");
    wait_ready(&cluster, 1, 2);
    let big_port = board.forwarded(8080).expect("forwarded");
    let body = wait_until(
        "the big service to run after the power cut",
        Duration::from_secs(240),
        || http_get(big_port, "/"),
    );
    assert_eq!(body, "big from big-1\n");
    let hello_port = board.forwarded(8081).expect("forwarded");
    let body = wait_until("hello to run", Duration::from_secs(120), || {
        http_get(hello_port, "/")
    });
    assert_eq!(body, "v1 from hello-1\n");

    // An acknowledged spec write, then the power goes.
    let client = api(&cluster, 1, TOKEN);
    let v2 = HELLO.replace("\"v1\"", "\"v2\"");
    let (code, reply) = client
        .send("PUT", "/v1/services/hello", Some(&v2))
        .expect("PUT");
    assert_eq!(code, 202, "{reply}");
    cluster.kill(1).expect("power cut");
    cluster.restart(1).expect("power back");
    wait_ready(&cluster, 1, 3);
    let body = wait_until(
        "hello to run its acknowledged spec",
        Duration::from_secs(120),
        || http_get(hello_port, "/").filter(|b| b.starts_with("v2")),
    );
    assert_eq!(body, "v2 from hello-1\n");
    let status = client.status().expect("status");
    assert_eq!(status["config_errors"], serde_json::json!([]), "{status}");
    let (_, services) = client.request("GET", "/v1/services").expect("services");
    let names: Vec<&str> = services["services"]
        .as_array()
        .map(|list| list.iter().filter_map(|s| s["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["big", "hello"], "{services}");
}
