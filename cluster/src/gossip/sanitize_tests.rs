//! The sanitizer against packets made by real foca instances.

use std::num::NonZeroU32;

use foca::{AccumulatingRuntime, Foca, Member, NoCustomBroadcast, OwnedNotification};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;

type Instance = Foca<NodeId, PostcardCodec, StdRng, NoCustomBroadcast>;

fn id(name: &str, port: u16, generation: u64) -> NodeId {
    NodeId {
        name: name.into(),
        addr: ([127, 0, 0, 1], port).into(),
        generation,
    }
}

fn instance(me: &NodeId) -> Instance {
    let config = foca::Config::new_lan(NonZeroU32::MIN.saturating_add(3));
    Foca::new(me.clone(), config, StdRng::seed_from_u64(7), PostcardCodec)
}

/// Every packet `runtime` holds, with its destination.
fn sent(runtime: &mut AccumulatingRuntime<NodeId>) -> Vec<(NodeId, Vec<u8>)> {
    std::iter::from_fn(|| runtime.to_send())
        .map(|(to, bytes)| (to, bytes.to_vec()))
        .collect()
}

fn ups(runtime: &mut AccumulatingRuntime<NodeId>) -> Vec<NodeId> {
    std::iter::from_fn(|| runtime.to_notify())
        .filter_map(|n| match n {
            OwnedNotification::MemberUp(id) => Some(id),
            _ => None,
        })
        .collect()
}

fn kept(out: Sanitized) -> (Vec<u8>, Vec<NodeId>) {
    match out {
        Sanitized::Keep {
            packet, stripped, ..
        } => (packet, stripped),
        other => panic!("dropped: {other:?}"),
    }
}

#[test]
fn packets_pass_byte_for_byte_and_an_announce_to_a_seed_is_readdressed() {
    let (a, b) = (id("a", 1, 1), id("b", 2, 1));
    let (mut fa, mut fb) = (instance(&a), instance(&b));
    let (mut ra, mut rb) = (AccumulatingRuntime::new(), AccumulatingRuntime::new());
    // b knows two more members, so its Feed carries updates.
    let others = [id("c", 3, 1), id("d", 4, 1)].map(Member::alive);
    fb.apply_many(others.into_iter(), false, &mut rb)
        .expect("apply");
    sent(&mut rb);
    fa.announce(NodeId::seed(b.addr), &mut ra)
        .expect("announce");
    let [(_, announce)] = <[_; 1]>::try_from(sent(&mut ra)).expect("one");
    // Keyed by name, foca ignores an announce to the nameless stand-in.
    fb.handle_data(&announce, &mut rb).expect("handled");
    assert!(sent(&mut rb).is_empty(), "no Feed for the stand-in");
    let (readdressed, stripped) = kept(sanitize(&announce, &b, |_| true));
    assert!(stripped.is_empty());
    assert_ne!(readdressed, announce);
    fb.handle_data(&readdressed, &mut rb).expect("handled");
    let replies = sent(&mut rb);
    assert_eq!(replies.len(), 1, "b answers with its Feed");
    let (to, feed) = &replies[0];
    assert_eq!(to, &a);
    let (same, stripped) = kept(sanitize(feed, &a, |_| true));
    assert_eq!(&same, feed, "every update admitted: the same bytes");
    assert!(stripped.is_empty());
    fa.handle_data(&same, &mut ra).expect("handled");
    let mut learnt = ups(&mut ra);
    learnt.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(learnt, [b.clone(), id("c", 3, 1), id("d", 4, 1)]);
    // Gossip and pings (with their piggybacked updates) pass unchanged too.
    fa.gossip(&mut ra).expect("gossip");
    for (to, packet) in sent(&mut ra) {
        let (same, _) = kept(sanitize(&packet, &to, |_| true));
        assert_eq!(same, packet, "to {to:?}");
    }
}

#[test]
fn inadmissible_updates_are_stripped_and_an_inadmissible_sender_drops_the_packet() {
    let (a, b) = (id("a", 1, 1), id("b", 2, 1));
    let (mut fa, mut fb) = (instance(&a), instance(&b));
    let (mut ra, mut rb) = (AccumulatingRuntime::new(), AccumulatingRuntime::new());
    let forged = id("c", 2, 1_000);
    let updates = [forged.clone(), id("d", 4, 1)].map(Member::alive);
    fb.apply_many(updates.into_iter(), false, &mut rb)
        .expect("apply");
    sent(&mut rb);
    fa.announce(b.clone(), &mut ra).expect("announce");
    let [(_, announce)] = <[_; 1]>::try_from(sent(&mut ra)).expect("one");
    assert_eq!(
        sanitize(&announce, &b, |x| x.name != "a"),
        Sanitized::Sender(a.clone())
    );
    fb.handle_data(&kept(sanitize(&announce, &b, |_| true)).0, &mut rb)
        .expect("handled");
    let [(_, feed)] = <[_; 1]>::try_from(sent(&mut rb)).expect("a Feed");
    let (packet, stripped) = kept(sanitize(&feed, &a, |x| x != &forged));
    assert_eq!(stripped, std::slice::from_ref(&forged));
    assert!(packet.len() < feed.len());
    fa.handle_data(&packet, &mut ra).expect("handled");
    let names: Vec<String> = fa.iter_members().map(|m| m.id().name.clone()).collect();
    assert!(names.contains(&"d".to_owned()), "{names:?}");
    assert!(!names.contains(&"c".to_owned()), "{names:?}");
}

#[test]
fn what_baton_never_sends_is_malformed() {
    let (a, b) = (id("a", 1, 1), id("b", 2, 1));
    let mut fb = instance(&b);
    let mut rb = AccumulatingRuntime::new();
    fb.apply_many([Member::alive(a.clone())].into_iter(), false, &mut rb)
        .expect("apply");
    sent(&mut rb);
    fb.gossip(&mut rb).expect("gossip");
    let (_, gossip) = sent(&mut rb).pop().expect("gossip");
    let mut tail = gossip.clone();
    tail.extend_from_slice(&[0, 1, 9]);
    assert_eq!(sanitize(&tail, &a, |_| true), Sanitized::Malformed);
    assert_eq!(
        sanitize(&gossip[..gossip.len() - 1], &a, |_| true),
        Sanitized::Malformed,
        "an update cut short"
    );
    assert_eq!(sanitize(&[0xff; 3], &a, |_| true), Sanitized::Malformed);
    let header = Header {
        src: b.clone(),
        src_incarnation: 0,
        dst: a.clone(),
        message: Message::Broadcast,
    };
    let mut broadcast = Vec::new();
    PostcardCodec
        .encode_header(&header, &mut broadcast)
        .expect("encode");
    assert_eq!(sanitize(&broadcast, &a, |_| true), Sanitized::Malformed);
    // A header alone (a Ping written into a full buffer has no count) passes as it is.
    let ping = Header {
        message: Message::Ping(3),
        ..header
    };
    let mut bare = Vec::new();
    PostcardCodec
        .encode_header(&ping, &mut bare)
        .expect("encode");
    assert_eq!(kept(sanitize(&bare, &a, |_| true)).0, bare);
    bare.push(0);
    assert_eq!(sanitize(&bare, &a, |_| true), Sanitized::Malformed);
}

#[test]
fn a_larger_packet_of_the_previous_release_loses_updates_to_fit_not_its_message() {
    let limited = |me: &NodeId, max: usize| {
        let mut config = foca::Config::new_lan(NonZeroU32::MIN.saturating_add(3));
        config.max_packet_size = std::num::NonZeroUsize::new(max).expect("size");
        Foca::new(me.clone(), config, StdRng::seed_from_u64(7), PostcardCodec)
    };
    // The previous release's limit followed the sender's name: for a one-byte name it is larger
    // than the one every board now has.
    let previous = crate::sealed::MAX_DATAGRAM - crate::sealed::OVERHEAD - 1 - 1;
    let (s, long) = (id("s", 1, 1), id(&"l".repeat(63), 2, 1));
    let (mut fs, mut fl) = (limited(&s, previous), limited(&long, MAX_FOCA_PACKET));
    let (mut rs, mut rl) = (AccumulatingRuntime::new(), AccumulatingRuntime::new());
    let many = (0..40).map(|i| Member::alive(id(&format!("{i:02}{}", "m".repeat(61)), 10, 1)));
    fs.apply_many(many, false, &mut rs).expect("apply");
    sent(&mut rs);
    fl.announce(s.clone(), &mut rl).expect("announce");
    let [(_, announce)] = <[_; 1]>::try_from(sent(&mut rl)).expect("one");
    fs.handle_data(&announce, &mut rs).expect("handled");
    let [(_, feed)] = <[_; 1]>::try_from(sent(&mut rs)).expect("a Feed");
    assert!(feed.len() > MAX_FOCA_PACKET, "{} bytes", feed.len());
    assert!(
        fl.handle_data(&feed, &mut AccumulatingRuntime::new())
            .is_err(),
        "foca refuses it whole"
    );
    let Sanitized::Keep {
        packet, trimmed, ..
    } = sanitize(&feed, &long, |_| true)
    else {
        panic!("dropped");
    };
    assert!(packet.len() <= MAX_FOCA_PACKET);
    assert!(trimmed >= 1);
    fl.handle_data(&packet, &mut rl).expect("taken");
    // The sender, and every member the packet kept room for.
    assert!(ups(&mut rl).len() >= 10);
}
