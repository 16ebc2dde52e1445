//! The rule letting other boards' front doors reach routed instances over the mesh.

use std::net::Ipv4Addr;

use super::tests::{base_policy, ip, service, vip};
use super::*;
use crate::svcnet::nft::{
    AddrField, CmpOp, KeyField, Match, PortField, Rule, Ruleset, Set, Statement, Table, Value,
    Verdict,
};

fn filter(rs: &Ruleset) -> &Table {
    rs.tables
        .iter()
        .find(|t| t.name == FILTER_TABLE)
        .expect("the filter table")
}

fn set<'a>(t: &'a Table, name: &str) -> &'a Set {
    t.sets
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("set {name}"))
}

/// A policy with a mesh, two other boards and `web` (instance `ip(2)`) routed on 8080.
fn policy() -> Policy {
    let mut p = base_policy();
    p.mesh = Some("baton-wg".into());
    p.front_door_peers = vec![Ipv4Addr::new(10, 88, 9, 1), Ipv4Addr::new(10, 88, 7, 1)];
    p.routed = vec![(ip(2), 8080), (ip(2), 8080)];
    p.services = vec![service("web", vip(2), &[ip(2)], &[])];
    p
}

/// Whether a packet (`iif`, `saddr`, `daddr`, TCP `dport`) matches every condition of `rule`,
/// with the sets of `t`; conditions of other kinds make it panic, so the rule cannot grow one
/// this check silently ignores.
fn matches(
    t: &Table,
    rule: &Rule,
    iif: &str,
    saddr: Ipv4Addr,
    daddr: Ipv4Addr,
    dport: u16,
) -> bool {
    rule.matches.iter().all(|m| match m {
        Match::Iifname(CmpOp::Eq, name) => name == iif,
        Match::InSet {
            fields,
            set: name,
            invert: false,
        } => {
            let key: Vec<Value> = fields
                .iter()
                .map(|f| match f {
                    KeyField::Addr(AddrField::Saddr) => Value::Ipv4(saddr),
                    KeyField::Addr(AddrField::Daddr) => Value::Ipv4(daddr),
                    KeyField::Port(PortField::TcpDport) => Value::Port(dport),
                    other => panic!("unexpected key field {other:?}"),
                })
                .collect();
            set(t, &name[..]).elements.contains(&key)
        }
        other => panic!("unexpected condition {other:?}"),
    })
}

#[test]
fn other_boards_bridges_reach_routed_ports_only_and_before_the_mesh_refusal() {
    let p = policy();
    let rs = build(&p);
    let t = filter(&rs);
    assert_eq!(
        set(t, "front_door_peers").elements,
        vec![
            vec![Value::Ipv4(Ipv4Addr::new(10, 88, 7, 1))],
            vec![Value::Ipv4(Ipv4Addr::new(10, 88, 9, 1))]
        ],
        "sorted, once each"
    );
    assert_eq!(
        set(t, "routed").elements,
        vec![vec![Value::Ipv4(ip(2)), Value::Port(8080)]]
    );
    let fwd = &t
        .chains
        .iter()
        .find(|c| c.name == "forward")
        .expect("forward")
        .rules;
    let mesh = Match::Iifname(CmpOp::Eq, "baton-wg".into());
    let at = fwd
        .iter()
        .position(|r| {
            r.statements == vec![Statement::Verdict(Verdict::Accept)] && r.matches.contains(&mesh)
        })
        .expect("the front door rule");
    let refusal = fwd
        .iter()
        .position(|r| r.comment.as_deref() == Some("from other boards: allowed calls only"))
        .expect("the mesh refusal");
    assert!(at < refusal, "accepted before the mesh refusal");
    let rule = &fwd[at];
    let peer = Ipv4Addr::new(10, 88, 7, 1);
    assert!(matches(t, rule, "baton-wg", peer, ip(2), 8080));
    assert!(
        !matches(
            t,
            rule,
            "baton-wg",
            Ipv4Addr::new(10, 88, 7, 2),
            ip(2),
            8080
        ),
        "a container of the other board"
    );
    assert!(
        !matches(t, rule, "baton-wg", peer, ip(2), 22),
        "a port not routed"
    );
    assert!(
        !matches(t, rule, "baton-wg", peer, ip(3), 8080),
        "an instance not routed"
    );
    assert!(
        !matches(t, rule, "eth0", peer, ip(2), 8080),
        "not from the mesh"
    );
}

#[test]
fn without_a_mesh_there_is_no_front_door_rule_and_empty_sets_build() {
    let mut p = policy();
    p.mesh = None;
    let rs = build(&p);
    let fwd = &filter(&rs)
        .chains
        .iter()
        .find(|c| c.name == "forward")
        .expect("forward")
        .rules;
    assert!(!fwd.iter().any(|r| r
        .matches
        .iter()
        .any(|m| matches!(m, Match::InSet { set, .. } if set == "routed"))));
    let mut empty = base_policy();
    empty.mesh = Some("baton-wg".into());
    let rs = build(&empty);
    assert!(set(filter(&rs), "routed").elements.is_empty());
    crate::svcnet::nft::encode::encode(&rs, 0).expect("a valid batch with empty sets");
}
