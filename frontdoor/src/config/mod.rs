//! The configuration the front door runs: what a `Snapshot` carries ([`model`]), checked as it
//! arrives, and the tables built from it.

pub mod forward;
pub mod identity;
pub mod model;

pub use forward::ForwardAuth;
pub use model::{Auth, Cert, Hold, Route, Service, Settings, Snapshot};
