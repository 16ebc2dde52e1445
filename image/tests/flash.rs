//! `baton image flash` against a real block device: a loop device over a file in the target
//! directory (the tests run as root, as CI does). A loop device says it is not removable, so
//! it is refused without `--force`; with it the image is written, synced and read back, and
//! the bytes on the device are the image's. A mounted device is refused even with `--force`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A loop device over a file, detached on drop.
struct Loop(PathBuf);

impl Loop {
    fn over(file: &Path) -> Loop {
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(file)
            .output()
            .expect("losetup (util-linux)");
        assert!(
            out.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Loop(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    }
}

/// A mount, unmounted on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("running a tool");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

fn flash(image: &Path, device: &Path, extra: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["image", "flash"])
        .arg(image)
        .arg(device)
        .args(extra)
        .output()
        .expect("running baton");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_card_is_written_and_read_back_and_a_fixed_or_mounted_disk_is_refused() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("dir");
    let image = dir.path().join("baton.img");
    let bytes: Vec<u8> = (0..(6u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&image, &bytes).expect("image");
    let backing = dir.path().join("card");
    std::fs::write(&backing, vec![0u8; 8 << 20]).expect("card");
    let device = Loop::over(&backing);

    let (ok, said) = flash(&image, &device.0, &["--yes"]);
    assert!(!ok && said.contains("not a removable disk"), "{said}");
    assert!(
        std::fs::read(&backing)
            .expect("card")
            .iter()
            .all(|b| *b == 0),
        "nothing written when refused"
    );

    let (ok, said) = flash(&image, &device.0, &["--yes", "--force"]);
    assert!(ok, "{said}");
    assert!(said.contains("written and checked"), "{said}");
    let written = std::fs::read(&backing).expect("card");
    assert_eq!(&written[..bytes.len()], &bytes[..]);

    // Asking needs a terminal: without one and without --yes nothing is written.
    let (ok, said) = flash(&image, &device.0, &["--force"]);
    assert!(!ok && said.contains("needs a terminal"), "{said}");

    // A file is not a device.
    let (ok, said) = flash(&image, &image, &["--yes"]);
    assert!(!ok && said.contains("not a block device"), "{said}");

    // Mounted: refused even with --force, and the file system on it is left as it is.
    run(Command::new("mke2fs")
        .args(["-q", "-t", "ext4", "-F"])
        .arg(&device.0));
    let point = dir.path().join("mnt");
    std::fs::create_dir(&point).expect("mount point");
    run(Command::new("mount").arg(&device.0).arg(&point));
    let mounted = Mounted(point.clone());
    std::fs::write(point.join("kept"), b"kept").expect("a file on it");
    let (ok, said) = flash(&image, &device.0, &["--yes", "--force"]);
    assert!(!ok && said.contains("is mounted at"), "{said}");
    assert_eq!(std::fs::read(point.join("kept")).expect("kept"), b"kept");
    drop(mounted);
}
