//! The front door: the process that answers a board's HTTP and HTTPS routes and passes requests
//! to the instances of the services behind them (docs/design/front-door.md).
//!
//! The init runs it as a child of its own and keeps everything secret or lasting on its side
//! (the listening sockets, the cluster keys); the two talk over the [`control`] channel. The
//! [`upstream`] balancer and the [`hold`] queues are what the proxy asks where a request goes.

pub mod config;
pub mod control;
pub mod hold;
pub mod upstream;
