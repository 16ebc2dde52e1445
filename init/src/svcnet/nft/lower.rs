//! Lowering rules to expressions the way `nft` does it.
//!
//! A match on an IPv4 header field in an `inet` table gets the `meta nfproto ipv4` dependency
//! `nft` adds, a TCP/UDP port match gets `meta l4proto tcp|udp`; each dependency once per rule,
//! right before the first match that needs it (for a concatenated set key, all of them before
//! the loads). Byte-aligned prefixes load only the bytes they cover; other prefixes load the
//! whole address and mask it.

use super::expr::{
    CmpOp, CtKey, Expr, MetaKey, NatKind, PayloadBase, Register, NAT_PROTO_SPECIFIED,
};
use super::expr::{RejectKind, ICMPX_ADMIN_PROHIBITED, ICMPX_PORT_UNREACH, ICMP_PKT_FILTERED};
use super::model::Family;
use super::rule::{
    AddrField, Ipv4Net, KeyField, Match, Reject, Rule, Statement, ETH_P_ARP, ETH_P_IP, ICMP,
    NFPROTO_IPV4,
};

/// The expressions of `rule` in a table of `family`; `set_id` gives the batch id of a set.
pub fn lower(rule: &Rule, family: Family, set_id: &dyn Fn(&str) -> Option<u32>) -> Vec<Expr> {
    let mut l = Lowering {
        family,
        set_id,
        out: Vec::new(),
        nfproto: false,
        l4proto: None,
    };
    for m in &rule.matches {
        l.lower_match(m);
    }
    for s in &rule.statements {
        l.lower_statement(s);
    }
    l.out
}

/// Interface names are compared as 16 NUL-padded bytes (`IFNAMSIZ`).
pub fn ifname_bytes(name: &str) -> Vec<u8> {
    let mut b = name.as_bytes().to_vec();
    b.resize(16, 0);
    b
}

struct Lowering<'a> {
    family: Family,
    set_id: &'a dyn Fn(&str) -> Option<u32>,
    out: Vec<Expr>,
    nfproto: bool,
    l4proto: Option<u8>,
}

impl Lowering<'_> {
    fn cmp(&mut self, sreg: Register, op: CmpOp, data: Vec<u8>) {
        self.out.push(Expr::Cmp { sreg, op, data });
    }

    fn meta(&mut self, key: MetaKey) {
        self.out.push(Expr::Meta {
            key,
            dreg: Register::R1,
        });
    }

    fn need_ipv4(&mut self) {
        if self.nfproto {
            return;
        }
        match self.family {
            Family::Inet => {
                self.nfproto = true;
                self.meta(MetaKey::NfProto);
                self.cmp(Register::R1, CmpOp::Eq, vec![NFPROTO_IPV4]);
            }
            // A bridge sees every ethertype: nft checks the frame's protocol.
            Family::Bridge => {
                self.nfproto = true;
                self.meta(MetaKey::Protocol);
                self.cmp(Register::R1, CmpOp::Eq, ETH_P_IP.to_be_bytes().to_vec());
            }
            Family::Ip | Family::Ip6 => {}
        }
    }

    fn need_l4(&mut self, proto: u8) {
        if self.l4proto != Some(proto) {
            self.l4proto = Some(proto);
            self.meta(MetaKey::L4Proto);
            self.cmp(Register::R1, CmpOp::Eq, vec![proto]);
        }
    }

    fn payload(&mut self, dreg: Register, base: PayloadBase, offset: u32, len: u32) {
        self.out.push(Expr::Payload {
            dreg,
            base,
            offset,
            len,
        });
    }

    fn addr_offset(field: AddrField) -> u32 {
        match field {
            AddrField::Saddr => 12,
            AddrField::Daddr => 16,
        }
    }

    fn lower_match(&mut self, m: &Match) {
        match m {
            Match::Iifname(op, name) => {
                self.meta(MetaKey::IifName);
                self.cmp(Register::R1, *op, ifname_bytes(name));
            }
            Match::Oifname(op, name) => {
                self.meta(MetaKey::OifName);
                self.cmp(Register::R1, *op, ifname_bytes(name));
            }
            Match::L4proto(op, proto) => {
                self.meta(MetaKey::L4Proto);
                self.cmp(Register::R1, *op, vec![*proto]);
                if *op == CmpOp::Eq {
                    self.l4proto = Some(*proto);
                }
            }
            Match::Nfproto(op, family) => {
                self.meta(MetaKey::NfProto);
                self.cmp(Register::R1, *op, vec![*family]);
                if *op == CmpOp::Eq && *family == NFPROTO_IPV4 {
                    self.nfproto = true;
                }
            }
            Match::Addr(field, op, net) => self.lower_prefix(*field, *op, *net),
            Match::Port(field, op, port) => {
                self.need_l4(field.proto());
                self.payload(Register::R1, PayloadBase::Transport, field.offset(), 2);
                self.cmp(Register::R1, *op, port.to_be_bytes().to_vec());
            }
            Match::InSet {
                fields,
                set,
                invert,
            } => self.lower_lookup(fields, set, *invert),
            Match::CtState(states) => {
                self.out.push(Expr::Ct {
                    key: CtKey::State,
                    dreg: Register::R1,
                });
                self.out.push(Expr::Bitwise {
                    sreg: Register::R1,
                    dreg: Register::R1,
                    mask: states.0.to_ne_bytes().to_vec(),
                    xor: vec![0; 4],
                });
                self.cmp(Register::R1, CmpOp::Neq, vec![0; 4]);
            }
            Match::Numgen { modulus, value } => {
                self.out.push(Expr::Numgen {
                    dreg: Register::R1,
                    modulus: *modulus,
                    offset: 0,
                });
                self.cmp(Register::R1, CmpOp::Eq, value.to_ne_bytes().to_vec());
            }
            Match::IifnamePrefix(prefix) => {
                self.meta(MetaKey::IifName);
                self.cmp(Register::R1, CmpOp::Eq, prefix.as_bytes().to_vec());
            }
            Match::EtherSaddr(op, mac) => {
                self.payload(Register::R1, PayloadBase::Link, 6, 6);
                self.cmp(Register::R1, *op, mac.to_vec());
            }
            Match::ArpSender { hw, ip } => {
                // The ethertype, then htype . ptype, hlen . plen and sha . spa as nft merges
                // the adjacent fields.
                self.payload(Register::R1, PayloadBase::Link, 12, 2);
                self.cmp(Register::R1, CmpOp::Eq, ETH_P_ARP.to_be_bytes().to_vec());
                self.payload(Register::R1, PayloadBase::Network, 0, 4);
                self.cmp(Register::R1, CmpOp::Eq, vec![0, 1, 0x08, 0]);
                self.payload(Register::R1, PayloadBase::Network, 4, 2);
                self.cmp(Register::R1, CmpOp::Eq, vec![6, 4]);
                self.payload(Register::R1, PayloadBase::Network, 8, 10);
                let mut sender = hw.to_vec();
                sender.extend_from_slice(&ip.octets());
                self.cmp(Register::R1, CmpOp::Eq, sender);
            }
            Match::IcmpType(kind) => {
                self.need_ipv4();
                self.need_l4(ICMP);
                self.payload(Register::R1, PayloadBase::Transport, 0, 1);
                self.cmp(Register::R1, CmpOp::Eq, vec![*kind]);
            }
        }
    }

    fn lower_prefix(&mut self, field: AddrField, op: CmpOp, net: Ipv4Net) {
        self.need_ipv4();
        let prefix = u32::from(net.prefix.min(32));
        if prefix == 0 {
            return;
        }
        // Whole bytes are compared directly; a partial byte means masking the whole address.
        let len = if prefix % 8 == 0 { prefix / 8 } else { 4 };
        let bytes = len as usize;
        self.payload(
            Register::R1,
            PayloadBase::Network,
            Self::addr_offset(field),
            len,
        );
        let network = net.network().octets()[..bytes].to_vec();
        if prefix % 8 != 0 {
            let mask = net.mask().to_be_bytes()[..bytes].to_vec();
            self.out.push(Expr::Bitwise {
                sreg: Register::R1,
                dreg: Register::R1,
                mask,
                xor: vec![0; bytes],
            });
        }
        self.cmp(Register::R1, op, network);
    }

    fn lower_lookup(&mut self, fields: &[KeyField], set: &str, invert: bool) {
        let concat = fields.len() > 1;
        // Dependencies first, then the loads into consecutive 4-byte registers.
        for f in fields {
            match f {
                KeyField::Addr(_) => self.need_ipv4(),
                KeyField::Port(p) => self.need_l4(p.proto()),
                KeyField::L4proto => {}
            }
        }
        let mut reg32 = 0;
        for (i, f) in fields.iter().enumerate() {
            let dreg = if !concat || i == 0 {
                Register::R1
            } else {
                Register::reg32(reg32)
            };
            let len = match f {
                KeyField::Addr(a) => {
                    self.payload(dreg, PayloadBase::Network, Self::addr_offset(*a), 4);
                    4
                }
                KeyField::Port(p) => {
                    self.payload(dreg, PayloadBase::Transport, p.offset(), 2);
                    2
                }
                KeyField::L4proto => {
                    self.out.push(Expr::Meta {
                        key: MetaKey::L4Proto,
                        dreg,
                    });
                    1
                }
            };
            reg32 += u32::div_ceil(len, 4);
        }
        self.out.push(Expr::Lookup {
            set: set.to_string(),
            set_id: (self.set_id)(set),
            sreg: Register::R1,
            invert,
        });
    }

    fn lower_statement(&mut self, s: &Statement) {
        match s {
            Statement::Counter => self.out.push(Expr::Counter),
            Statement::Verdict(v) => self.out.push(Expr::Verdict(v.clone())),
            Statement::Masquerade => self.out.push(Expr::Masquerade),
            Statement::Reject(with) => self.out.push(match with {
                Reject::TcpReset => Expr::Reject {
                    kind: RejectKind::TcpRst,
                    code: 0,
                },
                // An inet rule that matched IPv4 answers like an ip one, as nft does.
                Reject::PortUnreachable if self.family == Family::Inet && !self.nfproto => {
                    Expr::Reject {
                        kind: RejectKind::IcmpxUnreach,
                        code: ICMPX_PORT_UNREACH,
                    }
                }
                // ICMP_PORT_UNREACH.
                Reject::PortUnreachable => Expr::Reject {
                    kind: RejectKind::IcmpUnreach,
                    code: 3,
                },
                Reject::AdminProhibited if self.family == Family::Inet && !self.nfproto => {
                    Expr::Reject {
                        kind: RejectKind::IcmpxUnreach,
                        code: ICMPX_ADMIN_PROHIBITED,
                    }
                }
                Reject::AdminProhibited => Expr::Reject {
                    kind: RejectKind::IcmpUnreach,
                    code: ICMP_PKT_FILTERED,
                },
            }),
            Statement::Dnat { addr, port } => {
                self.out.push(Expr::Immediate {
                    dreg: Register::R1,
                    data: addr.octets().to_vec(),
                });
                let proto = port.map(|p| {
                    self.out.push(Expr::Immediate {
                        dreg: Register::R2,
                        data: p.to_be_bytes().to_vec(),
                    });
                    Register::R2
                });
                self.out.push(Expr::Nat {
                    kind: NatKind::Dnat,
                    family: u32::from(NFPROTO_IPV4),
                    addr: Some(Register::R1),
                    proto,
                    flags: if proto.is_some() {
                        NAT_PROTO_SPECIFIED
                    } else {
                        0
                    },
                });
            }
            Statement::Redirect { port } => {
                let proto = port.map(|p| {
                    self.out.push(Expr::Immediate {
                        dreg: Register::R1,
                        data: p.to_be_bytes().to_vec(),
                    });
                    Register::R1
                });
                self.out.push(Expr::Redirect {
                    proto,
                    flags: if proto.is_some() {
                        NAT_PROTO_SPECIFIED
                    } else {
                        0
                    },
                });
            }
        }
    }
}
