//! The supervisor's decisions against fakes of the runtime, the bridge, the image store, the
//! rules and the health probes. A test steps the driver itself, on tokio's paused clock: time
//! moves only when nothing is left to do but wait for a timer, so backoffs are exact.

mod events;
mod fakes;
mod frozen;
mod image_files;
mod output;
mod plan;
mod readiness;
mod scenarios;

use std::sync::Arc;
use std::time::Duration;

use baton_spec::service::ServiceSpec;
use tokio::sync::mpsc;

use super::driver::Inputs;
use super::state::Driver;
use super::toolkit::Toolkit;
use super::{Paths, ServiceView, Snapshot, Supervisor};
use crate::svcnet::bridge::Pool;
use crate::svcnet::network::Network;
use crate::svcnet::nft::Ipv4Net;
use fakes::{Calls, FakeImages, FakeLinks, FakeProbes, FakeRules, FakeRuntime};

/// Longest a test waits for something, on the paused clock.
const PATIENCE: Duration = Duration::from_secs(3600);

/// A board with the supervisor's driver and fakes of everything it drives.
struct Board {
    driver: Driver,
    inputs: Inputs,
    handle: Supervisor,
    calls: Arc<Calls>,
    runtime: Arc<FakeRuntime>,
    rules: Arc<FakeRules>,
    probes: Arc<FakeProbes>,
    /// Seccomp refusals as the kernel-log reader hands them on.
    denied: mpsc::Sender<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Board {
    /// A board whose kernel refuses rule sets if `refuse_rules`.
    fn new(refuse_rules: bool) -> Board {
        let dir = tempfile::tempdir().expect("temp dir");
        // A documentation subnet: nothing on a test host uses it.
        let subnet = Ipv4Net::new(std::net::Ipv4Addr::new(192, 0, 2, 0), 24);
        let paths = Paths {
            subnet,
            ..Paths::board(dir.path(), false)
        };
        let calls = Arc::new(Calls::default());
        let (events, exits) = mpsc::unbounded_channel();
        let (denied, denials) = mpsc::channel(8);
        let runtime = Arc::new(FakeRuntime {
            calls: Arc::clone(&calls),
            events,
            failing_runs: Default::default(),
            runs: Default::default(),
            frozen: Default::default(),
            refuse_freeze: Default::default(),
            refuse_thaw: Default::default(),
        });
        let rules = Arc::new(FakeRules::default());
        rules
            .refuse
            .store(refuse_rules, std::sync::atomic::Ordering::SeqCst);
        let probes = Arc::new(FakeProbes::default());
        let pool = Pool::new(subnet).expect("pool");
        let kit = Toolkit {
            runtime: Ok(runtime.clone()),
            events: Some(exits),
            denials: Some(denials),
            bridge: Ok(Arc::new(FakeLinks {
                calls: Arc::clone(&calls),
            })),
            network: Some(Network::offline(subnet, pool.gateway(), paths.host.clone())),
            pool: Some(pool),
            store: Ok(Arc::new(FakeImages {
                calls: Arc::clone(&calls),
            })),
            rules: rules.clone(),
            probes: probes.clone(),
        };
        let snapshot = Arc::new(Snapshot::default());
        let (commands, rx) = mpsc::unbounded_channel();
        let console = Arc::new(crate::board::console::Console::quiet(1000));
        let (driver, inputs) = Driver::new(paths, kit, rx, Arc::clone(&snapshot), console);
        Board {
            driver,
            inputs,
            handle: Supervisor {
                commands,
                snapshot,
                ids: Arc::new(crate::containers::supervisor::ids::UserIds::new(
                    std::path::PathBuf::from("/nonexistent/ids.json"),
                )),
            },
            calls,
            runtime,
            rules,
            probes,
            denied,
            _dir: dir,
        }
    }

    /// Steps the driver until `done` holds; fails the test if it does not within [`PATIENCE`].
    async fn until(&mut self, what: &str, done: impl Fn(&Board) -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !done(self) {
            let turn = tokio::time::timeout_at(deadline, self.driver.turn(&mut self.inputs));
            match turn.await {
                Ok(true) => {}
                Ok(false) => panic!("the handle is gone while waiting for {what}"),
                Err(_) => panic!(
                    "no {what} within {PATIENCE:?}; service views: {:?}; calls: {:?}",
                    self.handle.services(),
                    self.calls.all()
                ),
            }
        }
    }

    /// Steps the driver until nothing happens for a minute (paused clock): every launch, exit
    /// and timer so far has been dealt with.
    async fn quiet(&mut self) {
        while let Ok(alive) =
            tokio::time::timeout(Duration::from_secs(60), self.driver.turn(&mut self.inputs)).await
        {
            assert!(alive, "the handle is gone");
        }
    }

    /// Service `name`'s view.
    fn view(&self, name: &str) -> ServiceView {
        self.handle
            .service(name)
            .unwrap_or_else(|| panic!("no service {name}"))
    }

    /// The ids of service `name`'s instances whose state is `state`.
    fn instances(&self, name: &str, state: &str) -> Vec<String> {
        self.handle
            .service(name)
            .map(|v| {
                v.instances
                    .into_iter()
                    .filter(|i| phase(i.state) == state)
                    .map(|i| i.id)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// An instance state as the API spells it.
fn phase(p: baton_api::InstancePhase) -> String {
    p.as_str().to_string()
}

/// A service spec: `name`, an archive image, port 8080 and `extra` TOML lines.
fn spec(name: &str, extra: &str) -> ServiceSpec {
    let text = format!(
        "name = \"{name}\"\nimage = \"oci-archive:images/{name}.tar\"\nport = 8080\n{extra}"
    );
    ServiceSpec::parse(&format!("services/{name}.toml"), &text).expect("valid spec")
}
