//! The OCI runtime spec (`config.json`) of a container, built from a [`ContainerConfig`].
//!
//! [`build`] is a pure function: the helper writes its result into the bundle, and the tests
//! check the mounts, namespaces, limits, cgroup path and capabilities without root.

use std::collections::HashSet;
use std::path::Path;

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxIdMappingBuilder,
    LinuxMemoryBuilder, LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimitBuilder,
    PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use super::ContainerConfig;

/// Errors building a spec.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// oci-spec refused a value.
    #[error("cannot build the OCI spec of container {id}: {source}")]
    Oci {
        /// The container.
        id: String,
        /// oci-spec's reason.
        source: oci_spec::OciSpecError,
    },
    /// A field of the request cannot be used.
    #[error("container {id}: {message}")]
    Invalid {
        /// The container.
        id: String,
        /// What is wrong.
        message: String,
    },
}

/// The CFS period `cpu.max` is written with, in microseconds.
pub const CPU_PERIOD_US: u64 = 100_000;

/// Docker's default capabilities without `CAP_MKNOD`, `CAP_SYS_CHROOT` and `CAP_NET_RAW` (see
/// the module docs of `runtime`). Without `NET_RAW` a container cannot write raw frames or
/// packets; a spec that needs it says so ([`ADDABLE`]).
pub const CAPABILITIES: [Capability; 11] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::Kill,
    Capability::AuditWrite,
];

/// The capabilities a request may add to [`CAPABILITIES`], by name: the closed list a service
/// spec may ask for (`baton_spec::service::Capability`). Anything else is refused here too.
pub const ADDABLE: [(&str, Capability); 1] = [("NET_RAW", Capability::NetRaw)];

/// Paths runc masks (an empty read-only bind or tmpfs hides them).
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths runc makes read-only.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The bundle-relative directory the overlay root is mounted on.
pub const ROOTFS: &str = "rootfs";

/// Builds the spec of `config`; `files_dir` holds the request's files as `0`, `1`, ... in order.
pub fn build(
    config: &ContainerConfig,
    cgroup_parent: &str,
    files_dir: &Path,
) -> Result<Spec, Error> {
    let id = &config.id;
    let oci = |source| Error::Oci {
        id: id.clone(),
        source,
    };
    let invalid = |message: String| Error::Invalid {
        id: id.clone(),
        message,
    };
    if config.args.is_empty() {
        return Err(invalid("no command to run".into()));
    }
    if !config.cwd.starts_with('/') {
        return Err(invalid(format!(
            "working directory {:?} is not absolute",
            config.cwd
        )));
    }
    if !config.env.iter().any(|e| e.starts_with("PATH=")) {
        return Err(invalid("the environment has no PATH".into()));
    }

    let mut caps: HashSet<Capability> = CAPABILITIES.into_iter().collect();
    for name in &config.capabilities {
        let Some((_, cap)) = ADDABLE.iter().find(|(n, _)| n == name) else {
            return Err(invalid(format!(
                "capability {name:?} cannot be added (only {})",
                ADDABLE.map(|(n, _)| n).join(", ")
            )));
        };
        caps.insert(*cap);
    }
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()
        .map_err(oci)?;
    let nofile = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .hard(1024u64)
        .soft(1024u64)
        .build()
        .map_err(oci)?;
    let process = ProcessBuilder::default()
        .terminal(false)
        // The helper runs at -1000 (see `board::cgroups`); the workload must be killable.
        .oom_score_adj(0)
        .user(
            UserBuilder::default()
                .uid(config.user.0)
                .gid(config.user.1)
                .build()
                .map_err(oci)?,
        )
        .args(config.args.clone())
        .env(config.env.clone())
        .cwd(config.cwd.clone())
        .capabilities(capabilities)
        .rlimits(vec![nofile])
        .no_new_privileges(true)
        .build()
        .map_err(oci)?;

    let mut linux = LinuxBuilder::default();
    if let Some(ids) = config.ids {
        if ids.count == 0 || ids.base.checked_add(ids.count).is_none() {
            return Err(invalid(format!(
                "id range {}+{} is empty or past the last id",
                ids.base, ids.count
            )));
        }
        let map = LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(ids.base)
            .size(ids.count)
            .build()
            .map_err(oci)?;
        linux = linux.uid_mappings(vec![map]).gid_mappings(vec![map]);
    }
    let linux = linux
        .namespaces(namespaces(config).map_err(oci)?)
        .resources(resources(config).map_err(oci)?)
        .cgroups_path(format!("/{cgroup_parent}/{id}"))
        .masked_paths(MASKED_PATHS.map(String::from).to_vec())
        .readonly_paths(READONLY_PATHS.map(String::from).to_vec())
        .build()
        .map_err(oci)?;

    SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(ROOTFS)
                .readonly(config.readonly_root)
                .build()
                .map_err(oci)?,
        )
        .hostname(config.hostname.clone())
        .mounts(mounts(config, files_dir).map_err(oci)?)
        .process(process)
        .linux(linux)
        .build()
        .map_err(oci)
}

/// Whether the helper joins the container's network namespace itself before creating it.
///
/// A container in a user namespace cannot enter a network namespace made outside it:
/// libcontainer enters the user namespace first, and then lacks the rights over the network
/// namespace's owner. So for such a container the spec names no network namespace and the
/// helper enters the given one before libcontainer forks; the container inherits it.
pub fn helper_joins_network(config: &ContainerConfig) -> bool {
    config.ids.is_some() && config.netns.is_some()
}

fn namespaces(config: &ContainerConfig) -> Result<Vec<LinuxNamespace>, oci_spec::OciSpecError> {
    let new = |typ| LinuxNamespaceBuilder::default().typ(typ).build();
    let mut list = Vec::new();
    if config.ids.is_some() {
        list.push(new(LinuxNamespaceType::User)?);
    }
    list.extend([
        new(LinuxNamespaceType::Pid)?,
        new(LinuxNamespaceType::Mount)?,
        new(LinuxNamespaceType::Ipc)?,
        new(LinuxNamespaceType::Uts)?,
        new(LinuxNamespaceType::Cgroup)?,
    ]);
    match &config.netns {
        _ if helper_joins_network(config) => {}
        Some(path) => list.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Network)
                .path(path.clone())
                .build()?,
        ),
        None => list.push(new(LinuxNamespaceType::Network)?),
    }
    Ok(list)
}

fn resources(
    config: &ContainerConfig,
) -> Result<oci_spec::runtime::LinuxResources, oci_spec::OciSpecError> {
    let mut r = LinuxResourcesBuilder::default();
    if let Some(bytes) = config.memory_bytes {
        let limit = i64::try_from(bytes).unwrap_or(i64::MAX);
        r = r.memory(LinuxMemoryBuilder::default().limit(limit).build()?);
    }
    if let Some(cpus) = config.cpu {
        // At least 1 ms per period: the kernel's minimum quota.
        let quota = ((cpus * CPU_PERIOD_US as f64).round() as i64).max(1000);
        r = r.cpu(
            LinuxCpuBuilder::default()
                .quota(quota)
                .period(CPU_PERIOD_US)
                .build()?,
        );
    }
    if let Some(pids) = config.pids {
        let limit = i64::try_from(pids).unwrap_or(i64::MAX);
        r = r.pids(LinuxPidsBuilder::default().limit(limit).build()?);
    }
    r.build()
}

fn mount(
    dest: &str,
    typ: &str,
    source: &str,
    options: &[&str],
) -> Result<Mount, oci_spec::OciSpecError> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()
}

/// `/sys`: a fresh sysfs, read-only; but sysfs cannot be mounted in a user namespace that does
/// not own the network namespace (the one the helper joins for it), so there the board's
/// `/sys` is bound instead, read-only throughout (its submounts come along, locked, and the
/// container's cgroup mount covers the board's cgroup tree).
fn sys(config: &ContainerConfig) -> Result<Mount, oci_spec::OciSpecError> {
    if helper_joins_network(config) {
        mount(
            "/sys",
            "bind",
            "/sys",
            &["rbind", "nosuid", "noexec", "nodev", "ro", "rro"],
        )
    } else {
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )
    }
}

fn mounts(
    config: &ContainerConfig,
    files_dir: &Path,
) -> Result<Vec<Mount>, oci_spec::OciSpecError> {
    let mut list = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        sys(config)?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        )?,
    ];
    if config.readonly_root {
        list.push(mount(
            "/tmp",
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "mode=1777"],
        )?);
    }
    for v in &config.volumes {
        let source = v.host.to_string_lossy();
        let mode = if v.readonly { "ro" } else { "rw" };
        list.push(mount(
            &v.container,
            "bind",
            &source,
            &["rbind", "nosuid", "nodev", mode],
        )?);
    }
    for (i, f) in config.files.iter().enumerate() {
        let source = files_dir.join(i.to_string());
        list.push(mount(
            &f.container,
            "bind",
            &source.to_string_lossy(),
            &["bind", "nosuid", "nodev", "noexec", "ro"],
        )?);
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::runtime::sample_config;
    use std::path::PathBuf;

    fn spec(c: &ContainerConfig) -> Spec {
        build(c, "baton", Path::new("/run/baton/bundles/web-1/files")).expect("spec")
    }

    fn find<'a>(s: &'a Spec, dest: &str) -> Option<&'a Mount> {
        s.mounts()
            .as_ref()
            .and_then(|m| m.iter().find(|m| m.destination() == Path::new(dest)))
    }

    fn options(m: &Mount) -> Vec<String> {
        m.options().clone().unwrap_or_default()
    }

    #[test]
    fn process_is_the_request_with_no_new_privileges() {
        let s = spec(&sample_config());
        let p = s.process().as_ref().expect("process");
        assert_eq!(
            p.args().as_deref(),
            Some(&["/bin/web".to_string(), "--port=80".to_string()][..])
        );
        assert_eq!(p.cwd(), Path::new("/srv"));
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 100));
        assert_eq!(p.no_new_privileges(), Some(true));
        assert_eq!(p.terminal(), Some(false));
        assert_eq!(s.hostname().as_deref(), Some("web"));
    }

    #[test]
    fn capabilities_are_dockers_defaults_without_mknod_chroot_and_net_raw() {
        let s = spec(&sample_config());
        let caps = s
            .process()
            .as_ref()
            .and_then(|p| p.capabilities().clone())
            .expect("capabilities");
        let bounding = caps.bounding().clone().expect("bounding");
        assert_eq!(bounding.len(), CAPABILITIES.len());
        assert!(bounding.contains(&Capability::NetBindService));
        assert!(!bounding.contains(&Capability::Mknod));
        assert!(!bounding.contains(&Capability::SysAdmin));
        assert!(!bounding.contains(&Capability::SysChroot));
        assert!(!bounding.contains(&Capability::NetRaw));
        assert_eq!(caps.effective(), caps.bounding());
        assert_eq!(caps.permitted(), caps.bounding());
        assert_eq!(caps.ambient().as_ref().map(|a| a.len()), Some(0));
    }

    #[test]
    fn a_request_adds_only_the_capabilities_a_spec_may_name() {
        let mut c = sample_config();
        c.capabilities = vec!["NET_RAW".into()];
        let s = spec(&c);
        let caps = s
            .process()
            .as_ref()
            .and_then(|p| p.capabilities().clone())
            .expect("capabilities");
        let bounding = caps.bounding().clone().expect("bounding");
        assert!(bounding.contains(&Capability::NetRaw));
        assert_eq!(bounding.len(), CAPABILITIES.len() + 1);
        assert_eq!(caps.effective(), caps.bounding());
        c.capabilities = vec!["SYS_ADMIN".into()];
        let e = build(&c, "baton", Path::new("/files")).expect_err("refused");
        assert!(
            e.to_string().contains("\"SYS_ADMIN\" cannot be added"),
            "{e}"
        );
    }

    #[test]
    fn namespaces_are_new_or_the_given_network() {
        let mut c = sample_config();
        let s = spec(&c);
        let ns = s
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .expect("ns");
        let types: Vec<_> = ns.iter().map(|n| n.typ()).collect();
        for t in [
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Cgroup,
            LinuxNamespaceType::Network,
        ] {
            assert!(types.contains(&t), "{t:?} missing");
        }
        assert!(!types.contains(&LinuxNamespaceType::User));
        assert!(ns.iter().all(|n| n.path().is_none()));

        c.netns = Some(PathBuf::from("/run/netns/web-1"));
        let s = spec(&c);
        let ns = s
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .expect("ns");
        let net = ns
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Network)
            .expect("net");
        assert_eq!(net.path().as_deref(), Some(Path::new("/run/netns/web-1")));
    }

    #[test]
    fn limits_and_cgroup_path() {
        let s = spec(&sample_config());
        let linux = s.linux().as_ref().expect("linux");
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(Path::new("/baton/web-1"))
        );
        let r = linux.resources().as_ref().expect("resources");
        assert_eq!(r.memory().as_ref().and_then(|m| m.limit()), Some(64 << 20));
        let cpu = r.cpu().as_ref().expect("cpu");
        assert_eq!(
            (cpu.quota(), cpu.period()),
            (Some(50_000), Some(CPU_PERIOD_US))
        );
        assert_eq!(r.pids().as_ref().map(|p| p.limit()), Some(32));

        let mut c = sample_config();
        (c.cpu, c.memory_bytes, c.pids) = (None, None, None);
        let s = spec(&c);
        let r = s
            .linux()
            .as_ref()
            .and_then(|l| l.resources().clone())
            .expect("resources");
        assert!(r.memory().is_none() && r.cpu().is_none() && r.pids().is_none());
    }

    #[test]
    fn masked_and_readonly_paths_like_runc() {
        let s = spec(&sample_config());
        let linux = s.linux().as_ref().expect("linux");
        let masked = linux.masked_paths().clone().expect("masked");
        assert!(masked.contains(&"/proc/kcore".to_string()));
        let ro = linux.readonly_paths().clone().expect("readonly");
        assert!(ro.contains(&"/proc/sys".to_string()));
    }

    #[test]
    fn mounts_root_tmp_volumes_and_files() {
        let s = spec(&sample_config());
        let root = s.root().as_ref().expect("root");
        assert_eq!(root.path(), Path::new(ROOTFS));
        assert_eq!(root.readonly(), Some(true));
        for dest in [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys/fs/cgroup",
        ] {
            assert!(find(&s, dest).is_some(), "{dest} missing");
        }
        assert!(options(find(&s, "/sys").expect("sys")).contains(&"ro".to_string()));
        let tmp = find(&s, "/tmp").expect("tmp");
        assert_eq!(tmp.typ().as_deref(), Some("tmpfs"));

        let vol = find(&s, "/var/db").expect("volume");
        assert_eq!(vol.source().as_deref(), Some(Path::new("/data/volumes/db")));
        assert!(options(vol).contains(&"rw".to_string()));

        let hosts = find(&s, "/etc/hosts").expect("hosts");
        assert_eq!(hosts.typ().as_deref(), Some("bind"));
        assert_eq!(
            hosts.source().as_deref(),
            Some(Path::new("/run/baton/bundles/web-1/files/0"))
        );
        assert!(options(hosts).contains(&"ro".to_string()));
    }

    #[test]
    fn a_writable_root_has_no_tmpfs_on_tmp() {
        let mut c = sample_config();
        c.readonly_root = false;
        let s = spec(&c);
        assert_eq!(s.root().as_ref().and_then(|r| r.readonly()), Some(false));
        assert!(find(&s, "/tmp").is_none());
    }

    #[test]
    fn an_id_range_makes_a_user_namespace_with_its_mapping() {
        let mut c = sample_config();
        c.ids = Some(crate::containers::runtime::IdRange {
            base: 131_072,
            count: 65_536,
        });
        c.netns = Some(PathBuf::from("/run/netns/web-1"));
        let s = spec(&c);
        let linux = s.linux().as_ref().expect("linux");
        let types: Vec<_> = linux
            .namespaces()
            .clone()
            .expect("ns")
            .iter()
            .map(|n| n.typ())
            .collect();
        assert!(types.contains(&LinuxNamespaceType::User));
        assert!(
            !types.contains(&LinuxNamespaceType::Network),
            "the helper joins the given network namespace itself"
        );
        for maps in [linux.uid_mappings(), linux.gid_mappings()] {
            let maps = maps.clone().expect("mappings");
            assert_eq!(maps.len(), 1);
            assert_eq!(
                (maps[0].container_id(), maps[0].host_id(), maps[0].size()),
                (0, 131_072, 65_536)
            );
        }
        let sys = find(&s, "/sys").expect("sys");
        assert_eq!(sys.typ().as_deref(), Some("bind"));
        assert!(options(sys).contains(&"rro".to_string()));
        assert!(helper_joins_network(&c));

        c.netns = None;
        let s = spec(&c);
        let types: Vec<_> = s
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .expect("ns")
            .iter()
            .map(|n| n.typ())
            .collect();
        assert!(
            types.contains(&LinuxNamespaceType::Network),
            "a new one, in the user namespace"
        );
        assert_eq!(
            find(&s, "/sys").and_then(|m| m.typ().clone()).as_deref(),
            Some("sysfs")
        );

        c.ids = Some(crate::containers::runtime::IdRange {
            base: u32::MAX - 10,
            count: 65_536,
        });
        assert!(build(&c, "baton", Path::new("/f")).is_err());
    }

    #[test]
    fn bad_requests_are_refused_with_the_container_named() {
        let mut c = sample_config();
        c.args.clear();
        let e = build(&c, "baton", Path::new("/f")).expect_err("no args");
        assert!(e.to_string().contains("web-1"), "{e}");
        let mut c = sample_config();
        c.env = vec!["HOME=/".into()];
        assert!(build(&c, "baton", Path::new("/f")).is_err());
        let mut c = sample_config();
        c.cwd = "srv".into();
        assert!(build(&c, "baton", Path::new("/f")).is_err());
    }
}
