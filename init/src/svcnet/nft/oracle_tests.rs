//! Our messages against Debian's `nft`: the same rule written as nft text and as a typed
//! [`Rule`] must give the same bytes (`nft --debug=mnl` prints what nft sends). Runs nft in a
//! network namespace the test creates, as root.

use std::net::Ipv4Addr;

use super::encode::{chain_attrs, elements_attrs, rule_attrs, set_attrs, table_attrs};
use super::expr::CmpOp;
use super::mnl_oracle::{self, MnlMessage};
use super::netns_tests::{in_pairs, nat_chain, pairs_set, ports_set};
use super::rule::{
    AddrField, CtState, Ipv4Net, KeyField, Match, PortField, Reject, Rule, Statement, ICMP,
};
use super::wire::MsgKind;
use super::{Chain, ChainType, Family, Hook, KeyType, Policy, Set, Table, Value, Verdict};
use baton_testnet::{require_root, Netns};

const SETUP: &str = r#"
table inet baton {
  set ports { type inet_service; elements = { 80, 443 } }
  set hosts { type ipv4_addr; elements = { 10.88.0.5 } }
  set pairs { type ipv4_addr . inet_service; elements = { 10.88.0.5 . 80 } }
  set triples { type ipv4_addr . ipv4_addr . inet_service; elements = { 10.88.0.5 . 10.88.0.6 . 80 } }
  chain forward {
    type filter hook forward priority 0; policy drop;
  }
  chain svc {
  }
}
table ip baton-nat {
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
  }
}
table bridge baton-ports {
  chain ingress {
    type filter hook prerouting priority -200; policy accept;
  }
  chain port {
  }
}
"#;

const MAC: [u8; 6] = [0x02, 0xba, 10, 88, 0, 2];

fn setup_tables() -> (Table, Table, Table) {
    let inet = Table::new(Family::Inet, "baton")
        .set(ports_set())
        .set(
            Set::new("hosts", KeyType::Ipv4Addr)
                .element(&[Value::Ipv4(Ipv4Addr::new(10, 88, 0, 5))]),
        )
        .set(pairs_set())
        .set(
            Set::concat(
                "triples",
                &[KeyType::Ipv4Addr, KeyType::Ipv4Addr, KeyType::InetService],
            )
            .element(&[
                Value::Ipv4(Ipv4Addr::new(10, 88, 0, 5)),
                Value::Ipv4(Ipv4Addr::new(10, 88, 0, 6)),
                Value::Port(80),
            ]),
        )
        .chain(Chain::base(
            "forward",
            ChainType::Filter,
            Hook::Forward,
            0,
            Policy::Drop,
        ))
        .chain(Chain::regular("svc"));
    let nat = Table::new(Family::Ip, "baton-nat")
        .chain(nat_chain("postrouting", Hook::Postrouting, 100))
        .chain(nat_chain("prerouting", Hook::Prerouting, -100));
    let bridge = Table::new(Family::Bridge, "baton-ports")
        .chain(Chain::base(
            "ingress",
            ChainType::Filter,
            Hook::Prerouting,
            -200,
            Policy::Accept,
        ))
        .chain(Chain::regular("port"));
    (inet, nat, bridge)
}

fn ours(family: Family, attrs: Vec<u8>) -> Vec<u8> {
    let mut payload = vec![family as u8, 0, 0, 0];
    payload.extend(attrs);
    payload
}

fn of_kind(msgs: &[MnlMessage], kind: MsgKind) -> Vec<Vec<u8>> {
    msgs.iter()
        .filter(|m| m.kind == kind.netlink_type())
        .map(|m| m.payload.clone())
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.chunks(4)
        .map(|c| c.iter().map(|x| format!("{x:02x}")).collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

fn assert_same(what: &str, ours: &[u8], nft: &[u8]) {
    assert!(
        ours == nft,
        "{what}: bytes differ\n ours: {}\n  nft: {}",
        hex(ours),
        hex(nft)
    );
}

#[test]
fn tables_chains_sets_and_elements_match_nft() {
    require_root();
    let ns = Netns::new("nft-oracle-objs");
    let file = std::env::temp_dir().join(format!("baton-nft-setup-{}.nft", std::process::id()));
    std::fs::write(&file, SETUP).expect("writing the nft setup file");
    let out = ns.nft(&["--debug=mnl", "-f", file.to_str().expect("utf-8 temp path")]);
    let _ = std::fs::remove_file(&file);
    let msgs = mnl_oracle::parse(&out);
    let (inet, nat, bridge) = setup_tables();

    let tables = of_kind(&msgs, MsgKind::NewTable);
    assert_eq!(tables.len(), 3, "nft sent three tables");
    assert_same(
        "table inet baton",
        &ours(Family::Inet, table_attrs(&inet, true)),
        &tables[0],
    );
    assert_same(
        "table ip baton-nat",
        &ours(Family::Ip, table_attrs(&nat, true)),
        &tables[1],
    );
    assert_same(
        "table bridge baton-ports",
        &ours(Family::Bridge, table_attrs(&bridge, true)),
        &tables[2],
    );

    let chains = of_kind(&msgs, MsgKind::NewChain);
    let want: Vec<(Family, Vec<u8>)> = [&inet, &nat, &bridge]
        .iter()
        .flat_map(|t| t.chains.iter().map(move |c| (t.family, chain_attrs(t, c))))
        .collect();
    assert_eq!(chains.len(), want.len());
    for ((family, attrs), nft) in want.into_iter().zip(&chains) {
        assert_same("chain", &ours(family, attrs), nft);
    }

    let sets = of_kind(&msgs, MsgKind::NewSet);
    let elems = of_kind(&msgs, MsgKind::NewSetElem);
    assert_eq!(sets.len(), 4);
    assert_eq!(elems.len(), 4);
    for (i, s) in inet.sets.iter().enumerate() {
        let id = i as u32 + 1;
        assert_same(
            &format!("set {}", s.name),
            &ours(Family::Inet, set_attrs(&inet, s, id)),
            &sets[i],
        );
        assert_same(
            &format!("elements of set {}", s.name),
            &ours(Family::Inet, elements_attrs(&inet, s, id)),
            &elems[i],
        );
    }
}

/// (chain, nft rule text, the same rule typed); the inet table unless the chain is a NAT one
/// or one of the bridge table (`ingress`, `port`).
fn cases() -> Vec<(&'static str, &'static str, Rule)> {
    let net24 = Ipv4Net::new(Ipv4Addr::new(10, 88, 0, 0), 24);
    vec![
        (
            "forward",
            "ct state established,related accept",
            Rule::new()
                .ct_state(CtState::ESTABLISHED | CtState::RELATED)
                .accept(),
        ),
        (
            "forward",
            "ct state new drop",
            Rule::new().ct_state(CtState::NEW).drop(),
        ),
        (
            "forward",
            "iifname \"baton0\" oifname \"eth0\" counter accept",
            Rule::new()
                .iifname("baton0")
                .oifname("eth0")
                .counter()
                .accept(),
        ),
        (
            "forward",
            "ip saddr 10.88.0.0/24 tcp dport @ports accept",
            Rule::new()
                .ip_saddr(net24)
                .when(Match::InSet {
                    fields: vec![KeyField::Port(PortField::TcpDport)],
                    set: "ports".into(),
                    invert: false,
                })
                .accept(),
        ),
        (
            "forward",
            "ip daddr @hosts udp dport 53 jump svc",
            Rule::new()
                .when(Match::InSet {
                    fields: vec![KeyField::Addr(AddrField::Daddr)],
                    set: "hosts".into(),
                    invert: false,
                })
                .udp_dport(53)
                .jump("svc"),
        ),
        (
            "forward",
            "meta l4proto icmp accept",
            Rule::new().when(Match::L4proto(CmpOp::Eq, ICMP)).accept(),
        ),
        (
            "forward",
            "ip saddr 10.88.0.0/20 drop",
            Rule::new()
                .ip_saddr(Ipv4Net::new(Ipv4Addr::new(10, 88, 0, 0), 20))
                .drop(),
        ),
        (
            "forward",
            "ip daddr 192.0.2.9 tcp sport 22 accept",
            Rule::new()
                .ip_daddr(Ipv4Net::new(Ipv4Addr::new(192, 0, 2, 9), 32))
                .when(Match::Port(PortField::TcpSport, CmpOp::Eq, 22))
                .accept(),
        ),
        (
            "forward",
            "ip saddr != 10.88.0.5 oifname != \"baton0\" drop",
            Rule::new()
                .when(Match::Addr(
                    AddrField::Saddr,
                    CmpOp::Neq,
                    Ipv4Net::new(Ipv4Addr::new(10, 88, 0, 5), 32),
                ))
                .when(Match::Oifname(CmpOp::Neq, "baton0".into()))
                .drop(),
        ),
        (
            "forward",
            "tcp dport != @ports drop",
            Rule::new()
                .when(Match::InSet {
                    fields: vec![KeyField::Port(PortField::TcpDport)],
                    set: "ports".into(),
                    invert: true,
                })
                .drop(),
        ),
        (
            "forward",
            "ip saddr . tcp dport @pairs accept",
            Rule::new().when(in_pairs()).accept(),
        ),
        (
            "forward",
            "udp sport 67 goto svc",
            Rule::new()
                .when(Match::Port(PortField::UdpSport, CmpOp::Eq, 67))
                .then(Statement::Verdict(Verdict::Goto("svc".into()))),
        ),
        (
            "forward",
            "accept comment \"allow the rest\"",
            Rule::new().accept().comment("allow the rest"),
        ),
        (
            "svc",
            "return",
            Rule::new().then(Statement::Verdict(Verdict::Return)),
        ),
        (
            "postrouting",
            "ip saddr 10.88.0.0/24 oifname != \"baton0\" masquerade",
            Rule::new()
                .ip_saddr(net24)
                .when(Match::Oifname(CmpOp::Neq, "baton0".into()))
                .masquerade(),
        ),
        (
            "prerouting",
            "tcp dport 8080 dnat to 10.88.0.5:80",
            Rule::new().tcp_dport(8080).then(Statement::Dnat {
                addr: Ipv4Addr::new(10, 88, 0, 5),
                port: Some(80),
            }),
        ),
        (
            "prerouting",
            "ip daddr 192.0.2.1 dnat to 10.88.0.7",
            Rule::new()
                .ip_daddr(Ipv4Net::new(Ipv4Addr::new(192, 0, 2, 1), 32))
                .then(Statement::Dnat {
                    addr: Ipv4Addr::new(10, 88, 0, 7),
                    port: None,
                }),
        ),
        (
            "prerouting",
            "tcp dport 8081 redirect to :80",
            Rule::new()
                .tcp_dport(8081)
                .then(Statement::Redirect { port: Some(80) }),
        ),
        (
            "prerouting",
            "ip daddr 10.99.0.3 tcp dport 80 redirect to :7099",
            Rule::new()
                .ip_daddr(Ipv4Net::new(Ipv4Addr::new(10, 99, 0, 3), 32))
                .tcp_dport(80)
                .then(Statement::Redirect { port: Some(7099) }),
        ),
        (
            "prerouting",
            "udp dport 5353 redirect",
            Rule::new()
                .udp_dport(5353)
                .then(Statement::Redirect { port: None }),
        ),
        ("postrouting", "counter", Rule::new().counter()),
        (
            "prerouting",
            "tcp dport 80 numgen random mod 3 1 dnat to 10.88.0.5:8080",
            Rule::new()
                .tcp_dport(80)
                .when(Match::Numgen {
                    modulus: 3,
                    value: 1,
                })
                .then(Statement::Dnat {
                    addr: Ipv4Addr::new(10, 88, 0, 5),
                    port: Some(8080),
                }),
        ),
        (
            "forward",
            "meta l4proto tcp reject with tcp reset",
            Rule::new()
                .when(Match::L4proto(CmpOp::Eq, super::rule::TCP))
                .reject(Reject::TcpReset),
        ),
        (
            "forward",
            "ip daddr @hosts reject",
            Rule::new()
                .when(Match::InSet {
                    fields: vec![KeyField::Addr(AddrField::Daddr)],
                    set: "hosts".into(),
                    invert: false,
                })
                .reject(Reject::PortUnreachable),
        ),
        (
            "forward",
            "reject",
            Rule::new().reject(Reject::PortUnreachable),
        ),
        (
            "forward",
            "ip saddr 10.88.0.0/24 reject with icmp type admin-prohibited",
            Rule::new().ip_saddr(net24).reject(Reject::AdminProhibited),
        ),
        (
            "forward",
            "reject with icmpx type admin-prohibited",
            Rule::new().reject(Reject::AdminProhibited),
        ),
        (
            "ingress",
            "iifname \"bv*\" drop",
            Rule::new().when(Match::IifnamePrefix("bv".into())).drop(),
        ),
        (
            "ingress",
            "iifname \"bv0a580002\" jump port",
            Rule::new().iifname("bv0a580002").jump("port"),
        ),
        (
            "port",
            "ether saddr != 02:ba:0a:58:00:02 drop",
            Rule::new().when(Match::EtherSaddr(CmpOp::Neq, MAC)).drop(),
        ),
        (
            "port",
            "ip saddr 10.88.0.2 accept",
            Rule::new()
                .ip_saddr(Ipv4Net::new(Ipv4Addr::new(10, 88, 0, 2), 32))
                .accept(),
        ),
        (
            "port",
            "arp htype 1 arp ptype ip arp hlen 6 arp plen 4 arp saddr ether 02:ba:0a:58:00:02 \
             arp saddr ip 10.88.0.2 accept",
            Rule::new()
                .when(Match::ArpSender {
                    hw: MAC,
                    ip: Ipv4Addr::new(10, 88, 0, 2),
                })
                .accept(),
        ),
        ("port", "drop", Rule::new().drop()),
        (
            "forward",
            "icmp type echo-request accept",
            Rule::new().when(Match::IcmpType(8)).accept(),
        ),
        (
            // The policy's front door rule: a source in one set, destination and port in another.
            "forward",
            "iifname \"baton-wg\" ip saddr @hosts ip daddr . tcp dport @pairs accept",
            Rule::new()
                .iifname("baton-wg")
                .when(Match::InSet {
                    fields: vec![KeyField::Addr(AddrField::Saddr)],
                    set: "hosts".into(),
                    invert: false,
                })
                .when(Match::InSet {
                    fields: vec![
                        KeyField::Addr(AddrField::Daddr),
                        KeyField::Port(PortField::TcpDport),
                    ],
                    set: "pairs".into(),
                    invert: false,
                })
                .accept(),
        ),
        (
            "forward",
            "ip saddr . ip daddr . tcp dport @triples accept",
            Rule::new()
                .when(Match::InSet {
                    fields: vec![
                        KeyField::Addr(AddrField::Saddr),
                        KeyField::Addr(AddrField::Daddr),
                        KeyField::Port(PortField::TcpDport),
                    ],
                    set: "triples".into(),
                    invert: false,
                })
                .accept(),
        ),
    ]
}

#[test]
fn every_rule_kind_matches_what_nft_sends() {
    require_root();
    let ns = Netns::new("nft-oracle-rules");
    let file = std::env::temp_dir().join(format!("baton-nft-rules-{}.nft", std::process::id()));
    std::fs::write(&file, SETUP).expect("writing the nft setup file");
    ns.nft(&["-f", file.to_str().expect("utf-8 temp path")]);
    let _ = std::fs::remove_file(&file);
    let (inet, nat, bridge) = setup_tables();
    let mut failures = Vec::new();
    for (chain, text, rule) in cases() {
        let table = if chain.ends_with("routing") {
            &nat
        } else if chain == "ingress" || chain == "port" {
            &bridge
        } else {
            &inet
        };
        let c = table
            .chains
            .iter()
            .find(|c| c.name == chain)
            .expect("chain in the setup");
        let cmd = format!(
            "add rule {} {} {chain} {text}",
            table.family.name(),
            table.name
        );
        let (ok, out, err) = ns.exec("nft", &["--debug=mnl", &cmd]);
        assert!(ok, "nft {cmd}: {err}");
        let msgs = of_kind(&mnl_oracle::parse(&out), MsgKind::NewRule);
        assert_eq!(msgs.len(), 1, "nft sent one rule for {text:?}");
        let mine = ours(table.family, rule_attrs(table, c, &rule, 1));
        if mine != msgs[0] {
            failures.push(format!(
                "{text}:\n ours: {}\n  nft: {}",
                hex(&mine),
                hex(&msgs[0])
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "rules differ from nft's:\n{}",
        failures.join("\n")
    );
}
