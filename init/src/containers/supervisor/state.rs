//! The driver's state: every service with its instances, and what the driver keeps between inputs.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use baton_oci::PreparedImage;
use baton_spec::service::ServiceSpec;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::effects::WorkDone;
use super::instance::Instance;
use super::logs::ServiceLog;
use super::toolkit::Toolkit;
use super::{Paths, Snapshot};
use crate::board::console::Console;
use crate::svcnet::publish::Published;

/// The service's port could not be published.
#[derive(Debug, thiserror::Error)]
#[error("cannot publish port {port}: {source}")]
pub struct PublishError {
    /// The board port.
    pub port: u16,
    /// The cause.
    pub source: std::io::Error,
}

/// Identifies one incarnation of one instance; stale results carry an old `uid`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Key {
    /// The service.
    pub(super) service: String,
    /// The instance's number (1-based).
    pub(super) slot: u32,
    /// Which incarnation of the instance.
    pub(super) uid: u64,
}

/// One instance of a service, in its current incarnation.
pub(super) struct Slot {
    /// Which incarnation.
    pub(super) uid: u64,
    /// The service generation it runs.
    pub(super) generation: u64,
    /// Its state machine.
    pub(super) machine: Instance,
    /// Its address on the bridge, while it has one.
    pub(super) address: Option<Ipv4Addr>,
    /// Its network namespace, while it has one.
    pub(super) netns: Option<PathBuf>,
    /// When the current run started (ms since the Unix epoch).
    pub(super) started_ms: Option<u64>,
    /// When the launch under way began.
    pub(super) launched_at: Option<Instant>,
    /// How long the last start took, in ms.
    pub(super) start_ms: Option<u64>,
    /// The health check task of the current run.
    pub(super) health: Option<JoinHandle<()>>,
    /// Replace with a fresh instance when this one is released (restart, rollout).
    pub(super) replace: bool,
    /// When its machine wants [`super::instance::Event::Timer`].
    pub(super) timer: Option<Instant>,
    /// Whether it is frozen, or being frozen or thawed.
    pub(super) freeze: super::freezing::Freeze,
}

/// One service: its spec, its instances and what they share.
pub(super) struct ServiceState {
    /// The spec in force.
    pub(super) spec: Arc<ServiceSpec>,
    /// Counts the spec changes that replace instances (rollouts).
    pub(super) generation: u64,
    /// The image prepared for a generation, reused by its later launches.
    pub(super) image: Option<(u64, Arc<PreparedImage>)>,
    /// Its instances' output.
    pub(super) log: Arc<ServiceLog>,
    /// Its instances, by number.
    pub(super) slots: BTreeMap<u32, Slot>,
    /// Its published board port, once open.
    pub(super) published: Option<Published>,
    /// Why its port is not published.
    pub(super) error: Option<PublishError>,
    /// Removed: its instances stop, then it is forgotten.
    pub(super) removing: bool,
    /// The instances placement gave this board; `None` means 1 to `scale.min`.
    pub(super) assigned: Option<BTreeSet<u32>>,
    /// The instances to keep frozen (`scale.idle = "freeze"`), as last asked.
    pub(super) frozen: BTreeSet<u32>,
}

/// Everything the supervisor's task owns.
pub(super) struct Driver {
    /// Where things are.
    pub(super) paths: Paths,
    /// What it drives.
    pub(super) kit: Toolkit,
    /// Every service, by name.
    pub(super) services: BTreeMap<String, ServiceState>,
    /// What the handle reads.
    pub(super) snapshot: Arc<Snapshot>,
    /// Where background work reports back.
    pub(super) work: mpsc::UnboundedSender<WorkDone>,
    /// The next incarnation's `uid`.
    pub(super) next_uid: u64,
    /// `stop_all` callers waiting for every service to be gone.
    pub(super) stopping: Vec<oneshot::Sender<()>>,
    /// Images (by spec text) that a service stopped using; collected once no rollout is running.
    pub(super) released: BTreeSet<String>,
    /// Set by `StopAll`: services stop because the board does, so their images stay.
    pub(super) shutting_down: bool,
    /// Placement's slots per service, also for services not applied yet.
    pub(super) assignments: BTreeMap<String, Option<BTreeSet<u32>>>,
    /// Services or instances changed since the rules were last rebuilt.
    pub(super) network_dirty: bool,
    /// The other boards' instances and the mesh to them.
    pub(super) remote: super::Remote,
    /// Where it reports what an operator should see.
    pub(super) console: Arc<Console>,
}

impl Driver {
    /// Instance `slot` of service `name`.
    pub(super) fn slot_mut(&mut self, name: &str, slot: u32) -> Option<&mut Slot> {
        self.services.get_mut(name)?.slots.get_mut(&slot)
    }

    /// The key of instance `slot` of service `name` as it is now.
    pub(super) fn key(&self, name: &str, slot: u32) -> Option<Key> {
        let s = self.services.get(name)?.slots.get(&slot)?;
        Some(Key {
            service: name.to_string(),
            slot,
            uid: s.uid,
        })
    }

    /// Whether `key` is the instance's current incarnation (not a stale one).
    pub(super) fn current(&self, key: &Key) -> bool {
        self.key(&key.service, key.slot).as_ref() == Some(key)
    }

    /// The container id of instance `slot` of service `name`.
    pub(super) fn id(name: &str, slot: u32) -> String {
        format!("{name}-{slot}")
    }
}
