//! The control channel between the init and the front door: one `SOCK_SEQPACKET` socket, one
//! JSON message a datagram ([`frame`]), descriptors attached as `SCM_RIGHTS`. The messages and
//! their bounds are in [`protocol`] (checked in `check.rs`); the configuration, too large for a frame, travels as a
//! sealed memfd ([`snapshot`]).
//!
//! Either side treats the other as hostile: a frame that is too large, truncated, not one of
//! the messages, outside its bounds or with the wrong descriptors is an error, and an error
//! ends the connection (the caller closes it; the init then kills and restarts the child).

pub mod channel;
mod check;
pub mod frame;
pub mod protocol;
pub mod snapshot;

#[cfg(test)]
mod snapshot_tests;
#[cfg(test)]
mod tests;
