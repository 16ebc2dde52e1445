//! The long-running services the boot sequence starts last (network, SNTP, API, the
//! supervisor and its containers), behind a
//! trait so the boot sequence can be tested without touching the host's network.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use baton_oci::registry::RegistryCa;
use baton_oci::{Credentials, RegistryOptions};
use baton_spec::cluster::RegistryConfig;
use baton_spec::NetworkConfig;
use tokio::sync::mpsc;

use crate::api;
use crate::board::context::Ctx;
use crate::board::status::State;
use crate::containers::supervisor::{Paths, Supervisor};
use crate::power::Action;
use crate::uplink::{self as net, sntp};

/// A service failed to start.
pub type StartError = Box<dyn StdError + Send + Sync>;

/// What the boot sequence starts after the local steps, and what shutdown stops.
pub trait Services {
    /// The running network, stopped at shutdown.
    type Network;
    /// Brings up networking.
    fn start_network(
        &self,
        config: &NetworkConfig,
        hostname: &str,
        state: Arc<State>,
    ) -> impl Future<Output = Result<Self::Network, StartError>>;
    /// Starts clock synchronisation in the background.
    fn start_time_sync(&self, servers: Vec<String>, network: &Self::Network, state: Arc<State>);
    /// Starts the HTTP API in the background.
    fn start_api(&self, state: Arc<State>, power: mpsc::Sender<Action>) -> Result<(), StartError>;
    /// Stops networking (releases DHCP leases).
    fn stop_network(&self, network: Self::Network) -> impl Future<Output = ()>;
    /// Starts the supervisor, then the cluster member that hands it the services (or, without a
    /// valid `cluster.toml`, the services of the config partition directly).
    fn start_containers(
        &self,
        ctx: &Arc<Ctx>,
        data_mounted: bool,
        config: &crate::boot::config::BootConfig,
    ) -> impl Future<Output = ()>;
    /// Stops every service gracefully.
    fn stop_containers(&self, ctx: &Ctx) -> impl Future<Output = ()>;
}

/// The real services: [`net`], [`sntp`] and [`api`].
#[derive(Debug, Default, Clone, Copy)]
pub struct RealServices;

impl Services for RealServices {
    type Network = net::Network;

    async fn start_network(
        &self,
        config: &NetworkConfig,
        hostname: &str,
        state: Arc<State>,
    ) -> Result<net::Network, StartError> {
        Ok(net::start(config, hostname, state).await?)
    }

    fn start_time_sync(&self, servers: Vec<String>, network: &net::Network, state: Arc<State>) {
        tokio::spawn(sntp::run(servers, network.ntp_servers(), state));
    }

    fn start_api(&self, state: Arc<State>, power: mpsc::Sender<Action>) -> Result<(), StartError> {
        Ok(api::spawn(state, power)?)
    }

    async fn stop_network(&self, network: net::Network) {
        network.stop().await;
    }

    async fn start_containers(
        &self,
        ctx: &Arc<Ctx>,
        data_mounted: bool,
        config: &crate::boot::config::BootConfig,
    ) {
        let board = Paths::board(data_mounted);
        let registries = registry_options(&config.registries, &board.config);
        for (host, options) in registries.iter() {
            if let Some(RegistryCa { file, pem: Err(e) }) = &options.ca {
                ctx.say(format_args!(
                    "services: registry {host}: CA file {}: {e}; pulls from it will fail",
                    file.display()
                ));
            }
        }
        let board_name = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "baton".to_string());
        let state_dir = data_mounted.then(|| PathBuf::from("/data/cluster"));
        // In a cluster every board has its own container subnet, routed over the mesh.
        let subnet = match &config.cluster {
            Some(_) => crate::svcnet::subnet::load_or_choose(state_dir.as_deref(), &board_name),
            None => crate::svcnet::subnet::STANDALONE,
        };
        let paths = Paths {
            registries: Arc::new(registries),
            subnet,
            ..board
        };
        let (supervisor, notes) = Supervisor::start(paths).await;
        for note in notes {
            ctx.say(format_args!("services: {note}"));
        }
        ctx.state.set_supervisor(supervisor.clone());
        let Some(cluster) = &config.cluster else {
            for spec in crate::boot::config::load_services(ctx) {
                supervisor.apply(spec);
            }
            return;
        };
        let settings = crate::cluster::Settings {
            cluster: cluster.name.clone(),
            key: cluster.key.clone(),
            board: board_name,
            labels: cluster.labels.clone(),
            // `[cluster] interface` wins over the one a runner names on the kernel command line.
            interface: cluster.interface.clone().or_else(|| {
                let cmdline =
                    std::fs::read_to_string(ctx.path("/proc/cmdline")).unwrap_or_default();
                crate::cluster::interface_from_cmdline(&cmdline)
            }),
            services_dir: Path::new(crate::boot::config::MOUNT_POINT)
                .join(baton_spec::service::SERVICES_DIR),
            state_dir,
            subnet,
            generation: crate::cluster::next_generation(data_mounted),
            api_port: crate::api::PORT,
        };
        // The member waits for its interface to have an address: it starts in the background.
        let state = Arc::clone(&ctx.state);
        tokio::spawn(async move {
            match crate::cluster::Node::start(settings, supervisor, Arc::clone(&state)).await {
                Ok(node) => state.set_cluster(node),
                Err(e) => eprintln!("baton: {e}"),
            }
        });
    }

    async fn stop_containers(&self, ctx: &Ctx) {
        if let Some(node) = ctx.state.cluster() {
            node.shutdown().await;
        }
        if let Some(supervisor) = ctx.state.supervisor() {
            supervisor.stop_all().await;
        }
    }
}

/// The `[registries]` of `cluster.toml` as the registry client takes them, with each `ca` file read
/// from `config_dir` (the config partition). A file that cannot be read is kept as an error, which
/// every pull from that registry reports with the file's path.
fn registry_options(
    registries: &BTreeMap<String, RegistryConfig>,
    config_dir: &Path,
) -> BTreeMap<String, RegistryOptions> {
    registries
        .clone()
        .into_iter()
        .map(|(host, r)| {
            let credentials = match (r.username, r.password) {
                (Some(username), Some(password)) => Some(Credentials { username, password }),
                _ => None,
            };
            (
                host,
                RegistryOptions {
                    credentials,
                    insecure: r.insecure,
                    ca: r.ca.map(|ca| RegistryCa::read(&config_dir.join(ca))),
                },
            )
        })
        .collect()
}
