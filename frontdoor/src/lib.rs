//! The front door: the process that answers a board's HTTP and HTTPS routes and passes requests
//! to the instances of the services behind them (docs/design/front-door.md).
//!
//! The init runs it as a child of its own and keeps everything secret or lasting on its side
//! (the listening sockets, the cluster keys); the two talk over the [`control`] channel.
//!
//! A request goes through [`http`] (connections, limits, pages, headers; [`tls`] before it on
//! HTTPS), then [`proxy`]: its host and path normalised and its route found ([`route`]), an
//! instance chosen ([`upstream`]) or waited for ([`hold`]), the request passed on and the answer
//! streamed back. [`state`] is what every connection shares; [`config`] is the snapshot it is
//! built from.
//!
//! [`child`] is the front door as a process: the sandbox it enters and the control loop that
//! feeds the state and reports the load.

pub mod access;
pub mod child;
pub mod config;
pub mod control;
pub mod hold;
pub mod http;
pub mod identity;
pub mod idp;
pub mod outbound;
pub mod proxy;
pub mod route;
pub mod state;
pub mod tally;
pub mod tls;
pub mod upstream;
