//! Turning a [`Ruleset`] into one nfnetlink batch that replaces baton's tables atomically.
//!
//! For every table the batch holds: an add of the table (so the delete that follows cannot
//! fail on a first run), its delete (which takes all its chains, sets and rules with it), the
//! table again, its sets and their elements, all its chains, then the rules. The kernel
//! applies the batch as one transaction: either all of it or nothing.

use super::expr::Expr;
use super::model::{Chain, Family, KeyType, Policy, Ruleset, Set, Table, Value};
use super::rule::Rule;
use super::wire::{self, MsgKind, Writer};
use super::Error;

/// An encoded batch and, for each message the kernel answers, what it was.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The bytes to send in one `send` call.
    pub bytes: Vec<u8>,
    /// Sequence number and description of each message inside the batch.
    pub messages: Vec<(u32, String)>,
}

/// What a message describes, for error reports: `rule 2 ("nat egress") of chain ip baton-nat postrouting`.
fn table_what(t: &Table) -> String {
    format!("table {} {}", t.family.name(), t.name)
}

fn chain_what(t: &Table, c: &Chain) -> String {
    format!("chain {} {} {}", t.family.name(), t.name, c.name)
}

fn rule_what(t: &Table, c: &Chain, index: usize, r: &Rule) -> String {
    match &r.comment {
        Some(comment) => format!("rule {} ({comment:?}) of {}", index + 1, chain_what(t, c)),
        None => format!("rule {} of {}", index + 1, chain_what(t, c)),
    }
}

// Attribute numbers (NFTA_TABLE_*, NFTA_CHAIN_*, NFTA_HOOK_*, NFTA_RULE_*, NFTA_SET_*, ...).
const TABLE_NAME: u16 = 1;
const TABLE_FLAGS: u16 = 2;
const CHAIN_TABLE: u16 = 1;
const CHAIN_NAME: u16 = 3;
const CHAIN_HOOK: u16 = 4;
const CHAIN_POLICY: u16 = 5;
const CHAIN_TYPE: u16 = 7;
const HOOK_HOOKNUM: u16 = 1;
const HOOK_PRIORITY: u16 = 2;
const RULE_TABLE: u16 = 1;
const RULE_CHAIN: u16 = 2;
const RULE_EXPRESSIONS: u16 = 4;
const RULE_USERDATA: u16 = 7;
const SET_TABLE: u16 = 1;
const SET_NAME: u16 = 2;
const SET_FLAGS: u16 = 3;
const SET_KEY_TYPE: u16 = 4;
const SET_KEY_LEN: u16 = 5;
const SET_ID: u16 = 10;
const SET_USERDATA: u16 = 13;
const ELEM_LIST_TABLE: u16 = 1;
const ELEM_LIST_SET: u16 = 2;
const ELEM_LIST_ELEMENTS: u16 = 3;
const ELEM_LIST_SET_ID: u16 = 4;
const ELEM_KEY: u16 = 1;
const DATA_VALUE: u16 = 1;
/// libnftnl's `NFTNL_UDATA_SET_KEYBYTEORDER` and nft's `BYTEORDER_BIG_ENDIAN`.
const UDATA_SET_KEYBYTEORDER: u8 = 0;
const BYTEORDER_BIG_ENDIAN: u32 = 2;
/// libnftnl's `NFTNL_UDATA_SET_KEY_TYPEOF` with its nested `NFTNL_UDATA_SET_TYPEOF_EXPR`
/// and `_DATA`, and nft's `EXPR_CONCAT`.
const UDATA_SET_KEY_TYPEOF: u8 = 3;
const UDATA_TYPEOF_EXPR: u8 = 0;
const UDATA_TYPEOF_DATA: u8 = 1;
const EXPR_CONCAT: u32 = 13;
/// libnftnl's `NFTNL_UDATA_RULE_COMMENT`.
const UDATA_RULE_COMMENT: u8 = 0;

/// The attributes of a `NEWTABLE`/`DELTABLE` message.
pub fn table_attrs(t: &Table, with_flags: bool) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(TABLE_NAME, &t.name);
    if with_flags {
        w.u32_be(TABLE_FLAGS, 0);
    }
    w.into_bytes()
}

/// The attributes of a `NEWCHAIN` message.
pub fn chain_attrs(t: &Table, c: &Chain) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(CHAIN_TABLE, &t.name);
    w.string(CHAIN_NAME, &c.name);
    if let Some(base) = &c.base {
        w.string(CHAIN_TYPE, base.kind.name());
        let policy = match base.policy {
            Policy::Drop => 0,
            Policy::Accept => 1,
        };
        w.u32_be(CHAIN_POLICY, policy);
        let hook = w.nest(CHAIN_HOOK);
        w.u32_be(HOOK_HOOKNUM, base.hook as u32);
        w.attr(HOOK_PRIORITY, &base.priority.to_be_bytes());
        w.end(hook);
    }
    w.into_bytes()
}

/// Bytes of a set key: each field padded to 4 bytes when the key is a concatenation.
fn key_bytes(values: &[Value]) -> Vec<u8> {
    if values.len() == 1 {
        return values.iter().flat_map(|v| v.bytes()).collect();
    }
    let mut out = Vec::new();
    for v in values {
        out.extend_from_slice(&v.bytes());
        out.resize(wire::align(out.len()), 0);
    }
    out
}

fn key_len(key: &[KeyType]) -> usize {
    match key {
        [one] => one.size(),
        many => many.iter().map(|k| wire::align(k.size())).sum(),
    }
}

fn key_type(key: &[KeyType]) -> u32 {
    key.iter().fold(0, |acc, k| (acc << 6) | k.type_id())
}

fn u32_of(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The attributes of a `NEWSET` message; `id` names the set within the batch.
pub fn set_attrs(t: &Table, s: &Set, id: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(SET_TABLE, &t.name);
    w.string(SET_NAME, &s.name);
    w.u32_be(SET_FLAGS, 0);
    w.u32_be(SET_KEY_TYPE, key_type(&s.key));
    w.u32_be(SET_KEY_LEN, u32_of(key_len(&s.key)));
    w.u32_be(SET_ID, id);
    // nft's own notes for printing the set back: the key's byte order, and for a
    // concatenation (whose byte order is mixed) that the key is a concatenation expression.
    let mut udata = Vec::new();
    let concat = s.key.len() > 1;
    let byteorder = if concat { 0 } else { BYTEORDER_BIG_ENDIAN };
    udata.extend_from_slice(&[UDATA_SET_KEYBYTEORDER, 4]);
    udata.extend_from_slice(&byteorder.to_ne_bytes());
    if concat {
        udata.extend_from_slice(&[UDATA_SET_KEY_TYPEOF, 8, UDATA_TYPEOF_EXPR, 4]);
        udata.extend_from_slice(&EXPR_CONCAT.to_ne_bytes());
        udata.extend_from_slice(&[UDATA_TYPEOF_DATA, 0]);
    }
    w.attr(SET_USERDATA, &udata);
    w.into_bytes()
}

/// The attributes of a `NEWSETELEM` message holding all of the set's elements.
pub fn elements_attrs(t: &Table, s: &Set, id: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(ELEM_LIST_TABLE, &t.name);
    w.string(ELEM_LIST_SET, &s.name);
    w.u32_be(ELEM_LIST_SET_ID, id);
    let list = w.nest(ELEM_LIST_ELEMENTS);
    // libnftnl numbers the list entries 1, 2, ... instead of repeating NFTA_LIST_ELEM.
    for (i, e) in s.elements.iter().enumerate() {
        let elem = w.nest(u16::try_from(i + 1).unwrap_or(u16::MAX) & 0x3fff);
        let key = w.nest(ELEM_KEY);
        w.attr(DATA_VALUE, &key_bytes(e));
        w.end(key);
        w.end(elem);
    }
    w.end(list);
    w.into_bytes()
}

/// The attributes of a `NEWRULE` message appending `r` to chain `c`; the sets of `t` have the
/// batch ids `first_set_id`, `first_set_id + 1`, ...
pub fn rule_attrs(t: &Table, c: &Chain, r: &Rule, first_set_id: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(RULE_TABLE, &t.name);
    w.string(RULE_CHAIN, &c.name);
    let exprs = w.nest(RULE_EXPRESSIONS);
    for e in r.expressions(t.family, &set_ids(t, first_set_id)) {
        e.write(&mut w);
    }
    w.end(exprs);
    if let Some(comment) = &r.comment {
        let mut udata = vec![UDATA_RULE_COMMENT, 0];
        udata.extend_from_slice(comment.as_bytes());
        udata.push(0);
        udata[1] = u8::try_from(comment.len() + 1).unwrap_or(u8::MAX);
        w.attr(RULE_USERDATA, &udata);
    }
    w.into_bytes()
}

/// Maps a set name of `t` to its id in the batch.
fn set_ids(t: &Table, first: u32) -> impl Fn(&str) -> Option<u32> + '_ {
    move |name| {
        let index = t.sets.iter().position(|s| s.name == name)?;
        Some(first + u32_of(index))
    }
}

fn invalid(what: String, reason: impl Into<String>) -> Error {
    Error::Invalid {
        what,
        reason: reason.into(),
    }
}

fn check_name(what: &str, name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > 255 || name.contains('\0') {
        return Err(invalid(
            what.to_string(),
            "names must be 1-255 bytes without NUL",
        ));
    }
    Ok(())
}

fn check_set(t: &Table, s: &Set) -> Result<(), Error> {
    let what = format!("set {} {} {}", t.family.name(), t.name, s.name);
    check_name(&what, &s.name)?;
    if s.key.is_empty() {
        return Err(invalid(what, "the key has no fields"));
    }
    for (i, e) in s.elements.iter().enumerate() {
        let types: Vec<KeyType> = e.iter().map(|v| v.key_type()).collect();
        if types != s.key {
            return Err(invalid(
                what,
                format!("element {} is {types:?}, the key is {:?}", i + 1, s.key),
            ));
        }
    }
    Ok(())
}

fn check_rule(t: &Table, c: &Chain, index: usize, r: &Rule) -> Result<(), Error> {
    use super::rule::Match;
    let what = || rule_what(t, c, index, r);
    for m in &r.matches {
        match m {
            Match::Iifname(_, n) | Match::Oifname(_, n) | Match::IifnamePrefix(n)
                if n.is_empty() || n.len() > 15 =>
            {
                return Err(invalid(
                    what(),
                    format!("interface name {n:?} is not 1-15 bytes"),
                ));
            }
            Match::InSet { set, fields, .. } => {
                let Some(s) = t.sets.iter().find(|s| &s.name == set) else {
                    return Err(invalid(what(), format!("no set {set:?} in the table")));
                };
                if fields.len() != s.key.len() {
                    return Err(invalid(
                        what(),
                        format!(
                            "looks up {} fields in set {set:?} of {}",
                            fields.len(),
                            s.key.len()
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    if let Some(comment) = &r.comment {
        if comment.len() > 127 || comment.contains('\0') {
            return Err(invalid(
                what(),
                "comments must be at most 127 bytes without NUL",
            ));
        }
    }
    for e in r.expressions(t.family, &|_| None) {
        if let Expr::Verdict(
            super::expr::Verdict::Jump(target) | super::expr::Verdict::Goto(target),
        ) = e
        {
            if !t.chains.iter().any(|c| c.name == target) {
                return Err(invalid(what(), format!("no chain {target:?} to jump to")));
            }
        }
    }
    Ok(())
}

/// Checks what the kernel would reject with a bare errno, so the error can name the culprit.
pub fn check(ruleset: &Ruleset) -> Result<(), Error> {
    for (i, t) in ruleset.tables.iter().enumerate() {
        check_name(&table_what(t), &t.name)?;
        if ruleset.tables[..i]
            .iter()
            .any(|o| o.family == t.family && o.name == t.name)
        {
            return Err(invalid(table_what(t), "appears twice in the rule set"));
        }
        for s in &t.sets {
            check_set(t, s)?;
        }
        for c in &t.chains {
            check_name(&chain_what(t, c), &c.name)?;
            for (index, r) in c.rules.iter().enumerate() {
                check_rule(t, c, index, r)?;
            }
        }
    }
    Ok(())
}

struct Builder {
    batch: Batch,
    seq: u32,
}

impl Builder {
    fn push(&mut self, kind: MsgKind, flags: u16, family: Family, attrs: &[u8], what: String) {
        self.seq += 1;
        wire::message(
            &mut self.batch.bytes,
            kind.netlink_type(),
            wire::NLM_F_REQUEST | wire::NLM_F_ACK | flags,
            self.seq,
            family as u8,
            0,
            attrs,
        );
        self.batch.messages.push((self.seq, what));
    }
}

/// Encodes the batch replacing every table of `ruleset`; sequence numbers start after `seq`.
pub fn encode(ruleset: &Ruleset, seq: u32) -> Result<Batch, Error> {
    build(ruleset, seq, true)
}

/// Encodes a batch deleting every table of `ruleset` (whose contents are ignored) if present.
pub fn encode_removal(ruleset: &Ruleset, seq: u32) -> Result<Batch, Error> {
    build(ruleset, seq, false)
}

fn build(ruleset: &Ruleset, seq: u32, recreate: bool) -> Result<Batch, Error> {
    check(ruleset)?;
    let mut b = Builder {
        batch: Batch {
            bytes: Vec::new(),
            messages: Vec::new(),
        },
        seq,
    };
    wire::message(
        &mut b.batch.bytes,
        wire::NFNL_MSG_BATCH_BEGIN,
        wire::NLM_F_REQUEST,
        seq,
        0,
        wire::NFNL_SUBSYS_NFTABLES,
        &[],
    );
    let mut set_id = 0;
    for t in &ruleset.tables {
        let first_set_id = set_id + 1;
        let what = table_what(t);
        b.push(
            MsgKind::NewTable,
            wire::NLM_F_CREATE,
            t.family,
            &table_attrs(t, true),
            format!("adding {what}"),
        );
        b.push(
            MsgKind::DelTable,
            0,
            t.family,
            &table_attrs(t, false),
            format!("deleting {what}"),
        );
        if !recreate {
            continue;
        }
        b.push(
            MsgKind::NewTable,
            wire::NLM_F_CREATE,
            t.family,
            &table_attrs(t, true),
            format!("creating {what}"),
        );
        for s in &t.sets {
            set_id += 1;
            let what = format!("set {} {} {}", t.family.name(), t.name, s.name);
            let flags = wire::NLM_F_CREATE;
            b.push(
                MsgKind::NewSet,
                flags,
                t.family,
                &set_attrs(t, s, set_id),
                what.clone(),
            );
            if !s.elements.is_empty() {
                let attrs = elements_attrs(t, s, set_id);
                b.push(
                    MsgKind::NewSetElem,
                    flags,
                    t.family,
                    &attrs,
                    format!("elements of {what}"),
                );
            }
        }
        for c in &t.chains {
            b.push(
                MsgKind::NewChain,
                wire::NLM_F_CREATE,
                t.family,
                &chain_attrs(t, c),
                chain_what(t, c),
            );
        }
        for c in &t.chains {
            for (index, r) in c.rules.iter().enumerate() {
                let flags = wire::NLM_F_CREATE | wire::NLM_F_APPEND;
                b.push(
                    MsgKind::NewRule,
                    flags,
                    t.family,
                    &rule_attrs(t, c, r, first_set_id),
                    rule_what(t, c, index, r),
                );
            }
        }
    }
    b.seq += 1;
    wire::message(
        &mut b.batch.bytes,
        wire::NFNL_MSG_BATCH_END,
        wire::NLM_F_REQUEST,
        b.seq,
        0,
        wire::NFNL_SUBSYS_NFTABLES,
        &[],
    );
    Ok(b.batch)
}
