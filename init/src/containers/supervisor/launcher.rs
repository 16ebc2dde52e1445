//! Launching one instance: its image, its network, its container.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use baton_oci::{PreparedImage, PullRequest, RegistryOptions, Source, Store};
use baton_spec::service::{ImageReference, ImageSource, ServiceSpec};
use tokio::io::AsyncBufReadExt;

use super::launch::{self, Placement};
use super::logs::{ServiceLog, Stream};
use super::Paths;
use crate::containers::runtime::{ContainerRequest, Runtime};
use crate::svcnet::bridge::{Bridge, Netns};
use crate::svcnet::netns;

pub(super) struct Launched {
    pub(super) image: Arc<PreparedImage>,
    pub(super) netns: Option<PathBuf>,
}

/// Everything one launch needs, moved into its task.
pub(super) struct Launch {
    pub(super) id: String,
    pub(super) spec: Arc<ServiceSpec>,
    pub(super) image: Option<Arc<PreparedImage>>,
    pub(super) address: Option<Ipv4Addr>,
    pub(super) log: Arc<ServiceLog>,
    pub(super) paths: Paths,
    pub(super) runtime: Result<Runtime, String>,
    pub(super) bridge: Result<Bridge, String>,
    pub(super) store: Result<Arc<Store>, String>,
    /// The container's `/etc/resolv.conf`; the board's own when `None`.
    pub(super) resolv_conf: Option<Vec<u8>>,
}

impl Launch {
    pub(super) async fn run(self) -> Result<Launched, String> {
        let runtime = self.runtime.clone()?;
        let image = match self.image.clone() {
            Some(i) => i,
            None => self.prepare().await?,
        };
        let (netns, address) = match (&self.bridge, self.address) {
            (Ok(bridge), Some(address)) => {
                let dir = self.paths.netns();
                let id = self.id.clone();
                let path = tokio::task::spawn_blocking(move || netns::create(&dir, &id))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                let file = std::fs::File::open(&path)
                    .map_err(|e| format!("opening {}: {e}", path.display()))?;
                if let Err(e) = bridge.attach(address, Netns::Fd(file.as_fd())).await {
                    let _ = netns::remove(&path);
                    return Err(format!("connecting to the bridge: {e}"));
                }
                (Some(path), Some(address))
            }
            (Err(why), _) => return Err(why.clone()),
            (Ok(_), None) => return Err("no address for the instance".to_string()),
        };
        let placement = Placement {
            id: &self.id,
            lower_dirs: &image.lower_dirs,
            writable_dir: self.paths.writable(&self.id),
            netns: netns.clone(),
            address,
            volumes_dir: self.paths.volumes(&self.spec.name),
            resolv_conf: self
                .resolv_conf
                .clone()
                .unwrap_or_else(|| std::fs::read("/etc/resolv.conf").unwrap_or_default()),
        };
        let result = async {
            let config = launch::container_config(&self.spec, &image.config, &placement)
                .map_err(|e| e.to_string())?;
            for v in &config.volumes {
                std::fs::create_dir_all(&v.host)
                    .map_err(|e| format!("creating volume {}: {e}", v.host.display()))?;
            }
            let stdout = self.pipe(Stream::Stdout)?;
            let stderr = self.pipe(Stream::Stderr)?;
            runtime
                .run(ContainerRequest {
                    config,
                    stdout,
                    stderr,
                })
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        match result {
            Ok(_) => Ok(Launched { image, netns }),
            Err(e) => {
                if let Some(path) = &netns {
                    let _ = netns::remove(path);
                }
                Err(e)
            }
        }
    }

    pub(super) async fn prepare(&self) -> Result<Arc<PreparedImage>, String> {
        let store = self.store.clone()?;
        let text = self.spec.image.to_string();
        let config = self.paths.config.clone();
        let name = self.spec.name.clone();
        let registry = match &self.spec.image {
            ImageSource::Registry(reference) => Some(reference.clone()),
            _ => None,
        };
        let registries = Arc::clone(&self.paths.registries);
        let started = Instant::now();
        let service = name.clone();
        tokio::task::spawn_blocking(move || {
            println!("baton: {service}: preparing image {text}");
            match registry {
                Some(reference) => pull(&store, &reference, &text, &registries)?,
                None => {
                    let source =
                        Source::parse(&text, &config).map_err(|e| format!("image {text}: {e}"))?;
                    store.import(&source, &text).map_err(|e| e.to_string())?;
                }
            }
            let prepared = store.prepare(&text).map_err(|e| e.to_string())?;
            println!(
                "baton: {service}: image {text} ready in {} ms",
                started.elapsed().as_millis()
            );
            Ok(Arc::new(prepared))
        })
        .await
        .map_err(|e| format!("{name}: preparing the image: {e}"))?
    }

    /// A pipe whose read end feeds the service log; returns the write end for the container.
    pub(super) fn pipe(&self, stream: Stream) -> Result<OwnedFd, String> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| format!("creating a pipe: {e}"))?;
        let receiver = tokio::net::unix::pipe::Receiver::from_owned_fd(read)
            .map_err(|e| format!("watching a pipe: {e}"))?;
        let log = Arc::clone(&self.log);
        let id = self.id.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(receiver).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                log.push(&id, stream, &line);
            }
        });
        Ok(write)
    }
}

/// Pulls a registry image into the store under the reference text `name`, unless the store
/// already holds it: an image pinned by digest that is stored under that digest, or a tag that
/// was pulled (or baked into the image by `baton image build --image`) before. So a board starts
/// its services without the network, and a tag is only fetched again when the service is
/// removed and its image collected.
pub(super) fn pull(
    store: &Store,
    reference: &ImageReference,
    name: &str,
    registries: &BTreeMap<String, RegistryOptions>,
) -> Result<(), String> {
    if let Ok(stored) = store.get_ref(name) {
        match &reference.digest {
            Some(digest) if stored.to_string() != *digest => {}
            _ => return Ok(()),
        }
    }
    let request = PullRequest {
        registry: reference.api_host().to_owned(),
        repository: reference.repository.clone(),
        reference: reference
            .digest
            .clone()
            .or_else(|| reference.tag.clone())
            .unwrap_or_else(|| "latest".to_owned()),
    };
    let options = registries
        .get(&reference.registry)
        .cloned()
        .unwrap_or_default();
    store
        .pull(&request, name, &options)
        .map(|_| ())
        .map_err(|e| format!("pulling {reference}: {e}"))
}
