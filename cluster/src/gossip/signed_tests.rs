//! Loopback tests of signed state: every board's values are signed by its own key, and a holder
//! of the cluster key without a board's key cannot publish values in that board's name.

use std::collections::BTreeMap;

use super::tests::{board_key, config, sees_alive_with_api, three_converged, wait_for, KEY};
use super::*;
use crate::board_key::{fingerprint, BoardKey};

/// A key holder: it seals datagrams with the cluster key under any name it likes.
struct Holder {
    socket: tokio::net::UdpSocket,
    sealer: sealed::Sealer,
}

impl Holder {
    async fn as_board(name: &str, generation: u64) -> Holder {
        let key = sealed::SealKey::derive(KEY).expect("key");
        Holder {
            socket: tokio::net::UdpSocket::bind("127.0.0.1:0")
                .await
                .expect("bind"),
            sealer: sealed::Sealer::new(key, name, generation).expect("sealer"),
        }
    }

    /// Sends `values` as state `generation`/`version`, followed by a proof signed by `key` when
    /// one is given (the previous release sends none).
    async fn publish(
        &mut self,
        to: SocketAddr,
        name: &str,
        (generation, version): (u64, u64),
        values: BoardValues,
        key: Option<&BoardKey>,
    ) {
        let state = wire::StateMessage {
            generation,
            version,
            values,
        }
        .encode();
        let mut payloads = vec![state.clone()];
        if let Some(key) = key {
            let addr = self.socket.local_addr().expect("addr");
            let proof =
                proof::StateProof::sign(key, name, addr, (generation, generation), version, &state);
            payloads.push(proof.encode());
        }
        for payload in payloads {
            let datagram = self.sealer.seal(&payload).expect("seal");
            self.socket.send_to(&datagram, to).await.expect("send");
        }
    }
}

fn api_of(observer: &GossipHandle, name: &str) -> Option<String> {
    let m = observer.members().into_iter().find(|m| m.name == name)?;
    m.values.labels.get("api").cloned()
}

fn evil() -> BoardValues {
    let mut values = BoardValues::default();
    values.labels.insert("api".into(), "evil:1".into());
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_board_shows_signed_values_and_binds_every_name() {
    let (a, b, c) = three_converged().await;
    wait_for("every member signed and bound", || {
        [(&a, ["b", "c"]), (&b, ["a", "c"]), (&c, ["a", "b"])]
            .iter()
            .all(|(h, others)| {
                others.iter().all(|o| {
                    let want = fingerprint(&board_key(o).public());
                    h.members()
                        .iter()
                        .any(|m| m.name == *o && m.signed_by.as_deref() == Some(want.as_str()))
                        && h.bindings().get(*o).map(|b| b.key) == Some(board_key(o).public())
                })
            })
    })
    .await;
    assert!(a.conflicts().is_empty());
    for handle in [a, b, c] {
        handle.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_holder_cannot_publish_values_in_a_bound_name() {
    let a = start(config("a", 1, &[], KEY)).await.expect("a");
    let b = start(config("b", 1, &[a.local_addr()], KEY))
        .await
        .expect("b");
    wait_for("a binds b", || {
        sees_alive_with_api(&a, "b") && a.bindings().contains_key("b")
    })
    .await;
    // A later generation than b's, or a's replay window would drop the holder's datagrams; b's
    // own generation stays heard, because b signed state in it (see sealed::replay).
    let mut holder = Holder::as_board("b", 2).await;
    // Unsigned, as the previous release would send it, with a version far ahead.
    holder
        .publish(a.local_addr(), "b", (2, 1), evil(), None)
        .await;
    // A state that does not decode: for an unbound name it would be shown as refused, blanking
    // the values; for a bound one it may be anyone's, so it changes nothing.
    let junk = holder
        .sealer
        .seal(&[wire::KIND_STATE, 0xff, 0xff, 0xff])
        .expect("seal");
    holder
        .socket
        .send_to(&junk, a.local_addr())
        .await
        .expect("send");
    // Signed by the holder's own key: a young binding gives way only to an earlier claim, so
    // this one claims a later time than b's.
    let mine = BoardKey::from_seed([0xee; 32], 5_000);
    holder
        .publish(a.local_addr(), "b", (2, 2), evil(), Some(&mine))
        .await;
    wait_for("a to report the conflict", || {
        a.conflicts()
            .iter()
            .any(|c| c.name == "b" && c.claimed == fingerprint(&mine.public()))
    })
    .await;
    b.update(|v| {
        v.labels.insert("still".into(), "b".into());
    })
    .expect("update");
    wait_for("a to keep following b's own values", || {
        a.members()
            .iter()
            .any(|m| m.name == "b" && m.values.labels.contains_key("still"))
    })
    .await;
    assert_eq!(api_of(&a, "b").as_deref(), Some("b:8080"));
    assert_eq!(a.drops().stale_generation, 0, "b's datagrams are not stale");
    let b_member = a.members().into_iter().find(|m| m.name == "b").expect("b");
    assert_eq!(b_member.values_error, None, "the junk did not blank b");
    assert_eq!(
        a.bindings().get("b").map(|x| x.key),
        Some(board_key("b").public())
    );
    for handle in [a, b] {
        handle.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settled_binding_refuses_a_backdated_claim_until_the_operator_forgets_it() {
    // a has known b's key for a long time (loaded from its data partition).
    let mut cfg = config("a", 1, &[], KEY);
    cfg.bindings = BTreeMap::from([(
        "b".to_owned(),
        Binding {
            key: board_key("b").public(),
            since_ms: 1_000,
            bound_at_ms: 0,
            pinned_generation: None,
        },
    )]);
    let a = start(cfg).await.expect("a");
    // b comes back with a new card: a new key, claiming an earlier time than the old one.
    let mut b_cfg = config("b", 2, &[a.local_addr()], KEY);
    b_cfg.board_key = BoardKey::from_seed([0x42; 32], 0);
    let b = start(b_cfg).await.expect("b");
    wait_for("a to refuse b's new key", || {
        a.conflicts().iter().any(|c| c.name == "b")
    })
    .await;
    assert!(
        api_of(&a, "b").is_none(),
        "no values shown for a name under another key"
    );
    a.forget("b").expect("forget");
    wait_for("b's new key to bind and its values to show", || {
        a.bindings().get("b").map(|x| x.key) == Some(BoardKey::from_seed([0x42; 32], 0).public())
            && sees_alive_with_api(&a, "b")
    })
    .await;
    assert!(a.conflicts().is_empty(), "forgetting clears the conflicts");
    for handle in [a, b] {
        handle.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_board_of_the_previous_release_is_shown_unsigned_and_reads_signed_boards() {
    let a = start(config("a", 1, &[], KEY)).await.expect("a");
    // No seed until it plays the previous release (commands are taken in order): with one, its
    // first announce could carry a proof before that, and a would bind its name.
    let old = start(config("old", 1, &[], KEY)).await.expect("old");
    old.as_previous_release().expect("previous release");
    old.add_seed(a.local_addr()).expect("seed");
    old.update(|v| {
        v.labels.insert("build".into(), "previous".into());
    })
    .expect("update");
    wait_for("each to show the other's values", || {
        a.members().iter().any(|m| {
            m.name == "old" && m.values.labels.contains_key("build") && m.signed_by.is_none()
        }) && sees_alive_with_api(&old, "a")
    })
    .await;
    assert!(
        !a.bindings().contains_key("old"),
        "no key, so no binding: any key holder could still speak for it"
    );
    for handle in [a, old] {
        handle.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_board_with_load_sends_the_previous_release_its_values_without_the_load_table() {
    let a = start(config("a", 1, &[], KEY)).await.expect("a");
    let old = start(config("old", 1, &[], KEY)).await.expect("old");
    old.as_previous_release().expect("previous release");
    old.add_seed(a.local_addr()).expect("seed");
    let b = start(config("b", 1, &[a.local_addr()], KEY))
        .await
        .expect("b");
    let load = vec![values::ServiceLoad {
        service: 0,
        stable: 8,
        ..Default::default()
    }];
    a.update(|v| {
        v.labels.insert("build".into(), "new".into());
        v.load_bucket = 7;
        v.load = load.clone();
    })
    .expect("update");
    let seen_by = |observer: &GossipHandle| {
        observer
            .members()
            .into_iter()
            .find(|m| m.name == "a" && m.values.labels.contains_key("build"))
            .map(|m| m.values)
    };
    // The signed board gets the whole state; the previous release's board gets it without the
    // load table (the layout it reads), so it keeps placing beside `a`.
    wait_for("b to see a's load and old to see a's values", || {
        seen_by(&b).is_some_and(|v| v.load == load) && seen_by(&old).is_some()
    })
    .await;
    let at_old = seen_by(&old).expect("a at old");
    assert!(!at_old.has_load(), "{at_old:?}");
    assert_eq!(at_old, seen_by(&b).expect("a at b").without_load());
    for handle in [a, b, old] {
        handle.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_restarted_with_its_bindings_refuses_a_replayed_older_generation() {
    let a = start(config("a", 1, &[], KEY)).await.expect("a");
    let b = start(config("b", 5, &[a.local_addr()], KEY))
        .await
        .expect("b");
    wait_for("a to pin b's generation in its bindings", || {
        a.bindings().get("b").and_then(|x| x.pinned_generation) == Some(5)
    })
    .await;
    let kept = a.bindings();
    for handle in [a, b] {
        handle.shutdown().await.expect("shutdown");
    }
    let mut restarted = config("a", 2, &[], KEY);
    restarted.bindings = kept;
    let a = start(restarted).await.expect("restart a");
    // A key holder replays what b signed in its generation 4, before its last restart.
    let mut holder = Holder::as_board("b", 4).await;
    holder
        .publish(a.local_addr(), "b", (4, 1), evil(), Some(&board_key("b")))
        .await;
    wait_for("a to refuse the state and proof as stale", || {
        a.drops().stale_generation >= 2
    })
    .await;
    assert!(
        api_of(&a, "b").is_none(),
        "b is not shown at the old address"
    );
    a.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_refused_because_the_bindings_are_full_is_counted_and_named() {
    let mut cfg = config("a", 1, &[], KEY);
    cfg.bindings = (0..bindings::MAX_BINDINGS)
        .map(|i| {
            let binding = Binding {
                key: [7; 32],
                since_ms: 0,
                bound_at_ms: 0,
                pinned_generation: None,
            };
            (format!("n{i}"), binding)
        })
        .collect();
    let a = start(cfg).await.expect("a");
    let b = start(config("b", 1, &[a.local_addr()], KEY))
        .await
        .expect("b");
    wait_for("a to refuse b's proofs for want of room", || {
        a.drops().bindings_full >= 2 && a.refused_full() == (1, Some("b".to_owned()))
    })
    .await;
    assert!(!a.bindings().contains_key("b"));
    wait_for("b's state shown unsigned", || {
        a.members()
            .iter()
            .any(|m| m.name == "b" && m.signed_by.is_none() && sees_alive_with_api(&a, "b"))
    })
    .await;
    for handle in [a, b] {
        handle.shutdown().await.expect("shutdown");
    }
}
