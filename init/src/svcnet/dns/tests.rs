//! The server against `dig` (Debian's bind9-dnsutils) on loopback, with fake upstreams.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use super::{start_with, DnsServer, Limits, Reaching, Upstreams, VipTable};

/// The address the fake upstream answers every query with.
const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);

/// The address the truncating fake upstream answers with over TCP.
const TCP_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 8);

/// What `dig` printed: the status and the answer section's records as whitespace-split fields.
#[derive(Debug)]
struct Dig {
    status: String,
    answers: Vec<Vec<String>>,
}

/// Runs `dig @server -p port <args>` (one try, 3 s) off the runtime and parses its output.
async fn dig(server: SocketAddr, args: &[&str]) -> Dig {
    let mut cmd = Command::new("dig");
    cmd.arg(format!("@{}", server.ip()))
        .arg("-p")
        .arg(server.port().to_string())
        .args(["+tries=1", "+time=3"])
        .args(args);
    let output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("dig thread")
        .expect("run dig (Debian package bind9-dnsutils)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let status = text
        .split("status: ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("no status in dig output:\n{text}"))
        .to_string();
    let answers = text
        .split(";; ANSWER SECTION:\n")
        .nth(1)
        .map(|section| {
            section
                .lines()
                .take_while(|line| !line.trim().is_empty())
                .map(|line| line.split_whitespace().map(str::to_string).collect())
                .collect()
        })
        .unwrap_or_default();
    Dig { status, answers }
}

/// The single A record's (ttl, address) of a reply, panicking otherwise.
fn single_a(reply: &Dig) -> (String, String) {
    assert_eq!(reply.status, "NOERROR", "{reply:?}");
    assert_eq!(reply.answers.len(), 1, "{reply:?}");
    let record = &reply.answers[0];
    assert_eq!(record[3], "A", "{reply:?}");
    (record[1].clone(), record[4].clone())
}

/// The fake upstreams' reply to `packet`: the question answered with `ip`, or only the
/// question with TC set when `truncated`.
fn upstream_reply(packet: &[u8], ip: Ipv4Addr, truncated: bool) -> Option<Vec<u8>> {
    let query = Message::from_vec(packet).ok()?;
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.truncation = truncated;
    if let (Some(q), false) = (query.queries.first(), truncated) {
        reply.add_answer(Record::from_rdata(q.name().clone(), 60, RData::A(A(ip))));
    }
    reply.queries = query.queries;
    assert_eq!(reply.metadata.message_type, MessageType::Response);
    reply.to_vec().ok()
}

/// A fake upstream on loopback answering every query over UDP with [`UPSTREAM_ANSWER`]; with
/// `truncating`, UDP replies are truncated and TCP on the same port answers [`TCP_ANSWER`].
async fn fake_upstream(truncating: bool) -> (SocketAddr, Vec<JoinHandle<()>>) {
    // A UDP port whose TCP twin is free too (other tests' connections may hold it).
    let (socket, tcp) = loop {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind upstream");
        let addr = socket.local_addr().expect("upstream addr");
        if !truncating {
            break (socket, None);
        }
        if let Ok(listener) = tokio::net::TcpListener::bind(addr).await {
            break (socket, Some(listener));
        }
    };
    let addr = socket.local_addr().expect("upstream addr");
    let mut tasks = vec![tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                continue;
            };
            if let Some(bytes) = upstream_reply(&buf[..len], UPSTREAM_ANSWER, truncating) {
                let _ = socket.send_to(&bytes, peer).await;
            }
        }
    })];
    if let Some(listener) = tcp {
        tasks.push(tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut prefix = [0u8; 2];
                if stream.read_exact(&mut prefix).await.is_err() {
                    continue;
                }
                let mut packet = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
                if stream.read_exact(&mut packet).await.is_err() {
                    continue;
                }
                if let Some(bytes) = upstream_reply(&packet, TCP_ANSWER, false) {
                    let len = u16::try_from(bytes.len()).expect("small reply");
                    let _ = stream.write_all(&len.to_be_bytes()).await;
                    let _ = stream.write_all(&bytes).await;
                }
            }
        }));
    }
    (addr, tasks)
}

/// A server on 127.0.0.1 with `web` in its table and the given upstreams; short upstream timeout.
async fn server(upstreams: Vec<SocketAddr>) -> (DnsServer, VipTable, Upstreams) {
    let (server, table, upstreams, _) = sealable(upstreams).await;
    (server, table, upstreams)
}

/// [`server`], also returning the set of clients with egress (loopback, the tests' client).
async fn sealable(upstreams: Vec<SocketAddr>) -> (DnsServer, VipTable, Upstreams, Reaching) {
    let reaching: Reaching = Arc::new(RwLock::new(
        [std::net::IpAddr::from(Ipv4Addr::LOCALHOST)].into(),
    ));
    let table: VipTable = Arc::new(RwLock::new(BTreeMap::from([(
        "web".to_string(),
        Ipv4Addr::new(10, 89, 4, 2),
    )])));
    let upstreams: Upstreams = Arc::new(RwLock::new(upstreams));
    let limits = Limits {
        upstream_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = start_with(
        "127.0.0.1:0".parse().expect("addr"),
        Arc::clone(&table),
        Arc::clone(&upstreams),
        Arc::clone(&reaching),
        limits,
    )
    .await
    .expect("start the DNS server");
    (server, table, upstreams, reaching)
}

#[tokio::test]
async fn services_resolve_in_every_spelling_over_udp_and_tcp() {
    let (server, _table, _up) = server(Vec::new()).await;
    let addr = server.local_addr();
    for name in ["web", "web.", "web.baton", "WEB.Baton.", "wEb"] {
        let reply = dig(addr, &[name, "A"]).await;
        assert_eq!(
            single_a(&reply),
            ("5".to_string(), "10.89.4.2".to_string()),
            "{name}"
        );
    }
    let reply = dig(addr, &["+tcp", "web.baton", "A"]).await;
    assert_eq!(single_a(&reply).1, "10.89.4.2");
}

#[tokio::test]
async fn aaaa_is_empty_and_unknown_baton_names_are_nxdomain() {
    let (server, _table, _up) = server(Vec::new()).await;
    let addr = server.local_addr();
    let reply = dig(addr, &["web.baton", "AAAA"]).await;
    assert_eq!(reply.status, "NOERROR");
    assert!(reply.answers.is_empty(), "{reply:?}");
    let reply = dig(addr, &["nosuch.baton", "A"]).await;
    assert_eq!(reply.status, "NXDOMAIN");
}

#[tokio::test]
async fn other_names_are_forwarded_in_order_or_servfail() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind silent");
    let silent_addr = silent.local_addr().expect("silent addr");
    let (upstream, upstream_tasks) = fake_upstream(false).await;
    let (server, _table, upstreams) = server(vec![silent_addr, upstream]).await;
    let addr = server.local_addr();

    // The silent one times out, the next answers; over UDP and TCP.
    let reply = dig(addr, &["example.org", "A"]).await;
    assert_eq!(
        single_a(&reply),
        ("60".to_string(), "192.0.2.7".to_string())
    );
    let reply = dig(addr, &["+tcp", "Example.ORG", "A"]).await;
    assert_eq!(single_a(&reply).1, "192.0.2.7");

    // Only the silent one left: SERVFAIL.
    *upstreams.write().expect("lock") = vec![silent_addr];
    let reply = dig(addr, &["example.org", "A"]).await;
    assert_eq!(reply.status, "SERVFAIL");
    let reply = dig(addr, &["+tcp", "example.org", "A"]).await;
    assert_eq!(reply.status, "SERVFAIL");
    for task in upstream_tasks {
        task.abort();
    }
}

#[tokio::test]
async fn truncated_upstream_replies_are_fetched_again_over_tcp() {
    let (upstream, upstream_tasks) = fake_upstream(true).await;
    let (server, _table, _up) = server(vec![upstream]).await;
    let addr = server.local_addr();
    // dig gets the truncated reply over UDP, retries over TCP, and the server then asks the
    // upstream over TCP.
    let reply = dig(addr, &["big.example.org", "A"]).await;
    assert_eq!(single_a(&reply).1, "192.0.2.8");
    // Without the retry, the truncated reply itself comes back.
    let reply = dig(addr, &["+ignore", "big.example.org", "A"]).await;
    assert_eq!(reply.status, "NOERROR");
    assert!(reply.answers.is_empty(), "{reply:?}");
    for task in upstream_tasks {
        task.abort();
    }
}

#[tokio::test]
async fn garbage_is_ignored_and_the_server_keeps_answering() {
    let (server, _table, _up) = server(Vec::new()).await;
    let addr = server.local_addr();
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind client");
    let garbage: [&[u8]; 5] = [
        b"",
        b"\x01",
        b"hello, this is not DNS at all",
        // A header claiming 65535 questions and nothing after it.
        &[0, 1, 1, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0],
        // A response (QR set) with one truncated question.
        &[0, 2, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'w', b'e'],
    ];
    for packet in garbage {
        client.send_to(packet, addr).await.expect("send garbage");
    }
    let reply = dig(addr, &["web", "A"]).await;
    assert_eq!(single_a(&reply).1, "10.89.4.2");
    // Garbage over TCP closes that connection only.
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"\x00\x05xxxxx")
        .await
        .expect("write garbage");
    let reply = dig(addr, &["+tcp", "web", "A"]).await;
    assert_eq!(single_a(&reply).1, "10.89.4.2");
}

#[tokio::test]
async fn a_table_change_is_seen_by_the_next_query() {
    let (server, table, _up) = server(Vec::new()).await;
    let addr = server.local_addr();
    assert_eq!(dig(addr, &["db.baton", "A"]).await.status, "NXDOMAIN");
    table
        .write()
        .expect("lock")
        .insert("db".to_string(), Ipv4Addr::new(10, 89, 9, 9));
    let reply = dig(addr, &["db.baton", "A"]).await;
    assert_eq!(single_a(&reply).1, "10.89.9.9");
    table.write().expect("lock").remove("web");
    assert_eq!(dig(addr, &["web.baton", "A"]).await.status, "NXDOMAIN");
}

#[tokio::test]
async fn a_client_without_egress_gets_only_service_names_never_forwarded() {
    let (upstream, upstream_tasks) = fake_upstream(false).await;
    let (server, _table, _up, reaching) = sealable(vec![upstream]).await;
    let addr = server.local_addr();
    assert_eq!(
        single_a(&dig(addr, &["example.org", "A"]).await).1,
        "192.0.2.7",
        "forwarded while the client may reach out"
    );
    reaching.write().expect("lock").clear();
    for tcp in [false, true] {
        let mode = if tcp { "+tcp" } else { "+notcp" };
        let reply = dig(addr, &[mode, "example.org", "A"]).await;
        assert_eq!(reply.status, "REFUSED", "{mode}: {reply:?}");
        assert!(reply.answers.is_empty(), "{reply:?}");
        let reply = dig(addr, &[mode, "web.baton", "A"]).await;
        assert_eq!(
            single_a(&reply).1,
            "10.89.4.2",
            "{mode}: service names still answer"
        );
    }
    reaching
        .write()
        .expect("lock")
        .insert(std::net::IpAddr::from(Ipv4Addr::LOCALHOST));
    assert_eq!(
        single_a(&dig(addr, &["example.org", "A"]).await).1,
        "192.0.2.7"
    );
    for task in upstream_tasks {
        task.abort();
    }
}

/// The real thing on a bridge: the server on the bridge address of a board namespace, two
/// container namespaces behind it, one of a service with egress and one without; `dig` runs
/// inside each. Needs root.
#[test]
fn on_the_bridge_an_instance_without_egress_gets_service_names_only() {
    use baton_testnet::{require_root, Netns};
    require_root();
    let board = Netns::new("dnsnone-board");
    board.ip(&["link", "add", "baton0", "type", "bridge"]);
    board.ip(&["addr", "add", "10.88.0.1/24", "dev", "baton0"]);
    board.ip(&["link", "set", "baton0", "up"]);
    let containers: Vec<Netns> = ["out", "none"]
        .iter()
        .zip([2, 3])
        .map(|(tag, d)| {
            let ns = Netns::new(&format!("dnsnone-{tag}"));
            let host = format!("v{tag}");
            board.ip(&[
                "link", "add", &host, "type", "veth", "peer", "name", "eth0", "netns", &ns.0,
            ]);
            board.ip(&["link", "set", &host, "master", "baton0", "up"]);
            ns.ip(&["addr", "add", &format!("10.88.0.{d}/24"), "dev", "eth0"]);
            ns.ip(&["link", "set", "eth0", "up"]);
            ns
        })
        .collect();
    let (ready, started) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = board.spawn_async(move || {
        Box::pin(async move {
            let (upstream, tasks) = fake_upstream(false).await;
            let table: VipTable = Arc::new(RwLock::new(BTreeMap::from([(
                "web".to_string(),
                Ipv4Addr::new(10, 89, 4, 2),
            )])));
            let reaching: Reaching =
                Arc::new(RwLock::new([std::net::IpAddr::from([10, 88, 0, 2])].into()));
            let server = start_with(
                "10.88.0.1:53".parse().expect("addr"),
                table,
                Arc::new(RwLock::new(vec![upstream])),
                reaching,
                Limits::default(),
            )
            .await
            .expect("DNS server on the bridge");
            ready.send(()).expect("test alive");
            let _ = stopped.await;
            drop(server);
            for t in tasks {
                t.abort();
            }
        })
    });
    started
        .recv_timeout(Duration::from_secs(10))
        .expect("server up");
    let ask = |ns: &Netns, name: &str| -> String {
        let (_, out, err) = ns.exec("dig", &["@10.88.0.1", "+tries=1", "+time=3", name, "A"]);
        format!("{out}{err}")
    };
    let [out, none] = &containers[..] else {
        panic!("two containers")
    };
    let answer = ask(out, "example.org");
    assert!(
        answer.contains("status: NOERROR") && answer.contains("192.0.2.7"),
        "{answer}"
    );
    let answer = ask(none, "example.org");
    assert!(answer.contains("status: REFUSED"), "{answer}");
    assert!(!answer.contains("192.0.2.7"), "{answer}");
    let answer = ask(none, "web");
    assert!(
        answer.contains("status: NOERROR") && answer.contains("10.89.4.2"),
        "{answer}"
    );
    let _ = stop.send(());
    server.join().expect("server thread");
}
