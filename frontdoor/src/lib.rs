//! The front door: the process that answers a board's HTTP and HTTPS routes and passes requests
//! to the instances of the services behind them (docs/design/front-door.md).
//!
//! The init runs it as a child of its own and keeps everything secret or lasting on its side
//! (the listening sockets, the cluster keys); the two talk over the [`control`] channel. So far
//! the crate holds that channel, the snapshot it carries ([`config`]), the choice of a route
//! for a request ([`route`]), and the [`upstream`] balancer and [`hold`] queues that say where
//! a request goes.

pub mod config;
pub mod control;
pub mod hold;
pub mod route;
pub mod upstream;
