//! Loopback tests of whole endpoints: convergence, failure and restart, foreign keys, hostile input.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::*;

pub(super) const KEY: &str = "test-cluster-key-0123456789abcdef0123456789";
const OTHER_KEY: &str = "another-cluster-key-fedcba9876543210fedcba";
const DEADLINE: Duration = Duration::from_secs(15);

pub(super) fn config(name: &str, generation: u64, seeds: &[SocketAddr], key: &str) -> GossipConfig {
    GossipConfig {
        listen: ([127, 0, 0, 1], 0).into(),
        advertise: None,
        name: name.to_owned(),
        generation,
        seeds: seeds.to_vec(),
        cluster_key: key.to_owned(),
        values: BoardValues {
            labels: BTreeMap::from([("api".to_owned(), format!("{name}:8080"))]),
            ..BoardValues::default()
        },
        timing: Timing::fast(),
        board_key: board_key(name),
        bindings: BTreeMap::new(),
    }
}

/// The key a test board of this name signs with (the same across its restarts).
pub(super) fn board_key(name: &str) -> crate::board_key::BoardKey {
    let mut seed = [0u8; 32];
    for (i, b) in name.bytes().enumerate().take(32) {
        seed[i] = b;
    }
    crate::board_key::BoardKey::from_seed(seed, 1_000)
}

async fn node(name: &str, seeds: &[SocketAddr]) -> GossipHandle {
    start(config(name, 1, seeds, KEY))
        .await
        .expect("start node")
}

/// Polls `condition` until it holds; panics with `what` at the deadline.
pub(super) async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sees(observer: &GossipHandle, name: &str, state: MemberState) -> bool {
    observer
        .members()
        .iter()
        .any(|m| m.name == name && m.state == state)
}

pub(super) fn sees_alive_with_api(observer: &GossipHandle, name: &str) -> bool {
    let api = format!("{name}:8080");
    observer.members().iter().any(|m| {
        m.name == name
            && m.state == MemberState::Alive
            && m.values.labels.get("api") == Some(&api)
            && m.last_heard.is_some()
    })
}

pub(super) async fn three_converged() -> (GossipHandle, GossipHandle, GossipHandle) {
    let a = node("a", &[]).await;
    let b = node("b", &[a.local_addr()]).await;
    let c = node("c", &[a.local_addr()]).await;
    let nodes = [("a", &a), ("b", &b), ("c", &c)];
    wait_for("three nodes to converge", || {
        nodes.iter().all(|(me, handle)| {
            handle.members().len() == 2
                && nodes
                    .iter()
                    .filter(|(other, _)| other != me)
                    .all(|(other, _)| sees_alive_with_api(handle, other))
        })
    })
    .await;
    (a, b, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_converge_and_share_values() {
    let (a, b, c) = three_converged().await;
    let mut watch = b.watch();
    watch.borrow_and_update();
    a.update(|v| {
        v.labels.insert("capacity".into(), "cpu=4,mem=1024".into());
    })
    .expect("set");
    let has_capacity = |h: &GossipHandle| {
        h.members().iter().any(|m| {
            m.name == "a"
                && m.values.labels.get("capacity").map(String::as_str) == Some("cpu=4,mem=1024")
        })
    };
    wait_for("a's capacity to reach b and c", || {
        has_capacity(&b) && has_capacity(&c)
    })
    .await;
    assert!(
        watch.has_changed().expect("watch open"),
        "the watch saw the change"
    );
    a.update(|v| {
        v.labels.remove("capacity");
    })
    .expect("remove");
    wait_for("a's capacity to disappear", || !has_capacity(&b)).await;
    for handle in [a, b, c] {
        handle.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_node_is_declared_dead_and_its_restart_comes_back() {
    let (a, b, c) = three_converged().await;
    let c_addr = c.local_addr();
    // Kill without saying goodbye, so only the failure detector can notice.
    c.task.abort();
    let _ = c.task.await;
    wait_for("c to be declared dead", || {
        sees(&a, "c", MemberState::Dead) && sees(&b, "c", MemberState::Dead)
    })
    .await;

    let mut restarted = config("c", 2, &[a.local_addr()], KEY);
    restarted.listen = c_addr;
    restarted.values.labels.insert("boot".into(), "2".into());
    let c = start(restarted)
        .await
        .expect("restart c on its old address");
    let back = |h: &GossipHandle| {
        h.members().iter().any(|m| {
            m.name == "c"
                && m.state == MemberState::Alive
                && m.generation >= 2
                && m.values.labels.get("boot").map(String::as_str) == Some("2")
        })
    };
    wait_for("restarted c to be alive again", || back(&a) && back(&b)).await;
    assert_eq!(
        a.members().len(),
        2,
        "the old c does not linger beside the new one"
    );
    for handle in [a, b, c] {
        handle.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_with_another_key_is_never_admitted() {
    let a = node("a", &[]).await;
    let b = node("b", &[a.local_addr()]).await;
    wait_for("a and b to converge", || {
        sees_alive_with_api(&a, "b") && sees_alive_with_api(&b, "a")
    })
    .await;
    let d = start(config("d", 1, &[a.local_addr(), b.local_addr()], OTHER_KEY))
        .await
        .expect("start d");
    wait_for("d's announcements to reach a and b", || {
        a.drops().unauthenticated >= 3 && b.drops().unauthenticated >= 3
    })
    .await;
    assert!(a.members().iter().all(|m| m.name != "d"));
    assert!(b.members().iter().all(|m| m.name != "d"));
    assert!(d.members().is_empty(), "d learnt {:?}", d.members());
    for handle in [a, b, d] {
        handle.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_replayed_datagrams_leave_a_node_working() {
    let a = node("a", &[]).await;
    let b = node("b", &[a.local_addr()]).await;
    wait_for("a and b to converge", || sees_alive_with_api(&a, "b")).await;

    // Capture a real sealed datagram: a node that takes our raw socket for a seed announces to it.
    let tap = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind tap");
    let c = node("c", &[tap.local_addr().expect("tap addr")]).await;
    // c's proof comes first (a seed that knows c's name admits only identities a proof vouches
    // for), then its announce.
    let mut captured = Vec::new();
    for _ in 0..2 {
        captured = vec![0u8; 2048];
        let (len, _) = tokio::time::timeout(DEADLINE, tap.recv_from(&mut captured))
            .await
            .expect("c announces within the deadline")
            .expect("recv");
        captured.truncate(len);
    }
    c.shutdown().await.expect("shutdown c");

    let attacker = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind attacker");
    let target = a.local_addr();
    for _ in 0..3 {
        attacker
            .send_to(&captured, target)
            .await
            .expect("send replay");
    }
    let mut junk = vec![0u8; 3000];
    for (i, byte) in junk.iter_mut().enumerate() {
        *byte = (i * 131 % 251) as u8;
    }
    for len in [0, 1, 10, 41, 42, 100, 1400, 1473, 3000] {
        attacker
            .send_to(&junk[..len], target)
            .await
            .expect("send junk");
    }
    let mut truncated = captured.clone();
    truncated.truncate(captured.len() - 1);
    attacker
        .send_to(&truncated, target)
        .await
        .expect("send truncated");

    wait_for("a to drop the replays and the garbage", || {
        let drops = a.drops();
        drops.replayed >= 2 && drops.malformed + drops.unauthenticated >= 9
    })
    .await;
    b.update(|v| {
        v.labels.insert("still".into(), "working".into());
    })
    .expect("set");
    wait_for("a to keep following b", || {
        a.members().iter().any(|m| {
            m.name == "b"
                && m.state == MemberState::Alive
                && m.values.labels.get("still").map(String::as_str) == Some("working")
        })
    })
    .await;
    assert!(
        a.members().iter().all(|m| m.name != "c"),
        "a replayed announce is no way in"
    );
    for handle in [a, b] {
        handle.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_holder_claiming_a_generation_of_u64_max_is_dropped_and_the_board_stays() {
    let a = node("a", &[]).await;
    let b = node("b", &[a.local_addr()]).await;
    wait_for("a and b to converge", || sees_alive_with_api(&a, "b")).await;
    let key = sealed::SealKey::derive(KEY).expect("key");
    let mut forged = sealed::Sealer::new(key, "b", u64::MAX).expect("sealer");
    let mut values = BoardValues::default();
    values.labels.insert("api".into(), "evil:1".into());
    let state = wire::StateMessage {
        generation: u64::MAX,
        version: u64::MAX,
        values,
    };
    let attacker = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind attacker");
    for _ in 0..3 {
        let datagram = forged.seal(&state.encode()).expect("seal");
        attacker
            .send_to(&datagram, a.local_addr())
            .await
            .expect("send");
    }
    wait_for("a to drop the forged generation", || {
        a.drops().implausible_generation >= 3
    })
    .await;
    b.update(|v| {
        v.labels.insert("still".into(), "heard".into());
    })
    .expect("set");
    wait_for("a to keep following the real b", || {
        a.members().iter().any(|m| {
            m.name == "b"
                && m.generation == 1
                && m.values.labels.get("still").map(String::as_str) == Some("heard")
                && m.values.labels.get("api").map(String::as_str) == Some("b:8080")
        })
    })
    .await;
    for handle in [a, b] {
        handle.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_errors_are_reported_and_the_endpoint_keeps_serving() {
    let a = node("a", &[]).await;
    let b = node("b", &[a.local_addr()]).await;
    wait_for("a and b to converge", || sees_alive_with_api(&a, "b")).await;
    // Errors that are not transient (the ones that used to end the loop for good).
    for kind in [
        std::io::ErrorKind::PermissionDenied,
        std::io::ErrorKind::NetworkDown,
        std::io::ErrorKind::Other,
    ] {
        a.fail_receive(kind).expect("the endpoint is still there");
    }
    wait_for("a to report the errors", || a.receive_errors().0 == 3).await;
    let (_, last) = a.receive_errors();
    assert_eq!(
        last.as_deref(),
        Some("receiving gossip datagrams: other error")
    );
    b.update(|v| {
        v.labels.insert("after".into(), "errors".into());
    })
    .expect("set");
    wait_for("a to keep following b", || {
        a.members().iter().any(|m| {
            m.name == "b"
                && m.state == MemberState::Alive
                && m.values.labels.get("after").map(String::as_str) == Some("errors")
        })
    })
    .await;
    for handle in [a, b] {
        handle.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_source_is_dropped_unopened_and_others_get_through() {
    let a = node("a", &[]).await;
    let b = node("b", &[a.local_addr()]).await;
    wait_for("a and b to converge", || sees_alive_with_api(&a, "b")).await;
    // The flood comes from another address than the boards (127.0.0.1).
    let attacker = tokio::net::UdpSocket::bind("127.0.0.2:0")
        .await
        .expect("bind attacker");
    let started = std::time::Instant::now();
    let junk = vec![1u8; 200];
    let sent = 5_000u64;
    for _ in 0..sent {
        attacker.send_to(&junk, a.local_addr()).await.expect("send");
    }
    wait_for("a to rate-limit the flood", || a.drops().rate_limited > 0).await;
    b.update(|v| {
        v.labels.insert("during".into(), "flood".into());
    })
    .expect("set");
    wait_for("a to keep following b", || {
        a.members().iter().any(|m| {
            m.name == "b"
                && m.state == MemberState::Alive
                && m.values.labels.get("during").map(String::as_str) == Some("flood")
        })
    })
    .await;
    // What was opened (and failed to authenticate) is what the source's bucket held: its burst
    // and its rate for the time the flood lasted, however long that was.
    let drops = a.drops();
    let elapsed = started.elapsed().as_secs() + 1;
    let allowed = u64::from(flood::BURST) + u64::from(flood::PER_SECOND) * elapsed;
    assert!(drops.unauthenticated <= allowed, "{drops:?}, {allowed}");
    assert!(
        drops.unauthenticated + drops.rate_limited <= sent,
        "{drops:?}"
    );
    for handle in [a, b] {
        handle.shutdown().await.expect("shutdown");
    }
}

#[tokio::test]
async fn bad_setup_is_reported() {
    let short = start(config("a", 1, &[], "short")).await;
    assert!(matches!(short, Err(GossipError::Seal { .. })));
    let mut huge = config("a", 1, &[], KEY);
    huge.values.labels.insert("blob".into(), "x".repeat(2000));
    assert!(matches!(
        start(huge).await,
        Err(GossipError::StateTooLarge { .. })
    ));
    let a = node("a", &[]).await;
    assert!(matches!(
        a.update(|v| {
            v.labels.insert("blob".into(), "x".repeat(2000));
        }),
        Err(GossipError::StateTooLarge { .. })
    ));
    a.shutdown().await.expect("shutdown");
}
