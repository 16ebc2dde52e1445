//! [`build`]: the policy's rule set (the rules are described in the module docs).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use super::{
    Egress, Policy, PortSpec, Proto, Service, ServicePort, ACTIVATOR_PORT, DNS_PORT, FILTER_TABLE,
    NAT_TABLE,
};
use crate::svcnet::nft::rule::TCP;
use crate::svcnet::nft::{
    AddrField, Chain, ChainType, CmpOp, CtState, Family, Hook, Ipv4Net, KeyField, KeyType, Match,
    Policy as ChainPolicy, PortField, Reject, Rule, Ruleset, Set, Statement, Table, Value,
};

/// The rule set enforcing `policy`: tables `inet baton-policy` and `ip baton-policy-nat`.
pub fn build(policy: &Policy) -> Ruleset {
    Ruleset::new(vec![filter_table(policy), nat_table(policy)])
}

/// The set of [`Policy::front_door_peers`].
const FRONT_DOOR_PEERS: &str = "front_door_peers";
/// The set of [`Policy::routed`].
const ROUTED: &str = "routed";

fn host(a: Ipv4Addr) -> Ipv4Net {
    Ipv4Net::new(a, 32)
}

fn dport(proto: Proto) -> PortField {
    match proto {
        Proto::Tcp => PortField::TcpDport,
        Proto::Udp => PortField::UdpDport,
    }
}

fn in_set(fields: Vec<KeyField>, set: &str) -> Match {
    Match::InSet {
        fields,
        set: set.to_string(),
        invert: false,
    }
}

fn allow_set(proto: Proto) -> String {
    format!("allow_{}", proto.name())
}

fn lan_set(proto: Proto) -> String {
    format!("lan_{}", proto.name())
}

fn control_set(proto: Proto) -> String {
    format!("control_{}", proto.name())
}

/// A set of the ports of `proto` among `ports`.
fn port_set(name: &str, ports: &[PortSpec], proto: Proto) -> Set {
    let ports: BTreeSet<u16> = ports
        .iter()
        .filter(|p| p.proto == proto)
        .map(|p| p.port)
        .collect();
    ports
        .into_iter()
        .fold(Set::new(name, KeyType::InetService), |s, p| {
            s.element(&[Value::Port(p)])
        })
}

/// `rule` refusing what it matches: a TCP reset for TCP, ICMP "administratively prohibited"
/// for anything else, so a caller learns at once instead of waiting for a timeout.
fn refuse(rule: Rule, comment: &str) -> [Rule; 2] {
    [
        rule.clone()
            .when(Match::L4proto(CmpOp::Eq, TCP))
            .reject(Reject::TcpReset)
            .comment(comment),
        rule.reject(Reject::AdminProhibited).comment(comment),
    ]
}

/// `source . destination . port` for every allowed call of `proto`.
fn allowed(policy: &Policy, proto: Proto) -> BTreeSet<(Ipv4Addr, Ipv4Addr, u16)> {
    let mut out = BTreeSet::new();
    for caller in &policy.services {
        for callee in caller.allow.iter().filter_map(|n| policy.service(n)) {
            for from in &caller.instances {
                for to in &callee.instances {
                    for p in callee.ports.iter().filter(|p| p.proto == proto) {
                        out.insert((from.addr, to.addr, p.target));
                    }
                }
            }
        }
    }
    out
}

fn filter_table(policy: &Policy) -> Table {
    let mut table = Table::new(Family::Inet, FILTER_TABLE);
    for proto in [Proto::Tcp, Proto::Udp] {
        let mut set = Set::concat(
            &allow_set(proto),
            &[KeyType::Ipv4Addr, KeyType::Ipv4Addr, KeyType::InetService],
        );
        for (from, to, port) in allowed(policy, proto) {
            set = set.element(&[Value::Ipv4(from), Value::Ipv4(to), Value::Port(port)]);
        }
        table = table
            .set(set)
            .set(port_set(&lan_set(proto), &policy.lan_ports, proto))
            .set(port_set(&control_set(proto), &policy.control_ports, proto));
    }
    let vips: BTreeSet<Ipv4Addr> = policy.services.iter().map(|s| s.vip).collect();
    table = table.set(
        vips.into_iter()
            .fold(Set::new("vips", KeyType::Ipv4Addr), |s, a| {
                s.element(&[Value::Ipv4(a)])
            }),
    );
    let egress: BTreeSet<Ipv4Addr> = policy
        .services
        .iter()
        .filter(|s| s.egress == Egress::Internet)
        .flat_map(|s| s.instances.iter().map(|i| i.addr))
        .collect();
    table = table.set(
        egress
            .into_iter()
            .fold(Set::new("egress", KeyType::Ipv4Addr), |s, a| {
                s.element(&[Value::Ipv4(a)])
            }),
    );
    table = table
        .set(front_door_peers_set(policy))
        .set(routed_set(policy));
    table
        .chain(forward_chain(policy))
        .chain(input_chain(policy))
}

/// The other boards' bridge addresses, where their front doors' connections come from.
fn front_door_peers_set(policy: &Policy) -> Set {
    let peers: BTreeSet<Ipv4Addr> = policy.front_door_peers.iter().copied().collect();
    peers
        .into_iter()
        .fold(Set::new(FRONT_DOOR_PEERS, KeyType::Ipv4Addr), |s, a| {
            s.element(&[Value::Ipv4(a)])
        })
}

/// `instance address . port` of every routed instance here, and of every instance here of an
/// activate service with its TCP ports (another board's activator connects like a front door).
fn routed_set(policy: &Policy) -> Set {
    let mut routed: BTreeSet<(Ipv4Addr, u16)> = policy.routed.iter().copied().collect();
    for s in policy.services.iter().filter(|s| s.activate) {
        for i in s
            .instances
            .iter()
            .filter(|i| policy.subnet.contains(i.addr))
        {
            for p in s.ports.iter().filter(|p| p.proto == Proto::Tcp) {
                routed.insert((i.addr, p.target));
            }
        }
    }
    routed.into_iter().fold(
        Set::concat(ROUTED, &[KeyType::Ipv4Addr, KeyType::InetService]),
        |s, (a, p)| s.element(&[Value::Ipv4(a), Value::Port(p)]),
    )
}

/// Another board's front door (its bridge address, over the mesh) to a routed instance here.
fn front_door_rule(mesh: &str) -> Rule {
    Rule::new()
        .iifname(mesh)
        .when(in_set(
            vec![KeyField::Addr(AddrField::Saddr)],
            FRONT_DOOR_PEERS,
        ))
        .when(in_set(
            vec![
                KeyField::Addr(AddrField::Daddr),
                KeyField::Port(PortField::TcpDport),
            ],
            ROUTED,
        ))
        .accept()
        .comment("front doors of other boards to routed services")
}

fn established() -> Rule {
    Rule::new()
        .ct_state(CtState::ESTABLISHED | CtState::RELATED)
        .accept()
}

fn forward_chain(policy: &Policy) -> Chain {
    let mut chain = Chain::base(
        "forward",
        ChainType::Filter,
        Hook::Forward,
        0,
        ChainPolicy::Accept,
    )
    .rule(established().comment(&format!("baton policy generation {}", policy.generation)))
    .rule(Rule::new().ct_state(CtState::INVALID).drop());
    for proto in [Proto::Tcp, Proto::Udp] {
        let fields = vec![
            KeyField::Addr(AddrField::Saddr),
            KeyField::Addr(AddrField::Daddr),
            KeyField::Port(dport(proto)),
        ];
        chain = chain.rule(
            Rule::new()
                .when(in_set(fields, &allow_set(proto)))
                .accept()
                .comment("allow lists"),
        );
    }
    if let Some(mesh) = &policy.mesh {
        chain = chain.rule(front_door_rule(mesh));
        chain = refuse(
            Rule::new().iifname(mesh),
            "from other boards: allowed calls only",
        )
        .into_iter()
        .fold(chain, Chain::rule);
    }
    let to_vip = || in_set(vec![KeyField::Addr(AddrField::Daddr)], "vips");
    chain = chain
        .rule(
            Rule::new()
                .when(Match::L4proto(CmpOp::Eq, TCP))
                .when(to_vip())
                .reject(Reject::TcpReset)
                .comment("no healthy instance"),
        )
        .rule(
            Rule::new()
                .when(to_vip())
                .reject(Reject::PortUnreachable)
                .comment("no healthy instance"),
        );
    let mut inside = vec![policy.subnet];
    inside.extend(policy.cluster.iter().copied());
    // ICMP for TCP too: a call to a VIP was DNATed, and conntrack translates an ICMP error
    // back to the VIP for the caller, where a reset made here would carry the instance's
    // address (a bridged packet's reset is sent as is) and be ignored.
    for net in inside {
        chain = chain.rule(
            Rule::new()
                .ip_saddr(policy.subnet)
                .ip_daddr(net)
                .reject(Reject::AdminProhibited)
                .comment("default deny between containers"),
        );
    }
    // Any destination, not only the boards the cluster knows of: a board whose address
    // changed, one not yet met or one of another cluster on the LAN is covered as well.
    for proto in [Proto::Tcp, Proto::Udp] {
        let control = in_set(vec![KeyField::Port(dport(proto))], &control_set(proto));
        let rule = Rule::new().ip_saddr(policy.subnet).when(control);
        let rule = match proto {
            Proto::Tcp => rule.reject(Reject::TcpReset),
            Proto::Udp => rule.reject(Reject::AdminProhibited),
        };
        chain = chain.rule(rule.comment("no board's control ports"));
    }
    chain = chain.rule(
        Rule::new()
            .when(in_set(vec![KeyField::Addr(AddrField::Saddr)], "egress"))
            .accept()
            .comment("egress internet"),
    );
    refuse(Rule::new().ip_saddr(policy.subnet), "no egress")
        .into_iter()
        .fold(chain, Chain::rule)
}

fn input_chain(policy: &Policy) -> Chain {
    let mut chain = Chain::base(
        "input",
        ChainType::Filter,
        Hook::Input,
        0,
        ChainPolicy::Accept,
    )
    .rule(established())
    .rule(Rule::new().iifname("lo").accept());
    if let Some(mesh) = &policy.mesh {
        chain = refuse(
            Rule::new().iifname(mesh),
            "other boards' containers may not reach the board",
        )
        .into_iter()
        .fold(chain, Chain::rule);
    }
    for proto in [Proto::Udp, Proto::Tcp] {
        chain = chain.rule(
            Rule::new()
                .ip_saddr(policy.subnet)
                .ip_daddr(host(policy.bridge_addr))
                .when(Match::Port(dport(proto), CmpOp::Eq, DNS_PORT))
                .accept()
                .comment("dns for containers"),
        );
    }
    chain = chain.rule(
        Rule::new()
            .ip_saddr(policy.subnet)
            .ip_daddr(host(policy.bridge_addr))
            .when(Match::Port(PortField::TcpDport, CmpOp::Eq, ACTIVATOR_PORT))
            .accept()
            .comment("activator for containers"),
    );
    chain = refuse(
        Rule::new().ip_saddr(policy.subnet),
        "containers may not reach the board",
    )
    .into_iter()
    .fold(chain, Chain::rule);
    if !policy.lan_filter {
        return chain;
    }
    for uplink in &policy.uplinks {
        for proto in [Proto::Tcp, Proto::Udp] {
            chain = chain.rule(
                Rule::new()
                    .iifname(uplink)
                    .when(in_set(vec![KeyField::Port(dport(proto))], &lan_set(proto)))
                    .accept(),
            );
        }
        chain = chain
            .rule(
                Rule::new()
                    .iifname(uplink)
                    .when(Match::IcmpType(8))
                    .accept(),
            )
            .rule(Rule::new().iifname(uplink).drop().comment("lan filter"));
    }
    chain
}

/// The chain holding the DNAT rules of one service port.
fn service_chain_name(s: &Service, p: &ServicePort) -> String {
    format!("svc-{}-{}{}", s.name, p.proto.name(), p.port)
}

fn nat_table(policy: &Policy) -> Table {
    let mut prerouting = Chain::base(
        "prerouting",
        ChainType::Nat,
        Hook::Prerouting,
        -100,
        ChainPolicy::Accept,
    );
    let mut output = Chain::base(
        "output",
        ChainType::Nat,
        Hook::Output,
        -100,
        ChainPolicy::Accept,
    );
    let mut service_chains = Vec::new();
    for s in &policy.services {
        let healthy: Vec<Ipv4Addr> = s
            .instances
            .iter()
            .filter(|i| i.healthy)
            .map(|i| i.addr)
            .collect();
        if healthy.is_empty() {
            if s.activate {
                for p in s.ports.iter().filter(|p| p.proto == Proto::Tcp) {
                    prerouting = prerouting.rule(to_activator(s, p));
                }
            }
            continue;
        }
        for p in &s.ports {
            let name = service_chain_name(s, p);
            let to_vip = Rule::new()
                .ip_daddr(host(s.vip))
                .when(Match::Port(dport(p.proto), CmpOp::Eq, p.port))
                .jump(&name)
                .comment(&s.name);
            prerouting = prerouting.rule(to_vip.clone());
            output = output.rule(to_vip);
            service_chains.push(dnat_chain(&name, p, &healthy));
        }
    }
    let table = Table::new(Family::Ip, NAT_TABLE)
        .chain(prerouting)
        .chain(output);
    service_chains.into_iter().fold(table, Table::chain)
}

/// A call to `s`'s VIP on `p`, sent to the activator on the address of the interface it came
/// in on (the bridge); conntrack keeps the original destination for `SO_ORIGINAL_DST`.
fn to_activator(s: &Service, p: &ServicePort) -> Rule {
    Rule::new()
        .ip_daddr(host(s.vip))
        .when(Match::Port(PortField::TcpDport, CmpOp::Eq, p.port))
        .then(Statement::Redirect {
            port: Some(ACTIVATOR_PORT),
        })
        .comment(&format!("{} held until woken", s.name))
}

/// Spreads new connections evenly over `instances`: rule `k` of `n` takes `1/(n-k)` of what
/// reaches it, which is `1/n` of all.
fn dnat_chain(name: &str, p: &ServicePort, instances: &[Ipv4Addr]) -> Chain {
    let n = instances.len();
    let mut chain = Chain::regular(name);
    for (k, addr) in instances.iter().enumerate() {
        // The port match is what lets nft print (and parse) a DNAT with a port.
        let mut rule = Rule::new().when(Match::Port(dport(p.proto), CmpOp::Eq, p.port));
        if k + 1 < n {
            let modulus = u32::try_from(n - k).unwrap_or(u32::MAX);
            rule = rule.when(Match::Numgen { modulus, value: 0 });
        }
        chain = chain.rule(rule.then(Statement::Dnat {
            addr: *addr,
            port: Some(p.target),
        }));
    }
    chain
}
