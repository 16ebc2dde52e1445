//! `baton image flash IMAGE DEVICE`: writes an image to an SD card, the safe way.
//!
//! Before anything is written the device is looked up in sysfs and checked: it must be a whole
//! disk (not a partition), at least as large as the image, with none of its partitions mounted,
//! not the disk the running system's `/` or `/boot` is on, and removable (an SD card in a
//! reader, a USB stick or an MMC card; `--force` takes a fixed disk). Its model and size are
//! shown, and the user types the device's name to go on (`--yes` skips that; without a
//! terminal it is needed). The image is then written with its progress shown, synced, the
//! device's cached pages dropped, and read back: its SHA-256 must equal the image's.
//!
//! Every check reads through [`Host`], so that tests point it at a directory that plays sysfs
//! and a mount table, and at a regular file that plays the card.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, IsTerminal, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

/// Bytes written or read at once.
const CHUNK: usize = 4 << 20;

/// Where the host's view of its disks comes from.
#[derive(Debug, Clone)]
pub struct Host {
    /// `/sys/class/block`.
    pub block: PathBuf,
    /// `/proc/self/mountinfo`.
    pub mountinfo: PathBuf,
}

impl Default for Host {
    fn default() -> Host {
        Host {
            block: PathBuf::from("/sys/class/block"),
            mountinfo: PathBuf::from("/proc/self/mountinfo"),
        }
    }
}

/// A disk as sysfs describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// Its kernel name (`sdb`, `mmcblk0`).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Whether it can be taken out: the kernel's `removable` flag, on USB, or an MMC/SD card.
    pub removable: bool,
    /// Vendor and model, as the kernel has them (`Generic STORAGE DEVICE`), or `unknown`.
    pub model: String,
}

fn read_trimmed(path: &Path) -> Option<String> {
    let mut text = String::new();
    File::open(path)
        .ok()?
        .take(4096)
        .read_to_string(&mut text)
        .ok()?;
    Some(text.trim().to_string())
}

impl Host {
    /// The disk `name` (a kernel name, as in `/dev/<name>`).
    pub fn disk(&self, name: &str) -> anyhow::Result<Disk> {
        let dir = self.block.join(name);
        if !dir.exists() {
            bail!(
                "/dev/{name} is not a disk this system knows (no {})",
                dir.display()
            );
        }
        if dir.join("partition").exists() {
            bail!("/dev/{name} is a partition: give the whole disk (the card, not one of its partitions)");
        }
        let sectors: u64 = read_trimmed(&dir.join("size"))
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("reading the size of /dev/{name}"))?;
        let flagged = read_trimmed(&dir.join("removable")).as_deref() == Some("1");
        // Where the device sits: /sys/devices/.../usbN/... for a USB reader.
        let on_usb = std::fs::canonicalize(&dir)
            .map(|p| {
                p.components()
                    .any(|c| c.as_os_str().to_string_lossy().starts_with("usb"))
            })
            .unwrap_or(false);
        let model = [
            read_trimmed(&dir.join("device/vendor")),
            read_trimmed(&dir.join("device/model")),
            read_trimmed(&dir.join("device/name")),
        ]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
        Ok(Disk {
            name: name.to_string(),
            size: sectors.saturating_mul(512),
            removable: flagged || on_usb || name.starts_with("mmcblk"),
            model: if model.is_empty() {
                "unknown".to_string()
            } else {
                model
            },
        })
    }

    /// The `major:minor` of the disk `name` and of each of its partitions.
    fn numbers(&self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = read_trimmed(&self.block.join(name).join("dev"))
            .into_iter()
            .collect();
        if let Ok(entries) = std::fs::read_dir(self.block.join(name)) {
            for entry in entries.flatten() {
                let child = entry.path();
                if child.join("partition").exists() {
                    out.extend(read_trimmed(&child.join("dev")));
                }
            }
        }
        out
    }

    /// The disk a `major:minor` belongs to (itself, or the disk of a partition).
    fn disk_of(&self, number: &str) -> Option<String> {
        for entry in std::fs::read_dir(&self.block).ok()?.flatten() {
            let dir = entry.path();
            if read_trimmed(&dir.join("dev")).as_deref() != Some(number) {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if !dir.join("partition").exists() {
                return Some(name);
            }
            // A partition's directory sits in its disk's (`sda/sda1`).
            let real = std::fs::canonicalize(&dir).ok()?;
            return real
                .parent()?
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
        }
        None
    }

    /// Why `disk` must not be written with an image of `image_size` bytes (empty: it may).
    pub fn refusals(
        &self,
        disk: &Disk,
        image_size: u64,
        force: bool,
    ) -> anyhow::Result<Vec<String>> {
        let table = std::fs::read_to_string(&self.mountinfo)
            .with_context(|| format!("reading {}", self.mountinfo.display()))?;
        let ours = self.numbers(&disk.name);
        let mut why = Vec::new();
        // mountinfo: ID PARENT MAJOR:MINOR ROOT MOUNT-POINT ...
        let mounts: Vec<(&str, &str)> = table
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let number = f.nth(2)?;
                let point = f.nth(1)?;
                Some((number, point))
            })
            .collect();
        let mounted: Vec<&str> = mounts
            .iter()
            .filter(|(n, _)| ours.iter().any(|o| o == n))
            .map(|(_, p)| *p)
            .collect();
        if !mounted.is_empty() {
            why.push(format!(
                "/dev/{} is mounted at {} (unmount it first)",
                disk.name,
                mounted.join(", ")
            ));
        }
        for (number, point) in &mounts {
            if (*point == "/" || *point == "/boot")
                && self.disk_of(number).as_deref() == Some(disk.name.as_str())
            {
                why.push(format!(
                    "/dev/{} holds this system's {point}: it is the system disk",
                    disk.name
                ));
            }
        }
        if disk.size < image_size {
            why.push(format!(
                "/dev/{} has {} bytes, the image {}: it does not fit",
                disk.name, disk.size, image_size
            ));
        }
        if !disk.removable && !force {
            why.push(format!(
                "/dev/{} is not a removable disk (give --force if it is the card)",
                disk.name
            ));
        }
        Ok(why)
    }
}

/// The kernel name of the device at `path` (`/dev/sdb` → `sdb`), following links
/// (`/dev/disk/by-id/...`).
pub fn kernel_name(path: &Path) -> anyhow::Result<String> {
    let real = std::fs::canonicalize(path).with_context(|| format!("{}", path.display()))?;
    let meta = std::fs::metadata(&real)?;
    if !meta.file_type().is_block_device() {
        bail!("{} is not a block device", path.display());
    }
    real.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .context("a device path without a name")
}

/// Copies `image` onto `device` from its start, calling `progress(done, total)` after each
/// chunk; then syncs and drops the device's cached pages, so that reading back reads the card.
pub fn write(
    image: &Path,
    device: &Path,
    mut progress: impl FnMut(u64, u64),
) -> anyhow::Result<()> {
    let mut from = File::open(image).with_context(|| format!("{}", image.display()))?;
    let total = from.metadata()?.len();
    // O_EXCL on a block device: refused while anything has it mounted.
    let mut to = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_EXCL)
        .open(device)
        .with_context(|| format!("opening {} to write", device.display()))?;
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        to.write_all(&buf[..n])
            .with_context(|| format!("writing {} at byte {done}", device.display()))?;
        done += n as u64;
        progress(done, total);
    }
    to.sync_all()
        .with_context(|| format!("syncing {}", device.display()))?;
    drop_cache(&to);
    Ok(())
}

/// Asks the kernel to forget the device's cached pages (best effort: a read-back then reads
/// what the card holds, not what was just written to memory).
fn drop_cache(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: posix_fadvise only reads its integer arguments; the descriptor is open for the
    // call's duration (borrowed from `file`).
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
}

/// The SHA-256 of the first `len` bytes of `path`.
pub fn digest(path: &Path, len: u64) -> anyhow::Result<[u8; 32]> {
    let mut file = File::open(path).with_context(|| format!("{}", path.display()))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            bail!("{} ended {left} bytes early", path.display());
        }
        hash.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(hash.finalize().into())
}

/// `bytes` for people (`31.9 GB`).
fn size(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

/// `baton image flash`.
pub fn run_cli(image: &Path, device: &Path, force: bool, yes: bool) -> anyhow::Result<()> {
    let host = Host::default();
    let name = kernel_name(device)?;
    let disk = host.disk(&name)?;
    let image_size = std::fs::metadata(image)
        .with_context(|| format!("{}", image.display()))?
        .len();
    eprintln!(
        "/dev/{}: {}, {} ({}removable)",
        disk.name,
        disk.model,
        size(disk.size),
        if disk.removable { "" } else { "not " }
    );
    let why = host.refusals(&disk, image_size, force)?;
    if !why.is_empty() {
        bail!("not writing {}:\n  {}", device.display(), why.join("\n  "));
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            bail!(
                "asking before erasing /dev/{} needs a terminal; give --yes to write anyway",
                disk.name
            );
        }
        eprint!(
            "Everything on /dev/{0} will be erased. Type {0} to go on: ",
            disk.name
        );
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != disk.name {
            bail!("not written");
        }
    }
    let start = Instant::now();
    write(image, device, |done, total| {
        let secs = start.elapsed().as_secs_f64().max(0.001);
        eprint!(
            "\rwriting: {:>3}%  {:.1} MB/s ",
            done * 100 / total.max(1),
            done as f64 / secs / 1e6
        );
    })?;
    eprintln!("\nreading back...");
    if digest(device, image_size)? != digest(image, image_size)? {
        bail!(
            "/dev/{}: what was read back differs from the image: the card may be failing",
            disk.name
        );
    }
    eprintln!(
        "/dev/{} written and checked in {:.0} s; it can be taken out",
        disk.name,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
#[path = "flash_tests.rs"]
mod tests;
