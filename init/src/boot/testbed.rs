//! Test fixture: a temp-dir root holding fake `/sys`, `/dev`, `/config` and `/data` trees,
//! a recording fake kernel and a quiet console.

use std::path::Path;
use std::sync::Arc;

use baton_spec::mbr::{Mbr, MbrPartition};

use crate::board::console::Console;
use crate::board::context::Ctx;
use crate::board::status::BoardStatus;
use crate::board::sys::fake::FakeSys;
use crate::boot::data;

/// Disk signature of the test image.
pub const DISK_ID: u32 = 0xB470_0001;
/// One MiB in sectors.
pub const MIB: u32 = 2048;
/// The data partition of [`Testbed::image_disk`] ends here (1 GiB), in sectors.
pub const IMAGE_END: u64 = 1024 * MIB as u64;

/// A fake board.
pub struct Testbed {
    _dir: tempfile::TempDir,
    /// The context steps run with.
    pub ctx: Ctx,
    /// The fake kernel.
    pub sys: Arc<FakeSys>,
}

impl Testbed {
    /// An empty root.
    pub fn new() -> Testbed {
        let dir = tempfile::tempdir().expect("temp dir");
        let sys = Arc::new(FakeSys::new(dir.path()));
        let ctx = Ctx::new(
            dir.path(),
            sys.clone(),
            Arc::new(Console::quiet(1000)),
            Arc::new(BoardStatus::default()),
        );
        Testbed {
            _dir: dir,
            ctx,
            sys,
        }
    }

    /// The board state.
    pub fn state(&self) -> &BoardStatus {
        &self.ctx.state
    }

    /// Console lines so far.
    pub fn console(&self) -> Vec<String> {
        self.ctx.console.recent()
    }

    /// Writes `contents` to board path `path`, creating directories.
    pub fn file(&self, path: &str, contents: impl AsRef<[u8]>) {
        write(&self.ctx.path(path), contents.as_ref());
    }

    /// Reads board path `path`.
    pub fn read(&self, path: &str) -> Vec<u8> {
        std::fs::read(self.ctx.path(path)).expect("read test file")
    }

    /// A whole disk `name` of `sectors` with signature `signature` and partitions
    /// `(number, name)`, each 4 MiB long at `number * 4 MiB`.
    pub fn disk(&self, name: &str, signature: u32, sectors: u64, parts: &[(u32, &str)]) {
        Self::disk_at(&self.ctx.root, name, signature, sectors, parts);
    }

    /// [`Testbed::disk`] under any root (for tasks that make a disk appear later).
    pub fn disk_at(root: &Path, name: &str, signature: u32, sectors: u64, parts: &[(u32, &str)]) {
        let entries: Vec<_> = parts
            .iter()
            .map(|&(n, _)| (n, 0x83, n * 4 * MIB, 4 * MIB))
            .collect();
        let sizes: Vec<_> = parts
            .iter()
            .map(|&(n, p)| (n, p, u64::from(4 * MIB)))
            .collect();
        Self::disk_with(root, name, sectors, &sector0(signature, &entries), &sizes);
    }

    fn disk_with(
        root: &Path,
        name: &str,
        sectors: u64,
        sector0: &[u8],
        parts: &[(u32, &str, u64)],
    ) {
        let class = root.join("sys/class/block");
        write(
            &class.join(name).join("size"),
            format!("{sectors}\n").as_bytes(),
        );
        for &(number, part, size) in parts {
            for dir in [class.join(name).join(part), class.join(part)] {
                write(&dir.join("partition"), format!("{number}\n").as_bytes());
                write(&dir.join("size"), format!("{size}\n").as_bytes());
            }
        }
        write(&root.join("dev").join(name), sector0);
    }

    /// A baton image on disk `vda` of `sectors`: boot A, boot B, config and a 444 MiB data
    /// partition ending at 1 GiB whose ext4 file system has `fs_blocks` 4 KiB blocks.
    pub fn image_disk(&self, sectors: u64, fs_blocks: u64) {
        let layout = [
            (1, 0x0c, 4 * MIB, 256 * MIB),
            (2, 0x0c, 260 * MIB, 256 * MIB),
            (3, 0x0c, 516 * MIB, 64 * MIB),
            (4, 0x83, 580 * MIB, 444 * MIB),
        ];
        let parts: Vec<_> = layout
            .iter()
            .map(|&(n, _, _, len)| {
                (
                    n,
                    ["vda1", "vda2", "vda3", "vda4"][n as usize - 1],
                    u64::from(len),
                )
            })
            .collect();
        Self::disk_with(
            &self.ctx.root,
            "vda",
            sectors,
            &sector0(DISK_ID, &layout),
            &parts,
        );
        let mut part = vec![0u8; 1024];
        part.extend_from_slice(&data::build_superblock(fs_blocks));
        self.file("/dev/vda4", part);
        self.file("/dev/vda3", "");
    }
}

fn write(path: &Path, contents: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create test dir");
    }
    std::fs::write(path, contents).expect("write test file");
}

/// Sector 0 with disk signature `disk_id` and `(number, kind, start, sectors)` entries, none
/// active, as the image builder writes it.
pub fn sector0(disk_id: u32, entries: &[(u32, u8, u32, u32)]) -> [u8; 512] {
    let mut partitions = [None; 4];
    for &(number, kind, start_lba, sectors) in entries {
        partitions[number as usize - 1] = Some(MbrPartition {
            bootable: false,
            kind,
            start_lba,
            sectors,
        });
    }
    Mbr {
        disk_id,
        partitions,
    }
    .to_bytes()
}
