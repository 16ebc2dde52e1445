//! The supervisor's task: a thin loop that waits for the next thing to happen (a command from
//! the handle, the result of work it started, a container's exit, a timer), hands it to the
//! decisions in [`super::reconcile`] and [`super::events`], then brings the network rules, the
//! image store and waiting `stop_all` callers up to date.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use super::effects::WorkDone;
use super::state::Driver;
use super::toolkit::{Toolkit, Unavailable};
use super::{Command, Paths, Snapshot};
use crate::board::console::Console;
use crate::containers::runtime;

/// What the driver waits on.
pub(super) struct Inputs {
    /// Commands from the [`super::Supervisor`] handle.
    pub(super) commands: mpsc::UnboundedReceiver<Command>,
    /// Results of the work the driver started.
    pub(super) work: mpsc::UnboundedReceiver<WorkDone>,
    /// The runtime's events, until it is lost.
    pub(super) exits: Option<mpsc::UnboundedReceiver<runtime::Event>>,
    /// Seccomp refusals (instance id, line), while the kernel's log is read.
    pub(super) denials: Option<mpsc::Receiver<(String, String)>>,
}

/// Runs the supervisor until the handle is gone.
pub(super) async fn run(
    paths: Paths,
    kit: Toolkit,
    commands: mpsc::UnboundedReceiver<Command>,
    snapshot: Arc<Snapshot>,
    console: Arc<Console>,
) {
    let (mut driver, mut inputs) = Driver::new(paths, kit, commands, snapshot, console);
    while driver.turn(&mut inputs).await {}
}

impl Driver {
    /// The driver with no services yet, and what it waits on. The first rule set (no services
    /// yet) is applied at once: if the kernel refuses it, no instance starts.
    pub(super) fn new(
        paths: Paths,
        mut kit: Toolkit,
        commands: mpsc::UnboundedReceiver<Command>,
        snapshot: Arc<Snapshot>,
        console: Arc<Console>,
    ) -> (Driver, Inputs) {
        let (work, results) = mpsc::unbounded_channel();
        let exits = kit.events.take();
        let denials = kit.denials.take();
        let mut driver = Driver {
            paths,
            kit,
            services: BTreeMap::new(),
            snapshot,
            work,
            next_uid: 1,
            stopping: Vec::new(),
            released: BTreeSet::new(),
            shutting_down: false,
            assignments: BTreeMap::new(),
            network_dirty: true,
            remote: super::Remote::default(),
            console,
        };
        driver.update_network();
        let inputs = Inputs {
            commands,
            work: results,
            exits,
            denials,
        };
        (driver, inputs)
    }

    /// Waits for one input and handles it; `false` once the handle is gone.
    pub(super) async fn turn(&mut self, inputs: &mut Inputs) -> bool {
        let next_timer = self.next_timer();
        let sleep = async {
            match next_timer {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let exit = async {
            match inputs.exits.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        let denial = async {
            match inputs.denials.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            command = inputs.commands.recv() => match command {
                Some(c) => self.command(c),
                None => return false,
            },
            Some(result) = inputs.work.recv() => self.work_done(result),
            event = exit => match event {
                Some(runtime::Event::Exit(exit)) => self.exited(exit),
                Some(runtime::Event::Lost(why)) => {
                    self.console.line(format_args!(
                        "supervisor: the container runtime is gone: {why}"
                    ));
                    self.kit.runtime = Err(Unavailable::RuntimeLost(why));
                    inputs.exits = None;
                    self.all_lost();
                }
                None => inputs.exits = None,
            },
            () = sleep => self.timers(),
            denied = denial => match denied {
                Some((instance, line)) => self.denied(&instance, &line),
                None => inputs.denials = None,
            },
        }
        self.finish_stop_all();
        self.collect_images();
        self.update_network();
        true
    }
}

/// The time the decisions go by: the runtime's clock, which tests pause and advance.
pub(super) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Wall-clock time for the API (ms since the Unix epoch).
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
