//! Each container port of the bridge bound to its container's addresses.
//!
//! The allow lists of [`crate::svcnet::policy`] trust a packet's source address, and a
//! container holding `CAP_NET_RAW` (a spec may grant it) can write any frame it likes. So
//! every frame entering the bridge from a container's veth must come from that container: its
//! Ethernet source is the MAC the container was given ([`mac_of`]), an IPv4 packet's source is
//! its address, an ARP packet is Ethernet/IPv4 with the same sender MAC and address. Anything
//! else from a container port is dropped: other senders, other ethertypes (IPv6, VLAN tags),
//! and frames from a veth that has no binding yet.
//!
//! The rules live in `table bridge baton-ports`, in the bridge family: its prerouting hook sees
//! every frame a port hands to the bridge, ARP as well as IPv4, before the bridge learns the
//! source MAC and before `br_netfilter` passes IPv4 on to the policy's hooks. It needs nothing
//! but `nf_tables` (the bridge family is built into it) and the bridge. Rules match the veth by
//! name, so a binding can be written before or after its link exists; a netdev ingress chain
//! per veth would need the device to exist when the chain is created and would vanish with it.
//!
//! ```text
//! table bridge baton-ports {
//!   chain ingress {
//!     type filter hook prerouting priority -200; policy accept;
//!     iifname "bv0a580002" jump port-bv0a580002
//!     iifname "bv*" drop
//!   }
//!   chain port-bv0a580002 {
//!     ether saddr != 02:ba:0a:58:00:02 drop
//!     ip saddr 10.88.0.2 accept
//!     arp htype 1 arp ptype ip arp hlen 6 arp plen 4 arp saddr ether 02:ba:0a:58:00:02 arp saddr ip 10.88.0.2 accept
//!     drop
//!   }
//! }
//! ```

use std::net::Ipv4Addr;

use super::{veth_name, VETH_PREFIX};
use crate::svcnet::nft::{
    Chain, ChainType, CmpOp, Family, Hook, Ipv4Net, Match, Policy, Rule, Table,
};

/// The table holding the bindings.
pub const PORTS_TABLE: &str = "baton-ports";

/// The bridge family's filter priority: before `br_netfilter` (0) hands IPv4 on.
const PRIORITY: i32 = -200;

/// The MAC address a container with `address` gets: locally administered, unicast, `02:ba`
/// and the address, so the bindings follow from the addresses alone.
pub fn mac_of(address: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = address.octets();
    [0x02, 0xba, a, b, c, d]
}

fn port_chain(address: Ipv4Addr) -> Chain {
    let mac = mac_of(address);
    Chain::regular(&format!("port-{}", veth_name(address)))
        .rule(
            Rule::new()
                .when(Match::EtherSaddr(CmpOp::Neq, mac))
                .drop()
                .comment("another Ethernet source"),
        )
        .rule(Rule::new().ip_saddr(Ipv4Net::new(address, 32)).accept())
        .rule(
            Rule::new()
                .when(Match::ArpSender {
                    hw: mac,
                    ip: address,
                })
                .accept(),
        )
        .rule(Rule::new().drop().comment("another source or protocol"))
}

/// The bindings of the containers with `addresses` (each on its veth, [`veth_name`]); every
/// other container port drops everything.
pub fn ports_table(addresses: &[Ipv4Addr]) -> Table {
    let mut ingress = Chain::base(
        "ingress",
        ChainType::Filter,
        Hook::Prerouting,
        PRIORITY,
        Policy::Accept,
    );
    let mut table = Table::new(Family::Bridge, PORTS_TABLE);
    let mut sorted = addresses.to_vec();
    sorted.sort();
    sorted.dedup();
    for a in sorted {
        let port = port_chain(a);
        ingress = ingress.rule(Rule::new().iifname(&veth_name(a)).jump(&port.name));
        table = table.chain(port);
    }
    ingress = ingress.rule(
        Rule::new()
            .when(Match::IifnamePrefix(VETH_PREFIX.to_string()))
            .drop()
            .comment("a container port without a binding"),
    );
    table.chain(ingress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::svcnet::nft::{encode, Statement, Verdict};

    #[test]
    fn every_port_gets_its_own_chain_and_unbound_ports_drop() {
        let a = Ipv4Addr::new(10, 88, 0, 3);
        let b = Ipv4Addr::new(10, 88, 0, 2);
        let t = ports_table(&[a, b, a]);
        assert_eq!((t.family, t.name.as_str()), (Family::Bridge, PORTS_TABLE));
        let ingress = t
            .chains
            .iter()
            .find(|c| c.name == "ingress")
            .expect("ingress");
        let base = ingress.base.expect("a base chain");
        assert_eq!((base.hook, base.priority), (Hook::Prerouting, -200));
        let jumps: Vec<&Statement> = ingress.rules.iter().flat_map(|r| &r.statements).collect();
        assert_eq!(
            jumps,
            [
                &Statement::Verdict(Verdict::Jump("port-bv0a580002".into())),
                &Statement::Verdict(Verdict::Jump("port-bv0a580003".into())),
                &Statement::Verdict(Verdict::Drop),
            ]
        );
        let port = t
            .chains
            .iter()
            .find(|c| c.name == "port-bv0a580003")
            .expect("a's chain");
        assert_eq!(
            port.rules[0].matches,
            [Match::EtherSaddr(CmpOp::Neq, [2, 0xba, 10, 88, 0, 3])]
        );
        assert_eq!(
            port.rules.last().map(|r| r.statements.clone()),
            Some(vec![Statement::Verdict(Verdict::Drop)])
        );
        encode::check(&crate::svcnet::nft::Ruleset::new(vec![t])).expect("valid");
    }

    #[test]
    fn macs_are_local_unicast_and_follow_the_address() {
        let mac = mac_of(Ipv4Addr::new(10, 88, 1, 254));
        assert_eq!(mac, [0x02, 0xba, 10, 88, 1, 254]);
        assert_eq!(mac[0] & 0x01, 0, "unicast");
        assert_eq!(mac[0] & 0x02, 0x02, "locally administered");
    }
}
