//! What the boot sequence starts after its local steps (network, clock sync, API, containers)
//! and what shutdown stops, behind a trait: the boot sequence is tested with a fake, and the
//! real implementation at the top of the crate ([`crate::services`]) wires the subsystems
//! together.

use std::error::Error as StdError;
use std::future::Future;
use std::sync::Arc;

use baton_spec::NetworkConfig;
use tokio::sync::mpsc;

use crate::board::context::Ctx;
use crate::board::sys::Action;

/// A service failed to start.
pub type StartError = Box<dyn StdError + Send + Sync>;

/// What the boot sequence starts after the local steps, and what shutdown stops.
pub trait Services {
    /// The running network, stopped at shutdown.
    type Network;
    /// Brings up networking.
    fn start_network(
        &self,
        ctx: &Arc<Ctx>,
        config: &NetworkConfig,
        hostname: &str,
    ) -> impl Future<Output = Result<Self::Network, StartError>>;
    /// Starts clock synchronisation in the background.
    fn start_time_sync(&self, ctx: &Arc<Ctx>, servers: Vec<String>, network: &Self::Network);
    /// Starts the HTTP API in the background.
    fn start_api(
        &self,
        ctx: &Arc<Ctx>,
        config: &crate::boot::config::BootConfig,
        power: mpsc::Sender<Action>,
    ) -> Result<(), StartError>;
    /// Stops networking (releases DHCP leases).
    fn stop_network(&self, network: Self::Network) -> impl Future<Output = ()>;
    /// Starts the supervisor, then the cluster member that hands it the services (or, without a
    /// valid `cluster.toml`, the services of the config partition directly).
    fn start_containers(
        &self,
        ctx: &Arc<Ctx>,
        data_mounted: bool,
        config: &crate::boot::config::BootConfig,
        power: &mpsc::Sender<Action>,
    ) -> impl Future<Output = ()>;
    /// Stops every service gracefully.
    fn stop_containers(&self, ctx: &Ctx) -> impl Future<Output = ()>;
}
