//! What the helper does to create and delete containers: the [`Backend`] trait and its real
//! implementation on libcontainer. Watching, signalling and reaping the containers' inits is the
//! helper's own job ([`super::helper`]), the same for every backend.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;

use super::executor::Confined;
use super::seccomp::Profile;
use super::{cleanup, idmap, netns, overlay, spec, ContainerConfig, IdRange, RuntimePaths};

/// This process's OOM score, which libcontainer changes for the container it forks.
const OOM_SCORE_ADJ: &str = "/proc/self/oom_score_adj";

/// Errors creating or deleting a container.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The id cannot name a container.
    #[error("invalid container id {0:?} (use letters, digits, '_', '.', '-')")]
    BadId(String),
    /// A container of that id exists.
    #[error("container {0} exists already")]
    Exists(String),
    /// Preparing its root failed.
    #[error("container {id}: {source}")]
    Root {
        /// The container.
        id: String,
        /// What failed.
        source: overlay::Error,
    },
    /// The writable layer could not be put in the service's disk project.
    #[error("container {id}: {source}")]
    Disk {
        /// The container.
        id: String,
        /// What failed.
        source: crate::board::quota::Error,
    },
    /// The layers could not be idmapped.
    #[error("container {id}: cannot map the layers to its ids: {source}")]
    Idmap {
        /// The container.
        id: String,
        /// What failed.
        source: idmap::Error,
    },
    /// The spec could not be built.
    #[error(transparent)]
    Spec(#[from] spec::Error),
    /// A bundle file could not be written.
    #[error("container {id}: cannot write {path}: {source}")]
    Write {
        /// The container.
        id: String,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// libcontainer failed.
    #[error("container {id}: cannot {op}: {source}")]
    Libcontainer {
        /// The container.
        id: String,
        /// create, start, delete.
        op: &'static str,
        /// libcontainer's reason.
        source: Box<libcontainer::error::LibcontainerError>,
    },
    /// libcontainer started it but knows no pid.
    #[error("container {0} started without a pid")]
    NoPid(String),
}

/// Creates and deletes containers.
pub trait Backend {
    /// Creates and starts a container; returns its init's pid.
    fn run(
        &mut self,
        config: &ContainerConfig,
        stdout: OwnedFd,
        stderr: OwnedFd,
    ) -> Result<i32, Error>;
    /// Deletes an ended container: state, cgroup, root mount, writable layer.
    fn remove(&mut self, id: &str) -> Result<(), Error>;
    /// Whether the OOM killer killed a process of the container's cgroup.
    fn oom_killed(&self, id: &str) -> bool;
}

/// Whether `id` can name a container (and a directory).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// Whether a cgroup's `memory.events` text counts an OOM kill.
pub fn counts_oom_kill(memory_events: &str) -> bool {
    memory_events.lines().any(|line| {
        let mut f = line.split_whitespace();
        f.next() == Some("oom_kill")
            && f.next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0) > 0
    })
}

/// The real backend: overlay roots and libcontainer.
pub struct Libcontainer {
    paths: RuntimePaths,
    no_pivot: bool,
    profile: Arc<Profile>,
    writable: HashMap<String, PathBuf>,
}

impl Libcontainer {
    /// A backend keeping its things under `paths`, confining containers with `profile`;
    /// `no_pivot`: enter roots with `MS_MOVE` and `chroot` (the board's root is the initramfs).
    pub fn new(paths: RuntimePaths, profile: Profile, no_pivot: bool) -> Libcontainer {
        Libcontainer {
            paths,
            no_pivot,
            profile: Arc::new(profile),
            writable: HashMap::new(),
        }
    }

    fn bundle(&self, id: &str) -> PathBuf {
        self.paths.bundles.join(id)
    }

    fn prepare(&self, config: &ContainerConfig) -> Result<PathBuf, Error> {
        let id = &config.id;
        let bundle = self.bundle(id);
        let rootfs = bundle.join(spec::ROOTFS);
        let files = bundle.join("files");
        let root_err = |source| Error::Root {
            id: id.clone(),
            source,
        };
        let write = |path: &Path, contents: &[u8]| {
            std::fs::write(path, contents).map_err(|source| Error::Write {
                id: id.clone(),
                path: path.to_path_buf(),
                source,
            })
        };
        for dir in [&rootfs, &files, &self.paths.state] {
            std::fs::create_dir_all(dir).map_err(|source| Error::Write {
                id: id.clone(),
                path: dir.clone(),
                source,
            })?;
        }
        for (i, f) in config.files.iter().enumerate() {
            write(&files.join(i.to_string()), &f.contents)?;
        }
        let spec = spec::build(config, &self.paths.cgroup_parent, &files)?;
        let json = serde_json::to_vec_pretty(&spec).map_err(|e| Error::Write {
            id: id.clone(),
            path: bundle.join("config.json"),
            source: e.into(),
        })?;
        write(&bundle.join("config.json"), &json)?;
        overlay::prepare_writable(&config.writable_dir).map_err(root_err)?;
        let lower = match config.ids {
            Some(ids) => {
                let mapped = self.map_layers(config, &bundle, ids)?;
                let (upper, _) = overlay::upper_work(&config.writable_dir);
                let owner = Some(nix::unistd::Uid::from_raw(ids.base));
                nix::unistd::chown(&upper, owner, Some(nix::unistd::Gid::from_raw(ids.base)))
                    .map_err(|e| Error::Write {
                        id: id.clone(),
                        path: upper.clone(),
                        source: e.into(),
                    })?;
                mapped
            }
            None => config.lower_dirs.clone(),
        };
        if let Some(project) = config.disk_project {
            crate::board::quota::set_project_tree(&config.writable_dir, project).map_err(
                |source| Error::Disk {
                    id: id.clone(),
                    source,
                },
            )?;
        }
        overlay::mount_root(&lower, &config.writable_dir, &rootfs).map_err(root_err)?;
        Ok(bundle)
    }

    /// Attaches each layer idmapped to `ids` under `<bundle>/lower/<n>`; returns those paths.
    fn map_layers(
        &self,
        config: &ContainerConfig,
        bundle: &Path,
        ids: IdRange,
    ) -> Result<Vec<PathBuf>, Error> {
        let idmap_err = |source| Error::Idmap {
            id: config.id.clone(),
            source,
        };
        let userns = idmap::user_namespace(ids).map_err(idmap_err)?;
        let mut mapped = Vec::with_capacity(config.lower_dirs.len());
        for (n, layer) in config.lower_dirs.iter().enumerate() {
            let target = bundle.join("lower").join(n.to_string());
            std::fs::create_dir_all(&target).map_err(|source| Error::Write {
                id: config.id.clone(),
                path: target.clone(),
                source,
            })?;
            idmap::mount(layer, &target, &userns).map_err(idmap_err)?;
            mapped.push(target);
        }
        Ok(mapped)
    }

    fn create(
        &self,
        config: &ContainerConfig,
        bundle: &Path,
        stdout: OwnedFd,
        stderr: OwnedFd,
    ) -> Result<i32, Error> {
        let id = &config.id;
        let lc = |op| {
            move |source| Error::Libcontainer {
                id: id.clone(),
                op,
                source: Box::new(source),
            }
        };
        let stdin = std::fs::File::open("/dev/null").map_err(|source| Error::Write {
            id: id.clone(),
            path: "/dev/null".into(),
            source,
        })?;
        // libcontainer writes the spec's oom_score_adj (0) into this process before it forks
        // the container; the helper goes back to its own (the system's -1000) right after.
        let own_score = std::fs::read_to_string(OOM_SCORE_ADJ).ok();
        // Back in the helper's own network namespace when dropped, right after the fork.
        let joined = if spec::helper_joins_network(config) {
            let path = config.netns.as_deref().unwrap_or(Path::new(""));
            Some(netns::Joined::enter(path).map_err(|source| Error::Write {
                id: id.clone(),
                path: path.to_path_buf(),
                source,
            })?)
        } else {
            None
        };
        let built = ContainerBuilder::new(id.clone(), SyscallType::Linux)
            .with_root_path(&self.paths.state)
            .map_err(lc("use the state directory"))?
            .with_executor(Confined::new(Arc::clone(&self.profile)))
            .with_stdin(OwnedFd::from(stdin))
            .with_stdout(stdout)
            .with_stderr(stderr)
            .validate_id()
            .map_err(lc("validate the id"))?
            .as_init(bundle)
            .with_systemd(false)
            .with_no_pivot(self.no_pivot)
            .with_detach(true)
            .build();
        if let Some(score) = own_score {
            if let Err(e) = std::fs::write(OOM_SCORE_ADJ, score.trim()) {
                eprintln!("baton: runtime: cannot restore its oom_score_adj {score:?}: {e}");
            }
        }
        let mut container = built.map_err(lc("create"))?;
        drop(joined);
        container.start().map_err(lc("start"))?;
        container
            .pid()
            .map(|p| p.as_raw())
            .ok_or_else(|| Error::NoPid(id.clone()))
    }

    /// Deletes whatever exists of container `id`; the first error is returned after every step ran.
    fn teardown(&mut self, id: &str) -> Result<(), Error> {
        let mut first: Option<Error> = None;
        let state = self.paths.state.join(id);
        if state.exists() {
            let deleted = Container::load(state).and_then(|mut c| c.delete(true));
            if let Err(source) = deleted {
                first.get_or_insert(Error::Libcontainer {
                    id: id.to_string(),
                    op: "delete",
                    source: Box::new(source),
                });
            }
        }
        // libcontainer removed the cgroup if it had state; a half-created one may remain.
        let _ = std::fs::remove_dir(self.paths.cgroup_of(id));
        let bundle = self.bundle(id);
        // The root first, then the idmapped layers under it: never remove a directory a layer
        // is still attached to.
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut unmounted = Ok(());
        for target in cleanup::mounts_below(&mountinfo, &bundle) {
            if let Err(e) = overlay::unmount(&target) {
                unmounted = Err(e);
            }
        }
        let removed = match unmounted {
            Ok(()) => overlay::remove_dir(&bundle),
            Err(e) => Err(e),
        };
        let steps = [
            overlay::unmount(&bundle.join(spec::ROOTFS)),
            removed,
            match self.writable.remove(id) {
                Some(w) => overlay::remove_dir(&w),
                None => Ok(()),
            },
        ];
        for step in steps {
            if let Err(source) = step {
                first.get_or_insert(Error::Root {
                    id: id.to_string(),
                    source,
                });
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Backend for Libcontainer {
    fn run(
        &mut self,
        config: &ContainerConfig,
        stdout: OwnedFd,
        stderr: OwnedFd,
    ) -> Result<i32, Error> {
        let id = &config.id;
        if !valid_id(id) {
            return Err(Error::BadId(id.clone()));
        }
        if self.bundle(id).exists() || self.paths.state.join(id).exists() {
            return Err(Error::Exists(id.clone()));
        }
        self.writable
            .insert(id.clone(), config.writable_dir.clone());
        let started = self
            .prepare(config)
            .and_then(|bundle| self.create(config, &bundle, stdout, stderr));
        if started.is_err() {
            let _ = self.teardown(id);
        }
        started
    }

    fn remove(&mut self, id: &str) -> Result<(), Error> {
        if !valid_id(id) {
            return Err(Error::BadId(id.to_string()));
        }
        self.teardown(id)
    }

    fn oom_killed(&self, id: &str) -> bool {
        let events = std::fs::read_to_string(self.paths.cgroup_of(id).join("memory.events"));
        counts_oom_kill(&events.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["web-1", "a", "db_2.x"] {
            assert!(valid_id(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", &"x".repeat(65)] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn oom_kills_are_read_from_memory_events() {
        let events = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert!(counts_oom_kill(events));
        assert!(!counts_oom_kill("low 0\nmax 3\noom 0\noom_kill 0\n"));
        assert!(!counts_oom_kill(""));
    }
}
