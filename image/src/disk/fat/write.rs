//! Laying out and writing a FAT32 volume in one pass.

use std::io::{Seek, SeekFrom, Write};

use super::dirent::{self, ATTR_ARCHIVE, ATTR_DIRECTORY, ATTR_VOLUME_ID};
use super::geometry::{Geometry, FATS, SECTOR};
use super::{FatDir, FatError, FatNode, FatOptions};

/// FAT entry value that ends a cluster chain.
const END_OF_CHAIN: u32 = 0x0fff_ffff;
/// FAT entry 0: the media byte in the low 8 bits, the rest set.
const FAT_ENTRY_0: u32 = 0x0fff_fff8;
/// Most 32-byte slots a directory may have.
const MAX_DIR_SLOTS: usize = 65_536;

/// Writes a FAT32 file system of `opts.size` bytes holding `root` to `out`, starting at its current
/// position. Only non-zero bytes are written (plus the last byte, to give the volume its full
/// length), so the target must read as zeros: a new file or a fresh region of a new image.
pub fn write_fat32<W: Write + Seek>(
    out: &mut W,
    opts: &FatOptions,
    root: &FatDir,
) -> Result<(), FatError> {
    let label = label_bytes(&opts.label)?;
    let geometry = Geometry::for_size(opts.size)?;
    let mut plan = Plan {
        geometry,
        stamp: dirent::fat_date_time(opts.mtime),
        next_cluster: 2,
        dirs: Vec::new(),
        files: Vec::new(),
    };
    plan.directory(root, "", None, Some(&label))?;
    let used = u64::from(plan.next_cluster) - 2;
    if used > geometry.clusters {
        return Err(FatError::Full {
            needed: used,
            available: geometry.clusters,
            cluster_size: geometry.cluster_size(),
        });
    }

    let base = out.stream_position().map_err(FatError::Write)?;
    let mut put = |offset: u64, bytes: &[u8]| -> Result<(), FatError> {
        out.seek(SeekFrom::Start(base + offset))
            .and_then(|_| out.write_all(bytes))
            .map_err(FatError::Write)
    };
    let boot = geometry.boot_sector(opts, &label);
    let fsinfo = geometry.fsinfo_sector(used);
    put(0, &boot)?;
    put(SECTOR, &fsinfo)?;
    put(6 * SECTOR, &boot)?;
    put(7 * SECTOR, &fsinfo)?;
    let fat = plan.fat_bytes();
    for n in 0..FATS {
        put(geometry.fat_offset(n), &fat)?;
    }
    for (cluster, bytes) in &plan.dirs {
        put(geometry.cluster_offset(*cluster), bytes)?;
    }
    for (cluster, bytes) in &plan.files {
        put(geometry.cluster_offset(*cluster), bytes)?;
    }
    put(opts.size - 1, &[0])?;
    out.flush().map_err(FatError::Write)
}

/// The label as the 11 space-padded bytes stored in the boot sector and the root directory.
fn label_bytes(label: &str) -> Result<[u8; 11], FatError> {
    let ok = !label.is_empty()
        && label.len() <= 11
        && label
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, ' ' | '-' | '_'));
    if !ok {
        return Err(FatError::InvalidLabel(label.to_owned()));
    }
    let mut out = [b' '; 11];
    out[..label.len()].copy_from_slice(label.as_bytes());
    Ok(out)
}

/// Cluster assignments, made depth first in name order, and the bytes that go into them.
struct Plan<'t> {
    geometry: Geometry,
    stamp: (u16, u16),
    next_cluster: u32,
    /// Directory contents by first cluster; each run is contiguous.
    dirs: Vec<(u32, Vec<u8>)>,
    /// File contents by first cluster; each run is contiguous.
    files: Vec<(u32, &'t [u8])>,
}

impl<'t> Plan<'t> {
    /// Takes `bytes` worth of contiguous clusters; returns the first (0 for nothing).
    fn allocate(&mut self, bytes: u64) -> u32 {
        let count = bytes.div_ceil(self.geometry.cluster_size());
        if count == 0 {
            return 0;
        }
        let first = self.next_cluster;
        // Saturate rather than wrap; `write_fat32` reports a full volume afterwards.
        self.next_cluster = u32::try_from(u64::from(first) + count).unwrap_or(u32::MAX);
        first
    }

    /// Allocates directory `dir` and everything below it; returns its first cluster.
    fn directory(
        &mut self,
        dir: &'t FatDir,
        path: &str,
        parent: Option<u32>,
        label: Option<&[u8; 11]>,
    ) -> Result<u32, FatError> {
        // Short names first: they decide how many slots each entry takes.
        let mut shorts: Vec<[u8; 11]> = Vec::with_capacity(dir.entries.len());
        let mut slots = usize::from(parent.is_some()) * 2 + usize::from(label.is_some());
        for name in dir.entries.keys() {
            let short = match dirent::exact_short_name(name) {
                Some(s) => s,
                None => {
                    let taken = |c: &[u8; 11]| {
                        shorts.contains(c)
                            || dir
                                .entries
                                .keys()
                                .any(|n| dirent::exact_short_name(n).as_ref() == Some(c))
                    };
                    let s = dirent::generated_short_name(name, &taken);
                    slots += dirent::long_name_slots(name, &s).len();
                    s
                }
            };
            shorts.push(short);
            slots += 1;
        }
        if slots > MAX_DIR_SLOTS {
            return Err(FatError::DirectoryTooLarge {
                path: path.to_owned(),
            });
        }
        let own = self.allocate((slots as u64 * 32).max(1));

        let mut bytes = Vec::with_capacity(slots * 32);
        if let Some(label) = label {
            bytes.extend(dirent::short_entry(label, ATTR_VOLUME_ID, 0, 0, self.stamp));
        }
        if let Some(parent) = parent {
            bytes.extend(dirent::short_entry(
                b".          ",
                ATTR_DIRECTORY,
                own,
                0,
                self.stamp,
            ));
            // ".." of a directory directly under the root points at cluster 0, not the root's cluster.
            bytes.extend(dirent::short_entry(
                b"..         ",
                ATTR_DIRECTORY,
                parent,
                0,
                self.stamp,
            ));
        }
        for ((name, node), short) in dir.entries.iter().zip(&shorts) {
            let child = format!("{path}/{name}");
            let (attr, cluster, size) = match node {
                FatNode::File(data) => {
                    let cluster = self.allocate(data.len() as u64);
                    if cluster != 0 {
                        self.files.push((cluster, data));
                    }
                    // Sizes above u32::MAX were refused by `FatDir::add_file`.
                    (ATTR_ARCHIVE, cluster, data.len() as u32)
                }
                FatNode::Dir(sub) => {
                    let parent_ref = if parent.is_some() { own } else { 0 };
                    (
                        ATTR_DIRECTORY,
                        self.directory(sub, &child, Some(parent_ref), None)?,
                        0,
                    )
                }
            };
            if dirent::exact_short_name(name).is_none() {
                for slot in dirent::long_name_slots(name, short) {
                    bytes.extend(slot);
                }
            }
            bytes.extend(dirent::short_entry(short, attr, cluster, size, self.stamp));
        }
        self.dirs.push((own, bytes));
        Ok(own)
    }

    /// The FAT up to the last used cluster (the rest of it is zero: free).
    fn fat_bytes(&self) -> Vec<u8> {
        let mut fat = vec![0u32; self.next_cluster as usize];
        fat[0] = FAT_ENTRY_0;
        fat[1] = END_OF_CHAIN;
        let runs = self
            .dirs
            .iter()
            .map(|(c, b)| (*c, b.len().max(1) as u64))
            .chain(self.files.iter().map(|(c, b)| (*c, b.len() as u64)));
        for (first, len) in runs {
            let count = len.div_ceil(self.geometry.cluster_size()) as u32;
            for c in first..first + count - 1 {
                fat[c as usize] = c + 1;
            }
            fat[(first + count - 1) as usize] = END_OF_CHAIN;
        }
        fat.iter().flat_map(|e| e.to_le_bytes()).collect()
    }
}
