//! The supervisor's task: the only owner of services, instances, addresses and timers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use super::reconcile::Driver;
use super::toolkit::Toolkit;
use super::{Command, Paths, Snapshot};
use crate::containers::runtime::{self, Runtime};
use crate::svcnet::network::Network;

pub(super) async fn run(
    paths: Paths,
    kit: Toolkit,
    mut commands: mpsc::UnboundedReceiver<Command>,
    snapshot: Arc<Snapshot>,
) {
    let (work, mut results) = mpsc::unbounded_channel();
    let mut exits = kit.runtime.as_ref().ok().and_then(Runtime::events);
    let mut d = Driver {
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
        network: None,
        network_dirty: true,
        remote: super::Remote::default(),
    };
    if let Ok(bridge) = &d.kit.bridge {
        let (network, note) = Network::start(bridge.subnet(), bridge.gateway()).await;
        if let Some(note) = note {
            eprintln!("baton: services: {note}");
        }
        d.network = Some(network);
        // The first rule set (no services yet): if the kernel refuses it, no instance starts.
        d.update_network();
    }
    loop {
        let next_timer = d.next_timer();
        let sleep = async {
            match next_timer {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let exit = async {
            match exits.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            command = commands.recv() => match command {
                Some(c) => d.command(c),
                None => return,
            },
            Some(result) = results.recv() => d.work_done(result),
            event = exit => match event {
                Some(runtime::Event::Exit(exit)) => d.exited(exit),
                Some(runtime::Event::Lost(why)) => {
                    eprintln!("baton: supervisor: the container runtime is gone: {why}");
                    d.kit.runtime = Err(format!("the container runtime stopped: {why}"));
                    exits = None;
                    d.all_lost();
                }
                None => exits = None,
            },
            () = sleep => d.timers(),
        }
        d.finish_stop_all();
        d.collect_images();
        d.update_network();
    }
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
