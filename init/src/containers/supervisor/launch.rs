//! What an instance runs: the service spec laid over the image's defaults, as a runtime
//! [`ContainerConfig`]. Pure, so the rules are unit-tested:
//!
//! - `command` replaces the image's entrypoint and then also drops its `Cmd` (as Docker
//!   does); `args` replaces the `Cmd`;
//! - `env` is added to the image's environment, overriding equal names; `PATH` defaults to
//!   the usual one;
//! - `workdir` and `user` fall back to the image's, then to `/` and root; user names are
//!   looked up in the image's `/etc/passwd` and `/etc/group` (read from its layers as
//!   module `image_files` does: blocking, so the whole is built off the runtime thread).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use baton_oci::RuntimeConfig;
use baton_spec::service::{Id, ServiceSpec};

use super::image_files::{self, Refused};
use crate::containers::runtime::{ContainerConfig, File, Volume};

/// `PATH` when neither the image nor the spec sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where one instance lives on the board.
#[derive(Debug, Clone)]
pub struct Placement<'a> {
    /// Container id and host name (`web-1`).
    pub id: &'a str,
    /// The image layers, top first.
    pub lower_dirs: &'a [PathBuf],
    /// Directory for the overlay's upper and work dirs.
    pub writable_dir: PathBuf,
    /// The network namespace to join.
    pub netns: Option<PathBuf>,
    /// The instance's address on the board bridge.
    pub address: Option<Ipv4Addr>,
    /// Where the service's named volumes live (`<dir>/<volume>`); `None` without a data partition.
    pub volumes_dir: Option<PathBuf>,
    /// The board's `/etc/resolv.conf`.
    pub resolv_conf: Vec<u8>,
}

/// Why an instance cannot be described.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Neither the spec nor the image says what to run.
    #[error("nothing to run: the image has no entrypoint or cmd and the spec no command")]
    NoCommand,
    /// A user or group name is not in the image.
    #[error("{kind} {name:?} is not in the image's {file}")]
    UnknownName {
        /// `user` or `group`.
        kind: &'static str,
        /// The name.
        name: String,
        /// `/etc/passwd` or `/etc/group`.
        file: &'static str,
    },
    /// The image's `User` is not understood.
    #[error("the image's user {0:?} is not a number or a known name")]
    BadImageUser(String),
    /// A file of the image was refused.
    #[error("image {image}: {path}: {why}")]
    ImageFile {
        /// The image reference.
        image: String,
        /// The file in the image.
        path: &'static str,
        /// Why.
        why: Refused,
    },
    /// Volumes need the data partition.
    #[error("volumes need the data partition, which is not mounted")]
    NoDataPartition,
}

/// Builds the container configuration of one instance.
pub fn container_config(
    spec: &ServiceSpec,
    image: &RuntimeConfig,
    at: &Placement<'_>,
) -> Result<ContainerConfig, Error> {
    let mut args: Vec<String> = match &spec.command {
        Some(command) => command.clone(),
        None => image.entrypoint.clone(),
    };
    match (&spec.args, &spec.command) {
        (Some(a), _) => args.extend(a.iter().cloned()),
        (None, None) => args.extend(image.cmd.iter().cloned()),
        (None, Some(_)) => {}
    }
    if args.is_empty() {
        return Err(Error::NoCommand);
    }

    let mut env: BTreeMap<String, String> = image
        .env
        .iter()
        .filter_map(|e| {
            e.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    if let Some(port) = spec.port {
        env.entry("PORT".to_string())
            .or_insert_with(|| port.to_string());
    }
    env.entry("PATH".to_string())
        .or_insert_with(|| DEFAULT_PATH.to_string());
    env.entry("HOSTNAME".to_string())
        .or_insert_with(|| at.id.to_string());

    let cwd = match (&spec.workdir, &image.working_dir) {
        (Some(w), _) => w.to_string_lossy().into_owned(),
        (None, Some(w)) if w.starts_with('/') => w.clone(),
        _ => "/".to_string(),
    };
    let user = resolve_user(spec, image, at.lower_dirs)?;

    let volumes = if spec.volumes.is_empty() {
        Vec::new()
    } else {
        let dir = at.volumes_dir.as_ref().ok_or(Error::NoDataPartition)?;
        spec.volumes
            .iter()
            .map(|v| Volume {
                host: dir.join(&v.name),
                container: v.path.to_string_lossy().into_owned(),
                readonly: v.readonly,
            })
            .collect()
    };

    let mut hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost\n".to_string();
    if let Some(a) = at.address {
        hosts.push_str(&format!("{a}\t{}\n", at.id));
    }
    let files = vec![
        File {
            container: "/etc/hosts".to_string(),
            contents: hosts.into_bytes(),
        },
        File {
            container: "/etc/resolv.conf".to_string(),
            contents: at.resolv_conf.clone(),
        },
        File {
            container: "/etc/hostname".to_string(),
            contents: format!("{}\n", at.id).into_bytes(),
        },
    ];

    Ok(ContainerConfig {
        id: at.id.to_string(),
        lower_dirs: at.lower_dirs.to_vec(),
        writable_dir: at.writable_dir.clone(),
        readonly_root: spec.readonly_root,
        args,
        env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
        cwd,
        user,
        hostname: at.id.to_string(),
        cpu: spec.resources.cpu_millis.map(|m| f64::from(m) / 1000.0),
        memory_bytes: Some(spec.resources.memory_bytes),
        pids: Some(u64::from(spec.resources.pids)),
        netns: at.netns.clone(),
        volumes,
        files,
        capabilities: spec
            .capabilities
            .iter()
            .map(|c| c.name().to_string())
            .collect(),
        disk_project: None,
        ids: None,
    })
}

fn resolve_user(
    spec: &ServiceSpec,
    image: &RuntimeConfig,
    layers: &[PathBuf],
) -> Result<(u32, u32), Error> {
    let (user, group) = match &spec.user {
        Some(u) => (Some(u.user.clone()), u.group.clone()),
        None => match image.user.as_deref().filter(|u| !u.is_empty()) {
            None => (None, None),
            Some(text) => {
                let (u, g) = match text.split_once(':') {
                    Some((u, g)) => (u, Some(g)),
                    None => (text, None),
                };
                let id = |s: &str| {
                    s.parse()
                        .map(Id::Number)
                        .unwrap_or_else(|_| Id::Name(s.to_string()))
                };
                (Some(id(u)), g.map(id))
            }
        },
    };
    let Some(user) = user else { return Ok((0, 0)) };
    let image = spec.image.to_string();
    let find = |file, field, matches: &dyn Fn(&[&str]) -> bool| {
        lookup(&image, layers, file, field, matches)
    };
    let (uid, primary_gid) = match user {
        Id::Number(n) if group.is_some() => (n, n),
        Id::Number(n) => (
            n,
            find("/etc/passwd", 3, &|f| {
                f.get(2) == Some(&n.to_string().as_str())
            })?
            .unwrap_or(n),
        ),
        Id::Name(name) => {
            let uid = find("/etc/passwd", 2, &|f| f.first() == Some(&name.as_str()))?.ok_or(
                Error::UnknownName {
                    kind: "user",
                    name: name.clone(),
                    file: "/etc/passwd",
                },
            )?;
            let gid =
                find("/etc/passwd", 3, &|f| f.first() == Some(&name.as_str()))?.unwrap_or(uid);
            (uid, gid)
        }
    };
    let gid = match group {
        None => primary_gid,
        Some(Id::Number(n)) => n,
        Some(Id::Name(name)) => find("/etc/group", 2, &|f| f.first() == Some(&name.as_str()))?
            .ok_or(Error::UnknownName {
                kind: "group",
                name,
                file: "/etc/group",
            })?,
    };
    Ok((uid, gid))
}

/// Field `field` (a number) of the first line of `file` (in the image's merged layers) whose
/// `:`-separated fields `matches`; `None` if the image has no such file or line.
fn lookup(
    image: &str,
    layers: &[PathBuf],
    file: &'static str,
    field: usize,
    matches: &dyn Fn(&[&str]) -> bool,
) -> Result<Option<u32>, Error> {
    let contents = image_files::read(layers, file).map_err(|why| Error::ImageFile {
        image: image.to_string(),
        path: file,
        why,
    })?;
    let Some(contents) = contents else {
        return Ok(None);
    };
    Ok(String::from_utf8_lossy(&contents)
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| matches(f))
        .and_then(|f| f.get(field)?.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> ServiceSpec {
        let text =
            format!("name = \"web\"\nimage = \"oci-archive:images/web.tar\"\nport = 8080\n{extra}");
        ServiceSpec::parse("services/web.toml", &text).expect("valid spec")
    }

    fn image() -> RuntimeConfig {
        RuntimeConfig {
            entrypoint: vec!["/web".into()],
            cmd: vec!["--default".into()],
            env: vec!["PATH=/bin".into(), "GREETING=image".into()],
            working_dir: Some("/srv".into()),
            user: None,
            exposed_ports: Vec::new(),
        }
    }

    fn place<'a>(layers: &'a [PathBuf]) -> Placement<'a> {
        Placement {
            id: "web-1",
            lower_dirs: layers,
            writable_dir: PathBuf::from("/data/containers/web-1"),
            netns: Some(PathBuf::from("/run/baton/netns/web-1")),
            address: Some(Ipv4Addr::new(10, 88, 0, 2)),
            volumes_dir: Some(PathBuf::from("/data/volumes/web")),
            resolv_conf: b"nameserver 10.0.2.3\n".to_vec(),
        }
    }

    #[test]
    fn image_defaults_and_spec_overrides() {
        let layers = [PathBuf::from("/nonexistent")];
        let c = container_config(&spec(""), &image(), &place(&layers)).expect("config");
        assert_eq!(c.args, ["/web", "--default"]);
        assert_eq!(c.cwd, "/srv");
        assert_eq!(c.user, (0, 0));
        assert!(
            c.env.contains(&"GREETING=image".to_string())
                && c.env.contains(&"PORT=8080".to_string())
        );
        assert!(c.env.contains(&"PATH=/bin".to_string()));
        assert_eq!(c.memory_bytes, Some(256 << 20));
        assert_eq!(c.hostname, "web-1");
        let hosts = String::from_utf8(c.files[0].contents.clone()).expect("utf8");
        assert!(hosts.contains("10.88.0.2\tweb-1"), "{hosts}");

        let s = spec("args = [\"--x\"]\nenv = { GREETING = \"spec\" }\nworkdir = \"/app\"\nuser = \"1000:1001\"\nresources = { cpu = 0.5 }\n");
        let c = container_config(&s, &image(), &place(&layers)).expect("config");
        assert_eq!(c.args, ["/web", "--x"]);
        assert!(c.env.contains(&"GREETING=spec".to_string()));
        assert_eq!(
            (c.cwd.as_str(), c.user, c.cpu),
            ("/app", (1000, 1001), Some(0.5))
        );

        let s = spec("command = [\"/bin/sh\", \"-c\", \"true\"]\n");
        let c = container_config(&s, &image(), &place(&layers)).expect("config");
        assert_eq!(
            c.args,
            ["/bin/sh", "-c", "true"],
            "command drops the image's cmd"
        );
    }

    #[test]
    fn nothing_to_run_and_volumes_without_data_are_errors() {
        let layers = [PathBuf::from("/nonexistent")];
        let empty = RuntimeConfig::default();
        assert_eq!(
            container_config(&spec(""), &empty, &place(&layers)),
            Err(Error::NoCommand)
        );
        let s = spec("volumes = [{ name = \"data\", path = \"/var/lib/web\" }]\n");
        let mut at = place(&layers);
        let c = container_config(&s, &image(), &at).expect("config");
        assert_eq!(c.volumes[0].host, PathBuf::from("/data/volumes/web/data"));
        assert_eq!(c.volumes[0].container, "/var/lib/web");
        at.volumes_dir = None;
        assert_eq!(
            container_config(&s, &image(), &at),
            Err(Error::NoDataPartition)
        );
    }

    #[test]
    fn user_names_come_from_the_image() {
        let top = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(top.path().join("etc")).expect("mkdir");
        std::fs::write(
            top.path().join("etc/passwd"),
            "root:x:0:0::/:/bin/sh\nweb:x:101:102::/:/bin/false\n",
        )
        .expect("passwd");
        std::fs::write(top.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").expect("group");
        let layers = [top.path().to_path_buf()];
        let mut img = image();
        img.user = Some("web".into());
        assert_eq!(
            container_config(&spec(""), &img, &place(&layers))
                .expect("config")
                .user,
            (101, 102)
        );
        let s = spec("user = \"web:staff\"\n");
        assert_eq!(
            container_config(&s, &img, &place(&layers))
                .expect("config")
                .user,
            (101, 50)
        );
        let s = spec("user = \"nobody\"\n");
        assert!(matches!(
            container_config(&s, &img, &place(&layers)),
            Err(Error::UnknownName { kind: "user", .. })
        ));
        // A number takes its primary group from the image when the image knows it.
        let s = spec("user = \"101\"\n");
        assert_eq!(
            container_config(&s, &img, &place(&layers))
                .expect("config")
                .user,
            (101, 102)
        );
    }

    #[test]
    fn a_hostile_passwd_is_refused_with_the_image_and_the_path() {
        let top = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(top.path().join("etc")).expect("mkdir");
        nix::unistd::mkfifo(
            &top.path().join("etc/passwd"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .expect("mkfifo");
        let layers = [top.path().to_path_buf()];
        let s = spec("user = \"web\"\n");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(container_config(&s, &image(), &place(&layers)));
        });
        let error = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("no hang")
            .expect_err("refused");
        assert_eq!(
            error.to_string(),
            "image oci-archive:images/web.tar: /etc/passwd: not a regular file but a FIFO"
        );
    }
}
