//! The rules for services the activator wakes ([`Service::activate`]).

use super::tests::{base_policy, ip, service, vip};
use super::*;
use crate::svcnet::nft::{
    AddrField, Chain, CmpOp, Match, PortField, Ruleset, Statement, Table, Value, Verdict,
};

fn table<'a>(rs: &'a Ruleset, name: &str) -> &'a Table {
    rs.tables
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("table {name}"))
}

fn chain<'a>(t: &'a Table, name: &str) -> &'a Chain {
    t.chains
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("chain {name}"))
}

/// A policy with `b` (VIP port 80 → 8080 and UDP 53) marked activate, its instance unhealthy.
fn sleeping() -> Policy {
    let mut p = base_policy();
    let mut b = service("b", vip(3), &[ip(3)], &[]);
    b.activate = true;
    b.instances[0].healthy = false;
    b.ports.push(ServicePort {
        proto: Proto::Udp,
        port: 53,
        target: 53,
    });
    p.services = vec![service("a", vip(2), &[ip(2)], &["b"]), b];
    p
}

#[test]
fn an_activate_service_without_healthy_instance_is_redirected_to_the_activator() {
    let rs = build(&sleeping());
    let nat = table(&rs, NAT_TABLE);
    let to_b = Match::Addr(AddrField::Daddr, CmpOp::Eq, Ipv4Net::new(vip(3), 32));
    let pre: Vec<_> = chain(nat, "prerouting")
        .rules
        .iter()
        .filter(|r| r.matches.contains(&to_b))
        .collect();
    assert_eq!(pre.len(), 1, "one rule, for the TCP port only: {pre:?}");
    assert!(pre[0].matches.contains(&Match::Addr(
        AddrField::Daddr,
        CmpOp::Eq,
        Ipv4Net::new(vip(3), 32)
    )));
    assert!(pre[0]
        .matches
        .contains(&Match::Port(PortField::TcpDport, CmpOp::Eq, 80)));
    assert_eq!(
        pre[0].statements,
        vec![Statement::Redirect {
            port: Some(ACTIVATOR_PORT)
        }]
    );
    assert!(
        !chain(nat, "output")
            .rules
            .iter()
            .any(|r| r.matches.contains(&to_b)),
        "host processes get no redirect"
    );
    assert!(
        !nat.chains.iter().any(|c| c.name.starts_with("svc-b")),
        "no DNAT chain without a healthy instance"
    );
}

#[test]
fn a_healthy_instance_replaces_the_redirect_and_plain_services_get_none() {
    let mut p = sleeping();
    p.services[1].instances[0].healthy = true;
    let rs = build(&p);
    let nat = table(&rs, NAT_TABLE);
    let pre = &chain(nat, "prerouting").rules;
    assert!(pre.iter().all(|r| !r
        .statements
        .iter()
        .any(|s| matches!(s, Statement::Redirect { .. }))));
    assert!(pre
        .iter()
        .any(|r| r.statements == vec![Statement::Verdict(Verdict::Jump("svc-b-tcp80".into()))]));

    let mut p = sleeping();
    p.services[1].activate = false;
    let rs = build(&p);
    assert!(!chain(table(&rs, NAT_TABLE), "prerouting")
        .rules
        .iter()
        .any(|r| r
            .statements
            .iter()
            .any(|s| matches!(s, Statement::Redirect { .. }))));
}

#[test]
fn containers_reach_the_activator_on_the_bridge_address_only() {
    let p = sleeping();
    let rs = build(&p);
    let input = &chain(table(&rs, FILTER_TABLE), "input").rules;
    let at = input
        .iter()
        .position(|r| r.comment.as_deref() == Some("activator for containers"))
        .expect("the activator rule");
    let rule = &input[at];
    assert!(rule
        .matches
        .contains(&Match::Addr(AddrField::Saddr, CmpOp::Eq, p.subnet)));
    assert!(rule.matches.contains(&Match::Addr(
        AddrField::Daddr,
        CmpOp::Eq,
        Ipv4Net::new(p.bridge_addr, 32)
    )));
    assert!(rule
        .matches
        .contains(&Match::Port(PortField::TcpDport, CmpOp::Eq, ACTIVATOR_PORT)));
    assert_eq!(rule.statements, vec![Statement::Verdict(Verdict::Accept)]);
    let refusal = input
        .iter()
        .position(|r| r.comment.as_deref() == Some("containers may not reach the board"))
        .expect("the refusal");
    assert!(at < refusal, "accepted before containers are refused");
    assert!(
        !p.lan_ports.contains(&PortSpec::tcp(ACTIVATOR_PORT)),
        "the LAN does not reach it"
    );
}

#[test]
fn instances_here_of_activate_services_are_reachable_from_peers_host_processes() {
    let mut p = sleeping();
    let other_board = Ipv4Addr::new(10, 88, 1, 7);
    p.services[1].instances.push(Instance {
        addr: other_board,
        healthy: true,
    });
    p.routed = vec![(ip(9), 9000)];
    let rs = build(&p);
    let routed = &table(&rs, FILTER_TABLE)
        .sets
        .iter()
        .find(|s| s.name == "routed")
        .expect("routed set")
        .elements;
    let el = |a, port| vec![Value::Ipv4(a), Value::Port(port)];
    // The TCP target of the local instance, not the UDP port, not the other board's instance,
    // not the plain service `a`.
    assert_eq!(routed, &vec![el(ip(3), 8080), el(ip(9), 9000)]);
}
