//! The real [`Services`]: how the subsystems are wired together once the boot sequence has
//! done its local steps. The uplink ([`net`]) and clock sync ([`sntp`]) start first, then the
//! API, then the supervisor and the cluster member. Each gets the handles it works with passed
//! down here: the API receives the supervisor and the cluster member over watch channels
//! (they start after it, so a board whose containers cannot start stays manageable), the
//! cluster member gets the supervisor and the power-request sender.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use baton_oci::registry::RegistryCa;
use baton_oci::{Credentials, RegistryOptions};
use baton_spec::board_config::RegistryConfig;
use baton_spec::NetworkConfig;
use tokio::sync::{mpsc, watch};

use crate::api;
use crate::board::card::CardStore;
use crate::board::context::Ctx;
use crate::board::sys::Action;
use crate::boot::services::{Services, StartError};
use crate::boot::{build_info, clock};
use crate::cluster::Node;
use crate::containers::supervisor::{Paths, Supervisor};
use crate::scaling::Scaler;
use crate::svcnet::subnet;
use crate::uplink::{self as net, sntp};

/// The real services, holding the running supervisor and cluster member for the API and for
/// shutdown.
#[derive(Debug)]
pub struct RealServices {
    supervisor: watch::Sender<Option<Supervisor>>,
    cluster: watch::Sender<Option<Arc<Node>>>,
    front_door: watch::Sender<Option<crate::frontdoor::Handle>>,
    scaler: watch::Sender<Option<Arc<Scaler>>>,
    card: std::sync::OnceLock<Arc<CardStore>>,
    /// The board's events, for the supervisor to raise and the API to serve.
    bus: Arc<crate::events::Bus>,
}

impl RealServices {
    /// Nothing started yet.
    pub fn new() -> RealServices {
        RealServices {
            supervisor: watch::Sender::new(None),
            cluster: watch::Sender::new(None),
            front_door: watch::Sender::new(None),
            scaler: watch::Sender::new(None),
            card: std::sync::OnceLock::new(),
            bus: Arc::default(),
        }
    }

    /// The card's specs and their store on the data partition (once it is mounted), shared by
    /// the API and the cluster member.
    fn card(&self, ctx: &Ctx) -> Arc<CardStore> {
        Arc::clone(self.card.get_or_init(|| {
            let data = ctx
                .state
                .info()
                .data
                .is_some()
                .then(|| ctx.path(crate::board::card::DIR));
            let (store, problem) = CardStore::open(services_dir(ctx), data);
            if let Some(problem) = problem {
                ctx.report(format_args!("card: {problem}"));
            }
            Arc::new(store)
        }))
    }
}

impl RealServices {
    /// Starts the front door's manager (it binds the ports at once and starts the process).
    fn start_front_door(
        &self,
        ctx: &Ctx,
        front_door: &baton_spec::FrontDoor,
        board: &str,
        supervisor: &Supervisor,
        cluster: Option<(&str, &str)>,
        scaler: &Arc<Scaler>,
    ) {
        let card = ctx.path(crate::boot::config::MOUNT_POINT);
        // The assertion key is derived here, in PID 1: only the derived key reaches the front
        // door, never the cluster key.
        let assertion = cluster.and_then(|(name, key)| {
            crate::frontdoor::identity::assertion_key(name, key)
                .map_err(|e| ctx.say(format_args!("front door: no identity assertion key: {e}")))
                .ok()
        });
        let ca = match crate::board::tls::load_ca(&card) {
            Ok(ca) => ca,
            Err(e) => {
                ctx.say(format_args!(
                    "front door: the cluster CA cannot be read: {e}"
                ));
                None
            }
        };
        let settings = crate::frontdoor::Settings {
            front_door: front_door.clone(),
            exe: std::path::PathBuf::from("/proc/self/exe"),
            root: ctx.root.clone(),
            card,
            board: board.to_string(),
            ca,
            data: crate::frontdoor::idp_cache::dir(&ctx.root),
            assertion,
            // Derived here, in PID 1: only the derived key reaches the front door.
            session_key: crate::frontdoor::session::key(cluster.map(|(_, key)| key))
                .map_err(|e| {
                    ctx.say(format_args!(
                        "front door: no sign-in cookie key ({e}): login routes answer 503"
                    ))
                })
                .ok(),
            scaler: Some(Arc::clone(scaler)),
        };
        let handle =
            crate::frontdoor::spawn(settings, supervisor.clone(), Arc::clone(&ctx.console));
        self.front_door.send_replace(Some(handle));
    }
}

impl Default for RealServices {
    fn default() -> RealServices {
        RealServices::new()
    }
}

impl Services for RealServices {
    type Network = net::Network;

    async fn start_network(
        &self,
        ctx: &Arc<Ctx>,
        config: &NetworkConfig,
        hostname: &str,
    ) -> Result<net::Network, StartError> {
        let options = net::Options::under(&ctx.root);
        let state = Arc::clone(&ctx.state);
        let console = Arc::clone(&ctx.console);
        Ok(net::start(config, hostname, state, console, options).await?)
    }

    fn start_time_sync(&self, ctx: &Arc<Ctx>, servers: Vec<String>, network: &net::Network) {
        let console = Arc::clone(&ctx.console);
        let status = Arc::clone(&ctx.state);
        let floor = clock::floor(ctx, build_info::built_at(ctx));
        tokio::spawn(sntp::run(
            servers,
            network.ntp_servers(),
            floor,
            console,
            status,
        ));
    }

    fn start_api(
        &self,
        ctx: &Arc<Ctx>,
        config: &crate::boot::config::BootConfig,
        power: mpsc::Sender<Action>,
    ) -> Result<(), StartError> {
        let config_dir = ctx.path(crate::boot::config::MOUNT_POINT);
        let tls = api::tls::setup(&config_dir, &ctx.state, &ctx.console);
        Ok(api::spawn(api::Handles {
            state: Arc::clone(&ctx.state),
            console: Arc::clone(&ctx.console),
            power,
            services_dir: services_dir(ctx),
            card: self.card(ctx),
            running: api::Running {
                supervisor: self.supervisor.subscribe(),
                cluster: self.cluster.subscribe(),
                front_door: self.front_door.subscribe(),
                scaler: self.scaler.subscribe(),
            },
            tls,
            front_door: Arc::new(config.front_door.clone()),
            bus: Arc::clone(&self.bus),
            peer_key: config
                .cluster
                .as_ref()
                .map(|c| crate::cluster::peer_read::key(&c.key).into()),
            dashboard: Default::default(),
        })?)
    }

    async fn stop_network(&self, network: net::Network) {
        network.stop().await;
    }

    async fn start_containers(
        &self,
        ctx: &Arc<Ctx>,
        data_mounted: bool,
        config: &crate::boot::config::BootConfig,
        power: &mpsc::Sender<Action>,
    ) {
        // Before anything reads the card: repair what a power cut left half-written.
        let card = self.card(ctx);
        let reconciled = card.reconcile();
        for note in &reconciled.notes {
            ctx.say(format_args!("card: {note}"));
        }
        ctx.state
            .update_info(|i| i.card_repairs = reconciled.repairs.clone());
        let mut board = Paths::board(&ctx.root, data_mounted);
        board.disk_quotas = match ctx.state.info().data {
            Some(d) if d.disk_quotas => Ok(()),
            Some(d) => Err(d.disk_quotas_missing.unwrap_or_default()),
            None => Err("no data partition".to_string()),
        };
        let registries = registry_options(&config.registries, &board.config);
        for (host, options) in registries.iter() {
            if let Some(RegistryCa { file, pem: Err(e) }) = &options.ca {
                ctx.say(format_args!(
                    "services: registry {host}: CA file {}: {e}; pulls from it will fail",
                    file.display()
                ));
            }
        }
        // The host name the boot step set.
        let board_name = Some(ctx.state.info().hostname)
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "baton".to_string());
        let state_dir = data_mounted.then(|| ctx.path("/data/cluster"));
        // In a cluster every board has its own container subnet, routed over the mesh.
        let subnet = match &config.cluster {
            Some(_) => subnet::load_or_choose(state_dir.as_deref(), &board_name, &ctx.console),
            None => subnet::STANDALONE,
        };
        let front_door = &config.front_door;
        let paths = Paths {
            registries: Arc::new(registries),
            subnet,
            board_tcp_ports: vec![front_door.http, front_door.https],
            ..board
        };
        self.bus.set_board(&board_name);
        let (supervisor, notes) =
            Supervisor::start(paths, Arc::clone(&ctx.console), Arc::clone(&self.bus)).await;
        for note in notes {
            ctx.say(format_args!("services: {note}"));
        }
        self.supervisor.send_replace(Some(supervisor.clone()));
        let cluster_key = config
            .cluster
            .as_ref()
            .map(|c| (c.name.as_str(), c.key.as_str()));
        // Surge dates are calendar days in the cluster's time zone (UTC on a board alone).
        let timezone = config
            .cluster
            .as_ref()
            .map(|c| c.timezone.clone())
            .unwrap_or_default();
        let scaler = Scaler::new(timezone, Arc::clone(&ctx.console), Arc::clone(&self.bus));
        tokio::spawn(Arc::clone(&scaler).run());
        self.scaler.send_replace(Some(Arc::clone(&scaler)));
        tokio::spawn(crate::scaling::sources::run(
            Arc::clone(&scaler),
            supervisor.clone(),
        ));
        self.start_front_door(
            ctx,
            front_door,
            &board_name,
            &supervisor,
            cluster_key,
            &scaler,
        );
        let Some(cluster) = &config.cluster else {
            let specs = crate::boot::config::load_service_files(ctx, &reconciled.files, front_door);
            tokio::spawn(crate::scaling::alone::run(
                Arc::clone(&scaler),
                supervisor.clone(),
                specs,
            ));
            return;
        };
        let counter_dir = data_mounted.then(|| ctx.path(crate::board::persist::DIR));
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
            bus: Arc::clone(&self.bus),
            card,
            state_dir,
            subnet,
            generation: crate::cluster::next_generation(counter_dir.as_deref(), &ctx.console),
            counter_dir,
            front_door: config.front_door.clone(),
            api_port: crate::api::PORT,
            tls: sync_tls(ctx),
            power: power.clone(),
            console: Arc::clone(&ctx.console),
            scaler,
        };
        // The member waits for its interface to have an address: it starts in the background.
        let state = Arc::clone(&ctx.state);
        let running = self.cluster.clone();
        let console = Arc::clone(&ctx.console);
        tokio::spawn(async move {
            match Node::start(settings, supervisor, state).await {
                Ok(node) => {
                    running.send_replace(Some(node));
                }
                Err(e) => console.line(e),
            }
        });
    }

    async fn stop_containers(&self, _ctx: &Ctx) {
        let node = self.cluster.borrow().clone();
        if let Some(node) = node {
            node.shutdown().await;
        }
        let supervisor = self.supervisor.borrow().clone();
        if let Some(supervisor) = supervisor {
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

/// The client side of TLS to other boards' APIs, trusting the cluster CA on the config
/// partition; `None` without one (the API then speaks plain HTTP too, see [`api::tls::setup`]).
fn sync_tls(ctx: &Ctx) -> Option<Arc<rustls::ClientConfig>> {
    let ca = crate::board::tls::load_ca(&ctx.path(crate::boot::config::MOUNT_POINT))
        .ok()
        .flatten()?;
    match baton_cluster::tls::verify::client_config(ca.cert_pem()) {
        Ok(config) => Some(config),
        Err(e) => {
            ctx.say(format_args!("cluster: TLS to other boards: {e}"));
            None
        }
    }
}

/// The config partition's `services/` directory, where specs are read and written.
fn services_dir(ctx: &Ctx) -> std::path::PathBuf {
    ctx.path(crate::boot::config::MOUNT_POINT)
        .join(baton_spec::service::SERVICES_DIR)
}
