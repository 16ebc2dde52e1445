//! `baton oci pack`: package a static binary as an OCI image archive (linux/arm64), the way
//! the example service is shipped. No container engine needed; the archive is deterministic.

use std::path::PathBuf;

use anyhow::Context;
use baton_oci::pack::{self, PackEntry, PackSpec};
use baton_oci::{ExposedPort, Platform, RuntimeConfig};

/// What to pack.
#[derive(Debug, Clone)]
pub struct PackOptions {
    /// The static binary to run.
    pub binary: PathBuf,
    /// Its path in the image (also the entrypoint), e.g. `/hello`.
    pub path: String,
    /// `NAME=value` defaults.
    pub env: Vec<String>,
    /// TCP port the program listens on.
    pub port: Option<u16>,
    /// Reference name recorded in the archive's index (`org.opencontainers.image.ref.name`).
    pub tag: Option<String>,
    /// Output archive.
    pub output: PathBuf,
}

/// Writes the archive (through a temporary file, renamed into place) and returns its manifest digest.
pub fn pack(opts: &PackOptions) -> anyhow::Result<String> {
    anyhow::ensure!(
        opts.path.starts_with('/') && opts.path.len() > 1,
        "--path {:?}: must be an absolute path inside the image, e.g. /hello",
        opts.path
    );
    anyhow::ensure!(
        opts.binary.is_file(),
        "binary {} not found",
        opts.binary.display()
    );
    let spec = PackSpec {
        entries: vec![
            PackEntry::directory("/tmp", 0o1777),
            PackEntry::directory("/etc", 0o755),
            PackEntry::host_file(&opts.path, &opts.binary, 0o755),
        ],
        config: RuntimeConfig {
            entrypoint: vec![opts.path.clone()],
            cmd: Vec::new(),
            env: opts.env.clone(),
            working_dir: Some("/".to_string()),
            user: None,
            exposed_ports: opts
                .port
                .map(|port| ExposedPort { port, udp: false })
                .into_iter()
                .collect(),
        },
        platform: Platform::linux_arm64(),
        tag: opts.tag.clone(),
    };
    let dir = match opts.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".baton-oci-")
        .tempfile_in(&dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let digest = pack::oci_archive(&spec, tmp.as_file())
        .with_context(|| format!("packing {}", opts.binary.display()))?;
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .with_context(|| format!("setting the mode of {}", tmp.path().display()))?;
    tmp.persist(&opts.output)
        .with_context(|| format!("writing {}", opts.output.display()))?;
    Ok(digest.to_string())
}
