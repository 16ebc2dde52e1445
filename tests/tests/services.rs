//! A service from an OCI archive on the config partition runs as a container, serves HTTP that
//! the host reaches through `publish`, shows up in the API with its logs; the same image written
//! by a standard tool (skopeo, as a `docker save` archive) runs too; a malformed spec next to
//! them is reported with file, line and field while they keep running.

use std::time::Duration;

use baton_tests::{
    api, boot_forwarding, build_image_with, http_get, wait_ready, wait_until, API_PORT,
    CLUSTER_TOML, TOKEN,
};

const HELLO: &str = r#"name = "hello"
image = "oci-archive:images/hello.tar"
port = 8080
publish = 8080
env = { GREETING = "hi" }
health = { http = "/healthz", interval = "1s" }
"#;

const FROM_SKOPEO: &str = r#"name = "docker"
image = "docker-archive:images/hello-docker.tar"
port = 8080
publish = 8081
env = { GREETING = "from skopeo" }
"#;

#[test]
fn a_service_from_the_config_partition_serves_through_publish() {
    let archive = baton_tests::example_archive();
    let tools = tempfile::tempdir().expect("temp dir");
    let docker_archive = tools.path().join("hello-docker.tar");
    let status = std::process::Command::new("skopeo")
        .args(["copy", "-q"])
        .arg(format!("oci-archive:{}", archive.display()))
        .arg(format!(
            "docker-archive:{}:hello:latest",
            docker_archive.display()
        ))
        .status()
        .expect("running skopeo (Debian package skopeo)");
    assert!(status.success(), "skopeo copy failed: {status}");
    let image = build_image_with(
        "qemu-virt",
        &[
            ("cluster.toml", CLUSTER_TOML),
            ("services/hello.toml", HELLO),
            ("services/docker.toml", FROM_SKOPEO),
        ],
        &[
            ("images/hello.tar", archive.as_path()),
            ("images/hello-docker.tar", docker_archive.as_path()),
        ],
    );
    // A spec that the builder would refuse, put on the card as a user with a laptop would.
    baton_tests::replace_config_file(&image.path, "services/bad.toml", "name = \"bad\"\nimage = \"oci-archive:images/hello.tar\"\nresources = { memory = \"lots\" }\n");

    let cluster = boot_forwarding(&image.path, 1, "service_publish", &[API_PORT, 8080, 8081]);
    wait_ready(&cluster, 1, 1);
    let port = cluster
        .board(1)
        .expect("board")
        .forwarded(8080)
        .expect("forwarded");
    let body = wait_until(
        "the service to answer through publish",
        Duration::from_secs(120),
        || http_get(port, "/"),
    );
    assert_eq!(body, "hi from hello-1\n");
    let docker_port = cluster
        .board(1)
        .expect("board")
        .forwarded(8081)
        .expect("forwarded");
    let board = api(&cluster, 1, TOKEN);
    let body = wait_until(
        "the skopeo-written image to answer",
        Duration::from_secs(120),
        || http_get(docker_port, "/"),
    );
    assert_eq!(body, "from skopeo from docker-1\n");

    let (code, list) = board.request("GET", "/v1/services").expect("services");
    assert_eq!(code, 200);
    let hello = list["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "hello"))
        .cloned()
        .expect("hello listed");
    assert_eq!(hello["state"], "running", "{hello}");
    assert_eq!(hello["running"], 1);
    let instance = &hello["instances"][0];
    assert_eq!(instance["id"], "hello-1");
    assert!(
        instance["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("10.88.") && !a.ends_with(".1")),
        "{instance}"
    );
    assert_eq!(instance["healthy"], true);
    let errors = list["errors"].as_array().expect("errors");
    assert!(
        errors.iter().any(|e| e["file"] == "services/bad.toml"
            && e["line"] == 3
            && e["field"] == "resources.memory"),
        "{errors:?}"
    );
    let logs = wait_until(
        "the request in the service log",
        Duration::from_secs(30),
        || {
            let (code, text) = board.text("GET", "/v1/services/hello/logs?tail=50").ok()?;
            (code == 200 && text.contains("hello-1 out hello: GET / -> 200 OK")).then_some(text)
        },
    );
    assert!(
        logs.contains("hello-1 out hello: listening on port 8080"),
        "{logs}"
    );
}
