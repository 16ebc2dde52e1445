//! Loopback tests of signed membership identities: a holder of the cluster key without a board's
//! key cannot replace the board's identity in the membership, nor displace it, and restarts
//! still converge.

use foca::{Codec, Header, Member, Message, PostcardCodec};

use super::identity::NodeId;
use super::tests::{config, sees_alive_with_api, three_converged, wait_for, KEY};
use super::*;

/// A key holder that speaks foca's protocol under identities of its choosing.
struct Holder {
    socket: tokio::net::UdpSocket,
    sealer: sealed::Sealer,
}

impl Holder {
    async fn new() -> Holder {
        let key = sealed::SealKey::derive(KEY).expect("key");
        Holder {
            socket: tokio::net::UdpSocket::bind("127.0.0.1:0")
                .await
                .expect("bind"),
            sealer: sealed::Sealer::new(key, "holder", 1).expect("sealer"),
        }
    }

    fn me(&self) -> NodeId {
        id("holder", self.socket.local_addr().expect("addr"), 1)
    }

    /// Sends `to` (as its first identity) a foca packet from `src` carrying `updates` as alive.
    async fn send(
        &mut self,
        to: &GossipHandle,
        src: NodeId,
        message: Message<NodeId>,
        updates: &[NodeId],
    ) {
        let dst = id(&to.name, to.local_addr(), 1);
        self.send_packet(to, src, dst, message, updates).await;
    }

    /// Sends `to` a message addressed to its identity `dst`, without updates.
    async fn send_to(
        &mut self,
        to: &GossipHandle,
        src: NodeId,
        dst: NodeId,
        message: Message<NodeId>,
    ) {
        self.send_packet(to, src, dst, message, &[]).await;
    }

    async fn send_packet(
        &mut self,
        to: &GossipHandle,
        src: NodeId,
        dst: NodeId,
        message: Message<NodeId>,
        updates: &[NodeId],
    ) {
        let header = Header {
            src,
            src_incarnation: 0,
            dst,
            message,
        };
        let mut packet = Vec::new();
        <PostcardCodec as Codec<NodeId>>::encode_header(&mut PostcardCodec, &header, &mut packet)
            .expect("header");
        let count = u16::try_from(updates.len()).expect("few");
        packet.extend_from_slice(&count.to_be_bytes());
        for update in updates {
            let member = Member::alive(update.clone());
            <PostcardCodec as Codec<NodeId>>::encode_member(
                &mut PostcardCodec,
                &member,
                &mut packet,
            )
            .expect("member");
        }
        self.send_payload(to, &wire::foca_payload(&packet)).await;
    }

    /// Sends `to` one datagram sealed with the cluster key around `payload`, whatever it holds.
    async fn send_payload(&mut self, to: &GossipHandle, payload: &[u8]) {
        let datagram = self.sealer.seal(payload).expect("seal");
        self.socket
            .send_to(&datagram, to.local_addr())
            .await
            .expect("send");
    }
}

fn id(name: &str, addr: SocketAddr, generation: u64) -> NodeId {
    NodeId {
        name: name.to_owned(),
        addr,
        generation,
    }
}

fn shows(observer: &GossipHandle, name: &str, state: MemberState, generation: u64) -> bool {
    observer
        .members()
        .iter()
        .any(|m| m.name == name && m.state == state && m.generation == generation)
}

/// Whether `observer` shows `name` alive with a generation in `generations`. Where a test expects
/// a real board, not a forgery, it takes any generation from the board's start up to below the
/// forged one: on a loaded machine the cluster may declare a board down for a moment, and the
/// board then renews its identity one generation up.
fn alive_in(observer: &GossipHandle, name: &str, generations: std::ops::Range<u64>) -> bool {
    observer.members().iter().any(|m| {
        m.name == name && m.state == MemberState::Alive && generations.contains(&m.generation)
    })
}

fn signed_by_all(boards: &[(&str, &GossipHandle)]) -> bool {
    boards.iter().all(|(me, h)| {
        boards
            .iter()
            .filter(|(other, _)| other != me)
            .all(|(other, _)| {
                h.members()
                    .iter()
                    .any(|m| m.name == *other && m.signed_by.is_some())
            })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_holder_can_neither_replace_nor_displace_a_bound_board() {
    let (a, b, c) = three_converged().await;
    let boards = [("a", &a), ("b", &b), ("c", &c)];
    wait_for("every name bound", || signed_by_all(&boards)).await;
    let at_b = b.local_addr();
    let forged = id("b", at_b, 1_001);
    let junk = id("junk", at_b, 50_000);
    let mut holder = Holder::new().await;
    for target in [&a, &c] {
        // Gossip of b at b's address with a generation 1000 ahead, and of another name there.
        let src = holder.me();
        holder
            .send(
                target,
                src,
                Message::Gossip,
                &[forged.clone(), junk.clone()],
            )
            .await;
        // And a packet that claims to come from the forged b.
        holder
            .send(target, forged.clone(), Message::Ping(1), &[])
            .await;
    }
    wait_for("the forgeries to be refused", || {
        [&a, &c].iter().all(|h| {
            let drops = h.drops();
            drops.unvouched_sender >= 1 && drops.unvouched_update >= 1
        })
    })
    .await;
    // junk@b's address is probed there; b does not answer for it, so it dies. A forged b that
    // had taken b's place would have died the same way by then.
    wait_for("junk to be declared dead", || {
        [&a, &c]
            .iter()
            .all(|h| shows(h, "junk", MemberState::Dead, 50_000))
    })
    .await;
    for (name, h) in [("a", &a), ("c", &c)] {
        assert!(alive_in(h, "b", 1..1_001), "{name} sees {:?}", h.members());
        assert!(sees_alive_with_api(h, "b"), "{name}");
    }
    assert!(sees_alive_with_api(&b, "a") && sees_alive_with_api(&b, "c"));
    for handle in [a, b, c] {
        handle.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgery_taken_before_the_boards_first_proof_is_purged_when_the_proof_arrives() {
    let a = start(config("a", 1, &[], KEY)).await.expect("a");
    // b has not met a yet, so its name is not bound at a.
    // b's address is held by a socket that answers nothing until b starts there: b must not hear
    // a's probes of the forgery before the test has seen a take it (b would introduce itself and
    // its proof would purge the forgery at once).
    let quiet = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let at_b = quiet.local_addr().expect("addr");
    let mut holder = Holder::new().await;
    let forged = id("b", at_b, 1_000);
    let src = holder.me();
    holder
        .send(&a, src, Message::Gossip, std::slice::from_ref(&forged))
        .await;
    // In any state: a probes the forgery, nobody answers, so it may be suspect or down by the
    // time a slow poll looks.
    wait_for("a to take the forged b (nothing vouches yet)", || {
        a.members()
            .iter()
            .any(|m| m.name == "b" && m.generation == 1_000)
    })
    .await;
    drop(quiet);
    let mut cfg = config("b", 1, &[a.local_addr()], KEY);
    cfg.listen = at_b;
    let b = start(cfg).await.expect("b at its address");
    wait_for("the real b to replace the forgery at a", || {
        alive_in(&a, "b", 1..1_000) && sees_alive_with_api(&a, "b")
    })
    .await;
    wait_for("b to see a", || sees_alive_with_api(&b, "a")).await;
    for handle in [a, b] {
        handle.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_restarts_with_its_bindings_and_no_seeds_converges() {
    let (a, b, c) = three_converged().await;
    let boards = [("a", &a), ("b", &b), ("c", &c)];
    wait_for("every name bound", || signed_by_all(&boards)).await;
    let c_addr = c.local_addr();
    let kept = c.bindings();
    c.task.abort();
    let _ = c.task.await;
    wait_for("c to be declared dead", || {
        shows(&a, "c", MemberState::Dead, 1) && shows(&b, "c", MemberState::Dead, 1)
    })
    .await;
    // Back at its address, knowing a's and b's keys but no seed: only the others' announces to
    // the down c bring it back, and c admits a and b only once their proofs vouch for them.
    let mut restarted = config("c", 2, &[], KEY);
    restarted.listen = c_addr;
    restarted.bindings = kept;
    let c = start(restarted).await.expect("restart c");
    wait_for("c and the others to see each other again", || {
        sees_alive_with_api(&c, "a")
            && sees_alive_with_api(&c, "b")
            && alive_in(&a, "c", 2..1_000)
            && alive_in(&b, "c", 2..1_000)
    })
    .await;
    assert!(c.drops().unvouched_sender + c.drops().unvouched_update >= 1);
    for handle in [a, b, c] {
        handle.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_board_that_restarts_at_another_address_replaces_its_old_self() {
    let (a, b, c) = three_converged().await;
    let boards = [("a", &a), ("b", &b), ("c", &c)];
    wait_for("every name bound", || signed_by_all(&boards)).await;
    let old = c.local_addr();
    c.task.abort();
    let _ = c.task.await;
    let c = start(config("c", 2, &[a.local_addr()], KEY))
        .await
        .expect("restart c");
    let moved = |h: &GossipHandle| {
        h.members().iter().any(|m| {
            m.name == "c"
                && m.state == MemberState::Alive
                && m.generation >= 2
                && m.addr == c.local_addr()
        })
    };
    wait_for("c at its new address everywhere", || {
        moved(&a) && moved(&b) && sees_alive_with_api(&c, "a") && sees_alive_with_api(&c, "b")
    })
    .await;
    assert_ne!(old, c.local_addr());
    assert_eq!(a.members().len(), 2, "no ghost of c at its old address");
    for handle in [a, b, c] {
        handle.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_renewals_are_rate_limited_and_each_renewed_identity_is_admitted() {
    let (a, b, c) = three_converged().await;
    let boards = [("a", &a), ("b", &b), ("c", &c)];
    wait_for("every name bound", || signed_by_all(&boards)).await;
    let mut holder = Holder::new().await;
    let started = std::time::Instant::now();
    // "You are down", to whatever identity b has at the moment, as fast as the holder can.
    for _ in 0..300 {
        let current = id("b", b.local_addr(), b.member_generation());
        let src = holder.me();
        holder.send_to(&b, src, current, Message::TurnUndead).await;
    }
    wait_for("b to renew", || b.member_generation() > 1).await;
    let renewed = b.member_generation();
    let elapsed = started.elapsed().as_secs() + 1;
    assert!(
        renewed - 1 <= 4 + elapsed,
        "{renewed} after {elapsed} s: a burst of 4, then one a second"
    );
    wait_for("a and c to admit b's renewed identity", || {
        let now = b.member_generation();
        shows(&a, "b", MemberState::Alive, now) && shows(&c, "b", MemberState::Alive, now)
    })
    .await;
    for handle in [a, b, c] {
        handle.shutdown().await.expect("shutdown");
    }
}

/// Probes so rare that members nobody answers for stay alive for the length of a test.
fn rare_probes() -> Timing {
    Timing {
        probe_period: std::time::Duration::from_secs(10),
        probe_rtt: std::time::Duration::from_secs(2),
        suspect_to_down_after: std::time::Duration::from_secs(60),
        ..Timing::fast()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boards_with_names_of_one_and_of_63_bytes_take_each_others_fullest_packets() {
    let long = "l".repeat(sealed::MAX_NAME_LEN);
    let mut cfg = config("s", 1, &[], KEY);
    cfg.timing = rare_probes();
    let s = start(cfg).await.expect("s");
    // s hears of many members with the longest names, so that its Feed fills a packet.
    let mut holder = Holder::new().await;
    let at = holder.socket.local_addr().expect("addr");
    let others: Vec<NodeId> = (0..24)
        .map(|i| id(&format!("{i:02}{}", "m".repeat(61)), at, 1))
        .collect();
    for chunk in others.chunks(8) {
        let src = holder.me();
        holder.send(&s, src, Message::Gossip, chunk).await;
    }
    wait_for("s to hold them", || s.members().len() > others.len()).await;
    let mut cfg = config(&long, 1, &[s.local_addr()], KEY);
    cfg.timing = rare_probes();
    let l = start(cfg).await.expect("l");
    let learnt = |h: &GossipHandle| {
        h.members()
            .iter()
            .filter(|m| others.iter().any(|o| o.name == m.name))
            .count()
    };
    wait_for("the long-named board to join and take s's Feed", || {
        sees_alive_with_api(&l, "s") && sees_alive_with_api(&s, &long) && learnt(&l) >= 10
    })
    .await;
    // Whole, and taken: foca refuses a packet over its limit, which would count here.
    for h in [&s, &l] {
        let drops = h.drops();
        assert_eq!(
            (drops.trimmed_update, drops.refused_membership),
            (0, 0),
            "{}: {drops:?}",
            h.name
        );
    }
    for handle in [s, l] {
        handle.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_key_holder_seals_and_nobody_reads_is_counted() {
    let a = start(config("a", 1, &[], KEY)).await.expect("a");
    let mut holder = Holder::new().await;
    // A kind no release sends, a proof and a state that do not decode, and a membership packet
    // that passes the sanitizer (from an unbound name, to a's identity) but asks a to probe
    // itself for the sender, which foca refuses.
    holder.send_payload(&a, &[0xee, 1, 2, 3]).await;
    holder
        .send_payload(&a, &[wire::KIND_PROOF, 0xff, 0xff])
        .await;
    holder
        .send_payload(&a, &[wire::KIND_STATE, 0xff, 0xff])
        .await;
    let src = holder.me();
    let itself = Message::PingReq {
        target: id("a", a.local_addr(), 1),
        probe_number: 1,
    };
    holder.send(&a, src, itself, &[]).await;
    wait_for("each to be counted", || {
        let drops = a.drops();
        drops.unknown_kind == 1
            && drops.refused_proof == 1
            && drops.refused_state == 1
            && drops.refused_membership == 1
    })
    .await;
    assert!(a.drops().total() >= 4, "{:?}", a.drops());
    a.shutdown().await.expect("shutdown");
}
