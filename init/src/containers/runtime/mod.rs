//! The container runtime: OCI containers on cgroup v2 through youki's libcontainer.
//!
//! libcontainer forks with a raw `clone3` and runs closures in the children without exec,
//! which can deadlock a multi-threaded process (another thread may hold the allocator lock at
//! that moment). So every container operation runs in a single-threaded **helper process**:
//! this same binary re-executed from `/proc/self/exe` with [`HELPER_ARG`] (see
//! [`helper_main_if_requested`]). The init talks to it through [`Runtime`] over a
//! `SOCK_SEQPACKET` unix socket ([`protocol`]); the pipes for a container's stdout and stderr
//! travel with the request as `SCM_RIGHTS`.
//!
//! The helper is the containers' parent: it watches each one through a pidfd, reaps it, reads
//! `oom_kill` from its cgroup's `memory.events` and reports an [`Exit`]. At start it removes
//! what a previous boot or helper left behind ([`cleanup`]): it kills and removes the cgroups
//! under `/sys/fs/cgroup/baton`, unmounts the overlay roots and deletes the state and bundle
//! directories.
//!
//! The init freezes and thaws containers itself through their cgroups' `cgroup.freeze`
//! ([`freeze`], [`Runtime::freeze`]).
//!
//! If the helper dies, its containers die with it: each container process gets
//! `PDEATHSIG = SIGKILL` right before exec, and a new helper kills whatever is left in the
//! cgroups anyway. The [`Runtime`] learns of the death when the socket closes: pending and
//! later calls fail with [`Error::HelperGone`] and the event stream ends with
//! [`Event::Lost`]. To recover, call [`Runtime::start`] again and start the containers anew.
//!
//! Each container gets ([`spec`]): an overlayfs root over the image layers with its upper and
//! work directories in the request's `writable_dir` (wiped per run), mounted read-only by
//! default with a private `/tmp` tmpfs; `/proc`, a tmpfs `/dev` with the usual nodes, `/dev/pts`,
//! `/dev/shm`, `/dev/mqueue`, `/sys` and its cgroup read-only; runc's masked and read-only paths;
//! new pid, mount, ipc, uts and cgroup namespaces and a new or given network namespace; the
//! cgroup `/sys/fs/cgroup/baton/<id>` with `cpu.max`, `memory.max` and `pids.max`; no new
//! privileges; Docker's default capabilities minus `CAP_MKNOD` (v2 device rules need BPF,
//! which this build lacks, so device nodes are kept out by the missing capability), minus
//! `CAP_SYS_CHROOT` and minus `CAP_NET_RAW` (a spec may add that one back: `capabilities =
//! ["NET_RAW"]`, [`spec::ADDABLE`]); and the default seccomp profile ([`seccomp`]).
//!
//! Containers enter their roots with `pivot_root`: the init moves the board's `/` from the
//! initramfs to a tmpfs first thing ([`crate::boot::rootfs_switch`]). `pivot_root` cannot leave an
//! initramfs root, so if that switch failed (`rootfs` is `/` in `/proc/self/mountinfo`) the
//! helper has libcontainer enter the container's root with `MS_MOVE` and `chroot` instead, and
//! says so in its startup notes. The capabilities and the seccomp profile are the same either
//! way, so a service behaves the same whether or not the switch worked: the missing
//! `CAP_SYS_CHROOT` and the profile's ban on `chroot` close the classic way out of a chroot-ed
//! root, and cost appliance services nothing.

mod backend;
mod cleanup;
mod client;
mod executor;
pub mod freeze;
mod helper;
mod idmap;
mod netns;
mod overlay;
pub mod protocol;
pub mod seccomp;
pub mod spec;
pub mod stderr;
#[cfg(test)]
mod tests;

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::board::cgroups;

pub use client::{Error, Runtime};
pub use helper::{helper_main_if_requested, HELPER_ARG};
pub use idmap::probe as probe_idmap;

/// Where the runtime keeps its things. [`RuntimePaths::default`] is the board's layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimePaths {
    /// The binary to run as the helper (the init itself).
    pub exe: PathBuf,
    /// libcontainer's state root: one directory per container.
    pub state: PathBuf,
    /// The bundles: `<bundles>/<id>/{config.json,rootfs,files}`.
    pub bundles: PathBuf,
    /// The cgroup v2 mount point.
    pub cgroup_root: PathBuf,
    /// The cgroup under `cgroup_root` holding one child cgroup per container.
    pub cgroup_parent: String,
}

impl Default for RuntimePaths {
    fn default() -> Self {
        RuntimePaths {
            exe: PathBuf::from("/proc/self/exe"),
            state: PathBuf::from("/run/baton/containers"),
            bundles: PathBuf::from("/run/baton/bundles"),
            cgroup_root: PathBuf::from(cgroups::ROOT),
            cgroup_parent: cgroups::CONTAINERS.to_string(),
        }
    }
}

impl RuntimePaths {
    /// The cgroup directory of container `id`.
    pub fn cgroup_of(&self, id: &str) -> PathBuf {
        self.cgroup_root.join(&self.cgroup_parent).join(id)
    }
}

/// A host directory shared into a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// The directory on the board.
    pub host: PathBuf,
    /// Where it appears in the container (absolute).
    pub container: String,
    /// Mounted read-only.
    pub readonly: bool,
}

/// A small file placed into a container read-only (`/etc/hosts`, `/etc/resolv.conf`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct File {
    /// Its path in the container (absolute).
    pub container: String,
    /// Its contents.
    pub contents: Vec<u8>,
}

/// Everything about a container but its output pipes; this part travels as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// Its id, unique among running containers (`[A-Za-z0-9_.-]`, e.g. `web-1`).
    pub id: String,
    /// The image layers, top first (from `baton_oci::PreparedImage`).
    pub lower_dirs: Vec<PathBuf>,
    /// Where the overlay's upper and work directories go; wiped at each run and at removal.
    pub writable_dir: PathBuf,
    /// Mount the root read-only, with a writable tmpfs on `/tmp`.
    pub readonly_root: bool,
    /// The command and its arguments; `args[0]` is looked up in `PATH` from `env`.
    pub args: Vec<String>,
    /// `KEY=value` entries; must include `PATH`.
    pub env: Vec<String>,
    /// The working directory (absolute).
    pub cwd: String,
    /// The user and group ids the process runs as.
    pub user: (u32, u32),
    /// The container's host name.
    pub hostname: String,
    /// CPU limit in CPUs (0.5 = half a core), written to `cpu.max`.
    pub cpu: Option<f64>,
    /// Memory limit in bytes, written to `memory.max`.
    pub memory_bytes: Option<u64>,
    /// Process limit, written to `pids.max`.
    pub pids: Option<u64>,
    /// Join this network namespace (a bind-mounted nsfs file); `None`: a new, empty one.
    pub netns: Option<PathBuf>,
    /// Host directories to mount.
    pub volumes: Vec<Volume>,
    /// Files to bind-mount read-only.
    pub files: Vec<File>,
    /// Capabilities added to the default set, by name without `CAP_` (only those of
    /// [`spec::ADDABLE`]).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// The service's ext4 project on the data partition: the writable layer is marked with it
    /// so that what the container writes counts against the service's `resources.disk`.
    #[serde(default)]
    pub disk_project: Option<u32>,
    /// Run in a user namespace whose ids `0..count` are the board's `base..base + count`;
    /// `None`: the board's ids (container root is the board's root).
    #[serde(default)]
    pub ids: Option<IdRange>,
}

/// A range of the board's user and group ids a container's ids map onto.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRange {
    /// The board's id of the container's root (uid and gid alike).
    pub base: u32,
    /// How many ids, from the container's 0.
    pub count: u32,
}

/// A request to create and start a container.
#[derive(Debug)]
pub struct ContainerRequest {
    /// What to run.
    pub config: ContainerConfig,
    /// The write end of the pipe (or any file) for its stdout.
    pub stdout: OwnedFd,
    /// The write end of the pipe (or any file) for its stderr.
    pub stderr: OwnedFd,
}

/// A container that runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    /// Its id.
    pub id: String,
    /// Its init's pid (in the board's pid namespace).
    pub pid: i32,
}

/// How a container's init ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

/// A container's init ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    /// The container's id.
    pub id: String,
    /// How it ended.
    pub status: ExitStatus,
    /// The kernel's OOM killer killed a process of its cgroup during this run.
    pub oom_killed: bool,
}

/// What the runtime reports on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A container ended (call [`Runtime::remove`] next).
    Exit(Exit),
    /// The helper is gone: every container is gone with it. The last event.
    Lost(String),
}

/// A container configuration for tests: every kind of field set.
#[cfg(test)]
pub(crate) fn sample_config() -> ContainerConfig {
    ContainerConfig {
        id: "web-1".into(),
        lower_dirs: vec!["/data/layers/a".into()],
        writable_dir: "/data/rw/web-1".into(),
        readonly_root: true,
        args: vec!["/bin/web".into(), "--port=80".into()],
        env: vec!["PATH=/bin".into()],
        cwd: "/srv".into(),
        user: (1000, 100),
        hostname: "web".into(),
        cpu: Some(0.5),
        memory_bytes: Some(64 << 20),
        pids: Some(32),
        netns: None,
        volumes: vec![Volume {
            host: "/data/volumes/db".into(),
            container: "/var/db".into(),
            readonly: false,
        }],
        files: vec![File {
            container: "/etc/hosts".into(),
            contents: b"127.0.0.1 localhost\n".to_vec(),
        }],
        capabilities: Vec::new(),
        disk_project: None,
        ids: None,
    }
}
