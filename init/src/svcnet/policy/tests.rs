//! Which rules the builder writes for given policies.

use std::net::Ipv4Addr;

use super::*;
use crate::svcnet::nft::{
    AddrField, Chain, CmpOp, Match, PortField, Reject, Ruleset, Set, Statement, Table, Value,
    Verdict,
};

pub(crate) fn ip(d: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 88, 0, d)
}

pub(crate) fn vip(d: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 99, 0, d)
}

/// A service on TCP port 80 of its VIP, instances listening on 8080.
pub(crate) fn service(
    name: &str,
    vip: Ipv4Addr,
    instances: &[Ipv4Addr],
    allow: &[&str],
) -> Service {
    Service {
        name: name.to_string(),
        vip,
        ports: vec![ServicePort {
            proto: Proto::Tcp,
            port: 80,
            target: 8080,
        }],
        instances: instances
            .iter()
            .map(|&addr| Instance {
                addr,
                healthy: true,
            })
            .collect(),
        allow: allow.iter().map(|a| a.to_string()).collect(),
        egress: Egress::Internet,
        activate: false,
    }
}

pub(crate) fn base_policy() -> Policy {
    Policy::new(Ipv4Net::new(ip(0), 24), ip(1), &["eth0"])
}

fn table<'a>(rs: &'a Ruleset, name: &str) -> &'a Table {
    rs.tables
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("table {name}"))
}

fn chain<'a>(t: &'a Table, name: &str) -> Option<&'a Chain> {
    t.chains.iter().find(|c| c.name == name)
}

fn set<'a>(t: &'a Table, name: &str) -> &'a Set {
    t.sets
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("set {name}"))
}

fn dnat_targets(c: &Chain) -> Vec<(Option<u32>, Ipv4Addr, Option<u16>)> {
    c.rules
        .iter()
        .map(|r| {
            let modulus = r.matches.iter().find_map(|m| match m {
                Match::Numgen { modulus, value: 0 } => Some(*modulus),
                _ => None,
            });
            match r.statements.as_slice() {
                [Statement::Dnat { addr, port }] => (modulus, *addr, *port),
                other => panic!("not a dnat: {other:?}"),
            }
        })
        .collect()
}

#[test]
fn allow_lists_become_source_destination_port_triples_one_way() {
    let mut p = base_policy();
    p.services = vec![
        service("a", vip(2), &[ip(2), ip(12)], &["b", "ghost"]),
        service("b", vip(3), &[ip(3)], &[]),
    ];
    let rs = build(&p);
    let t = table(&rs, FILTER_TABLE);
    let allow = &set(t, "allow_tcp").elements;
    let want = |from, to| vec![Value::Ipv4(from), Value::Ipv4(to), Value::Port(8080)];
    assert_eq!(allow, &vec![want(ip(2), ip(3)), want(ip(12), ip(3))]);
    assert!(set(t, "allow_udp").elements.is_empty());
}

#[test]
fn a_vip_spreads_evenly_over_healthy_instances_only() {
    let mut p = base_policy();
    let mut b = service("b", vip(3), &[ip(3), ip(4), ip(5), ip(6)], &[]);
    b.instances[1].healthy = false;
    p.services = vec![b];
    let rs = build(&p);
    let nat = table(&rs, NAT_TABLE);
    let c = chain(nat, "svc-b-tcp80").expect("the service chain");
    assert_eq!(
        dnat_targets(c),
        vec![
            (Some(3), ip(3), Some(8080)),
            (Some(2), ip(5), Some(8080)),
            (None, ip(6), Some(8080)),
        ]
    );
    for hook_chain in ["prerouting", "output"] {
        let jumps = &chain(nat, hook_chain).expect("nat base chain").rules;
        assert_eq!(jumps.len(), 1);
        assert!(jumps[0].matches.contains(&Match::Addr(
            AddrField::Daddr,
            CmpOp::Eq,
            Ipv4Net::new(vip(3), 32)
        )));
        assert!(jumps[0]
            .matches
            .contains(&Match::Port(PortField::TcpDport, CmpOp::Eq, 80)));
    }
}

#[test]
fn a_service_without_healthy_instances_is_rejected_not_dnated() {
    let mut p = base_policy();
    let mut b = service("b", vip(3), &[ip(3)], &[]);
    b.instances[0].healthy = false;
    p.services = vec![b];
    let rs = build(&p);
    let nat = table(&rs, NAT_TABLE);
    assert!(chain(nat, "svc-b-tcp80").is_none());
    assert!(chain(nat, "prerouting")
        .expect("prerouting")
        .rules
        .is_empty());
    let t = table(&rs, FILTER_TABLE);
    assert_eq!(set(t, "vips").elements, vec![vec![Value::Ipv4(vip(3))]]);
    let rejects: Vec<_> = chain(t, "forward")
        .expect("forward")
        .rules
        .iter()
        .filter(|r| r.comment.as_deref() == Some("no healthy instance"))
        .filter_map(|r| match r.statements.as_slice() {
            [Statement::Reject(how)] => Some(*how),
            _ => None,
        })
        .collect();
    assert_eq!(rejects, vec![Reject::TcpReset, Reject::PortUnreachable]);
}

#[test]
fn only_internet_services_get_egress_and_containers_are_denied_by_default() {
    let mut p = base_policy();
    let mut b = service("b", vip(3), &[ip(3)], &[]);
    b.egress = Egress::None;
    p.services = vec![service("a", vip(2), &[ip(2)], &[]), b];
    p.cluster = vec![Ipv4Net::new(Ipv4Addr::new(10, 88, 1, 0), 24)];
    let rs = build(&p);
    let t = table(&rs, FILTER_TABLE);
    assert_eq!(set(t, "egress").elements, vec![vec![Value::Ipv4(ip(2))]]);
    let fwd = &chain(t, "forward").expect("forward").rules;
    let denies = fwd
        .iter()
        .filter(|r| r.comment.as_deref() == Some("default deny between containers"))
        .count();
    assert_eq!(denies, 2, "own subnet and the other board's");
    let last = fwd.last().expect("rules");
    assert_eq!(last.comment.as_deref(), Some("no egress"));
    assert!(last
        .matches
        .contains(&Match::Addr(AddrField::Saddr, CmpOp::Eq, p.subnet)));
    // Refused, not dropped: a reset for TCP, "administratively prohibited" for the rest.
    let refusals: Vec<Vec<Statement>> = fwd
        .iter()
        .filter(|r| r.comment.as_deref() == Some("no egress"))
        .map(|r| r.statements.clone())
        .collect();
    assert_eq!(
        refusals,
        vec![
            vec![Statement::Reject(Reject::TcpReset)],
            vec![Statement::Reject(Reject::AdminProhibited)]
        ]
    );
    assert!(
        !fwd.iter().any(|r| r.comment.is_some()
            && r.statements == vec![Statement::Verdict(Verdict::Drop)]),
        "no call between services is dropped silently"
    );
}

#[test]
fn no_container_reaches_a_board_s_control_ports_whatever_its_egress() {
    let mut p = base_policy();
    p.services = vec![service("a", vip(2), &[ip(2)], &[])];
    let rs = build(&p);
    let t = table(&rs, FILTER_TABLE);
    let ports = |name| -> Vec<Vec<Value>> { set(t, name).elements.clone() };
    assert_eq!(ports("control_tcp"), vec![vec![Value::Port(7070)]]);
    assert_eq!(
        ports("control_udp"),
        vec![vec![Value::Port(7946)], vec![Value::Port(51820)]]
    );
    let fwd = &chain(t, "forward").expect("forward").rules;
    let control: Vec<usize> = (0..fwd.len())
        .filter(|i| fwd[*i].comment.as_deref() == Some("no board's control ports"))
        .collect();
    let egress = fwd
        .iter()
        .position(|r| r.comment.as_deref() == Some("egress internet"))
        .expect("the egress rule");
    assert_eq!(control.len(), 2, "tcp and udp");
    assert!(control.iter().all(|i| *i < egress), "before egress accept");
    assert_eq!(
        fwd[control[0]].statements,
        vec![Statement::Reject(Reject::TcpReset)]
    );
}

#[test]
fn the_lan_filter_is_staged_behind_its_switch() {
    let mut p = base_policy();
    p.uplinks = vec!["eth0".into(), "wlan0".into()];
    p.lan_ports.push(PortSpec::tcp(8443));
    let off = build(&p);
    let input = |rs: &Ruleset| {
        chain(table(rs, FILTER_TABLE), "input")
            .expect("input")
            .rules
            .clone()
    };
    assert!(!input(&off).iter().any(|r| r
        .matches
        .iter()
        .any(|m| matches!(m, Match::Iifname(_, n) if n != "lo"))));
    p.lan_filter = true;
    let on = build(&p);
    let rules = input(&on);
    for uplink in ["eth0", "wlan0"] {
        let last = rules
            .iter()
            .rfind(|r| {
                r.matches
                    .contains(&Match::Iifname(CmpOp::Eq, uplink.into()))
            })
            .expect("uplink rules");
        assert_eq!(
            last.comment.as_deref(),
            Some("lan filter"),
            "{uplink} ends in a drop"
        );
    }
    let t = table(&on, FILTER_TABLE);
    let ports = |name| -> Vec<Vec<Value>> { set(t, name).elements.clone() };
    assert_eq!(
        ports("lan_tcp"),
        vec![vec![Value::Port(7070)], vec![Value::Port(8443)]]
    );
    assert_eq!(
        ports("lan_udp"),
        vec![
            vec![Value::Port(68)],
            vec![Value::Port(5353)],
            vec![Value::Port(7946)]
        ]
    );
}

#[test]
fn containers_reach_only_dns_on_the_board_and_the_generation_is_shown() {
    let mut p = base_policy();
    p.generation = 42;
    let rs = build(&p);
    let t = table(&rs, FILTER_TABLE);
    let input = &chain(t, "input").expect("input").rules;
    let dns: Vec<_> = input
        .iter()
        .filter(|r| r.comment.as_deref() == Some("dns for containers"))
        .collect();
    assert_eq!(dns.len(), 2, "udp and tcp");
    let deny = input
        .iter()
        .position(|r| r.comment.as_deref() == Some("containers may not reach the board"))
        .expect("the deny rule");
    assert!(
        input
            .iter()
            .position(|r| r.comment.as_deref() == Some("dns for containers"))
            < Some(deny)
    );
    let fwd = &chain(t, "forward").expect("forward").rules;
    assert_eq!(
        fwd[0].comment.as_deref(),
        Some("baton policy generation 42")
    );
}

#[test]
fn from_the_mesh_only_allowed_calls_pass_and_nothing_reaches_the_board() {
    let remote = Ipv4Addr::new(10, 88, 7, 2);
    let mut p = base_policy();
    p.services = vec![
        service("a", vip(2), &[remote], &["b"]),
        service("b", vip(3), &[ip(3)], &[]),
    ];
    let without = build(&p);
    assert!(!chain(table(&without, FILTER_TABLE), "forward")
        .expect("forward")
        .rules
        .iter()
        .any(|r| r.matches.iter().any(|m| matches!(m, Match::Iifname(..)))));
    p.mesh = Some("baton-wg".into());
    let rs = build(&p);
    let t = table(&rs, FILTER_TABLE);
    let from_mesh = Match::Iifname(CmpOp::Eq, "baton-wg".into());
    let fwd = &chain(t, "forward").expect("forward").rules;
    // The first mesh rule that refuses (the one before it accepts other boards' front doors).
    let drop_at = fwd
        .iter()
        .position(|r| {
            r.matches.contains(&from_mesh)
                && !r.statements.contains(&Statement::Verdict(Verdict::Accept))
        })
        .expect("a mesh rule");
    let allow_at = fwd
        .iter()
        .position(|r| r.comment.as_deref() == Some("allow lists"))
        .expect("allow rule");
    assert!(
        allow_at < drop_at,
        "allowed calls pass before the mesh refusal"
    );
    assert_eq!(
        fwd[drop_at].statements,
        vec![Statement::Reject(Reject::TcpReset)]
    );
    // The remote caller's call to b's local instance is in the allow set.
    let allowed = &set(t, "allow_tcp").elements;
    assert!(allowed.contains(&vec![
        Value::Ipv4(remote),
        Value::Ipv4(ip(3)),
        Value::Port(8080)
    ]));
    let input = &chain(t, "input").expect("input").rules;
    let at = input
        .iter()
        .position(|r| r.matches.contains(&from_mesh))
        .expect("mesh rule in input");
    assert!(at <= 2, "right after established and loopback");
}

/// A policy of `n` services, each with two instances, each allowed to call the next.
pub(super) fn many(n: usize) -> Policy {
    let mut p = base_policy();
    p.subnet = Ipv4Net::new(Ipv4Addr::new(10, 88, 0, 0), 16);
    p.services = (0..n)
        .map(|i| {
            let a = |k: usize| {
                Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 88, 1, 0)) + (i * 2 + k) as u32)
            };
            let next = format!("s{}", (i + 1) % n);
            service(
                &format!("s{i}"),
                Ipv4Addr::from(u32::from(vip(0)) + i as u32 + 1),
                &[a(0), a(1)],
                &[next.as_str()],
            )
        })
        .collect();
    p
}

#[test]
fn a_hundred_services_pass_the_nft_checks() {
    let rs = build(&many(100));
    crate::svcnet::nft::encode::encode(&rs, 0).expect("a valid batch");
    let nat = table(&rs, NAT_TABLE);
    assert_eq!(nat.chains.len(), 2 + 100);
    assert_eq!(
        set(table(&rs, FILTER_TABLE), "allow_tcp").elements.len(),
        100 * 4
    );
}
