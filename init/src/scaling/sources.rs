//! The load PID 1 measures itself, besides the front door's reports: the connections the
//! activator holds for services at zero (and the wakes it asks for), and the calls in flight to
//! services' virtual IPs (from the kernel's connection tracking).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use super::{Scaler, Source};
use crate::containers::supervisor::Supervisor;

/// How often the counts are read.
const PERIOD: Duration = Duration::from_secs(1);

/// Feeds the scaler until the board stops.
pub async fn run(scaler: Arc<Scaler>, supervisor: Supervisor) {
    let mut wakes = supervisor.take_wakes();
    let mut failed = None;
    let mut every = tokio::time::interval(PERIOD);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            Some(service) = async {
                match wakes.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                // A frozen instance here thaws at once; the scaler's decision follows.
                supervisor.thaw(&service);
                scaler.wake(Source::Activator, &service);
            }
            _ = every.tick() => {
                let held = supervisor.activator_held();
                // Connections waiting are load, as requests in flight are.
                let period = PERIOD.as_millis() as u64;
                let load = held.iter().map(|(s, n)| (s.clone(), u64::from(*n) * period)).collect();
                scaler.record(super::now_ms(), period, &load);
                scaler.held(Source::Activator, held);
                vip_calls(&scaler, &supervisor, &mut failed).await;
            }
        }
    }
}

/// Counts the calls in flight to each service's virtual IP and records them as its load: a
/// connection that carried a packet in the last seconds counts for the whole period.
async fn vip_calls(scaler: &Scaler, supervisor: &Supervisor, failed: &mut Option<String>) {
    let dumped = tokio::task::spawn_blocking(|| {
        crate::svcnet::conntrack::dump_active(&crate::svcnet::dns::DEFAULT_SUBNET)
    })
    .await;
    let active = match dumped {
        Ok(Ok(active)) => {
            *failed = None;
            active
        }
        Ok(Err(e)) => {
            // Said once until it changes: the front door's counts still drive scaling.
            let e = e.to_string();
            if failed.as_ref() != Some(&e) {
                scaler.note(format!("calls between services are not counted: {e}"));
                *failed = Some(e);
            }
            return;
        }
        Err(_) => return,
    };
    let vips: BTreeMap<Ipv4Addr, String> = supervisor
        .network()
        .services
        .into_iter()
        .filter_map(|s| Some((s.vip?, s.name)))
        .collect();
    let period = PERIOD.as_millis() as u64;
    let mut inflight_ms: BTreeMap<String, u64> = BTreeMap::new();
    for (destination, count) in &active.by_destination {
        if let Some(service) = vips.get(destination.ip()) {
            let sum = inflight_ms.entry(service.clone()).or_default();
            *sum = sum.saturating_add(u64::from(*count) * period);
        }
    }
    scaler.record(super::now_ms(), period, &inflight_ms);
}
