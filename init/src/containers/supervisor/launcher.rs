//! Launching one instance, in a task of its own: its image, its network, its container.

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::images::ImageError;
use super::launch::{self, Placement};
use super::logs::{ServiceLog, Stream};
use super::output;
use super::toolkit::{Containers, Images, LinkError, Links, Unavailable};
use super::{disk, id_shift, ids, Paths};
use crate::board::console::Console;
use crate::containers::runtime::{self, ContainerConfig, ContainerRequest, IdRange};
use crate::svcnet::bridge::pool;
use baton_oci::PreparedImage;
use baton_spec::service::ServiceSpec;

/// Why an instance did not start; the API shows it as the instance's `last_error`.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// A part of the toolkit is missing.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// The bridge is up but gave no address.
    #[error("no address for the instance")]
    NoAddress,
    /// The bridge has no free address.
    #[error(transparent)]
    Pool(#[from] pool::Error),
    /// The isolation rules are not in force, so the instance would run unconfined.
    #[error("not started: this board cannot enforce the services' network isolation ({0})")]
    Isolation(String),
    /// Bringing the image into the store failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// Preparing the image did not finish.
    #[error("{service}: preparing the image: {source}")]
    ImageTask {
        /// The service.
        service: String,
        /// The cause.
        #[source]
        source: tokio::task::JoinError,
    },
    /// Making the container's configuration did not finish.
    #[error("{service}: reading the image's files: {source}")]
    ConfigTask {
        /// The service.
        service: String,
        /// The cause.
        #[source]
        source: tokio::task::JoinError,
    },
    /// The instance could not be connected to the bridge.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The spec and image do not make a container.
    #[error(transparent)]
    Config(#[from] launch::Error),
    /// A volume's directory could not be created.
    #[error("creating volume {}: {source}", path.display())]
    Volume {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The service's disk limit cannot be applied.
    #[error("{service}: {source}")]
    Disk {
        /// The service.
        service: String,
        /// Why.
        #[source]
        source: disk::Error,
    },
    /// The service cannot get its own user ids.
    #[error("{service}: not started in a user namespace of its own: {why} (a spec that must run with the board's ids says so with host_ids = \"why\")")]
    UserIds {
        /// The service.
        service: String,
        /// Why.
        why: String,
    },
    /// The output pipe could not be created.
    #[error("creating a pipe: {0}")]
    Pipe(#[source] nix::Error),
    /// The output pipe could not be watched.
    #[error("watching a pipe: {0}")]
    WatchPipe(#[source] std::io::Error),
    /// The runtime did not start the container.
    #[error(transparent)]
    Run(#[from] runtime::Error),
}

/// What a launch leaves behind for the instance.
pub(super) struct Launched {
    /// The image it runs (kept for the service's next launches of the same generation).
    pub(super) image: Arc<PreparedImage>,
    /// Its network namespace.
    pub(super) netns: Option<PathBuf>,
}

/// Everything one launch needs, moved into its task.
pub(super) struct Launch {
    /// The container id (`web-1`).
    pub(super) id: String,
    /// Its network namespace's name, of this incarnation alone (`web-1.7`): the removal of an
    /// earlier one's, which runs in the background, cannot take this one's.
    pub(super) netns_name: String,
    /// The spec it runs.
    pub(super) spec: Arc<ServiceSpec>,
    /// The image, if an earlier launch of the same generation prepared it.
    pub(super) image: Option<Arc<PreparedImage>>,
    /// Its address on the bridge.
    pub(super) address: Option<Ipv4Addr>,
    /// Where its output goes.
    pub(super) log: Arc<ServiceLog>,
    /// Where things are.
    pub(super) paths: Paths,
    /// The container runtime.
    pub(super) runtime: Result<Arc<dyn Containers>, Unavailable>,
    /// The board bridge.
    pub(super) bridge: Result<Arc<dyn Links>, Unavailable>,
    /// Where progress is reported.
    pub(super) console: Arc<Console>,
    /// The image store.
    pub(super) store: Result<Arc<dyn Images>, Unavailable>,
    /// The container's `/etc/resolv.conf`; the board's own when `None`.
    pub(super) resolv_conf: Option<Vec<u8>>,
}

impl Launch {
    /// Prepares the image, connects the instance and starts its container.
    pub(super) async fn run(self) -> Result<Launched, LaunchError> {
        let runtime = self.runtime.clone()?;
        let image = match self.image.clone() {
            Some(i) => i,
            None => self.prepare().await?,
        };
        let (netns, address, bridge) = match (&self.bridge, self.address) {
            (Ok(bridge), Some(address)) => {
                let path = bridge
                    .connect(&self.paths.netns(), &self.netns_name, address)
                    .await?;
                (Some(path), Some(address), bridge)
            }
            (Err(why), _) => return Err(why.clone().into()),
            (Ok(_), None) => return Err(LaunchError::NoAddress),
        };
        let result = async {
            let config = self.config(&image, netns.clone(), address).await?;
            let stdout = self.pipe(Stream::Stdout)?;
            let stderr = self.pipe(Stream::Stderr)?;
            runtime
                .run(ContainerRequest {
                    config,
                    stdout,
                    stderr,
                })
                .await?;
            Ok::<_, LaunchError>(())
        }
        .await;
        match result {
            Ok(()) => Ok(Launched { image, netns }),
            Err(e) => {
                if netns.is_some() {
                    bridge.disconnect(None, netns).await;
                }
                Err(e)
            }
        }
    }

    /// The container's configuration, made off the runtime thread: it reads files of the image
    /// (`/etc/passwd`) and creates the volumes' directories.
    async fn config(
        &self,
        image: &Arc<PreparedImage>,
        netns: Option<PathBuf>,
        address: Option<Ipv4Addr>,
    ) -> Result<ContainerConfig, LaunchError> {
        let spec = Arc::clone(&self.spec);
        let image = Arc::clone(image);
        let id = self.id.clone();
        let writable_dir = self.paths.writable(&self.id);
        let volumes_dir = self.paths.volumes(&self.spec.name);
        let (ids, store) = (Arc::clone(&self.paths.ids), self.paths.images());
        let (data, quotas) = (self.paths.data.clone(), self.paths.disk_quotas.clone());
        let resolv_conf = self
            .resolv_conf
            .clone()
            .unwrap_or_else(|| self.paths.host.resolv_conf());
        tokio::task::spawn_blocking(move || {
            let placement = Placement {
                id: &id,
                lower_dirs: &image.lower_dirs,
                writable_dir,
                netns,
                address,
                volumes_dir: volumes_dir.clone(),
                resolv_conf,
            };
            let mut config = launch::container_config(&spec, &image.config, &placement)?;
            config.ids = user_ids(&spec, &store, &ids, volumes_dir.as_deref())?;
            for v in &config.volumes {
                let volume = |source| LaunchError::Volume {
                    path: v.host.clone(),
                    source,
                };
                std::fs::create_dir_all(&v.host).map_err(volume)?;
                if let Some(range) = config.ids {
                    id_shift::own_root(&v.host, range.base).map_err(volume)?;
                }
            }
            let volumes: Vec<PathBuf> = config.volumes.iter().map(|v| v.host.clone()).collect();
            let quotas = quotas.as_ref().map(|_| ()).map_err(String::as_str);
            config.disk_project = disk::prepare(&spec, data.as_deref(), quotas, &ids, &volumes)
                .map_err(|source| LaunchError::Disk {
                    service: spec.name.clone(),
                    source,
                })?;
            Ok(config)
        })
        .await
        .map_err(|source| LaunchError::ConfigTask {
            service: self.spec.name.clone(),
            source,
        })?
    }

    /// Brings the spec's image into the store (importing or pulling it) and unpacks it.
    async fn prepare(&self) -> Result<Arc<PreparedImage>, LaunchError> {
        let store = self.store.clone()?;
        let source = self.spec.image.clone();
        let service = self.spec.name.clone();
        let started = Instant::now();
        let console = Arc::clone(&self.console);
        tokio::task::spawn_blocking(move || {
            let text = source.to_string();
            console.line(format_args!("{service}: preparing image {text}"));
            let prepared = store.prepare(&source)?;
            console.line(format_args!(
                "{service}: image {text} ready in {} ms",
                started.elapsed().as_millis()
            ));
            Ok(Arc::new(prepared))
        })
        .await
        .map_err(|source| LaunchError::ImageTask {
            service: self.spec.name.clone(),
            source,
        })?
    }

    /// A pipe whose read end feeds the service log; returns the write end for the container.
    fn pipe(&self, stream: Stream) -> Result<OwnedFd, LaunchError> {
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(LaunchError::Pipe)?;
        let receiver = tokio::net::unix::pipe::Receiver::from_owned_fd(read)
            .map_err(LaunchError::WatchPipe)?;
        let log = Arc::clone(&self.log);
        let id = self.id.clone();
        tokio::spawn(output::pump(receiver, move |piece| {
            log.offer(&id, stream, piece);
        }));
        Ok(write)
    }
}

/// The ids the service's containers run with: `None` for the board's (the spec's `host_ids`),
/// else the service's range; its volumes are moved into the range the first time.
fn user_ids(
    spec: &ServiceSpec,
    store: &Path,
    ids: &ids::UserIds,
    volumes: Option<&Path>,
) -> Result<Option<IdRange>, LaunchError> {
    if spec.host_ids.is_some() {
        return Ok(None);
    }
    let refuse = |why: String| LaunchError::UserIds {
        service: spec.name.clone(),
        why,
    };
    ids.probe(store).map_err(refuse)?;
    let slot = ids
        .slot_for(&spec.name)
        .map_err(|e| refuse(e.to_string()))?;
    if !slot.volumes_shifted {
        if let Some(dir) = volumes {
            id_shift::shift_tree(dir, slot.uid_base())
                .map_err(|e| refuse(format!("moving its volumes into its ids: {e}")))?;
        }
        ids.mark_shifted(&spec.name)
            .map_err(|e| refuse(e.to_string()))?;
    }
    Ok(Some(IdRange {
        base: slot.uid_base(),
        count: ids::RANGE,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> ServiceSpec {
        let text = format!("name = \"web\"\nimage = \"images/web.tar\"\n{extra}");
        ServiceSpec::parse("services/web.toml", &text).expect("valid spec")
    }

    /// procfs allows no idmapped mounts on any kernel: the store of a board that cannot give
    /// services their own ids.
    const NOT_IDMAPPABLE: &str = "/proc/self";

    #[test]
    fn a_service_is_refused_by_name_where_the_store_cannot_be_idmapped_unless_it_asks_for_host_ids()
    {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root (CI runs as root)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let ids = ids::UserIds::new(dir.path().join("ids.json"));
        let store = Path::new(NOT_IDMAPPABLE);

        let asked = spec("host_ids = \"it manages the board's devices\"\n");
        assert_eq!(user_ids(&asked, store, &ids, None).expect("host ids"), None);
        assert_eq!(
            ids.probed(),
            None,
            "probed for a service that needs no range"
        );

        let refused = user_ids(&spec(""), store, &ids, None).expect_err("refused");
        let text = refused.to_string();
        assert!(
            text.starts_with("web: not started in a user namespace"),
            "{text}"
        );
        assert!(
            text.contains("idmapped mounts do not work on the image store"),
            "{text}"
        );
        assert!(text.contains("host_ids"), "{text}");
        // What /v1/status shows, and no slot was taken.
        assert!(matches!(ids.probed(), Some(Err(why)) if why.contains("idmapped")));
        assert!(!dir.path().join("ids.json").exists());
    }

    #[test]
    fn a_store_that_can_be_idmapped_gives_the_service_a_range_of_its_own() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root (CI runs as root)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store");
        let ids = ids::UserIds::new(dir.path().join("ids.json"));
        let range = user_ids(&spec(""), &store, &ids, None)
            .expect("a range")
            .expect("not the board's ids");
        assert_eq!(range.count, ids::RANGE);
        assert!(range.base >= ids::RANGE, "{range:?}");
        assert_eq!(ids.probed(), Some(Ok(())));
    }
}
