//! DHCPv4 client (RFC 2131): message building and parsing over `dhcproto`, and the client
//! state machine as a pure function of (state, event, now).

pub mod machine;
pub mod message;
pub mod socket;
pub mod wire;

pub use machine::{Action, Client, Destination, Event, Lease};
pub use message::Identity;
