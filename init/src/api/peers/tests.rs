//! Boards reading each other: the peer routes' key, the merged past of `GET /v1/events` (a
//! peer's instance events only, under its own name, and a peer that cannot be read said), and
//! the merged stream, whose ids name each board's last event and whose peers' events arrive
//! live. Every board here is a real API server on loopback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use baton_api::events::{EventList, What};
use futures_util::StreamExt as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::events::{list, stream, Asked};
use super::fanout::{Ask, Fanout, Got};
use crate::api::{serve, Handles};
use crate::board::console::Console;
use crate::board::status::BoardStatus;
use crate::cluster::peer_read::{PeerApi, Peers};
use crate::events::Bus;

const KEY: &str = "peer-read-test-key";

/// A board in a cluster, serving its API on loopback: its address and its bus.
async fn board(name: &str) -> (SocketAddr, Arc<Bus>) {
    let mut handles = Handles::alone(
        Arc::new(BoardStatus::default()),
        Arc::new(Console::quiet(10)),
        mpsc::channel(1).0,
        PathBuf::from("/nonexistent/services"),
        None,
    );
    let bus = Arc::new(Bus::new(7));
    bus.set_board(name);
    handles.bus = Arc::clone(&bus);
    handles.peer_key = Some(KEY.into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve(listener, handles));
    (addr, bus)
}

struct Fixed(Vec<PeerApi>, &'static str);

impl Peers for Fixed {
    fn read_key(&self) -> String {
        self.1.to_string()
    }
    fn tls(&self) -> Option<Arc<rustls::ClientConfig>> {
        None
    }
    fn readable(&self) -> Vec<PeerApi> {
        self.0.clone()
    }
}

fn peers(list: &[(&str, SocketAddr)], key: &'static str) -> Arc<dyn Peers> {
    let list = list
        .iter()
        .map(|(name, addr)| PeerApi {
            name: name.to_string(),
            addr: *addr,
        })
        .collect();
    Arc::new(Fixed(list, key))
}

fn ready(instance: &str) -> What {
    What::InstanceReady {
        service: "web".into(),
        instance: instance.into(),
    }
}

/// A port nothing listens on.
async fn closed_port() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    l.local_addr().expect("addr")
}

async fn body_text(body: Body) -> String {
    let bytes = axum::body::to_bytes(body, 1 << 20).await.expect("body");
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn the_peer_routes_take_the_peer_key_only() {
    let (addr, _) = board("pi-b").await;
    for (auth, want) in [
        ("", "401"),
        ("Authorization: Bearer wrong\r\n", "401"),
        ("Authorization: Bearer api-token\r\n", "401"),
        (&*format!("Authorization: Bearer {KEY}\r\n"), "200"),
    ] {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let head =
            format!("GET /v1/peer/events HTTP/1.1\r\nHost: b\r\n{auth}Connection: close\r\n\r\n");
        s.write_all(head.as_bytes()).await.expect("write");
        let mut got = String::new();
        s.read_to_string(&mut got).await.expect("read");
        assert!(
            got.starts_with(&format!("HTTP/1.1 {want}")),
            "{auth:?}: {got}"
        );
    }
}

#[tokio::test]
async fn the_merged_past_has_a_peers_instance_events_under_its_name_and_says_who_is_missing() {
    let (b_addr, b_bus) = board("pi-b").await;
    let here = Bus::new(1);
    here.set_board("pi-a");
    here.raise(ready("web-1"));
    b_bus.raise(ready("web-2"));
    b_bus.raise(What::BoardJoined {
        member: "pi-z".into(),
    });
    here.raise(What::SpecApplied {
        service: "web".into(),
    });
    let gone = closed_port().await;
    let asked = Asked {
        after: None,
        tail: 100,
        last_event_id: None,
    };
    let answer = list(
        &here,
        peers(&[("pi-b", b_addr), ("pi-c", gone)], KEY),
        asked,
    )
    .await;
    let events: EventList =
        serde_json::from_str(&body_text(answer.into_body()).await).expect("json");
    let said: Vec<(String, &str)> = events
        .events
        .iter()
        .map(|e| (e.board.clone(), e.what.kind()))
        .collect();
    assert!(
        said.contains(&("pi-a".into(), "instance-ready")),
        "{said:?}"
    );
    assert!(said.contains(&("pi-a".into(), "spec-applied")), "{said:?}");
    assert!(
        said.contains(&("pi-b".into(), "instance-ready")),
        "{said:?}"
    );
    assert!(
        !said.iter().any(|(_, k)| *k == "board-joined"),
        "a peer's member news is its own: {said:?}"
    );
    assert!(
        events.events.iter().any(|e| matches!(&e.what,
            What::PeerUnreachable { peer, .. } if peer == "pi-c")),
        "{said:?}"
    );
    let times: Vec<u64> = events.events.iter().map(|e| e.at_ms).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "by time: {times:?}");
}

#[tokio::test]
async fn a_wrong_key_shows_as_a_peer_that_cannot_be_read() {
    let (b_addr, b_bus) = board("pi-b").await;
    b_bus.raise(ready("web-2"));
    let here = Bus::new(1);
    here.set_board("pi-a");
    let asked = Asked {
        after: None,
        tail: 10,
        last_event_id: None,
    };
    let answer = list(&here, peers(&[("pi-b", b_addr)], "not-the-key"), asked).await;
    let events: EventList =
        serde_json::from_str(&body_text(answer.into_body()).await).expect("json");
    assert_eq!(events.events.len(), 1, "{events:?}");
    match &events.events[0].what {
        What::PeerUnreachable { peer, error } => {
            assert_eq!(peer, "pi-b");
            assert!(error.contains("401"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_merged_stream_passes_a_peers_new_events_on_with_every_boards_id() {
    let (b_addr, b_bus) = board("pi-b").await;
    b_bus.raise(ready("web-2"));
    let here = Arc::new(Bus::new(1));
    here.set_board("pi-a");
    here.raise(ready("web-1"));
    let slot = here.stream().expect("a slot");
    let asked = Asked {
        after: None,
        tail: 100,
        last_event_id: None,
    };
    let answer = stream(
        Arc::clone(&here),
        slot,
        peers(&[("pi-b", b_addr)], KEY),
        asked,
    );
    let mut body = answer.into_body().into_data_stream();
    let mut text = String::new();
    let past = wait_for(&mut body, &mut text, "\"web-2\"").await;
    assert!(past.contains("\"web-1\""), "{past}");
    // The peer's event comes, live, with an id naming both boards' last events.
    b_bus.raise(ready("web-3"));
    let now = wait_for(&mut body, &mut text, "\"web-3\"").await;
    let frame = now
        .rsplit("\n\n")
        .find(|f| f.contains("web-3"))
        .expect("frame");
    assert!(frame.contains("id: pi-a:1.1,pi-b:7.2\n"), "{frame}");
    assert!(frame.contains("\"board\":\"pi-b\""), "{frame}");
}

/// Reads `body` into `text` until `want` is in it; all of it.
async fn wait_for(body: &mut axum::body::BodyDataStream, text: &mut String, want: &str) -> String {
    let reading = async {
        while !text.contains(want) {
            let chunk = body.next().await.expect("open").expect("chunk");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), reading)
        .await
        .is_err()
    {
        panic!("no {want:?} in {text}");
    }
    text.clone()
}

#[tokio::test]
async fn a_reader_of_the_peers_resumes_after_the_last_id_it_got() {
    let (b_addr, b_bus) = board("pi-b").await;
    for i in 1..=3 {
        b_bus.raise(ready(&format!("web-{i}")));
    }
    let ask = Ask {
        first: "/v1/peer/events?tail=100".to_string(),
        again: String::new(),
        last_event_id: Some("pi-a:1.4,pi-b:7.2".to_string()),
        follow: false,
    };
    let mut fan: Fanout<baton_api::events::Event> =
        Fanout::start(peers(&[("pi-b", b_addr)], KEY), ask);
    let (got, late) = fan
        .past(
            tokio::time::Instant::now() + Duration::from_secs(10),
            (100, 100),
            |e| e.at_ms,
        )
        .await;
    assert!(late.is_empty());
    let seqs: Vec<u64> = got
        .iter()
        .filter_map(|(_, g)| match g {
            Got::Item { v, .. } => Some(v.seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, [3], "only what came after pi-b's entry");
}

#[tokio::test]
async fn a_peer_says_its_load_and_version() {
    let (b_addr, _) = board("pi-b").await;
    let ask = Ask {
        first: "/v1/peer/status".to_string(),
        again: String::new(),
        last_event_id: None,
        follow: false,
    };
    let mut fan: Fanout<baton_api::BoardView> = Fanout::start(peers(&[("pi-b", b_addr)], KEY), ask);
    let (got, late) = fan
        .past(
            tokio::time::Instant::now() + Duration::from_secs(10),
            (1, 8),
            |_| 0,
        )
        .await;
    assert!(late.is_empty());
    let [(peer, Got::Item { v, .. })] = got.as_slice() else {
        panic!("{got:?}");
    };
    assert_eq!(peer, "pi-b");
    assert_eq!(v.version, env!("CARGO_PKG_VERSION"));
    let load = v.load.as_ref().expect("this host's /proc read");
    assert!(
        load.cpus >= 1 && load.cpu_total_ms >= load.cpu_busy_ms,
        "{load:?}"
    );
}
