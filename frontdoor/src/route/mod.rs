//! Which route a request takes: the request's host and path made canonical ([`normalize`]),
//! then looked up in the snapshot's route table ([`table`]).
//!
//! The order matters: the table only ever sees normalised input, and the normalised path is
//! also what goes upstream, so the route decision and the upstream's view of the path cannot
//! differ (`/pub/../admin` is `/admin` for both). Pure code, no I/O.

pub mod normalize;
pub mod table;

pub use normalize::{Bad, Normal};
pub use table::Table;

#[cfg(test)]
mod tests;
