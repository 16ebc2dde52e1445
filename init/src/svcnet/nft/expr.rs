//! nf_tables expressions: the kernel's virtual machine instructions a rule is made of.
//!
//! Each [`Expr`] is one `NFTA_LIST_ELEM` with a name and a nested data attribute; the
//! attribute order follows what libnftnl (and so Debian's `nft`) sends, so the bytes can be
//! compared with `nft --debug=mnl`.

use super::wire::Writer;

/// A register of the nf_tables VM: 0 is the verdict, 1-4 the 16-byte data registers, 8-23 the
/// same space addressed as 4-byte registers (concatenations load field after field there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Register(pub u32);

impl Register {
    /// The verdict register.
    pub const VERDICT: Register = Register(0);
    /// Data register 1 (the 4-byte registers 8-11).
    pub const R1: Register = Register(1);
    /// Data register 2 (the 4-byte registers 12-15).
    pub const R2: Register = Register(2);

    /// The 4-byte register `n` (`NFT_REG32_00 + n`).
    pub fn reg32(n: u32) -> Register {
        Register(8 + n)
    }
}

/// Where a payload expression reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadBase {
    /// The link-layer header.
    Link = 0,
    /// The network header (IPv4/IPv6).
    Network = 1,
    /// The transport header (TCP/UDP).
    Transport = 2,
}

/// Packet metadata a meta expression loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKey {
    /// Packet length.
    Len = 0,
    /// Ethertype.
    Protocol = 1,
    /// Packet mark.
    Mark = 3,
    /// Input interface index.
    Iif = 4,
    /// Output interface index.
    Oif = 5,
    /// Input interface name (16 bytes, NUL padded).
    IifName = 6,
    /// Output interface name (16 bytes, NUL padded).
    OifName = 7,
    /// Netfilter protocol family (`NFPROTO_*`), 1 byte.
    NfProto = 15,
    /// Layer 4 protocol number, 1 byte.
    L4Proto = 16,
}

/// Comparison operators of the cmp expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// Equal.
    Eq = 0,
    /// Not equal.
    Neq = 1,
    /// Less than.
    Lt = 2,
    /// Less than or equal.
    Lte = 3,
    /// Greater than.
    Gt = 4,
    /// Greater than or equal.
    Gte = 5,
}

/// Connection tracking keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtKey {
    /// The connection state bit mask (see [`super::CtState`]).
    State = 0,
    /// The connection mark.
    Mark = 3,
}

/// What a rule does with the packet when it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Let the packet through this hook.
    Accept,
    /// Drop the packet.
    Drop,
    /// Continue in another chain and come back.
    Jump(String),
    /// Continue in another chain without coming back.
    Goto(String),
    /// Return to the calling chain.
    Return,
}

impl Verdict {
    fn code(&self) -> i32 {
        match self {
            Verdict::Drop => 0,
            Verdict::Accept => 1,
            Verdict::Jump(_) => -3,
            Verdict::Goto(_) => -4,
            Verdict::Return => -5,
        }
    }
}

/// Source and destination NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatKind {
    /// Rewrite the source.
    Snat = 0,
    /// Rewrite the destination.
    Dnat = 1,
}

/// `NF_NAT_RANGE_MAP_IPS`: the NAT rewrites addresses.
pub const NAT_MAP_IPS: u32 = 0x1;
/// `NF_NAT_RANGE_PROTO_SPECIFIED`: the NAT rewrites ports.
pub const NAT_PROTO_SPECIFIED: u32 = 0x2;

/// How a reject expression answers (`NFT_REJECT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectKind {
    /// An ICMP unreachable of the packet's own family (`ip`/`ip6` tables).
    IcmpUnreach = 0,
    /// A TCP reset.
    TcpRst = 1,
    /// A family-independent ICMP unreachable (`inet` tables), code from `NFT_REJECT_ICMPX_*`.
    IcmpxUnreach = 2,
}

/// `NFT_REJECT_ICMPX_PORT_UNREACH`: what a bare `reject` answers in an `inet` table.
pub const ICMPX_PORT_UNREACH: u8 = 1;
/// `NFT_REJECT_ICMPX_ADMIN_PROHIBITED`.
pub const ICMPX_ADMIN_PROHIBITED: u8 = 3;
/// `ICMP_PKT_FILTERED`: the IPv4 destination-unreachable code for "administratively prohibited".
pub const ICMP_PKT_FILTERED: u8 = 13;

/// One nf_tables expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Load `len` bytes at `offset` from `base` into `dreg`.
    Payload {
        /// Destination register.
        dreg: Register,
        /// Header the offset is relative to.
        base: PayloadBase,
        /// Byte offset.
        offset: u32,
        /// Number of bytes.
        len: u32,
    },
    /// Load packet metadata into `dreg`.
    Meta {
        /// What to load.
        key: MetaKey,
        /// Destination register.
        dreg: Register,
    },
    /// Compare `sreg` with `data`; the rule stops here unless it holds.
    Cmp {
        /// Source register.
        sreg: Register,
        /// Operator.
        op: CmpOp,
        /// The value, in the byte order of the register's content.
        data: Vec<u8>,
    },
    /// `dreg = (sreg & mask) ^ xor` over `mask.len()` bytes.
    Bitwise {
        /// Source register.
        sreg: Register,
        /// Destination register.
        dreg: Register,
        /// The mask.
        mask: Vec<u8>,
        /// The value xor-ed in (same length as the mask).
        xor: Vec<u8>,
    },
    /// Test whether `sreg` is (or with `invert`, is not) an element of a named set.
    Lookup {
        /// Set name (in the same table).
        set: String,
        /// The set's id in the batch that creates it, if it does.
        set_id: Option<u32>,
        /// Source register.
        sreg: Register,
        /// Match when the key is absent instead.
        invert: bool,
    },
    /// Load connection tracking data into `dreg`.
    Ct {
        /// What to load.
        key: CtKey,
        /// Destination register.
        dreg: Register,
    },
    /// Put constant `data` into `dreg`.
    Immediate {
        /// Destination register.
        dreg: Register,
        /// The value.
        data: Vec<u8>,
    },
    /// Set the verdict.
    Verdict(Verdict),
    /// Count packets and bytes.
    Counter,
    /// Masquerade: source NAT to the address of the output interface.
    Masquerade,
    /// Source or destination NAT to the address (and port) in registers.
    Nat {
        /// Which direction.
        kind: NatKind,
        /// `NFPROTO_*` of the address (`2` for IPv4).
        family: u32,
        /// Register holding the address, if the address is rewritten.
        addr: Option<Register>,
        /// Register holding the port, if the port is rewritten.
        proto: Option<Register>,
        /// `NF_NAT_RANGE_*` flags.
        flags: u32,
    },
    /// Put a random number in `0..modulus` (plus `offset`) into `dreg`, as a host-order u32.
    Numgen {
        /// Destination register.
        dreg: Register,
        /// The numbers are taken modulo this.
        modulus: u32,
        /// Added to the result.
        offset: u32,
    },
    /// Refuse the packet with an answer (a TCP reset or an ICMP unreachable); ends the rule.
    Reject {
        /// The kind of answer.
        kind: RejectKind,
        /// The ICMP code (0 for a TCP reset).
        code: u8,
    },
    /// Redirect to the local machine, optionally to the port in a register.
    Redirect {
        /// Register holding the port.
        proto: Option<Register>,
        /// `NF_NAT_RANGE_*` flags.
        flags: u32,
    },
}

// NFTA_LIST_ELEM, NFTA_EXPR_NAME, NFTA_EXPR_DATA, NFTA_DATA_VALUE, NFTA_DATA_VERDICT.
const LIST_ELEM: u16 = 1;
const EXPR_NAME: u16 = 1;
const EXPR_DATA: u16 = 2;
const DATA_VALUE: u16 = 1;
const DATA_VERDICT: u16 = 2;

fn reg(r: Register) -> u32 {
    r.0
}

/// Writes `NFTA_DATA_VALUE` nested in attribute `kind`.
fn data_value(w: &mut Writer, kind: u16, value: &[u8]) {
    let n = w.nest(kind);
    w.attr(DATA_VALUE, value);
    w.end(n);
}

impl Expr {
    /// The expression's name as the kernel knows it.
    pub fn name(&self) -> &'static str {
        match self {
            Expr::Payload { .. } => "payload",
            Expr::Meta { .. } => "meta",
            Expr::Cmp { .. } => "cmp",
            Expr::Bitwise { .. } => "bitwise",
            Expr::Lookup { .. } => "lookup",
            Expr::Ct { .. } => "ct",
            Expr::Immediate { .. } | Expr::Verdict(_) => "immediate",
            Expr::Counter => "counter",
            Expr::Masquerade => "masq",
            Expr::Nat { .. } => "nat",
            Expr::Redirect { .. } => "redir",
            Expr::Numgen { .. } => "numgen",
            Expr::Reject { .. } => "reject",
        }
    }

    /// Appends this expression as one element of an `NFTA_RULE_EXPRESSIONS` list.
    pub fn write(&self, w: &mut Writer) {
        let elem = w.nest(LIST_ELEM);
        w.string(EXPR_NAME, self.name());
        let data = w.nest(EXPR_DATA);
        self.write_data(w);
        w.end(data);
        w.end(elem);
    }

    fn write_data(&self, w: &mut Writer) {
        match self {
            Expr::Payload {
                dreg,
                base,
                offset,
                len,
            } => {
                w.u32_be(1, reg(*dreg));
                w.u32_be(2, *base as u32);
                w.u32_be(3, *offset);
                w.u32_be(4, *len);
            }
            Expr::Meta { key, dreg } => {
                w.u32_be(2, *key as u32);
                w.u32_be(1, reg(*dreg));
            }
            Expr::Cmp { sreg, op, data } => {
                w.u32_be(1, reg(*sreg));
                w.u32_be(2, *op as u32);
                data_value(w, 3, data);
            }
            Expr::Bitwise {
                sreg,
                dreg,
                mask,
                xor,
            } => {
                w.u32_be(1, reg(*sreg));
                w.u32_be(2, reg(*dreg));
                let len = u32::try_from(mask.len()).unwrap_or(u32::MAX);
                w.u32_be(3, len);
                data_value(w, 4, mask);
                data_value(w, 5, xor);
            }
            Expr::Lookup {
                set,
                set_id,
                sreg,
                invert,
            } => {
                w.u32_be(2, reg(*sreg));
                w.string(1, set);
                if let Some(id) = set_id {
                    w.u32_be(4, *id);
                }
                if *invert {
                    w.u32_be(5, 1);
                }
            }
            Expr::Ct { key, dreg } => {
                w.u32_be(2, *key as u32);
                w.u32_be(1, reg(*dreg));
            }
            Expr::Immediate { dreg, data } => {
                w.u32_be(1, reg(*dreg));
                data_value(w, 2, data);
            }
            Expr::Verdict(v) => {
                w.u32_be(1, reg(Register::VERDICT));
                let data = w.nest(2);
                let verdict = w.nest(DATA_VERDICT);
                w.attr(1, &v.code().to_be_bytes());
                if let Verdict::Jump(chain) | Verdict::Goto(chain) = v {
                    w.string(2, chain);
                }
                w.end(verdict);
                w.end(data);
            }
            Expr::Counter | Expr::Masquerade => {}
            Expr::Nat {
                kind,
                family,
                addr,
                proto,
                flags,
            } => {
                w.u32_be(1, *kind as u32);
                w.u32_be(2, *family);
                if let Some(r) = addr {
                    w.u32_be(3, reg(*r));
                }
                if let Some(r) = proto {
                    w.u32_be(5, reg(*r));
                }
                if *flags != 0 {
                    w.u32_be(7, *flags);
                }
            }
            Expr::Numgen {
                dreg,
                modulus,
                offset,
            } => {
                // NFTA_NG_DREG, NFTA_NG_MODULUS, NFTA_NG_TYPE (NFT_NG_RANDOM), NFTA_NG_OFFSET.
                w.u32_be(1, reg(*dreg));
                w.u32_be(2, *modulus);
                w.u32_be(3, 1);
                w.u32_be(4, *offset);
            }
            Expr::Reject { kind, code } => {
                // NFTA_REJECT_TYPE, NFTA_REJECT_ICMP_CODE.
                w.u32_be(1, *kind as u32);
                w.attr(2, &[*code]);
            }
            Expr::Redirect { proto, flags } => {
                if let Some(r) = proto {
                    w.u32_be(1, reg(*r));
                }
                if *flags != 0 {
                    w.u32_be(3, *flags);
                }
            }
        }
    }
}
