//! The config partition (`BATON-CFG`, FAT32): mount it at `/config`, list its files and read
//! `cluster.toml`. A broken or missing file never stops the boot: the board comes up with
//! defaults, reports every error, and keeps the API token if one can be salvaged.

use std::path::Path;

use baton_spec::board_config::FILE_NAME;
use baton_spec::build_info::partition;
use baton_spec::{BoardConfig, ConfigError, NetworkConfig};

use crate::board::context::Ctx;
use crate::board::sys::MsFlags;
use crate::boot::disk::BootDisk;
use crate::boot::mounts;

/// Where the config partition is mounted.
pub const MOUNT_POINT: &str = "/config";
/// Files listed at most (a card full of junk must not fill the memory).
const MAX_FILES: usize = 10_000;
/// FAT has no owners or modes, so the kernel gives every file the same ones. Without these
/// options every file is readable by every uid (0755): `ca.key` and `cluster.toml` (cluster
/// key, API token) would be open to any process on the board that does not run as root, such
/// as the front door after it drops its uid. Only PID 1 reads the card, so root alone gets in.
pub const OPTIONS: &str = "uid=0,gid=0,fmask=0077,dmask=0077";

/// Errors with the config partition itself (errors in its files are [`ConfigError`]s).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The boot disk has no config partition.
    #[error("boot disk /dev/{disk} has no config partition (number {number}); using defaults")]
    Missing {
        /// Disk name.
        disk: String,
        /// Partition number looked for.
        number: u32,
    },
    /// Mounting failed.
    #[error("{0}; using defaults")]
    Mount(#[from] mounts::Error),
}

/// What the rest of the boot needs from `cluster.toml` (defaults when it is broken).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootConfig {
    /// `[board] hostname`.
    pub hostname: Option<String>,
    /// `[network]`.
    pub network: NetworkConfig,
    /// `[time] servers`.
    pub time_servers: Vec<String>,
    /// `[registries]`: credentials and insecure flags for registry pulls.
    pub registries: std::collections::BTreeMap<String, baton_spec::board_config::RegistryConfig>,
    /// `[cluster]` and `[board] labels`, when `cluster.toml` is valid (no key, no cluster).
    pub cluster: Option<ClusterBoot>,
    /// `[front_door]`: what service specs are checked against on this board.
    pub front_door: baton_spec::FrontDoor,
}

/// What the cluster member needs from `cluster.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterBoot {
    /// `[cluster] name`.
    pub name: String,
    /// `[cluster] key`.
    pub key: String,
    /// `[cluster] interface`.
    pub interface: Option<String>,
    /// `[board] labels`.
    pub labels: std::collections::BTreeMap<String, String>,
    /// `[cluster] timezone`: the calendar surge dates are read in.
    pub timezone: baton_spec::time_zone::TimeZone,
}

impl Default for BootConfig {
    fn default() -> Self {
        BootConfig {
            hostname: None,
            network: NetworkConfig::default(),
            time_servers: vec!["pool.ntp.org".to_string()],
            registries: Default::default(),
            cluster: None,
            front_door: Default::default(),
        }
    }
}

impl From<&BoardConfig> for BootConfig {
    fn from(c: &BoardConfig) -> Self {
        BootConfig {
            hostname: c.hostname.clone(),
            network: c.network.clone(),
            time_servers: c.time_servers.clone(),
            registries: c.registries.clone(),
            cluster: Some(ClusterBoot {
                name: c.name.clone(),
                key: c.key.clone(),
                interface: c.interface.clone(),
                labels: c.labels.clone(),
                timezone: c.timezone.clone(),
            }),
            front_door: c.front_door.clone(),
        }
    }
}

/// Mounts the config partition of `disk` read-write, readable by root only ([`OPTIONS`]).
pub fn mount(ctx: &Ctx, disk: &BootDisk) -> Result<(), Error> {
    let number = partition::CONFIG;
    let device = disk.partition(number).ok_or_else(|| Error::Missing {
        disk: disk.name.clone(),
        number,
    })?;
    let flags = MsFlags::MS_NOATIME | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mounts::mount_device_with(ctx, &device, MOUNT_POINT, "vfat", flags, Some(OPTIONS))?;
    Ok(())
}

/// Lists the files on the mounted partition into the board state and reads `cluster.toml`.
/// Sets the API token and the config errors; returns the configuration to boot with.
pub fn load(ctx: &Ctx) -> BootConfig {
    let root = ctx.path(MOUNT_POINT);
    let mut files = Vec::new();
    list_files(&root, "", &mut files);
    files.sort();
    ctx.state.update_info(|i| i.config_files = files);

    let src = match std::fs::read(root.join(FILE_NAME)) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err("is missing from the config partition".to_string())
        }
        Err(e) => Err(format!("cannot be read: {e}")),
    };
    let parsed = src
        .as_deref()
        .map_err(|message| {
            vec![ConfigError {
                file: FILE_NAME.to_string(),
                line: None,
                field: String::new(),
                message: message.clone(),
            }]
        })
        .and_then(|src| BoardConfig::parse(FILE_NAME, src).map_err(|e| e.0));
    match parsed {
        Ok(config) => {
            ctx.state.set_token(Some(config.token.clone()));
            ctx.state.set_metrics_token(config.metrics_token.clone());
            ctx.state.set_config_errors(Vec::new());
            BootConfig::from(&config)
        }
        Err(errors) => {
            for e in &errors {
                ctx.report(format_args!("config: {e}"));
            }
            ctx.state.set_config_errors(errors);
            let token = src.ok().and_then(|s| BoardConfig::salvage_token(&s));
            if token.is_none() {
                ctx.say("config: no usable API token; the API refuses authenticated requests");
            }
            ctx.state.set_token(token);
            BootConfig::default()
        }
    }
}

/// Appends the files under `dir` (as `prefix/name` paths) to `out`, depth first.
fn list_files(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        if out.len() >= MAX_FILES {
            return;
        }
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        match entry.file_type() {
            Ok(t) if t.is_dir() => list_files(&entry.path(), &rel, out),
            Ok(t) if t.is_file() => out.push(rel),
            _ => {}
        }
    }
}

/// Reads every service spec in `/config/services/`; valid specs are returned, problems go to
/// the console and to the state's config errors (replacing earlier `services/` errors).
pub fn load_services(
    ctx: &Ctx,
    front_door: &baton_spec::FrontDoor,
) -> Vec<baton_spec::ServiceSpec> {
    let dir = ctx
        .path(MOUNT_POINT)
        .join(baton_spec::service::SERVICES_DIR);
    let mut files: Vec<(String, String)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            match std::fs::read(entry.path()) {
                Ok(bytes) => files.push((name, String::from_utf8_lossy(&bytes).into_owned())),
                Err(e) => ctx.report(format_args!("services/{name}: cannot be read: {e}")),
            }
        }
    }
    files.sort();
    load_service_files(ctx, &files, front_door)
}

/// Validates the `services/` files given as (file name, text), each also against this board's
/// `[front_door]`, and reports as [`load_services`] does.
pub fn load_service_files(
    ctx: &Ctx,
    files: &[(String, String)],
    front_door: &baton_spec::FrontDoor,
) -> Vec<baton_spec::ServiceSpec> {
    let loaded = baton_spec::service::load_services_with(files, front_door);
    for note in &loaded.notes {
        ctx.say(format_args!("services: {note}"));
    }
    for e in &loaded.errors {
        ctx.say(format_args!("config error: {e}"));
    }
    ctx.state.replace_config_errors("services/", loaded.errors);
    loaded.specs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::testbed::Testbed;

    const GOOD: &str = "[cluster]\nkey = \"0123456789abcdef0123456789abcdef\"\n\
                        [api]\ntoken = \"secret-token-1234567\"\n[board]\nhostname = \"pi-one\"\n";

    #[test]
    fn a_good_file_sets_the_token_and_lists_files() {
        let tb = Testbed::new();
        tb.file("/config/cluster.toml", GOOD);
        tb.file("/config/services/web.toml", "");
        tb.file("/config/images/web.tar", "");
        let config = load(&tb.ctx);
        assert_eq!(config.hostname.as_deref(), Some("pi-one"));
        assert_eq!(tb.state().token().as_deref(), Some("secret-token-1234567"));
        assert_eq!(
            tb.state().info().config_files,
            ["cluster.toml", "images/web.tar", "services/web.toml"]
        );
        assert!(tb.state().errors().is_empty());
    }

    #[test]
    fn a_broken_file_boots_with_defaults_and_keeps_the_token() {
        let tb = Testbed::new();
        tb.file(
            "/config/cluster.toml",
            "[api]\ntoken = \"secret-token-1234567\"\n[network]\nmdoe = \"dhcp\"\n",
        );
        let config = load(&tb.ctx);
        assert_eq!(config, BootConfig::default());
        assert_eq!(tb.state().token().as_deref(), Some("secret-token-1234567"));
        let fields: Vec<_> = tb
            .state()
            .config_errors()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert!(fields.contains(&"network.mdoe".to_string()), "{fields:?}");
        assert!(tb
            .state()
            .errors()
            .iter()
            .any(|e| e.contains("cluster.toml:4: network.mdoe")));
        assert!(tb
            .console()
            .iter()
            .any(|l| l.contains("config: cluster.toml:4")));
    }

    #[test]
    fn a_missing_file_is_a_config_error_without_token() {
        let tb = Testbed::new();
        let config = load(&tb.ctx);
        assert_eq!(config, BootConfig::default());
        assert_eq!(tb.state().token(), None);
        let errors = tb.state().config_errors();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].file, "cluster.toml");
        assert!(errors[0].message.contains("missing"));
    }

    #[test]
    fn mounts_partition_three_as_vfat_for_root_only() {
        let tb = Testbed::new();
        tb.image_disk(crate::boot::testbed::IMAGE_END, 1);
        let disk = crate::boot::disk::scan(&tb.ctx, crate::boot::testbed::DISK_ID)
            .0
            .expect("disk");
        mount(&tb.ctx, &disk).expect("mounted");
        assert_eq!(
            tb.sys.calls(),
            ["mount vfat /dev/vda3 /config uid=0,gid=0,fmask=0077,dmask=0077"]
        );
        tb.sys.fail("mount vfat", nix::libc::EIO);
        let err = mount(&tb.ctx, &disk).expect_err("fails").to_string();
        assert!(
            err.contains("vfat on /config") && err.contains("using defaults"),
            "{err}"
        );
    }

    #[test]
    fn card_specs_are_checked_against_the_board_s_front_door() {
        let tb = Testbed::new();
        tb.file(
            "/config/cluster.toml",
            format!("{GOOD}[front_door]\nhttp = 8080\n[front_door.mtls]\nca = \"certs/c.pem\"\n"),
        );
        let config = load(&tb.ctx);
        assert_eq!(config.front_door.http, 8080);
        let spec = |name: &str, rest: &str| {
            (
                format!("{name}.toml"),
                format!("name = \"{name}\"\nimage = \"nginx\"\nport = 80\n{rest}"),
            )
        };
        let files = [
            spec("bearer", "route = { path = \"/a\", auth = \"oidc\" }\n"),
            spec("certs", "route = { path = \"/b\", auth = \"mtls\" }\n"),
            spec("moved", "publish = 8080\n"),
        ];
        let specs = load_service_files(&tb.ctx, &files, &config.front_door);
        let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["certs"]);
        let errors: Vec<_> = tb
            .state()
            .config_errors()
            .into_iter()
            .map(|e| (e.file, e.line, e.field))
            .collect();
        assert_eq!(
            errors,
            [
                (
                    "services/bearer.toml".to_string(),
                    Some(4),
                    "route.auth".to_string()
                ),
                (
                    "services/moved.toml".to_string(),
                    Some(4),
                    "publish".to_string()
                ),
            ]
        );
    }
}
