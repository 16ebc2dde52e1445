//! `GET /metrics`: the board's figures in the Prometheus formats (see
//! `docs/design/observability.md`, section 1).
//!
//! Nothing is kept between scrapes: a scrape reads the figures from where they already live
//! ([`collect`]: `/proc`, the instances' cgroups, the supervisor, the scaler, the cluster view)
//! into a [`Snapshot`], and [`render`] writes it in OpenMetrics or in the 0.0.4 text format.
//! File reads are bounded and run off the runtime thread.

pub mod collect;
pub mod now;
pub mod render;
mod render_frontdoor;
mod render_network;
#[cfg(test)]
mod render_tests;
pub mod snapshot;
pub mod sources;

pub use snapshot::Snapshot;
