//! `baton image inspect`: what an image holds, from its partition table, its boot partition's
//! `baton.json` (which also lists the images baked into the data partition, so the ext4 file
//! system need not be read) and its config partition.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::assemble::MANIFEST;
use crate::disk::image::{self, Filesystem, ImageContents};

/// An image's description.
#[derive(Debug, Serialize)]
pub struct Inspection {
    /// Partitions and file systems.
    pub image: ImageContents,
    /// The boot partition's `baton.json`, if it has one.
    pub manifest: Option<serde_json::Value>,
}

/// Reads `path`.
pub fn inspect(path: &Path) -> anyhow::Result<Inspection> {
    let contents =
        image::read_image(path).with_context(|| format!("reading image {}", path.display()))?;
    let manifest = image::read_partition_file(path, 1, MANIFEST)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    Ok(Inspection {
        image: contents,
        manifest,
    })
}

/// `baton image inspect` on the command line.
pub fn run_cli(path: &Path, json: bool) -> anyhow::Result<()> {
    let found = inspect(path)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&found).context("formatting JSON")?
        );
        return Ok(());
    }
    println!(
        "image      {} ({} MiB, disk id {:08x})",
        path.display(),
        found.image.size >> 20,
        found.image.disk_id
    );
    if let Some(m) = &found.manifest {
        let field = |k: &str| m.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_string();
        println!("board      {}", field("board"));
        println!("kernel     {}", field("kernel_release"));
        for p in m
            .get("packages")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            println!("package    {}", p.as_str().unwrap_or("?"));
        }
        println!("built by   baton {}", field("baton_version"));
        for image in m
            .get("images")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            let text = |k: &str| image.get(k).and_then(|v| v.as_str()).unwrap_or("?");
            let size = image.get("size").and_then(|v| v.as_u64()).unwrap_or(0);
            println!(
                "baked      {} {} ({} KiB)",
                text("reference"),
                text("digest"),
                size >> 10
            );
        }
    } else {
        println!("board      unknown (no {MANIFEST} on the boot partition)");
    }
    for p in &found.image.partitions {
        let (kind, label) = match &p.filesystem {
            Filesystem::Fat { label, .. } => ("fat32", label.as_str()),
            Filesystem::Ext4 { label, .. } => ("ext4", label.as_str()),
            Filesystem::Unknown => ("unknown", ""),
        };
        println!(
            "partition  {}: {:>5} MiB at {:>5} MiB  {kind:<7} {label}",
            p.number,
            p.entry.size() >> 20,
            p.entry.offset() >> 20
        );
    }
    if let Some(Filesystem::Fat { files, .. }) = found
        .image
        .partitions
        .iter()
        .find(|p| p.number == baton_spec::build_info::partition::CONFIG as usize)
        .map(|p| &p.filesystem)
    {
        for f in files.iter().filter(|f| !f.is_dir) {
            println!("config     {} ({} bytes)", f.path, f.size);
        }
    }
    Ok(())
}
