//! Turning a stored image into what the runtime needs: unpacked lower dirs and the runtime config.

use crate::digest::Digest;
use crate::model::{Compression, ContainerConfig};
use crate::store::{io_error, sync_dir, Store, StoreError};
use crate::unpack::budget::{record_cost, Budget};
use crate::unpack::{unpack_layer, UnpackError};
use std::fs;
use std::path::PathBuf;

/// Errors from preparing an image.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The store could not provide the image.
    #[error("image {image}: {source}")]
    Store {
        /// The image name.
        image: String,
        /// What the store said.
        source: StoreError,
    },
    /// A layer could not be unpacked.
    #[error("image {image}: {source}")]
    Unpack {
        /// The image name.
        image: String,
        /// What went wrong.
        source: UnpackError,
    },
}

/// A port an image exposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExposedPort {
    /// The port number.
    pub port: u16,
    /// `true` for UDP, `false` for TCP.
    pub udp: bool,
}

/// The runtime defaults an image carries (what `docker run` would use when not overridden).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Entrypoint argv.
    pub entrypoint: Vec<String>,
    /// Default arguments (appended to the entrypoint).
    pub cmd: Vec<String>,
    /// `NAME=value` environment entries.
    pub env: Vec<String>,
    /// Working directory, if set.
    pub working_dir: Option<String>,
    /// `user[:group]` (names or ids), if set.
    pub user: Option<String>,
    /// Exposed ports, sorted.
    pub exposed_ports: Vec<ExposedPort>,
}

impl RuntimeConfig {
    /// Reads the runtime defaults from an image config's `config` section. Port keys that do not
    /// parse (`80/sctp`, `x`) are left out.
    pub fn from_container_config(config: &ContainerConfig) -> RuntimeConfig {
        let mut exposed_ports: Vec<ExposedPort> = config
            .exposed_ports
            .iter()
            .flatten()
            .filter_map(|(key, _)| {
                let (port, protocol) = key.split_once('/').unwrap_or((key, "tcp"));
                let udp = match protocol {
                    "tcp" => false,
                    "udp" => true,
                    _ => return None,
                };
                Some(ExposedPort {
                    port: port.parse().ok()?,
                    udp,
                })
            })
            .collect();
        exposed_ports.sort();
        RuntimeConfig {
            entrypoint: config.entrypoint.clone().unwrap_or_default(),
            cmd: config.cmd.clone().unwrap_or_default(),
            env: config.env.clone().unwrap_or_default(),
            working_dir: config.working_dir.clone().filter(|d| !d.is_empty()),
            user: config.user.clone().filter(|u| !u.is_empty()),
            exposed_ports,
        }
    }

    /// Back to the image config's `config` section (what the packer writes).
    pub fn to_container_config(&self) -> ContainerConfig {
        let some = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        ContainerConfig {
            user: self.user.clone(),
            exposed_ports: (!self.exposed_ports.is_empty()).then(|| {
                self.exposed_ports
                    .iter()
                    .map(|p| {
                        let protocol = if p.udp { "udp" } else { "tcp" };
                        (format!("{}/{protocol}", p.port), serde_json::json!({}))
                    })
                    .collect()
            }),
            env: some(&self.env),
            entrypoint: some(&self.entrypoint),
            cmd: some(&self.cmd),
            working_dir: self.working_dir.clone(),
            labels: None,
            stop_signal: None,
        }
    }
}

/// An image ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedImage {
    /// The manifest the image name pointed at.
    pub manifest: Digest,
    /// Unpacked layer directories, top layer first (overlayfs `lowerdir=` order). A layer that
    /// appears twice is listed once, at its topmost position.
    pub lower_dirs: Vec<PathBuf>,
    /// The image's runtime defaults.
    pub config: RuntimeConfig,
}

impl Store {
    /// Unpacks the layers of image `name` that are not unpacked yet and returns its lower dirs and
    /// runtime config. Holds the store lock shared, like an import.
    pub fn prepare(&self, name: &str) -> Result<PreparedImage, PrepareError> {
        let store_error = |source| PrepareError::Store {
            image: name.to_owned(),
            source,
        };
        let _lock = self.lock_shared().map_err(store_error)?;
        let manifest_digest = self.get_ref(name).map_err(store_error)?;
        let (manifest, config) = self.closure(&manifest_digest).map_err(store_error)?;
        let mut budget = Budget::for_image(self, &config.rootfs.diff_ids).map_err(store_error)?;
        let mut lower_dirs: Vec<PathBuf> = Vec::new();
        for (layer, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids).rev() {
            let dir = self.layers_dir().join(diff_id.hex());
            if !dir.is_dir() {
                let compression =
                    Compression::of_media_type(&layer.media_type).unwrap_or(Compression::None);
                self.unpack(&layer.digest, compression, diff_id, &dir, &mut budget)
                    .map_err(|source| match source {
                        Unpacking::Store(source) => store_error(source),
                        Unpacking::Unpack(source) => PrepareError::Unpack {
                            image: name.to_owned(),
                            source,
                        },
                    })?;
            }
            if !lower_dirs.contains(&dir) {
                lower_dirs.push(dir);
            }
        }
        Ok(PreparedImage {
            manifest: manifest_digest,
            lower_dirs,
            config: config
                .config
                .as_ref()
                .map(RuntimeConfig::from_container_config)
                .unwrap_or_default(),
        })
    }

    /// Unpacks into a fresh directory under `tmp/`, syncs it and renames it into `layers/`; on an
    /// error the directory is removed. Two prepares racing on one layer both unpack it; the loser's
    /// copy is discarded.
    fn unpack(
        &self,
        layer: &Digest,
        compression: Compression,
        diff_id: &Digest,
        dir: &PathBuf,
        budget: &mut Budget,
    ) -> Result<(), Unpacking> {
        let temp = self.temp_path("layer");
        fs::create_dir(&temp)
            .map_err(|e| Unpacking::Store(io_error("create directory", &temp)(e)))?;
        let result = self.unpack_into(layer, compression, diff_id, &temp, dir, budget);
        if fs::symlink_metadata(&temp).is_ok() {
            let _ = fs::remove_dir_all(&temp);
        }
        result
    }

    fn unpack_into(
        &self,
        layer: &Digest,
        compression: Compression,
        diff_id: &Digest,
        temp: &PathBuf,
        dir: &PathBuf,
        budget: &mut Budget,
    ) -> Result<(), Unpacking> {
        let blob = self.open_blob(layer).map_err(Unpacking::Store)?;
        let cost = unpack_layer(blob, compression, layer, diff_id, temp, budget)
            .map_err(Unpacking::Unpack)?;
        record_cost(temp, cost).map_err(Unpacking::Store)?;
        let handle =
            fs::File::open(temp).map_err(|e| Unpacking::Store(io_error("open", temp)(e)))?;
        rustix::fs::syncfs(&handle)
            .map_err(|e| Unpacking::Store(io_error("sync file system of", temp)(e.into())))?;
        match fs::rename(temp, dir) {
            Ok(()) => sync_dir(&self.layers_dir()).map_err(Unpacking::Store),
            Err(_) if dir.is_dir() => Ok(()),
            Err(e) => Err(Unpacking::Store(io_error("move layer into place", dir)(e))),
        }
    }
}

enum Unpacking {
    Store(StoreError),
    Unpack(UnpackError),
}
