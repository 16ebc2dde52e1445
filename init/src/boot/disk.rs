//! Finding the boot disk: the whole disk whose MBR carries the image's disk signature, and the
//! device nodes of its partitions.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use baton_spec::mbr;
use tokio::time::Instant;

use crate::board::context::Ctx;

/// How long to wait for the boot disk to appear (SD card and virtio probing is asynchronous).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(15);
/// How often to look again while waiting.
const POLL: Duration = Duration::from_millis(50);

/// Errors finding the boot disk.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No disk carries the signature.
    #[error(
        "no disk with MBR signature {disk_id:#010x} after {}s; disks seen: {}",
        waited.as_secs(),
        seen_list(seen)
    )]
    NotFound {
        /// Signature from build.json.
        disk_id: u32,
        /// How long we waited.
        waited: Duration,
        /// What we found instead.
        seen: Vec<Seen>,
    },
}

fn seen_list(seen: &[Seen]) -> String {
    if seen.is_empty() {
        return "none".to_string();
    }
    seen.iter()
        .map(Seen::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A whole disk looked at while searching.
#[derive(Debug)]
pub struct Seen {
    /// Kernel name (`vda`, `mmcblk0`).
    pub name: String,
    /// Its MBR signature, or why there is none.
    pub signature: Result<u32, NoSignature>,
}

/// Why a disk has no MBR signature to compare.
#[derive(Debug, thiserror::Error)]
pub enum NoSignature {
    /// Its first sector could not be read.
    #[error("unreadable: {0}")]
    Unreadable(#[source] std::io::Error),
    /// Its first sector holds no MBR.
    #[error("no MBR")]
    NoMbr,
}

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.signature {
            Ok(sig) => write!(f, "{} (signature {sig:#010x})", self.name),
            Err(why) => write!(f, "{} ({why})", self.name),
        }
    }
}

/// The boot disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootDisk {
    /// Kernel name, for example `mmcblk0`.
    pub name: String,
    /// Partition number to kernel name (`4` to `mmcblk0p4`).
    pub partitions: BTreeMap<u32, String>,
}

impl BootDisk {
    /// The disk's device node, `/dev/<name>`.
    pub fn device(&self) -> String {
        format!("/dev/{}", self.name)
    }

    /// Device node of partition `number`, if the kernel has it.
    pub fn partition(&self, number: u32) -> Option<String> {
        self.partitions.get(&number).map(|p| format!("/dev/{p}"))
    }
}

/// Waits until a disk with signature `disk_id` and all of the partitions `needed` appear, up to
/// `deadline`. If the disk appears but a partition does not, returns the disk as it is at the
/// deadline (the steps that need the partition report it).
pub async fn find(
    ctx: &Ctx,
    disk_id: u32,
    needed: &[u32],
    deadline: Duration,
) -> Result<BootDisk, Error> {
    let start = Instant::now();
    loop {
        let (found, seen) = scan(ctx, disk_id);
        let timed_out = start.elapsed() >= deadline;
        match found {
            Some(disk) if timed_out || needed.iter().all(|n| disk.partitions.contains_key(n)) => {
                return Ok(disk)
            }
            None if timed_out => {
                return Err(Error::NotFound {
                    disk_id,
                    waited: deadline,
                    seen,
                })
            }
            _ => tokio::time::sleep(POLL).await,
        }
    }
}

/// One look at `/sys/class/block`: the matching disk, if any, and every whole disk seen.
pub fn scan(ctx: &Ctx, disk_id: u32) -> (Option<BootDisk>, Vec<Seen>) {
    let class = ctx.path("/sys/class/block");
    let mut names: Vec<String> = match std::fs::read_dir(&class) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    let mut seen = Vec::new();
    let mut found = None;
    for name in names {
        let dir = class.join(&name);
        if dir.join("partition").exists() || read_u64(&dir.join("size")) == Some(0) {
            // A partition, or an empty device (unused loop, ram disk).
            continue;
        }
        let signature = read_signature(&ctx.path(format!("/dev/{name}")));
        if found.is_none() && signature.as_ref().is_ok_and(|s| *s == disk_id) {
            found = Some(BootDisk {
                partitions: partitions(&dir),
                name: name.clone(),
            });
        }
        seen.push(Seen { name, signature });
    }
    (found, seen)
}

/// Partitions of the disk whose sysfs directory is `dir`: its subdirectories with a
/// `partition` file holding the number.
fn partitions(dir: &Path) -> BTreeMap<u32, String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let number = read_u64(&e.path().join("partition"))?;
            let name = e.file_name().into_string().ok()?;
            Some((u32::try_from(number).ok()?, name))
        })
        .collect()
}

/// A sysfs number file.
pub fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Sector 0 of a device.
pub fn read_sector0(device: &Path) -> std::io::Result<[u8; 512]> {
    let mut sector = [0u8; 512];
    std::fs::File::open(device)?.read_exact(&mut sector)?;
    Ok(sector)
}

fn read_signature(device: &Path) -> Result<u32, NoSignature> {
    let sector = read_sector0(device).map_err(NoSignature::Unreadable)?;
    mbr::disk_id(&sector).map_err(|_| NoSignature::NoMbr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::testbed::Testbed;

    #[test]
    fn finds_the_disk_by_signature_and_maps_partitions() {
        let tb = Testbed::new();
        tb.disk("sda", 0x1111_1111, 1 << 20, &[]);
        tb.disk(
            "mmcblk0",
            0xCAFE_F00D,
            1 << 20,
            &[(1, "mmcblk0p1"), (4, "mmcblk0p4")],
        );
        tb.file("/sys/class/block/loop0/size", "0\n");
        let (found, seen) = scan(&tb.ctx, 0xCAFE_F00D);
        let disk = found.expect("disk");
        assert_eq!(disk.name, "mmcblk0");
        assert_eq!(disk.partition(4).as_deref(), Some("/dev/mmcblk0p4"));
        assert_eq!(disk.partition(3), None);
        assert_eq!(disk.device(), "/dev/mmcblk0");
        let names: Vec<_> = seen.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["mmcblk0", "sda"],
            "partitions and empty devices are skipped"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn names_every_disk_seen_when_none_matches() {
        let tb = Testbed::new();
        tb.disk("vda", 0x1234_5678, 1 << 20, &[]);
        tb.file("/sys/class/block/vdb/size", "100\n");
        tb.file("/dev/vdb", "too short");
        let err = find(&tb.ctx, 0xDEAD_BEEF, &[], Duration::from_secs(15))
            .await
            .expect_err("no match");
        let msg = err.to_string();
        assert!(msg.contains("0xdeadbeef"), "{msg}");
        assert!(msg.contains("vda (signature 0x12345678)"), "{msg}");
        assert!(msg.contains("vdb (unreadable"), "{msg}");
    }

    #[tokio::test(start_paused = true)]
    async fn waits_for_a_disk_that_appears_late() {
        let tb = Testbed::new();
        let root = tb.ctx.root.clone();
        let late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            Testbed::disk_at(&root, "vda", 7, 1 << 20, &[(3, "vda3"), (4, "vda4")]);
        });
        let disk = find(&tb.ctx, 7, &[3, 4], Duration::from_secs(15))
            .await
            .expect("found");
        assert_eq!(disk.partitions.len(), 2);
        late.await.expect("task");
    }
}
