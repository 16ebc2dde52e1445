//! The NAT rule set: container traffic leaving the board gets the uplink's address.

use crate::svcnet::nft::{
    Chain, ChainType, CmpOp, Family, Hook, Ipv4Net, Match, Policy, Rule, Table,
};

/// The table holding baton's NAT rules.
pub const NAT_TABLE: &str = "baton-nat";

/// `table ip baton-nat`: masquerade packets from `subnet` that leave through any interface
/// other than `bridge` and the mesh to the other boards (that is, through an uplink), whichever
/// uplink that is. Calls to containers on other boards keep their source address, which the
/// receiving board's allow lists check.
pub fn nat_table(subnet: Ipv4Net, bridge: &str) -> Table {
    Table::new(Family::Ip, NAT_TABLE).chain(
        Chain::base(
            "postrouting",
            ChainType::Nat,
            Hook::Postrouting,
            100,
            Policy::Accept,
        )
        .rule(
            Rule::new()
                .ip_saddr(subnet)
                .when(Match::Oifname(CmpOp::Neq, bridge.to_string()))
                .when(Match::Oifname(
                    CmpOp::Neq,
                    crate::svcnet::mesh::LINK.to_string(),
                ))
                .masquerade()
                .comment("containers to the uplink"),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::svcnet::nft::expr::Expr;
    use std::net::Ipv4Addr;

    #[test]
    fn masquerades_the_subnet_leaving_through_anything_but_the_bridge() {
        let t = nat_table(Ipv4Net::new(Ipv4Addr::new(10, 88, 0, 0), 24), "baton0");
        assert_eq!((t.family, t.name.as_str()), (Family::Ip, "baton-nat"));
        let chain = &t.chains[0];
        let base = chain.base.expect("a base chain");
        assert_eq!(
            (base.kind, base.hook, base.priority),
            (ChainType::Nat, Hook::Postrouting, 100)
        );
        let exprs = chain.rules[0].expressions(t.family, &|_| None);
        assert_eq!(exprs.last(), Some(&Expr::Masquerade));
        assert!(exprs.contains(&Expr::Cmp {
            sreg: crate::svcnet::nft::expr::Register::R1,
            op: CmpOp::Eq,
            data: vec![10, 88, 0],
        }));
    }
}
