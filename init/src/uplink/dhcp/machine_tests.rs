//! Unit tests of the DHCP state machine: a scripted server answers the client's messages.

use dhcproto::v4::{DhcpOption, MessageType, Opcode, OptionCode};

use super::*;

const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const OFFERED: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 50);

fn id() -> Identity {
    Identity {
        mac: MAC,
        hostname: "pi".to_string(),
    }
}

fn start(now: Instant) -> (Client, Vec<Action>) {
    Client::start(id(), now, Rng::seeded(42))
}

/// The server's answer of `kind` to `request`, with a 120 s lease and T1 = 60 s.
fn answer(request: &Message, kind: MessageType) -> Message {
    let mut m = Message::new_with_id(
        request.xid(),
        Ipv4Addr::UNSPECIFIED,
        if kind == MessageType::Nak {
            Ipv4Addr::UNSPECIFIED
        } else {
            OFFERED
        },
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &MAC,
    );
    m.set_opcode(Opcode::BootReply);
    let o = m.opts_mut();
    o.insert(DhcpOption::MessageType(kind));
    o.insert(DhcpOption::ServerIdentifier(SERVER));
    if kind != MessageType::Nak {
        o.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
        o.insert(DhcpOption::Router(vec![SERVER]));
        o.insert(DhcpOption::DomainNameServer(vec![SERVER]));
        o.insert(DhcpOption::AddressLeaseTime(120));
        o.insert(DhcpOption::Renewal(60));
    }
    m
}

fn sent(actions: &[Action]) -> Vec<(MessageType, Destination, &Message)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(m, d) => Some((m.opts().msg_type().expect("typed"), *d, m)),
            _ => None,
        })
        .collect()
}

fn only_sent(actions: &[Action]) -> (MessageType, Destination, Message) {
    let s = sent(actions);
    assert_eq!(s.len(), 1, "{actions:?}");
    (s[0].0, s[0].1, s[0].2.clone())
}

/// Drives the client to BOUND; returns the ACK'd lease.
fn bind(c: &mut Client, first: Vec<Action>, now: Instant) -> Lease {
    let (_, _, discover) = only_sent(&first);
    let actions = c.step(Event::Received(answer(&discover, MessageType::Offer)), now);
    let (kind, dest, request) = only_sent(&actions);
    assert_eq!((kind, dest), (MessageType::Request, Destination::Broadcast));
    assert_eq!(
        request.opts().get(OptionCode::RequestedIpAddress),
        Some(&DhcpOption::RequestedIpAddress(OFFERED))
    );
    assert_eq!(
        request.opts().get(OptionCode::ServerIdentifier),
        Some(&DhcpOption::ServerIdentifier(SERVER))
    );
    let actions = c.step(Event::Received(answer(&request, MessageType::Ack)), now);
    match actions.as_slice() {
        [Action::Bind(l)] => l.clone(),
        other => panic!("expected Bind, got {other:?}"),
    }
}

#[test]
fn discover_offer_request_ack_binds_with_lease_times() {
    let now = Instant::now();
    let (mut c, first) = start(now);
    let (kind, dest, _) = only_sent(&first);
    assert_eq!(
        (kind, dest),
        (MessageType::Discover, Destination::Broadcast)
    );
    let lease = bind(&mut c, first, now);
    assert_eq!(
        (lease.address, lease.prefix, lease.server),
        (OFFERED, 24, SERVER)
    );
    assert_eq!(lease.routers, vec![SERVER]);
    assert_eq!(lease.t1, now + Duration::from_secs(60));
    assert_eq!(lease.t2, now + Duration::from_secs(105));
    assert_eq!(lease.expiry, now + Duration::from_secs(120));
    assert_eq!(c.deadline(), Some(lease.t1));
    assert_eq!(c.lease(), Some(&lease));
}

#[test]
fn discover_is_retransmitted_with_growing_randomised_backoff() {
    let mut now = Instant::now();
    let (mut c, first) = start(now);
    let xid = only_sent(&first).2.xid();
    let mut gaps = Vec::new();
    for _ in 0..6 {
        let d = c.deadline().expect("retransmission scheduled");
        gaps.push(d - now);
        now = d;
        let (kind, _, m) = only_sent(&c.step(Event::Timer, now));
        assert_eq!(kind, MessageType::Discover);
        assert_eq!(m.xid(), xid, "retransmissions keep the transaction id");
        assert!(m.secs() > 0);
    }
    let bounds = [(3, 5), (7, 9), (15, 17), (31, 33), (63, 65), (63, 65)];
    for (gap, (lo, hi)) in gaps.iter().zip(bounds) {
        assert!(
            *gap >= Duration::from_secs(lo) && *gap <= Duration::from_secs(hi),
            "{gaps:?}"
        );
    }
}

#[test]
fn early_timer_and_foreign_replies_do_nothing() {
    let now = Instant::now();
    let (mut c, first) = start(now);
    assert!(c.step(Event::Timer, now).is_empty());
    let mut other = answer(&only_sent(&first).2, MessageType::Offer);
    other.set_xid(other.xid().wrapping_add(1));
    assert!(c.step(Event::Received(other), now).is_empty());
}

#[test]
fn renews_by_unicast_at_t1_then_rebinds_by_broadcast_at_t2() {
    let now = Instant::now();
    let (mut c, first) = start(now);
    let lease = bind(&mut c, first, now);

    let (kind, dest, renew) = only_sent(&c.step(Event::Timer, lease.t1));
    assert_eq!(
        (kind, dest),
        (MessageType::Request, Destination::Server(SERVER))
    );
    assert_eq!(renew.ciaddr(), OFFERED);
    assert!(renew.opts().get(OptionCode::RequestedIpAddress).is_none());
    // No answer: T2 - T1 = 45 s, so the retry floor of 60 s is cut to T2.
    assert_eq!(c.deadline(), Some(lease.t2));
    let (kind, dest, rebind) = only_sent(&c.step(Event::Timer, lease.t2));
    assert_eq!((kind, dest), (MessageType::Request, Destination::Broadcast));
    assert_eq!(rebind.xid(), renew.xid());
    assert_eq!(c.deadline(), Some(lease.expiry));

    let later = lease.t2 + Duration::from_secs(1);
    let actions = c.step(Event::Received(answer(&rebind, MessageType::Ack)), later);
    match actions.as_slice() {
        [Action::Bind(l)] => assert_eq!(l.t1, later + Duration::from_secs(60)),
        other => panic!("expected Bind, got {other:?}"),
    }
}

#[test]
fn renewal_ack_rebinds_and_uses_a_new_transaction() {
    let now = Instant::now();
    let (mut c, first) = start(now);
    let lease = bind(&mut c, first.clone(), now);
    let first_xid = only_sent(&first).2.xid();
    let (_, _, renew) = only_sent(&c.step(Event::Timer, lease.t1));
    assert_ne!(renew.xid(), first_xid);
    let actions = c.step(Event::Received(answer(&renew, MessageType::Ack)), lease.t1);
    assert!(
        matches!(actions.as_slice(), [Action::Bind(l)] if l.expiry == lease.t1 + Duration::from_secs(120))
    );
}

#[test]
fn expiry_unbinds_and_starts_over() {
    let now = Instant::now();
    let (mut c, first) = start(now);
    let lease = bind(&mut c, first, now);
    c.step(Event::Timer, lease.t1);
    c.step(Event::Timer, lease.t2);
    let actions = c.step(Event::Timer, lease.expiry);
    assert_eq!(actions[0], Action::Unbind(lease));
    assert_eq!(only_sent(&actions).0, MessageType::Discover);
    assert_eq!(c.lease(), None);
}

#[test]
fn nak_while_renewing_unbinds_and_starts_over() {
    let now = Instant::now();
    let (mut c, first) = start(now);
    let lease = bind(&mut c, first, now);
    let (_, _, renew) = only_sent(&c.step(Event::Timer, lease.t1));
    let actions = c.step(Event::Received(answer(&renew, MessageType::Nak)), lease.t1);
    assert_eq!(actions[0], Action::Unbind(lease));
    assert_eq!(only_sent(&actions).0, MessageType::Discover);
}

#[test]
fn nak_while_requesting_starts_over() {
    let now = Instant::now();
    let (mut c, first) = start(now);
    let offer = answer(&only_sent(&first).2, MessageType::Offer);
    let (_, _, request) = only_sent(&c.step(Event::Received(offer), now));
    let actions = c.step(Event::Received(answer(&request, MessageType::Nak)), now);
    let (kind, _, discover) = only_sent(&actions);
    assert_eq!(kind, MessageType::Discover);
    assert_ne!(discover.xid(), request.xid());
}

#[test]
fn unanswered_requests_fall_back_to_discover() {
    let mut now = Instant::now();
    let (mut c, first) = start(now);
    let offer = answer(&only_sent(&first).2, MessageType::Offer);
    c.step(Event::Received(offer), now);
    let mut kinds = Vec::new();
    for _ in 0..REQUEST_TRIES {
        now = c.deadline().expect("scheduled");
        kinds.push(only_sent(&c.step(Event::Timer, now)).0);
    }
    let mut want = vec![MessageType::Request; REQUEST_TRIES as usize - 1];
    want.push(MessageType::Discover);
    assert_eq!(kinds, want);
}

#[test]
fn stop_releases_a_held_lease_to_its_server() {
    let now = Instant::now();
    let (mut c, first) = start(now);
    let lease = bind(&mut c, first, now);
    let actions = c.step(Event::Stop, now);
    let (kind, dest, release) = only_sent(&actions);
    assert_eq!(
        (kind, dest),
        (MessageType::Release, Destination::Server(SERVER))
    );
    assert_eq!(release.ciaddr(), OFFERED);
    assert_eq!(actions.last(), Some(&Action::Unbind(lease)));
    assert_eq!(c.deadline(), None);
    assert!(c.step(Event::Stop, now).is_empty());
}

#[test]
fn bad_t1_t2_get_rfc_defaults() {
    let now = Instant::now();
    let r = Reply {
        kind: ReplyKind::Ack,
        xid: 1,
        address: OFFERED,
        prefix: 24,
        server: SERVER,
        routers: vec![],
        dns: vec![],
        ntp: vec![],
        domain: None,
        lease_secs: Some(1000),
        t1_secs: Some(2000),
        t2_secs: Some(5000),
    };
    let l = lease_from(r, now);
    assert_eq!(l.t1, now + Duration::from_secs(500));
    assert_eq!(l.t2, now + Duration::from_secs(875));
}
