//! What happened: the results of the work the driver started, and the containers that ended.

use std::sync::Arc;

use super::driver::{now, now_ms};
use super::effects::WorkDone;
use super::instance::{Event, ExitStatus, Phase};
use super::logs::Stream;
use super::state::{Driver, Key};
use crate::containers::runtime;

impl Driver {
    /// Work the driver started has finished: tell the instance, if it is still the same one.
    pub(super) fn work_done(&mut self, result: WorkDone) {
        match result {
            WorkDone::Launched(key, result) => {
                if !self.current(&key) {
                    return;
                }
                let Key { service, slot, .. } = key.clone();
                match result {
                    Ok(launched) => {
                        let generation = self.services.get(&service).map_or(0, |s| s.generation);
                        let health = self.health_task(&key);
                        if let Some(svc) = self.services.get_mut(&service) {
                            svc.image = Some((generation, launched.image));
                        }
                        if let Some(s) = self.slot_mut(&service, slot) {
                            s.netns = launched.netns;
                            s.started_ms = Some(now_ms());
                            s.start_ms = s
                                .launched_at
                                .take()
                                .map(|t| now().saturating_duration_since(t).as_millis() as u64);
                            s.health = health;
                        }
                        self.feed(&service, slot, Event::Started);
                    }
                    Err(error) => {
                        let message = error.to_string();
                        self.console
                            .line(format_args!("{service}-{slot}: start failed: {message}"));
                        if let Some(svc) = self.services.get(&service) {
                            svc.log.push(
                                &Self::id(&service, slot),
                                Stream::Stderr,
                                &format!("baton: start failed: {message}"),
                            );
                        }
                        self.free_network(&service, slot);
                        self.feed(&service, slot, Event::StartFailed(message));
                    }
                }
                self.settle(&service);
            }
            WorkDone::Cleaned(key, status) => {
                if !self.current(&key) {
                    return;
                }
                self.free_network(&key.service, key.slot);
                if let Some(s) = self.slot_mut(&key.service, key.slot) {
                    s.started_ms = None;
                    s.freeze = Default::default();
                    if let Some(h) = s.health.take() {
                        h.abort();
                    }
                }
                self.feed(&key.service, key.slot, Event::Exited(status));
                self.settle(&key.service);
            }
            WorkDone::Froze {
                key,
                op,
                frozen,
                result,
            } => self.froze(&key, op, frozen, result),
            WorkDone::Freed(address) => {
                if let Some(pool) = self.kit.pool.as_mut() {
                    pool.release(address);
                }
            }
            WorkDone::Health(key, ok) => {
                if self.current(&key) && !self.is_frozen(&key) {
                    self.feed(&key.service, key.slot, Event::Health(ok));
                    self.settle(&key.service);
                }
            }
        }
    }

    /// The kernel refused a call of `instance`'s: say so in its service's log.
    pub(super) fn denied(&mut self, instance: &str, line: &str) {
        let service = instance.rsplit_once('-').map_or(instance, |(name, _)| name);
        if let Some(svc) = self.services.get(service) {
            svc.log
                .push(instance, Stream::Stderr, &format!("baton: {line}"));
        }
    }

    /// A container ended: remove it, then tell its machine.
    pub(super) fn exited(&mut self, exit: runtime::Exit) {
        let Some((name, slot)) = exit
            .id
            .rsplit_once('-')
            .and_then(|(n, s)| Some((n.to_string(), s.parse::<u32>().ok()?)))
        else {
            return;
        };
        let Some(key) = self.key(&name, slot) else {
            return;
        };
        let status = ExitStatus {
            code: match exit.status {
                runtime::ExitStatus::Code(c) => Some(c),
                runtime::ExitStatus::Signal(_) => None,
            },
            signal: match exit.status {
                runtime::ExitStatus::Signal(s) => Some(s),
                runtime::ExitStatus::Code(_) => None,
            },
            oom_killed: exit.oom_killed,
        };
        if let Some(svc) = self.services.get(&name) {
            let how = match (status.code, status.signal) {
                (Some(c), _) => format!("exited with code {c}"),
                (_, Some(s)) => format!("was killed by signal {s}"),
                _ => "ended".to_string(),
            };
            let oom = if status.oom_killed {
                " (out of memory)"
            } else {
                ""
            };
            svc.log.push(
                &exit.id,
                Stream::Stderr,
                &format!("baton: {} {how}{oom}", exit.id),
            );
        }
        let runtime = self.kit.runtime.clone();
        let results = self.work.clone();
        let console = Arc::clone(&self.console);
        tokio::spawn(async move {
            if let Ok(r) = runtime {
                if let Err(e) = r.remove(&exit.id).await {
                    console.line(format_args!(
                        "supervisor: removing container {}: {e}",
                        exit.id
                    ));
                }
            }
            let _ = results.send(WorkDone::Cleaned(key, status));
        });
    }

    /// The runtime is gone: every running instance ended with it.
    pub(super) fn all_lost(&mut self) {
        let lost = ExitStatus {
            code: None,
            signal: Some(libc::SIGKILL),
            oom_killed: false,
        };
        let keys: Vec<Key> = self
            .services
            .iter()
            .flat_map(|(n, svc)| {
                svc.slots
                    .iter()
                    .filter(|(_, s)| matches!(s.machine.phase, Phase::Running | Phase::Stopping))
                    .map(|(slot, s)| Key {
                        service: n.clone(),
                        slot: *slot,
                        uid: s.uid,
                    })
            })
            .collect();
        for key in keys {
            let _ = self.work.send(WorkDone::Cleaned(key, lost));
        }
    }
}
