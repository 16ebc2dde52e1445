//! nftables over netlink, in pure Rust: a typed rule model and atomic replacement of baton's
//! own tables.
//!
//! A [`Ruleset`] names the tables baton owns (`inet baton`, `ip baton-nat`, ...), each with its
//! sets, chains and [`Rule`]s. [`apply`] sends the whole of it as one nfnetlink batch that
//! deletes and recreates each of those tables, so a change is atomic: packets see either the
//! old rules or the new ones, never a gap, and a batch the kernel refuses changes nothing.
//! Tables baton does not name are left alone.
//!
//! Layers, bottom up: [`wire`] (attributes, headers), [`expr`] (the kernel's expressions),
//! [`rule`] (matches and statements; `lower` turns them into expressions the way `nft` does),
//! [`model`] (tables, chains, sets), [`encode`] (the batch), `socket` (send, acks, errors).
//! The encoding is checked byte for byte against what Debian's `nft` sends (`nft --debug=mnl`).

pub mod encode;
pub mod expr;
mod lower;
pub mod model;
pub mod rule;
mod socket;
pub mod wire;

#[cfg(test)]
mod mnl_oracle;
#[cfg(test)]
mod netns_tests;
#[cfg(test)]
mod oracle_tests;

pub use expr::{CmpOp, Verdict};
pub use model::{
    BaseChain, Chain, ChainType, Family, Hook, KeyType, Policy, Ruleset, Set, Table, Value,
};
pub use rule::{AddrField, CtState, Ipv4Net, KeyField, Match, PortField, Reject, Rule, Statement};

/// Errors while building or applying a rule set.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The rule set is not valid; nothing was sent.
    #[error("nftables {what}: {reason}")]
    Invalid {
        /// The table, chain, set or rule.
        what: String,
        /// Why.
        reason: String,
    },
    /// The netfilter netlink socket could not be opened.
    #[error("opening an nftables netlink socket: {0}")]
    Socket(#[source] std::io::Error),
    /// The batch could not be sent.
    #[error("sending the nftables batch ({len} bytes): {source}")]
    Send {
        /// Batch size.
        len: usize,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The kernel's answers could not be read.
    #[error("reading the kernel's answers to the nftables batch: {0}")]
    Receive(#[source] std::io::Error),
    /// The kernel's answer was not a valid netlink message.
    #[error("malformed netlink answer to the nftables batch: {0}")]
    Malformed(String),
    /// The kernel refused a message; the whole batch was rolled back.
    #[error("nftables: the kernel refused {what}: {source}{detail}")]
    Kernel {
        /// The table, chain, set or rule the refused message was about.
        what: String,
        /// The errno.
        #[source]
        source: std::io::Error,
        /// The kernel's extended-ack explanation, if any, as ` (text)`.
        detail: String,
    },
    /// The kernel neither acknowledged nor refused a message.
    #[error("nftables: the kernel did not acknowledge {what}")]
    NoAck {
        /// The message's description.
        what: String,
    },
}

/// Replaces the tables of `ruleset` in the calling thread's network namespace, atomically.
///
/// Blocks only for the duration of one `send` and the reads of the already queued answers
/// (the kernel handles the batch synchronously), so it may be called from async code.
pub fn apply(ruleset: &Ruleset) -> Result<(), Error> {
    let batch = encode::encode(ruleset, 0)?;
    socket::send(&batch)
}

/// Removes the given tables (family, name) if they exist, atomically; absent ones are fine.
pub fn remove(tables: &[(Family, &str)]) -> Result<(), Error> {
    let ruleset = Ruleset::new(
        tables
            .iter()
            .map(|(family, name)| Table::new(*family, name))
            .collect(),
    );
    socket::send(&encode::encode_removal(&ruleset, 0)?)
}
