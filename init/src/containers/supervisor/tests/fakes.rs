//! Fakes of what the supervisor drives. Each records its calls in one shared log, in order, and
//! can be told to fail.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_oci::{Digest, PreparedImage, RuntimeConfig};
use baton_spec::service::{ImageSource, Probe};
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::super::images::{CollectError, ImageError};
use super::super::lock;
use super::super::toolkit::{Containers, Images, LinkError, Links, Probes, Rules};
use crate::containers::runtime::{self, ContainerRequest};
use crate::svcnet::policy::{self, Policy};

/// The calls every fake saw, in order, as text (`run web-1`, `signal web-1 15`, ...).
#[derive(Debug, Default)]
pub(super) struct Calls(Mutex<Vec<String>>);

impl Calls {
    fn push(&self, call: String) {
        lock(&self.0).push(call);
    }

    /// Every call so far.
    pub(super) fn all(&self) -> Vec<String> {
        lock(&self.0).clone()
    }

    /// The calls so far that start with one of `kinds` (`run`, `signal`, ...).
    pub(super) fn of(&self, kinds: &[&str]) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|c| kinds.iter().any(|k| c.split(' ').next() == Some(k)))
            .collect()
    }
}

/// A container that the fake runtime started.
#[derive(Debug, Clone)]
pub(super) struct Run {
    /// Its id.
    pub(super) id: String,
    /// When (the runtime's clock, which the tests pause).
    pub(super) at: Instant,
    /// Its environment.
    pub(super) env: Vec<String>,
}

/// The container runtime: containers start at once; a signal ends them with that signal, but
/// a frozen container, like a frozen cgroup's processes, ends only of SIGKILL.
pub(super) struct FakeRuntime {
    pub(super) calls: Arc<Calls>,
    /// Where exits go (the driver's runtime events).
    pub(super) events: mpsc::UnboundedSender<runtime::Event>,
    /// How many of the next runs fail.
    pub(super) failing_runs: AtomicU32,
    /// Every container started.
    pub(super) runs: Mutex<Vec<Run>>,
    /// The frozen containers.
    pub(super) frozen: Mutex<BTreeSet<String>>,
    /// Freezes fail while this holds.
    pub(super) refuse_freeze: AtomicBool,
    /// Thaws fail while this holds.
    pub(super) refuse_thaw: AtomicBool,
}

impl FakeRuntime {
    /// Ends container `id` as if its process exited with `code`.
    pub(super) fn exit(&self, id: &str, code: i32) {
        self.end(id, runtime::ExitStatus::Code(code));
    }

    fn end(&self, id: &str, status: runtime::ExitStatus) {
        let _ = self.events.send(runtime::Event::Exit(runtime::Exit {
            id: id.to_string(),
            status,
            oom_killed: false,
        }));
    }

    /// The containers started so far.
    pub(super) fn runs(&self) -> Vec<Run> {
        lock(&self.runs).clone()
    }
}

impl Containers for FakeRuntime {
    fn run(&self, request: ContainerRequest) -> BoxFuture<'_, Result<(), runtime::Error>> {
        let id = request.config.id.clone();
        self.calls.push(format!("run {id}"));
        let failing = self
            .failing_runs
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if !failing {
            lock(&self.runs).push(Run {
                id: id.clone(),
                at: Instant::now(),
                env: request.config.env.clone(),
            });
        }
        Box::pin(async move {
            match failing {
                true => Err(runtime::Error::Failed {
                    op: "run",
                    id,
                    message: "injected failure".to_string(),
                }),
                false => Ok(()),
            }
        })
    }

    fn signal<'a>(&'a self, id: &'a str, signal: i32) -> BoxFuture<'a, Result<(), runtime::Error>> {
        self.calls.push(format!("signal {id} {signal}"));
        if signal == libc::SIGKILL || !lock(&self.frozen).contains(id) {
            lock(&self.frozen).remove(id);
            self.end(id, runtime::ExitStatus::Signal(signal));
        }
        Box::pin(async { Ok(()) })
    }

    fn freeze<'a>(
        &'a self,
        id: &'a str,
        frozen: bool,
    ) -> BoxFuture<'a, Result<(), runtime::Error>> {
        let word = if frozen { "freeze" } else { "thaw" };
        self.calls.push(format!("{word} {id}"));
        let refuse = if frozen {
            &self.refuse_freeze
        } else {
            &self.refuse_thaw
        };
        let result = if refuse.load(Ordering::SeqCst) {
            Err(runtime::Error::Failed {
                op: word,
                id: id.to_string(),
                message: "injected failure".to_string(),
            })
        } else {
            if frozen {
                lock(&self.frozen).insert(id.to_string());
            } else {
                lock(&self.frozen).remove(id);
            }
            Ok(())
        };
        Box::pin(async move { result })
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), runtime::Error>> {
        self.calls.push(format!("remove {id}"));
        Box::pin(async { Ok(()) })
    }
}

/// The bridge: a namespace is a path under the given directory, nothing more.
pub(super) struct FakeLinks {
    pub(super) calls: Arc<Calls>,
}

impl Links for FakeLinks {
    fn connect<'a>(
        &'a self,
        dir: &'a Path,
        id: &'a str,
        address: Ipv4Addr,
    ) -> BoxFuture<'a, Result<PathBuf, LinkError>> {
        self.calls.push(format!("connect {id} {address}"));
        Box::pin(async move { Ok(dir.join(id)) })
    }

    fn disconnect(&self, address: Option<Ipv4Addr>, netns: Option<PathBuf>) -> BoxFuture<'_, ()> {
        self.calls
            .push(format!("disconnect {address:?} {:?}", netns.is_some()));
        Box::pin(async {})
    }
}

/// The image store: every image is there and runs `/srv`.
pub(super) struct FakeImages {
    pub(super) calls: Arc<Calls>,
}

impl Images for FakeImages {
    fn prepare(&self, source: &ImageSource) -> Result<PreparedImage, ImageError> {
        self.calls.push(format!("prepare {source}"));
        let manifest = Digest::parse(&format!("sha256:{}", "0".repeat(64)));
        Ok(PreparedImage {
            manifest: manifest.expect("a valid digest"),
            lower_dirs: Vec::new(),
            config: RuntimeConfig {
                entrypoint: vec!["/srv".into()],
                cmd: Vec::new(),
                env: vec!["PATH=/bin".into()],
                working_dir: None,
                user: None,
                exposed_ports: Vec::new(),
            },
        })
    }

    fn collect(
        &self,
        released: &BTreeSet<String>,
        in_use: &BTreeSet<String>,
    ) -> Result<Option<String>, CollectError> {
        self.calls
            .push(format!("collect {released:?} keeping {in_use:?}"));
        Ok(None)
    }
}

/// The kernel's rule sets: refuses them while told to, remembers the ones it took.
#[derive(Default)]
pub(super) struct FakeRules {
    pub(super) refuse: AtomicBool,
    pub(super) applied: Mutex<Vec<Policy>>,
}

impl FakeRules {
    /// The rule set in force.
    pub(super) fn last(&self) -> Option<Policy> {
        lock(&self.applied).last().cloned()
    }
}

impl Rules for FakeRules {
    fn apply(&self, policy: &Policy) -> Result<(), policy::Error> {
        if self.refuse.load(Ordering::SeqCst) {
            return Err(policy::Error::Apply {
                generation: policy.generation,
                source: crate::svcnet::nft::Error::Invalid {
                    what: "table".into(),
                    reason: "refused by the test".into(),
                },
            });
        }
        lock(&self.applied).push(policy.clone());
        Ok(())
    }
}

/// Health checks: every check passes while `healthy` holds.
#[derive(Default)]
pub(super) struct FakeProbes {
    pub(super) healthy: AtomicBool,
    pub(super) checks: AtomicU32,
    /// The checks so far, by the instance's address.
    pub(super) by_ip: Mutex<std::collections::BTreeMap<IpAddr, u32>>,
}

impl FakeProbes {
    /// The checks of the instance at `ip` so far.
    pub(super) fn of(&self, ip: IpAddr) -> u32 {
        lock(&self.by_ip).get(&ip).copied().unwrap_or(0)
    }
}

impl Probes for FakeProbes {
    fn check<'a>(
        &'a self,
        ip: IpAddr,
        _port: Option<u16>,
        _probe: &'a Probe,
        _timeout: Duration,
    ) -> BoxFuture<'a, bool> {
        self.checks.fetch_add(1, Ordering::SeqCst);
        *lock(&self.by_ip).entry(ip).or_default() += 1;
        let ok = self.healthy.load(Ordering::SeqCst);
        Box::pin(async move { ok })
    }
}
