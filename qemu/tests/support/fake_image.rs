//! Builds small MBR disk images with a FAT32 boot partition, using the host's `sfdisk`,
//! `mkfs.fat` and `mcopy` (Debian packages fdisk, dosfstools, mtools). Shared by the unit tests
//! and the boot tests; only for tests.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Sectors before the boot partition.
const BOOT_START: u64 = 2048;
/// Sectors in the boot partition (40 MiB: enough clusters for FAT32).
const BOOT_SECTORS: u64 = 81920;
/// Sectors in the whole image (48 MiB).
const IMAGE_SECTORS: u64 = 98304;

/// Whether the host tools the builder needs are installed.
pub fn tools_available() -> bool {
    ["sfdisk", "mkfs.fat", "mcopy"].iter().all(|tool| {
        Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    })
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run host tool");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `dir/name`: an MBR image whose partition 1 is FAT32 holding `files` at its root.
pub fn build(dir: &Path, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let image = dir.join(name);
    let fat = dir.join(format!("{name}.p1"));
    let _ = std::fs::remove_file(&fat);
    run(Command::new("mkfs.fat")
        .args(["-F", "32", "-n", "BOOT", "-C"])
        .arg(&fat)
        .arg((BOOT_SECTORS / 2).to_string())
        .stdout(Stdio::null()));
    for (file, bytes) in files {
        let src = dir.join(format!("{name}.src"));
        std::fs::write(&src, bytes).expect("write source file");
        run(Command::new("mcopy")
            .arg("-i")
            .arg(&fat)
            .arg(&src)
            .arg(format!("::/{file}")));
    }
    let f = std::fs::File::create(&image).expect("create image");
    f.set_len(IMAGE_SECTORS * 512).expect("size image");
    drop(f);
    let mut sfdisk = Command::new("sfdisk")
        .arg("--no-reread")
        .arg("--no-tell-kernel")
        .arg(&image)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sfdisk");
    let script = format!("label: dos\nstart={BOOT_START}, size={BOOT_SECTORS}, type=c\n");
    sfdisk
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("feed sfdisk");
    let out = sfdisk.wait_with_output().expect("wait sfdisk");
    assert!(
        out.status.success(),
        "sfdisk: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let part = std::fs::read(&fat).expect("read FAT image");
    let mut img = OpenOptions::new()
        .write(true)
        .open(&image)
        .expect("open image");
    img.seek(SeekFrom::Start(BOOT_START * 512)).expect("seek");
    img.write_all(&part).expect("write partition");
    std::fs::remove_file(&fat).expect("remove FAT image");
    image
}
