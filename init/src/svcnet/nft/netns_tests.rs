//! Rule sets applied for real, inside network namespaces the tests create: read back with
//! Debian's `nft list ruleset` and compared with what `nft -f` makes of the same rules.

use std::net::Ipv4Addr;

use super::rule::{AddrField, CtState, Ipv4Net, KeyField, Match, PortField, Rule, Statement};
use super::{
    apply, remove, Chain, ChainType, Error, Family, Hook, KeyType, Policy, Ruleset, Set, Table,
    Value,
};
use baton_testnet::{require_root, Netns};

const NFT_TEXT: &str = r#"
table inet baton {
  set ports { type inet_service; elements = { 80, 443 } }
  set pairs { type ipv4_addr . inet_service; elements = { 10.88.0.5 . 80 } }
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "baton0" oifname "eth0" counter accept
    ip saddr 10.88.0.0/24 tcp dport @ports accept comment "web"
    ip saddr . tcp dport @pairs jump svc
  }
  chain svc {
    return
  }
}
table ip baton-nat {
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    ip saddr 10.88.0.0/24 oifname != "baton0" masquerade
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    tcp dport 8080 dnat to 10.88.0.5:80
  }
}
"#;

fn net24() -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::new(10, 88, 0, 0), 24)
}

/// `set ports { type inet_service; elements = { 80, 443 } }`, shared with the oracle tests.
pub(super) fn ports_set() -> Set {
    Set::new("ports", KeyType::InetService)
        .element(&[Value::Port(80)])
        .element(&[Value::Port(443)])
}

/// `set pairs { type ipv4_addr . inet_service; elements = { 10.88.0.5 . 80 } }`.
pub(super) fn pairs_set() -> Set {
    Set::concat("pairs", &[KeyType::Ipv4Addr, KeyType::InetService])
        .element(&[Value::Ipv4(Ipv4Addr::new(10, 88, 0, 5)), Value::Port(80)])
}

/// `ip saddr . tcp dport @pairs`.
pub(super) fn in_pairs() -> Match {
    Match::InSet {
        fields: vec![
            KeyField::Addr(AddrField::Saddr),
            KeyField::Port(PortField::TcpDport),
        ],
        set: "pairs".into(),
        invert: false,
    }
}

/// The base chain `<name>` of type nat on `hook` at `priority`, policy accept.
pub(super) fn nat_chain(name: &str, hook: Hook, priority: i32) -> Chain {
    Chain::base(name, ChainType::Nat, hook, priority, Policy::Accept)
}

fn ruleset() -> Ruleset {
    use super::CmpOp;
    let inet = Table::new(Family::Inet, "baton")
        .set(ports_set())
        .set(pairs_set())
        .chain(
            Chain::base("forward", ChainType::Filter, Hook::Forward, 0, Policy::Drop)
                .rule(
                    Rule::new()
                        .ct_state(CtState::ESTABLISHED | CtState::RELATED)
                        .accept(),
                )
                .rule(
                    Rule::new()
                        .iifname("baton0")
                        .oifname("eth0")
                        .counter()
                        .accept(),
                )
                .rule(
                    Rule::new()
                        .ip_saddr(net24())
                        .when(Match::InSet {
                            fields: vec![KeyField::Port(PortField::TcpDport)],
                            set: "ports".into(),
                            invert: false,
                        })
                        .accept()
                        .comment("web"),
                )
                .rule(Rule::new().when(in_pairs()).jump("svc")),
        )
        .chain(
            Chain::regular("svc")
                .rule(Rule::new().then(Statement::Verdict(super::Verdict::Return))),
        );
    let nat = Table::new(Family::Ip, "baton-nat")
        .chain(
            nat_chain("postrouting", Hook::Postrouting, 100).rule(
                Rule::new()
                    .ip_saddr(net24())
                    .when(Match::Oifname(CmpOp::Neq, "baton0".into()))
                    .masquerade(),
            ),
        )
        .chain(nat_chain("prerouting", Hook::Prerouting, -100).rule(
            Rule::new().tcp_dport(8080).then(Statement::Dnat {
                addr: Ipv4Addr::new(10, 88, 0, 5),
                port: Some(80),
            }),
        ));
    Ruleset::new(vec![inet, nat])
}

fn apply_in(ns: &Netns, rs: Ruleset) -> Result<(), Error> {
    ns.run(move || apply(&rs))
}

fn listing(ns: &Netns) -> String {
    ns.nft(&["list", "ruleset"])
}

#[test]
fn applied_rule_set_reads_back_like_nfts_own() {
    require_root();
    let ours = Netns::new("nft-apply-ours");
    let theirs = Netns::new("nft-apply-nft");
    apply_in(&ours, ruleset()).expect("applying the rule set");
    let file = std::env::temp_dir().join(format!("baton-nft-apply-{}.nft", std::process::id()));
    std::fs::write(&file, NFT_TEXT).expect("writing the nft file");
    theirs.nft(&["-f", file.to_str().expect("utf-8 temp path")]);
    let _ = std::fs::remove_file(&file);
    let got = listing(&ours);
    assert_eq!(got, listing(&theirs));
    assert!(
        got.contains("ip saddr . tcp dport @pairs jump svc"),
        "{got}"
    );
    assert!(got.contains("oifname != \"baton0\" masquerade"), "{got}");
}

#[test]
fn a_second_apply_replaces_and_never_duplicates() {
    require_root();
    let ns = Netns::new("nft-replace");
    ns.nft(&["add", "table", "inet", "other"]);
    ns.nft(&["add", "chain", "inet", "other", "keep"]);
    apply_in(&ns, ruleset()).expect("first apply");
    let first = listing(&ns);
    apply_in(&ns, ruleset()).expect("second apply");
    assert_eq!(
        listing(&ns),
        first,
        "applying the same rule set twice changes nothing"
    );

    let smaller = Ruleset::new(vec![Table::new(Family::Inet, "baton").chain(
        Chain::base("input", ChainType::Filter, Hook::Input, 0, Policy::Accept)
            .rule(Rule::new().tcp_dport(22).accept()),
    )]);
    apply_in(&ns, smaller).expect("third apply");
    let now = listing(&ns);
    assert!(
        !now.contains("chain forward"),
        "old chains of inet baton are gone:\n{now}"
    );
    assert_eq!(now.matches("tcp dport 22 accept").count(), 1, "{now}");
    assert!(
        now.contains("table ip baton-nat"),
        "tables not in the rule set are left alone:\n{now}"
    );
    assert!(
        now.contains("table inet other"),
        "foreign tables are left alone:\n{now}"
    );

    ns.run(|| {
        remove(&[
            (Family::Inet, "baton"),
            (Family::Ip, "baton-nat"),
            (Family::Ip, "absent"),
        ])
    })
    .expect("removing tables");
    let after = listing(&ns);
    assert!(!after.contains("baton"), "{after}");
    assert!(after.contains("table inet other"), "{after}");
}

#[test]
fn a_batch_with_one_bad_rule_changes_nothing_and_names_the_rule() {
    require_root();
    let ns = Netns::new("nft-atomic");
    apply_in(&ns, ruleset()).expect("first apply");
    let before = listing(&ns);
    let mut bad = ruleset();
    // Masquerade is only valid in NAT chains: the kernel refuses this rule.
    bad.tables[0].chains[0].rules.insert(
        1,
        Rule::new()
            .tcp_dport(9)
            .masquerade()
            .comment("misplaced nat"),
    );
    bad.tables[0].chains[0]
        .rules
        .push(Rule::new().tcp_dport(10).accept());
    let err = apply_in(&ns, bad).expect_err("the kernel refuses masquerade in a filter chain");
    let text = err.to_string();
    assert!(
        text.contains("rule 2 (\"misplaced nat\") of chain inet baton forward"),
        "the error names the rule: {text}"
    );
    assert!(matches!(err, Error::Kernel { .. }), "{err:?}");
    assert_eq!(listing(&ns), before, "nothing changed");
}

#[test]
fn invalid_rule_sets_are_refused_before_sending() {
    let rs = Ruleset::new(vec![Table::new(Family::Inet, "baton")
        .chain(Chain::regular("c").rule(Rule::new().jump("nowhere")))]);
    let err = super::encode::encode(&rs, 0).expect_err("jump to a missing chain");
    assert_eq!(
        err.to_string(),
        "nftables rule 1 of chain inet baton c: no chain \"nowhere\" to jump to"
    );
    let rs = Ruleset::new(vec![Table::new(Family::Inet, "baton").chain(
        Chain::regular("c").rule(Rule::new().iifname("a-very-long-interface").accept()),
    )]);
    assert!(super::encode::encode(&rs, 0).is_err());
    let rs = Ruleset::new(vec![Table::new(Family::Inet, "baton")
        .set(Set::new("s", KeyType::Ipv4Addr).element(&[Value::Port(1)]))]);
    let err = super::encode::encode(&rs, 0).expect_err("element of the wrong type");
    assert!(err.to_string().contains("set inet baton s"), "{err}");
}
