//! Service names and allow lists on one board: containers resolve other services by name to their
//! virtual IP; a service reaches one that is in its `allow` list and not one that is not; no
//! container reaches the board's API; changing an allow list takes effect without restarting the
//! container; `egress = "none"` keeps a service off the outside world (a server on the host, reached
//! through a QEMU guest forward) while its allowed calls still work; `GET /v1/network` shows the
//! virtual IPs and the rule set's generation.

use std::time::Duration;

use baton_qemu::GuestForward;
use baton_tests::{
    api, boot_with, build_image_with, http_request, wait_ready, wait_until, API_PORT, CLUSTER_TOML,
    TOKEN,
};

/// "The internet" as the boards see it: an HTTP server on the host's loopback, reached at this
/// address through a QEMU guest forward.
const OUTSIDE: &str = "10.0.2.100:9000";

/// Serves `outside` to every HTTP request on a free loopback port, on a thread; returns the port.
fn outside_server() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("binding");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.0 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\noutside\n",
            );
        }
    });
    port
}

fn spec(name: &str, publish: u16, allow: &[&str]) -> String {
    let allow: Vec<String> = allow.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "name = \"{name}\"\nimage = \"oci-archive:images/hello.tar\"\nport = 8080\npublish = {publish}\nresources = {{ memory = \"32Mi\" }}\nallow = [{}]\nenv = {{ GREETING = \"{name}\" }}\n",
        allow.join(", ")
    )
}

fn sealed_spec() -> String {
    format!("{}egress = \"none\"\n", spec("sealed", 8083, &["api"]))
}

#[test]
fn services_reach_exactly_what_their_allow_lists_name() {
    let hello = baton_tests::example_archive();
    let image = build_image_with(
        "qemu-virt",
        &[
            ("cluster.toml", CLUSTER_TOML),
            ("services/api.toml", &spec("api", 8080, &[])),
            ("services/front.toml", &spec("front", 8081, &["api"])),
            ("services/other.toml", &spec("other", 8082, &[])),
            ("services/sealed.toml", &sealed_spec()),
        ],
        &[("images/hello.tar", hello.as_path())],
    );
    let outside = GuestForward {
        guest: OUTSIDE.parse().expect("address"),
        host: outside_server(),
    };
    let cluster = boot_with(
        &image.path,
        1,
        "isolation",
        &[API_PORT, 8080, 8081, 8082, 8083],
        &[outside],
    );
    wait_ready(&cluster, 1, 1);
    let board = cluster.board(1).expect("board");
    let port = |p| board.forwarded(p).expect("forwarded");
    let (api_port, front, other, sealed) = (port(8080), port(8081), port(8082), port(8083));
    let limit = Duration::from_secs(180);
    for p in [api_port, front, other, sealed] {
        wait_until("every service to answer", limit, || {
            http_request(p, "/").filter(|(c, _)| *c == 200)
        });
    }

    // front may call api, by name.
    let (code, body) = wait_until("front to reach api by name", limit, || {
        http_request(front, "/fetch?url=http://api:8080/").filter(|(c, _)| *c == 200)
    });
    assert_eq!((code, body.as_str()), (200, "api from api-1\n"));
    let (_, body) =
        http_request(front, "/fetch?url=http://api.baton:8080/").expect("front answers");
    assert_eq!(body, "api from api-1\n");

    // other may not; the name resolves, the connection does not go through.
    let (code, body) = http_request(other, "/fetch?url=http://api:8080/").expect("other answers");
    assert_eq!(code, 502, "{body}");
    assert!(
        !body.contains("cannot resolve"),
        "the name should resolve: {body}"
    );
    // Nor may it (or anyone) reach the board's API from a container.
    let client = api(&cluster, 1, TOKEN);
    let (_, network) = client.request("GET", "/v1/network").expect("network");
    let generation = network["generation"].as_u64().unwrap_or(0);
    assert!(generation > 0, "{network}");
    let vip = network["services"]
        .as_array()
        .and_then(|l| l.iter().find(|s| s["name"] == "api"))
        .and_then(|s| s["vip"].as_str())
        .expect("api's VIP")
        .to_string();
    assert!(vip.starts_with("10.89."), "{network}");
    // The board's address on its bridge: the first of its container subnet.
    let subnet = network["mesh"]["subnet"]
        .as_str()
        .expect("the board's subnet");
    let bridge = subnet
        .strip_suffix(".0/24")
        .map(|net| format!("{net}.1"))
        .expect("a /24 subnet");
    let (code, body) = http_request(front, &format!("/fetch?url=http://{bridge}:7070/v1/health"))
        .expect("front answers");
    assert_eq!(code, 502, "a container reached the board's API: {body}");

    // Egress: front reaches the outside world, sealed does not, though it still reaches api.
    let (code, body) = wait_until("front to reach the outside", limit, || {
        http_request(front, &format!("/fetch?url=http://{OUTSIDE}/")).filter(|(c, _)| *c == 200)
    });
    assert_eq!((code, body.as_str()), (200, "outside\n"));
    let (code, body) =
        http_request(sealed, &format!("/fetch?url=http://{OUTSIDE}/")).expect("sealed answers");
    assert_eq!(code, 502, "egress = none let sealed out: {body}");
    let (code, body) = http_request(sealed, "/fetch?url=http://api:8080/").expect("sealed answers");
    assert_eq!((code, body.as_str()), (200, "api from api-1\n"));

    // other is allowed now: no restart, the next call goes through.
    let started = |client: &baton::client::Client| {
        let (_, services) = client.request("GET", "/v1/services").expect("services");
        services["services"]
            .as_array()
            .and_then(|l| l.iter().find(|s| s["name"] == "other"))
            .map(|s| s["instances"][0]["started_at_ms"].clone())
    };
    let before = started(&client);
    assert!(before.as_ref().is_some_and(|v| v.is_u64()), "{before:?}");
    let (code, reply) = client
        .send(
            "PUT",
            "/v1/services/other",
            Some(&spec("other", 8082, &["api"])),
        )
        .expect("PUT");
    assert_eq!(code, 202, "{reply}");
    let (_, body) = wait_until("other to reach api once allowed", limit, || {
        http_request(other, &format!("/fetch?url=http://{vip}:8080/")).filter(|(c, _)| *c == 200)
    });
    assert_eq!(body, "api from api-1\n");
    assert_eq!(started(&client), before, "other's container was restarted");
}
